"""Mantid processed NeXus (HDF5) files: reader and a minimal writer.

Mantid's ``SaveNexusProcessed`` stores a workspace as ``/mantid_workspace_<N>/workspace``
(an ``NXdata`` group) with ``values`` and ``errors`` ``(spectra, bins)``, and ``axis1``: the
x values shared by the spectra ``(bins,)`` or ``(bins + 1,)`` (bin edges of a histogram), or
one row per spectrum ``(spectra, bins[+1])`` for ragged workspaces. ``axis1`` carries
``units`` (Mantid's unit ID: ``TOF`` in µs, ``dSpacing`` in Å) and ``distribution`` (``"1"``:
the values are per unit x; ``"0"``: counts per bin). Every spectrum of every workspace of a
file is one pattern (labelled by workspace and spectrum when there are several).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from streamal.inference.errors import PatternError
from streamal.inference.measurement import Measurement
from streamal.inference.readers import PatternReader

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_WORKSPACE = re.compile(r"mantid_workspace_(\d+)$")


def _text(value: object) -> str:
    """An HDF5 attribute as text (bytes, numpy bytes, arrays of one string)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


class MantidNexusReader(PatternReader):
    """Mantid processed NeXus: every spectrum of every ``mantid_workspace_<N>``."""

    name = "mantid-nexus"
    suffixes = (".nxs", ".nx5", ".h5", ".hdf5", ".hdf", ".nxs.h5")
    description = "Mantid processed NeXus/HDF5: /mantid_workspace_N/workspace/{axis1,values,errors}"

    def accepts(self, path: Path, head: bytes) -> bool:
        return path.suffix.lower() in self.suffixes or head.startswith(HDF5_SIGNATURE)

    def read(self, path: Path) -> list[Measurement]:
        import h5py

        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            raise PatternError(f"not an HDF5 file ({exc})") from None
        with fh:
            names = sorted(
                (int(m.group(1)), k) for k in fh if (m := _WORKSPACE.match(k)) is not None
            )
            if not names:
                raise PatternError(
                    "no /mantid_workspace_N group: not a Mantid processed NeXus file"
                )
            out: list[Measurement] = []
            for _, name in names:
                out += self._workspace(fh[name], name, several=len(names) > 1)
        return out

    def _workspace(self, group, name: str, *, several: bool) -> list[Measurement]:  # noqa: ANN001
        ws = group.get("workspace")
        if ws is None or "values" not in ws or "axis1" not in ws:
            raise PatternError(f"/{name}/workspace lacks values or axis1 (not a 2-D workspace)")
        values = np.atleast_2d(np.asarray(ws["values"][()], dtype=np.float64))
        errors = (
            np.atleast_2d(np.asarray(ws["errors"][()], dtype=np.float64))
            if "errors" in ws
            else None
        )
        axis = ws["axis1"]
        x_all = np.asarray(axis[()], dtype=np.float64)
        unit = _text(axis.attrs.get("units", "")) or None
        distribution = _text(axis.attrs.get("distribution", "0")).strip() in ("1", "true", "True")
        spectra, bins = values.shape
        out = []
        for i in range(spectra):
            x = x_all[i] if x_all.ndim == 2 else x_all
            x = x[np.isfinite(x)]  # ragged rows are padded with NaN
            y = values[i, : len(x) - 1] if len(x) == bins + 1 else values[i, : len(x)]
            e = None if errors is None else errors[i, : len(y)]
            label = f"{name} spectrum {i}" if several else (f"spectrum {i}" if spectra > 1 else "")
            if len(x) == len(y) + 1:  # a histogram
                out.append(
                    Measurement(
                        y=y,
                        x=0.5 * (x[1:] + x[:-1]),
                        edges=x,
                        e=e,
                        unit=unit,
                        counts=not distribution,
                        label=label,
                    )
                )
            elif len(x) == len(y):
                out.append(Measurement(y=y, x=x, e=e, unit=unit, label=label))
            else:
                raise PatternError(
                    f"/{name}: spectrum {i} has {len(y)} values but axis1 {len(x)} x values"
                )
        return out


def write_mantid_nexus(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    e: np.ndarray | None = None,
    *,
    unit: str = "TOF",
    distribution: bool = True,
    title: str = "streamal pattern",
) -> Path:
    """Write one spectrum as Mantid writes a processed workspace (enough for Mantid's
    ``LoadNexusProcessed`` layout and :class:`MantidNexusReader`).

    Args:
        path: The file (``.nxs``); written to a temporary name, then renamed.
        x: ``(n,)`` points or ``(n + 1,)`` bin edges.
        y: ``(n,)`` values; ``e``: their errors (default zeros).
        unit: Mantid unit ID of x (``TOF``, ``dSpacing``).
        distribution: Whether ``y`` is per unit x (else counts per bin).
        title: The workspace title.
    """
    import h5py

    path = Path(path)
    y = np.asarray(y, dtype=np.float64)
    e = np.zeros_like(y) if e is None else np.asarray(e, dtype=np.float64)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as fh:
        entry = fh.create_group("mantid_workspace_1")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("title", data=title.encode())
        entry.create_dataset("definition", data=b"Mantid Processed Workspace")
        ws = entry.create_group("workspace")
        ws.attrs["NX_class"] = "NXdata"
        values = ws.create_dataset("values", data=y[None, :])
        values.attrs["signal"] = 1
        values.attrs["axes"] = "axis2,axis1"
        values.attrs["units"] = "Counts"
        ws.create_dataset("errors", data=e[None, :])
        axis1 = ws.create_dataset("axis1", data=np.asarray(x, dtype=np.float64))
        axis1.attrs["units"] = unit
        axis1.attrs["distribution"] = "1" if distribution else "0"
        axis2 = ws.create_dataset("axis2", data=np.array([1.0]))
        axis2.attrs["units"] = "spectraNumber"
    tmp.replace(path)
    return path
