"""Splitting a failing chunk: few tasks, good samples kept, bad ones recorded, resumable.

These run :func:`simulate_batch` against an in-process scheduler that counts tasks (no Parsl),
so the cost of a deterministic failure is measured exactly and an interruption can be placed
after every task.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from streamal.data.label import BatchLabel
from streamal.data.store import SampleStore
from streamal.runtime.progress import RunProgress
from streamal.runtime.scheduler import TaskFailed
from streamal.simulation.batches import simulate_batch
from tests.helpers import peaks_space

SIM = "tests.helpers:PeaksSimulator"
LABEL = BatchLabel(0, "train", "uniform")


class Interrupted(BaseException):
    """The driver died (a BaseException, like the CancelledError a signal brings)."""


class CountingScheduler:
    """Runs each task in this process; records ``(name, samples)`` per attempt; dies (raises
    :class:`Interrupted` for every later task) after ``stop_after`` tasks."""

    def __init__(self, run_dir, retries: int = 2, stop_after: int | None = None) -> None:
        self.run_dir = run_dir
        self.retries = retries
        self.stop_after = stop_after
        self.tasks: list[tuple[str, int]] = []
        self.progress = RunProgress(("sim",), enabled=False)

    async def submit(  # noqa: ANN201
        self, pool, fn, *args, name, retries, info, stage="", retry_lost_only=False, **kwargs
    ):  # noqa: ANN001
        # every failure here is the task's own: with retry_lost_only, none is retried
        attempts = 1 if retry_lost_only else 1 + (self.retries if retries is None else retries)
        for _ in range(attempts):
            if self.stop_after is not None and len(self.tasks) >= self.stop_after:
                raise Interrupted
            self.tasks.append((name, info["samples"]))
            await asyncio.sleep(0)  # let the other pieces run in between, as in a real run
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                error = f"{type(exc).__name__}: {exc}"
        raise TaskFailed(name, attempts, error)


def _batch(n: int, bad: list[int]):
    """``n`` samples; those at ``bad`` have a centre above 0.75 (the simulator fails there)."""
    rng = np.random.default_rng(0)
    classes = np.zeros(n, dtype=np.int64)
    params = np.column_stack([rng.uniform(0.2, 0.7, n), np.full(n, 0.02)])
    params[bad, 0] = 0.78
    return classes, params


def _store(path):
    space = peaks_space()
    return SampleStore(
        path,
        param_names=space.param_names,
        class_names=space.class_names,
        input_shape=(64,),
    )


def _simulate(sched, store, classes, params, chunk_size):
    return asyncio.run(
        simulate_batch(
            sched,
            store,
            simulator=SIM,
            options={"fail_above": 0.75},
            key="p0/train",
            classes=classes,
            params=params,
            label=LABEL,
            chunk_size=chunk_size,
            stage="S0",
        )
    )


def _check_complete(store, params, bad):
    """Every good sample stored exactly once, every bad one recorded once, with its error."""
    stored = store.select().params()[:, 0]
    good = np.delete(params[:, 0], bad)
    assert sorted(stored.tolist()) == sorted(good.tolist())
    failures = store.failures()
    assert sorted(f["params"][0] for f in failures) == [0.78] * len(bad)
    assert all("centre above fail_above" in f["error"] for f in failures)


def test_one_bad_sample_in_a_chunk_of_64_costs_few_tasks_and_samples(tmp_path):
    classes, params = _batch(64, bad=[37])
    sched = CountingScheduler(tmp_path)
    with _store(tmp_path / "s.h5") as store:
        report = _simulate(sched, store, classes, params, 64)
        _check_complete(store, params, [37])
        assert (store.failures()[0]["key"]) == "p0/train/0/37"
    assert (report.stored, report.failed) == (63, 1)
    # the chunk once; 8 pieces of 8; the bad piece in 3 (2, 3, 3); the bad 3 in 2 (1, 2)
    assert [n for _, n in sched.tasks] == [64] + [8] * 8 + [2, 3, 3] + [1, 2]
    # 139 samples simulated for 64 (before: 256, every sample at least three times)
    assert sum(n for _, n in sched.tasks) == 139


def test_a_failing_chunk_is_never_retried_whole(tmp_path):
    classes, params = _batch(8, bad=[0])
    sched = CountingScheduler(tmp_path, retries=2)
    with _store(tmp_path / "s.h5") as store:
        _simulate(sched, store, classes, params, 8)
        _check_complete(store, params, [0])
    assert [n for _, n in sched.tasks].count(8) == 1


@pytest.mark.parametrize("chunk_size", [16, 5])
def test_an_interruption_after_any_task_resumes_without_duplicates(tmp_path, chunk_size):
    classes, params = _batch(20, bad=[3, 4, 17])
    full = CountingScheduler(tmp_path)
    with _store(tmp_path / "full.h5") as store:
        _simulate(full, store, classes, params, chunk_size)
    for stop in range(len(full.tasks)):
        path = tmp_path / f"stop-{stop}.h5"
        dying = CountingScheduler(tmp_path, stop_after=stop)
        with _store(path) as store, pytest.raises(Interrupted):
            _simulate(dying, store, classes, params, chunk_size)
        resumed = CountingScheduler(tmp_path)
        with _store(path) as store:
            _simulate(resumed, store, classes, params, chunk_size)
            _check_complete(store, params, [3, 4, 17])
        assert len(resumed.tasks) <= len(full.tasks), f"resuming after task {stop} redid work"


def test_single_sample_keys_of_the_old_split_are_read_on_resume(tmp_path):
    """A run interrupted while the old code split chunk 0 into one task per sample."""
    classes, params = _batch(8, bad=[5])
    with _store(tmp_path / "s.h5") as store:
        for j in (0, 1, 2):  # old keys: key/i/j
            out = np.zeros((1, 64), np.float32)
            store.append(
                key=f"p0/train/0/{j}",
                classes=classes[j : j + 1],
                params=params[j : j + 1],
                inputs=out,
                label=LABEL,
            )
        sched = CountingScheduler(tmp_path)
        report = _simulate(sched, store, classes, params, 8)
        _check_complete(store, params, [5])
    assert report.skipped == 3 and report.stored == 4
    assert all(name != "p0/train/0" for name, _ in sched.tasks), "the split chunk ran whole"
    assert "p0/train/0/0-4" not in [name for name, _ in sched.tasks]
