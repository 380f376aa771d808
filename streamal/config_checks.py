"""Checks of a parsed config against what is installed and the node it describes: each plugin's
``options`` against its own ``Options`` model, the model against what the policy needs, and the
site against its node (so ``validate`` refuses what ``run`` would refuse later)."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from streamal.config import PluginConfig, RunConfig, SiteConfig, format_validation_error
from streamal.errors import ConfigError, PluginError, StreamalError, one_line


def check_plugin_options(cfg: RunConfig) -> list[str]:
    """Validate each plugin section's ``options`` against the plugin's own ``Options`` model."""
    from streamal import plugins

    problems: list[str] = []
    sections = {
        "simulator": "simulators",
        "model": "models",
        "policy": "policies",
        "workflow": "workflows",
    }
    for section, kind in sections.items():
        pc: PluginConfig | None = getattr(cfg, section)
        if pc is None:
            continue
        try:
            plugin = plugins.load(kind, pc.name)
        except PluginError as exc:
            problems.append(f"{section}.name: {exc}")
            continue
        options_model = getattr(plugin, "Options", None)
        if isinstance(options_model, type) and issubclass(options_model, BaseModel):
            try:
                options_model.model_validate(pc.options)
            except ValidationError as err:
                problems += format_validation_error(err, options_model, (section, "options"))
        elif section == "simulator":  # a simulator checks its options when it is built
            try:
                plugin(**pc.options)
            except TypeError as exc:
                problems.append(f"simulator.options: {exc}")
            except (StreamalError, ValueError) as exc:
                problems.append(f"simulator.options: {exc}")
            except Exception as exc:  # a plugin's own bug: name it, no traceback
                problems.append(
                    f"simulator.options: building simulator {pc.name!r} raised "
                    f"{type(exc).__name__}: {one_line(exc)}"
                )
    from streamal.policy.requirements import check_policy_model  # the model has what it needs

    return problems + check_policy_model(cfg)


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
