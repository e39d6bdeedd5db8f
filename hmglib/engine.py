"""The one training loop every method of the book uses.

:func:`fit` trains any model with any loss; :func:`predict` runs a model over a
dataset and :func:`evaluate` scores it with a metrics function. :func:`fit`:

* the device is picked automatically (:func:`pick_device`: cuda, then mps, then cpu);
* automatic mixed precision on cuda (bf16 where the card supports it, else fp16
  with a gradient scaler), off elsewhere;
* tqdm progress bars (the notebook form inside notebooks);
* a per-epoch history (mean loss and its parts, validation metrics, seconds);
* a checkpoint after every epoch and **exact resume**: model, optimiser,
  scheduler, scaler, every random generator (of every rank) and the data order
  are restored, and the DataLoader's generator, which seeds its worker
  processes, is derived from ``(seed, epoch, rank)`` at the start of every
  epoch, so an interrupted run that is resumed ends with the same weights as an
  uninterrupted one, also with ``num_workers > 0`` and random augmentation;
* a loss that is not finite (NaN or inf) stops the run with an error naming the
  epoch and the step, before the optimiser step, so ``last.pt`` still holds the
  last good epoch;
* DDP when launched by ``torchrun`` (``WORLD_SIZE > 1``): the process group is
  created (gloo on cpu, nccl on cuda) unless one exists, and destroyed at the end
  if :func:`fit` created it; a :class:`~torch.utils.data.DistributedSampler`,
  logging and checkpoints on rank 0 only;
* the best epoch is chosen on *validation* data, never on the test set; with no
  validation data the last epoch is the result. A ``select`` metric that
  ``evaluate`` does not return is reported before the first epoch.

A loss is any callable ``loss_fn(output, targets)`` returning a scalar tensor, or
an object whose ``.total`` is one (its other float-like fields are logged).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from hmglib import atomic

__all__ = ["pick_device", "seed_everything", "fit", "FitResult", "predict", "evaluate",
           "unwrap"]


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to run on: ``prefer`` if given, else cuda, then mps, then cpu."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - user code may draw from the global one
    torch.manual_seed(seed)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one dict per finished epoch (``epoch``, ``loss`` and its parts,
            validation metrics, ``seconds``).
        best_epoch: the epoch (0-based) chosen on validation data, or the last one.
        out_dir: where checkpoints were written (``None`` if nowhere).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    out_dir: Path | None = None


# ------------------------------------------------------------------ helpers
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002 - saved for exact resume
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["gauss"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: how many process groups :func:`fit` has created in this process
_groups_started = 0


def _start_process_group(backend: str) -> None:
    """Create the default process group from torchrun's environment (``env://``).

    Every group gets its own key prefix in the rendezvous store. With the default
    prefix, a second group in the same process (a second :func:`fit` call after
    the first destroyed its group) would find the first group's addresses still
    in the store and try to connect to sockets that are gone. Every rank calls
    :func:`fit` equally often, so the counter agrees across ranks.
    """
    global _groups_started
    store, rank, world = next(dist.rendezvous("env://"))
    store = dist.PrefixStore(f"hmglib_fit_{_groups_started}", store)
    _groups_started += 1
    dist.init_process_group(backend, store=store, rank=rank, world_size=world)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of the DataLoader's generator for one epoch of one rank.

    It depends only on its arguments, so a resumed run gives its worker processes
    (whose seeds the loader draws from this generator) the same seeds as an
    uninterrupted run, and ranks do not share augmentation randomness.
    """
    words = np.random.SeedSequence([seed % 2**64, epoch, rank]).generate_state(2, np.uint32)
    return (int(words[0]) << 31 | int(words[1])) & (2**63 - 1)


def _check_select(select: tuple[str, str], evaluate: Callable[[nn.Module, Dataset], Any],
                  val_data: Dataset, model: nn.Module, history: list[dict[str, float]]) -> str:
    """An error message if ``evaluate`` does not return the ``select`` metric, else ``""``.

    Uses the validation metrics of a resumed run's history when there are some;
    otherwise runs ``evaluate`` once on the untrained model, with every random
    generator and the model's train/eval mode restored afterwards (so the run is
    the same as without the check).
    """
    names = [k[4:] for k in history[-1] if k.startswith("val/")] if history else []
    if not names:
        rng, was_training = _rng_state(), model.training
        try:
            names = list(evaluate(model, val_data))
        finally:
            _set_rng_state(rng)
            model.train(was_training)
    if select[0] in names:
        return ""
    return (f"select=({select[0]!r}, {select[1]!r}) names a metric that evaluate does not "
            f"return; evaluate(model, val_data) returns {sorted(names)}. Pick one of those "
            "for select, or make evaluate return the metric.")


