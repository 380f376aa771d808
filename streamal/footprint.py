"""A campaign's disk and memory footprint, estimated from its config before any work starts.

A campaign whose store cannot fit on the run directory's file system, or whose training set
cannot fit in a node's memory, fails hours in, after simulating what it then cannot use.
:func:`check_footprint` estimates both from the config and refuses, with the numbers::

    >>> check_footprint(cfg, (2806,), Path("runs/x"))  # doctest: +SKIP
    ConfigError: workflow.phases: the campaign stores about 4.1 TiB of samples (...);
    80 GiB free in runs/x

The estimate is rough but errs high (see :func:`estimate_footprint` for what it counts).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import durable
from streamal.errors import ConfigError, one_line

if TYPE_CHECKING:
    from streamal.config import RunConfig
    from streamal.data.space import ParameterSpace

#: Bytes per stored sample beyond its input and parameters: the ``classes``, ``phase``,
#: ``split``, ``origin`` and ``batch`` columns (11 bytes) plus HDF5 chunk overhead.
LABEL_BYTES = 16


@dataclass(frozen=True)
class Footprint:
    """What a campaign needs and what it has (bytes; ``None``: not checked).

    Attributes:
        samples: Samples the campaign stores (every split, every phase).
        train_samples: Of those, training samples (a rank's training set in the last phase).
        eval_samples: Validation and test samples (every rank also holds them).
        study_samples: Samples of the active-learning study set (0 without one).
        sample_bytes: Bytes of one stored sample (input, parameters, labels).
        store_bytes: Size of the store at the end of the campaign.
        disk_free_bytes: Free space where the store is written, if checked.
        ranks: Trainer ranks on one node.
        rank_bytes: Memory one training rank needs for its data at its peak.
        study_bytes: Memory the driver needs for the study set and its policy arrays.
        memory_bytes: Memory one node needs: every rank's data plus the driver's arrays.
        memory_available_bytes: Memory a node has free, if checked.
    """

    samples: int
    train_samples: int
    eval_samples: int
    study_samples: int
    sample_bytes: int
    store_bytes: int
    disk_free_bytes: int | None
    ranks: int
    rank_bytes: int
    study_bytes: int
    memory_bytes: int
    memory_available_bytes: int | None


def human_bytes(n: float) -> str:
    """``4.1 TiB``, ``80 GiB``, ``512 B``: binary units, two significant digits or more."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            break
        n /= 1024
    if unit == "B":
        return f"{int(n)} B"
    return f"{n:.1f} {unit}" if abs(n) < 10 else f"{n:.0f} {unit}"


def _campaign_samples(cfg: RunConfig, n_classes: int) -> tuple[int, int, int]:
    """``(train, val + test, study)`` samples the configured workflow stores.

    Follows the built-in workflows (``streamal.workflows``): a workflow whose options have
    ``val_fraction``/``test_fraction`` simulates phase 0 as ``phases[0].samples`` uniform
    samples *per class* plus validation and test sets of that size times the fractions per
    class; an active-learning workflow adds the study set of its policy (the configured one,
    else the workflow's ``default_policy``; its ``study_rows_for`` the options, 0 for a
    model-free policy) and one batch of ``phases[k].samples`` in all for each
    later phase (the continuous workflow's budget is the same sum, or ``phases[0].samples``
    with one phase; counted for every active-learning workflow, an upper bound). A workflow
    that says what it stores (:meth:`~streamal.workflows.base.Workflow.stored_samples`) is
    taken at its word; any other is counted as storing each phase's ``samples`` once per class.
    """
    from streamal import plugins
    from streamal.workflows.active import ActiveLearningWorkflow
    from streamal.workflows.base import split_sizes

    phases = [p.samples for p in cfg.workflow.phases]
    workflow = plugins.load("workflows", cfg.workflow.name)
    stated = getattr(workflow, "stored_samples", None)
    counts = stated(cfg.workflow.options, n_classes) if stated is not None else None
    if counts is not None:
        return counts
    options = _options(workflow, cfg.workflow.options)
    val_fraction = getattr(options, "val_fraction", None)
    test_fraction = getattr(options, "test_fraction", None)
    if val_fraction is None or test_fraction is None:
        return sum(phases) * n_classes, 0, 0
    sizes = split_sizes(phases[0], val_fraction, test_fraction)
    train = sizes["train"] * n_classes
    evals = n_classes * (sizes["val"] + sizes["test"])
    study = 0
    if isinstance(workflow, type) and issubclass(workflow, ActiveLearningWorkflow):
        train += sum(phases[1:]) or phases[0]
        name = cfg.policy.name if cfg.policy is not None else workflow.default_policy
        policy = plugins.load("policies", name)
        options = _options(policy, cfg.policy.options if cfg.policy is not None else {})
        study = int(policy.study_rows_for(options, n_classes))
    return train, evals, study


def _options(plugin: Any, options: dict[str, Any]) -> Any:
    """A plugin's validated ``Options`` (``None`` if it declares none)."""
    model = getattr(plugin, "Options", None)
    return model.model_validate(options) if model is not None else None


def estimate_footprint(
    cfg: RunConfig,
    input_shape: tuple[int, ...],
    *,
    space: ParameterSpace | None = None,
    ranks: int | None = None,
) -> Footprint:
    """The campaign's store size and per-node memory need, without checking either.

    What it counts:

    * **Store** (``store.h5``): every sample of every split the workflow simulates (see
      :func:`_campaign_samples`), each ``4·prod(input_shape)`` bytes of float32 input,
      ``8·n_params`` bytes of parameters and ~16 bytes of labels. Checkpoints, the timeline
      and failed-sample records are not counted (small next to the samples).
    * **Memory of one node**: each trainer rank reads the whole training, validation and test
      splits into memory (``streamal.train.rank``): their float32 inputs, encoded once more by
      the model plugin (a second float32 copy), their parameters and labels, plus a transient
      raw copy of the training inputs while they are encoded. The last phase trains on every
      training sample, so that is the peak. The driver holds the study set's parameters, its
      sweep grid, and the model's predictions and the mixture weights per study sample
      (``streamal.policy.uncertainty``; the study inputs are predicted in batches, not held).

    Args:
        cfg: The validated run configuration.
        input_shape: Shape of one simulated sample (the simulator's ``output_shape``).
        space: The simulator's parameter space; built from ``cfg.simulator`` when omitted.
        ranks: Trainer ranks per node; from the site's node plan when omitted.

    Returns:
        The numbers, with ``disk_free_bytes`` and ``memory_available_bytes`` left ``None``.
    """
    from streamal import plugins
    from streamal.cluster.plan import plan_for

    if cfg.simulator is None:  # nothing is simulated, nothing is stored
        return Footprint(0, 0, 0, 0, 0, 0, None, 0, 0, 0, 0, None)
    if space is None:
        space = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options).space
    if ranks is None:
        ranks = len(plan_for(cfg.site).trainer_ranks)
    n_classes, n_params = len(space.classes), len(space.param_names)
    input_bytes = 4 * math.prod(input_shape)
    sample_bytes = input_bytes + 8 * n_params + LABEL_BYTES
    train, evals, study = _campaign_samples(cfg, n_classes)
    samples = train + evals + study
    # resident: encoded float32 inputs + float64 params + int64 class + float32 targets
    held = input_bytes + 8 * n_params + 8 + 4 * n_params
    rank_bytes = (train + evals) * held + train * input_bytes  # + raw copy while encoding
    # study params (grid + completed vectors, float64), class, weights, variance, entropy
    study_bytes = study * (2 * 8 * n_params + 8 * 4)
    return Footprint(
        samples=samples,
        train_samples=train,
        eval_samples=evals,
        study_samples=study,
        sample_bytes=sample_bytes,
        store_bytes=samples * sample_bytes,
        disk_free_bytes=None,
        ranks=ranks,
        rank_bytes=rank_bytes,
        study_bytes=study_bytes,
        memory_bytes=ranks * rank_bytes + study_bytes,
        memory_available_bytes=None,
    )


