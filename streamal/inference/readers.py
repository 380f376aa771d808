"""Pattern readers: measured data files → :class:`~streamal.inference.measurement.Measurement`.

Built in: plain text (``x y [e]`` columns, or one ``y`` column; ``#`` comments; comma, tab,
semicolon or blank separated) and NumPy ``.npy``. Apps add readers through the entry-point
group ``streamal.readers`` (the diffraction app: GSAS powder files and Mantid processed NeXus)::

    [project.entry-points."streamal.readers"]
    gsas = "streamal_diffraction.measurements.gsas:GsasReader"

A reader is a :class:`PatternReader` subclass: its ``suffixes``, optionally a content check
(:meth:`PatternReader.accepts`), and :meth:`PatternReader.read`, which returns every pattern
of the file (a GSAS file may hold several banks). Installed readers are asked before the
built-in ones, in name order; the first that accepts a file reads it.

A text file names its x unit with a comment ``# x_unit: tof`` (or a header row whose first
column is the unit's name, e.g. ``tof,y,e``); otherwise the unit is found from the values.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import numpy as np

from streamal.errors import one_line, os_reason
from streamal.inference.errors import PatternError
from streamal.inference.measurement import Measurement

READER_GROUP = "streamal.readers"
"""Entry-point group of installed pattern readers."""
HEAD_BYTES = 4096
"""Bytes of a file's start handed to :meth:`PatternReader.accepts`."""


class PatternReader(ABC):
    """Reads one file format.

    Attributes:
        name: Short name (the entry point's).
        suffixes: Lower-case file suffixes it reads (``".gsa"``).
        description: One line for listings.
    """

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def accepts(self, path: Path, head: bytes) -> bool:
        """Whether this reader reads ``path`` (``head``: its first bytes). By suffix."""
        return path.suffix.lower() in self.suffixes

    @abstractmethod
    def read(self, path: Path) -> list[Measurement]:
        """Every pattern of ``path``.

        Raises:
            PatternError: The file is not in this format, or its data are unusable (the
                message says what is wrong, without the file name).
        """


_UNIT_COMMENT = re.compile(r"^#\s*x[_ ]?unit\s*[:=]\s*(\S+)", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,;\t ]+")


def _unit_name(text: str) -> str:
    """``"TOF (µs)"`` → ``"tof"``: the name before any bracketed unit, lower case."""
    return re.split(r"[\s(\[]", text.strip(), maxsplit=1)[0].lower()


class TextReader(PatternReader):
    """Columns of numbers: ``x y [e]``, or ``y`` alone (then one value per grid point)."""

    name = "text"
    suffixes = (".txt", ".dat", ".csv", ".tsv", ".xy", ".xye", ".asc")
    description = "x y [e] columns (or one y column); # comments; , ; tab or blank separated"

    def read(self, path: Path) -> list[Measurement]:
        unit: str | None = None
        rows: list[list[float]] = []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                text = line.strip()
                if not text:
                    continue
                if text.startswith("#"):
                    found = _UNIT_COMMENT.match(text)
                    if found:
                        unit = found.group(1).lower()
                    continue
                fields = [f for f in _SEPARATORS.split(text) if f]
                try:
                    rows.append([float(f) for f in fields])
                except ValueError:
                    if rows:
                        raise PatternError(f"line {number} is not numbers: {text[:60]!r}") from None
                    unit = unit or _unit_name(fields[0])  # a header row before the data
        if not rows:
            raise PatternError("no data rows (numbers in columns) found")
        width = len(rows[0])
        bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
        if bad is not None:
            raise PatternError(
                f"data row {bad + 1} has {len(rows[bad])} columns, the first {width}"
            )
        data = np.asarray(rows, dtype=np.float64)
        if width == 1:
            return [Measurement(y=data[:, 0], unit=unit, source=str(path))]
        e = data[:, 2] if width >= 3 else None
        return [Measurement(y=data[:, 1], x=data[:, 0], e=e, unit=unit, source=str(path))]


class NpyReader(PatternReader):
    """A NumPy array: ``(n,)`` values on the grid, or rows ``x, y[, e]`` (``(2|3, n)``)."""

    name = "npy"
    suffixes = (".npy",)
    description = "NumPy .npy: (n,) values on the model's grid, or rows x, y[, e]"

    def read(self, path: Path) -> list[Measurement]:
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise PatternError(f"not a plain NumPy array ({one_line(exc)})") from None
        data = np.asarray(data, dtype=np.float64)
        if data.ndim == 1:
            return [Measurement(y=data, source=str(path))]
        if data.ndim == 2 and data.shape[0] in (2, 3):
            e = data[2] if data.shape[0] == 3 else None
            return [Measurement(y=data[1], x=data[0], e=e, source=str(path))]
        raise PatternError(f"array of shape {data.shape}; need (n,) or rows x, y[, e] (2|3, n)")


BUILT_IN: tuple[type[PatternReader], ...] = (TextReader, NpyReader)


def installed_readers() -> list[PatternReader]:
    """Readers of the ``streamal.readers`` entry points (name order), then the built-in ones.

    A reader that fails to load is left out (``streamal plugins`` is not where readers are
    listed; :func:`describe_readers` names the broken ones).
    """
    found: list[PatternReader] = []
    for ep in sorted(entry_points(group=READER_GROUP), key=lambda e: e.name):
        try:
            found.append(ep.load()())
        except Exception:  # a broken reader must not stop the others
            continue
    return found + [cls() for cls in BUILT_IN]


def describe_readers() -> list[dict[str, str]]:
    """``[{name, suffixes, description}]`` of every reader (``error`` for a broken one)."""
    out = []
    for ep in sorted(entry_points(group=READER_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
            out.append(
                {
                    "name": ep.name,
                    "suffixes": " ".join(cls.suffixes),
                    "description": cls.description,
                }
            )
        except Exception as exc:
            out.append({"name": ep.name, "error": f"{type(exc).__name__}: {one_line(exc)}"})
    out += [
        {"name": c.name, "suffixes": " ".join(c.suffixes), "description": c.description}
        for c in BUILT_IN
    ]
    return out


def read_patterns(path: str | os.PathLike[str]) -> list[Measurement]:
    """Every pattern of a file, read by the first reader that accepts it.

    Raises:
        PatternError: No such file, no reader for it, or the reader's complaint; the message
            names the file.
    """
    path = Path(path)
    where = str(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except IsADirectoryError:
        raise PatternError("is a directory, not a pattern file", where) from None
    except OSError as exc:
        raise PatternError(f"cannot read ({os_reason(exc)})", where) from None
    readers = installed_readers()
    reader = next((r for r in readers if r.accepts(path, head)), None)
    if reader is None:
        known = sorted({s for r in readers for s in r.suffixes})
        raise PatternError(
            f"no reader for {path.suffix or 'files without a suffix'!r}; readable: "
            f"{' '.join(known)}",
            where,
        )
    try:
        found = reader.read(path)
    except PatternError as exc:
        raise exc.at(where) from None
    except OSError as exc:
        raise PatternError(f"cannot read ({os_reason(exc)})", where) from None
    except Exception as exc:  # a reader's bug or a file it did not expect: one line
        raise PatternError(
            f"the {reader.name} reader failed: {type(exc).__name__}: {one_line(exc)}", where
        ) from None
    if not found:
        raise PatternError(f"no pattern in the file ({reader.name} reader)", where)
    return [m if m.source else _with_source(m, where) for m in found]


def _with_source(m: Measurement, source: str) -> Measurement:
    from dataclasses import replace

    return replace(m, source=source)