def _checkpoint_note(epoch: int, out: Path | None) -> str:
    """What a run stopped during ``epoch`` leaves to resume from."""
    last = out / "last.pt" if out is not None else None
    if last is not None and epoch > 0 and last.is_file():
        return (f"{last} holds epoch {epoch - 1}, the last good one; fix the cause and "
                "continue from it with resume=True.")
    if last is not None:
        return "no epoch finished, so no checkpoint was written; fix the cause and start again."
    return "no checkpoint is kept (out_dir=None)."


def _bad_loss_message(what: str, epoch: int, step: int, out: Path | None) -> str:
    """The error for a loss that is not finite (``what``: its value, and where) at
    ``step`` (0-based) of ``epoch``."""
    return (f"the training loss is {what} at epoch {epoch}, step {step} (both 0-based); "
            "the run stopped before the optimiser step. Lower the learning rate or clip "
            "gradients, and check the inputs and targets for NaN or inf. "
            + _checkpoint_note(epoch, out))


def _loss_parts(value: Any) -> tuple[torch.Tensor, dict[str, float]]:
    if isinstance(value, torch.Tensor):
        return value, {}
    total = getattr(value, "total", None)
    if not isinstance(total, torch.Tensor):
        raise TypeError("loss_fn must return a scalar tensor or an object with a tensor "
                        f"`.total`, got {type(value).__name__}.")
    if dataclasses.is_dataclass(value):
        items = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "_asdict"):
        items = value._asdict()
    else:
        items = {}
    parts = {k: float(v.detach()) for k, v in items.items()
             if k != "total" and isinstance(v, torch.Tensor) and v.numel() == 1}
    return total, parts


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _to(v, device) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return type(batch)(**{f.name: _to(getattr(batch, f.name), device)
                              for f in dataclasses.fields(batch)})
    return batch


