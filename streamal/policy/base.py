"""The policy interface: draw ``(classes, params)`` from a parameter space."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from streamal.data.space import ParameterSpace
from streamal.plugins import PluginOptions


class Policy(ABC):
    """Chooses the next samples. ``sample`` returns full parameter vectors inside the space."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions

    def __init__(self, space: ParameterSpace, **options: Any) -> None:
        self.space = space
        self.options = self.Options.model_validate(options)

    @abstractmethod
    def sample(self, n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n_per_class`` samples of every class: ``(classes (n,), params (n, P))``."""


def check_policy(policy: Policy, *, n: int = 50, seed: int = 0) -> None:
    """Conformance: shapes, every sample inside the space, determinism under a seed."""
    c1, p1 = policy.sample(n, np.random.default_rng(seed))
    c2, p2 = policy.sample(n, np.random.default_rng(seed))
    k = len(policy.space.classes)
    assert c1.shape == (n * k,) and p1.shape == (n * k, len(policy.space.param_names)), (
        f"shapes {c1.shape}, {p1.shape}"
    )
    assert np.array_equal(c1, c2) and np.array_equal(p1, p2), "not deterministic under a seed"
    policy.space.check(c1, p1)
    assert np.bincount(c1, minlength=k).tolist() == [n] * k, "not n samples per class"
