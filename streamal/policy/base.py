"""The policy interface: where to simulate next, asked and told like an optimiser.

A policy draws ``(classes, params)`` — full parameter vectors inside a
:class:`~streamal.data.space.ParameterSpace`. A *model-driven* policy names the model
uncertainties it :attr:`~Policy.needs`, owns the :meth:`~Policy.study_set` the model is asked
about, and is told the model's predictions on that set with :meth:`~Policy.fit` before it
samples; a *model-free* policy (``uniform``, ``sweep``) needs neither and samples at once.

The public methods check their inputs and outputs and log; a subclass implements only the
underscored ones: ``_sample`` always, ``_study_set`` and ``_fit`` when it needs predictions,
``_sample_total`` when the class of each sample should follow the policy (the default spreads
a total evenly over the classes). What a policy needs and how large its study set is are
classmethods of its options alone (:meth:`~Policy.needs_for`, :meth:`~Policy.study_rows_for`),
so ``validate`` and the footprint read them without building a space.

Before the first model is trained there is nothing to fit on: workflows then draw uniformly
(the warm-up) and switch to the policy once it is :attr:`~Policy.ready`.

Example:
    >>> import numpy as np
    >>> from streamal.data.space import ClassSpace, ParameterSpace
    >>> from streamal.policy import check_policy
    >>> from streamal.policy.uncertainty import UncertaintyMixturePolicy
    >>> space = ParameterSpace(
    ...     ("x",), (ClassSpace("a", {"x": (0.0, 1.0)}), ClassSpace("b", {"x": (0.0, 2.0)}))
    ... )
    >>> policy = UncertaintyMixturePolicy(space, study_size=8, entropy_weight=0.0)
    >>> sorted(policy.needs), policy.study_rows, policy.ready
    (['variance'], 16, False)
    >>> classes, params = policy.study_set(np.random.default_rng(0))
    >>> variance = params[:, 0] ** 2  # stands in for the model's predictions on the study set
    >>> policy = policy.fit(classes, params, {"variance": variance})
    >>> c, p = policy.sample_total(5, np.random.default_rng(1))
    >>> c.shape, p.shape, policy.ready
    ((5,), (5, 1), True)
    >>> check_policy(policy)
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError, PluginError
from streamal.plugins import PluginOptions

log = logging.getLogger(__name__)

#: A draw: ``(classes (n,) int64, params (n, P) float64)``.
Draw = tuple[np.ndarray, np.ndarray]


class Policy(ABC):
    """Chooses the next samples.

    Args:
        space: The run's parameter space.
        **options: Validated against :attr:`Options` (the config's ``policy.options``).

    Attributes:
        name: Plugin name, recorded as the origin of every sample the policy draws.
        Options: Pydantic model of the options.
        optional_needs: Needs that an option turns off, ``key -> "option: value"``;
            ``validate`` suggests that setting when the model does not report ``key``.
        weights_: Optional learned state of a model-driven policy: after :meth:`fit`, the
            weight (≥ 0) it gave each study point, ``(n,)`` in the order of ``fit``'s study
            arrays. The workflows save it with each AL batch (``study_weights`` in
            ``al/phase-<k>.npz``) for the report's sample-distribution figure; a policy that
            does not weight its study set leaves it unset (or None).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions
    optional_needs: ClassVar[Mapping[str, str]] = {}

    def __init__(self, space: ParameterSpace, **options: Any) -> None:
        self.space = space
        self.options = self.Options.model_validate(options)
        self._fitted = False

    # -- what the policy needs, from its options alone -------------------------------------------
    @classmethod
    def needs_for(cls, options: BaseModel) -> frozenset[str]:
        """Model uncertainty keys a policy with these options needs (default: none).

        Args:
            options: Validated :attr:`Options`.

        Returns:
            Keys of the model's ``uncertainty()``, e.g. ``{"variance", "entropy"}``.
        """
        return frozenset()

    @classmethod
    def study_rows_for(cls, options: BaseModel, n_classes: int) -> int:
        """Rows of the study set of a policy with these options (default: 0, no study set).

        Args:
            options: Validated :attr:`Options`.
            n_classes: Classes in the space.
        """
        return 0

    @property
    def needs(self) -> frozenset[str]:
        """Model uncertainty keys :meth:`fit` needs; empty for a model-free policy."""
        return frozenset(self.needs_for(self.options))

    @property
    def study_rows(self) -> int:
        """Rows :meth:`study_set` returns (0: it returns None)."""
        return int(self.study_rows_for(self.options, len(self.space.classes)))

    @property
    def fitted(self) -> bool:
        """:meth:`fit` has succeeded at least once."""
        return getattr(self, "_fitted", False)

    @property
    def ready(self) -> bool:
        """It can sample: it needs no predictions, or it has been fitted."""
        return self.fitted or not self.needs

    # -- ask/tell ---------------------------------------------------------------------------------
    def study_set(self, rng: np.random.Generator) -> Draw | None:
        """The points whose predictions :meth:`fit` takes; None when the policy needs none.

        The workflow simulates them once (phase 0) and hands :meth:`fit` the current model's
        predictions on the stored ones after each training.

        Args:
            rng: Source of any randomness (the same seed gives the same set).

        Returns:
            ``(classes (n,), params (n, P))`` with ``n ==`` :attr:`study_rows`, or None.

        Raises:
            PluginError: The set's size or shapes disagree with :attr:`study_rows`, or a
                policy that needs predictions has no study set.
        """
        out = self._study_set(rng)
        rows = self.study_rows
        if out is None:
            if rows or self.needs:
                raise PluginError(
                    f"policy {self.name!r}: study_set() returned None, but the policy "
                    f"needs {sorted(self.needs)} and declares {rows} study rows"
                )
            return None
        classes, params = self._checked(out, rows, "study_set()")
        log.debug("policy %s: study set of %d points", self.name, len(classes))
        return classes, params

    def fit(
        self,
        study_classes: np.ndarray,
        study_params: np.ndarray,
        predictions: Mapping[str, np.ndarray],
        *,
        model: str | None = None,
    ) -> Policy:
        """Tell the policy the model's predictions on its study set.

        Args:
            study_classes: Class of each study point that was stored, ``(n,)``.
            study_params: Their parameter vectors, ``(n, P)``.
            predictions: The model's uncertainty per study point, ``key -> (n,)``; every key
                of :attr:`needs` (others are ignored).
            model: Name of the model that predicted, for error messages.

        Returns:
            self, fitted.

        Raises:
            PluginError: A needed key is missing, or a prediction has the wrong shape or is
                not finite (the message names policy, key and model).
        """
        source = f"model {model!r}" if model else "the predictions"
        needs = self.needs
        missing = sorted(needs - set(predictions))
        if missing:
            raise PluginError(
                f"policy {self.name!r} needs the model uncertainty {missing[0]!r}, which "
                f"{source} did not report (got {sorted(predictions)}); use a model whose "
                f"uncertainty() returns {sorted(needs)}"
            )
        classes = np.asarray(study_classes, dtype=np.int64)
        params = np.asarray(study_params, dtype=np.float64)
        p = len(self.space.param_names)
        if classes.ndim != 1 or params.shape != (len(classes), p):
            raise ParameterError(
                f"policy {self.name!r}: study classes {classes.shape} and params "
                f"{params.shape} do not match; expected (n,) and (n, {p})"
            )
        told: dict[str, np.ndarray] = {}
        for key in sorted(needs):
            value = np.asarray(predictions[key], dtype=np.float64)
            if value.shape != classes.shape or not np.isfinite(value).all():
                raise PluginError(
                    f"policy {self.name!r}: uncertainty {key!r} from {source} must be "
                    f"{len(classes)} finite values, one per study point (got shape "
                    f"{value.shape}{'' if value.shape != classes.shape else ', not finite'})"
                )
            told[key] = value
        start = time.perf_counter()
        self._fitted = False
        self._fit(classes, params, told)
        self._fitted = True
        log.debug(
            "policy %s: fitted on %d study points (%s) in %.3f s",
            self.name,
            len(classes),
            ", ".join(sorted(told)) or "no predictions",
            time.perf_counter() - start,
        )
        return self

    def sample(self, n_per_class: int, rng: np.random.Generator) -> Draw:
        """``n_per_class`` samples of every class.

        Returns:
            ``(classes (n,), params (n, P))``, ``n = n_per_class · len(space.classes)``.

        Raises:
            ParameterError: The policy needs predictions and has not been fitted.
        """
        n_per_class = self._count(n_per_class, "n_per_class")
        self._require_ready("sample")
        k = len(self.space.classes)
        if n_per_class == 0:
            return self._empty()
        classes, params = self._checked(self._sample(n_per_class, rng), n_per_class * k, "sample()")
        counts = np.bincount(classes, minlength=k)
        if len(counts) != k or (counts != n_per_class).any():
            raise PluginError(
                f"policy {self.name!r}: sample({n_per_class}) drew {counts.tolist()} per class"
            )
        log.debug("policy %s: drew %d per class", self.name, n_per_class)
        return classes, params

    def sample_total(self, n: int, rng: np.random.Generator) -> Draw:
        """``n`` samples in all, the policy deciding the class of each.

        Returns:
            ``(classes (n,), params (n, P))``.

        Raises:
            ParameterError: The policy needs predictions and has not been fitted.
        """
        n = self._count(n, "n")
        self._require_ready("sample_total")
        if n == 0:
            return self._empty()
        classes, params = self._checked(self._sample_total(n, rng), n, "sample_total()")
        log.debug("policy %s: drew %d in all", self.name, n)
        return classes, params

    # -- what subclasses implement ----------------------------------------------------------------
    @abstractmethod
    def _sample(self, n_per_class: int, rng: np.random.Generator) -> Draw:
        """``n_per_class`` (> 0) samples of every class; called only when :attr:`ready`."""

    def _sample_total(self, n: int, rng: np.random.Generator) -> Draw:
        """``n`` (> 0) samples spread over the classes: ⌈n/k⌉ of each, one fewer of the last
        classes where ``n`` is not a multiple of k (classes in order, as :meth:`sample`)."""
        k = len(self.space.classes)
        per = -(-n // k)
        classes, params = self.sample(per, rng)
        keep = np.ones(len(classes), dtype=bool)
        for dropped in range(k - (per * k - n), k):
            keep[np.flatnonzero(classes == dropped)[-1]] = False
        return classes[keep], params[keep]

    def _study_set(self, rng: np.random.Generator) -> Draw | None:
        """The study set (default: none)."""
        return None

    def _fit(
        self, classes: np.ndarray, params: np.ndarray, predictions: dict[str, np.ndarray]
    ) -> None:
        """Learn from the predictions (exactly the keys of :attr:`needs`, checked, float64).

        Default: nothing to learn (a model-free policy)."""
        return None

    # -- helpers ----------------------------------------------------------------------------------
    def _count(self, n: Any, what: str) -> int:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ParameterError(f"policy {self.name!r}: {what} must be an integer >= 0, got {n!r}")
        return int(n)

    def _require_ready(self, what: str) -> None:
        if not self.ready:
            raise ParameterError(
                f"policy {self.name!r} needs the model's {sorted(self.needs)}: call fit(study "
                f"classes, params, predictions) before {what}() (workflows draw uniformly "
                f"until the first model is trained)"
            )

    def _empty(self) -> Draw:
        return np.empty(0, dtype=np.int64), np.empty((0, len(self.space.param_names)))

    def _checked(self, out: Any, n: int, what: str) -> Draw:
        """``out`` as ``(classes int64 (n,), params float64 (n, P))``, or a PluginError."""
        try:
            classes, params = out
        except (TypeError, ValueError):
            raise PluginError(
                f"policy {self.name!r}: {what} must return (classes, params), "
                f"got {type(out).__name__}"
            ) from None
        classes = np.asarray(classes)
        params = np.asarray(params, dtype=np.float64)
        p = len(self.space.param_names)
        if classes.shape != (n,) or params.shape != (n, p):
            raise PluginError(
                f"policy {self.name!r}: {what} returned classes {classes.shape} and params "
                f"{params.shape}; expected ({n},) and ({n}, {p})"
            )
        if n and not np.issubdtype(classes.dtype, np.integer):
            raise PluginError(f"policy {self.name!r}: {what} returned {classes.dtype} classes")
        return classes.astype(np.int64, copy=False), params
