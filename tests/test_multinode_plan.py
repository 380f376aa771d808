"""N-node plans: the same split on every node, trainer ranks numbered globally."""

import json
from pathlib import Path

import pytest

from streamal import cli
from streamal.cluster import sites
from streamal.cluster.plan import NodePlan, WorldRank, cpu_ranges, plan_for
from streamal.config import SiteConfig
from streamal.errors import ConfigError
from tests.test_cli import streamal

ROOT = Path(__file__).resolve().parents[1]

PAPER_BINDING = [("polaris", 8, 24), ("perlmutter", 16, 56)]


def _plan_json(capsys, *argv: str) -> dict:
    assert cli.main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _check_world(out: dict, site: str, per_domain: int, n_sim: int, nodes: int) -> None:
    assert out["site"] == site and out["nodes"] == nodes
    assert len(out["sim_cores"]) == n_sim
    assert out["trainer_ranks"] == [
        {"rank": k, "cores": [per_domain * k, per_domain * k + 1], "gpu": 3 - k} for k in range(4)
    ]
    assert out["world"] == [
        {
            "rank": 4 * n + k,
            "node": n,
            "local_rank": k,
            "cores": [per_domain * k, per_domain * k + 1],
            "gpu": 3 - k,
        }
        for n in range(nodes)
        for k in range(4)
    ]
    plan = NodePlan.from_json(out)
    assert plan.world_size == 4 * nodes
    assert plan.total_sim_cores == n_sim * nodes


def test_python_m_streamal_plan_polaris_4_nodes():
    res = streamal("plan", "--site", "polaris", "--nodes", "4", "--json", check=True)
    out = json.loads(res.stdout)
    _check_world(out, "polaris", 8, 24, 4)
    assert len(out["world"]) == 16 and NodePlan.from_json(out).total_sim_cores == 96


@pytest.mark.parametrize(("site", "per_domain", "n_sim"), PAPER_BINDING)
def test_four_nodes_repeat_the_paper_binding(capsys, site, per_domain, n_sim):
    _check_world(_plan_json(capsys, "--site", site, "--nodes", "4"), site, per_domain, n_sim, 4)


@pytest.mark.parametrize(("site", "per_domain", "n_sim"), PAPER_BINDING)
def test_one_node_is_the_default(capsys, site, per_domain, n_sim):
    _check_world(_plan_json(capsys, "--site", site), site, per_domain, n_sim, 1)


def test_nodes_default_comes_from_the_config(capsys, tmp_path):
    text = (ROOT / "configs/nas-quickstart.yaml").read_text()
    assert "site: {name: local}" in text
    config = tmp_path / "c.yaml"
    config.write_text(text.replace("site: {name: local}", "site: {name: local, nodes: 3}"))
    out = _plan_json(capsys, str(config))
    assert out["nodes"] == 3 and len(out["world"]) == 3 * len(out["trainer_ranks"])
    assert _plan_json(capsys, str(config), "--nodes", "2")["nodes"] == 2


def test_plan_for_uses_site_nodes():
    plan = plan_for(SiteConfig(name="polaris", account="p", nodes=2))
    assert plan.nodes == 2 and plan.world_size == 8
    assert plan.world[5] == WorldRank(5, 1, 1, (8, 9), 2)


def test_json_without_nodes_or_world_reads_as_one_node():
    old = {
        "site": "polaris",
        "sim_cores": [c for c in range(32) if c % 8 >= 2],
        "trainer_ranks": [{"rank": k, "cores": [8 * k, 8 * k + 1], "gpu": 3 - k} for k in range(4)],
    }
    plan = NodePlan.from_json(old)
    assert plan.nodes == 1
    assert plan == NodePlan.build(sites.get("polaris").topology(), site="polaris")
    assert {k: v for k, v in plan.to_json().items() if k in old} == old
    assert NodePlan.from_json(plan.to_json()) == plan
    four = NodePlan.build(sites.get("polaris").topology(), site="polaris", nodes=4)
    assert NodePlan.from_json(json.loads(json.dumps(four.to_json()))) == four


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_bad_nodes_exit_2_with_one_line(bad):
    res = streamal("plan", "--site", "polaris", f"--nodes={bad}")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [f"error: --nodes: must be an integer >= 1 (got '{bad}')"]


def test_a_plan_of_zero_nodes_names_the_setting():
    with pytest.raises(ConfigError, match=r"site\.nodes: must be an integer >= 1 \(got 0\)"):
        NodePlan("polaris", (2,), (), nodes=0)


def test_cpu_ranges():
    assert cpu_ranges((2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 26)) == "2-7,10-15,26"
    assert cpu_ranges(()) == "-"


def test_text_table_shows_every_rank(capsys):
    assert cli.main(["plan", "--site", "polaris", "--nodes", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "96 simulator cores, 16 trainer ranks" in lines[0]
    for n in range(4):
        assert f"  node {n}: 2-7,10-15,18-23,26-31 (24)" in lines
    table = lines[lines.index("  rank  node  local  cores  GPU") + 1 :]
    rows = [line.split() for line in table]
    assert rows == [
        [str(4 * n + k), str(n), str(k), f"{8 * k}-{8 * k + 1}", str(3 - k)]
        for n in range(4)
        for k in range(4)
    ]


@pytest.mark.parametrize("nodes", [4, 2, 1])
def test_the_e2_config_is_the_papers_scaling_series(capsys, nodes):
    """configs/diffraction-e2.yaml is E2 on 4 Polaris nodes; ``--set site.nodes`` gives the
    1- and 2-node runs of Table V."""
    e2 = str(ROOT / "configs/diffraction-e2.yaml")
    argv = [e2] if nodes == 4 else [e2, "--set", f"site.nodes={nodes}"]
    _check_world(_plan_json(capsys, *argv), "polaris", 8, 24, nodes)
