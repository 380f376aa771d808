"""``site.allocation: submit``: ``streamal run`` submits ONE batch job that runs the campaign.

No scheduler here: fake ``qsub``/``sbatch`` on PATH keep a copy of each submitted script and its
command line, and answer with a job id the way the real tools do.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamal import cli

ROOT = Path(__file__).resolve().parents[1]
CI_CONFIG = ROOT / "configs" / "diffraction-ci.yaml"

FAKE_TOOL = """#!/bin/sh
# a fake {tool}: keep the script (the last argument) and the command line, answer like {tool}
n=$(ls "{jobs}" | wc -l)
for a; do script=$a; done
cp "$script" "{jobs}/$n.sh"
echo "$@" > "{jobs}/$n.args"
{answer}
"""
PBS_ID = "1234.polaris-pbs-01"
ANSWERS = {
    "qsub": f"echo {PBS_ID}",
    "sbatch": "echo 'Submitted batch job 5678'",
}


@pytest.fixture
def batch(tmp_path, monkeypatch):
    """Fake ``qsub`` and ``sbatch`` first on PATH, cwd ``tmp_path``; returns the jobs folder."""
    bin_dir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_dir.mkdir()
    jobs.mkdir()
    for tool, answer in ANSWERS.items():
        _fake(bin_dir / tool, tool, jobs, answer)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    return jobs


def _fake(path: Path, tool: str, jobs: Path, answer: str) -> None:
    path.write_text(FAKE_TOOL.format(tool=tool, jobs=jobs, answer=answer))
    path.chmod(0o755)


def _config(tmp_path: Path, site: str) -> Path:
    """The CI campaign on ``site`` (allocation left at its default, ``submit``)."""
    data = yaml.safe_load(CI_CONFIG.read_text())
    data["site"] = {
        "name": site,
        "queue": "prod",
        "walltime": "02:00:00",
        "worker_init": "module load conda",
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _submitted(jobs: Path) -> list[tuple[str, str]]:
    """(script, command line) of every submitted job."""
    return [(p.read_text(), p.with_suffix(".args").read_text()) for p in sorted(jobs.glob("*.sh"))]


def _body(script: str) -> list[str]:
    """The job's ``streamal run`` argv (the script's last command: ``cd DIR && exec ...``)."""
    last = [line for line in script.splitlines() if line.strip()][-1]
    words = shlex.split(last)
    assert words[:2] == ["cd", str(Path.cwd())] and words[2:4] == ["&&", "exec"], last
    return words[4:]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["run", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    ("site", "job_id", "directives"),
    [
        (
            "polaris",
            PBS_ID,
            ["#PBS -l select=4:ncpus=32:ngpus=4", "#PBS -l walltime=02:00:00"],
        ),
        (
            "perlmutter",
            "5678",
            [
                "#SBATCH --nodes=4",
                "#SBATCH --ntasks-per-node=1",
                "#SBATCH --time=120",
                "#SBATCH --account=X",
                "#SBATCH --qos=prod",
                "#SBATCH --gpus-per-node=4",
            ],
        ),
    ],
)
def test_one_job_runs_the_campaign_inside_its_allocation(
    batch, tmp_path, capsys, site, job_id, directives
):
    config = _config(tmp_path, site)
    rc, out, err = _run(capsys, "campaign.yaml", "--set", "site.nodes=4", "--set", "site.account=X")
    assert rc == 0, err

    [(script, args)] = _submitted(batch)  # one job for both pools
    for d in directives:
        assert d in script.splitlines(), f"{d!r} not in\n{script}"
    if site == "polaris":  # PBS: account and queue on the qsub command line
        assert args.split()[:4] == ["-q", "prod", "-A", "X"]
    assert "module load conda" in script  # site.worker_init runs before the driver

    argv = _body(script)
    run_dir = tmp_path / "runs" / argv[argv.index("--run-dir") + 1].split("/")[-1]
    assert argv[:5] == [sys.executable, "-m", "streamal", "run", str(config)]
    assert argv[5:] == [
        "--run-dir",
        str(run_dir),
        "--set",
        "site.nodes=4",
        "--set",
        "site.account=X",
        "--set",
        "site.allocation=inside-job",
    ]
    assert job_id in out and str(run_dir) in out
    assert ("qstat" if site == "polaris" else "squeue -j") in out
    # the job script and its output live in the run directory, which holds no run yet
    assert sorted(p.name for p in run_dir.iterdir()) == ["batch"]
    assert f"#{'PBS -o' if site == 'polaris' else 'SBATCH --output='}" in script
    assert str(run_dir / "batch") in script

    # the job's `streamal run` accepts that run directory as a new run, inside the job
    from streamal.overrides import parse_overrides
    from streamal.run_dir import prepare_run_dir

    job = cli.build_parser().parse_args(argv[3:])
    with contextlib.ExitStack() as hold:
        cfg, path, resumed = prepare_run_dir(
            job.config, job.run_dir, job.resume, hold, parse_overrides(job.set)
        )
    assert (path, resumed) == (run_dir, False)
    assert (cfg.site.allocation, cfg.site.nodes) == ("inside-job", 4)


def test_a_run_directory_given_is_the_one_the_job_uses(batch, tmp_path, capsys):
    _config(tmp_path, "polaris")
    rc, out, err = _run(capsys, "campaign.yaml", "--run-dir", "out/r1", "--set", "site.account=X")
    assert rc == 0, err
    [(script, _)] = _submitted(batch)
    argv = _body(script)
    assert argv[argv.index("--run-dir") + 1] == str(tmp_path / "out" / "r1")
    assert "#PBS -l select=1:" in script
    # once the job has started the run there (its config.yaml), a new submission is refused
    (tmp_path / "out" / "r1" / "config.yaml").write_text("name: started\n")
    rc, out, err = _run(capsys, "campaign.yaml", "--run-dir", "out/r1", "--set", "site.account=X")
    assert rc == 2 and "already holds a run" in err
    assert len(_submitted(batch)) == 1


def test_a_run_directory_the_submit_command_cannot_take_is_refused(batch, tmp_path, capsys):
    _config(tmp_path, "polaris")
    rc, out, err = _run(capsys, "campaign.yaml", "--run-dir", "my run", "--set", "site.account=X")
    assert rc == 2
    assert err.strip().splitlines() == [
        f"error: --run-dir {tmp_path / 'my run'}: a submitted run's directory must not contain "
        "spaces or shell characters (the job script lives in it); choose another --run-dir"
    ]
    assert _submitted(batch) == [] and not (tmp_path / "my run").exists()


def test_a_refused_submission_is_one_line_and_leaves_nothing(batch, tmp_path):
    _fake(
        tmp_path / "bin" / "qsub",
        "qsub",
        batch,
        "echo 'qsub: Unauthorized Request' >&2; exit 1",
    )
    _config(tmp_path, "polaris")
    res = subprocess.run(
        [sys.executable, "-m", "streamal", "run", "campaign.yaml", "--run-dir", "r"]
        + ["--set", "site.account=X"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: `qsub` did not submit the batch job: qsub: Unauthorized Request"
    ]
    assert res.stdout == ""
    assert not (tmp_path / "r").exists()


def test_no_qsub_on_path_is_one_line(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.chdir(tmp_path)
    if any((Path(d) / "qsub").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("this machine has a real qsub")
    _config(tmp_path, "polaris")
    rc, out, err = _run(capsys, "campaign.yaml", "--set", "site.account=X")
    assert rc == 1
    assert err.strip().splitlines() == [
        "error: site 'polaris': `qsub` is not on PATH; run this on a login node of the machine "
        "(or, inside an allocation, --set site.allocation=inside-job)"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([], "site: site 'polaris' submits batch jobs and needs `account`"),
        (["site.account=X", "site.nodes=0"], "site.nodes: must be > 0"),
        (["site.account=X", "site.walltime=1h"], "site.walltime:"),
    ],
)
def test_bad_config_exits_2_and_submits_nothing(batch, tmp_path, capsys, sets, message):
    _config(tmp_path, "polaris")
    rc, out, err = _run(capsys, "campaign.yaml", *(a for s in sets for a in ("--set", s)))
    assert rc == 2
    assert err.startswith("error: campaign.yaml"), err
    assert ": invalid configuration\n" in err
    assert f"\n  {message}" in err and "Traceback" not in err
    assert _submitted(batch) == []


def test_local_site_runs_here_and_submits_nothing(batch, tmp_path, capsys, monkeypatch):
    import streamal.runner

    calls = []
    monkeypatch.setattr(streamal.runner, "run_campaign", lambda **kw: calls.append(kw) or 0)
    rc, out, err = _run(capsys, str(CI_CONFIG), "--set", "site.allocation=submit")
    assert rc == 0, err
    assert [c["config_path"] for c in calls] == [str(CI_CONFIG)]
    assert _submitted(batch) == []


def test_inside_job_runs_here_and_submits_nothing(batch, tmp_path, capsys, monkeypatch):
    import streamal.runner

    calls = []
    monkeypatch.setattr(streamal.runner, "run_campaign", lambda **kw: calls.append(kw) or 0)
    _config(tmp_path, "perlmutter")
    rc, out, err = _run(capsys, "campaign.yaml", "--set", "site.allocation=inside-job")
    assert rc == 0, err
    assert len(calls) == 1 and _submitted(batch) == []
