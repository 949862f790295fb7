"""The one training loop shared by every estimator.

Data stay as tensors on the training device. Each epoch draws one
``torch.randperm`` from a seeded generator and takes batches by indexing
with slices of it, so there is no ``DataLoader`` and no per-event Python.

The weighted batch loss is ``(N / B) * sum(weight * loss)``, an unbiased
estimate of the full-sample sum ``sum(weight * loss)``. The weights were
normalised once per class before training. A batch is never divided by
its own weight sum, which with signed weights can be zero or negative.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from quasiratio.errors import InputError, SmallTotalWarning, TrainingError
from quasiratio.training_config import SCHEDULES, TrainingConfig, resolve_device
from quasiratio.training_state import (
    TrainingHistory,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)

__all__ = [
    "SCHEDULES",
    "TrainingConfig",
    "TrainingHistory",
    "batch_loss",
    "make_optimizer",
    "resolve_device",
    "train",
]

logger = logging.getLogger(__name__)

#: Per-event loss of a batch: ``objective(model, batch) -> tensor of shape (B,)``.
Objective = Callable[[nn.Module, Mapping[str, torch.Tensor]], torch.Tensor]

#: A validation class whose |sum w| is below this fraction of its sum |w|
#: has a total indistinguishable from zero, so its loss is not a usable
#: stopping criterion.
SMALL_TOTAL_RELATIVE = 1e-6

#: Events per chunk when the validation loss is evaluated.
VALIDATION_CHUNK = 65536

#: CPU threads used when ``TrainingConfig.num_threads`` is None.
# One thread, because the matrices of small networks are too small to gain
# from splitting, and a second thread loses badly whenever the cores are
# shared. Measured with torch 2.13 on a 2-core CPU that other processes kept
# busy (load 7 to 11), for a 3 x 64 MLP step (forward, backward, AdamW):
# at batch 512, 2.2 to 4.5 ms with one thread and 19 to 23 ms with two; at
# batch 4096, 18 ms with one and 120 to 270 ms with two.
# NOTE: not measured on an idle machine, where two or more threads may pay
# off at large batches; set num_threads explicitly there.
DEFAULT_NUM_THREADS = 1


@dataclasses.dataclass
class _Runtime:
    """Device and process group of a training run.

    A single process is the default. A data-parallel runtime overrides
    :meth:`all_reduce_sum` so that every global sum (losses, class
    totals) is one call, and :meth:`wrap_model` to wrap the model, for
    example in ``DistributedDataParallel``.
    """

    device: torch.device
    world_size: int = 1
    rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        return value

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def global_events(self, n_local: int) -> int:
        """Number of training events over all processes; this process holds ``n_local``."""
        return n_local

    def local_rows(self, index: torch.Tensor) -> torch.Tensor:
        """Rows of this process's data among the global event indices ``index``."""
        return index


def train(
    model: nn.Module,
    objective: Objective,
    data: Mapping[str, torch.Tensor],
    config: TrainingConfig,
    *,
    validation: Mapping[str, torch.Tensor] | None = None,
    runtime: _Runtime | None = None,
) -> TrainingHistory:
    """Train ``model`` in place on ``data`` and return the loss curves.

    ``data`` and ``validation`` are dicts of equally long tensors that
    include ``"weight"``; a ``"y"`` entry, when present, groups the
    validation events by class for the small-total check. A validation
    class whose |sum w| is below ``SMALL_TOTAL_RELATIVE`` times its
    sum |w| triggers a :class:`SmallTotalWarning`, and then neither early
    stopping nor restore-best nor the plateau schedule uses the
    validation loss. Ctrl-C ends training early with the best weights so
    far and ``history.interrupted`` set.
    """
    runtime = runtime or _Runtime(resolve_device(config.device))
    n_train = _check_tensors(data, "training data")
    if n_train == 0:
        raise InputError("training data contain no events; pass at least one event per class")
    data = _to_device(data, runtime.device)
    if validation is not None and _check_tensors(validation, "validation data") == 0:
        validation = None
    if validation is not None:
        validation = _to_device(validation, runtime.device)
    model.to(runtime.device)
    with _thread_scope(config, runtime.device), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        loop = _Loop(model, objective, data, validation, config, runtime)
        return loop.run()


