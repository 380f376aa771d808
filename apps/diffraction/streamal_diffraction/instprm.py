"""GSAS-II instrument parameter files (``.instprm``) and the simulator's ``instrument`` option.

The format, as GSAS-II reads it (``GSASIIfiles.ReadInstprm``) and writes it
(``GSASIIfiles.WriteInstprm``)::

    #GSAS-II instrument parameter file; do not add/delete items!
    Type:PNT
    Bank:1.0
    fltPath:21.5
    2-theta:122.0
    difC:9496.17;difA:19.21;difB:0.0;Zero:4.84
    ...

* The first line must contain ``GSAS-II``; every line is ``name:value`` items separated by
  ``;`` (spaces are removed first), comment lines start with ``#``.
* A file of several banks ("Save all profiles") has one section per bank, each opened by a
  ``#Bank n: ...`` header line and ending at the next comment line; a single-bank file ends
  at the first comment line after its values, as in GSAS-II.
* Values in ``'''`` or ``\"\"\"`` may span lines (``pdabc``, ``CorrectionCode``).

Only time-of-flight powder data (``Type:PNT``) is supported. Read are ``difC``, ``difA``,
``difB``, ``Zero``, ``2-theta``, ``fltPath``, ``alpha``, ``beta-0``, ``beta-1``, ``beta-q``,
``sig-0``, ``sig-1``, ``sig-2``, ``sig-q`` and the Lorentzian ``X``, ``Y``, ``Z``; ``difB``,
``beta-q``, ``sig-q``, ``X``, ``Y``, ``Z`` default to 0, the others are required. Other items
(``Azimuth``, ``InstrName``, ...) are ignored. Two things GSAS-II would reject are accepted
here: blank lines and empty items (a trailing ``;``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from streamal.config import format_validation_error
from streamal.errors import ConfigError
from streamal.plugins import PluginOptions
from streamal_diffraction.instrument import (
    GRID_SIZE,
    NOMAD_BANK4,
    NOMAD_GRID,
    Instrument,
    TofGrid,
)

__all__ = ["InstrumentOptions", "TofGridOptions", "read_instprm"]

#: ``.instprm`` key -> :class:`Instrument` field, required keys.
_REQUIRED = {
    "difC": "difc",
    "difA": "difa",
    "Zero": "zero",
    "2-theta": "two_theta",
    "fltPath": "flight_path",
    "alpha": "alpha",
    "beta-0": "beta0",
    "beta-1": "beta1",
    "sig-0": "sig0",
    "sig-1": "sig1",
    "sig-2": "sig2",
}
#: Keys that default to 0.
_OPTIONAL = {"difB": "difb", "beta-q": "beta_q", "sig-q": "sig_q"}
_LORENTZIAN = ("X", "Y", "Z")

#: GSAS-II histogram types, for the message when a file is not time-of-flight.
_TYPES = {
    "PXC": "X-ray, constant wavelength",
    "PNC": "neutron, constant wavelength",
    "PXB": "X-ray, pink beam",
    "PNB": "neutron, pink beam",
    "PXE": "X-ray, energy dispersive",
    "SXC": "single-crystal X-ray",
    "SNC": "single-crystal neutron, constant wavelength",
    "SNT": "single-crystal neutron, time of flight",
}
_BANK_HEADER = re.compile(r"#Bank\s+(\d+)\s*:")
_DELIMITERS = ('"""', "'''")


@dataclass(frozen=True)
class _Item:
    value: str
    line: int


