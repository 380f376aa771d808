"""``check_model``: the conformance check every model plugin passes in its tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError
from streamal.train.model import ModelPlugin


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
    assert isinstance(parts, dict), f"{label}: loss parts must be a dict, got {type(parts)}"
    scalars = {k: v.item() if _scalar_tensor(v) else v for k, v in parts.items()}
    _check_floats("loss parts", scalars, label)
    assert not any(isinstance(v, torch.Tensor) and v.requires_grad for v in parts.values()), (
        f"{label}: loss parts must be detached (a part with a gradient keeps every step's graph)"
    )
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


def _scalar_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.dim() == 0


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
