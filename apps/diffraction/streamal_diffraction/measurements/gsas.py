"""GSAS powder data files (``.gsa``, ``.gss``, ``.fxye``, ...): reader and writer.

Layout (GSAS manual, "GSAS standard powder data file"; as GSAS-II's ``G2pwd_fxye`` and
Mantid's ``LoadGSS``/``SaveGSS`` read and write it): line 1 a title; an optional
``Instrument parameter file:`` line; ``#`` comment lines; then per bank a record::

    BANK IBANK NCHAN NREC BINTYP BCOEF(1) BCOEF(2) BCOEF(3) BCOEF(4) TYPE

followed by its data. ``TYPE`` is the data format (``STD`` when absent):

* ``FXYE``: free-format ``x y e`` per line; ``FXY``: ``x y``;
* ``ESD``: fixed format, 5 pairs per line of an 8-character intensity and an 8-character esd;
* ``STD``: fixed format, 10 fields per line of a 2-character number of counters ``n`` and a
  6-character intensity ``y`` (esd ``√(y/n)``).

``BINTYP`` says where the points lie (times in µs):

* ``SLOG``: constant ``ΔT/T``; ``BCOEF(1)`` the first time, ``BCOEF(2)`` the last,
  ``BCOEF(3)`` = ``ΔT/T``;
* ``RALF`` (ISIS): ``BCOEF(1)`` the first time ×32, ``BCOEF(2)`` the first step ×32 (constant
  steps up to) ``BCOEF(3)`` ×32, beyond which the steps are ``T·BCOEF(4)``;
* ``CONST``/``CONS``: constant steps, ``BCOEF(1)`` the first position, ``BCOEF(2)`` the step
  (centidegrees for constant wavelength, µs for ToF: the x unit is then left to be found).

``FXY``/``FXYE`` give each point's x (for ``SLOG``/``RALF``, Mantid writes bin centres). For
``ESD``/``STD`` the binning makes the bins: ``SLOG``: edges ``BCOEF(1)·(1+BCOEF(3))^k``;
``RALF``: edges from ``BCOEF(1)/32`` by the steps above; ``CONS``: points ``BCOEF(1) +
k·BCOEF(2)``. ``TIME_MAP`` binning and ``ALT`` data are not read (one-line error).

A comment ``# with Y multiplied by the bin widths`` (Mantid) or ``Y (E) values are intensity
(error) * binwidth`` (ISIS) marks counts per bin; otherwise the values are intensities per µs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from streamal import durable
from streamal.inference.errors import PatternError
from streamal.inference.measurement import Measurement
from streamal.inference.readers import PatternReader

_COUNTS_NOTE = re.compile(r"multiplied by (the )?bin|\*\s*bin\s*width", re.IGNORECASE)
_TOF_BINNING = ("SLOG", "RALF")
_DATA_TYPES = ("FXYE", "FXY", "ESD", "STD", "ALT")


@dataclass(frozen=True)
class BankRecord:
    """A parsed ``BANK`` line."""

    bank: int
    nchan: int
    binning: str
    coefs: tuple[float, ...]
    data_type: str

    @classmethod
    def parse(cls, line: str) -> BankRecord:
        fields = line.split()
        try:
            bank, nchan = int(fields[1]), int(fields[2])
            binning = fields[4].upper()
        except (IndexError, ValueError):
            raise PatternError(f"malformed BANK line {line.strip()[:70]!r}") from None
        coefs: list[float] = []
        data_type = "STD"
        for token in fields[5:]:
            try:
                coefs.append(float(token))
            except ValueError:
                data_type = token.upper()
                break
        if data_type not in _DATA_TYPES:
            raise PatternError(
                f"bank {bank}: unknown data type {data_type!r} (FXYE, FXY, ESD, STD)"
            )
        if nchan < 1:
            raise PatternError(f"bank {bank}: NCHAN = {nchan}; need at least 1 point")
        return cls(bank, nchan, binning, tuple(coefs), data_type)

    def coef(self, i: int) -> float:
        """``BCOEF(i)`` (1-based)."""
        if len(self.coefs) < i:
            raise PatternError(f"bank {self.bank}: {self.binning} binning needs BCOEF({i})")
        return self.coefs[i - 1]

    def edges(self) -> np.ndarray:
        """``(nchan + 1,)`` bin edges of ``SLOG``/``RALF`` binning (µs)."""
        n = self.nchan
        if self.binning == "SLOG":
            start, ratio = self.coef(1), 1.0 + self.coef(3)
            if not (start > 0 and ratio > 1):
                raise PatternError(f"bank {self.bank}: SLOG needs BCOEF(1) > 0 and BCOEF(3) > 0")
            return start * ratio ** np.arange(n + 1)
        start, step, log_from, resolution = (
            self.coef(1) / 32,
            self.coef(2) / 32,
            self.coef(3) / 32,
            self.coef(4),
        )
        if not (start > 0 and (step > 0 or resolution > 0)):
            raise PatternError(f"bank {self.bank}: RALF needs BCOEF(1) > 0 and a positive step")
        edges = np.empty(n + 1)
        edges[0] = start
        for k in range(n):
            t = edges[k]
            edges[k + 1] = t + (step if t < log_from or resolution <= 0 else t * resolution)
        return edges


def _fixed(line: str, width: int, count: int) -> list[str]:
    """The ``count`` fields of ``width`` characters of an 80-column record."""
    padded = line.rstrip("\r\n").ljust(width * count)
    return [padded[i : i + width] for i in range(0, width * count, width)]


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PatternError(f"{what}: {text.strip()!r} is not a number") from None


def _bank_data(rec: BankRecord, lines: list[str], counts: bool) -> Measurement:
    """One bank's pattern from its data lines."""
    label = f"bank {rec.bank}"
    if rec.binning == "TIME_MAP":
        raise PatternError(f"{label}: TIME_MAP binning is not supported (use SLOG, RALF or CONS)")
    if rec.data_type == "ALT":
        raise PatternError(f"{label}: ALT data are not supported (use FXYE, ESD or STD)")
    unit = "tof" if rec.binning in _TOF_BINNING else None
    if rec.data_type in ("FXYE", "FXY"):
        rows = []
        for i, line in enumerate(lines):
            fields = line.split()
            need = 3 if rec.data_type == "FXYE" else 2
            if len(fields) < need:
                raise PatternError(
                    f"{label}: data line {i + 1} has {len(fields)} values, need {need}"
                )
            rows.append([_number(f, f"{label} line {i + 1}") for f in fields[:need]])
        if not rows:
            raise PatternError(f"{label}: no data lines")
        data = np.asarray(rows)
        x, y = data[:, 0], data[:, 1]
        e = data[:, 2] if rec.data_type == "FXYE" else np.sqrt(np.clip(y, 0, None))
        return Measurement(y=y, x=x, e=e, unit=unit, counts=counts, label=label)
    y_list: list[float] = []
    e_list: list[float] = []
    for i, line in enumerate(lines):
        if rec.data_type == "ESD":
            fields = _fixed(line, 8, 10)
            pairs = zip(fields[0::2], fields[1::2], strict=True)
            for yv, ev in pairs:
                if not yv.strip():
                    break
                y_list.append(_number(yv, f"{label} line {i + 1}"))
                e_list.append(_number(ev, f"{label} line {i + 1}") if ev.strip() else 0.0)
        else:  # STD: (I2, F6) × 10
            for field in _fixed(line, 8, 10):
                if not field.strip():
                    break
                n = int(_number(field[:2], f"{label} line {i + 1}")) if field[:2].strip() else 1
                v = _number(field[2:], f"{label} line {i + 1}")
                y_list.append(v)
                e_list.append(math.sqrt(max(v, 0.0) / max(n, 1)))
    if len(y_list) < rec.nchan:
        raise PatternError(
            f"{label}: {len(y_list)} of the {rec.nchan} values its BANK line announces"
        )
    y = np.asarray(y_list[: rec.nchan])
    e = np.asarray(e_list[: rec.nchan])
    if rec.binning in _TOF_BINNING:
        edges = rec.edges()
        x = 0.5 * (edges[1:] + edges[:-1])
        return Measurement(y=y, x=x, edges=edges, e=e, unit=unit, counts=counts, label=label)
    if rec.binning in ("CONS", "CONST"):
        x = rec.coef(1) + rec.coef(2) * np.arange(rec.nchan)
        return Measurement(y=y, x=x, e=e, unit=None, counts=counts, label=label)
    raise PatternError(f"{label}: unknown binning {rec.binning!r} (SLOG, RALF or CONS)")


