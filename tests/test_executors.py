import pytest
from parsl.executors import HighThroughputExecutor
from parsl.launchers import MpiExecLauncher, SrunLauncher
from parsl.providers import LocalProvider, PBSProProvider, SlurmProvider

from streamal.cluster import sites
from streamal.cluster.parsl_config import affinity_list, build_parsl_config
from streamal.cluster.plan import NodePlan
from streamal.config import SchedulerConfig, SiteConfig


def _build(tmp_path, **site):
    cfg = SiteConfig(**site)
    plan = NodePlan.build(sites.get(cfg.name).topology(), site=cfg.name)
    return plan, build_parsl_config(plan, cfg, SchedulerConfig(), tmp_path)


def _pools(config):
    pools = {e.label: e for e in config.executors}
    assert set(pools) == {"sim", "train"}
    assert all(isinstance(e, HighThroughputExecutor) for e in pools.values())
    return pools["sim"], pools["train"]


def test_affinity_list_format():
    assert affinity_list([(2,), (3,)]) == "list:2:3"
    assert affinity_list([(0, 1, 8, 9)]) == "list:0,1,8,9"


def test_heartbeat_threshold_reaches_both_pools(tmp_path):
    plan, config = _build(tmp_path)
    assert {(e.heartbeat_threshold, e.heartbeat_period) for e in config.executors} == {(30, 5)}
    short = SchedulerConfig(heartbeat_threshold_s=10)
    config = build_parsl_config(plan, SiteConfig(), short, tmp_path)
    assert {(e.heartbeat_threshold, e.heartbeat_period) for e in config.executors} == {(10, 2)}


def test_local_site(tmp_path):
    plan, config = _build(tmp_path)
    sim, train = _pools(config)
    assert isinstance(sim.provider, LocalProvider) and isinstance(train.provider, LocalProvider)
    assert sim.max_workers_per_node == len(plan.sim_cores)
    assert sim.cpu_affinity == affinity_list([(c,) for c in plan.sim_cores])
    assert train.max_workers_per_node == 1
    assert train.cpu_affinity == affinity_list([plan.trainer_cores])
    assert sim.address == "127.0.0.1" and sim.loopback_address == "127.0.0.1"
    assert not sim.encrypted
    assert "CUDA_VISIBLE_DEVICES=''" in sim.provider.worker_init
    assert config.run_dir == str(tmp_path / "runinfo")


def test_polaris_submits_with_pbspro_and_mpiexec(tmp_path):
    plan, config = _build(tmp_path, name="polaris", account="proj", nodes=2, queue="prod")
    sim, train = _pools(config)
    for ex in (sim, train):
        assert isinstance(ex.provider, PBSProProvider)
        assert isinstance(ex.provider.launcher, MpiExecLauncher)
        assert ex.provider.nodes_per_block == 2 and ex.provider.account == "proj"
        assert ex.encrypted
    assert sim.max_workers_per_node == 24
    assert sim.cpu_affinity.startswith("list:2:3:4:5:6:7:10:")
    assert train.cpu_affinity == "list:0,1,8,9,16,17,24,25"
    assert train.available_accelerators == ["3,2,1,0"]
    assert sim.available_accelerators == []
    assert "ngpus=4" in train.provider.select_options


def test_perlmutter_submits_with_slurm_and_srun(tmp_path):
    plan, config = _build(tmp_path, name="perlmutter", account="m0000")
    sim, train = _pools(config)
    for ex in (sim, train):
        assert isinstance(ex.provider, SlurmProvider)
        assert isinstance(ex.provider.launcher, SrunLauncher)
        assert ex.provider.constraint == "gpu"
    assert sim.max_workers_per_node == 56
    assert train.cpu_affinity == "list:0,1,16,17,32,33,48,49"


@pytest.mark.parametrize("site", ["polaris", "perlmutter"])
def test_inside_job_shares_the_allocation_nodes(tmp_path, site):
    _, config = _build(tmp_path, name=site, allocation="inside-job", nodes=4)
    for ex in _pools(config):
        assert isinstance(ex.provider, LocalProvider) and ex.provider.nodes_per_block == 4
        assert isinstance(
            ex.provider.launcher, MpiExecLauncher if site == "polaris" else SrunLauncher
        )


def test_encryption_can_be_switched(tmp_path):
    _, config = _build(tmp_path, encrypted=True)
    assert all(e.encrypted for e in config.executors)


def test_train_pool_with_one_worker_per_rank(tmp_path):
    cfg = SiteConfig(name="polaris", account="p")
    plan = NodePlan.build(sites.get("polaris").topology(), site="polaris")
    config = build_parsl_config(plan, cfg, SchedulerConfig(), tmp_path, train_worker_per_rank=True)
    _, train = _pools(config)
    assert train.max_workers_per_node == 4
    assert train.cpu_affinity == "list:0,1:8,9:16,17:24,25"
    assert train.available_accelerators == ["3", "2", "1", "0"]
