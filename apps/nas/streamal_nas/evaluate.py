"""The ``train``-pool task of the search: train one candidate (:func:`train_candidate`).

The task trains a :class:`~.models.MacroNet` on the search's data (digits, or a simulator's
samples through the ``nas-genome`` model: :mod:`.learners`), appends ``(candidate, epoch,
fitness)`` (:mod:`.fitness`: accuracy in %, or a validation loss) to the shared records file
after each validation and stops when its decision file, written by the prediction engine's
task (:mod:`.prediction.task`), or the scheduler's cancel token says so. What it returns to
the search does not depend on when the engine's decision arrived (see
:func:`train_candidate`). It is a module-level function taking one plain ``spec``, so that
pool workers can import it; the driver side that builds the spec and turns the result into
a candidate row is :mod:`.candidates`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .datasets import DataSpec
from .fitness import fitness_value
from .genome import genome_from_dict
from .prediction import (
    Decision,
    analyze_records,
    append_record,
    decision_path,
    poll_decision,
    prediction_config,
)
from .search_state import SearchStateError, SessionFence

__all__ = ["GRAD_CLIP", "train_candidate"]

GRAD_CLIP = 50.0
"""Gradient-norm clip of multitask candidates (the core trainer's default ``grad_clip``)."""


def _validate(model, learner, x, c, t) -> dict[str, float]:
    """The learner's metrics of the validation split, in eval mode."""
    import torch

    model.eval()
    with torch.no_grad():
        metrics = learner.metrics(model(x), c, t)
    model.train()
    return metrics


def train_candidate(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Train one candidate until the prediction engine stops it or ``max_epochs``.

    The engine runs decoupled, so its decision may reach the trainer some validations after
    the record it was made on. What the search gets is made independent of that delay: the
    fitness and the checkpoint are those of the decision's epoch (the model's state is kept
    after each validation until then), and a candidate that ran to ``max_epochs`` without
    reading a decision replays the engine on its own curve
    (:func:`~.prediction.analyze_records`, the same pure function of the records the engine
    applies). Given the seed, the initial weights and the data, the result is the same
    whatever the timing; only ``epochs``, ``stop_reason``, times and energy describe what
    actually ran.

    Args:
        spec: ``candidate``, ``genome`` (:func:`~.genome.genome_to_dict`), ``max_epochs``,
            ``epochs_per_iteration`` (validation interval in epochs), ``batch_size``,
            ``learning_rate``, ``channels``, ``network`` (:class:`~.network.NetworkOptions`
            values), ``data`` (:meth:`~.datasets.DataSpec.to_dict`; default digits with
            ``data_seed``), ``fitness`` and ``fitness_weights`` (default accuracy),
            ``seed``, ``records_path``,
            ``decisions_dir`` (``None``: no prediction engine), ``prediction`` (the
            engine's :func:`~.prediction.prediction_config` values, for the replay),
            ``checkpoint``, ``provider_checkpoint`` (``None``: no transfer),
            ``transfer_method``, ``gpu`` (train on this worker's GPU), ``fence`` (a
            :class:`~.search_state.SessionFence`, or ``None``).

    Returns:
        ``epochs`` trained, ``stop_reason`` (``converged``, ``never-learning``,
        ``max-epochs`` from the engine, ``max-epochs`` when it ran out, or ``cancelled``),
        ``stop_epoch`` (of the decision, ``None`` without one), ``fitness`` (what the search
        gets: the engine's FIT_P on convergence, else the validation fitness at the
        decision's epoch, or at the last epoch without a decision), ``predicted_fitness``,
        ``actual_fitness`` (validation fitness at that epoch), ``metrics`` (every validation
        metric at that epoch), ``flops``, ``params``,
        ``train_s``, ``data_wait_s`` (of it, waiting for training draws still being
        simulated), ``energy`` (:class:`~.energy.EnergyMeasurement` dict), ``transfer``
        (``None`` or ``{provider, method, tensors, fraction}``), ``curve`` (every
        validation). The checkpoint holds the weights at the decision's epoch.

    Raises:
        SearchStateError: Another driver session took the run directory over (this task
            was left running by a killed driver); nothing more is written.
    """
    import torch

    from streamal import durable
    from streamal.runtime.task import cancelled
    from streamal.train.checkpoint import load_checkpoint

    from .datasets import growing_train_set
    from .energy import EnergyMeter
    from .learners import candidate_learner, learner_splits
    from .models import count_flops, count_parameters
    from .transfer import transfer_weights

    t_start = time.perf_counter()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    cid = str(spec["candidate"])
    fence: SessionFence | None = spec.get("fence")
    session = fence.session if fence is not None else None

    def check_fence() -> None:
        if fence is not None and not fence.holds():
            raise SearchStateError(
                f"{cid}: session {fence.session} no longer owns the run directory "
                f"({fence.path}); stopped without writing"
            )

    genome = genome_from_dict(spec["genome"])
    data_spec = spec.get("data") or {"name": "digits", "seed": int(spec.get("data_seed", 0))}
    data = DataSpec.from_dict(data_spec)
    learner = candidate_learner(data, genome, spec["channels"], spec.get("network") or {})
    splits = learner_splits(data, learner)
    growing = growing_train_set(data, learner) if data.feed else None
    fitness_name = spec.get("fitness", "accuracy")
    weights = spec.get("fitness_weights")
    torch.manual_seed(int(spec.get("seed", 0)))
    use_gpu = bool(spec.get("gpu")) and torch.cuda.is_available()
    device = torch.device("cuda:0" if use_gpu else "cpu")
    model = learner.build()
    flops = count_flops(model, learner.input_shape)
    params = count_parameters(model)
    transfer = None
    provider_ckpt = spec.get("provider_checkpoint")
    if provider_ckpt and Path(provider_ckpt).exists():
        state = load_checkpoint(provider_ckpt)["model"]
        rec = transfer_weights(state, model, method=spec.get("transfer_method", "lcs"))
        transfer = {
            "provider": spec.get("provider"),
            "method": rec.method,
            "tensors": len(rec.pairs) + len(rec.buffers),
            "fraction": rec.fraction,
        }
    model.to(device)
    x_train, y_train, t_train = (a.to(device) for a in splits[:3])
    x_val, y_val, t_val = (a.to(device) for a in splits[3:])
    opt = torch.optim.Adam(model.parameters(), lr=float(spec["learning_rate"]))
    clip = None if data.name == "digits" else GRAD_CLIP  # the NLL's log σ² can jump
    per_iter = float(spec["epochs_per_iteration"])
    iters_per_epoch = max(1, round(1.0 / per_iter))
    max_iters = int(math.ceil(float(spec["max_epochs"]) * iters_per_epoch))
    batch = int(spec["batch_size"])
    gen = torch.Generator().manual_seed(int(spec.get("seed", 0)))
    records_path, decisions_dir = spec["records_path"], spec.get("decisions_dir")
    curve: list[tuple[float, float]] = []
    metrics_at: dict[float, dict[str, float]] = {}
    snapshots: dict[float, dict[str, Any]] = {}  # epoch -> weights, until a decision is read
    decision: Decision | None = None
    stop_reason = "max-epochs"
    epoch = 0.0
    meter = EnergyMeter(gpu=_physical_gpu() if use_gpu else None)
    waited_s = 0.0

    def must_stop() -> bool:
        return cancelled() or (fence is not None and not fence.holds())

    with meter:
        for it in range(max_iters):
            if it % iters_per_epoch == 0:
                if growing is not None and it // iters_per_epoch < max(1, growing.overlap):
                    t_wait = time.perf_counter()  # the epoch's training draws, once simulated
                    part = growing.for_epoch(it // iters_per_epoch, must_stop)
                    waited_s += time.perf_counter() - t_wait
                    if part is None:
                        check_fence()
                        stop_reason = "cancelled"
                        break
                    x_train, y_train, t_train = (a.to(device) for a in part)
                perm = torch.randperm(len(x_train), generator=gen).to(device)
                chunks = perm.tensor_split(iters_per_epoch)
            for idx in chunks[it % iters_per_epoch].split(batch):
                loss, _ = learner.loss(model(x_train[idx]), y_train[idx], t_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
            epoch = (it + 1) / iters_per_epoch
            metrics = _validate(model, learner, x_val, y_val, t_val)
            fitness = fitness_value(metrics, fitness_name, weights)
            metrics_at[epoch] = metrics
            check_fence()
            curve.append((epoch, fitness))
            append_record(records_path, cid, epoch, fitness, session=session)
            if decisions_dir is not None:
                snapshots[epoch] = _cpu_state(model)
                decision = poll_decision(decision_path(decisions_dir, cid), cid, session)
                # a decision read after the last epoch saved nothing: the run hit max epochs
                if decision is not None and it + 1 < max_iters:
                    stop_reason = decision.reason
                    break
            if cancelled():
                stop_reason = "cancelled"
                break
    energy = meter.result
    if decision is None and stop_reason != "cancelled" and spec.get("prediction") is not None:
        # the engine had not answered yet: its decision is a pure function of the records
        decision = analyze_records({cid: curve}, prediction_config(spec["prediction"])).get(cid)
    end_epoch = decision.stop_epoch if decision is not None else epoch
    weights = snapshots.get(end_epoch) if decision is not None else None
    check_fence()
    durable.save_torch(
        spec["checkpoint"],
        {
            "model": weights if weights is not None else _cpu_state(model),
            "candidate": cid,
            "bits": list(genome.bits),
            "epochs": end_epoch if weights is not None else epoch,
        },
    )
    measured = dict(curve).get(end_epoch, float("nan")) if curve else float("nan")
    converged = decision is not None and decision.converged
    return {
        "candidate": cid,
        "epochs": epoch,
        "stop_reason": stop_reason,
        "stop_epoch": decision.stop_epoch if decision is not None else None,
        "fitness": decision.fitness if converged else measured,
        "predicted_fitness": decision.predicted_fitness if decision is not None else None,
        "actual_fitness": measured,
        "metrics": metrics_at.get(end_epoch),
        "flops": flops,
        "params": params,
        "train_s": time.perf_counter() - t_start,
        "data_wait_s": waited_s,
        "energy": energy.to_dict() if energy is not None else None,
        "transfer": transfer,
        "curve": curve,
    }


def _cpu_state(model) -> dict[str, Any]:
    """A copy of ``model``'s weights and buffers on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _physical_gpu() -> int:
    """NVML index of this worker's GPU (Parsl sets ``CUDA_VISIBLE_DEVICES`` per worker)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0
