"""A selection of a store's samples (by split, phase, class), read lazily."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from streamal.data.label import SPLITS
from streamal.data.reader import take
from streamal.errors import StoreError

if TYPE_CHECKING:
    from streamal.data.store import SampleStore


class StoreView:
    """A selection of samples (by split/phase/class) read lazily from the store."""

    def __init__(self, store: SampleStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def _read(self, name: str, rows: np.ndarray) -> np.ndarray:
        return take(self.store._dataset(name), rows)

    def params(self) -> np.ndarray:
        return self._read("params", self.indices)

    def classes(self) -> np.ndarray:
        return self._read("classes", self.indices).astype(np.int64)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Inputs of view rows ``start:stop`` (everything by default)."""
        return self._read("inputs", self.indices[start:stop])

    def iter_blocks(self, block: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(inputs, classes, params)`` in blocks, so a large view never sits in memory whole."""
        for s in range(0, len(self), block):
            rows = self.indices[s : s + block]
            yield (
                self._read("inputs", rows),
                self._read("classes", rows).astype(np.int64),
                self._read("params", rows),
            )


def matching_rows(
    column: Callable[[str], np.ndarray],
    n: int,
    *,
    split: str | Sequence[str] | None = None,
    phase: int | Sequence[int] | None = None,
    max_phase: int | None = None,
    classes: Sequence[int] | None = None,
) -> np.ndarray:
    """The rows ``0:n`` matching every given filter, in increasing order.

    Args:
        column: Reads the first ``n`` values of a ``/samples`` column by name.
        n: Committed samples.
        split, phase, max_phase, classes: As for :meth:`SampleStore.select`.

    Raises:
        StoreError: An unknown split.
    """
    mask = np.ones(n, dtype=bool)
    if split is not None:
        names = [split] if isinstance(split, str) else list(split)
        bad = [s for s in names if s not in SPLITS]
        if bad:
            raise StoreError(f"unknown split(s) {bad}; allowed: {list(SPLITS)}")
        mask &= np.isin(column("split"), [SPLITS.index(s) for s in names])
    if phase is not None or max_phase is not None:
        phases = column("phase")
        if phase is not None:
            mask &= np.isin(phases, np.atleast_1d(phase))
        if max_phase is not None:
            mask &= phases <= max_phase
    if classes is not None:
        mask &= np.isin(column("classes"), list(classes))
    return np.flatnonzero(mask)
