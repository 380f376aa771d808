"""Checks of a parsed config against what is installed and the node it describes: each plugin's
``options`` against its own ``Options`` model, the model against what the policy needs, and the
site against its node (so ``validate`` refuses what ``run`` would refuse later)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from streamal.config import PluginConfig, RunConfig, SiteConfig, format_validation_error
from streamal.errors import ConfigError, PluginError, StreamalError, one_line

#: The config's plugin sections and the entry-point kind each names.
PLUGIN_SECTIONS: dict[str, str] = {
    "simulator": "simulators",
    "model": "models",
    "policy": "policies",
    "workflow": "workflows",
}


def check_plugin_section(section: str, name: str, options: dict[str, Any]) -> list[str]:
    """Problems of one plugin section: the plugin ``name`` cannot be loaded, or ``options``
    do not fit its ``Options`` model (a simulator without one: building it fails)."""
    from streamal import plugins

    try:
        plugin = plugins.load(PLUGIN_SECTIONS[section], name)
    except PluginError as exc:
        return [f"{section}.name: {exc}"]
    options_model = getattr(plugin, "Options", None)
    if isinstance(options_model, type) and issubclass(options_model, BaseModel):
        try:
            options_model.model_validate(options)
        except ValidationError as err:
            return format_validation_error(err, options_model, (section, "options"))
    elif section == "simulator":  # a simulator checks its options when it is built
        try:
            plugin(**options)
        except (TypeError, StreamalError, ValueError) as exc:
            return [f"simulator.options: {exc}"]
        except Exception as exc:  # a plugin's own bug: name it, no traceback
            return [
                f"simulator.options: building simulator {name!r} raised "
                f"{type(exc).__name__}: {one_line(exc)}"
            ]
    return []


def check_plugin_options(cfg: RunConfig) -> list[str]:
    """Validate each plugin section's ``options`` against the plugin's own ``Options`` model."""
    problems: list[str] = []
    for section in PLUGIN_SECTIONS:
        pc: PluginConfig | None = getattr(cfg, section)
        if pc is not None:
            problems += check_plugin_section(section, pc.name, pc.options)
    from streamal.policy.requirements import check_policy_model  # the model has what it needs

    return problems + check_policy_model(cfg)


def check_raw_sections(
    data: dict[str, Any],
    bad: Sequence[tuple[int | str, ...]],
    *,
    check_plugins: bool = True,
    check_node: bool = True,
) -> list[str]:
    """The checks of a config that did not validate, on the sections that did.

    So that one ``validate`` lists every problem, not the key errors first and a misspelt
    plugin name only once they are fixed.

    Args:
        data: The config mapping, as loaded.
        bad: Key paths of the problems already found (pydantic's ``loc``); a section with a
            problem at the section itself, its ``name`` or its ``options`` is not checked
            again, nor a ``site`` with any problem.
        check_plugins: Check each plugin section's ``name`` and ``options``.
        check_node: Check a well-formed ``site`` against its node (:func:`check_site`).

    Returns:
        One ``key.path: ...`` line per problem.
    """
    problems: list[str] = []
    if check_plugins:
        for section in PLUGIN_SECTIONS:
            raw = data.get(section)
            if not isinstance(raw, dict) or any(
                loc[:1] == (section,) and (len(loc) == 1 or loc[1] in ("name", "options"))
                for loc in bad
            ):
                continue
            name, options = raw.get("name"), raw.get("options", {})
            if isinstance(name, str) and name and isinstance(options, dict):
                problems += check_plugin_section(section, name, options)
    if check_node and not any(loc[:1] == ("site",) for loc in bad):
        try:
            site = SiteConfig.model_validate(data.get("site") or {})
        except ValidationError:  # reported already
            return problems
        problems += check_site(site)
    return problems


def check_site(site: SiteConfig) -> list[str]:
    """Problems that :func:`~streamal.cluster.plan.plan_for` would raise when the run starts.

    Each site is checked against its profile's node (``local``: this node's usable cores and
    GPUs), so ``validate`` refuses what ``run`` would refuse after preparing the run.

    Returns:
        One ``site.<key>: ...`` line per problem (at most one).
    """
    from streamal.cluster import sites
    from streamal.cluster.plan import NodePlan

    try:
        topology = sites.get(site.name).topology()
    except PluginError as exc:
        return [f"site.name: {exc}"]
    n_cores = len(topology.cores)
    if site.trainer_ranks is not None and not topology.gpus:
        # Without GPUs every rank pins at least cores_per_rank (default: 1 on a tight node)
        # cores and one core must stay with the simulator pool; name the rank count, which
        # is what is too large (NodePlan would blame the cores of the first rank that misses).
        per = site.cores_per_rank or 1
        most = (n_cores - 1) // per
        if most >= 1 and site.trainer_ranks > most:
            return [
                f"site.trainer_ranks: {site.trainer_ranks} ranks x {per} core(s) do not fit "
                f"the {n_cores} usable cores of site {site.name!r} and leave one for the "
                f"simulator pool; allowed: 1..{most}"
            ]
    try:
        NodePlan.build(
            topology,
            site=site.name,
            trainer_ranks=site.trainer_ranks,
            cores_per_rank=site.cores_per_rank,
            sim_workers=site.sim_workers,
        )
    except ConfigError as exc:
        return [str(exc)]
    return []
