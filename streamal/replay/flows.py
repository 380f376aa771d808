"""The four workflows as discrete-event processes, task for task as ``streamal.workflows``.

Each flow mirrors its workflow's ``run``: the same batches in the same order on the same pools,
the same waits (``await`` → ``yield``), the same overlap (``ensure_future`` → ``spawn``), the
same split rule (:func:`~streamal.workflows.streaming.balanced_fraction` on the replay's own
measured rates) and, for the continuous workflow, the same feeder and retraining rule.

Example::

    from streamal.replay import CostModel, Phase, Resources, Workload, replay

    work = Workload("streaming", (Phase(300, 4), Phase(200, 3)), val=150, test=150, study=300)
    costs = CostModel(sim_sample_s=0.2, train_sample_epoch_s=0.004, sim_slowdown=1.3)
    result = replay(work, Resources(sim_workers=4), costs)
    result.makespan, result.spans()["S'0"]
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from streamal.replay.costs import Costs
from streamal.replay.engine import Engine, Event, Task
from streamal.replay.workload import Resources, Workload
from streamal.runtime.timeline import TaskRecord

Flow = Generator[Event, Any, None]


@dataclass
class ReplayResult:
    """The replayed tasks (as :class:`TaskRecord`) and what the flow decided on the way."""

    workload: Workload
    resources: Resources
    records: list[TaskRecord]
    splits: dict[int, float] = field(default_factory=dict)

    @property
    def makespan(self) -> float:
        """First task start to last task end (as ``bench/_runs.makespan`` measures a run)."""
        timed = [r for r in self.records if r.started is not None and r.ended is not None]
        return max(r.ended for r in timed) - min(r.started for r in timed) if timed else 0.0

    def spans(self) -> dict[str, tuple[float, float]]:
        """Each stage's (first start, last end), seconds since the first task started."""
        return stage_spans(self.records)


def stage_spans(records: list[TaskRecord]) -> dict[str, tuple[float, float]]:
    """Each stage's (first start, last end) in ``records``, relative to the first start."""
    timed = [r for r in records if r.started is not None and r.ended is not None]
    if not timed:
        return {}
    t0 = min(r.started for r in timed)
    out: dict[str, tuple[float, float]] = {}
    for r in timed:
        s, e = out.get(r.stage, (r.started - t0, r.ended - t0))
        out[r.stage] = (min(s, r.started - t0), max(e, r.ended - t0))
    return out


