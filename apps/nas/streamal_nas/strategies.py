"""Search strategies behind one ask/tell interface: NSGA-II (pymoo) and regularized evolution.

Every strategy minimises a vector of objectives, e.g. ``[error %, FLOPs]``::

    strategy = NSGA2Strategy(population=8, phases=3, nodes=4, seed=0)
    while (batch := strategy.ask(4)):
        strategy.tell(batch, [evaluate(c) for c in batch])

The public :meth:`SearchStrategy.ask` and :meth:`SearchStrategy.tell` check, time and log;
subclasses implement ``_ask`` and ``_tell`` only (the DeepHyper pattern). ``ask`` may return
fewer candidates than requested (NSGA-II waits for a whole generation to be told).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .genome import MacroGenome

__all__ = [
    "Candidate",
    "NSGA2Strategy",
    "RegularizedEvolution",
    "SearchStrategy",
    "hypervolume",
    "make_strategy",
    "pareto_indices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One architecture proposed by a strategy.

    Attributes:
        id: Unique id within the search (``"c0007"``).
        genome: The macro genome.
        parent_id: The candidate it was mutated from (regularized evolution), else ``None``.
        generation: NSGA-II generation, or the number of tells before it was asked (RE).
    """

    id: str
    genome: MacroGenome
    parent_id: str | None = None
    generation: int = 0


class SearchStrategy(ABC):
    """Ask/tell base: bookkeeping, checks and timing around ``_ask``/``_tell``.

    Args:
        phases: Phases of every genome.
        nodes: Nodes per phase.
        n_objectives: Length of each objective vector passed to :meth:`tell`.
        seed: Seed of the strategy's random draws.

    Attributes:
        history_: ``(candidate, objectives)`` in tell order.
        ask_s_: Seconds spent in ``_ask``; ``tell_s_`` likewise.
    """

    def __init__(self, phases: int = 3, nodes: int = 4, n_objectives: int = 2, seed: int = 0):
        if n_objectives < 1:
            raise ValueError(f"n_objectives must be >= 1, got {n_objectives}")
        self.phases = phases
        self.nodes = nodes
        self.n_objectives = n_objectives
        self.seed = seed
        self.history_: list[tuple[Candidate, np.ndarray]] = []
        self.ask_s_ = 0.0
        self.tell_s_ = 0.0
        self._pending: dict[str, Candidate] = {}
        self._n_asked = 0

    @property
    def pending(self) -> tuple[Candidate, ...]:
        """Candidates asked and not yet told."""
        return tuple(self._pending.values())

    @property
    def n_asked(self) -> int:
        """Candidates handed out so far."""
        return self._n_asked

    def ask(self, n: int) -> list[Candidate]:
        """Up to ``n`` new candidates (possibly fewer, possibly none for now)."""
        if n < 0:
            raise ValueError(f"ask(n): n must be >= 0, got {n}")
        if n == 0:
            return []
        t0 = time.perf_counter()
        out = self._ask(n)
        self.ask_s_ += time.perf_counter() - t0
        if len(out) > n:
            raise RuntimeError(f"{type(self).__name__}._ask returned {len(out)} > n = {n}")
        for c in out:
            if (c.genome.phases, c.genome.nodes) != (self.phases, self.nodes):
                raise RuntimeError(f"{c.id}: genome shape differs from the search space")
            if c.id in self._pending:
                raise RuntimeError(f"{c.id} was asked twice")
            self._pending[c.id] = c
        self._n_asked += len(out)
        log.debug("ask(%d) -> %d candidates", n, len(out))
        return out

    def tell(self, candidates: Sequence[Candidate], objectives: Sequence[Sequence[float]]) -> None:
        """Report the objective vectors (to minimise) of asked candidates.

        Raises:
            ValueError: Unknown candidate, or objectives of the wrong shape or not finite.
        """
        f = np.asarray(objectives, dtype=float).reshape(len(candidates), -1)
        if f.shape[1] != self.n_objectives:
            raise ValueError(
                f"tell: expected {self.n_objectives} objectives per candidate, got {f.shape[1]}"
            )
        if not np.isfinite(f).all():
            raise ValueError(f"tell: objectives must be finite, got {f.tolist()}")
        for c in candidates:
            if c.id not in self._pending:
                raise ValueError(f"tell: {c.id!r} was not asked or was already told")
        t0 = time.perf_counter()
        for c, row in zip(candidates, f, strict=True):
            del self._pending[c.id]
            self.history_.append((c, row))
        self._tell(list(candidates), f)
        self.tell_s_ += time.perf_counter() - t0

    @abstractmethod
    def _ask(self, n: int) -> list[Candidate]:
        """Propose up to ``n`` candidates."""

    @abstractmethod
    def _tell(self, candidates: list[Candidate], objectives: np.ndarray) -> None:
        """Take in results (rows of ``objectives`` follow ``candidates``)."""


