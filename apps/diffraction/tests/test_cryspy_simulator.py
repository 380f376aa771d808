"""The cryspy-backed simulator plugin: conformance, and the same peaks as ours."""

import numpy as np
import pytest

pytest.importorskip("cryspy")

from streamal.simulation.simulator import check_simulator  # noqa: E402
from streamal_diffraction.cryspy_simulator import CryspyTofSimulator  # noqa: E402
from streamal_diffraction.simulator import TofDiffractionSimulator  # noqa: E402


def test_conforms():
    check_simulator(CryspyTofSimulator(), n=1)


def test_same_pattern_shape_as_ours_up_to_scale():
    ours, ref = TofDiffractionSimulator(), CryspyTofSimulator()
    k = ours.space.class_index("cubic")
    params = ours.space.complete(k, np.array([[4.0]]))
    a = ours.simulate(np.array([k]), params)[0]
    b = ref.simulate(np.array([k]), params)[0]
    a, b = a / a.max(), b / b.max()
    assert np.abs(a - b).max() < 0.02