class Replay:
    """One replay of ``workload`` on ``resources`` at ``costs``; :meth:`run` once."""

    def __init__(self, workload: Workload, resources: Resources, costs: Costs) -> None:
        self.w, self.res, self.costs = workload, resources, costs
        self.engine = Engine(
            {"sim": resources.total_sim_workers, "train": 1},
            slowdown=costs.slowdown,
            warmup=costs.warmup,
            dispatch_s=costs.dispatch_s,
            return_s=costs.return_s,
            release_s=costs.release_s,
        )
        self.stored: dict[int, int] = {}  # training rows stored, per phase label
        self.splits: dict[int, float] = {}

    def run(self) -> ReplayResult:
        self.engine.spawn(FLOWS[self.w.workflow](self))
        records = self.engine.run()
        return ReplayResult(self.w, self.res, records, dict(self.splits))

    # -- tasks, as the workflows' helpers submit them ---------------------------------------
    def simulate(
        self, key: str, stage: str, samples: int, *, phase: int, split: str, origin: str = "policy"
    ) -> Event:
        """A batch on the sim pool: one task per chunk, or one task over the pool; ``origin``:
        ``uniform``, ``sweep`` or ``policy`` (who drew the parameters)."""
        chunk = self.w.chunk_size
        if chunk is None:
            sizes, width, cores = [samples], self.res.total_sim_workers, self.res.sim_cores
        else:
            sizes = [min(chunk, samples - s) for s in range(0, samples, chunk)]
            width, cores = 1, self.res.cores_per_sim_worker
        tasks = []
        for i, n in enumerate(s for s in sizes if s > 0):
            work = self.costs.sim_work(stage, n, cores, origin)
            info = {"samples": n, "split": split, "origin": origin}
            task = self.engine.submit(
                "sim", f"{key}/{i}", stage, "sim", work, width=width, info=info
            )
            if split == "train":
                task.on_done(lambda t, p=phase: self._store(p, t.info["samples"]))
            tasks.append(task)
        return self.engine.all_of(tasks)

    def _store(self, phase: int, n: int) -> None:
        self.stored[phase] = self.stored.get(phase, 0) + n

    def rows(self, max_phase: int | None = None) -> int:
        """Training rows stored so far with phase ≤ ``max_phase``."""
        return sum(n for p, n in self.stored.items() if max_phase is None or p <= max_phase)

    def train(self, stage: str, samples: int, epochs: int) -> Task:
        work = self.costs.train_work(stage, samples, epochs, self.res.ranks, self.res.train_nodes)
        info = {"samples": samples, "epochs": epochs}
        return self.engine.submit("train", stage, stage, "train", work, info=info)

    def al(self, stage: str) -> Event:
        """The AL task on the study set (none without a study set)."""
        if not self.w.study:
            return self.engine.all_of([])
        work = self.costs.al_work(stage, self.w.study)
        return self.engine.submit("train", stage, stage, "al", work, info={"samples": self.w.study})

    def uniform_sets(self, stage: str = "S0") -> list[Event]:
        return [
            self.simulate(f"p0/{split}", stage, n, phase=0, split=split, origin="uniform")
            for split, n in (("train", self.w.train0), ("val", self.w.val), ("test", self.w.test))
        ]

    def study(self, stage: str) -> Event:
        return self.simulate(
            "p0/study", stage, self.w.study, phase=0, split="study", origin="sweep"
        )

    def done_records(self) -> list[TaskRecord]:
        return [t.record(self.costs.return_s) for t in self.engine.tasks if t.ended is not None]

    def training_entry(self, task: Task) -> dict[str, Any]:
        """What ``metrics.json`` would hold for a finished training (the driver's wall time)."""
        wall = task.ended + self.costs.return_s - task.submitted
        return {"wall_s": wall, "n_train": task.info["samples"], "epochs": task.info["epochs"]}


# -- the workflows -----------------------------------------------------------------------------
def baseline(r: Replay) -> Flow:
    yield r.engine.all_of(r.uniform_sets())
    yield r.train("T0", r.rows(0), r.w.phases[0].epochs)


def serial(r: Replay) -> Flow:
    yield r.engine.all_of([*r.uniform_sets(), r.study("S0")])
    yield r.train("T0", r.rows(0), r.w.phases[0].epochs)
    for k in range(1, len(r.w.phases)):
        yield r.al(f"AL{k}")
        yield r.simulate(f"p{k}/train", f"S{k}", r.w.phases[k].samples, phase=k, split="train")
        yield r.train(f"T{k}", r.rows(k), r.w.phases[k].epochs)


def split_for(r: Replay, k: int, n: int, previous: Task, sim_stage: str) -> float:
    """:meth:`StreamingWorkflow.split_for`, measuring the replay's own timeline."""
    from streamal.workflows.streaming import balanced_fraction, measured_rates

    phases, recorded = r.w.phases, dict(r.w.recorded_splits)
    if k in recorded:
        return recorded[k]
    if k == len(phases) - 1:
        return 1.0
    if r.w.split_fraction != "auto":
        return float(r.w.split_fraction)
    rate, cost = measured_rates(r.done_records(), sim_stage, r.training_entry(previous))
    return balanced_fraction(n, r.rows(k), rate, cost, phases[k].epochs, r.w.min_fraction)


def streaming(r: Replay) -> Flow:
    yield r.engine.all_of(r.uniform_sets())
    study = r.study("S'0")
    result = yield r.train("T0", r.rows(0), r.w.phases[0].epochs)
    yield study
    sim_stage = "S0"
    for k in range(1, len(r.w.phases)):
        n = r.w.phases[k].samples
        yield r.al(f"AL{k}")
        f = r.splits[k] = split_for(r, k, n, result, sim_stage)
        cut = round(f * n)
        yield r.simulate(f"p{k}/train", f"S{k}", cut, phase=k, split="train")
        sim_stage = f"S{k}"
        later = None
        if cut < n:
            later = r.simulate(f"p{k}/stream", f"S'{k}", n - cut, phase=k + 1, split="train")
        result = yield r.train(f"T{k}", r.rows(k), r.w.phases[k].epochs)
        if later is not None:
            yield later


