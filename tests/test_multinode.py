"""A DDP training whose ranks an MPI launcher starts on two "nodes": MPICH hydra's
``mpiexec -hosts localhost,127.0.0.1 -n 2 -ppn 1`` runs one rank per host name, both on this
machine, each with its own launcher environment (``PMI_RANK``, ``MPI_LOCALRANKID`` 0)."""

import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from streamal import durable
from streamal.cluster.plan import RankPlacement
from streamal.train.ddp import TrainingError, train
from streamal.train.mpi_launch import train_mpi
from streamal.train.rank_setup import launcher_env
from streamal.train.spec import TrainSpec
from tests.test_trainer import _spec

pytestmark = pytest.mark.mpi

BIN = str(Path(sys.executable).parent)
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (the mpi extra)")
TWO_NODES = f"{MPIEXEC} -hosts localhost,127.0.0.1 -n 2 -ppn 1"
RANKS = [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)]


def _losses(history):
    return [
        {k: v for k, v in h.items() if k.startswith(("train_", "val_")) and k != "train_s"}
        for h in history
    ]


def _assert_same_losses(a, b):
    assert len(a) == len(b)
    for x, y in zip(_losses(a), _losses(b), strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert math.isclose(x[k], y[k], rel_tol=1e-5, abs_tol=1e-7), (k, x[k], y[k])


def test_launcher_env_reads_hydra_pals_and_srun():
    assert launcher_env({}) is None
    hydra = {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "0"}
    assert launcher_env(hydra) == (1, 2, 0)
    pals = {"PALS_RANKID": "5", "PALS_LOCAL_RANKID": "1", "PMI_SIZE": "8", "PMI_RANK": "5"}
    assert launcher_env({**pals, "PMI_LOCAL_RANK": "1"}) == (5, 8, 1)
    srun = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1"}
    assert launcher_env(srun) == (3, 4, 1)
    # mpiexec inside a Slurm batch script: the MPI launcher's variables win
    assert launcher_env({**srun, **hydra}) == (1, 2, 0)


@needs_mpiexec
def test_two_emulated_nodes_train_like_one_node(tmp_path):
    spread = train_mpi(_spec(tmp_path / "mpi", RANKS), TWO_NODES, timeout=240)
    local = train(_spec(tmp_path / "local", RANKS))
    assert spread["launcher"].startswith(f"{MPIEXEC} -hosts localhost,127.0.0.1 -n 2 -ppn 1 ")
    hosts = [(r["rank"], r["host"], r["node"]) for r in spread["ranks"]]
    assert hosts == [(0, "localhost", 0), (1, "127.0.0.1", 1)]
    for r in spread["ranks"]:
        assert r["launcher"] == "mpi" and r["world_size"] == 2 and r["local_rank"] == 0
        assert r["cores"] == r["planned_cores"] == [r["rank"]] and r["torch_threads"] == 1
        assert r["train_samples_seen_per_epoch"] == 80
    assert len(spread["history"]) == 4 and spread["test"]["accuracy"] > 0.8
    _assert_same_losses(spread["history"], local["history"])
    assert spread["test"] == pytest.approx(local["test"], rel=1e-5)


def _kill_rank_after(spec: TrainSpec, rank: int, epochs: int, killed: list) -> None:
    """SIGKILL one MPI-launched rank once ``epochs`` epochs are in the history."""
    out = Path(spec.out_dir)
    deadline = time.time() + 120
    while time.time() < deadline:
        history = durable.read_json(out / "history.json", default=[])
        started = durable.read_json(out / f"rank-{rank}.started.json", default=None)
        if isinstance(history, list) and len(history) >= epochs and started:
            os.kill(int(started["pid"]), signal.SIGKILL)
            killed.append(len(history))
            return
        time.sleep(0.01)


@needs_mpiexec
def test_killed_rank_fails_the_launch_by_name_and_the_rerun_resumes(tmp_path):
    spec = _spec(tmp_path, RANKS, epochs=60)
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_rank_after, args=(spec, 1, 3, killed))
    watcher.start()
    try:
        with pytest.raises(TrainingError, match="DDP rank 1 failed"):
            train_mpi(spec, TWO_NODES, timeout=240)
    finally:
        watcher.join()
    assert killed, "the rank was never killed"
    again = train_mpi(spec, TWO_NODES, timeout=240)
    assert again["ranks"][0]["resumed_from_epoch"] >= 3
    assert [h["epoch"] for h in again["history"]] == list(range(60))


