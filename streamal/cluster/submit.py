"""``site.allocation: submit``: one batch job per run, shared by both pools.

On a batch site (``SiteProfile.submits_jobs``) ``streamal run`` does not start the pools from
the login node; it submits one job of ``site.nodes`` nodes through the site's own Parsl provider
(:meth:`~streamal.cluster.sites.base.SiteProfile.lead_node_provider`) whose body runs the same
``streamal run`` on the job's first node with ``--set site.allocation=inside-job``, so both
pools start inside the job and every node is split as the NodePlan says. The job script and its
output are kept in ``RUN_DIR/batch/``; the run writes its ``config.yaml`` when the job starts.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamal.errors import ConfigError, StreamalError, one_line, os_reason

if TYPE_CHECKING:
    from parsl.providers.base import ExecutionProvider

    from streamal.config import RunConfig
    from streamal.overrides import Override

#: The override the job's ``streamal run`` gets on top of the user's.
INSIDE_JOB = "site.allocation=inside-job"
#: Folder of the run directory that holds the job script and the job's stdout/stderr.
BATCH_DIR = "batch"

#: Parsl provider label -> (the command that submits, the command that shows a job).
_SCHEDULER_TOOLS = {
    "pbspro": ("qsub", "qstat"),
    "torque": ("qsub", "qstat"),
    "slurm": ("sbatch", "squeue -j"),
}


class SubmitError(StreamalError):
    """The batch job could not be submitted; the message is one line saying why."""


@dataclass(frozen=True)
class SubmittedJob:
    """One submitted run: what to tell the user.

    Attributes:
        job_id: The scheduler's id of the job.
        script: The job script as submitted.
        stdout: The job's standard output (``streamal run``'s results).
        stderr: The job's standard error (``streamal run``'s progress and errors).
        run_dir: Where the run writes its files once the job starts.
        site: The site's name.
        nodes: Nodes requested.
        follow: A command that shows the job in the queue (``qstat ID``), or ``None``.
    """

    job_id: str
    script: Path
    stdout: Path
    stderr: Path
    run_dir: Path
    site: str
    nodes: int
    follow: str | None

    def summary(self) -> str:
        """A few lines for the terminal: the job, its script, the run directory, how to follow."""
        lines = [
            f"submitted batch job {self.job_id} ({self.nodes} {self.site} node(s)); "
            "the run starts when the job does",
            f"  run directory: {self.run_dir}",
            f"  job script:    {self.script}",
            f"  job output:    {self.script}.stderr (progress), .stdout",
        ]
        follow = f"{self.follow}; " if self.follow else ""
        lines.append(f"  follow it:     {follow}tail -f {shlex.quote(str(self.stderr))}")
        return "\n".join(lines)


def submits_job(cfg: RunConfig) -> bool:
    """Whether ``streamal run`` submits one batch job for ``cfg`` instead of starting pools."""
    from streamal.cluster import sites

    return sites.get(cfg.site.name).submits_jobs and cfg.site.allocation == "submit"


def job_command(
    config_path: str | Path,
    run_dir: Path,
    overrides: Sequence[Override],
    *,
    python: str = sys.executable,
    cwd: Path | None = None,
) -> str:
    """The job's body: ``cd CWD && exec PYTHON -m streamal run CONFIG --run-dir DIR --set ...``.

    Paths are absolute; the user's overrides come first, then ``--set`` :data:`INSIDE_JOB`.
    """
    cwd = (cwd or Path.cwd()).absolute()
    argv = [python, "-m", "streamal", "run", str(Path(config_path).absolute())]
    argv += ["--run-dir", str(run_dir.absolute())]
    for o in [*(str(o) for o in overrides), INSIDE_JOB]:
        argv += ["--set", o]
    return f"cd {shlex.quote(str(cwd))} && exec {shlex.join(argv)}"


def submit_run(
    cfg: RunConfig,
    config_path: str,
    run_dir: str | None,
    overrides: Sequence[Override] = (),
) -> SubmittedJob:
    """Submit the one batch job that runs the campaign ``cfg`` (loaded from ``config_path``
    with ``overrides``) inside its allocation.

    The job's config (``overrides`` plus :data:`INSIDE_JOB`) and its run directory are checked
    here first, as ``streamal run`` checks them; only ``RUN_DIR/batch/`` is created, so the
    job's ``streamal run`` accepts the run directory as a new run.

    Raises:
        ConfigError: The job's config is invalid, or the run directory already holds a run or
            is too small for the campaign.
        SubmitError: The submit command is missing, failed, or printed no job id.
    """
    from streamal.cluster import sites
    from streamal.config import load_config
    from streamal.overrides import parse_overrides
    from streamal.run_dir import new_run_path

    job_overrides = [*overrides, *parse_overrides([INSIDE_JOB])]
    job_cfg = load_config(config_path, overrides=job_overrides)
    path = new_run_path(job_cfg, run_dir).absolute()
    profile = sites.get(cfg.site.name)
    topo = profile.topology()
    provider = profile.lead_node_provider(
        cfg.site,
        cores_per_node=len(topo.cores),
        gpus=len(topo.gpus),
        worker_init=cfg.site.worker_init,
    )
    submit_tool, show_tool = _SCHEDULER_TOOLS.get(provider.label, (None, None))
    if submit_tool and shutil.which(submit_tool) is None:
        raise SubmitError(
            f"site {cfg.site.name!r}: `{submit_tool}` is not on PATH; run this on a login node "
            "of the machine (or, inside an allocation, --set site.allocation=inside-job)"
        )
    if shlex.quote(str(path)) != str(path):  # Parsl's `qsub`/`sbatch` call does not quote it
        raise ConfigError(
            f"--run-dir {path}: a submitted run's directory must not contain spaces or shell "
            "characters (the job script lives in it); choose another --run-dir"
        )
    created = [d for d in (path, path / BATCH_DIR) if not d.exists()]
    try:
        (path / BATCH_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--run-dir {path}: cannot write there ({os_reason(exc)})") from None
    provider.script_dir = str(path / BATCH_DIR)
    command = job_command(config_path, path, overrides)
    try:
        job_id = _submit(provider, command, f"streamal-{cfg.name}", submit_tool or "the scheduler")
    except SubmitError:
        for d in reversed(created):
            shutil.rmtree(d, ignore_errors=True)
        raise
    out = Path(provider.resources[job_id]["job_stdout_path"])
    return SubmittedJob(
        job_id=job_id,
        script=out.with_suffix(""),
        stdout=out,
        stderr=Path(provider.resources[job_id]["job_stderr_path"]),
        run_dir=path,
        site=cfg.site.name,
        nodes=cfg.site.nodes,
        follow=f"{show_tool} {job_id}" if show_tool else None,
    )


def _submit(provider: ExecutionProvider, command: str, job_name: str, tool: str) -> str:
    """``provider.submit`` once on the job's first node; its failures as one-line errors."""
    from parsl.providers.errors import ExecutionProviderException, SubmitException

    try:
        job_id = provider.submit(command, tasks_per_node=1, job_name=job_name)
    except SubmitException as exc:
        said = one_line(f"{exc.stderr or ''} {exc.stdout or ''}")
        if exc.retcode == 0:  # Slurm: it answered, but not with a job id
            raise SubmitError(f"`{tool}` printed no job id; it said: {said}") from None
        code = f" (exit {exc.retcode})" if exc.retcode is not None else ""
        raise SubmitError(f"`{tool}` did not submit the batch job{code}: {said}") from None
    except subprocess.TimeoutExpired as exc:
        raise SubmitError(f"`{tool}` did not answer within {exc.timeout:g} s") from None
    except (ExecutionProviderException, OSError) as exc:
        raise SubmitError(f"cannot submit the batch job: {one_line(exc)}") from None
    if not job_id:
        raise SubmitError(f"`{tool}` printed no job id; the job may not have been submitted")
    return str(job_id)