def _profiled_memory(site: str) -> bool:
    from streamal.cluster import sites

    return sites.get(site).node_memory_bytes is not None


def available_memory(site: str) -> int:
    """Memory of one node of ``site``: its profile's, else (``local``) this node's free memory."""
    from streamal.cluster import sites

    memory = sites.get(site).node_memory_bytes
    if memory is not None:
        return memory
    import psutil

    return int(psutil.virtual_memory().available)


def check_footprint(
    cfg: RunConfig,
    input_shape: tuple[int, ...],
    run_dir: Path | None,
    *,
    space: ParameterSpace | None = None,
    ranks: int | None = None,
) -> Footprint:
    """Refuse a campaign whose store or in-memory training set cannot fit.

    Estimates what :func:`estimate_footprint` describes, then compares the store with the
    free space at ``run_dir`` (``shutil.disk_usage``; its nearest existing parent if it does
    not exist yet) and one node's memory need with the memory free on this node (site
    ``local``, ``psutil.virtual_memory().available``) or a compute node's memory (batch
    sites, their profile's ``node_memory_bytes``).

    Args:
        cfg: The validated run configuration.
        input_shape: Shape of one simulated sample (the simulator's ``output_shape``).
        run_dir: Where ``store.h5`` will be written; ``None`` skips the disk check.
        space: The simulator's parameter space; built from ``cfg.simulator`` when omitted.
        ranks: Trainer ranks per node; from the site's node plan when omitted.

    Returns:
        The estimate and what was available.

    Raises:
        ConfigError: One line with the numbers, e.g. ``workflow.phases: the campaign stores
            about 4.1 TiB of samples (...); 80 GiB free in runs/x``.
    """
    fp = estimate_footprint(cfg, input_shape, space=space, ranks=ranks)
    if fp.samples == 0:
        return fp
    disk_free = None
    if run_dir is not None:
        disk_free = int(shutil.disk_usage(durable.existing_ancestor(run_dir)).free)
        if fp.store_bytes > disk_free:
            raise ConfigError(
                f"workflow.phases: the campaign stores about {human_bytes(fp.store_bytes)} "
                f"of samples ({fp.samples:,} samples x {human_bytes(fp.sample_bytes)}); "
                f"{human_bytes(disk_free)} free in {run_dir}; lower the sample counts or "
                "choose a run directory with more space"
            )
    memory = available_memory(cfg.site.name)
    if fp.memory_bytes > memory:
        where = (
            "on a node" if _profiled_memory(cfg.site.name) else "free on this node"
        ) + f" (site {cfg.site.name})"
        if fp.study_bytes > fp.ranks * fp.rank_bytes:
            raise ConfigError(
                f"policy.options.study_size: the study set of {fp.study_samples:,} samples "
                f"needs about {human_bytes(fp.study_bytes)} of memory; "
                f"{human_bytes(memory)} {where}"
            )
        raise ConfigError(
            f"workflow.phases: each of the {fp.ranks} trainer rank(s) holds about "
            f"{human_bytes(fp.rank_bytes)} of training data in memory "
            f"({fp.train_samples + fp.eval_samples:,} samples), "
            f"{human_bytes(fp.memory_bytes)} per node in all; "
            f"{human_bytes(memory)} {where}; lower the sample counts"
        )
    return dataclasses.replace(fp, disk_free_bytes=disk_free, memory_available_bytes=memory)


def check_campaign(cfg: RunConfig, run_dir: Path | None) -> Footprint | None:
    """:func:`check_footprint` with the input shape and space of the configured simulator
    (built here); None when the config names no simulator.

    Raises:
        ConfigError: The campaign cannot fit, or building the simulator failed.
    """
    if cfg.simulator is None:
        return None
    from streamal import plugins

    try:
        sim = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options)
        shape, space = tuple(sim.output_shape), sim.space
    except Exception as exc:  # already reported by load_config, unless it is flaky
        raise ConfigError(
            f"simulator.options: building simulator {cfg.simulator.name!r} raised "
            f"{type(exc).__name__}: {one_line(exc)}"
        ) from None
    return check_footprint(cfg, shape, run_dir, space=space)
