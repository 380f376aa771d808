"""What a run's sample store holds."""

from __future__ import annotations

from pathlib import Path


def store_summary(path: Path) -> dict:
    """Samples per split and phase, and the failed samples, of a store."""
    from streamal.data.store import SPLITS, SampleStore

    with SampleStore(path, mode="r") as store:
        failures = store.failures()
        by_split = {s: len(store.select(split=s)) for s in SPLITS}
        phases = sorted({b.phase for b in store.batches()})
        return {
            "stored": len(store),
            "by_split": {k: v for k, v in by_split.items() if v},
            "by_phase": {str(p): len(store.select(phase=p)) for p in phases},
            "failed": len(failures),
            "first_error": failures[0]["error"] if failures else None,
        }