def continuous(r: Replay) -> Flow:
    """:class:`~streamal.workflows.continuous.ContinuousWorkflow` (no time budget)."""
    import numpy as np

    from streamal.train.spec import scheduled_epochs

    w, engine = r.w, r.engine
    yield engine.all_of(r.uniform_sets())
    study = r.study("S'0")
    n0 = r.rows(0)
    sizes = np.cumsum([n0] + [p.samples for p in w.phases[1:]])
    schedule = [p.epochs for p in w.phases]
    min_new = w.min_new_samples or w.chunk_size
    budget = sum(p.samples for p in w.phases[1:]) or w.train0
    state = {"generation": 0, "done": False, "all_submitted": False, "arrived": engine.signal()}
    feeder_done = engine.signal()

    def arrived() -> None:
        state["arrived"].fire()
        state["arrived"] = engine.signal()

    def feed() -> Flow:
        chunk, in_flight_max = w.chunk_size, w.chunks_in_flight or 2 * r.res.total_sim_workers
        pending: list[Event] = []
        stored, i = 0, 0
        yield study
        while stored + chunk * len(pending) < budget:
            while len(pending) < in_flight_max and stored + chunk * len(pending) < budget:
                n = min(chunk, budget - stored - chunk * len(pending))
                gen = state["generation"]
                origin = "policy" if gen else "uniform"  # uniform until the first model
                pending.append(
                    r.simulate(
                        f"cont/{i}", f"C{gen}", n, phase=gen + 1, split="train", origin=origin
                    )
                )
                i += 1
            if stored + chunk * len(pending) >= budget:
                state["all_submitted"] = True
            yield engine.any_of(pending)
            done = [e for e in pending if e.done]
            pending = [e for e in pending if not e.done]
            stored += sum(t.info["samples"] for e in done for t in e.value)
            arrived()
        state["all_submitted"] = True
        if pending:
            yield engine.all_of(pending)
        state["done"] = True
        feeder_done.fire()
        arrived()

    def everything_trained(trained_on: int) -> bool:
        return state["done"] and r.rows() <= trained_on

    engine.spawn(feed())
    result = yield r.train("T0", r.rows(0), w.phases[0].epochs)
    yield study
    k, trained_on = 0, result.info["samples"]
    while True:
        k += 1
        while not state["done"]:  # _wait_for_data
            if not state["all_submitted"] and r.rows() >= trained_on + min_new:
                break
            yield state["arrived"]
        if everything_trained(trained_on):
            break
        if not state["done"]:  # no chunk is drawn after the feeder ends
            yield r.al(f"AL{k}")
            state["generation"] = k
            if everything_trained(trained_on):
                break
        finished, n_train = state["done"], r.rows()
        epochs = scheduled_epochs(n_train, sizes, schedule, w.min_epochs)
        training = r.train(f"T{k}", n_train, epochs)
        if not finished:  # obsolete once the last chunk lands: stopped after its epoch
            epoch = r.costs.train_work(f"T{k}", n_train, 1, r.res.ranks, r.res.train_nodes)
            epoch -= r.costs.train_work(f"T{k}", n_train, 0, r.res.ranks, r.res.train_nodes)
            feeder_done.on_done(lambda _, t=training, left=epoch: engine.stop(t, left))
        result = yield training
        trained_on = n_train
        if finished:
            break


FLOWS: dict[str, Callable[[Replay], Flow]] = {
    "baseline": baseline,
    "serial": serial,
    "streaming": streaming,
    "continuous": continuous,
}


def replay(workload: Workload, resources: Resources, costs: Costs) -> ReplayResult:
    """Replay ``workload`` on ``resources`` at ``costs``: every task's start and end."""
    return Replay(workload, resources, costs).run()
