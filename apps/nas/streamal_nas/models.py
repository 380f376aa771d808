"""Genome -> PyTorch model for 1-D signals (Conv1d) and 2-D images (Conv2d), plus cost counts.

:class:`MacroNet` decodes an NSGA-Net :class:`~streamal_nas.genome.MacroGenome`: each active
phase is a DAG of conv-BN-ReLU nodes whose inputs are summed (Genetic CNN style; NSGA-Net's
code concatenates and applies a 1x1 conv instead), inactive phases are removed as in
NSGA-Net's decoder, active phases are separated by 2x max-pooling, and a global average
pool feeds a linear head. :class:`~.network.NetworkOptions` changes what surrounds the DAGs
(opening convs, strides, pooling, activation, a flatten head with a hidden layer), and
``heads`` splits the output into several linear heads (class logits, regression values and
log σ²), concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .genome import MacroGenome, PhaseDAG
from .network import NetworkOptions

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


def _conv(
    dims: int,
    cin: int,
    cout: int,
    kernel: int,
    bias: bool = False,
    stride: int = 1,
    padding: int | None = None,
) -> nn.Module:
    cls = nn.Conv1d if dims == 1 else nn.Conv2d
    pad = kernel // 2 if padding is None else padding
    return cls(cin, cout, kernel_size=kernel, stride=stride, padding=pad, bias=bias)


def _bn(dims: int, channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)


def _pool(dims: int, kernel: int, ceil_mode: bool = True) -> nn.Module:
    cls = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
    return cls(kernel, ceil_mode=ceil_mode)  # ceil_mode keeps a size-1 axis valid


def _gap(dims: int) -> nn.Module:
    return nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)


def _activation(name: str, negative_slope: float = 0.1) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[
        name
    ]


class ConvBNAct(nn.Sequential):
    """Same-padded convolution, batch norm (or a conv bias without it), activation."""

    def __init__(
        self,
        dims: int,
        cin: int,
        cout: int,
        kernel: int = 3,
        activation: str = "relu",
        batch_norm: bool = True,
        negative_slope: float = 0.1,
    ) -> None:
        layers = [_conv(dims, cin, cout, kernel, bias=not batch_norm)]
        if batch_norm:
            layers.append(_bn(dims, cout))
        super().__init__(*layers, _activation(activation, negative_slope))


class MacroPhase(nn.Module):
    """One NSGA-Net phase: opening conv, DAG of conv-BN-act nodes, output BN-act.

    Args:
        dag: The decoded phase (active, unless ``network.empty_phases`` is ``conv``: an
            inactive phase is then its opening conv alone).
        in_channels: Channels entering the phase.
        out_channels: Channels of every node in the phase.
        dims: 1 or 2 spatial dimensions.
        kernel_size: Kernel of the node convolutions (``network.kernel_size`` when given).
        stem_kernel: Kernel of NSGA-Net's channel-changing input convolution, used only when
            ``in_channels != out_channels`` and ``network`` has no ``stem_kernels`` (NSGA-Net:
            3 in the first phase, 1 afterwards).
        network: The network's options; ``None``: NSGA-Net's (:class:`~.network.NetworkOptions`
            defaults).
        index: The phase's position among the kept phases (picks its opening conv).
    """

    def __init__(
        self,
        dag: PhaseDAG,
        in_channels: int,
        out_channels: int,
        dims: int,
        kernel_size: int = 3,
        stem_kernel: int = 1,
        network: NetworkOptions | None = None,
        index: int = 0,
    ) -> None:
        super().__init__()
        net = network if network is not None else NetworkOptions(kernel_size=kernel_size)
        if not dag.is_active and net.empty_phases != "conv":
            raise ValueError("MacroPhase needs an active phase; inactive phases are removed")
        self.dag = dag
        act = (net.activation, net.negative_slope)
        stem = net.stem(index)
        if stem is not None:
            k, stride = stem
            pad = k // 2 if net.padding == "same" else 0
            parts = [_conv(dims, in_channels, out_channels, k, not net.batch_norm, stride, pad)]
            if net.batch_norm:
                parts.append(_bn(dims, out_channels))
            self.stem: nn.Module = nn.Sequential(*parts, _activation(*act))
        elif in_channels == out_channels:
            self.stem = nn.Identity()
        else:
            self.stem = _conv(dims, in_channels, out_channels, stem_kernel)
        k = net.kernel_size
        self.nodes = nn.ModuleDict(
            {
                str(i): ConvBNAct(
                    dims, out_channels, out_channels, k, net.activation, net.batch_norm, act[1]
                )
                for i in dag.active
            }
        )
        out = [_bn(dims, out_channels)] if net.batch_norm else []
        self.out = nn.Sequential(*out, _activation(*act)) if dag.is_active else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the phase DAG in topological order."""
        outs = {0: self.stem(x)}
        if not self.dag.is_active:
            return outs[0]
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

    Inactive phases are dropped (kept as their opening conv with ``network.empty_phases:
    conv``) and the ``k``-th kept phase gets ``channels[k]`` (as NSGA-Net truncates its
    channel list); with no phase the head sees the input channels directly.

    Args:
        genome: The macro genome.
        in_channels: Input channels (1 for diffraction patterns or digits).
        num_classes: Output width of the one linear head, or the widths of several heads
            whose outputs are concatenated (e.g. ``[classes, targets + 1]``).
        channels: Channels per phase; an int ``c`` means ``c, 2c, 4c, ...``.
        dims: 1 (signals, Conv1d) or 2 (images, Conv2d).
        kernel_size: Kernel of the node convolutions (without ``network``).
        network: What surrounds the DAGs (default: NSGA-Net's network).
        input_size: Spatial shape of one input (no channel axis); needed by a ``flatten``
            head. A ``(batch, *input_size)`` input gets its channel axis added.
    """

    def __init__(
        self,
        genome: MacroGenome,
        in_channels: int,
        num_classes: int | Sequence[int],
        channels: int | Sequence[int] = 16,
        dims: Dims = 2,
        kernel_size: int = 3,
        network: NetworkOptions | None = None,
        input_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        _check_dims(dims)
        net = network if network is not None else NetworkOptions(kernel_size=kernel_size)
        self.dims = dims
        chans = _phase_channels(channels, genome.phases)
        layers: list[nn.Module] = []
        cin = in_channels
        keep = net.empty_phases == "conv"
        kept = [dag for dag in genome.decode() if dag.is_active or keep]
        ceil = net.padding == "same"
        for k, dag in enumerate(kept):
            if k > 0:
                layers.append(_pool(dims, net.pool, ceil))
            stem_k = net.kernel_size if k == 0 else 1
            layers.append(MacroPhase(dag, cin, chans[k], dims, net.kernel_size, stem_k, net, k))
            cin = chans[k]
        if net.pool_last and kept:
            layers.append(_pool(dims, net.pool, ceil))
        self.features = nn.Sequential(*layers)
        if net.head == "gap":
            self.pool: nn.Module = nn.Sequential(_gap(dims), nn.Flatten())
        else:
            if input_size is None:
                raise ValueError("a flatten head needs input_size (the input's spatial shape)")
            self.pool = nn.Flatten()
        width = cin
        if net.head == "flatten":
            with torch.no_grad():
                probe = torch.zeros(1, in_channels, *input_size)
                width = int(self.pool(self.features.eval()(probe)).shape[1])
            self.features.train()
        if net.hidden is not None:
            self.hidden: nn.Module = nn.Sequential(
                nn.Linear(width, net.hidden), _activation(net.activation, net.negative_slope)
            )
            width = net.hidden
        else:
            self.hidden = nn.Identity()
        if isinstance(num_classes, int):
            self.head = nn.Linear(width, num_classes)
        else:
            self.heads = nn.ModuleList(nn.Linear(width, int(n)) for n in num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (or the heads' outputs, concatenated) of shape ``(batch, outputs)``."""
        if x.dim() == self.dims + 1:
            x = x.unsqueeze(1)
        h = self.hidden(self.pool(self.features(x)))
        if hasattr(self, "head"):
            return self.head(h)
        return torch.cat([head(h) for head in self.heads], dim=1)


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