@needs_mpiexec
def test_parsl_mpi_executor_spans_two_nodes_from_pbs_nodefile(tmp_path, monkeypatch):
    parsl = pytest.importorskip("parsl")
    from parsl.config import Config
    from parsl.executors import MPIExecutor
    from parsl.launchers import SimpleLauncher
    from parsl.providers import LocalProvider

    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n127.0.0.1\n")
    monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    config = Config(
        executors=[
            MPIExecutor(
                label="mpi",
                max_workers_per_block=1,
                mpi_launcher="mpiexec",
                provider=LocalProvider(launcher=SimpleLauncher(), init_blocks=1, max_blocks=1),
            )
        ],
        run_dir=str(tmp_path / "runinfo"),
        strategy_period=0.2,
    )
    spec = _spec(tmp_path / "t", RANKS)
    with parsl.load(config):
        app = parsl.python_app(train, executors=["mpi"])
        resources = {"num_nodes": 2, "ranks_per_node": 1, "num_ranks": 2}
        result = app(spec, parsl_resource_specification=resources).result(timeout=280)
    assert result["launcher"].startswith("mpiexec -n 2 -ppn 1 -hosts localhost,127.0.0.1")
    assert [(r["host"], r["node"], r["world_size"]) for r in result["ranks"]] == [
        ("localhost", 0, 2),
        ("127.0.0.1", 1, 2),
    ]
    assert [r["cores"] for r in result["ranks"]] == [[0], [1]]
    assert len(result["history"]) == 4


def test_rank_0s_address_comes_from_the_first_host_of_the_node_list():
    from streamal.train.mpi_launch import master_addr_of

    assert master_addr_of("localhost,127.0.0.1") == "127.0.0.1"
    assert master_addr_of(None) is None and master_addr_of("") is None
    with pytest.raises(TrainingError, match="cannot resolve rank 0's host 'no-such-host.invalid'"):
        master_addr_of("no-such-host.invalid,localhost")


def test_the_train_launcher_is_mpi_across_nodes_unless_a_model_trains_per_rank(
    tmp_path, monkeypatch
):
    from streamal.cluster import sites
    from streamal.cluster.parsl_config import build_parsl_config, train_launcher
    from streamal.cluster.plan import NodePlan
    from streamal.config import SchedulerConfig, SiteConfig
    from streamal.errors import ConfigError

    local = sites.get("local").topology()
    one = NodePlan.build(local, site="local", cores_per_rank=1)
    two = NodePlan.build(local, site="local", cores_per_rank=1, nodes=2)
    polaris = NodePlan.build(sites.get("polaris").topology(), site="polaris", nodes=2)
    assert train_launcher("auto", one) == "local" and train_launcher("auto", two) == "mpi"
    assert train_launcher("auto", polaris) == "mpi" and train_launcher("local", two) == "local"
    assert train_launcher("auto", two, ddp_trainings=False) == "local"
    sched = SchedulerConfig()
    monkeypatch.delenv("PBS_NODEFILE", raising=False)
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    with pytest.raises(ConfigError, match="train.launcher: mpi needs the job's nodes"):
        build_parsl_config(two, SiteConfig(nodes=2), sched, tmp_path, train_launcher="mpi")
    monkeypatch.setenv("PBS_NODEFILE", str(tmp_path / "nodes"))
    with pytest.raises(ConfigError, match="trainings are single-worker tasks"):
        build_parsl_config(
            two, SiteConfig(nodes=2), sched, tmp_path, train_launcher="mpi", ddp_trainings=False
        )


