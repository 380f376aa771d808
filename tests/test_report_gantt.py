"""Report figures of a large run stay readable and bounded; colours and lanes are stable."""

from __future__ import annotations

import random

import pytest

from streamal.report.figure import MAX_PX
from streamal.report.gantt import (
    gantt_plot,
    pack_intervals,
    plan_lanes,
    stage_colour,
    stage_order,
)
from streamal.report.tables import phase_table, print_table
from streamal.report.utilisation import pool_workers, utilisation, utilisation_plot
from streamal.runtime.timeline import TIMEOUT, TaskRecord

SIM_CORES = (1, 2, 3, 4)


def synthetic_timeline(n_tasks: int = 2000, phases: int = 4, seed: int = 0) -> list[TaskRecord]:
    """A streaming-like run: S0 and S'0, then per phase k: T(k-1), AL(k), S(k), S'(k).

    The sim pool has four single-core workers, the train pool one; a few attempts fail,
    are retried or time out.
    """
    rng = random.Random(seed)
    records: list[TaskRecord] = []
    free = dict.fromkeys(SIM_CORES, 0.0)  # sim core -> when it is free
    per_stage = n_tasks // (2 * phases + 1)
    t_train = 0.0

    def add(pool: str, stage: str, name: str, start: float, length: float, cores, **kw):
        records.append(
            TaskRecord(
                id=len(records) + 1,
                name=name,
                pool=pool,
                stage=stage,
                attempt=kw.pop("attempt", 1),
                submitted=start,
                started=1e9 + start,
                ended=1e9 + start + length,
                returned=1e9 + start + length,
                status=kw.pop("status", "done"),
                worker_cores=list(cores),
                info=kw.pop("info", {}),
            )
        )

    def sim_stage(stage: str, not_before: float) -> float:
        for i in range(per_stage):
            core = min(free, key=free.get)
            start = max(free[core], not_before)
            length = rng.uniform(0.5, 2.0)
            status = "done"
            if i % 97 == 13:
                status = "retried"
            elif i % 211 == 50:
                status = TIMEOUT
            elif i % 307 == 100:
                status = "failed"
            add("sim", stage, f"{stage}/chunk-{i}", start, length, [core], status=status)
            free[core] = start + length
        return max(free.values())

    end = sim_stage("S0", 0.0)
    end = sim_stage("S'0", 0.0)
    for k in range(1, phases + 1):
        length = 40.0 + 5 * k
        add("train", f"T{k - 1}", f"T{k - 1}", max(end, t_train), length, [0])
        t_train = max(end, t_train) + length
        add("train", f"AL{k}", f"AL{k}", t_train, 3.0, [0])
        t_train += 3.0
        end = sim_stage(f"S{k}", t_train)
        sim_stage(f"S'{k}", t_train)
    return records


@pytest.fixture(scope="module")
def big_run():
    return synthetic_timeline()


def _png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def test_large_timeline_figures_stay_within_bounds(big_run, tmp_path):
    assert len(big_run) >= 1900
    gantt = gantt_plot(big_run, tmp_path / "gantt.png")
    plan = {"sim_cores": list(SIM_CORES), "trainer_ranks": [{"rank": 0}], "nodes": 1}
    util = utilisation_plot(big_run, plan, tmp_path / "utilisation.png")
    for path in (gantt, util):
        w, h = _png_size(path)
        assert w <= MAX_PX[0] and h <= MAX_PX[1], (path.name, w, h)
        assert h >= 300


def test_legend_follows_workflow_order_and_marks_failures(big_run, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    order = stage_order(big_run)
    assert order[:6] == ["S0", "S'0", "T0", "AL1", "S1", "S'1"]
    shuffled = list(big_run)
    random.Random(1).shuffle(shuffled)
    assert stage_order(shuffled) == order

    figures = []
    close = plt.close

    def keep(fig=None):
        figures.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    gantt_plot(big_run, tmp_path / "gantt.png")
    ax = figures[-1].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:6] == order[:6]
    assert "failed" in labels and any("timed out" in t for t in labels)
    # a failed attempt's bar is drawn hatched with a black edge and marked with an X
    hatched = [c for c in ax.collections if c.get_hatch() == "xxx"]
    assert hatched
    assert any(line.get_marker() == "X" for line in ax.get_lines())


def test_a_kind_has_the_same_colour_in_every_run():
    a = synthetic_timeline(300, phases=2, seed=1)
    b = [r for r in synthetic_timeline(300, phases=3, seed=2) if r.stage != "S0"]
    colours_a = {s: stage_colour(s) for s in stage_order(a)}
    colours_b = {s: stage_colour(s) for s in stage_order(b)}
    for stage in set(colours_a) & set(colours_b):
        assert colours_a[stage] == colours_b[stage]
    # one hue per kind: the phases of a kind differ only in shade, kinds differ in hue
    assert colours_a["T0"] != colours_a["T1"]
    assert len({stage_colour(s) for s in ("S1", "S'1", "T1", "AL1")}) == 4


def test_concurrent_tasks_never_share_a_lane():
    spans = [(0, 10), (1, 2), (2, 3), (2.5, 4), (10, 11), (0, 1)]
    lanes = pack_intervals(spans)
    for i, (s1, e1) in enumerate(spans):
        for j, (s2, e2) in enumerate(spans):
            if i < j and s1 < e2 and s2 < e1:
                assert lanes[i] != lanes[j], (spans[i], spans[j])
    assert max(lanes) + 1 == 3  # the most spans overlapping at once
    # ten candidate trainings on the same cores at once get ten lanes of their pool
    cands = [
        TaskRecord(i, f"train/c{i}", "train", "train", 1, 0, 5.0 + i, 50.0 + i, 51, "done")
        for i in range(10)
    ]
    lanes, notes = plan_lanes(cands)
    assert len(lanes) == 10 and not notes
    assert all(len(lane.tasks) == 1 for lane in lanes)


def test_many_workers_are_merged_and_said_so(tmp_path):
    records = [
        TaskRecord(i, f"S0/{i}", "sim", "S0", 1, 0, 1.0, 2.0 + i % 3, 3, "done", worker_cores=[i])
        for i in range(300)
    ]
    lanes, notes = plan_lanes(records)
    assert len(lanes) <= 44 and notes and "sim" in notes[0]
    w, h = _png_size(gantt_plot(records, tmp_path / "g.png"))
    assert w <= MAX_PX[0] and h <= MAX_PX[1]


def test_utilisation_skips_waiting_tasks_and_uses_the_plan():
    busy = TaskRecord(1, "S0/0", "sim", "S0", 1, 0, 0.0, 10.0, 10, "done", worker_cores=[1])
    poller = TaskRecord(
        2, "engine", "sim", "predict", 1, 0, 0.0, 10.0, 10, "done", info={"waits": True}
    )
    t, u = utilisation([busy, poller], "sim", 2)
    assert u.max() == pytest.approx(0.5)
    plan = {
        "sim_cores": [4, 5, 6, 7],
        "trainer_ranks": [{"rank": 0}, {"rank": 1}],
        "nodes": 2,
    }
    assert pool_workers(plan) == {"sim": 8, "train": 1}
    assert pool_workers(plan, train_per_rank=True, sim_cores_per_worker=2) == {
        "sim": 4,
        "train": 4,
    }


def test_timing_table_is_not_clipped(big_run, capsys):
    rows = phase_table(big_run)
    print_table(rows)
    err = capsys.readouterr().err
    assert "busy (s)" in err and "S'4" in err
    assert "…" not in err
