"""Genome -> PyTorch model for 1-D signals (Conv1d) and 2-D images (Conv2d), plus cost counts.

:class:`MacroNet` decodes an NSGA-Net :class:`~streamal_nas.genome.MacroGenome`: each active
phase is a DAG of conv-BN-ReLU nodes whose inputs are summed (Genetic CNN style; NSGA-Net's
code concatenates and applies a 1x1 conv instead), inactive phases are removed as in
NSGA-Net's decoder, active phases are separated by 2x max-pooling, and a global average
pool feeds a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .genome import MacroGenome, PhaseDAG

__all__ = [
    "ConvBNAct",
    "MacroNet",
    "MacroPhase",
    "build_model",
    "count_flops",
    "count_parameters",
]

Dims = Literal[1, 2]


def _check_dims(dims: int) -> None:
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (Conv1d signals) or 2 (Conv2d images), got {dims!r}")


def _conv(dims: int, cin: int, cout: int, kernel: int, bias: bool = False) -> nn.Module:
    cls = nn.Conv1d if dims == 1 else nn.Conv2d
    return cls(cin, cout, kernel_size=kernel, padding=kernel // 2, bias=bias)


def _bn(dims: int, channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)


def _pool(dims: int, kernel: int) -> nn.Module:
    cls = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
    return cls(kernel, ceil_mode=True)  # ceil_mode keeps a size-1 axis valid


def _gap(dims: int) -> nn.Module:
    return nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[
        name
    ]


class ConvBNAct(nn.Sequential):
    """Same-padded convolution, batch norm, activation."""

    def __init__(
        self, dims: int, cin: int, cout: int, kernel: int = 3, activation: str = "relu"
    ) -> None:
        super().__init__(_conv(dims, cin, cout, kernel), _bn(dims, cout), _activation(activation))


class MacroPhase(nn.Module):
    """One active NSGA-Net phase: channel conv, DAG of conv-BN-ReLU nodes, output BN-ReLU.

    Args:
        dag: The decoded phase (must be active).
        in_channels: Channels entering the phase.
        out_channels: Channels of every node in the phase.
        dims: 1 or 2 spatial dimensions.
        kernel_size: Kernel of the node convolutions.
        stem_kernel: Kernel of the channel-changing input convolution, used only when
            ``in_channels != out_channels`` (NSGA-Net: 3 in the first phase, 1 afterwards).
    """

    def __init__(
        self,
        dag: PhaseDAG,
        in_channels: int,
        out_channels: int,
        dims: int,
        kernel_size: int = 3,
        stem_kernel: int = 1,
    ) -> None:
        super().__init__()
        if not dag.is_active:
            raise ValueError("MacroPhase needs an active phase; inactive phases are removed")
        self.dag = dag
        if in_channels == out_channels:
            self.stem: nn.Module = nn.Identity()
        else:
            self.stem = _conv(dims, in_channels, out_channels, stem_kernel)
        self.nodes = nn.ModuleDict(
            {str(i): ConvBNAct(dims, out_channels, out_channels, kernel_size) for i in dag.active}
        )
        self.out = nn.Sequential(_bn(dims, out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the phase DAG in topological order."""
        outs = {0: self.stem(x)}
        for i in self.dag.active:
            outs[i] = self.nodes[str(i)](sum(outs[j] for j in self.dag.inputs[i]))
        return self.out(sum(outs[j] for j in self.dag.inputs[self.dag.output]))


def _phase_channels(channels: int | Sequence[int], phases: int) -> list[int]:
    if isinstance(channels, int):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        return [channels * 2**p for p in range(phases)]
    chans = [int(c) for c in channels]
    if len(chans) != phases or min(chans) < 1:
        raise ValueError(
            f"channels must be an int or {phases} positive ints (one per phase), got {chans}"
        )
    return chans


class MacroNet(nn.Module):
    """NSGA-Net macro network for a :class:`MacroGenome`.

    Inactive phases are dropped and the ``k``-th active phase gets ``channels[k]`` (as
    NSGA-Net truncates its channel list); with no active phase the head sees the input
    channels directly.

    Args:
        genome: The macro genome.
        in_channels: Input channels (1 for diffraction patterns or digits).
        num_classes: Output logits.
        channels: Channels per phase; an int ``c`` means ``c, 2c, 4c, ...``.
        dims: 1 (signals, Conv1d) or 2 (images, Conv2d).
        kernel_size: Kernel of the node convolutions.
    """

    def __init__(
        self,
        genome: MacroGenome,
        in_channels: int,
        num_classes: int,
        channels: int | Sequence[int] = 16,
        dims: Dims = 2,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        _check_dims(dims)
        chans = _phase_channels(channels, genome.phases)
        layers: list[nn.Module] = []
        cin = in_channels
        active = [dag for dag in genome.decode() if dag.is_active]
        for k, dag in enumerate(active):
            if k > 0:
                layers.append(_pool(dims, 2))
            stem_k = kernel_size if k == 0 else 1
            layers.append(MacroPhase(dag, cin, chans[k], dims, kernel_size, stem_k))
            cin = chans[k]
        self.features = nn.Sequential(*layers)
        self.pool = _gap(dims)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, num_classes)``."""
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def build_model(
    genome: MacroGenome,
    in_channels: int,
    num_classes: int,
    dims: Dims = 2,
    channels: int | Sequence[int] = 16,
) -> nn.Module:
    """Build the :class:`MacroNet` of ``genome``."""
    if isinstance(genome, MacroGenome):
        return MacroNet(genome, in_channels, num_classes, channels=channels, dims=dims)
    raise TypeError(f"genome must be a MacroGenome, got {type(genome).__name__}")


def count_flops(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> int:
    """FLOPs of one forward pass, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Args:
        model: The model; run in eval mode under ``no_grad`` (its mode is restored).
        input_shape: Shape of one sample without the batch axis, e.g. ``(1, 2806)`` or
            ``(1, 8, 8)``.
        batch_size: Samples per forward pass.

    Returns:
        Total FLOPs (a multiply-add counts as 2) of convolutions and matrix products.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros((batch_size, *input_shape), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter elements."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