def where_am_i(seconds: float) -> dict:
    """A sim task: which emulated node (hydra's ``PMI_RANK`` of its manager) and cores."""
    time.sleep(seconds)
    return {
        "node": int(os.environ.get("PMI_RANK", "-1")),
        "cores": sorted(os.sched_getaffinity(0)),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


@needs_mpiexec
def test_the_sim_pool_has_one_manager_per_emulated_node_pinned_to_the_plan(tmp_path, monkeypatch):
    import asyncio

    from streamal.cluster import sites
    from streamal.cluster.parsl_config import build_parsl_config
    from streamal.cluster.plan import NodePlan
    from streamal.config import SchedulerConfig, SiteConfig
    from streamal.runtime.pools import SIM_POOL
    from streamal.runtime.scheduler import Scheduler

    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n127.0.0.1\n")
    monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    plan = NodePlan.build(sites.get("local").topology(), site="local", cores_per_rank=1, nodes=2)
    site = SiteConfig(nodes=2, trainer_ranks=1, cores_per_rank=1)
    config = build_parsl_config(plan, site, SchedulerConfig(strategy_period=0.5), tmp_path)

    async def spread() -> list[dict]:
        async with Scheduler(config, run_dir=tmp_path, progress=False) as scheduler:
            tasks = [scheduler.submit(SIM_POOL, where_am_i, 1.5) for _ in range(6)]
            return await asyncio.gather(*tasks)

    seen = asyncio.run(spread())
    assert not list(Path.cwd().glob("parsl.*.nodes")), "a node list in the working folder"
    assert {s["node"] for s in seen} == {0, 1}, seen
    assert all(s["cores"] == list(plan.sim_cores) and s["gpus"] == "" for s in seen), seen


@pytest.mark.parametrize(
    ("site_name", "sim_launch", "train_prefix"),
    [
        (
            "polaris",
            "mpiexec --cpu-bind none --depth=64 --ppn 1 -n $WORKERCOUNT --hostfile",
            "mpiexec -n 16 -ppn 4 -hosts n0,n1,n2,n3 --cpu-bind list:0,1:8,9:16,17:24,25",
        ),
        (
            "perlmutter",
            "srun --ntasks 4 -l --cpus-per-task=64 --overlap bash",
            "srun --ntasks 16 --ntasks-per-node 4 --nodelist n0,n1,n2,n3 --nodes 4 "
            "--cpu-bind=mask_cpu:0x3,0x30000,0x300000000,0x3000000000000 "
            "--gpus-per-node=4 --gpu-bind=none --overlap",
        ),
    ],
)
def test_four_node_launch_commands_of_the_batch_sites(
    site_name, sim_launch, train_prefix, tmp_path, monkeypatch
):
    """No submission: the pools' providers and the training's ``$PARSL_MPI_PREFIX`` as Parsl
    composes them for a 4-node allocation."""
    from parsl.executors import MPIExecutor
    from parsl.executors.high_throughput.mpi_prefix_composer import (
        compose_all,
        validate_resource_spec,
    )
    from parsl.launchers import SimpleLauncher

    from streamal.cluster import sites
    from streamal.cluster.parsl_config import build_parsl_config, mpi_train_resources
    from streamal.cluster.plan import NodePlan
    from streamal.config import SchedulerConfig, SiteConfig

    monkeypatch.setenv("PBS_NODEFILE", str(tmp_path / "nodes"))
    profile = sites.get(site_name)
    plan = NodePlan.build(profile.topology(), site=site_name, nodes=4)
    site = SiteConfig(name=site_name, nodes=4, allocation="inside-job")
    config = build_parsl_config(plan, site, SchedulerConfig(), tmp_path, train_launcher="mpi")
    sim, train_pool = config.executors
    assert sim.provider.nodes_per_block == 4
    sim_script = sim.provider.launcher("CMD", 1, 4, str(tmp_path))  # one manager per node
    assert sim_script.count(sim_launch) == 1 and "--gpus" not in sim_script
    if "HOSTFILE" in sim_script:  # mpiexec: the node list beside the job script
        assert 'HOSTFILE="${SCRIPT_DIR:+$SCRIPT_DIR/}$JOBNAME.nodes"' in sim_script
    assert len(sim.cpu_affinity.split(":")) == 1 + len(plan.sim_cores)
    assert isinstance(train_pool, MPIExecutor) and train_pool.mpi_launcher == profile.mpi_launcher
    assert isinstance(train_pool.provider.launcher, SimpleLauncher)
    assert train_pool.provider.nodes_per_block == 4
    resources = mpi_train_resources(plan, site_name)
    validate_resource_spec(dict(resources))
    prefix = compose_all(profile.mpi_launcher, resources, ["n0", "n1", "n2", "n3"])
    assert prefix["PARSL_MPI_PREFIX"] == train_prefix
