"""The model plugin contract: what the DDP trainer and the AL prediction task need of a model.

A model plugin (entry-point group ``streamal.models``, or an import path
``package.module:Class``) turns stored samples into tensors, builds the network, and defines
the loss, the metrics and the per-sample uncertainty an active-learning policy samples by.
``generic-mlp`` (:mod:`streamal.train.generic`) fits any simulator's float32 output with no
model code; write a plugin when the data deserves its own network.

How it is called (``streamal/train/rank.py``, ``streamal/train/predict.py``):

1. Every DDP rank and every prediction worker constructs ``Plugin(space, input_shape,
   **options)`` from the JSON form of the space (``ParameterSpace.from_dict``), then calls
   :meth:`ModelPlugin.build` once; the trainer loads state dicts saved by other processes
   into it, so equal arguments must build equal architectures.
2. Stored rows are encoded with :meth:`~ModelPlugin.encode_inputs` and
   :meth:`~ModelPlugin.encode_targets` (numpy in, float32 numpy out, one row per sample).
3. Training: ``loss(module(x), classes, targets)`` on one mini-batch of torch tensors on the
   rank's device, in train mode, then ``backward()`` through DistributedDataParallel (every
   parameter must get a gradient).
4. Evaluation: ``module(x)`` in eval mode without gradients, batch by batch and rank by rank,
   the outputs concatenated along dim 0 into one CPU tensor; ``metrics(output, classes,
   targets)`` on the whole split; :meth:`~ModelPlugin.selection_score` of those metrics picks
   ``best.pt`` (lower is better).
5. Active learning: ``uncertainty(module(x))`` per batch of study rows (CPU, eval mode, no
   gradients) gives per-sample arrays; a policy reads the keys it needs, which the class
   declares in :attr:`ModelPlugin.uncertainties` so that ``validate`` can check the pairing
   before a run starts.

Standard uncertainty keys (:data:`STANDARD_UNCERTAINTIES`): ``variance``, the predictive
variance of the regression per sample (≥ 0); ``entropy``, the entropy of the class prediction
per sample in nats (0 ≤ H ≤ log K). Per-parameter metrics carry the parameter's unit from the
space (:func:`streamal.train.targets.metric_name`: ``mae_a_A``; ``mae_centre`` with no unit).

:func:`check_model` is the conformance check every model plugin should pass in its tests.
The module imports no torch at import time; plugins import it inside their methods.

Example (runnable)::

    import numpy as np

    from streamal.data.space import ClassSpace, ParameterSpace
    from streamal.train.model import ModelPlugin, check_model
    from streamal.train.targets import metric_name, regression_scale


    class LinearModel(ModelPlugin):  # class logits, scaled parameters, one log-variance
        name = "linear"
        uncertainties = frozenset({"variance", "entropy"})

        def __init__(self, space, input_shape, **options):
            super().__init__(space, input_shape, **options)
            self.targets, self.low, self.high = regression_scale(space)
            self.columns = [space.param_names.index(p) for p in self.targets]
            self.k = len(space.classes)

        def build(self):
            from torch import nn

            width = int(np.prod(self.input_shape))
            return nn.Sequential(nn.Flatten(), nn.Linear(width, self.k + len(self.targets) + 1))

        def encode_targets(self, classes, params):
            scaled = (params[:, self.columns] - self.low) / (self.high - self.low)
            return scaled.astype(np.float32)

        def _split(self, output):
            return output[:, : self.k], output[:, self.k : -1], output[:, -1]

        def loss(self, output, classes, targets):
            import torch.nn.functional as F

            logits, y, log_var = self._split(output)
            ce = F.cross_entropy(logits, classes)
            sq = ((y - targets) ** 2).sum(dim=1)
            nll = (sq * (-log_var).exp() + log_var).mean()
            return ce + nll, {"class_loss": ce.item(), "nll": nll.item()}

        def metrics(self, output, classes, targets):
            import torch.nn.functional as F

            logits, y, _ = self._split(output)
            err = (y - targets).abs().numpy() * (self.high - self.low)
            out = {
                "class_loss": float(F.cross_entropy(logits, classes)),
                "accuracy": float((logits.argmax(dim=1) == classes).float().mean()),
                "mse": float(((y - targets) ** 2).sum(dim=1).mean()),
            }
            for j, p in enumerate(self.targets):
                out[metric_name(self.space, "mae", p)] = float(err[:, j].mean())
            return out

        def uncertainty(self, output):
            import torch

            logits, _, log_var = self._split(output)
            p = torch.softmax(logits, dim=1)
            entropy = -(p * p.clamp_min(1e-12).log()).sum(dim=1)
            return {"variance": log_var.exp().numpy(), "entropy": entropy.numpy()}


    space = ParameterSpace(
        ("centre", "width"),
        (
            ClassSpace("narrow", {"centre": (0.2, 0.8)}, tied={"width": 0.02}),
            ClassSpace("wide", {"centre": (0.2, 0.8), "width": (0.05, 0.1)}),
        ),
        units={"centre": "mm", "width": "mm"},  # metrics: mae_centre_mm, mae_width_mm
    )
    check_model(LinearModel, space, input_shape=(64,))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError
from streamal.plugins import PluginOptions

STANDARD_UNCERTAINTIES: Mapping[str, str] = {
    "variance": "predictive variance of the regression, per sample (>= 0)",
    "entropy": "entropy of the class prediction, per sample, in nats (0 <= H <= log K)",
}
"""The uncertainty keys policies know, and what each means."""


class ModelPlugin(ABC):
    """Network, encodings, loss, metrics and uncertainty for one kind of sample.

    Subclasses set :attr:`name`, optionally :attr:`Options` and :attr:`uncertainties`, and
    implement :meth:`build`, :meth:`encode_targets`, :meth:`loss` and :meth:`metrics`
    (:meth:`encode_inputs`, :meth:`selection_score` and :meth:`uncertainty` have defaults).
    The constructor only derives what the methods need from its arguments; it is called
    in every training rank and prediction worker.

    Args:
        space: The run's parameter space (classes in play, their parameters and units).
        input_shape: Shape of one stored input (the simulator's ``output_shape``).
        **options: The config's ``model.options``, validated against :attr:`Options`.

    Attributes:
        name: Entry-point name.
        Options: Pydantic model of the options (a :class:`~streamal.plugins.PluginOptions`
            subclass: unknown keys are errors).
        uncertainties: The keys :meth:`uncertainty` returns (see
            :data:`STANDARD_UNCERTAINTIES`); empty for a model that reports none. Declared on
            the class so that ``validate`` can match it against a policy's needs without
            building the model.
        space: The ``space`` argument.
        input_shape: The ``input_shape`` argument, as a tuple.
        options: The validated options (an instance of :attr:`Options`).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions
    uncertainties: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        self.space = space
        self.input_shape = tuple(int(d) for d in input_shape)
        self.options = self.Options.model_validate(options)

    @abstractmethod
    def build(self) -> Any:
        """A fresh network.

        Returns:
            A ``torch.nn.Module`` whose ``forward`` takes one float32 tensor ``(b, ...)`` (a
            batch of :meth:`encode_inputs` rows) and returns one float32 tensor ``(b, ...)``:
            the first dimension is the batch, because outputs are concatenated along it. In
            eval mode a row's output depends only on its own input. Every parameter must take
            part in :meth:`loss` (DDP runs with ``find_unused_parameters`` off).
        """

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Stored inputs → network inputs. Identity (as float32) by default.

        Args:
            inputs: ``(n, *input_shape)`` simulator outputs as stored (float32).

        Returns:
            A float32 array ``(n, ...)``, each row computed from its own input only (the
            trainer encodes whole splits, the prediction task batches of study rows).
        """
        return np.asarray(inputs, dtype=np.float32)

    @abstractmethod
    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Stored labels → targets for :meth:`loss` and :meth:`metrics`.

        Args:
            classes: ``(n,)`` int64 class indices into ``space.classes``.
            params: ``(n, len(space.param_names))`` float64 full parameter vectors (tied
                parameters included).

        Returns:
            A float32 array ``(n, T)``, ``T`` fixed by the space (may be 0).
        """

    @abstractmethod
    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        """The training loss of one mini-batch.

        Args:
            output: The network's output tensor ``(b, ...)`` in train mode, with gradients,
                on the rank's device.
            classes: ``(b,)`` int64 tensor of class indices.
            targets: ``(b, T)`` float32 tensor from :meth:`encode_targets`.

        Returns:
            ``(loss, parts)``: a scalar tensor with a gradient (the mean over the batch) and
            its parts as Python floats ``{part: value}``, averaged over an epoch's batches
            into the history as ``train_<part>``.
        """

    @abstractmethod
    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        """Evaluation metrics of a whole split.

        Args:
            output: The eval-mode outputs of every batch of the split, concatenated along
                dim 0 into one CPU tensor without gradients.
            classes: ``(n,)`` int64 CPU tensor.
            targets: ``(n, T)`` float32 CPU tensor.

        Returns:
            Finite Python floats ``{name: value}`` (the history's ``val_<name>``, the test
            report). Per-parameter metrics are named with the parameter's unit from the space,
            :func:`streamal.train.targets.metric_name` (``mae_a_A``).
        """

    def selection_score(self, metrics: dict[str, float]) -> float:
        """The score that picks the best-validation checkpoint; lower is better.

        Args:
            metrics: What :meth:`metrics` returned on the validation split.

        Returns:
            A float; by default ``class_loss + mse`` (each 0 when absent).
        """
        return float(metrics.get("class_loss", 0.0) + metrics.get("mse", 0.0))

    def uncertainty(self, output: Any) -> dict[str, np.ndarray]:
        """Per-sample uncertainty measures, read by active-learning policies.

        Args:
            output: The eval-mode output tensor ``(n, ...)`` of a batch of study rows (CPU,
                no gradients).

        Returns:
            Exactly the keys declared in :attr:`uncertainties`, each a finite, non-negative
            ``(n,)`` array. Standard keys (:data:`STANDARD_UNCERTAINTIES`): ``variance``
            (regression predictive variance) and ``entropy`` (class-prediction entropy in
            nats).

        Raises:
            NotImplementedError: By default: the model reports no uncertainty (and declares
                none).
        """
        raise NotImplementedError(f"{self.name or type(self).__name__} reports no uncertainty")


def check_model(
    plugin_cls: type[ModelPlugin],
    space: ParameterSpace,
    input_shape: Sequence[int],
    *,
    options: Mapping[str, Any] | None = None,
    inputs: np.ndarray | None = None,
    n: int = 8,
    seed: int = 0,
) -> None:
    """Conformance check every model plugin must pass.

    Builds the model as the trainer does and runs encode → forward → loss → backward,
    metrics, selection score, uncertainty and a state-dict round trip on a small random batch
    covering every class, checking shapes, dtypes, finiteness, gradients, that a row's
    encoding and eval output do not depend on the rest of its batch, and that
    :meth:`~ModelPlugin.uncertainty` returns exactly the declared
    :attr:`~ModelPlugin.uncertainties`.

    Args:
        plugin_cls: The plugin class (what the entry point loads).
        space: A parameter space the model should handle.
        input_shape: Shape of one stored input.
        options: The model's options (default: none).
        inputs: ``(n, *input_shape)`` stored inputs to use instead of uniform noise in
            [0, 1) (for a model whose encoding needs realistic data).
        n: Batch size (raised to two samples per class).
        seed: Seed of the random batch and of the weights.

    Raises:
        AssertionError: With a message saying which property failed.
    """
    import io

    import torch

    label = getattr(plugin_cls, "name", "") or getattr(plugin_cls, "__name__", "the plugin")
    assert getattr(plugin_cls, "name", ""), f"{label}: the class needs a non-empty `name`"
    declared = getattr(plugin_cls, "uncertainties", None)
    assert isinstance(declared, frozenset) and all(isinstance(k, str) for k in declared), (
        f"{label}: `uncertainties` must be a frozenset of key names, got {declared!r}"
    )
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in input_shape)
    options = dict(options or {})
    k_classes = len(space.classes)
    if inputs is None:
        n = max(int(n), 2 * k_classes)
        raw = rng.random((n, *shape), dtype=np.float32)
    else:
        raw = np.asarray(inputs)
        n = len(raw)
        assert raw.shape == (n, *shape), f"inputs must have shape (n, *{shape}), got {raw.shape}"
    classes, params = _random_samples(space, n, rng)

    plugin = plugin_cls(space, shape, **options)
    assert type(plugin).uncertainties == declared, (
        f"{label}: the plugin class declares uncertainties {sorted(declared)} but the built "
        f"plugin {type(plugin).__name__} declares {sorted(type(plugin).uncertainties)}"
    )

    x = plugin.encode_inputs(raw)
    _check_rows("encode_inputs", x, n, label)
    one = plugin.encode_inputs(raw[:1])
    assert np.allclose(one, x[:1], rtol=1e-5, atol=1e-6), (
        f"{label}: encode_inputs of a row depends on the other rows of its batch"
    )
    y = plugin.encode_targets(classes, params)
    _check_rows("encode_targets", y, n, label)
    assert y.ndim == 2, f"{label}: encode_targets must return (n, T), got shape {y.shape}"

    torch.manual_seed(seed)
    net = plugin.build()
    assert isinstance(net, torch.nn.Module), (
        f"{label}: build() must return a torch.nn.Module, got {type(net).__name__}"
    )
    xt, ct, yt = torch.from_numpy(x), torch.from_numpy(classes), torch.from_numpy(y)
    net.train()
    out = net(xt)
    assert isinstance(out, torch.Tensor), (
        f"{label}: the module must return one tensor (outputs are concatenated), "
        f"got {type(out).__name__}"
    )
    assert out.dim() >= 1 and out.shape[0] == n, (
        f"{label}: output must have the batch first, ({n}, ...), got {tuple(out.shape)}"
    )
    assert out.dtype == torch.float32, f"{label}: output dtype {out.dtype}, not float32"
    assert torch.isfinite(out).all(), f"{label}: output has NaN or inf"

    loss, parts = plugin.loss(out, ct, yt)
    assert isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.dim() == 0, (
        f"{label}: loss must be a scalar tensor, got {type(loss).__name__} "
        f"{tuple(getattr(loss, 'shape', ()))}"
    )
    assert torch.isfinite(loss), f"{label}: loss is {float(loss.detach())}, not finite"
    assert loss.requires_grad, f"{label}: loss has no gradient (computed outside the graph?)"
    _check_floats("loss parts", parts, label)
    net.zero_grad(set_to_none=True)
    loss.backward()
    for pname, param in net.named_parameters():
        if not param.requires_grad:
            continue
        assert param.grad is not None, (
            f"{label}: parameter {pname!r} gets no gradient from the loss (DDP needs every "
            "parameter in the loss)"
        )
        assert torch.isfinite(param.grad).all(), f"{label}: gradient of {pname!r} is not finite"
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and any(bool(g.abs().sum() > 0) for g in grads), (
        f"{label}: the loss has zero gradient for every parameter"
    )

    net.eval()
    with torch.no_grad():
        full = net(xt)
        half = n // 2
        parts_out = torch.cat([net(xt[:half]), net(xt[half:])])
        assert torch.allclose(full, parts_out, rtol=1e-4, atol=1e-5), (
            f"{label}: in eval mode a row's output depends on the other rows of its batch"
        )
        metrics = plugin.metrics(full, ct, yt)
        _check_floats("metrics", metrics, label)
        score = plugin.selection_score(metrics)
        assert isinstance(score, (float, int)) and not isinstance(score, bool), (
            f"{label}: selection_score must return a float, got {type(score).__name__}"
        )
        assert np.isfinite(score), f"{label}: selection_score is {score}, not finite"
        _check_uncertainty(plugin, full, declared, n, k_classes, label)

        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        buffer.seek(0)
        again = plugin_cls(ParameterSpace.from_dict(space.to_dict()), shape, **options)
        torch.manual_seed(seed + 1)
        other = again.build()
        other.load_state_dict(torch.load(buffer, weights_only=True))
        other.eval()
        assert torch.allclose(other(xt), full, rtol=1e-5, atol=1e-6), (
            f"{label}: a model built again (space through to_dict/from_dict) with the saved "
            "state dict gives a different output"
        )


