"""A simulator that raises on some inputs, or returns NaN: retried, then recorded as failed."""

import json

import numpy as np
import pytest

from streamal.data.store import SampleStore
from tests.test_run import CONFIG, _run

pytestmark = pytest.mark.faults


def test_failing_samples_are_recorded_not_dropped(tmp_path):
    cfg = {**CONFIG, "simulator": {**CONFIG["simulator"], "options": {"fail_above": 0.75}}}
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    with SampleStore(tmp_path / "run" / "store.h5", mode="r") as s:
        failures = s.failures()
        assert failures and all("centre above fail_above" in f["error"] for f in failures)
        assert all(f["params"][0] > 0.75 for f in failures)
        assert len(s) + len(failures) == 160
        assert (s.select().params()[:, 0] <= 0.75).all()


def test_nan_outputs_are_recorded_as_failures(tmp_path):
    cfg = {**CONFIG, "simulator": {**CONFIG["simulator"], "options": {"nan_above": 0.7}}}
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    with SampleStore(tmp_path / "run" / "store.h5", mode="r") as s:
        failures = s.failures()
        assert failures and all("non-finite output" in f["error"] for f in failures)
        assert len(s) + len(failures) == 160
        assert np.isfinite(s.select().inputs()).all()
    summary = json.loads((tmp_path / "run" / "report" / "samples.json").read_text())
    assert summary["failed"] == len(failures) and "failed: " in res.stderr
