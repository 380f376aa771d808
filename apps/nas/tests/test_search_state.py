"""Resume state of the nas workflow: torn files, pruning half-done work, the session fence."""

import json
from pathlib import Path

import pytest

from streamal_nas.prediction import (
    Decision,
    append_record,
    decision_path,
    poll_decision,
    read_all_decisions,
    read_decisions,
    read_records,
    run_prediction_engine,
    write_decisions,
)
from streamal_nas.search_state import SearchState, SearchStateError, compact_records

CONFIG = {"n_predictions": 3, "tolerance": 1.5, "epochs_per_iteration": 0.5, "e_pred": 4.0}


def _row(cid: str, status: str = "trained") -> dict:
    return {"id": cid, "genome": f"g-{cid}", "status": status, "fitness": 90.0, "cost": 1.0}


def _decision(cid: str) -> Decision:
    return Decision(cid, 2.0, "converged", 91.0, 91.0, 90.5, True, "exp_base", (1.0, 2.0, 3.0))


def _run_dir(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    records, decisions, ckpts = tmp_path / "records.jsonl", tmp_path / "decisions", tmp_path / "ck"
    decisions.mkdir()
    ckpts.mkdir()
    records.touch()
    return tmp_path, records, decisions, ckpts


def test_torn_state_file_falls_back_to_the_version_before(tmp_path):
    state = SearchState.open(tmp_path, "fp", window=2)
    state.add(_row("c0001"))
    state.add(_row("c0002"))
    (tmp_path / "nas" / "state.json").write_bytes(b"")  # torn: 0 bytes
    again = SearchState.open(tmp_path, "fp", window=5)
    assert list(again.completed) == ["c0001"]  # state.prev.json: one evaluation behind
    assert again.window == 2  # the window the search started with
    assert any("state.prev.json" in n for n in again.notes)

    (tmp_path / "nas" / "state.prev.json").write_text('{"completed": [')  # torn as well
    (tmp_path / "nas" / "state.json").write_bytes(b"")
    fresh = SearchState.open(tmp_path, "fp", window=3)
    assert fresh.completed == {} and fresh.window == 3


def test_state_of_another_config_is_refused(tmp_path):
    SearchState.open(tmp_path, "fp", window=2).add(_row("c0001"))
    with pytest.raises(SearchStateError, match="another|config"):
        SearchState.open(tmp_path, "other", window=2)


def test_torn_decision_file_reads_as_undecided_and_the_engine_rewrites_it(tmp_path):
    run, records, decisions, _ = _run_dir(tmp_path)
    path = decision_path(decisions, "c0001")
    path.write_bytes(b"")
    assert read_decisions(path) == {}
    assert poll_decision(path, "c0001") is None
    assert read_all_decisions(decisions) == {}
    state = SearchState.open(run, "fp", window=2)
    fence = state.fence()
    for i, acc in enumerate([40.0, 60.0, 70.0, 75.0, 77.0, 78.0, 78.5, 78.8], start=1):
        append_record(records, "c0001", i * 0.5, acc, session=fence.session)
    out = run_prediction_engine(str(records), str(decisions), CONFIG, 0.01, 0.05, fence)
    assert "c0001" in out["decisions"]
    assert poll_decision(path, "c0001", fence.session) is not None


def test_prune_removes_the_half_done_work_of_a_killed_session(tmp_path):
    run, records, decisions, ckpts = _run_dir(tmp_path)
    old = SearchState.open(run, "fp", window=2)
    for cid in ("c0001", "c0002"):  # c0001 completed, c0002 was in flight at the kill
        for e in (0.5, 1.0):
            append_record(records, cid, e, 50.0, session=old.session)
        write_decisions({cid: _decision(cid)}, decision_path(decisions, cid), old.session)
        (ckpts / f"{cid}.pt").write_bytes(b"weights")
    old.add(_row("c0001"))
    append_record(records, "c0001", 0.5, 50.0, session=old.session)  # a duplicate line
    with records.open("a") as fh:
        fh.write('{"candidate": "c0002", "epo')  # torn by the kill
    (ckpts / ".c0002.pt.123.tmp").write_bytes(b"half")
    (decisions / "c0003.json").write_bytes(b"")

    new = SearchState.open(run, "fp", window=2)
    assert not old.fence().holds() and new.fence().holds()
    new.prune(records, decisions, ckpts)
    assert list(new.completed) == ["c0001"]
    assert read_records(records) == {"c0001": [(0.5, 50.0), (1.0, 50.0)]}
    assert records.read_text().endswith("\n")
    assert sorted(p.name for p in decisions.iterdir()) == ["c0001.json"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["c0001.pt"]
    # a record or decision left by a task of the killed session is ignored by the new one
    append_record(records, "c0002", 0.5, 10.0, session=old.session)
    assert read_records(records, new.session) == {}
    assert poll_decision(decision_path(decisions, "c0001"), "c0001", new.session) is None


def test_trained_row_without_its_checkpoint_is_evaluated_again(tmp_path):
    run, records, decisions, ckpts = _run_dir(tmp_path)
    old = SearchState.open(run, "fp", window=2)
    old.add(_row("c0001"))
    old.add(_row("c0002", status="skipped"))  # skipped: no checkpoint needed
    new = SearchState.open(run, "fp", window=2)
    new.prune(records, decisions, ckpts)
    assert list(new.completed) == ["c0002"]
    saved = json.loads((run / "nas" / "state.json").read_text())
    assert [r["id"] for r in saved["completed"]] == ["c0002"]


def test_compact_records_keeps_each_owner_session_once(tmp_path):
    path = tmp_path / "r.jsonl"
    for cid, e, s in [("a", 0.5, "s1"), ("a", 0.5, "s1"), ("a", 0.5, "s2"), ("b", 0.5, "s2")]:
        append_record(path, cid, e, 1.0, session=s)
    assert compact_records(path, {"a": "s1", "b": "s2"}) == 2
    assert read_records(path) == {"a": [(0.5, 1.0)], "b": [(0.5, 1.0)]}
    assert compact_records(path, {"a": "s1", "b": "s2"}) == 0


# -- the search loop: same candidates whatever finishes first, and after a resume ----------------
def _search(tmp_path, strategy_name, delays_seed, saved=None, budget=14, window=3):
    """Run NasWorkflow._search with fake evaluations that finish in a random order.

    A fake fitness depends on the genome and on the candidates the evaluation was shown
    (``trained``), so a context that depends on timing would change the search.
    """
    import asyncio

    import numpy as np

    from streamal_nas.strategies import make_strategy
    from streamal_nas.workflow import NasWorkflow

    rng = np.random.default_rng(delays_seed)
    wf = NasWorkflow.__new__(NasWorkflow)
    wf.budget, wf.reused, wf.trained, wf.rows = budget, 0, {}, []
    wf.ckpt_dir = tmp_path / "ck"
    wf.state = SearchState.open(tmp_path, "fp", window=window)
    evaluated = []

    async def evaluate(c, trained):
        evaluated.append(c.id)
        await asyncio.sleep(float(rng.uniform(0, 0.02)))
        bits = sum(c.genome.bits)
        fitness = 50.0 + bits + 0.01 * len(trained) + 0.001 * sum(int(k[1:]) for k in trained)
        skipped = bits % 5 == 0
        return {
            "id": c.id,
            "genome": c.genome.key(),
            "status": "skipped" if skipped else "trained",
            "fitness": fitness,
            "cost": float(bits),
            "energy_j": None,
        }

    wf._evaluate = evaluate
    if saved:
        for row in saved:
            wf.state.add(row)
    strategy = make_strategy(strategy_name, population=4, sample=2, phases=2, nodes=3, seed=5)
    asyncio.run(wf._search(strategy))
    rows = [{k: v for k, v in r.items() if k != "session"} for r in wf.rows]
    return rows, evaluated, wf.reused


@pytest.mark.parametrize("strategy", ["nsga2", "regularized-evolution"])
def test_search_is_the_same_whatever_finishes_first_and_after_a_resume(tmp_path, strategy):
    reference, evaluated, _ = _search(tmp_path / "a", strategy, delays_seed=0)
    assert [r["id"] for r in reference] == [f"c{i:04d}" for i in range(1, 15)]
    assert sorted(evaluated) == [r["id"] for r in reference]
    for seed in (1, 2):
        assert _search(tmp_path / f"b{seed}", strategy, delays_seed=seed)[0] == reference
    # a killed session saved some completed evaluations, not in ask order
    saved = [reference[i] for i in (1, 0, 2, 4, 6)]
    rows, evaluated, reused = _search(tmp_path / "c", strategy, delays_seed=3, saved=saved)
    assert rows == reference
    assert reused == len(saved)
    assert sorted(evaluated) == sorted(r["id"] for r in reference if r not in saved)


def test_resume_refuses_a_state_of_another_search(tmp_path):
    reference, _, _ = _search(tmp_path / "a", "nsga2", delays_seed=0)
    wrong = dict(reference[0], genome="macro:2x3:other")
    with pytest.raises(SearchStateError, match="c0001"):
        _search(tmp_path / "b", "nsga2", delays_seed=0, saved=[wrong])


# -- the trainer: the same result however late the engine's decision arrives -------------------
FAST = {"n_predictions": 3, "tolerance": 3.0, "epochs_per_iteration": 0.5, "e_pred": 4.0}


def _train(tmp_path, name, lag_epochs=None, decision=None):
    """Train a small candidate for at most 4 epochs; a thread writes ``decision`` once the
    trainer has recorded ``decision.stop_epoch + lag_epochs`` (``lag_epochs=None``: never)."""
    import threading

    from streamal_nas.evaluate import train_candidate
    from streamal_nas.genome import MacroGenome, genome_to_dict

    decisions = tmp_path / f"{name}-decisions"
    decisions.mkdir()
    records = tmp_path / f"{name}.jsonl"
    spec = {
        "candidate": "c0001",
        "genome": genome_to_dict(MacroGenome(1, 4, (1, 1, 0, 1, 0, 1, 0))),
        "max_epochs": 4,
        "epochs_per_iteration": 0.5,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "channels": 8,
        "seed": 13,
        "data_seed": 0,
        "records_path": str(records),
        "decisions_dir": str(decisions),
        "prediction": FAST,
        "checkpoint": str(tmp_path / f"{name}.pt"),
        "provider": None,
        "provider_checkpoint": None,
        "transfer_method": "lcs",
        "gpu": False,
        "fence": None,
    }
    stop = threading.Event()

    def engine_with_lag():
        while not stop.is_set():
            seen = read_records(records).get("c0001", [])
            if seen and seen[-1][0] >= decision.stop_epoch + lag_epochs:
                write_decisions({"c0001": decision}, decision_path(decisions, "c0001"))
                return
            stop.wait(0.002)

    thread = threading.Thread(target=engine_with_lag, daemon=True)
    if lag_epochs is not None:
        thread.start()
    try:
        return train_candidate(spec)
    finally:
        stop.set()


def test_trainer_result_does_not_depend_on_when_the_decision_arrives(tmp_path, monkeypatch):
    import os

    import torch

    from streamal.train.checkpoint import load_checkpoint

    threads = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one thread, as a worker
    try:
        never = _train(tmp_path, "never")  # no engine: the trainer replays it on its curve
        decision = Decision(
            "c0001",
            never["stop_epoch"],
            "converged",
            never["fitness"],
            never["predicted_fitness"],
            never["actual_fitness"],
            True,
        )
        assert never["epochs"] == 4.0 and decision.stop_epoch < 3.0  # would stop early
        prompt = _train(tmp_path, "prompt", 0.0, decision)
        late = _train(tmp_path, "late", 0.5, decision)
    finally:
        torch.set_num_threads(threads)
    assert late["epochs"] > decision.stop_epoch  # read after more training
    keys = ("stop_epoch", "fitness", "predicted_fitness", "actual_fitness")
    for result in (prompt, late):
        assert {k: result[k] for k in keys} == {k: never[k] for k in keys}
    weights = [load_checkpoint(tmp_path / f"{n}.pt")["model"] for n in ("never", "prompt", "late")]
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])
