"""One DDP rank: ``python -m streamal.train.rank SPEC_JSON RANK``.

The launcher (:mod:`streamal.train.ddp`) starts this process already pinned to its cores
(``sched_setaffinity`` before ``exec``) with ``GOMP_CPU_AFFINITY``/``KMP_AFFINITY`` removed, so
torch — imported only here, after the pinning — sizes its thread pool to the rank's cores.

Rank 0 serves the rendezvous store on the listening socket the launcher bound to
``MASTER_ADDR`` (never on all interfaces). Every rank exits when its launcher is gone. State
files go through :mod:`streamal.durable`; a torn ``last.pt`` or ``history.json`` left by an
older version or a hand edit is survived (see :func:`_resume`).

Started by an MPI launcher instead (``<mpiexec|srun prefix> python -m streamal.train.rank
SPEC_JSON``, one command for every rank, see :func:`streamal.train.mpi_launch.train_mpi`), a
rank reads its rank, world size and local rank from the launcher's environment
(:func:`launcher_env`), its placement from ``spec.ranks[rank]``, pins itself to those cores and
sets ``CUDA_VISIBLE_DEVICES`` before torch is imported (:func:`place_self`). Rank 0 then binds
the store on ``spec.master_addr`` (a free port) and publishes address and port in
``OUT_DIR/rendezvous.json`` on the shared file system; the other ranks wait for that file —
one whose ``launch`` equals the identity of the spec file they were started with, so a file
left by an earlier attempt is never read — and connect (:func:`published_store`).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import durable
from streamal.train.checkpoint import (
    MODEL_FILE,
    load_checkpoint,
    model_description,
    save_checkpoint,
    write_model_description,
)
from streamal.train.ddp import (
    LAUNCHER_PID_VARIABLE,
)
from streamal.train.epoch_notes import note_epoch
from streamal.train.rank_setup import (
    NODE_VARIABLES,
    exit_with_launcher,
    place_self,
    published_store,
    rendezvous_store,
    spec_identity,
    who_am_i,
)
from streamal.train.spec import TrainSpec

if TYPE_CHECKING:  # numpy and torch are imported only once this rank is pinned
    from collections.abc import Iterator

    import numpy as np


def _read_rows(spec: TrainSpec, rows: list[int], plugin) -> tuple[np.ndarray, ...]:  # noqa: ANN001
    """Inputs, classes and targets of some store rows, in increasing row order (read-only,
    retried on a busy file)."""
    from streamal.data.reader import read_samples

    x, c, p = read_samples(spec.store, sorted(rows))
    return plugin.encode_inputs(x), c, plugin.encode_targets(c, p)


#: The training split stays on the GPU when it takes at most this fraction of the free memory.
RESIDENT_FRACTION = 0.25


def _resident_columns(columns: tuple[Any, ...], device: Any) -> tuple[Any, ...]:
    """The training split's tensors where batches are cut from: on the GPU when the split
    fits comfortably (one index per batch, no host copy per step), else in host memory as
    they are (each batch cut there and copied to the device)."""
    import torch

    if device.type != "cuda":
        return columns
    size = sum(t.numel() * t.element_size() for t in columns)
    free, _ = torch.cuda.mem_get_info(device)
    if size <= RESIDENT_FRACTION * free:
        return tuple(t.to(device) for t in columns)
    return columns


def _batches(columns: tuple[Any, ...], sampler: Any, batch: int, device: Any) -> Iterator[Any]:
    """One epoch's mini-batches in the sampler's order (as a ``DataLoader`` over ``sampler``
    would cut them, the last one short), on ``device``."""
    import torch

    order = torch.as_tensor(list(iter(sampler)), dtype=torch.long, device=columns[0].device)
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        yield tuple(t[idx].to(device) for t in columns)


def _evaluate(model, plugin, data, device, batch: int) -> tuple[Any, Any, Any]:  # noqa: ANN001
    """Model output on a whole split, in batches, without gradients."""
    import torch

    x, c, y = data
    outs = []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(x), batch):
            outs.append(model(torch.from_numpy(x[s : s + batch]).to(device)).cpu())
    model.train()
    out = torch.cat(outs) if outs else torch.empty(0)
    return out, torch.from_numpy(c), torch.from_numpy(y)


def _gather_output(model, plugin, data, device, batch, rank, world):  # noqa: ANN001
    """Each rank evaluates a contiguous shard; rank 0 gets the whole split's output (the
    others, and rank 0 of an empty split, get None)."""
    import numpy as np
    import torch
    import torch.distributed as dist

    x, c, y = data
    shard = np.array_split(np.arange(len(x)), world)[rank]
    out, _, _ = _evaluate(model, plugin, (x[shard], c[shard], y[shard]), device, batch)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, out.numpy())
    if rank != 0 or len(x) == 0:
        return None
    return torch.from_numpy(np.concatenate(gathered))


def _gather_metrics(model, plugin, data, device, batch, rank, world):  # noqa: ANN001
    """Each rank evaluates a contiguous shard; rank 0 computes metrics on the whole split."""
    import torch

    full = _gather_output(model, plugin, data, device, batch, rank, world)
    if full is None:
        return None
    _, c, y = data
    return plugin.metrics(full, torch.from_numpy(c), torch.from_numpy(y))


def _save_test_predictions(spec: TrainSpec, plugin, output, report: dict[str, Any]) -> None:  # noqa: ANN001
    """Rank 0: ``test_predictions.npz`` beside the checkpoint, for the report's plots, if the
    plugin implements ``predict()``. A failure is noted in the report, never raised: the
    training and its test metrics stand without the file."""
    from streamal.data.reader import read_samples
    from streamal.report.predictions import PREDICTIONS_FILE, write_test_predictions

    try:
        predicted = plugin.predict(output)
        samples = read_samples(spec.store, sorted(spec.test_rows))  # _read_rows' order
        path = write_test_predictions(
            Path(spec.out_dir) / PREDICTIONS_FILE,
            predicted,
            samples.classes,
            samples.params,
            plugin.space,
        )
        report["test_predictions"] = str(path)
    except NotImplementedError:  # the plugin does not predict: no file
        return
    except Exception as exc:  # a report's nicety must not fail a finished training
        report["test_predictions_error"] = f"{type(exc).__name__}: {exc}"[:500]


def _save_best(out_dir: Path, spec: TrainSpec, plugin, state: dict[str, Any]) -> None:  # noqa: ANN001
    """Write best.pt (``state``: model, epoch, metrics) and model.json beside it."""
    save_checkpoint(
        out_dir / "best.pt",
        **state,
        model_name=spec.model,
        model_options=spec.model_options,
        stage=spec.stage,
    )
    write_model_description(
        out_dir, model_description(spec, plugin, epoch=state["epoch"], val=state["metrics"])
    )


def _save_progress(
    out_dir, spec, plugin, model, optimizer, epoch, best, best_state, history
) -> None:
    """Write best.pt and model.json (if it improved), the history and last.pt — in that
    order, so that last.pt's ``best_loss`` always refers to the best.pt on disk."""
    if best_state is not None:
        _save_best(out_dir, spec, plugin, best_state)
    durable.write_json(out_dir / "history.json", history)
    save_checkpoint(
        out_dir / "last.pt",
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        epoch=epoch,
        best_loss=best,
        history=list(history),  # history.json can be rebuilt from here
    )


