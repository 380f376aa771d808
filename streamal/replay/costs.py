"""What each task costs in a replay: a fitted :class:`CostModel`, or measured :class:`TraceCosts`.

The cost model, in seconds (``S`` samples, ``c`` cores, ``E`` epochs, ``N`` training samples,
``R`` ranks over ``M`` nodes)::

    simulation task  = sim_task_s + S · sim_sample_s · p / c      × sim_slowdown while training
    training         = train_start_s + E · (train_epoch_s
                         + N · train_sample_epoch_s · ddp(M) / R)
                                               × (1 + (train_slowdown − 1) · busy_sim)
    ddp(M)           = 1 + ddp_internode_cost · 2(M − 1)/M        (ring all-reduce across nodes)
    AL task          = al_s + S_study · al_sample_s

``p`` is ``policy_sample_factor`` for samples an AL policy drew and 1 for uniform or swept
ones (a simulator's cost depends on where in the space it simulates). ``busy_sim`` is the
fraction of simulator workers busy; slowdowns act on a task's rate while the other kind runs
(the engine integrates them). The first task of a kind on a worker costs ``*_warmup_s`` more;
each task starts ``dispatch_s`` after it is submitted, its process sees it end ``return_s``
later, and a simulator worker takes the next chunk ``release_s`` after one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

from streamal.errors import ConfigError


class Costs(Protocol):
    """What the replay asks of a cost source."""

    dispatch_s: float
    return_s: float
    release_s: float

    def sim_work(self, stage: str, samples: int, cores: int, origin: str) -> float: ...

    def train_work(
        self, stage: str, samples: int, epochs: int, ranks: int, nodes: int
    ) -> float: ...

    def al_work(self, stage: str, samples: int) -> float: ...

    def slowdown(self, kind: str, busy: Mapping[str, float]) -> float: ...

    def warmup(self, pool: str, kind: str) -> float: ...


def ddp_factor(nodes: int, internode_cost: float) -> float:
    """Time factor of DDP's per-sample work on ``nodes`` nodes (1 on one node)."""
    return 1.0 + internode_cost * 2.0 * (nodes - 1) / nodes


@dataclass
class CostModel:
    """Measured or fitted costs (see the module docstring); ``sources`` says where each came
    from (``fitted: ...``, ``measured: ...``, ``assumed: ...``)."""

    sim_sample_s: float
    train_sample_epoch_s: float
    sim_task_s: float = 0.0
    policy_sample_factor: float = 1.0
    sim_slowdown: float = 1.0
    sim_warmup_s: float = 0.0
    train_start_s: float = 0.0
    train_epoch_s: float = 0.0
    train_slowdown: float = 1.0
    ddp_internode_cost: float = 0.30
    al_s: float = 0.0
    al_sample_s: float = 0.0
    al_warmup_s: float = 0.0
    dispatch_s: float = 0.0
    return_s: float = 0.0
    release_s: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"costs.{f.name}: must be a number >= 0 (got {value!r})")
        for name in ("sim_slowdown", "train_slowdown", "policy_sample_factor"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"costs.{name}: must be > 0 (got {getattr(self, name)!r})")

    def sim_work(self, stage: str, samples: int, cores: int, origin: str) -> float:
        factor = self.policy_sample_factor if origin == "policy" else 1.0
        return self.sim_task_s + samples * self.sim_sample_s * factor / max(cores, 1)

    def train_work(self, stage: str, samples: int, epochs: int, ranks: int, nodes: int) -> float:
        per_sample = self.train_sample_epoch_s * ddp_factor(nodes, self.ddp_internode_cost)
        return self.train_start_s + epochs * (
            self.train_epoch_s + samples * per_sample / max(ranks, 1)
        )

    def al_work(self, stage: str, samples: int) -> float:
        return self.al_s + samples * self.al_sample_s

    def slowdown(self, kind: str, busy: Mapping[str, float]) -> float:
        if kind == "sim" and busy.get("train", 0.0) > 0:
            return self.sim_slowdown
        if kind == "train":
            return 1.0 + (self.train_slowdown - 1.0) * min(1.0, busy.get("sim", 0.0))
        return 1.0

    def warmup(self, pool: str, kind: str) -> float:
        return {"sim": self.sim_warmup_s, "al": self.al_warmup_s}.get(kind, 0.0)

    def with_(self, **changes: Any) -> CostModel:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CostModel:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"costs: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        missing = [k for k in ("sim_sample_s", "train_sample_epoch_s") if k not in data]
        if missing:
            raise ConfigError(f"costs: missing {', '.join(missing)}")
        return cls(**data)


@dataclass
class TraceCosts:
    """Each stage's measured duration, replayed as is (slowdowns are already in them).

    A simulation stage's time is shared among its batches by sample count (``samples``: the
    stage's samples), so a stage of several batches on one pool still takes its measured time.
    """

    durations: dict[str, float]
    samples: dict[str, int] = field(default_factory=dict)
    dispatch_s: float = 0.0
    return_s: float = 0.0
    release_s: float = 0.0

    def _duration(self, stage: str) -> float:
        try:
            return self.durations[stage]
        except KeyError:
            raise ConfigError(f"trace: no measured time for stage {stage!r}") from None

    def sim_work(self, stage: str, samples: int, cores: int, origin: str) -> float:
        total = self.samples.get(stage) or samples
        return self._duration(stage) * samples / total

    def train_work(self, stage: str, samples: int, epochs: int, ranks: int, nodes: int) -> float:
        return self._duration(stage)

    def al_work(self, stage: str, samples: int) -> float:
        return self._duration(stage)

    def slowdown(self, kind: str, busy: Mapping[str, float]) -> float:
        return 1.0

    def warmup(self, pool: str, kind: str) -> float:
        return 0.0
