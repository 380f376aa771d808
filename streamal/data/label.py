"""What every stored sample is labelled with: the phase, split and origin of its batch."""

from __future__ import annotations

from dataclasses import dataclass

#: The splits a sample can belong to, in the order of their stored codes.
SPLITS = ("train", "val", "test", "study")


@dataclass(frozen=True)
class BatchLabel:
    """The label of one batch of samples.

    Attributes:
        phase: The campaign phase the samples belong to (0: the uniform start; ``k``: the
            ``k``-th active-learning batch). A training up to phase ``k`` sees them.
        split: One of :data:`SPLITS`.
        origin: Who chose the samples (a policy name, ``"sweep"`` for the study set).
    """

    phase: int
    split: str
    origin: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {SPLITS}")
