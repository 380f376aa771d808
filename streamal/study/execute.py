"""Run the campaigns of a study one after another; a second call resumes it.

Each run is ``python -m streamal run`` in a child process (a fresh Parsl per run, the way
users run it) in its own session: a signal to the study (Ctrl-C, a batch system's SIGTERM) is
passed on to the running campaign once per signal, so it stops in order (a second Ctrl-C stops
it at once) and the study stops after it. Inside one allocation a run on ``n`` nodes gets the
first ``n`` nodes of ``$PBS_NODEFILE``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamal import durable
from streamal.config import RunConfig, load_config
from streamal.errors import ConfigError
from streamal.overrides import parse_overrides
from streamal.study.layout import Study, StudyRun

#: Exit statuses of a campaign stopped by SIGINT / SIGTERM.
STOPPED = (130, 143)
NODE_FILE = "PBS_NODEFILE"


@dataclass(frozen=True)
class RunState:
    """Where one run of a study stands: ``new``, ``partial`` (resume it), ``submitted`` (a
    batch job holds it) or ``done``."""

    run: StudyRun
    status: str
    command: list[str]
    left_out: list[str] = field(default_factory=list)  # workflow.options keys not passed on


def run_sets(study: Study, run: StudyRun) -> tuple[list[str], list[str]]:
    """The ``--set`` arguments of one run, and the ``workflow.options`` keys it leaves out.

    After the study's own overrides: ``site.nodes``, ``workflow.name`` and, when the run's
    workflow is not the config's, ``workflow.options`` reduced to the keys that workflow
    takes (a streaming ``split_fraction`` means nothing to ``serial``).
    """
    from streamal import plugins

    base = load_config(study.config, overrides=parse_overrides(study.sets))
    sets = [*study.sets, *run.overrides()]
    if run.workflow == base.workflow.name:
        return sets, []
    accepted = plugins.load("workflows", run.workflow).Options.model_fields
    options = base.workflow.options or {}
    kept = {k: v for k, v in options.items() if k in accepted}
    return [*sets, f"workflow.options={json.dumps(kept)}"], sorted(set(options) - set(kept))


def run_config(study: Study, run: StudyRun) -> RunConfig:
    """The validated config of one run.

    Raises:
        ConfigError: The config with this run's overrides is invalid (one line, key path).
    """
    return load_config(study.config, overrides=parse_overrides(run_sets(study, run)[0]))


def state_of(study: Study, run: StudyRun) -> RunState:
    """Whether ``run`` is done, started, submitted or new, and the command that runs it."""
    run_dir = study.run_dir(run)
    status = durable.read_json(run_dir / "run.json", default=None)
    status = status.get("status") if isinstance(status, dict) else None
    base = [sys.executable, "-m", "streamal", "run"]
    if status == "done":
        return RunState(run, "done", [])
    if (run_dir / "batch").exists() and status is None:
        return RunState(run, "submitted", [])
    sets, left_out = run_sets(study, run)
    if status is not None:
        return RunState(run, "partial", [*base, "--resume", str(run_dir)], left_out)
    args = [a for s in sets for a in ("--set", s)]
    command = [*base, str(study.config), "--run-dir", str(run_dir), *args]
    return RunState(run, "new", command, left_out)


def job_nodes() -> list[str]:
    """The distinct hosts of ``$PBS_NODEFILE``, in order (empty without one)."""
    path = os.environ.get(NODE_FILE)
    if not path:
        return []
    try:
        lines = Path(path).read_text().split()
    except OSError as exc:
        raise ConfigError(f"${NODE_FILE}={path}: cannot read it ({exc.strerror})") from None
    return list(dict.fromkeys(lines))


def check_nodes(study: Study, configs: dict[StudyRun, RunConfig]) -> None:
    """Each run that starts its pools here must find its nodes in the job's node list.

    Raises:
        ConfigError: A run asks for more nodes than the node list names.
    """
    hosts = job_nodes()
    for run, cfg in configs.items():
        inside = cfg.site.allocation == "inside-job" or cfg.site.name == "local"
        if not inside or run.nodes == 1 or os.environ.get("SLURM_NODELIST"):
            continue
        if len(hosts) < run.nodes:
            raise ConfigError(
                f"--nodes {run.nodes}: ${NODE_FILE} names {len(hosts)} node(s)"
                + ("" if hosts else " (it is not set)")
                + "; run inside an allocation of that many nodes (on site local: a "
                "PBS_NODEFILE naming one host per emulated node, e.g. localhost and 127.0.0.1)"
            )


def _child_env(study: Study, run: StudyRun) -> dict[str, str]:
    """This process's environment, with a node list of the run's first ``nodes`` hosts."""
    env = dict(os.environ)
    hosts = job_nodes()
    if hosts and run.nodes < len(hosts):
        path = study.directory / f"nodes-{run.nodes}"
        durable.write_text(path, "\n".join(hosts[: run.nodes]) + "\n")
        env[NODE_FILE] = str(path)
    return env


def _run_child(command: list[str], env: dict[str, str]) -> int:
    """Run one campaign; pass each SIGINT/SIGTERM this process gets on to it, once."""
    proc = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    before = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def run_study(study: Study, *, dry_run: bool = False, say=print) -> int:
    """Run every run of ``study`` that is not done; returns an exit status.

    0: all done (or submitted); 1: a run failed (the others still ran); 130/143: stopped by a
    signal (the running campaign was stopped in order and can be resumed by running the study
    again).

    Raises:
        ConfigError: A run's config is invalid or its nodes are missing (nothing has run).
    """
    configs = {run: run_config(study, run) for run in study.runs}
    check_nodes(study, configs)
    states = [state_of(study, run) for run in study.runs]
    if dry_run:
        for s in states:
            what = shlex.join(s.command) if s.command else "(nothing to run)"
            say(f"{s.run.name:<28} {s.status:<9} {what}")
        return 0
    study.directory.mkdir(parents=True, exist_ok=True)
    study.save()
    failed = []
    for i, s in enumerate(states, 1):
        where = f"scale: [{i}/{len(states)}] {s.run.name}"
        if not s.command:
            say(f"{where}: {s.status}, skipped")
            continue
        left_out = s.left_out
        note = (
            f"; not for this workflow: workflow.options.{', '.join(left_out)}" if left_out else ""
        )
        verb = "resuming" if s.status == "partial" else "starting"
        say(f"{where}: {verb} ({s.run.nodes} node(s), {s.run.workflow}{note})")
        t0 = time.time()
        rc = _run_child(s.command, _child_env(study, s.run))
        took = time.time() - t0
        if rc in STOPPED:
            say(f"{where}: stopped after {took:.0f} s; run the same command again to resume")
            return rc
        if rc != 0:
            failed.append(s.run.name)
            say(f"{where}: FAILED (exit {rc}) after {took:.0f} s; see {study.run_dir(s.run)}")
            continue
        if state_of(study, s.run).status == "submitted":
            say(f"{where}: submitted as a batch job (see {study.run_dir(s.run) / 'batch'})")
        else:
            say(f"{where}: finished in {took:.0f} s")
    if failed:
        say(f"scale: {len(failed)} run(s) failed: {', '.join(failed)}")
        return 1
    return 0
