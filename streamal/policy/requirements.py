"""What a policy needs from the model, checked from the config alone (``streamal validate``).

A model-driven policy names the model uncertainties it needs
(:meth:`~streamal.policy.base.Policy.needs_for`, from its options); a model plugin names those
it reports (its ``uncertainties`` class attribute, e.g. ``frozenset({"variance", "entropy"})``;
a model without one reports none). A run whose model lacks a needed key would fail at its
first active-learning task, after phase 0 was simulated and trained; ``validate`` refuses it.
Nothing is built: no space, no network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from streamal import plugins
from streamal.errors import PluginError

if TYPE_CHECKING:
    from streamal.config import RunConfig


def policy_name(cfg: RunConfig) -> str | None:
    """The configured policy, else the workflow's default one (None: the workflow has none)."""
    if cfg.policy is not None:
        return cfg.policy.name
    try:
        workflow = plugins.load("workflows", cfg.workflow.name)
    except PluginError:  # reported with workflow.name
        return None
    return getattr(workflow, "default_policy", None)


def check_policy_model(cfg: RunConfig) -> list[str]:
    """One ``model.name: ...`` line per uncertainty the policy needs and the model lacks.

    The policy is the config's ``policy``, or the workflow's ``default_policy`` (the
    active-learning workflows: ``uncertainty-mixture``). Plugins that cannot be loaded and
    options that do not validate are reported elsewhere and skipped here.

    Args:
        cfg: The run configuration (already valid in its own structure).

    Returns:
        Problems, e.g. ``model.name: model 'x' reports no uncertainty 'entropy', which policy
        'uncertainty-mixture' needs (set policy.options.entropy_weight: 0, or use a model that
        provides it)``.
    """
    if cfg.model is None:
        return []
    name = policy_name(cfg)
    if name is None:
        return []
    try:
        policy_cls = plugins.load("policies", name)
        model_cls = plugins.load("models", cfg.model.name)
        options = policy_cls.Options.model_validate(cfg.policy.options if cfg.policy else {})
        needs = frozenset(policy_cls.needs_for(options))
    except (PluginError, ValidationError, AttributeError):  # reported by the plugin checks
        return []
    reported = frozenset(getattr(model_cls, "uncertainties", frozenset()))
    optional = getattr(policy_cls, "optional_needs", {})
    problems = []
    for key in sorted(needs - reported):
        fix = f"set policy.options.{optional[key]}, or " if key in optional else ""
        problems.append(
            f"model.name: model {cfg.model.name!r} reports no uncertainty {key!r}, which "
            f"policy {name!r} needs ({fix}use a model that provides it)"
        )
    return problems
