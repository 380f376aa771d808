"""The replay model: E1 from Table III, overlap of the parallel groups, the paper's JSON, fits
from a run directory, bad input. No Parsl runs: the paper's tables and synthetic timelines."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import pytest

from streamal.replay import CostModel, Phase, Resources, Workload, flows, paper, replay
from streamal.replay import cli as replay_cli
from streamal.replay.engine import Engine
from streamal.replay.validate import reproduce_e1, reproduce_trace


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="streamal")
    replay_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", *argv])
    return args.func(args)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


SMALL = Workload(
    "streaming",
    (Phase(96, 3), Phase(64, 2), Phase(64, 2), Phase(48, 2)),
    val=48,
    test=48,
    study=48,
    chunk_size=8,
)
COSTS = CostModel(
    sim_sample_s=0.05,
    train_sample_epoch_s=0.004,
    sim_task_s=0.02,
    policy_sample_factor=0.8,
    sim_slowdown=1.3,
    train_start_s=0.5,
    train_epoch_s=0.05,
    train_slowdown=1.1,
    al_sample_s=0.002,
    dispatch_s=0.01,
    return_s=0.005,
)


def test_engine_runs_tasks_fifo_on_free_workers():
    engine = Engine({"sim": 2, "train": 1})

    def flow():
        chunks = [engine.submit("sim", f"c{i}", "S0", "sim", work=1.0) for i in range(4)]
        yield engine.all_of(chunks)
        yield engine.submit("train", "T0", "T0", "train", work=3.0)

    engine.spawn(flow())
    records = engine.run()
    ends = {r.name: r.ended for r in records}
    assert [ends[f"c{i}"] for i in range(4)] == [1.0, 1.0, 2.0, 2.0]
    assert ends["T0"] == pytest.approx(5.0)


def test_e1_totals_from_table_iii_within_2_percent():
    for workflow, v in reproduce_e1().items():
        assert abs(v["error"]) < 0.02, (workflow, v)


def test_streaming_overlaps_s_prime_k_with_t_k():
    for result in (reproduce_trace("streaming"), replay(SMALL, Resources(sim_workers=2), COSTS)):
        spans = result.spans()
        for k in range(3):
            sim, train = spans[f"S'{k}"], spans[f"T{k}"]
            assert overlap(sim, train) > 0.5 * min(sim[1] - sim[0], train[1] - train[0])
            assert spans[f"AL{k + 1}"][0] >= max(sim[1], train[1])  # the next phase waits for both
        assert "S'3" not in spans  # the last phase simulates its whole batch first


def test_serial_runs_one_task_after_another():
    result = replay(SMALL.with_(workflow="serial"), Resources(sim_workers=2), COSTS)
    spans = sorted(result.spans().values())
    assert all(b[0] >= a[1] - 1e-9 for a, b in zip(spans, spans[1:], strict=False))


def test_breaking_the_overlap_changes_the_makespan(monkeypatch):
    """Streaming whose S'_k waits for T_k (no parallel groups) no longer reproduces E1."""

    def serialized(r):
        yield r.engine.all_of(r.uniform_sets())
        yield r.train("T0", r.rows(0), r.w.phases[0].epochs)
        yield r.study("S'0")
        for k in range(1, len(r.w.phases)):
            n = r.w.phases[k].samples
            yield r.al(f"AL{k}")
            cut = round((0.5 if k < len(r.w.phases) - 1 else 1.0) * n)
            yield r.simulate(f"p{k}/train", f"S{k}", cut, phase=k, split="train")
            yield r.train(f"T{k}", r.rows(k), r.w.phases[k].epochs)
            if cut < n:
                yield r.simulate(f"p{k}/stream", f"S'{k}", n - cut, phase=k + 1, split="train")

    overlapped = reproduce_trace("streaming").makespan
    monkeypatch.setitem(flows.FLOWS, "streaming", serialized)
    broken = reproduce_trace("streaming")
    s_prime = sum(ms for k, (ms, _) in paper.TABLE_III["streaming"].items() if "'" in k) / 1000
    assert broken.makespan == pytest.approx(overlapped + s_prime, rel=1e-6)  # S'_k < T_k
    assert broken.makespan / (paper.TABLE_III["streaming"]["Total"][0] / 1000) - 1 > 0.2


def test_split_one_is_slower_than_overlapping_half():
    res = Resources(sim_workers=2)
    whole_first = replay(SMALL.with_(split_fraction=1.0), res, COSTS)
    assert "S'1" not in whole_first.spans()
    assert replay(SMALL, res, COSTS).makespan < whole_first.makespan


