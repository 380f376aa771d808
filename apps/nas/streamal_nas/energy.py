"""Energy of a training run: RAPL (CPU package) or NVML (GPU) counters, else "unavailable".

Usage::

    meter = EnergyMeter(gpu=None)      # picks RAPL when /sys/class/powercap has counters
    with meter:
        train()
    meter.result.energy_j              # None when meter.result.source == "unavailable"

RAPL counters are package-wide: on a shared node they include every process on the package,
so a reading is an upper bound on one candidate's energy. When energy is the search's second
objective and nothing is measurable, :func:`energy_objective` falls back to the documented
proxy ``FLOPs per forward pass x epochs trained`` and says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "EnergyMeasurement",
    "EnergyMeter",
    "EnergySource",
    "NvmlReader",
    "RaplReader",
    "energy_objective",
]

EnergySource = Literal["rapl", "nvml", "unavailable"]
POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")  # top-level zones; sub-zones are inside them


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy spent over one measured interval.

    Attributes:
        source: ``"rapl"``, ``"nvml"`` or ``"unavailable"``.
        energy_j: Joules, ``None`` when unavailable.
        seconds: Wall time of the interval.
        note: Why the source is unavailable, or what the reading covers.
    """

    source: EnergySource
    energy_j: float | None
    seconds: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


class RaplReader:
    """Reads the package-level RAPL counters under a powercap directory.

    Args:
        root: The powercap directory (a fake one in tests).
    """

    def __init__(self, root: str | Path = POWERCAP) -> None:
        self.root = Path(root)

    def zones(self) -> list[Path]:
        """Readable package zones (``intel-rapl:N``), sub-zones excluded to avoid double counts."""
        if not self.root.is_dir():
            return []
        found = []
        for zone in sorted(self.root.iterdir()):
            if _PACKAGE_ZONE.match(zone.name) and _readable_int(zone / "energy_uj") is not None:
                found.append(zone)
        return found

    @property
    def available(self) -> bool:
        """Whether at least one package counter can be read."""
        return bool(self.zones())

    def read(self) -> dict[str, tuple[int, int]]:
        """``{zone: (energy_uj, max_energy_range_uj)}`` for every readable package zone."""
        out = {}
        for zone in self.zones():
            energy = _readable_int(zone / "energy_uj")
            max_range = _readable_int(zone / "max_energy_range_uj") or 0
            if energy is not None:
                out[zone.name] = (energy, max_range)
        return out

    @staticmethod
    def joules_between(
        before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]
    ) -> float:
        """Joules summed over zones, undoing one counter wraparound per zone.

        A counter that went down wrapped at ``max_energy_range_uj``: the energy is
        ``after + max_range - before``.
        """
        total_uj = 0
        for name, (e0, _) in before.items():
            if name not in after:
                continue
            e1, max_range = after[name]
            total_uj += e1 - e0 if e1 >= e0 else e1 + max_range - e0
        return total_uj / 1e6


class NvmlReader:
    """Total-energy counters of NVIDIA GPUs through ``pynvml`` (imported lazily).

    Args:
        devices: GPU indices to sum over.
    """

    def __init__(self, devices: tuple[int, ...]) -> None:
        self.devices = devices
        self._handles: list[Any] | None = None
        self.error = ""

    @property
    def available(self) -> bool:
        """Whether ``pynvml`` imports, initialises and reads every device's counter."""
        return self._ensure() and self.read() is not None

    def _ensure(self) -> bool:
        if self._handles is not None:
            return True
        if not self.devices:
            self.error = "no GPU assigned"
            return False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in self.devices]
        except Exception as exc:  # noqa: BLE001 - ImportError, NVMLError, ...
            self.error = f"NVML unavailable: {type(exc).__name__}: {exc}"
            return False
        return True

    def read(self) -> float | None:
        """Summed counters in joules, ``None`` if any device cannot be read."""
        if not self._ensure():
            return None
        import pynvml

        try:
            mj = sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles or [])
        except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported on older GPUs
            self.error = f"NVML energy counter unsupported: {exc}"
            return None
        return mj / 1e3


class EnergyMeter:
    """Context manager measuring the energy of the enclosed block.

    NVML is used when ``gpu`` is given and readable, else RAPL, else the result says
    ``"unavailable"`` with ``energy_j=None``.

    Args:
        gpu: CUDA index of the GPU the block runs on, or ``None`` for CPU.
        powercap: Powercap directory for RAPL.
    """

    def __init__(self, gpu: int | None = None, powercap: str | Path = POWERCAP) -> None:
        self.gpu = gpu
        self.powercap = Path(powercap)
        self.result: EnergyMeasurement | None = None
        self._t0 = 0.0
        self._start: Any = None
        self._reader: Any = None
        self._source: EnergySource = "unavailable"
        self._note = ""

    def __enter__(self) -> EnergyMeter:
        self._source, self._note = "unavailable", ""
        if self.gpu is not None:
            nvml = NvmlReader((self.gpu,))
            start = nvml.read()
            if start is not None:
                self._source, self._start, self._reader = "nvml", start, nvml
            else:
                self._note = nvml.error
        if self._source == "unavailable":
            rapl = RaplReader(self.powercap)
            start = rapl.read()
            if start:
                self._source, self._start, self._reader = "rapl", start, rapl
                self._note = "RAPL package counters (whole package, all processes on it)"
            else:
                self._note = (self._note + "; " if self._note else "") + (
                    f"no readable RAPL counters under {self.powercap}"
                )
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        seconds = time.perf_counter() - self._t0
        energy: float | None = None
        if self._source == "nvml":
            end = self._reader.read()
            energy = None if end is None else end - self._start
        elif self._source == "rapl":
            energy = RaplReader.joules_between(self._start, self._reader.read())
        source: EnergySource = self._source if energy is not None else "unavailable"
        self.result = EnergyMeasurement(source, energy, seconds, self._note)


def energy_objective(energy_j: float | None, flops: int, epochs: float) -> tuple[float, bool]:
    """The energy objective and whether it is the proxy.

    Returns:
        ``(energy_j, False)`` when measured, else ``(flops * epochs, True)``: FLOPs per
        forward pass times epochs trained, a documented stand-in proportional to the
        training work.
    """
    if energy_j is not None:
        return float(energy_j), False
    return float(flops) * float(epochs), True


def _readable_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
