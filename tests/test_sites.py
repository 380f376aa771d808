"""Site profiles: each passes the conformance check; a new site is one file + an entry point."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from streamal import cli
from streamal.cluster import sites
from streamal.cluster.parsl_config import build_parsl_config
from streamal.cluster.plan import plan_for
from streamal.cluster.sites import SiteProfile, check_site_profile
from streamal.config import SchedulerConfig, SiteConfig
from streamal.errors import PluginError
from tests.test_cli import streamal

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = Path(__file__).resolve().parent / "site_plugin"
BUILT_IN = ["local", "perlmutter", "polaris"]
UNKNOWN = "unknown site 'aurora'; allowed: local, perlmutter, polaris"


def _load_file(path: Path, attr: str):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def _register_tiny_site(tmp_path: Path) -> dict[str, str]:
    """A ``*.dist-info`` that registers ``tests/site_plugin/tiny_site.py``; env for a child."""
    dist = tmp_path / "tiny_site-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-site\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[streamal.sites]\ntest-site = tiny_site:TinySite\n")
    path = [str(tmp_path), str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def test_built_in_sites_are_registered():
    assert set(BUILT_IN) <= set(sites.available())


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_sites_pass_the_check(name):
    profile = sites.get(name)
    assert profile.name == name
    check_site_profile(profile)


def test_example_generic_slurm_passes_the_check():
    from parsl.launchers import SrunLauncher
    from parsl.providers import SlurmProvider

    site = _load_file(ROOT / "examples/sites/generic_slurm.py", "GenericSlurmSite")()
    check_site_profile(site)
    assert site.name == "generic-slurm" and not site.topology().gpus
    provider = site.provider(
        SiteConfig(account="a", queue="compute").model_copy(update={"name": site.name}),
        pool="sim",
        cores_per_node=62,
        gpus=0,
        worker_init="",
    )
    assert isinstance(provider, SlurmProvider) and isinstance(provider.launcher, SrunLauncher)
    assert provider.partition == "compute" and provider.account == "a"


class _NoWorkerInit(SiteProfile):
    name = "bad"
    description = "drops worker_init"

    def topology(self):
        from streamal.cluster.topology import numa_gpu_node

        return numa_gpu_node(8, 2, {})

    def provider(self, site, *, pool, cores_per_node, gpus, worker_init):
        from parsl.providers import LocalProvider

        return LocalProvider()


class _GpuOffTheNode(_NoWorkerInit):
    def topology(self):
        from streamal.cluster.topology import numa_gpu_node

        return numa_gpu_node(8, 2, {5: 0})


class _BadLauncher(_NoWorkerInit):
    mpi_launcher = "mpirun"


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (_NoWorkerInit(), r"dropped `worker_init`"),
        (_GpuOffTheNode(), r"GPU 0 is on NUMA domain 5; allowed: 0\.\.1"),
        (_BadLauncher(), r"mpi_launcher 'mpirun'; allowed"),
    ],
)
def test_the_check_names_what_a_broken_site_gets_wrong(profile, message):
    with pytest.raises(AssertionError, match=message):
        check_site_profile(profile)


def test_plan_polaris_json_is_the_paper_binding(capsys):
    assert cli.main(["plan", "--site", "polaris", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "site": "polaris",
        "sim_cores": [c for c in range(32) if c % 8 >= 2],
        "trainer_ranks": [{"rank": k, "cores": [8 * k, 8 * k + 1], "gpu": 3 - k} for k in range(4)],
        "nodes": 1,
        "world": [
            {"rank": k, "node": 0, "local_rank": k, "cores": [8 * k, 8 * k + 1], "gpu": 3 - k}
            for k in range(4)
        ],
    }
    assert out == plan_for(SiteConfig(name="polaris", account="p")).to_json()


def test_plan_flags_override_the_site(capsys):
    assert cli.main(["plan", "--site", "perlmutter", "--ranks", "2", "--cores-per-rank", "4"]) == 0
    out = capsys.readouterr().out
    assert "trainer rank 0: cores [0, 1, 2, 3], GPU 3" in out
    assert "trainer rank 1: cores [16, 17, 18, 19], GPU 2" in out
    assert "trainer rank 2" not in out


def test_unknown_site_exits_2_with_one_line(capsys):
    assert cli.main(["plan", "--site", "aurora"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --site: {UNKNOWN}\n"
    with pytest.raises(PluginError, match=f"^{UNKNOWN}$"):
        sites.get("aurora")


def test_get_refuses_what_is_not_a_site():
    with pytest.raises(PluginError, match=r"not a SiteProfile subclass"):
        sites.get("streamal.cluster.topology:Topology")
    with pytest.raises(PluginError, match=r"cannot build site .*TypeError"):
        sites.get("streamal.cluster.sites.base:SiteProfile")  # abstract


def test_site_by_import_path_builds_its_parsl_config(tmp_path, monkeypatch):
    from parsl.launchers import SrunLauncher
    from parsl.providers import SlurmProvider

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    site = SiteConfig(name="tiny_site:TinySite", account="a", queue="gpu")
    with pytest.raises(ValueError, match=r"needs `account`"):
        SiteConfig(name="tiny_site:TinySite")
    config = build_parsl_config(plan_for(site), site, SchedulerConfig(), tmp_path)
    for ex in config.executors:
        assert isinstance(ex.provider, SlurmProvider)
        assert isinstance(ex.provider.launcher, SrunLauncher)
        assert ex.encrypted and ex.address != "127.0.0.1"
    assert {e.label: e.available_accelerators for e in config.executors}["train"] == ["0,1"]


def test_a_site_is_one_file_plus_an_entry_point(tmp_path):
    env = _register_tiny_site(tmp_path)

    res = streamal("plugins", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert {
        "name": "test-site",
        "value": "tiny_site:TinySite",
        "dist": "tiny-site",
    } in json.loads(res.stdout)["sites"]

    res = streamal("plan", "--site", "test-site", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "site": "test-site",
        "sim_cores": [2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15],
        "trainer_ranks": [
            {"rank": 0, "cores": [0, 1], "gpu": 0},
            {"rank": 1, "cores": [8, 9], "gpu": 1},
        ],
        "nodes": 1,
        "world": [
            {"rank": 0, "node": 0, "local_rank": 0, "cores": [0, 1], "gpu": 0},
            {"rank": 1, "node": 0, "local_rank": 1, "cores": [8, 9], "gpu": 1},
        ],
    }

    cfg = tmp_path / "cfg.yaml"
    workflow = "workflow: {name: baseline, phases: [{samples: 8, epochs: 1}]}\n"
    cfg.write_text(f"site: {{name: test-site, account: proj}}\n{workflow}")
    res = streamal("validate", str(cfg), env=env)
    assert res.returncode == 0, res.stderr
    assert "site test-site" in res.stdout

    cfg.write_text(f"site: {{name: test-site}}\n{workflow}")
    res = streamal("validate", str(cfg), env=env)
    assert res.returncode == 2
    assert "site 'test-site' submits batch jobs and needs `account`" in res.stderr

    cfg.write_text(f"site: {{name: aurora}}\n{workflow}")
    res = streamal("validate", str(cfg), env=env)
    assert res.returncode == 2
    assert f"site.name: {UNKNOWN}, test-site" in res.stderr
    assert "Traceback" not in res.stderr