class GsasReader(PatternReader):
    """GSAS powder data, every bank (FXYE, FXY, ESD, STD; SLOG, RALF, CONS binning)."""

    name = "gsas"
    suffixes = (".gsa", ".gss", ".gsas", ".gda", ".fxye", ".fxy")
    description = "GSAS powder data: FXYE, FXY, ESD, STD with SLOG, RALF or CONS binning"
    #: Suffixes a GSAS file is also recognised under, by a BANK record in its first lines.
    sniffed: ClassVar[tuple[str, ...]] = (".dat", ".txt", ".raw")

    def accepts(self, path: Path, head: bytes) -> bool:
        suffix = path.suffix.lower()
        if suffix in self.suffixes:
            return True
        return suffix in self.sniffed and re.search(rb"(^|\n)BANK\s+\d", head) is not None

    def read(self, path: Path) -> list[Measurement]:
        with open(path, encoding="latin-1") as fh:
            lines = fh.read().splitlines()
        if not lines:
            raise PatternError("empty file")
        counts = False
        banks: list[tuple[BankRecord, list[str]]] = []
        for number, line in enumerate(lines[1:], 2):  # line 1: the title
            if line.startswith("#"):
                counts = counts or bool(_COUNTS_NOTE.search(line))
                continue
            if number == 2 and line[:4].lower() == "inst":
                continue
            if line.startswith("BANK"):
                banks.append((BankRecord.parse(line), []))
                continue
            if line.startswith(("TIME_MAP", "Monitor")) or not line.strip():
                if line.startswith("TIME_MAP") and banks:
                    raise PatternError("TIME_MAP binning is not supported (use SLOG, RALF or CONS)")
                continue
            if not banks:
                if _COUNTS_NOTE.search(line):
                    counts = True
                continue  # header text before the first bank
            banks[-1][1].append(line)
        if not banks:
            raise PatternError("no BANK record: not a GSAS powder data file")
        return [_bank_data(rec, data, counts) for rec, data in banks]