def read_instprm(
    path: str | os.PathLike[str], bank: int | None = None, *, ignore_lorentzian: bool = False
) -> Instrument:
    """The instrument of a GSAS-II ``.instprm`` file (one bank of it).

    Args:
        path: The file.
        bank: The ``#Bank n:`` section to read; required when the file has several. A file
            without sections holds one bank: ``bank`` must then be ``None`` or the file's
            ``Bank`` value (1 if it has none).
        ignore_lorentzian: Accept non-zero Lorentzian terms ``X``, ``Y``, ``Z`` and simulate
            without them (the peak shape here is back-to-back exponentials ⊗ Gaussian).

    Returns:
        The instrument, named after the file (and bank) for messages.

    Raises:
        ConfigError: One line naming the file, the line and the key: unreadable file, not a
            GSAS-II file, a type other than ``PNT``, a missing key, a value that is not a
            number, an unknown bank, a tabulated profile (``pdabc``), non-zero ``X``, ``Y``,
            ``Z`` unless ``ignore_lorentzian``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read instrument parameter file ({exc.strerror})"
        ) from None
    if not lines or "GSAS-II" not in lines[0]:
        hint = (
            "; old GSAS .prm/.iparm files are not read, convert them in GSAS-II"
            if any(s.startswith("INS ") for s in lines)
            else ""
        )
        raise ConfigError(
            f"{path} line 1: not a GSAS-II instrument parameter file (its first line must be "
            f"a '#GSAS-II instrument parameter file' comment){hint}"
        )
    start, name = _section(path, lines, bank)
    items, stop = _items(path, lines, start)
    instrument = _instrument(path, name, items, stop, ignore_lorentzian)
    if bank is not None and name == str(path):  # a file of one bank: bank must be its own
        own = _number(path, items, "Bank") if "Bank" in items else 1.0
        if own != bank:
            raise ConfigError(
                f"{path}: holds one bank (Bank = {own:g}, no '#Bank n:' sections), not bank {bank}"
            )
    return instrument


def _section(path: Path, lines: list[str], bank: int | None) -> tuple[int, str]:
    """Index of the first line of the wanted parameter set, and the instrument's name: the
    path, followed by `` bank n`` for a file of ``#Bank n:`` sections."""
    headers: dict[int, int] = {}
    for i, s in enumerate(lines):
        m = _BANK_HEADER.match(s)
        if m:
            headers.setdefault(int(m.group(1)), i)
    if not headers:
        return 1, str(path)
    if bank is None:
        if len(headers) > 1:
            raise ConfigError(
                f"{path}: holds banks {', '.join(map(str, sorted(headers)))}; choose one with bank"
            )
        bank = next(iter(headers))
    if bank not in headers:
        raise ConfigError(
            f"{path}: no bank {bank}; its banks are {', '.join(map(str, sorted(headers)))} "
            "('#Bank n:' header lines)"
        )
    return headers[bank] + 1, f"{path} bank {bank}"


def _items(path: Path, lines: list[str], start: int) -> tuple[dict[str, _Item], int | None]:
    """``name -> (value, line number)`` of one parameter set (the last of a repeated name
    wins, as in GSAS-II), and the line number of the comment that ended it, if any."""
    items: dict[str, _Item] = {}
    found = False
    i = start
    while i < len(lines):
        s, number = lines[i], i + 1
        i += 1
        if not s.strip():
            continue
        if s.startswith("#"):
            if found:
                return items, number
            continue
        found = True
        delim = next((d for d in _DELIMITERS if d in s), None)
        if delim is not None:  # a value in ''' or """, possibly over several lines
            name, _, value = s.strip().partition(":")
            closed = value.count(delim) >= 2
            while not closed and i < len(lines):
                value += "\n" + lines[i]
                closed = delim in lines[i]
                i += 1
            items[name.strip()] = _Item(value.replace(delim, "").strip(), number)
            continue
        for part in s.replace(" ", "").strip().split(";"):
            if not part:
                continue
            if ":" not in part:
                raise ConfigError(f"{path} line {number}: {part!r} is not a name:value item")
            name, value = part.split(":", 1)
            items[name] = _Item(value, number)
    return items, None


def _number(path: Path, items: dict[str, _Item], key: str) -> float:
    item = items[key]
    try:
        value = float(item.value)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{path} line {item.line}: {key} = {item.value!r} is not a number")
    return value


def _instrument(
    path: Path,
    name: str,
    items: dict[str, _Item],
    stop: int | None,
    ignore_lorentzian: bool,
) -> Instrument:
    kind = items["Type"].value if "Type" in items else "PNT"
    if kind[:3] != "PNT":
        what = _TYPES.get(kind[:3], "not a known GSAS-II type")
        raise ConfigError(
            f"{path} line {items['Type'].line}: Type = {kind} ({what}); only time-of-flight "
            "neutron powder data, Type PNT, is supported"
        )
    missing = [k for k in ("Type", *_REQUIRED) if k not in items]
    if missing:
        ended = f" (the parameter set ends at the comment on line {stop})" if stop else ""
        raise ConfigError(
            f"{name}: missing {', '.join(missing)}{ended}; a GSAS-II TOF instrument file has "
            f"Type:PNT and {', '.join(_REQUIRED)}"
        )
    if "pdabc" in items:
        raise ConfigError(
            f"{path} line {items['pdabc'].line}: pdabc (a table of alpha, beta, sigma against d) "
            "is not supported; give the alpha, beta-*, sig-* coefficients instead"
        )
    for key in _LORENTZIAN:
        if key in items and _number(path, items, key) != 0.0 and not ignore_lorentzian:
            raise ConfigError(
                f"{path} line {items[key].line}: {key} = {items[key].value}: Lorentzian "
                "broadening (X, Y, Z) is not simulated (peaks are back-to-back exponentials ⊗ "
                "Gaussian); set X, Y and Z to 0, or ignore_lorentzian: true to simulate without it"
            )
    values = {field: _number(path, items, key) for key, field in _REQUIRED.items()}
    values |= {field: _number(path, items, key) for key, field in _OPTIONAL.items() if key in items}
    if values["difc"] <= 0.0:
        raise ConfigError(
            f"{path} line {items['difC'].line}: difC = {values['difc']:g} must be > 0"
        )
    return Instrument(**values, name=name)


