"""Fault scenarios measured end to end: how long a stop takes, what is left running, and what
the resumed run stores, against an uninterrupted run of the same config.

    python bench/reliability.py [--json]

Each scenario starts the fault tests' campaign (serial workflow, test simulator, 400-epoch
T0 so the stop lands in a DDP training), breaks it the way users and batch systems do, then
resumes it. Writes ``bench/results/reliability.json`` and ``.png``; RELIABILITY.md quotes it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_paths = (str(ROOT), os.environ.get("PYTHONPATH"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in _paths if p)  # workers import tests.helpers

from streamal.data.store import SampleStore  # noqa: E402
from tests.faults import campaign  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamal", "run", *args], capture_output=True, text=True
    )


def _store(run: Path) -> dict:
    with SampleStore(run / "store.h5", mode="r") as s:
        keys = [b.key for b in s.batches()]
        view = s.select()
        params, inputs = view.params(), view.inputs()
    flat = inputs.reshape(len(inputs), -1)
    return {
        "samples": len(params),
        "duplicate_samples": int(len(params) - len(np.unique(params, axis=0))),
        "duplicate_batches": len(keys) - len(set(keys)),
        "zero_or_nan_inputs": int((~flat.any(axis=1) | ~np.isfinite(flat).all(axis=1)).sum()),
    }


def _lost(run: Path) -> int:
    import json

    return sum(r["status"] == "lost" for r in json.loads((run / "timeline.json").read_text()))


def _signal_scenario(tmp: Path, name: str, sig: int, *, group: bool, twice: bool = False) -> dict:
    run = tmp / name / "run"
    run.parent.mkdir(parents=True)
    cfg = campaign.campaign_config(t0_epochs=400)
    proc = campaign.start(run.parent, cfg, "--run-dir", str(run))
    campaign.wait_for(run, "T0", status="running")
    deadline = time.time() + 60
    while not (run / "checkpoints/T0/last.pt").exists() and time.time() < deadline:
        time.sleep(0.1)
    procs = campaign.family(proc, run)
    sent = time.time()
    (os.killpg if group else os.kill)(proc.pid, sig)
    if twice:
        time.sleep(0.1)
        (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    stop_s = time.time() - sent
    left = campaign.wait_gone(procs, 90)
    gone_s = time.time() - sent
    campaign.kill_all(procs)
    status = campaign.status(run).get("status") if (run / "run.json").stat().st_size else "torn"
    res = _run("--resume", str(run))
    return {
        "scenario": name,
        "exit": proc.returncode,
        "stop_s": round(stop_s, 1),
        "all_processes_gone_s": round(gone_s, 1),
        "left_after_90s": len(left),
        "run_json": status,
        "resume_exit": res.returncode,
        "lost_attempts_recorded": _lost(run),
        **_store(run),
    }


def _full_disk(tmp: Path) -> dict:
    mnt = tmp / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        return {"scenario": "disk full (4 MiB tmpfs)", "skipped": "cannot mount a tmpfs"}
    try:
        free = shutil.disk_usage(mnt).free
        (mnt / "ballast").write_bytes(b"\1" * (free - 700 * 1024))
        cfg = tmp / "disk.yaml"
        cfg.write_text(yaml.safe_dump(campaign.campaign_config()))
        first = _run(str(cfg), "--run-dir", str(mnt / "run"))
        line = next((x for x in first.stderr.splitlines() if x.startswith("error:")), "")
        status = campaign.status(mnt / "run")["status"]
        (mnt / "ballast").unlink()
        res = _run("--resume", str(mnt / "run"))
        return {
            "scenario": "disk full (4 MiB tmpfs), space freed, resume",
            "exit": first.returncode,
            "message": line,
            "run_json": status,
            "resume_exit": res.returncode,
            **_store(mnt / "run"),
        }
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ref = tmp / "reference"
        ref.mkdir()
        (ref / "c.yaml").write_text(yaml.safe_dump(campaign.campaign_config(t0_epochs=400)))
        t0 = time.time()
        res = _run(str(ref / "c.yaml"), "--run-dir", str(ref / "run"))
        wall = round(time.time() - t0, 1)
        rows.append({"scenario": "uninterrupted", "exit": res.returncode, "wall_s": wall})
        rows[-1].update(_store(ref / "run"))
        plan = [
            ("Ctrl-C (SIGINT to the process group)", signal.SIGINT, True, False),
            ("wall-time SIGTERM to the process group", signal.SIGTERM, True, False),
            ("SIGTERM to the driver alone", signal.SIGTERM, False, False),
            ("Ctrl-C twice", signal.SIGINT, True, True),
            ("SIGKILL to the driver alone", signal.SIGKILL, False, False),
            ("SIGKILL to the process group", signal.SIGKILL, True, False),
        ]
        for i, (name, sig, group, twice) in enumerate(plan):
            print(f"[{i + 1}/{len(plan) + 1}] {name}", file=sys.stderr)
            rows.append(_signal_scenario(tmp, f"s{i}", sig, group=group, twice=twice))
            rows[-1]["scenario"] = name
        print(f"[{len(plan) + 1}/{len(plan) + 1}] disk full", file=sys.stderr)
        rows.append(_full_disk(tmp))
    _plot(rows)
    result = {"expected_samples": rows[0]["samples"], "scenarios": rows}
    _common.emit("reliability", result, args.json)


def _plot(rows: list[dict]) -> None:
    sig = [r for r in rows if "stop_s" in r]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    y = np.arange(len(sig))
    ax.barh(y - 0.2, [r["stop_s"] for r in sig], 0.4, label="driver exits (s)")
    ax.barh(y + 0.2, [r["all_processes_gone_s"] for r in sig], 0.4, label="last process gone (s)")
    ax.axvline(10, color="k", ls="--", lw=1, label="target: stop within 10 s")
    ax.axvline(60, color="r", ls=":", lw=1, label="limit: nothing left after 60 s")
    ax.set_yticks(y, [r["scenario"] for r in sig])
    ax.invert_yaxis()
    ax.set_xlabel("seconds after the signal")
    ax.set_title("Stopping a campaign mid-training (2-core machine)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(_common.RESULTS / "reliability.png", dpi=120)


if __name__ == "__main__":
    main()