def _field(value: float, width: int) -> str:
    """``value`` right-aligned in ``width`` characters with as many decimals as fit."""
    for decimals in range(6, -1, -1):
        text = f"{value:.{decimals}f}"
        if len(text) <= width - 1 or (decimals == 0 and len(text) <= width):
            return text.rjust(width)
    raise ValueError(f"{value:g} does not fit in {width} characters")


def write_gsas(
    path: str | Path,
    edges: np.ndarray,
    y: np.ndarray,
    e: np.ndarray | None = None,
    *,
    binning: str = "SLOG",
    data_type: str = "FXYE",
    bank: int = 1,
    title: str = "streamal pattern",
    counts: bool = False,
) -> Path:
    """Write one ToF bank as a GSAS powder file (atomically).

    Args:
        path: The file.
        edges: ``(n + 1,)`` bin edges (µs): log-spaced for ``SLOG``; for ``RALF`` log-spaced
            from the first edge (``BCOEF(3) = BCOEF(1)``; the first edge ×32 is rounded to
            an integer, as the format stores it).
        y: ``(n,)`` intensities; ``e``: their esds (default √|y|).
        binning: ``"SLOG"`` or ``"RALF"``.
        data_type: ``"FXYE"`` (x = bin centres), ``"ESD"`` or ``"STD"`` (fixed width: values
            must fit 8, resp. 6, characters).
        bank: The bank number.
        title: Line 1.
        counts: Mark ``y`` as counts per bin (Mantid's ``# with Y multiplied by the bin
            widths.``).
    """
    edges = np.asarray(edges, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    e = np.sqrt(np.abs(y)) if e is None else np.asarray(e, dtype=np.float64)
    n = len(y)
    if len(edges) != n + 1:
        raise ValueError(f"{len(edges)} edges for {n} values")
    ratio = edges[1] / edges[0] - 1.0
    binning, data_type = binning.upper(), data_type.upper()
    if binning == "SLOG":
        coefs = f"{edges[0]:.10g} {edges[-1]:.10g} {ratio:.10g} 0"
    elif binning == "RALF":
        start = round(edges[0] * 32)
        coefs = f"{start} {round((edges[1] - edges[0]) * 32)} {start} {ratio:.10g}"
    else:
        raise ValueError(f"binning must be SLOG or RALF, got {binning!r}")
    lines = [title[:80], "# streamal: GSAS powder data, times in microseconds"]
    if counts:
        lines.append("# with Y multiplied by the bin widths.")
    per_record = {"FXYE": 1, "ESD": 5, "STD": 10}.get(data_type)
    if per_record is None:
        raise ValueError(f"data_type must be FXYE, ESD or STD, got {data_type!r}")
    records = -(-n // per_record)
    lines.append(f"BANK {bank} {n} {records} {binning} {coefs} {data_type}")
    if data_type == "FXYE":
        centres = 0.5 * (edges[1:] + edges[:-1])
        lines += [f"{x:.10g} {v:.10g} {s:.10g}" for x, v, s in zip(centres, y, e, strict=True)]
    elif data_type == "ESD":
        fields = [_field(v, 8) + _field(s, 8) for v, s in zip(y, e, strict=True)]
        lines += ["".join(fields[i : i + 5]) for i in range(0, n, 5)]
    else:  # STD
        fields = [" 1" + _field(v, 6) for v in y]
        lines += ["".join(fields[i : i + 10]) for i in range(0, n, 10)]
    return durable.write_text(path, "\n".join(line.ljust(80) for line in lines) + "\n")
