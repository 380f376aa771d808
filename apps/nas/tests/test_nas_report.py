"""``streamal report`` on a nas run makes the Pareto plot again from the run directory."""

import json

import pytest

from streamal import plugins


def _rows(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"c{i:04d}",
                "status": "skipped" if i % 4 == 3 else "trained",
                "fitness": 40.0 + 6 * i - 0.4 * i * i,
                "actual_fitness": 38.0 + 5 * i if i % 2 else None,
                "cost": 1e4 * (1 + i) ** 1.5,
                "cost_is_proxy": False,
                "params": 500 + 250 * i,
                "epochs": 3 + i % 3,
            }
        )
    return rows


def _png(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def test_report_hook_regenerates_the_pareto_plot(tmp_path):
    run = tmp_path / "run"
    (run / "report").mkdir(parents=True)
    (run / "candidates.json").write_text(json.dumps(_rows()))
    (run / "summary.json").write_text(json.dumps({"objective": "flops"}))
    written = plugins.load("workflows", "nas").report(run, run / "report")
    assert written == [run / "report" / "pareto.png"]
    w, h = _png(written[0])
    assert 400 <= w <= 2000 and 300 <= h <= 1600


def test_report_of_an_unfinished_search_reads_the_saved_state(tmp_path, monkeypatch):
    from streamal_nas import outputs

    run = tmp_path / "run"
    (run / "nas").mkdir(parents=True)
    rows = [{**r, "cost_is_proxy": True, "session": "abc"} for r in _rows(5)]
    (run / "nas" / "state.json").write_text(json.dumps({"version": 1, "completed": rows}))
    (run / "run.json").write_text(
        json.dumps({"config": {"workflow": {"options": {"objective": "energy"}}}})
    )
    labels = []
    plot = outputs.plot_pareto

    def plot_and_note(records, path, cost_label):
        labels.append(cost_label)
        return plot(records, path, cost_label)

    monkeypatch.setattr(outputs, "plot_pareto", plot_and_note)
    written = outputs.write_report(run, run / "report")
    assert [p.name for p in written] == ["pareto.png"] and written[0].exists()
    assert labels and "proxy" in labels[0]


@pytest.mark.parametrize("name", ["serial", "streaming"])
def test_other_workflows_have_no_report_of_their_own(name, tmp_path):
    assert plugins.load("workflows", name).report(tmp_path, tmp_path) == []


def test_empty_run_writes_nothing(tmp_path):
    assert plugins.load("workflows", "nas").report(tmp_path, tmp_path / "report") == []
