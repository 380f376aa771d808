"""The search space: NSGA-Net macro genomes, with sampling, variation and a stable key.

:class:`MacroGenome` follows NSGA-Net's macro space (Lu et al., 2019, after Genetic CNN): a
network is a chain of phases, and each phase is a DAG over ``nodes`` computation nodes
encoded as a bit string. Node ``j`` (1-based) owns ``j - 1`` bits saying which earlier nodes
feed it; one extra *skip bit* per phase adds a residual edge from the phase input to the
phase output. A phase therefore holds ``nodes * (nodes - 1) / 2 + 1`` bits.

:func:`genome_to_dict` / :func:`genome_from_dict` are the plain form that crosses to the
pool workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MacroGenome",
    "PhaseDAG",
    "bits_per_phase",
    "genome_from_dict",
    "genome_from_key",
    "genome_to_dict",
]


def bits_per_phase(nodes: int) -> int:
    """Number of genome bits one phase of ``nodes`` nodes needs (connections + skip bit)."""
    return nodes * (nodes - 1) // 2 + 1


@dataclass(frozen=True)
class PhaseDAG:
    """One decoded phase, following NSGA-Net's decoding rules.

    Node ``0`` is the phase input, nodes ``1..nodes`` are computation nodes and node
    ``nodes + 1`` is the phase output. Rules (Genetic CNN / NSGA-Net): a node with outputs
    but no inputs is fed by the phase input; a node with inputs but no outputs feeds the
    phase output; a node with neither is dropped. The skip bit adds input -> output. A phase
    whose connection bits are all zero has no active node: it is *inactive*, and NSGA-Net's
    decoder removes it (with its pooling) from the network, whatever its skip bit says.

    Attributes:
        nodes: Number of computation nodes the phase was encoded with.
        inputs: For each active node and for the output node, the sorted tuple of nodes it
            sums; dropped nodes are absent; empty for an inactive phase.
    """

    nodes: int
    inputs: dict[int, tuple[int, ...]]

    @property
    def output(self) -> int:
        """Index of the phase output node."""
        return self.nodes + 1

    @property
    def active(self) -> tuple[int, ...]:
        """Computation nodes that survive decoding, in topological (index) order."""
        return tuple(i for i in range(1, self.nodes + 1) if i in self.inputs)

    @property
    def is_active(self) -> bool:
        """Whether the phase has any computation node (inactive phases are removed)."""
        return bool(self.inputs)

    def edges(self) -> list[tuple[int, int]]:
        """All ``(source, target)`` edges of the decoded phase."""
        return [(s, t) for t in sorted(self.inputs) for s in self.inputs[t]]


@dataclass(frozen=True)
class MacroGenome:
    """NSGA-Net macro genome: ``phases`` phases of ``nodes`` nodes, as one flat bit tuple.

    Bits are phase-major. Within a phase, node ``j`` (``j = 2..nodes``) contributes bits
    for inputs from nodes ``1..j-1`` in order, followed by the phase's skip bit.

    Attributes:
        phases: Number of phases (separated by pooling in the decoded network).
        nodes: Computation nodes per phase.
        bits: Flat 0/1 tuple of length ``phases * bits_per_phase(nodes)``.
    """

    phases: int
    nodes: int
    bits: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.phases, int | np.integer) or self.phases < 1:
            raise ValueError(f"MacroGenome.phases must be an int >= 1, got {self.phases!r}")
        if not isinstance(self.nodes, int | np.integer) or self.nodes < 1:
            raise ValueError(f"MacroGenome.nodes must be an int >= 1, got {self.nodes!r}")
        bits = tuple(int(b) for b in self.bits)
        expected = self.phases * bits_per_phase(self.nodes)
        if len(bits) != expected:
            raise ValueError(
                f"MacroGenome.bits has length {len(bits)}; {self.phases} phases x "
                f"{self.nodes} nodes need {expected} "
                f"({bits_per_phase(self.nodes)} per phase including the skip bit)"
            )
        bad = sorted({b for b in bits if b not in (0, 1)})
        if bad:
            raise ValueError(f"MacroGenome.bits must be 0/1, found values {bad}")
        object.__setattr__(self, "phases", int(self.phases))
        object.__setattr__(self, "nodes", int(self.nodes))
        object.__setattr__(self, "bits", bits)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def random(
        cls, rng: np.random.Generator, phases: int = 3, nodes: int = 4, p_one: float = 0.5
    ) -> MacroGenome:
        """Sample each bit independently as 1 with probability ``p_one``."""
        n = phases * bits_per_phase(nodes)
        return cls(phases, nodes, tuple(int(b) for b in rng.random(n) < p_one))

    @classmethod
    def from_vector(
        cls, vector: Sequence[float] | np.ndarray, phases: int, nodes: int
    ) -> MacroGenome:
        """Build from a flat vector (e.g. a pymoo decision vector); values are rounded."""
        arr = np.asarray(vector, dtype=float).ravel()
        return cls(phases, nodes, tuple(int(round(v)) for v in arr))

    @classmethod
    def from_phase_lists(cls, phase_lists: Sequence[Sequence[Sequence[int]]]) -> MacroGenome:
        """Build from NSGA-Net's nested form: per phase ``[[b], [b, b], ..., [skip]]``."""
        if not phase_lists:
            raise ValueError("MacroGenome.from_phase_lists needs at least one phase")
        nodes = len(phase_lists[0])
        bits: list[int] = []
        for p, phase in enumerate(phase_lists):
            if len(phase) != nodes:
                raise ValueError(
                    f"phase {p} has {len(phase)} entries, expected {nodes} like phase 0"
                )
            for j, row in enumerate(phase[:-1]):
                if len(row) != j + 1:
                    raise ValueError(f"phase {p} row {j} has {len(row)} bits, expected {j + 1}")
                bits.extend(row)
            if len(phase[-1]) != 1:
                raise ValueError(f"phase {p} skip entry must hold one bit, got {phase[-1]!r}")
            bits.extend(phase[-1])
        return cls(len(phase_lists), nodes, tuple(bits))

    # -- views --------------------------------------------------------------------------
    def to_vector(self) -> np.ndarray:
        """Flat ``int8`` 0/1 vector (pymoo binary variable layout)."""
        return np.asarray(self.bits, dtype=np.int8)

    def phase_bits(self, phase: int) -> tuple[int, ...]:
        """Bits of one phase (connections then skip bit)."""
        if not 0 <= phase < self.phases:
            raise ValueError(f"phase must be in [0, {self.phases}), got {phase}")
        n = bits_per_phase(self.nodes)
        return self.bits[phase * n : (phase + 1) * n]

    def to_phase_lists(self) -> list[list[list[int]]]:
        """NSGA-Net's nested form (inverse of :meth:`from_phase_lists`)."""
        out = []
        for p in range(self.phases):
            bits = list(self.phase_bits(p))
            rows, pos = [], 0
            for j in range(1, self.nodes):
                rows.append(bits[pos : pos + j])
                pos += j
            rows.append([bits[-1]])
            out.append(rows)
        return out

    def connections(self, phase: int) -> np.ndarray:
        """Adjacency ``A[i, j] = 1`` if node ``i`` feeds node ``j`` (1-based, row/col 0 unused)."""
        bits = self.phase_bits(phase)
        adj = np.zeros((self.nodes + 1, self.nodes + 1), dtype=np.int8)
        pos = 0
        for j in range(2, self.nodes + 1):
            for i in range(1, j):
                adj[i, j] = bits[pos]
                pos += 1
        return adj

    def skip(self, phase: int) -> bool:
        """Whether the phase has its residual (input -> output) connection."""
        return bool(self.phase_bits(phase)[-1])

    def decode_phase(self, phase: int) -> PhaseDAG:
        """Decode one phase into a :class:`PhaseDAG` using NSGA-Net's rules."""
        adj = self.connections(phase)
        n = self.nodes
        has_in = adj.sum(axis=0) > 0
        has_out = adj.sum(axis=1) > 0
        inputs: dict[int, tuple[int, ...]] = {}
        sink: list[int] = []
        if not adj.any():
            return PhaseDAG(nodes=n, inputs=inputs)  # inactive phase
        for j in range(1, n + 1):
            if not has_in[j] and not has_out[j]:
                continue  # isolated: dropped
            srcs = [i for i in range(1, j) if adj[i, j]]
            inputs[j] = tuple(srcs) if srcs else (0,)
            if not has_out[j]:
                sink.append(j)
        if self.skip(phase):
            sink.insert(0, 0)
        inputs[n + 1] = tuple(sink)
        return PhaseDAG(nodes=n, inputs=inputs)

    def decode(self) -> list[PhaseDAG]:
        """Decode every phase, inactive ones included."""
        return [self.decode_phase(p) for p in range(self.phases)]

    def active_phases(self) -> tuple[bool, ...]:
        """Per phase, whether it survives decoding (has at least one connection bit set)."""
        return tuple(any(self.phase_bits(p)[:-1]) for p in range(self.phases))

    def key(self) -> str:
        """Stable string key, e.g. ``'macro:3x4:1010110-0000001-...'``."""
        groups = "-".join("".join(map(str, self.phase_bits(p))) for p in range(self.phases))
        return f"macro:{self.phases}x{self.nodes}:{groups}"

    # -- variation ----------------------------------------------------------------------
    def mutate(self, rng: np.random.Generator, p: float) -> MacroGenome:
        """Bit-flip mutation: flip each bit independently with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"mutation probability p must be in [0, 1], got {p}")
        flips = rng.random(len(self.bits)) < p
        bits = tuple(b ^ int(f) for b, f in zip(self.bits, flips, strict=True))
        return MacroGenome(self.phases, self.nodes, bits)

    def crossover(self, other: MacroGenome, rng: np.random.Generator) -> MacroGenome:
        """Homogeneous (uniform) crossover: shared bits kept, differing bits drawn 50/50."""
        if (self.phases, self.nodes) != (other.phases, other.nodes):
            raise ValueError(
                f"crossover needs equal shapes, got {self.phases}x{self.nodes} and "
                f"{other.phases}x{other.nodes}"
            )
        pick = rng.random(len(self.bits)) < 0.5
        pairs = zip(self.bits, other.bits, pick, strict=True)
        bits = tuple(a if (a == b or k) else b for a, b, k in pairs)
        return MacroGenome(self.phases, self.nodes, bits)

    def hamming(self, other: MacroGenome) -> int:
        """Number of differing bits (genomes must share phases and nodes)."""
        if (self.phases, self.nodes) != (other.phases, other.nodes):
            raise ValueError("hamming distance needs genomes of equal phases and nodes")
        return sum(a != b for a, b in zip(self.bits, other.bits, strict=True))


def genome_to_dict(genome: MacroGenome) -> dict[str, Any]:
    """``{"phases", "nodes", "bits"}`` (JSON- and pickle-friendly)."""
    return {"phases": genome.phases, "nodes": genome.nodes, "bits": list(genome.bits)}


def genome_from_dict(data: Mapping[str, Any]) -> MacroGenome:
    """Inverse of :func:`genome_to_dict`."""
    return MacroGenome(int(data["phases"]), int(data["nodes"]), tuple(data["bits"]))


def genome_from_key(key: str) -> MacroGenome:
    """Inverse of :meth:`MacroGenome.key` (``'macro:2x3:0001-0001'``).

    Raises:
        ValueError: ``key`` is not a macro genome key (the message shows the form).
    """
    kind, _, rest = str(key).partition(":")
    shape, _, groups = rest.partition(":")
    phases, _, nodes = shape.partition("x")
    bits = groups.replace("-", "")
    if kind != "macro" or not (phases.isdigit() and nodes.isdigit()) or not bits.isdigit():
        raise ValueError(
            f"not a genome key: {key!r}; expected 'macro:<phases>x<nodes>:<bits>-<bits>...'"
        )
    return MacroGenome(int(phases), int(nodes), tuple(int(b) for b in bits))
