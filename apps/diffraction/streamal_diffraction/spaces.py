"""Parameter-space presets: the paper's Table II ranges (E1, E2) and the other four systems.

Every class shares the full vector ``("a", "b", "c", "alpha", "beta", "gamma")`` (Å, °); a
class's constrained parameters are tied (``b ← a``, ``gamma ← 90.0`` …).

=============  ==================  =====================  ==========================
class          free                E1                     E2
=============  ==================  =====================  ==========================
cubic          a                   a ∈ [3.5, 4.5]         a ∈ [2.5, 5.5]
tetragonal     a, c (|a−c|>1e-3)   a, c ∈ [3.8, 4.2]      a, c ∈ [3.5, 4.5]
trigonal       a, alpha            a ∈ [3.8, 4.2],        a ∈ [3.5, 4.5],
                                   α ∈ [60°, 120°]        α ∈ [30°, 120°]
orthorhombic   a, b, c             a, b, c ∈ [3.8, 4.2]   a, b, c ∈ [3.5, 4.5]
hexagonal      a, c (γ = 120°)     a, c ∈ [3.8, 4.2]      a, c ∈ [3.5, 4.5]
monoclinic     a, b, c, beta       lengths as above,      lengths as above,
                                   β ∈ [90°, 110°]        β ∈ [90°, 120°]
triclinic      all six             angles ∈ [80°, 100°]   angles ∈ [70°, 110°]
=============  ==================  =====================  ==========================

The first three rows are Table II of the paper; the others are this package's choice. The
trigonal cell (rhombohedral axes) degenerates at α = 120° (zero volume): the simulator rejects
that exact value.

A material read from a CIF (:func:`material_space`) is a class with the free parameters and
ties of its crystal system's row, bounded by the configured ranges or, by default, the CIF's
value ±5 % (lengths) or ±5° (angles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from streamal.data.space import ClassSpace, ParameterSpace
from streamal.errors import ParameterError
from streamal_diffraction.cell import CELL_PARAMS

if TYPE_CHECKING:
    from streamal_diffraction.cif import Material
    from streamal_diffraction.structures import Template

ALL_CLASSES = (
    "trigonal",
    "tetragonal",
    "cubic",
    "orthorhombic",
    "hexagonal",
    "monoclinic",
    "triclinic",
)
"""Every class this package simulates (one per crystal system)."""

DEFAULT_CLASSES = ("trigonal", "tetragonal", "cubic")
"""The paper's three classes, in the paper's label order."""

PRESETS = ("e1", "e2")

UNITS = {"a": "Å", "b": "Å", "c": "Å", "alpha": "°", "beta": "°", "gamma": "°"}
"""Units of the cell parameters (metric names ``mae_a_A``, ``mae_alpha_deg``)."""

_LENGTH = {"e1": (3.8, 4.2), "e2": (3.5, 4.5)}
_CUBIC = {"e1": (3.5, 4.5), "e2": (2.5, 5.5)}
_RHOMBO = {"e1": (60.0, 120.0), "e2": (30.0, 120.0)}
_MONO = {"e1": (90.0, 110.0), "e2": (90.0, 120.0)}
_TRIC = {"e1": (80.0, 100.0), "e2": (70.0, 110.0)}
_SEPARATION = 0.001


def _class_space(name: str, preset: str) -> ClassSpace:
    length = _LENGTH[preset]
    right = {"alpha": 90.0, "beta": 90.0, "gamma": 90.0}
    if name == "cubic":
        return ClassSpace(name, {"a": _CUBIC[preset]}, {"b": "a", "c": "a", **right})
    if name == "tetragonal":
        return ClassSpace(
            name,
            {"a": length, "c": length},
            {"b": "a", **right},
            min_separation={("a", "c"): _SEPARATION},
        )
    if name == "trigonal":
        return ClassSpace(
            name,
            {"a": length, "alpha": _RHOMBO[preset]},
            {"b": "a", "c": "a", "beta": "alpha", "gamma": "alpha"},
        )
    if name == "orthorhombic":
        return ClassSpace(
            name,
            {"a": length, "b": length, "c": length},
            right,
            min_separation={
                ("a", "b"): _SEPARATION,
                ("b", "c"): _SEPARATION,
                ("a", "c"): _SEPARATION,
            },
        )
    if name == "hexagonal":
        return ClassSpace(
            name,
            {"a": length, "c": length},
            {"b": "a", "alpha": 90.0, "beta": 90.0, "gamma": 120.0},
        )
    if name == "monoclinic":
        return ClassSpace(
            name,
            {"a": length, "b": length, "c": length, "beta": _MONO[preset]},
            {"alpha": 90.0, "gamma": 90.0},
        )
    if name == "triclinic":
        angle = _TRIC[preset]
        return ClassSpace(
            name,
            {"a": length, "b": length, "c": length, "alpha": angle, "beta": angle, "gamma": angle},
        )
    raise ParameterError(f"unknown class {name!r}; allowed: {list(ALL_CLASSES)}")


def parameter_space(
    preset: str = "e1",
    classes: Sequence[str] | None = None,
    ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> ParameterSpace:
    """The diffraction parameter space.

    Args:
        preset: ``"e1"`` or ``"e2"`` (the paper's Table II experiments).
        classes: Class names in label order; default :data:`DEFAULT_CLASSES`.
        ranges: Optional overrides ``{class: {free parameter: (low, high)}}``.

    Raises:
        ParameterError: Unknown preset, class or parameter, or a parameter that is not free.
    """
    if preset not in PRESETS:
        raise ParameterError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    names = list(DEFAULT_CLASSES if classes is None else classes)
    if not names:
        raise ParameterError("classes must name at least one class")
    ranges = dict(ranges or {})
    unknown = set(ranges) - set(names)
    if unknown:
        raise ParameterError(f"ranges name classes not in play {sorted(unknown)}; classes: {names}")
    spaces = [
        _with_ranges(_class_space(name, preset), ranges.get(name, {}), f"ranges[{name!r}]")
        for name in names
    ]
    return ParameterSpace(CELL_PARAMS, tuple(spaces), dict(UNITS))


def _with_ranges(
    base: ClassSpace, ranges: Mapping[str, Sequence[float]], where: str, name: str | None = None
) -> ClassSpace:
    """``base`` (renamed ``name``) with the bounds of some free parameters replaced."""
    bounds = dict(base.bounds)
    for p, lo_hi in ranges.items():
        if p not in bounds:
            raise ParameterError(
                f"{where}[{p!r}]: not a free parameter of {base.name!r}; free: {list(base.free)}"
            )
        if len(lo_hi) != 2:
            raise ParameterError(f"{where}[{p!r}] must be (low, high), got {lo_hi}")
        bounds[p] = (float(lo_hi[0]), float(lo_hi[1]))
    return ClassSpace(name or base.name, bounds, dict(base.tied), dict(base.min_separation))


MATERIAL_LENGTH_RANGE = 0.05
"""Default bounds of a material's free lengths: the CIF value ±5 %."""

MATERIAL_ANGLE_RANGE = 5.0
"""Default bounds of a material's free angles: the CIF value ±5°."""


def material_class(
    name: str, template: Template, ranges: Mapping[str, Sequence[float]] | None = None
) -> ClassSpace:
    """The class of a material: free parameters and ties of its template's crystal system (as
    the built-in class of that system), bounds around the template's reference cell.

    Args:
        name: Class label.
        template: A template with a reference ``cell`` (e.g. from
            :func:`~streamal_diffraction.cif.template_from_cif`).
        ranges: Bounds ``{free parameter: (low, high)}`` (Å, °); the others default to the
            reference value ±5 % (lengths) or ±5° (angles).

    Raises:
        ParameterError: No reference cell, a cell that breaks the system's ties (e.g. a ≠ b in
            a tetragonal CIF), or ranges naming a parameter that is not free.
    """
    if template.cell is None:
        raise ParameterError(f"material {name!r}: template {template.name!r} has no reference cell")
    base = _class_space(template.system, "e1")
    ref = dict(zip(CELL_PARAMS, template.cell, strict=True))
    for p, src in base.tied.items():
        want = ref[src] if isinstance(src, str) else float(src)
        if abs(ref[p] - want) > 1e-4 * max(1.0, abs(want)):
            need = f"{src} = {want:g}" if isinstance(src, str) else f"{want:g}"
            raise ParameterError(
                f"material {name!r}: its cell has {p} = {ref[p]:g}, but a {template.system} "
                f"cell needs {p} = {need}"
            )
    defaults = {}
    for p in base.free:
        width = MATERIAL_ANGLE_RANGE if UNITS[p] == "°" else MATERIAL_LENGTH_RANGE * ref[p]
        defaults[p] = (round(ref[p] - width, 6), round(ref[p] + width, 6))
    base = ClassSpace(template.system, defaults, dict(base.tied), dict(base.min_separation))
    return _with_ranges(base, ranges or {}, f"material {name!r} ranges", name)


def material_space(materials: Sequence[Material]) -> ParameterSpace:
    """The parameter space of CIF materials, one class each, in label order."""
    if not materials:
        raise ParameterError("materials must name at least one material")
    spaces = tuple(material_class(m.name, m.template, m.options.ranges) for m in materials)
    return ParameterSpace(CELL_PARAMS, spaces, dict(UNITS))
