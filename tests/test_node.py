import pytest

from streamal.cluster import sites
from streamal.cluster.plan import NodePlan
from streamal.cluster.topology import Topology, parse_cpulist
from streamal.errors import ConfigError


def test_parse_cpulist():
    assert parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]


@pytest.mark.parametrize(
    ("site", "per_domain", "n_sim"), [("polaris", 8, 24), ("perlmutter", 16, 56)]
)
def test_site_profiles_reproduce_the_paper_binding(site, per_domain, n_sim):
    plan = NodePlan.build(sites.get(site).topology(), site=site, trainer_ranks=4)
    for k, rank in enumerate(plan.trainer_ranks):
        assert rank.rank == k
        assert rank.cores == (per_domain * k, per_domain * k + 1)
        assert rank.gpu == 3 - k
    assert len(plan.sim_cores) == n_sim
    assert set(plan.sim_cores).isdisjoint(plan.trainer_cores)
    assert sorted(plan.sim_cores + plan.trainer_cores) == list(range(4 * per_domain))


def test_default_ranks_are_one_per_gpu():
    assert len(NodePlan.build(sites.get("polaris").topology()).trainer_ranks) == 4


def test_cpu_only_ranks_spread_across_domains():
    topo = Topology(tuple(range(8)), ((0, 1, 2, 3), (4, 5, 6, 7)))
    plan = NodePlan.build(topo, trainer_ranks=2, cores_per_rank=2)
    assert [r.cores for r in plan.trainer_ranks] == [(0, 1), (4, 5)]
    assert [r.gpu for r in plan.trainer_ranks] == [None, None]
    assert plan.sim_cores == (2, 3, 6, 7)


def test_small_node_keeps_one_simulator_core_by_default():
    plan = NodePlan.build(Topology((0, 1), ((0, 1),)))
    assert plan.trainer_ranks[0].cores == (0,) and plan.sim_cores == (1,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trainer_ranks": 5}, r"site\.trainer_ranks: 5 ranks but the node has 4 GPUs"),
        ({"cores_per_rank": 9}, r"site\.cores_per_rank: rank 0 needs 9 cores"),
        ({"cores_per_rank": 8}, r"leave no core for the simulator pool"),
        ({"sim_workers": 99}, r"site\.sim_workers: 99 workers but only 24"),
    ],
)
def test_impossible_plans_name_the_setting(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NodePlan.build(sites.get("polaris").topology(), **kwargs)


def test_discover_matches_this_process_affinity():
    import os

    topo = Topology.discover()
    assert list(topo.cores) == sorted(os.sched_getaffinity(0))
    assert sorted(c for d in topo.numa_domains for c in d) == list(topo.cores)


def test_plan_json_round_trip():
    plan = NodePlan.build(sites.get("polaris").topology())
    assert NodePlan.from_json(plan.to_json()) == plan
