"""The network around a genome's phase DAGs: kernels, strides, pooling, activation, head.

A genome fixes which nodes of each phase connect; :class:`NetworkOptions` fixes everything
else about the network :class:`~.models.MacroNet` builds from it. The defaults are NSGA-Net's
macro network (what the digits search has always used): a phase's channel change is a bare
conv (the first phase's of the node kernel, later ones 1x1), nodes are same-padded
conv-BN-ReLU, 2x max-pooling between phases, global average pooling and a linear head.

For long 1-D signals (a 2,806-point diffraction profile) set ``stem_kernels`` (every phase
opens with its own conv, kernel and stride, followed by the activation), ``pool_last`` and
perhaps a ``flatten`` head with a ``hidden`` layer; ``empty_phases: conv`` keeps a phase
whose genome bits connect nothing as that opening conv alone, so plain conv stacks such as
the reference ALBAND CNN are genomes too (:mod:`.reference`).

Example (workflow options or the ``nas-genome`` model's options)::

    network: {stem_kernels: [7, 5, 3], strides: [2, 1], pool: 4, pool_last: true}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from streamal.plugins import PluginOptions

__all__ = ["NetworkOptions"]


class NetworkOptions(PluginOptions):
    """Shape of the network around the genome's DAGs (defaults: NSGA-Net's macro network)."""

    kernel_size: PositiveInt = Field(3, description="kernel of the phase nodes' convs (odd)")
    stem_kernels: list[PositiveInt] | None = Field(
        None,
        min_length=1,
        description="kernel of each phase's opening conv (+ activation), the last repeating; "
        "null: NSGA-Net's bare channel-change conv (node kernel first, then 1x1)",
    )
    strides: list[PositiveInt] = Field(
        default=[1],
        min_length=1,
        description="stride of each phase's opening conv, the last repeating (needs stem_kernels)",
    )
    pool: PositiveInt = Field(2, description="max-pooling factor between phases")
    pool_last: bool = Field(False, description="max-pool after the last phase too")
    empty_phases: Literal["drop", "conv"] = Field(
        "drop",
        description="a phase whose bits connect no node: drop it (NSGA-Net) or keep its "
        "opening conv alone (needs stem_kernels)",
    )
    batch_norm: bool = Field(True, description="batch norm after every conv (else conv bias)")
    activation: Literal["relu", "leaky_relu"] = Field("relu", description="every activation")
    negative_slope: float = Field(0.1, ge=0, description="slope of leaky_relu below 0")
    padding: Literal["same", "valid"] = Field(
        "same",
        description="padding of the opening convs (nodes are always same-padded); valid "
        "also floors the pooled lengths, as plain CNNs do",
    )
    head: Literal["gap", "flatten"] = Field(
        "gap", description="global average pooling, or flatten (size fixed by the input)"
    )
    hidden: PositiveInt | None = Field(
        None, description="width of a dense layer (+ activation) before the output heads"
    )
    variance: Literal["shared", "per_parameter"] = Field(
        "shared",
        description="regression head's log σ²: one shared by every target (diffraction-cnn's "
        "default) or one per target",
    )

    @model_validator(mode="after")
    def _consistent(self) -> NetworkOptions:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {self.kernel_size}")
        if self.stem_kernels is None:
            if self.empty_phases == "conv":
                raise ValueError("empty_phases: conv needs stem_kernels (the conv it keeps)")
            if any(s != 1 for s in self.strides):
                raise ValueError("strides need stem_kernels (the convs they apply to)")
        return self

    def stem(self, phase: int) -> tuple[int, int] | None:
        """``(kernel, stride)`` of phase ``phase``'s opening conv, ``None`` without stems."""
        if self.stem_kernels is None:
            return None
        kernels, strides = self.stem_kernels, self.strides
        return kernels[min(phase, len(kernels) - 1)], strides[min(phase, len(strides) - 1)]