class NSGA2Strategy(SearchStrategy):
    """NSGA-II over :meth:`MacroGenome.to_vector` through pymoo's ask/tell API.

    Binary random sampling, two-point crossover and bit-flip mutation; pymoo does the
    non-dominated sorting, crowding and duplicate elimination. A generation is told to pymoo
    once all of its members are told.

    Args:
        population: NSGA-II population size.
    """

    def __init__(
        self,
        population: int = 8,
        phases: int = 3,
        nodes: int = 4,
        n_objectives: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(phases, nodes, n_objectives, seed)
        if population < 2:
            raise ValueError(f"population must be >= 2, got {population}")
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.pntx import TwoPointCrossover
        from pymoo.operators.mutation.bitflip import BitflipMutation
        from pymoo.operators.sampling.rnd import BinaryRandomSampling

        n_var = len(MacroGenome.random(np.random.default_rng(0), phases, nodes).bits)
        self.population = population
        self._problem = Problem(n_var=n_var, n_obj=n_objectives, xl=0, xu=1, vtype=bool)
        self.algorithm_ = NSGA2(
            pop_size=population,
            sampling=BinaryRandomSampling(),
            crossover=TwoPointCrossover(),
            mutation=BitflipMutation(),
            eliminate_duplicates=True,
        )
        self.algorithm_.setup(self._problem, seed=seed, verbose=False)
        self._batch = None
        self._batch_candidates: list[Candidate] = []
        self._next = 0
        self._told: dict[str, np.ndarray] = {}
        self.generation_ = 0

    def _ask(self, n: int) -> list[Candidate]:
        if self._batch is None:
            self._batch = self.algorithm_.ask()
            self._batch_candidates, self._next, self._told = [], 0, {}
            for x in self._batch.get("X"):
                genome = MacroGenome.from_vector(
                    np.asarray(x, dtype=float), self.phases, self.nodes
                )
                cid = f"c{self._n_asked + len(self._batch_candidates) + 1:04d}"
                self._batch_candidates.append(Candidate(cid, genome, None, self.generation_))
        out = self._batch_candidates[self._next : self._next + n]
        self._next += len(out)
        return out

    def _tell(self, candidates: list[Candidate], objectives: np.ndarray) -> None:
        ids = {c.id for c in self._batch_candidates}
        for c, row in zip(candidates, objectives, strict=True):
            if c.id not in ids:
                raise ValueError(f"tell: {c.id!r} is not in the current generation")
            self._told[c.id] = row
        if len(self._told) < len(self._batch_candidates):
            return
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        f = np.array([self._told[c.id] for c in self._batch_candidates])
        Evaluator().eval(StaticProblem(self._problem, F=f), self._batch)
        self.algorithm_.tell(infills=self._batch)
        self._batch = None
        self.generation_ += 1


class RegularizedEvolution(SearchStrategy):
    """Aging evolution (Real et al.): tournament of ``sample`` from the last ``population``.

    The first ``population`` candidates are random. Each later child copies the tournament
    winner (lowest first objective, ties broken by the next objectives) and flips exactly one
    genome bit, so parent and child differ by Hamming distance 1. Asynchronous: a child may
    be asked while others are still being evaluated.

    Args:
        population: N, the size of the aging population.
        sample: S, the tournament size.
    """

    def __init__(
        self,
        population: int = 8,
        sample: int = 3,
        phases: int = 3,
        nodes: int = 4,
        n_objectives: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(phases, nodes, n_objectives, seed)
        if population < 1 or not 1 <= sample <= population:
            raise ValueError(
                f"need population >= 1 and 1 <= sample <= population, got {population}, {sample}"
            )
        self.population = population
        self.sample = sample
        self.rng_ = np.random.default_rng(seed)
        self.population_: deque[tuple[Candidate, np.ndarray]] = deque(maxlen=population)
        self._seen: set[str] = set()

    def _ask(self, n: int) -> list[Candidate]:
        out = []
        for _ in range(n):
            cid = self._new_id_after(out)
            if self._n_asked + len(out) < self.population or not self.population_:
                genome = self._unseen(
                    lambda: MacroGenome.random(self.rng_, self.phases, self.nodes)
                )
                out.append(Candidate(cid, genome, None, len(self.history_)))
                continue
            parent = self._tournament()
            genome = self._unseen(lambda p=parent: self._mutate_one(p.genome))
            out.append(Candidate(cid, genome, parent.id, len(self.history_)))
        return out

    def _tell(self, candidates: list[Candidate], objectives: np.ndarray) -> None:
        for c, row in zip(candidates, objectives, strict=True):
            self.population_.append((c, row))  # the oldest member ages out

    def _new_id_after(self, batch: list[Candidate]) -> str:
        return f"c{self._n_asked + len(batch) + 1:04d}"

    def _tournament(self) -> Candidate:
        members = list(self.population_)
        k = min(self.sample, len(members))
        picks = self.rng_.choice(len(members), size=k, replace=False)
        best = min(picks, key=lambda i: tuple(members[i][1]))
        return members[best][0]

    def _mutate_one(self, genome: MacroGenome) -> MacroGenome:
        bits = list(genome.bits)
        i = int(self.rng_.integers(len(bits)))
        bits[i] ^= 1
        return MacroGenome(genome.phases, genome.nodes, tuple(bits))

    def _unseen(self, draw, tries: int = 20) -> MacroGenome:
        """A draw whose key was not proposed before (the last draw after ``tries``)."""
        for _ in range(tries):
            genome = draw()
            if genome.key() not in self._seen:
                break
        self._seen.add(genome.key())
        return genome


def make_strategy(
    name: str,
    *,
    population: int,
    sample: int = 3,
    phases: int = 3,
    nodes: int = 4,
    n_objectives: int = 2,
    seed: int = 0,
) -> SearchStrategy:
    """Build ``"nsga2"`` or ``"regularized-evolution"``."""
    if name == "nsga2":
        return NSGA2Strategy(population, phases, nodes, n_objectives, seed)
    if name == "regularized-evolution":
        return RegularizedEvolution(population, sample, phases, nodes, n_objectives, seed)
    raise ValueError(f"strategy: unknown {name!r}; allowed: nsga2, regularized-evolution")


def pareto_indices(objectives: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Indices of the non-dominated rows (minimisation), by pymoo's non-dominated sorting."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    f = np.asarray(objectives, dtype=float)
    if f.size == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(NonDominatedSorting().do(f, only_non_dominated_front=True), dtype=int)


def hypervolume(
    objectives: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]
) -> float:
    """Hypervolume (pymoo ``HV``) dominated by ``objectives`` up to a fixed ``reference``.

    Rows not strictly better than the reference in every objective contribute nothing.
    """
    from pymoo.indicators.hv import HV

    f = np.asarray(objectives, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    f = f[(f < ref).all(axis=1)]
    if len(f) == 0:
        return 0.0
    return float(HV(ref_point=ref)(f))