class _Loop:
    """State of one training run: optimiser, schedule, early stopping, history."""

    def __init__(self, model, objective, data, validation, config, runtime) -> None:
        self.model = model
        self.ddp_model = runtime.wrap_model(model)
        self.objective = objective
        self.data = data
        self.validation = validation
        self.config = config
        self.runtime = runtime
        self.n = runtime.global_events(len(data["weight"]))
        self.optimizer = make_optimizer(model, config, runtime.device)
        self.scheduler = _make_scheduler(self.optimizer, config)
        self.generator = torch.Generator(device=runtime.device).manual_seed(config.seed)
        self.use_validation = validation is not None and _totals_usable(validation, runtime)
        reliable = validation is None or self.use_validation
        self.history = TrainingHistory(validation_reliable=reliable)
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.start_epoch = 0
        self.autocast = config.mixed_precision and runtime.device.type == "cuda"
        self.fingerprint = run_fingerprint(model, data, validation, config)

    def run(self) -> TrainingHistory:
        if self.config.resume:
            self._resume()
        epochs = range(self.start_epoch, self.config.epochs)
        bar = _progress_bar(self.config, len(epochs))
        try:
            for epoch in epochs:
                if self._epoch(epoch, bar):
                    self.history.stopped_early = True
                    break
        except KeyboardInterrupt:
            self.history.interrupted = True
            logger.warning("training interrupted after %d complete epochs; keeping the "
                           "best weights so far", len(self.history.train_loss))
        finally:
            bar.close()
        self._finish()
        return self.history

    def _epoch(self, epoch: int, bar) -> bool:
        """Train one epoch; return True when early stopping ends training."""
        train_loss = self._train_epoch(epoch)
        val_loss = self._validation_loss() if self.validation is not None else None
        self.history.record(train_loss, val_loss, self.optimizer.param_groups[0]["lr"])
        monitored = val_loss if self.use_validation else train_loss
        self._step_schedule(monitored)
        stop = self._track_best(epoch, val_loss)
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4g}",
                        validation=f"{val_loss:.4g}" if val_loss is not None else "-")
        if self.config.checkpoint_dir is not None and self.runtime.is_main:
            save_checkpoint(self, epoch)
        return stop

    def _train_epoch(self, epoch: int) -> float:
        self.ddp_model.train()
        size = self.config.batch_size
        order = torch.randperm(self.n, generator=self.generator, device=self.runtime.device)
        n_batches = (self.n + size - 1) // size
        losses = torch.empty(n_batches, device=self.runtime.device)
        for b in range(n_batches):
            index = order[b * size:(b + 1) * size]
            rows = self.runtime.local_rows(index)
            batch = {key: value[rows] for key, value in self.data.items()}
            loss = self._batch_loss(batch, len(index))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses[b] = loss.detach() * (len(index) / self.n)
        # One host synchronisation per epoch, not per batch.
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            raise TrainingError(
                f"the training loss became non-finite ({float(losses[bad]):g}) in epoch "
                f"{epoch + 1}, batch {bad + 1} of {n_batches}; lower the learning rate, "
                "check the weights for extreme values, or standardise the features"
            )
        return float(self.runtime.all_reduce_sum(losses.sum().double()))

    def _batch_loss(self, batch: Mapping[str, torch.Tensor], batch_events: int) -> torch.Tensor:
        """Weighted loss of the batch; ``batch_events`` counts it over all processes."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            per_event = self.objective(self.ddp_model, batch)
        return batch_loss(per_event, batch["weight"], self.n, batch_events)

    def _validation_loss(self) -> float:
        """Sum of weight * loss over the validation set, in float64, without autograd.

        ``torch.no_grad`` rather than ``inference_mode`` lets an objective
        that needs input gradients re-enable them with ``torch.enable_grad``.
        """
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.runtime.device)
        n = len(self.validation["weight"])
        with torch.no_grad():
            for start in range(0, n, VALIDATION_CHUNK):
                chunk = {k: v[start:start + VALIDATION_CHUNK] for k, v in self.validation.items()}
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
                    per_event = self.objective(self.model, chunk)
                total += (chunk["weight"].double() * per_event.double()).sum()
        value = float(self.runtime.all_reduce_sum(total))
        if not math.isfinite(value):
            raise TrainingError(f"the validation loss is non-finite ({value:g}); the "
                                "network output overflowed, so lower the learning rate")
        return value

    def _step_schedule(self, monitored: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def _track_best(self, epoch: int, val_loss: float | None) -> bool:
        """Update the best weights; return True when patience has run out."""
        if not self.use_validation:
            self.history.best_epoch = epoch
            return False
        if val_loss < self.best_loss:
            self.best_loss = val_loss
            self.bad_epochs = 0
            self.history.best_epoch = epoch
            if self.config.restore_best:
                state = self.model.state_dict()
                self.best_state = {k: v.detach().clone() for k, v in state.items()}
            return False
        self.bad_epochs += 1
        patience = self.config.patience
        return patience is not None and self.bad_epochs >= patience

    def _finish(self) -> None:
        if self.best_state is not None and self.history.best_epoch is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()

    def _resume(self) -> None:
        path = Path(self.config.checkpoint_dir)
        state = load_checkpoint(path, self.fingerprint)
        if state is None:
            logger.info("no checkpoint in %s; training starts from the first epoch", path)
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"].to("cpu"))
        self.history = TrainingHistory.from_dict(state["history"])
        self.best_loss = float(state["best_loss"])
        self.best_state = state["best_state"] or None
        self.bad_epochs = int(state["bad_epochs"])
        self.start_epoch = int(state["epoch"]) + 1
        logger.info("resuming from the checkpoint in %s after epoch %d", path, self.start_epoch)


def batch_loss(
    per_event: torch.Tensor, weight: torch.Tensor, n_events: int, batch_events: int | None = None
) -> torch.Tensor:
    """Estimate the full-sample sum of weight * loss from one batch.

    The estimate is (n_events / batch_events) * sum(weight * loss), with
    ``batch_events`` defaulting to the length of ``weight``. Dividing by
    the batch's own weight sum instead would blow up whenever signed
    weights cancel within a batch.
    """
    batch_events = len(weight) if batch_events is None else batch_events
    return (weight * per_event.float()).sum() * (n_events / batch_events)


def _check_tensors(data: Mapping[str, torch.Tensor], what: str) -> int:
    if "weight" not in data:
        raise InputError(f"{what} must include a 'weight' tensor; got keys {sorted(data)}")
    lengths = {key: int(value.shape[0]) for key, value in data.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"{what} tensors differ in length: {lengths}; pass one row per event")
    return lengths["weight"]


def _to_device(data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in data.items()}


def _totals_usable(validation: Mapping[str, torch.Tensor], runtime: _Runtime) -> bool:
    """Check that no validation class has a total indistinguishable from zero."""
    w = validation["weight"].double()
    groups = [("all events", torch.ones_like(w, dtype=torch.bool))]
    if "y" in validation:
        y = validation["y"].reshape(-1)
        # Every process must test the same classes, whatever its shard contains.
        labels = torch.unique(y).tolist() if runtime.world_size == 1 else [0.0, 1.0]
        groups = [(f"class y={int(v)}", y == v) for v in labels]
    for name, mask in groups:
        sums = torch.stack([w[mask].sum(), w[mask].abs().sum()])
        total, absolute = (float(v) for v in runtime.all_reduce_sum(sums))
        if absolute > 0 and abs(total) < SMALL_TOTAL_RELATIVE * absolute:
            warnings.warn(
                f"validation {name}: the weights sum to {total:.3g} against a sum of "
                f"|w| of {absolute:.3g}, so its loss is dominated by cancellation; early "
                "stopping, restore-best and the plateau schedule ignore the validation "
                "loss. Use a larger validation_fraction for a usable validation loss",
                SmallTotalWarning,
                stacklevel=4,
            )
            return False
    return True


def make_optimizer(model: nn.Module, config: TrainingConfig, device: torch.device):
    """AdamW with the configured rate and decay, fused into one kernel on CPU and CUDA.

    The fused update gives the same result as the per-tensor loop and
    cut the step time of a 3 x 64 MLP by about 20 % on CPU (torch 2.13).
    """
    return torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
        fused=device.type in ("cpu", "cuda"),
    )


def _make_scheduler(optimizer, config: TrainingConfig):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    return None


@contextlib.contextmanager
def _thread_scope(config: TrainingConfig, device: torch.device) -> Iterator[None]:
    """Set the CPU thread count for the run and restore the previous one after."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(config.num_threads or DEFAULT_NUM_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(config: TrainingConfig, total: int):
    show = config.progress if config.progress is not None else sys.stderr.isatty()
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="epoch", leave=False)