def _amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    use = device.type == "cuda" if amp is None else amp
    if not use:
        return None
    if device.type != "cuda":
        raise ValueError(f"amp=True needs a cuda device, got {device}; leave amp=None.")
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ------------------------------------------------------------------ fit
def fit(
    model: nn.Module,
    loss_fn: Callable[[Any, Any], Any],
    train_data: Dataset,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    batch_size: int = 64,
    val_data: Dataset | None = None,
    evaluate: Callable[[nn.Module, Dataset], Mapping[str, float]] | None = None,
    select: tuple[str, str] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    pass_targets: bool = False,
) -> FitResult:
    """Train ``model`` on ``train_data`` for ``epochs`` epochs.

    Args:
        model: any module; ``model(inputs)`` gives what ``loss_fn`` takes.
        loss_fn: ``loss_fn(output, targets)`` → scalar tensor, or an object with ``.total``.
        train_data: a dataset of ``(inputs, targets)`` pairs.
        epochs: the total number of epochs of the run (also when resuming).
        optimizer: built on ``model``'s parameters by the caller.
        scheduler: optional; stepped once per epoch.
        batch_size: per process. Incomplete last batches are dropped (BatchNorm
            cannot train on a batch of one).
        val_data: validation data for ``evaluate`` (never the test set).
        evaluate: ``evaluate(model, val_data)`` → dict of metrics, after each epoch.
        select: ``(metric, "max"|"min")``: the validation metric that picks the best
            epoch (saved as ``best.pt``). Default: the last epoch is the result.
        out_dir: where ``last.pt``, ``best.pt`` and ``history.json`` go (rank 0).
        resume: continue from ``out_dir/last.pt`` if it exists.
        seed: seeds the data order (epoch ``e`` shuffles with ``seed`` and ``e``) and
            the DataLoader workers (their seeds derive from ``seed``, ``e`` and the rank).
        device: default :func:`pick_device`.
        amp: mixed precision; default on for cuda, off elsewhere.
        num_workers: DataLoader workers.
        collate_fn: DataLoader collate function.
        progress: show tqdm bars (rank 0 only).
        stop_after: train at most this many epochs in this call (e.g. to fit a
            time slot); ``resume=True`` continues the same run later.
        on_epoch_end: ``callback(epoch, history_row)`` on rank 0.
        pass_targets: call the model as ``model(inputs, targets)`` in training, for a
            model whose training forward needs the labels (SARB's blends); it is
            called as ``model(inputs)`` everywhere else.

    Under ``torchrun`` (``WORLD_SIZE > 1``) every rank calls :func:`fit`; it
    creates the process group if none exists (and destroys it before returning),
    wraps ``model`` in DDP and waits at the end until rank 0 has written its
    checkpoint, so a following ``fit(..., resume=True)`` on any rank reads it.

    Returns:
        :class:`FitResult`; ``model`` holds the last epoch's weights (load
        ``best.pt`` for the selected epoch).

    Raises:
        ValueError: bad arguments (the message names them), also a ``select``
            metric that ``evaluate`` does not return (before any training step).
        FloatingPointError: the loss is NaN or inf; the message names the epoch and
            the step. No optimiser step is taken with it, and ``last.pt`` keeps the
            last completed epoch, to resume from after the fix. A ``ValueError``
            raised by the model or the loss during training (e.g. NaN logits
            refused by :class:`~hmglib.losses.HRNLoss`) is raised again with the
            epoch, the step and the checkpoint left.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    if select is not None and (evaluate is None or val_data is None):
        raise ValueError("select needs both val_data and evaluate: the best epoch is chosen "
                         "on validation data, never on the test set.")
    if select is not None and select[1] not in ("max", "min"):
        raise ValueError(f"select must be (metric, 'max'|'min'), got {select}.")
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (where last.pt is).")
    from tqdm.auto import tqdm

    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    dev = pick_device(None if device is None else str(device))
    started_pg = False
    if distributed:
        if not dist.is_initialized():
            _start_process_group("nccl" if dev.type == "cuda" else "gloo")
            started_pg = True
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
    rank = dist.get_rank() if distributed else 0
    try:
        main = rank == 0

        model.to(dev)
        net: nn.Module = model
        if distributed:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[dev.index] if dev.type == "cuda" else None)

        sampler = DistributedSampler(train_data, num_replicas=world, rank=rank, shuffle=True,
                                     seed=seed, drop_last=distributed)
        if len(sampler) < batch_size:
            raise ValueError(f"train_data gives {len(sampler)} samples per process, fewer than "
                             f"batch_size={batch_size}; lower batch_size.")
        # re-seeded from (seed, epoch, rank) before every epoch: it seeds the workers
        loader_gen = torch.Generator()
        loader = DataLoader(train_data, batch_size=batch_size, sampler=sampler, drop_last=True,
                            num_workers=num_workers, collate_fn=collate_fn,
                            pin_memory=dev.type == "cuda", generator=loader_gen)

        amp_dtype = _amp_dtype(dev, amp)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

        out = Path(out_dir) if out_dir is not None else None
        if out is not None and main:
            out.mkdir(parents=True, exist_ok=True)
        result = FitResult(out_dir=out)
        best_value = -math.inf if (select and select[1] == "max") else math.inf
        start = 0
        if resume and out is not None and (out / "last.pt").is_file():
            ckpt = torch.load(out / "last.pt", map_location=dev, weights_only=True)
            unwrap(net).load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler") is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            per_rank = ckpt.get("rng_ranks")
            _set_rng_state(per_rank[rank] if per_rank is not None and len(per_rank) == world
                           else ckpt["rng"])
            result.history = list(ckpt["history"])
            result.best_epoch = ckpt["best_epoch"]
            best_value = ckpt["best_value"]
            start = ckpt["epoch"] + 1

        if select is not None:  # before any training step, not after the first epoch
            problem = _check_select(select, evaluate, val_data, unwrap(net),
                                    result.history) if main else ""
            if distributed:  # evaluate runs on rank 0; every rank stops with it
                box = [problem]
                dist.broadcast_object_list(box, src=0)
                problem = box[0]
            if problem:
                raise ValueError(problem)

        end = epochs if stop_after is None else min(epochs, start + stop_after)
        for epoch in range(start, end):
            net.train()
            sampler.set_epoch(epoch)
            loader_gen.manual_seed(_epoch_seed(seed, epoch, rank))
            t0 = time.perf_counter()
            total, n_batches, parts_sum = 0.0, 0, {}
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}",
                       disable=not (progress and main), leave=False)
            for step, (inputs, targets) in enumerate(bar):
                inputs, targets = _to(inputs, dev), _to(targets, dev)
                try:
                    with torch.autocast(dev.type, dtype=amp_dtype or torch.float32,
                                        enabled=amp_dtype is not None):
                        output = net(inputs, targets) if pass_targets else net(inputs)
                        loss, parts = _loss_parts(loss_fn(output, targets))
                except ValueError as exc:  # an input or output refused, e.g. NaN logits
                    raise ValueError(f"at epoch {epoch}, step {step} (both 0-based): {exc} "
                                     + _checkpoint_note(epoch, out)) from exc
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                loss_value = float(loss.detach())
                bad = not math.isfinite(loss_value)
                if distributed:  # every rank stops at the same step
                    flag = torch.tensor([float(bad)], device=dev)
                    dist.all_reduce(flag)
                    bad = bool(flag.item() > 0)
                if bad:
                    if not math.isfinite(loss_value):
                        what = f"{loss_value}" + (f" on rank {rank}" if distributed else "")
                    else:
                        what = "not finite on another rank"
                    raise FloatingPointError(_bad_loss_message(what, epoch, step, out))
                scaler.step(optimizer)
                scaler.update()
                total += loss_value
                n_batches += 1
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v
                bar.set_postfix(loss=f"{total / n_batches:.4f}")
            if scheduler is not None:
                scheduler.step()
            row: dict[str, float] = {"epoch": epoch, "loss": total / max(n_batches, 1)}
            row.update({k: v / max(n_batches, 1) for k, v in parts_sum.items()})
            if distributed:  # the mean loss over ranks, so every rank logs the same
                t = torch.tensor([row["loss"]], device=dev)
                dist.all_reduce(t)
                row["loss"] = float(t) / world
                # DDP sends rank 0's buffers (BatchNorm statistics) before each forward,
                # but the last forward updated each rank's own: make them rank 0's, so
                # every rank holds the model that rank 0 evaluates and saves
                for buf in unwrap(net).buffers():
                    dist.broadcast(buf, src=0)
            if evaluate is not None and val_data is not None and main:
                metrics = evaluate(unwrap(net), val_data)
                row.update({f"val/{k}": float(v) for k, v in metrics.items()})
            row["seconds"] = time.perf_counter() - t0
            result.history.append(row)
            if select is not None and main:
                value = row[f"val/{select[0]}"] if f"val/{select[0]}" in row else None
                if value is None:
                    raise KeyError(f"select metric '{select[0]}' is not among evaluate's metrics "
                                   f"{[k[4:] for k in row if k.startswith('val/')]} after epoch "
                                   f"{epoch}; make evaluate return the same metrics every "
                                   "epoch.")
                better = value > best_value if select[1] == "max" else value < best_value
                if better:
                    best_value, result.best_epoch = value, epoch
                    if out is not None:
                        atomic.torch_save({"epoch": epoch, "model": unwrap(net).state_dict(),
                                      select[0]: value}, out / "best.pt")
            elif select is None:
                result.best_epoch = epoch
            # every rank's generators, so each rank resumes its own streams
            rng = _rng_state()
            rng_ranks = None
            if distributed and out is not None:
                rng_ranks = [None] * world
                dist.all_gather_object(rng_ranks, rng)
            if out is not None and main:
                atomic.torch_save({
                    "epoch": epoch,
                    "model": unwrap(net).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "rng": rng,
                    "rng_ranks": rng_ranks,
                    "history": result.history,
                    "best_epoch": result.best_epoch,
                    "best_value": best_value,
                }, out / "last.pt")
                atomic.write_json(out / "history.json", result.history)
            if on_epoch_end is not None and main:
                on_epoch_end(epoch, row)
            net.train()
        if distributed:  # every rank sees rank 0's checkpoint once fit returns
            dist.barrier()
    finally:
        if started_pg:
            dist.destroy_process_group()
    return result


# ------------------------------------------------------------------ predict
def _cat(items: Sequence[Any]) -> Any:
    first = items[0]
    if first is None and all(i is None for i in items):  # an optional output left empty
        return None
    if isinstance(first, torch.Tensor):
        return torch.cat(list(items), dim=0)
    if dataclasses.is_dataclass(first):
        return type(first)(**{f.name: _cat([getattr(i, f.name) for i in items])
                              for f in dataclasses.fields(first)})
    if isinstance(first, Mapping):
        return {k: _cat([i[k] for i in items]) for k in first}
    if hasattr(first, "_fields"):  # a named tuple
        return type(first)(*(_cat([i[k] for i in items]) for k in range(len(first))))
    if isinstance(first, (list, tuple)):
        if len(first) == 0:
            return type(first)()
        return type(first)(_cat([i[k] for i in items]) for k in range(len(first)))
    raise TypeError(f"cannot concatenate model outputs or targets of type "
                    f"{type(first).__name__}: return tensors, dataclasses, named tuples, "
                    "dicts, lists or tuples of them.")


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
) -> tuple[Any, Any]:
    """Run ``model`` in eval mode over ``data`` (no shuffling, no dropped samples).

    Takes the same data as :func:`fit`: a dataset of ``(inputs, targets)`` pairs
    whose inputs and targets are tensors or (nested) tuples, lists, dicts or
    dataclasses of tensors, batched by ``collate_fn`` (default: PyTorch's).

    Args:
        model: any module; ``model(inputs)`` on a batch of inputs.
        data: a dataset of ``(inputs, targets)`` pairs, ``len(data) >= 1``.
        batch_size: samples per forward pass.
        device: default :func:`pick_device`.
        num_workers: DataLoader workers.
        collate_fn: DataLoader collate function (as given to :func:`fit`).

    Returns:
        ``(outputs, targets)``: the model's outputs and the targets, each
        concatenated along the batch dimension field by field (tensors,
        dataclasses, named tuples, dicts, lists and tuples of tensors), on the cpu.

    Raises:
        ValueError: an empty dataset.
    """
    dev = pick_device(None if device is None else str(device))
    was_training = model.training
    model.to(dev).eval()
    cpu = torch.device("cpu")
    outs, ys = [], []
    try:
        for inputs, targets in DataLoader(data, batch_size=batch_size, shuffle=False,
                                          num_workers=num_workers, collate_fn=collate_fn):
            outs.append(_to(model(_to(inputs, dev)), cpu))
            ys.append(_to(targets, cpu))
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict: the dataset is empty; pass a dataset with at least one "
                         "(inputs, targets) pair.")
    return _cat(outs), _cat(ys)


def evaluate(
    model: nn.Module,
    data: Dataset,
    metrics: Callable[[Any, Any], Mapping[str, float]],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` on ``data``: :func:`predict`, then ``metrics(outputs, targets)``.

    The one evaluation path of the library: the ``hmg`` command, the book's
    experiments and :func:`fit`'s per-epoch validation (``evaluate=lambda m, d:
    evaluate(m, d, metrics)``) call it. For the hierarchical models,
    ``metrics`` is typically ``functools.partial(hmglib.metrics.hierarchical_report,
    tree=tree)``.

    Args:
        model: any module.
        data: a dataset of ``(inputs, targets)`` pairs (see :func:`predict`).
        metrics: ``metrics(outputs, targets)`` → a mapping of metric names to
            numbers, on everything :func:`predict` returns.
        batch_size, device, num_workers, collate_fn: as for :func:`predict`.

    Returns:
        ``{name: float}``.

    Raises:
        ValueError: an empty dataset.
        TypeError: ``metrics`` does not return a mapping.
    """
    outputs, targets = predict(model, data, batch_size=batch_size, device=device,
                               num_workers=num_workers, collate_fn=collate_fn)
    report = metrics(outputs, targets)
    if not isinstance(report, Mapping):
        raise TypeError(f"evaluate: metrics must return a mapping of names to numbers, got "
                        f"{type(report).__name__}.")
    return {str(k): float(v) for k, v in report.items()}