def test_paper_json_separates_fitted_and_predicted(capsys):
    assert run_cli("--paper", "--json") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "e1_serial_error",
        "e1_streaming_error",
        "table5_max_makespan_error",
        "table5_max_speedup_error",
    ):
        assert isinstance(out[key], float)
    assert abs(out["e1_serial_error"]) < 0.02 and abs(out["e1_streaming_error"]) < 0.02
    assert {r["gpus"] for r in out["fitted"]["table5_rows"]} == {4}
    assert {r["gpus"] for r in out["predicted"]["rows"]} == {8, 16}
    row = out["predicted"]["rows"][0]
    assert set(row["serial"]) == {"predicted_s", "paper_s", "error"}
    assert set(row["speedup"]) == {"predicted", "paper", "error"}
    worst = max(
        abs(r[w]["error"]) for r in out["predicted"]["rows"] for w in ("serial", "streaming")
    )
    assert out["table5_max_makespan_error"] == pytest.approx(worst, abs=1e-4)
    sources = out["fitted"]["parameters"]["polaris"]["sources"]
    assert sources["ddp_internode_cost"].startswith("assumed")
    assert sources["sim_sample_s"].startswith("fitted: Table V 4-GPU")


def write_run(path, result, workload: Workload, resources: Resources) -> None:
    """A run directory whose timeline is ``result`` (what ``fit`` reads)."""
    path.mkdir()
    config = {
        "simulator": {"name": "x", "chunk_size": workload.chunk_size},
        "train": {"launcher": "auto"},
        "workflow": {
            "name": workload.workflow,
            "options": {"split_fraction": workload.split_fraction},
            "phases": [asdict(p) for p in workload.phases],
        },
    }
    plan = {
        "nodes": 1,
        "sim_cores": list(range(resources.sim_workers)),
        "trainer_ranks": [{"rank": 0, "cores": [99], "gpu": None}],
    }
    (path / "run.json").write_text(json.dumps({"plan": plan, "config": config}))
    (path / "timeline.json").write_text(json.dumps([asdict(r) for r in result.records]))
    trains = [r for r in result.records if r.info["kind"] == "train"]
    phases = []
    for r in trains:  # the mean epoch time a real run reports, slowdown included
        work = COSTS.train_work(r.stage, r.info["samples"], r.info["epochs"], 1, 1)
        stretch = r.duration / work
        epoch = COSTS.train_epoch_s + r.info["samples"] * COSTS.train_sample_epoch_s
        phases.append({"phase": r.stage, "epoch_s_mean": epoch * stretch})
    (path / "metrics.json").write_text(json.dumps({"phases": phases}))


def test_fit_from_a_run_recovers_costs_and_makespan(tmp_path, capsys):
    res = Resources(sim_workers=2)
    measured = replay(SMALL, res, COSTS)
    write_run(tmp_path / "run", measured, SMALL, res)
    assert run_cli(str(tmp_path / "run"), "--json") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["measured_makespan_s"] == pytest.approx(measured.makespan, abs=1e-3)
    assert abs(out["error"]) < 0.02
    costs = out["costs"]
    for name in ("sim_sample_s", "train_sample_epoch_s", "sim_slowdown"):
        assert costs[name] == pytest.approx(getattr(COSTS, name), rel=0.1), name
    assert (tmp_path / "run" / "report" / "replay.png").stat().st_size > 10_000


def test_what_if_from_saved_costs(tmp_path, capsys):
    res = Resources(sim_workers=2)
    write_run(tmp_path / "run", replay(SMALL, res, COSTS), SMALL, res)
    saved = tmp_path / "costs.json"
    assert (
        run_cli(
            str(tmp_path / "run"), "--save-costs", str(saved), "--plot", str(tmp_path / "a.png")
        )
        == 0
    )
    capsys.readouterr()
    assert run_cli("--costs", str(saved), "--workflow", "serial", "--nodes", "2", "--json") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["workflow"] == "serial" and out["nodes"] == 2 and out["predicted_makespan_s"] > 0


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--paper", "somewhere"],
        ["/nonexistent/run"],
        ["--costs", "/nonexistent/costs.json"],
        ["--paper", "--nodes", "2"],
        ["RUN", "--nodes", "0"],
        ["RUN", "--split", "1.5"],
        ["RUN", "--workflow", "parallel"],
        ["--costs", "RUN/run.json"],
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv):
    res = Resources(sim_workers=2)
    write_run(tmp_path / "run", replay(SMALL, res, COSTS), SMALL, res)
    argv = [a.replace("RUN", str(tmp_path / "run")) for a in argv]
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
