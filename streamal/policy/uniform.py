"""Uniform draws and equally spaced sweeps over each class's parameter box."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from streamal.data.space import ClassSpace
from streamal.plugins import PluginOptions
from streamal.policy.base import Policy


def _separated(c: ClassSpace, free: np.ndarray) -> np.ndarray:
    """Rows of free values that satisfy the class's separation constraints."""
    ok = np.ones(len(free), dtype=bool)
    for (p, q), eps in c.min_separation.items():
        ok &= np.abs(free[:, c.free.index(p)] - free[:, c.free.index(q)]) > eps
    return ok


class UniformPolicy(Policy):
    """``n`` uniform draws per class from its box (constraint violations are redrawn).

    Model-free: it needs no predictions, has no study set and samples without :meth:`fit`.
    """

    name = "uniform"

    def _sample(self, n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        classes, params = [], []
        for k, c in enumerate(self.space.classes):
            free = rng.uniform(c.low, c.high, size=(n_per_class, len(c.free)))
            for _ in range(1000):
                bad = ~_separated(c, free)
                if not bad.any():
                    break
                free[bad] = rng.uniform(c.low, c.high, size=(int(bad.sum()), len(c.free)))
            classes.append(np.full(n_per_class, k))
            params.append(self.space.complete(k, free))
        return np.concatenate(classes), np.concatenate(params)


class SweepOptions(PluginOptions):
    jitter: float = Field(0.0, ge=0, description="uniform jitter, as a fraction of the spacing")


class SweepPolicy(Policy):
    """An equally spaced grid per class with about ``n`` points (paper's study set).

    Model-free: it needs no predictions, has no study set and samples without :meth:`fit`.
    """

    name = "sweep"
    Options = SweepOptions

    @staticmethod
    def grid(c: ClassSpace, n: int) -> np.ndarray:
        """About ``n`` equally spaced points filling the class box (cell centres)."""
        d = len(c.free)
        per_dim = max(1, int(np.ceil(n ** (1.0 / d) - 1e-9)))
        axes = [
            lo + (np.arange(per_dim) + 0.5) * (hi - lo) / per_dim
            for lo, hi in zip(c.low, c.high, strict=True)
        ]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        mesh = mesh[_separated(c, mesh)]
        if len(mesh) > n:  # keep an evenly spread subset of exactly n points
            mesh = mesh[np.linspace(0, len(mesh) - 1, n).round().astype(int)]
        return mesh

    def _sample(self, n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        classes, params = [], []
        for k, c in enumerate(self.space.classes):
            free = self.grid(c, n_per_class)
            if self.options.jitter:
                step = (c.high - c.low) / max(1, round(len(free) ** (1 / len(c.free))))
                free = np.clip(
                    free + rng.uniform(-0.5, 0.5, free.shape) * step * self.options.jitter,
                    c.low,
                    c.high,
                )
            while len(free) < n_per_class:  # constraint removed points: top up uniformly
                extra = rng.uniform(c.low, c.high, size=(n_per_class - len(free), len(c.free)))
                free = np.concatenate([free, extra[_separated(c, extra)]])
            classes.append(np.full(n_per_class, k))
            params.append(self.space.complete(k, free[:n_per_class]))
        return np.concatenate(classes), np.concatenate(params)