class TofGridOptions(PluginOptions):
    """The ToF grid patterns are computed on: log-spaced (constant ΔT/T) from ``start_us``.

    Give ``points`` (the last point is then ``stop_us``) or ``log_step`` (GSAS-II's binning:
    the points of a simulated histogram from ``start_us`` to ``stop_us`` with ΔT/T =
    ``log_step``, which stop below ``stop_us``). The paper's grid is
    ``{start_us: 1360, stop_us: 18919, log_step: 0.0009381}`` (2806 points).
    """

    start_us: float = Field(gt=0, description="first point of the grid (µs)")
    stop_us: float = Field(gt=0, description="end of the grid (µs), above start_us")
    points: int | None = Field(
        None, ge=16, le=25000, description="number of points (give this or log_step)"
    )
    log_step: float | None = Field(
        None, gt=0, lt=1, description="ΔT/T between points, GSAS-II's TOF step (or give points)"
    )

    @model_validator(mode="after")
    def _one_spacing(self) -> TofGridOptions:
        if self.stop_us <= self.start_us:
            raise ValueError(
                f"stop_us = {self.stop_us:g} must be above start_us = {self.start_us:g}"
            )
        if (self.points is None) == (self.log_step is None):
            raise ValueError("give exactly one of points and log_step")
        if self.log_step is not None and not 16 <= self.grid().size <= 25000:
            raise ValueError(
                f"log_step = {self.log_step:g} gives {self.grid().size} points between "
                f"{self.start_us:g} and {self.stop_us:g} µs; 16 to 25000 are allowed"
            )
        return self

    def grid(self) -> TofGrid:
        """The grid these options describe."""
        if self.points is not None:
            return TofGrid.spanning(self.start_us, self.stop_us, self.points)
        assert self.log_step is not None
        return TofGrid.gsas(self.start_us, self.stop_us, self.log_step)


class InstrumentOptions(PluginOptions):
    """``simulator.options.instrument`` of ``diffraction-tof``: the diffractometer and the ToF
    grid. Without it: NOMAD bank 4 on the paper's grid (2806 points, 1360–18894 µs)."""

    file: str | None = Field(
        None,
        description="GSAS-II .instprm file of a time-of-flight bank (Type PNT); a relative path "
        "is taken from the directory streamal runs in. Default: NOMAD bank 4",
    )
    bank: int | None = Field(
        None, ge=1, description="the '#Bank n:' section of a file that holds several banks"
    )
    ignore_lorentzian: bool = Field(
        False,
        description="simulate files with non-zero Lorentzian X, Y, Z without that broadening "
        "(otherwise they are refused)",
    )
    tof_grid: TofGridOptions | None = Field(
        None,
        description="the ToF grid; default: the paper's grid for NOMAD bank 4, otherwise the "
        "d-spacings it covers there (0.143–1.99 Å) mapped through the file's calibration, "
        f"{GRID_SIZE} log-spaced points",
    )

    @model_validator(mode="after")
    def _bank_needs_file(self) -> InstrumentOptions:
        if self.bank is not None and self.file is None:
            raise ValueError("bank needs a file")
        return self

    @classmethod
    def parse(cls, options: Mapping[str, Any], key: str = "instrument") -> InstrumentOptions:
        """Validate the option's mapping; :class:`ConfigError` names each wrong key."""
        try:
            return cls.model_validate(options)
        except ValidationError as err:
            raise ConfigError("; ".join(format_validation_error(err, cls, (key,)))) from None

    def resolved(self) -> InstrumentOptions:
        """These options with ``file`` made absolute, for workers that run elsewhere."""
        if self.file is None:
            return self
        return self.model_copy(update={"file": os.path.abspath(self.file)})

    def build(self) -> tuple[Instrument, TofGrid]:
        """The instrument and the grid, checked against each other.

        Raises:
            ConfigError: The file cannot be read or is wrong (see :func:`read_instprm`), or
                the calibration or the profile is not defined on the whole grid.
        """
        instrument = (
            NOMAD_BANK4
            if self.file is None
            else read_instprm(self.file, self.bank, ignore_lorentzian=self.ignore_lorentzian)
        )
        if self.tof_grid is not None:
            grid = self.tof_grid.grid()
        elif instrument == NOMAD_BANK4:
            grid = NOMAD_GRID
        else:
            d = NOMAD_BANK4.d_spacing([NOMAD_GRID.start_us, NOMAD_GRID.stop_us])
            start, stop = instrument.tof(d)
            if not start < stop:
                raise ConfigError(
                    f"{instrument.name}: ToF({d[0]:.3g} Å) = {start:.6g} µs is not below "
                    f"ToF({d[1]:.3g} Å) = {stop:.6g} µs; give instrument.tof_grid"
                )
            grid = TofGrid.spanning(float(start), float(stop), GRID_SIZE)
        instrument.check(grid)
        return instrument, grid
