"""What the driver fault tests share: start a campaign, stop it the way users and batch
systems do, and check what is left (processes, store, run.json)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import yaml

from streamal.data.store import SampleStore
from tests.test_workflows import _config


def expected_samples(al_phases: int = 2) -> int:
    """What an uninterrupted run of ``campaign_config(al_phases=...)`` stores: 2 classes x
    (train 24, val 12, test 12, study 16) + an AL batch of 30 per AL phase."""
    return 2 * (24 + 12 + 12 + 16) + 30 * al_phases


EXPECTED_SAMPLES = expected_samples()


def campaign_config(
    *, t0_epochs: int = 3, delay: float = 0.05, al_phases: int = 2, **scheduler
) -> dict:
    """The serial workflow on the test simulator: T0, then ``al_phases`` AL phases (the tests
    take one: a second checks nothing new; ``bench/reliability.py`` the default two);
    ``scheduler``: settings added to the config's ``scheduler`` section."""
    cfg = _config("serial")
    cfg["simulator"]["options"] = {"delay": delay}
    first, *later = cfg["workflow"]["phases"][: 1 + al_phases]
    cfg["workflow"]["phases"] = [{**first, "epochs": t0_epochs}, *later]  # PHASES unchanged
    cfg["scheduler"] = {**cfg["scheduler"], **scheduler}
    cfg["train"] = {**cfg["train"], "checkpoint_interval_s": 0.5}
    return cfg


def start(tmp_path: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``streamal run`` in its own session, with SIGINT at its default as in a terminal."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def records(run: Path) -> list[dict]:
    path = run / "timeline.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def wait_for(run: Path, phase: str, status: str = "done", timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(r["stage"] == phase and r["status"] == status for r in records(run)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{phase} never reached {status!r}")


def family(proc: subprocess.Popen, run: Path) -> list[psutil.Process]:
    """Every process of a campaign: the driver's descendants (interchanges) and whatever
    names the run directory (worker pools, DDP ranks; they run in their own groups)."""
    found: dict[int, psutil.Process] = {}
    with _suppress():
        driver = psutil.Process(proc.pid)
        found[driver.pid] = driver
        for p in driver.children(recursive=True):
            found[p.pid] = p
    for p in psutil.process_iter(["cmdline"]):
        if any(str(run) in part for part in p.info["cmdline"] or []):
            found[p.pid] = p
            with _suppress():
                for c in p.children(recursive=True):
                    found[c.pid] = c
    return list(found.values())


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        with _suppress():
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
    return out


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[str]:
    """The processes still alive after ``timeout`` seconds (empty when all are gone)."""
    deadline = time.time() + timeout
    while time.time() < deadline and alive(procs):
        time.sleep(0.5)
    return alive(procs)


def kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        with _suppress():
            p.kill()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, *rest) -> bool:  # noqa: ANN001
        return exc_type is not None and issubclass(exc_type, psutil.Error)


def check_store(run: Path, expected: int = EXPECTED_SAMPLES) -> None:
    """As many samples as an uninterrupted run, none twice, no all-zero or NaN input."""
    with SampleStore(run / "store.h5", mode="r") as s:
        keys = [b.key for b in s.batches()]
        assert len(keys) == len(set(keys)), f"batches twice: {Counter(keys).most_common(3)}"
        assert len(s) == expected, f"{len(s)} samples, an uninterrupted run stores {expected}"
        view = s.select()
        params = view.params()
        inputs = view.inputs()
    assert len(np.unique(params, axis=0)) == len(params), "a sample is stored twice"
    assert np.isfinite(inputs).all(), "NaN/inf inputs in the store"
    zero = np.flatnonzero(~inputs.reshape(len(inputs), -1).any(axis=1))
    assert len(zero) == 0, f"{len(zero)} all-zero inputs in the store"


def status(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())
