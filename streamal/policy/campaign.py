"""A finished campaign's policy, fitted again on its final model: where it would sample next.

For data drawn the way an active-learning campaign draws it (the ``nas`` workflow's
``simulate`` dataset with ``policy_run``): :func:`campaign_policy` reads the run directory —
its config's ``policy`` (the workflow's default when the config has none), its last trained
model (:func:`~streamal.inference.model_files.find_model`) and its stored study set — and
:meth:`CampaignPolicy.fitted` tells a new policy of that kind the model's uncertainty on the
study set, predicted as a task on the ``train`` pool, as the campaign's next AL task would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import plugins
from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError, PluginError, StoreError
from streamal.inference.errors import ModelFilesError
from streamal.inference.model_files import ModelFiles, find_model
from streamal.policy.base import Policy
from streamal.policy.requirements import policy_name

if TYPE_CHECKING:
    from streamal.runtime.scheduler import Scheduler

__all__ = ["CampaignPolicy", "campaign_policy"]


@dataclass(frozen=True)
class CampaignPolicy:
    """What a campaign's policy is fitted from.

    Attributes:
        run_dir: The campaign's run directory.
        name: The policy plugin.
        options: Its options.
        model: The campaign's last trained model.
        store: The campaign's sample store.
        study_rows: Store rows of its study set (empty for a model-free policy).
    """

    run_dir: Path
    name: str
    options: dict[str, Any]
    model: ModelFiles
    store: Path
    study_rows: tuple[int, ...]

    async def fitted(self, space: ParameterSpace, scheduler: Scheduler, stage: str) -> Policy:
        """The policy over ``space``, told the model's predictions on the study set (a task
        named ``stage`` on the ``train`` pool; none for a model-free policy)."""
        from streamal.data.reader import StoreReader
        from streamal.runtime.pools import TRAIN_POOL
        from streamal.train.predict import predict_uncertainty

        policy = plugins.load("policies", self.name)(space, **self.options)
        if not policy.needs:
            return policy
        model = self.model.description["model"]
        predicted = await scheduler.submit(
            TRAIN_POOL,
            predict_uncertainty,
            str(self.store),
            list(self.study_rows),
            model["name"],
            model.get("options") or {},
            self.model.description["space"],
            tuple(self.model.description["input"]["shape"]),
            str(self.model.checkpoint),
            stage=stage,
            name=stage,
            info={"samples": len(self.study_rows)},
        )
        with StoreReader(self.store) as reader:
            study = reader.read(list(self.study_rows))
        needed = {k: v for k, v in predicted.items() if k in policy.needs}
        return policy.fit(study.classes, study.params, needed, model=model["name"])


def campaign_policy(run_dir: str | Path, space: ParameterSpace) -> CampaignPolicy:
    """The policy of the campaign in ``run_dir``, to be fitted over ``space``.

    Raises:
        ConfigError: Not a finished campaign's directory (no config, policy, trained model or
            study set), or one over another parameter space; the message names the folder.
    """
    from streamal.config import load_config
    from streamal.data.store import SampleStore

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    try:
        cfg = load_config(run_dir / "config.yaml", check_node=False)
    except ConfigError as exc:
        raise ConfigError(f"{run_dir}/config.yaml: {exc}") from None
    name = policy_name(cfg)
    if name is None:
        raise ConfigError(f"{run_dir}: its {cfg.workflow.name!r} workflow has no policy")
    try:
        model = find_model(run_dir)
    except ModelFilesError as exc:
        raise ConfigError(str(exc)) from None
    theirs = ParameterSpace.from_dict(model.description["space"])
    if (theirs.class_names, theirs.param_names) != (space.class_names, space.param_names):
        raise ConfigError(
            f"{run_dir}: its space (classes {list(theirs.class_names)}, parameters "
            f"{list(theirs.param_names)}) is not this run's (classes {list(space.class_names)}, "
            f"parameters {list(space.param_names)})"
        )
    options = dict(cfg.policy.options) if cfg.policy is not None else {}
    store = run_dir / "store.h5"
    try:
        needs = plugins.load("policies", name)(space, **options).needs
        with SampleStore(store, mode="r") as s:
            rows = tuple(int(r) for r in s.select(split="study").indices)
    except (OSError, StoreError, PluginError) as exc:
        raise ConfigError(f"{run_dir}: {exc}") from None
    if needs and not rows:
        raise ConfigError(f"{run_dir}: its policy {name!r} needs a study set; none is stored")
    return CampaignPolicy(run_dir, name, options, model, store, rows)