def _random_samples(
    space: ParameterSpace, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of the space, every class at least ``n // K`` times, constraints kept."""
    k = len(space.classes)
    classes = rng.permutation(np.arange(n) % k).astype(np.int64)
    params = np.empty((n, len(space.param_names)), dtype=np.float64)
    for i, c in enumerate(classes):
        cs = space.classes[int(c)]
        for _ in range(1000):
            row = space.complete(int(c), rng.uniform(cs.low, cs.high)[None, :])
            try:
                space.check(classes[i : i + 1], row)
            except ParameterError:
                continue
            break
        params[i] = row[0]
    return classes, params


def _check_rows(what: str, a: Any, n: int, label: str) -> None:
    assert isinstance(a, np.ndarray), f"{label}: {what} must return a numpy array, got {type(a)}"
    assert a.dtype == np.float32, f"{label}: {what} returned dtype {a.dtype}, not float32"
    assert a.ndim >= 1 and a.shape[0] == n, (
        f"{label}: {what} must return one row per sample, ({n}, ...), got {a.shape}"
    )
    assert np.isfinite(a).all(), f"{label}: {what} returned NaN or inf"


def _check_floats(what: str, values: Any, label: str) -> None:
    assert isinstance(values, dict), f"{label}: {what} must be a dict, got {type(values)}"
    for key, v in values.items():
        assert isinstance(key, str), f"{label}: {what} key {key!r} is not a string"
        assert isinstance(v, (float, int)) and not isinstance(v, bool), (
            f"{label}: {what}[{key!r}] must be a Python float, got {type(v).__name__}"
        )
        assert np.isfinite(v), f"{label}: {what}[{key!r}] = {v}, not finite"


def _check_uncertainty(
    plugin: ModelPlugin, output: Any, declared: frozenset[str], n: int, k: int, label: str
) -> None:
    try:
        got = plugin.uncertainty(output)
    except NotImplementedError:
        assert not declared, (
            f"{label}: declares uncertainties {sorted(declared)} but uncertainty() raises "
            "NotImplementedError"
        )
        return
    assert isinstance(got, dict), f"{label}: uncertainty() must return a dict, got {type(got)}"
    assert set(got) == set(declared), (
        f"{label}: uncertainty() returned keys {sorted(got)} but the class declares "
        f"uncertainties = {sorted(declared)}; they must be equal"
    )
    for key, v in got.items():
        assert isinstance(v, np.ndarray), (
            f"{label}: uncertainty()[{key!r}] must be a numpy array, got {type(v).__name__}"
        )
        assert v.shape == (n,), f"{label}: uncertainty()[{key!r}] has shape {v.shape}, not ({n},)"
        assert np.isfinite(v).all(), f"{label}: uncertainty()[{key!r}] has NaN or inf"
        assert (v >= 0).all(), f"{label}: uncertainty()[{key!r}] has negative values"
    if "entropy" in got:
        top = float(np.log(k)) + 1e-4
        assert (got["entropy"] <= top).all(), (
            f"{label}: uncertainty()['entropy'] exceeds log({k}) = {np.log(k):.4g} nats "
            f"(max {got['entropy'].max():.4g}): not the class-prediction entropy in nats"
        )
