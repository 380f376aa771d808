"""One node's topology: usable cores, NUMA domains and the GPUs hanging off them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SYS_NODE = Path("/sys/devices/system/node")
SYS_PCI = Path("/sys/bus/pci/devices")
NVIDIA_VENDOR = "0x10de"
GPU_PCI_CLASSES = ("0x030000", "0x030200")


def parse_cpulist(text: str) -> list[int]:
    """``"0-3,8,10-11"`` → ``[0, 1, 2, 3, 8, 10, 11]``."""
    cores: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cores.extend(range(int(lo), int(hi or lo) + 1))
    return cores


@dataclass(frozen=True)
class Gpu:
    """A GPU by its CUDA index (PCI bus order) and the NUMA domain it hangs off."""

    index: int
    numa: int


@dataclass(frozen=True)
class Topology:
    """Usable cores, NUMA domains (each a tuple of usable cores) and GPUs of one node."""

    cores: tuple[int, ...]
    numa_domains: tuple[tuple[int, ...], ...]
    gpus: tuple[Gpu, ...] = ()

    @classmethod
    def discover(cls) -> Topology:
        """Read this node: affinity mask, ``/sys`` NUMA nodes, NVIDIA GPUs on the PCI bus."""
        usable = sorted(os.sched_getaffinity(0))
        domains: list[tuple[int, ...]] = []
        numa_ids: list[int] = []
        for node_dir in sorted(SYS_NODE.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
            try:
                cores = parse_cpulist((node_dir / "cpulist").read_text())
            except OSError:
                continue
            mine = tuple(c for c in cores if c in usable)
            if mine:
                domains.append(mine)
                numa_ids.append(int(node_dir.name[4:]))
        covered = {c for d in domains for c in d}
        if not domains or covered != set(usable):
            domains = [tuple(usable)]
            numa_ids = [0]
        gpus = []
        for i, numa in enumerate(_nvidia_gpu_numa_nodes()):
            domain = numa_ids.index(numa) if numa in numa_ids else 0
            gpus.append(Gpu(index=i, numa=domain))
        return cls(tuple(usable), tuple(domains), tuple(gpus))


def _nvidia_gpu_numa_nodes() -> list[int]:
    """NUMA node of each NVIDIA GPU, in PCI bus order (``CUDA_DEVICE_ORDER=PCI_BUS_ID``)."""
    found = []
    for dev in sorted(SYS_PCI.glob("*")):
        try:
            vendor = (dev / "vendor").read_text().strip()
            pci_class = (dev / "class").read_text().strip()
        except OSError:
            continue
        if vendor == NVIDIA_VENDOR and pci_class in GPU_PCI_CLASSES:
            try:
                numa = int((dev / "numa_node").read_text())
            except (OSError, ValueError):
                numa = 0
            found.append(max(numa, 0))
    return found


def numa_gpu_node(cores: int, domains: int, gpu_of_domain: dict[int, int]) -> Topology:
    per = cores // domains
    numa = tuple(tuple(range(k * per, (k + 1) * per)) for k in range(domains))
    gpus = tuple(sorted((Gpu(g, d) for d, g in gpu_of_domain.items()), key=lambda g: g.index))
    return Topology(tuple(range(cores)), numa, gpus)
