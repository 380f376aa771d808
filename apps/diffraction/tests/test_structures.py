"""Structure factors, merged reflection groups and systematic absences."""

from __future__ import annotations

import numpy as np

from streamal_diffraction.cell import METRIC_KEYS, d_spacings, hkl_box
from streamal_diffraction.structures import (
    TEMPLATES,
    Atom,
    Template,
    reflection_groups,
    structure_factors,
)


def test_body_centred_template_has_h_plus_k_plus_l_odd_absent() -> None:
    bcc = Template("bcc-Ba", "cubic", (Atom("Ba", (0.0, 0.0, 0.0)), Atom("Ba", (0.5, 0.5, 0.5))))
    groups = reflection_groups(bcc, (6, 6, 6))
    n = groups.keys[:, 0].astype(int)  # h²+k²+l², whose parity is that of h+k+l
    assert 2 in n and 4 in n and 6 in n
    assert not np.any(n % 2 == 1)
    # the same positions with two different atoms (CsCl-like) are not centred: odd N appear
    cscl = Template("cscl", "cubic", (Atom("Ba", (0.0, 0.0, 0.0)), Atom("Ti", (0.5, 0.5, 0.5))))
    assert 1 in reflection_groups(cscl, (6, 6, 6)).keys[:, 0].astype(int)


def test_group_f_squared_equals_sum_over_merged_reflections() -> None:
    template = TEMPLATES["tetragonal"]
    cell = np.array([(3.95, 3.95, 4.05, 90.0, 90.0, 90.0)])
    groups = reflection_groups(template, (5, 5, 5))
    hkl = hkl_box(5, 5, 5)
    d = d_spacings(hkl, cell)[0]
    f2 = np.abs(structure_factors(template, hkl, d)) ** 2
    keys = METRIC_KEYS["tetragonal"].keys(hkl)
    for g in range(0, len(groups), 7):
        members = np.all(keys == groups.keys[g], axis=1)
        inv_d2 = 1.0 / d[members][0] ** 2
        got = groups.f_squared(np.array([g]), np.array([inv_d2]))[0]
        np.testing.assert_allclose(got, f2[members].sum(), rtol=1e-10, atol=1e-9)
        assert groups.multiplicity[g] == members.sum()


def test_templates_are_perovskites_with_five_atoms() -> None:
    for system, template in TEMPLATES.items():
        assert template.system == system
        assert [a.element for a in template.atoms] == ["Ba", "Ti", "O", "O", "O"]
        assert all(0.0 <= x < 1.0 for a in template.atoms for x in a.xyz)
