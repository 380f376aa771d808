"""``nas-genome``: a searched architecture as a streamal model, for any simulator's data.

The network is the :class:`~.models.MacroNet` of one genome (``genome``, ``channels``,
``network``: what ``streamal nas-export`` writes from a search); its output is the
multitask layout of the generic model (:mod:`streamal.train.generic`): class logits (when
the space has more than one class), one value per regression target and the log σ² of
``network.variance`` (one shared, or one per target, as ``diffraction-cnn``'s). Loss,
metrics, uncertainty and predictions are the generic model's (cross-entropy + Gaussian NLL
over each class's free targets; ``accuracy``, ``class_loss``, ``mse``, ``mae_*``).

Inputs are encoded by another model plugin's :meth:`~streamal.train.model.ModelPlugin.
encode_inputs` (``encoder``: ``generic-mlp``'s per-sample standardisation by default;
``diffraction-cnn`` for its background removal and min-max scaling), so a search and the
campaign that uses its winner see the data the way the reference model does; targets are
:func:`streamal.train.targets.regression_scale`'s, as every built-in model's.

Inputs ``(L,)`` or ``(C, L)`` get Conv1d networks, ``(C, H, W)`` Conv2d ones.

Example (config)::

    model:
      name: nas-genome
      options:
        genome: "macro:2x3:0001-1001"
        channels: [8, 16]
        network: {stem_kernels: [7, 5], pool: 4, pool_last: true}
        encoder: {name: diffraction-cnn, options: {background: snip}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt, field_validator, model_validator

from streamal import plugins
from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError, PluginError
from streamal.plugins import PluginOptions
from streamal.train.generic import INITIAL_VARIANCE, GenericMlp
from streamal.train.model import ModelPlugin

from .genome import MacroGenome, genome_from_dict, genome_from_key
from .network import NetworkOptions

__all__ = ["EncoderOptions", "NasGenomeModel", "NasGenomeOptions", "parse_genome"]


def parse_genome(value: Any) -> MacroGenome:
    """A genome from its key string or ``{phases, nodes, bits}`` mapping.

    Raises:
        ValueError: Neither form, or bits that do not fit the shape.
    """
    if isinstance(value, MacroGenome):
        return value
    if isinstance(value, str):
        return genome_from_key(value)
    if isinstance(value, dict) and {"phases", "nodes", "bits"} <= set(value):
        return genome_from_dict(value)
    raise ValueError(
        f"expected a genome key ('macro:2x3:0001-1001') or {{phases, nodes, bits}}, got {value!r}"
    )


class EncoderOptions(PluginOptions):
    """The model plugin whose ``encode_inputs`` turns stored inputs into network inputs."""

    name: str = Field("generic-mlp", description="an installed model plugin")
    options: dict[str, Any] = Field(default_factory=dict, description="its model options")

    @model_validator(mode="after")
    def _known(self) -> EncoderOptions:
        if self.name == "nas-genome":
            raise ValueError("name: nas-genome encodes through another model; name that one")
        try:
            plugin = plugins.load("models", self.name)
        except PluginError as exc:  # a ValueError names the key path; it names the installed
            raise ValueError(f"name: {exc}") from None
        model = getattr(plugin, "Options", None)
        if model is not None:
            try:
                model.model_validate(self.options)
            except ValueError as err:  # pydantic's ValidationError is one
                first = err.errors()[0] if hasattr(err, "errors") else {"msg": str(err)}
                where = ".".join(str(p) for p in first.get("loc", ()))
                raise ValueError(f"options.{where}: {first['msg']}") from None
        return self


class NasGenomeOptions(PluginOptions):
    """``model.options`` of ``nas-genome``."""

    genome: str | dict[str, Any] = Field(
        description="the architecture: a genome key ('macro:2x3:0001-1001', the candidate "
        "table's genome column) or {phases, nodes, bits}"
    )
    channels: PositiveInt | list[PositiveInt] = Field(
        8, description="channels per phase: c (c, 2c, 4c, ...) or one per phase"
    )
    network: NetworkOptions = Field(
        default_factory=NetworkOptions, description="the network around the genome's DAGs"
    )
    encoder: EncoderOptions = Field(
        default_factory=EncoderOptions, description="whose input encoding to use"
    )

    @field_validator("genome")
    @classmethod
    def _genome(cls, value: Any) -> Any:
        parse_genome(value)
        return value

    @model_validator(mode="after")
    def _channels_fit(self) -> NasGenomeOptions:
        phases = parse_genome(self.genome).phases
        if isinstance(self.channels, list) and len(self.channels) != phases:
            raise ValueError(
                f"channels: {len(self.channels)} values for a genome of {phases} phases"
            )
        return self


class NasGenomeModel(GenericMlp):
    """A searched :class:`~.models.MacroNet` with class, value and log σ² heads."""

    name = "nas-genome"
    Options = NasGenomeOptions
    uncertainties = frozenset({"variance", "entropy"})
    options: NasGenomeOptions

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        ModelPlugin.__init__(self, space, input_shape, **options)
        self._init_targets(space)
        if not 1 <= len(self.input_shape) <= 3 or min(self.input_shape) < 1:
            raise ConfigError(
                f"model {self.name!r}: input_shape must be (L,), (C, L) or (C, H, W), got "
                f"{self.input_shape}"
            )
        per_target = self.options.network.variance == "per_parameter"
        self.n_variances = (self.n_targets if per_target else 1) if self.n_targets else 0
        self.genome = parse_genome(self.options.genome)
        self._encoder: ModelPlugin | None = None

    @property
    def dims(self) -> int:
        """1 (Conv1d) for ``(L,)`` and ``(C, L)`` inputs, 2 (Conv2d) for ``(C, H, W)``."""
        return 2 if len(self.input_shape) == 3 else 1

    @property
    def heads(self) -> list[int]:
        """Output widths: class logits (K > 1), then values and log σ² together."""
        values = self.n_targets + self.n_variances
        return [n for n in (self.n_logits, values) if n]

    def build(self) -> Any:
        import torch

        from .models import MacroNet

        shape = self.input_shape
        in_channels = 1 if len(shape) == 1 else shape[0]
        o = self.options
        net = MacroNet(
            self.genome,
            in_channels,
            self.heads,
            channels=o.channels,
            dims=self.dims,  # type: ignore[arg-type]
            network=o.network,
            input_size=shape[-self.dims :],
        )
        if self.n_targets:  # start at σ² = INITIAL_VARIANCE, as generic-mlp
            with torch.no_grad():
                net.heads[-1].bias[self.n_targets :] = math.log(INITIAL_VARIANCE)
        return net

    def encoder(self) -> ModelPlugin:
        """The ``encoder`` model plugin (built once, for its ``encode_inputs``)."""
        if self._encoder is None:
            e = self.options.encoder
            self._encoder = plugins.load("models", e.name)(
                self.space, self.input_shape, **e.options
            )
        return self._encoder

    @property
    def input_encoding(self) -> str:
        """How inputs are encoded, in words (``model.json``)."""
        from streamal.train.checkpoint import input_encoding

        return f"as {self.options.encoder.name}: {input_encoding(self.encoder())}"

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """The ``encoder`` model's encoding, as float32 ``(n, *input_shape)``."""
        x = self.encoder().encode_inputs(np.asarray(inputs, dtype=np.float32))
        return np.asarray(x, dtype=np.float32).reshape(-1, *self.input_shape)

    def _split(self, output: Any) -> tuple[Any, Any, Any]:
        """``(logits or None, values, σ² (n, T))``; a shared log σ² is broadcast."""
        k, t = self.n_logits, self.n_targets
        logits = output[:, :k] if k else None
        log_var = output[:, k + t :].clamp(-20.0, 20.0)
        var = log_var.exp().expand(-1, t) if self.n_variances == 1 else log_var.exp()
        return logits, output[:, k : k + t], var
