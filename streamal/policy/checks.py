"""``check_policy``: the conformance check every policy plugin passes in its tests."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from streamal.errors import ParameterError, PluginError
from streamal.policy.base import Draw, Policy


def _raises(error: type[Exception], call: Any, what: str) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError(f"{what} did not raise {error.__name__}")


def _same(a: Draw, b: Draw) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def check_policy(policy: Policy, *, n: int = 50, seed: int = 0) -> None:
    """Conformance check every policy plugin should pass in its tests.

    Works on a copy (the policy passed in is left as it was). Checks :meth:`Policy.study_set`
    (None exactly when :attr:`~Policy.study_rows` is 0; size, shapes, inside the space,
    deterministic under a seed), that a policy with :attr:`~Policy.needs` refuses to sample
    before :meth:`~Policy.fit` and refuses a fit without any one needed key, that it fits on
    synthetic predictions for every needed key, then :meth:`~Policy.sample` (shapes, inside the
    space, ``n`` per class, deterministic) and :meth:`~Policy.sample_total` (``n`` and an
    uneven total in all, inside the space, deterministic).

    Args:
        policy: The policy, fitted or not.
        n: Samples per class for ``sample``, and the total for ``sample_total``.
        seed: Seed of every draw.

    Raises:
        AssertionError: Naming the first check that failed.
    """
    policy = copy.deepcopy(policy)
    space, name = policy.space, policy.name or type(policy).__name__
    k, p = len(space.classes), len(space.param_names)

    def rng() -> np.random.Generator:
        return np.random.default_rng(seed)

    needs = policy.needs
    assert isinstance(needs, frozenset) and all(isinstance(x, str) for x in needs), (
        f"{name}: needs must be a frozenset of str, got {needs!r}"
    )
    study = policy.study_set(rng())
    if study is None:
        assert not needs, f"{name}: needs {sorted(needs)} but has no study set"
        study = policy._empty()
    else:
        assert len(study[0]) == policy.study_rows > 0, f"{name}: study set size"
        assert _same(study, policy.study_set(rng())), f"{name}: study set not deterministic"
        space.check(*study)
    if needs:
        fresh = type(policy)(space, **policy.options.model_dump())
        assert not fresh.ready, f"{name}: ready before fit although it needs {sorted(needs)}"
        _raises(ParameterError, lambda: fresh.sample(1, rng()), f"{name}: sample() before fit")
        _raises(ParameterError, lambda: fresh.sample_total(1, rng()), f"{name}: sample_total()")
    gen = np.random.default_rng([seed, 1])
    predictions = {key: gen.gamma(1.0, size=len(study[0])) for key in sorted(needs)}
    for key in sorted(needs):
        partial = {other: v for other, v in predictions.items() if other != key}
        _raises(
            PluginError,
            lambda partial=partial: copy.deepcopy(policy).fit(*study, partial),
            f"{name}: fit() without the needed key {key!r}",
        )
    assert policy.fit(*study, predictions) is policy, f"{name}: fit() must return self"
    assert policy.fitted and policy.ready, f"{name}: not ready after fit()"

    c1, p1 = policy.sample(n, rng())
    assert c1.shape == (n * k,) and p1.shape == (n * k, p), f"shapes {c1.shape}, {p1.shape}"
    assert _same((c1, p1), policy.sample(n, rng())), "not deterministic under a seed"
    space.check(c1, p1)
    assert np.bincount(c1, minlength=k).tolist() == [n] * k, "not n samples per class"
    for total in (n, n * k + 1):
        c2, p2 = policy.sample_total(total, rng())
        assert c2.shape == (total,) and p2.shape == (total, p), (
            f"sample_total({total}): shapes {c2.shape}, {p2.shape}"
        )
        assert _same((c2, p2), policy.sample_total(total, rng())), (
            f"sample_total({total}) not deterministic under a seed"
        )
        space.check(c2, p2)