def _readable_last(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``last.pt``'s state, or ``None`` and why it cannot be used."""
    if not path.exists():
        return None, None
    try:
        state = load_checkpoint(path)
        int(state["epoch"]), float(state["best_loss"]), state["model"], state["optimizer"]
    except (durable.TornFileError, KeyError, TypeError, ValueError) as exc:
        return None, f"last.pt unreadable, trained from the start: {exc}"[:500]
    return state, None


def _history_before(entries: Any, epoch: int) -> list[dict[str, Any]]:
    """One entry per epoch before ``epoch`` (the latest written wins), in epoch order."""
    by_epoch: dict[int, dict[str, Any]] = {}
    for h in entries if isinstance(entries, list) else []:
        if isinstance(h, dict) and isinstance(h.get("epoch"), int) and h["epoch"] < epoch:
            by_epoch[h["epoch"]] = h
    return [by_epoch[e] for e in sorted(by_epoch)]


def _resume(out_dir: Path, world: int, report: dict[str, Any]):  # noqa: ANN202
    """Where a retried task continues: ``(last.pt state or None, history so far)``.

    A torn or unreadable ``last.pt`` means training from the start (noted in the report as
    ``resume_skipped``); so do ranks that read different epochs from it (a shared file system
    that has not caught up), since they must all start at the same epoch. The history is the
    one saved in ``last.pt``; for an older ``last.pt`` without one, ``history.json`` cut to the
    epochs before the resumed one, or empty (noted as ``history_lost``) if that is torn too.
    """
    import torch.distributed as dist

    state, why = _readable_last(out_dir / "last.pt")
    epochs: list[Any] = [None] * world
    dist.all_gather_object(epochs, None if state is None else int(state["epoch"]))
    if len(set(epochs)) > 1:
        state = None
        why = f"ranks read different epochs from last.pt ({epochs}); trained from the start"
    if why:
        report["resume_skipped"] = why
    if state is None:
        return None, []
    start = int(state["epoch"]) + 1
    saved = state.get("history")
    if saved is None:
        saved = durable.read_json(out_dir / "history.json", default=None)
        if not isinstance(saved, list):
            report["history_lost"] = f"history.json unreadable: epochs before {start} are not in it"
    return state, _history_before(saved, start)


def run_rank(spec: TrainSpec, rank: int | None = None, *, launch: str = "") -> dict[str, Any]:
    """Train this rank's share; rank 0 writes checkpoints and the history.

    Args:
        spec: The training.
        rank: This rank, when our launcher (:func:`streamal.train.ddp.train`) started it;
            ``None``: an MPI launcher did, and its environment says which (:func:`who_am_i`).
        launch: Under an MPI launcher, the identity of this launch (:func:`spec_identity`) that
            tags rank 0's published store address.
    """
    mpi = rank is None
    rank, local_rank = who_am_i(spec, rank)
    me = spec.ranks[rank]
    place_self(me)  # before torch: it sizes its thread pool from the affinity at import

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DistributedSampler, TensorDataset

    from streamal import plugins
    from streamal.data.space import ParameterSpace

    if me.cores:  # pinned: one thread per owned core; unpinned: torch's own default
        torch.set_num_threads(len(me.cores))
    world = spec.world_size
    backend = spec.resolved_backend()
    if me.gpu is not None:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK_DEVICE", "0")))
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    store = published_store(spec, rank, world, launch) if mpi else rendezvous_store(rank, world)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world)
    out_dir = Path(spec.out_dir)
    node = next((int(os.environ[v]) for v in NODE_VARIABLES if v in os.environ), None)
    if node is None and mpi:  # hydra gives none: block placement, MPI_LOCALNRANKS per node
        node = rank // max(1, int(os.environ.get("MPI_LOCALNRANKS", "1")))
    report: dict[str, Any] = {
        "rank": rank,
        "local_rank": local_rank,
        "world_size": world,
        "launcher": "mpi" if mpi else "streamal",
        "host": os.environ.get("PMI_HOSTNAME") or socket.gethostname(),
        "node": 0 if node is None else node,
        "pid": os.getpid(),
        "cores": sorted(os.sched_getaffinity(0)),
        "planned_cores": list(me.cores),
        "gpu": me.gpu,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "backend": backend,
    }
    plugin = plugins.load("models", spec.model)(
        ParameterSpace.from_dict(spec.space), spec.input_shape, **spec.model_options
    )
    torch.manual_seed(spec.seed)
    model = plugin.build().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    start_epoch, best = 0, float("inf")
    state, history = _resume(out_dir, world, report)
    if state is not None:  # a retried task continues from its last completed epoch
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best_loss"])
        report["resumed_from_epoch"] = start_epoch
    elif spec.warm_start:
        model.load_state_dict(load_checkpoint(spec.warm_start)["model"])
        report["warm_start"] = spec.warm_start
    if rank == 0:  # history.json agrees with last.pt from here on; no best.pt from a lost run
        durable.write_json(out_dir / "history.json", history)
        if state is None:
            (out_dir / "best.pt").unlink(missing_ok=True)
            (out_dir / MODEL_FILE).unlink(missing_ok=True)
    del state
    ddp = DistributedDataParallel(model, device_ids=[device.index] if me.gpu is not None else None)

    train = _read_rows(spec, spec.train_rows, plugin)
    val = _read_rows(spec, spec.val_rows, plugin)
    dataset = TensorDataset(*(torch.from_numpy(a) for a in train))
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=spec.seed
    )
    per_rank_batch = max(1, spec.batch_size // world)
    columns = _resident_columns(dataset.tensors, device)
    report["train_samples_seen_per_epoch"] = len(sampler)
    report["train_split_on"] = str(columns[0].device)

    best_state: dict[str, Any] | None = None  # improved since best.pt was written
    last_saved, saved_epoch = time.time(), start_epoch - 1
    for epoch in range(start_epoch, spec.epochs):
        stop = [bool(spec.cancel_path and os.path.exists(spec.cancel_path))]
        dist.broadcast_object_list(stop, src=0)  # every rank stops at the same epoch
        if stop[0]:
            report["cancelled_at_epoch"] = epoch
            break
        t0 = time.time()
        sampler.set_epoch(epoch)
        parts_sum: dict[str, Any] = {}  # floats, or tensors on the device (no sync per step)
        n_batches = 0
        loss_sum: Any = 0.0
        for x, c, y in _batches(columns, sampler, per_rank_batch, device):
            loss, parts = plugin.loss(ddp(x), c, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ddp.parameters(), spec.grad_clip)
            optimizer.step()
            n_batches += 1
            loss_sum = loss_sum + loss.detach()
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v
        loss_sum = float(loss_sum)
        parts_sum = {k: float(v) for k, v in parts_sum.items()}
        train_time = time.time() - t0
        metrics = _gather_metrics(model, plugin, val, device, per_rank_batch * 4, rank, world)
        if rank == 0:
            val_loss = plugin.selection_score(metrics) if metrics else float("nan")
            entry = {
                "epoch": epoch,
                "train_s": train_time,
                "epoch_s": time.time() - t0,
                "val_score": val_loss,
                "train_loss": loss_sum / max(n_batches, 1),
                **{f"train_{k}": v / max(n_batches, 1) for k, v in parts_sum.items()},
                **{f"val_{k}": v for k, v in (metrics or {}).items()},
            }
            history.append(entry)
            note_epoch(out_dir, entry, spec.epochs)
            if metrics and val_loss < best:
                best = val_loss
                best_state = {
                    "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                    "epoch": epoch,
                    "metrics": metrics,
                }
            if time.time() - last_saved >= spec.checkpoint_interval_s:
                _save_progress(
                    out_dir, spec, plugin, model, optimizer, epoch, best, best_state, history
                )
                best_state, last_saved, saved_epoch = None, time.time(), epoch
        dist.barrier()
    if rank == 0 and history and history[-1]["epoch"] > saved_epoch:  # finished or stopped
        _save_progress(
            out_dir,
            spec,
            plugin,
            model,
            optimizer,
            history[-1]["epoch"],
            best,
            best_state,
            history,
        )
    if rank == 0 and not (out_dir / "best.pt").exists():  # no validation split: keep the last
        _save_best(
            out_dir,
            spec,
            plugin,
            {"model": model.state_dict(), "epoch": spec.epochs - 1, "metrics": {}},
        )
    dist.barrier()
    if spec.test_rows:
        saved = load_checkpoint(out_dir / "best.pt")
        model.load_state_dict(saved["model"])
        test = _read_rows(spec, spec.test_rows, plugin)
        output = _gather_output(model, plugin, test, device, per_rank_batch * 4, rank, world)
        report["test"] = None
        if output is not None:  # rank 0
            _, c, y = test
            report["test"] = plugin.metrics(output, torch.from_numpy(c), torch.from_numpy(y))
            write_model_description(  # model.json now with the test metrics of best.pt
                out_dir,
                model_description(
                    spec,
                    plugin,
                    epoch=int(saved.get("epoch", spec.epochs - 1)),
                    val=saved.get("metrics") or {},
                    test=report["test"],
                ),
            )
            _save_test_predictions(spec, plugin, output, report)
        del saved
    dist.destroy_process_group()
    return report


def _log_to(path: Path) -> None:
    """Send this process's stdout and stderr to ``path`` (an MPI-launched rank's own log)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str]) -> int:
    """``SPEC_JSON RANK`` (our launcher) or ``SPEC_JSON`` (an MPI launcher: rank from its
    environment, output to ``OUT_DIR/rank-N.log``)."""
    launcher = os.environ.get(LAUNCHER_PID_VARIABLE)
    if launcher:
        exit_with_launcher(int(launcher))
    spec = TrainSpec.from_json(Path(argv[0]).read_text())
    given = int(argv[1]) if len(argv) > 1 else None
    launch = ""
    if given is None:
        launch = spec_identity(argv[0])
        rank = who_am_i(spec, None)[0]
        _log_to(Path(spec.out_dir) / f"rank-{rank}.log")
        durable.write_json(  # the launcher names a failed rank by its PID and host
            Path(spec.out_dir) / f"rank-{rank}.started.json",
            {"pid": os.getpid(), "host": os.environ.get("PMI_HOSTNAME") or socket.gethostname()},
        )
    report = run_rank(spec, given, launch=launch)
    durable.write_json(Path(spec.out_dir) / f"rank-{report['rank']}.json", report)
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written; skip interpreter teardown, where gloo's threads can abort the
    # process ("terminate called without an active exception") after a clean run.
    os._exit(status)
