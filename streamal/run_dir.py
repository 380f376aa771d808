"""The run directory of a campaign: create it for a new run, or check a resumed one.

A new run gets its effective config (``config.yaml``, with any ``--set``); a resumed run is
refused when its config would change (the settings that define its data, and any ``--set``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from streamal import durable
from streamal.config import RunConfig, load_config, load_effective_config
from streamal.errors import ConfigError, os_reason
from streamal.footprint import check_campaign
from streamal.lock import RunDirLock
from streamal.runtime.stale import stop_stale_processes

if TYPE_CHECKING:
    from streamal.overrides import Override

console = Console(stderr=True, soft_wrap=True)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list):
        out = {}
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: data}


def config_difference(a: RunConfig, b: RunConfig) -> list[str]:
    """Lines ``key: old -> new`` for every setting that defines the data and differs."""
    return _difference(a.data_settings(), b.data_settings())


def _flatten_difference(a: RunConfig, b: RunConfig) -> list[str]:
    """``key: old -> new`` for every setting that differs, scheduler included."""
    return _difference(a.model_dump(mode="json"), b.model_dump(mode="json"))


def _difference(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = _flatten(a), _flatten(b)
    return [
        f"{k}: {fa.get(k, '<unset>')!r} -> {fb.get(k, '<unset>')!r}"
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]


def _check_unchanged(path: Path, cfg: RunConfig) -> None:
    """Refuse a resume whose ``config.yaml`` no longer matches the run it started."""
    status = durable.read_json(path / "run.json", default=None)
    if isinstance(status, dict) and status.get("fingerprint") not in (None, cfg.fingerprint()):
        lines = ["the run's fingerprint differs"]
        if isinstance(status.get("config"), dict):
            with contextlib.suppress(ValueError):
                lines = config_difference(RunConfig.model_validate(status["config"]), cfg)
        raise ConfigError(
            f"--resume {path}: {path / 'config.yaml'} was changed after the run started; "
            "differences (started -> now):\n  " + "\n  ".join(lines)
        )
    store = path / "store.h5"
    if store.exists():
        import h5py

        try:
            with h5py.File(store, "r") as f:
                saved = json.loads(f.attrs["metadata"]).get("fingerprint")
        except (OSError, KeyError, ValueError):
            return  # unreadable or half created: the store itself decides (recreate or refuse)
        if saved not in (None, cfg.fingerprint()):
            raise ConfigError(
                f"--resume {path}: store.h5 was written by a run with another config "
                f"(fingerprint {saved}, config.yaml has {cfg.fingerprint()})"
            )


def new_run_path(cfg: RunConfig, run_dir: str | None) -> Path:
    """The folder of a new run: ``run_dir``, else ``runs/<name>-<timestamp>``.

    Raises:
        ConfigError: It already holds a run (its ``config.yaml``), or the campaign does not
            fit (:func:`~streamal.footprint.check_campaign`).
    """
    path = Path(run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (path / "config.yaml").exists():
        raise ConfigError(f"--run-dir {path}: already holds a run; use --resume {path}")
    check_campaign(cfg, path)
    return path


def prepare_run_dir(
    config_path: str | None,
    run_dir: str | None,
    resume: str | None,
    hold: contextlib.ExitStack | None = None,
    overrides: Sequence[Override] = (),
) -> tuple[RunConfig, Path, bool]:
    """The validated config and run directory; refuses a resume with another config.

    With ``hold``, the run directory is locked (:class:`~streamal.lock.RunDirLock`) before
    anything in it is read or written, and stays locked until ``hold`` closes.

    ``overrides`` (``--set``) apply to ``config_path``; the run's ``config.yaml`` is the
    effective config, so a resume needs them no more. A resume refuses overrides that would
    change any setting (scheduler included): a run resumes with the config it started with.
    """
    if resume:
        path = Path(resume)
        saved = path / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"--resume {path}: not a streamal run directory (no config.yaml)")
        if hold is not None:
            try:
                hold.enter_context(RunDirLock(path))
            except OSError as exc:
                raise ConfigError(
                    f"--resume {path}: cannot lock the run directory ({os_reason(exc)})"
                ) from None
        cfg = load_config(saved)
        if overrides:
            changed = _flatten_difference(cfg, load_config(saved, overrides=overrides))
            if changed:
                raise ConfigError(
                    f"--resume {path}: --set would change the run's config ({'; '.join(changed)}); "
                    "a run resumes with the config it started with, drop --set"
                )
        if config_path:
            given = load_config(config_path, overrides=overrides)
            diff = config_difference(cfg, given)
            if diff:
                raise ConfigError(
                    f"--resume {path}: the run was started with another config; differences "
                    "(run -> given):\n  " + "\n  ".join(diff)
                )
        _check_unchanged(path, cfg)
        check_campaign(cfg, None)  # memory only: the store is partly written already
        stopped = stop_stale_processes(path)
        if stopped:
            console.print(f"[yellow]stopped {stopped} process(es) left by the previous driver")
        return cfg, path, True
    if not config_path:
        raise ConfigError("run: give a CONFIG, or --resume RUN_DIR")
    cfg, effective = load_effective_config(config_path, overrides=overrides)
    path = new_run_path(cfg, run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if hold is not None:
            hold.enter_context(RunDirLock(path))
        if (path / "config.yaml").exists():  # another driver started here meanwhile
            raise ConfigError(f"--run-dir {path}: already holds a run; use --resume {path}")
        os.chmod(path, 0o755)
        durable.write_bytes(path / "config.yaml", effective)  # the file as given, or with --set
    except OSError as exc:
        raise ConfigError(f"--run-dir {path}: cannot write there ({os_reason(exc)})") from None
    return cfg, path, False
