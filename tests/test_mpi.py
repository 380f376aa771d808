"""MPI launch mode with 2 ranks on this machine (mpi4py + the mpich wheel)."""

import json

import numpy as np
import pytest

pytest.importorskip("mpi4py")
pytestmark = pytest.mark.mpi

from streamal.errors import SimulationError  # noqa: E402
from streamal.simulation.batches import simulate_chunk  # noqa: E402
from streamal.simulation.mpi import simulate_chunk_mpi  # noqa: E402

SIM = "tests.helpers:PeaksSimulator"


def _chunk(n=9):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 2, n)
    params = np.column_stack([rng.uniform(0.2, 0.8, n), np.where(classes == 0, 0.02, 0.07)])
    return classes, params


def test_two_ranks_give_the_same_chunk_as_one_process():
    classes, params = _chunk()
    out = simulate_chunk_mpi(SIM, json.dumps({}), classes, params, ranks=2)
    np.testing.assert_array_equal(out, simulate_chunk(SIM, json.dumps({}), classes, params))


def test_a_failing_rank_fails_the_chunk_with_its_error():
    classes, params = _chunk()
    with pytest.raises(SimulationError, match="centre above fail_above"):
        simulate_chunk_mpi(SIM, json.dumps({"fail_above": 0.3}), classes, params, ranks=2)


@pytest.mark.slow  # 50 s; the MPI chunk runner is tested directly above
def test_a_baseline_run_in_mpi_launch_mode(tmp_path):
    from tests.test_run import CONFIG, _run

    sim = {**CONFIG["simulator"], "mpi_ranks": 2, "options": {"require_mpi": True}}
    cfg = {**CONFIG, "simulator": sim}
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    from streamal.data.store import SampleStore

    with SampleStore(tmp_path / "run" / "store.h5", mode="r") as s:
        assert len(s) == 160 and not s.failures()
