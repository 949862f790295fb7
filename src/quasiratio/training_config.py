"""Training options: one frozen dataclass, validated when it is built.

Every option of :func:`quasiratio.training.train` lives in
:class:`TrainingConfig`, so estimators, the command line and saved model
metadata pass one object instead of many keyword arguments.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch

from quasiratio.errors import InputError

__all__ = ["SCHEDULES", "TrainingConfig", "resolve_device"]

#: Learning-rate schedules :class:`TrainingConfig` accepts.
SCHEDULES = ("constant", "cosine", "plateau")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Every option of :func:`train`, validated on construction.

    ``schedule`` is "constant", "cosine" (cosine decay to zero over
    ``epochs``) or "plateau" (the rate halves after 2 epochs without a
    lower validation loss). ``patience`` is the number of epochs without
    a lower validation loss after which training stops; None disables
    early stopping. ``progress`` None shows a bar only when stderr is a
    terminal. ``num_threads`` None uses :data:`quasiratio.training.DEFAULT_NUM_THREADS` on
    CPU. With ``checkpoint_dir`` a checkpoint is written there after
    every epoch, and ``resume`` continues from it. ``mixed_precision``
    runs the network in bfloat16 autocast on CUDA only; losses and their
    weighted sums stay float32.
    """

    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    validation_fraction: float = 0.2
    patience: int | None = 5
    restore_best: bool = True
    seed: int = 0
    device: str = "auto"
    progress: bool | None = None
    num_threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        _require(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs,
                 "must be an integer >= 1")
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
                 self.batch_size, "must be an integer >= 1")
        _require(_is_real(self.learning_rate) and self.learning_rate > 0, "learning_rate",
                 self.learning_rate, "must be a finite number > 0")
        _require(self.schedule in SCHEDULES, "schedule", self.schedule,
                 f"must be one of {list(SCHEDULES)}")
        _require(_is_real(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
                 self.weight_decay, "must be a finite number >= 0")
        _require(_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 1,
                 "validation_fraction", self.validation_fraction, "must be in [0, 1)")
        _require(self.patience is None or (isinstance(self.patience, int) and self.patience >= 1),
                 "patience", self.patience, "must be an integer >= 1 or None")
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed,
                 "must be an integer >= 0")
        _require(_is_device_name(self.device), "device", self.device,
                 "must be 'cpu', 'cuda', 'cuda:N' or 'auto'")
        _require(self.num_threads is None or (isinstance(self.num_threads, int)
                 and self.num_threads >= 1), "num_threads", self.num_threads,
                 "must be an integer >= 1 or None")
        _require(not self.resume or self.checkpoint_dir is not None, "resume", self.resume,
                 "needs checkpoint_dir to be set")
        for name in ("restore_best", "resume", "mixed_precision"):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name),
                     "must be True or False")
        _require(self.progress is None or isinstance(self.progress, bool), "progress",
                 self.progress, "must be True, False or None")

    def replace(self, **changes) -> TrainingConfig:
        """Return a validated copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, options: Mapping) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown training options {unknown}; known: {sorted(known)}")
        return cls(**dict(options))


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_device_name(value) -> bool:
    if value in ("cpu", "cuda", "auto"):
        return True
    return isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit()


def _require(ok: bool, name: str, value, rule: str) -> None:
    if not ok:
        raise InputError(f"training option {name}={value!r} is invalid: it {rule}")


def resolve_device(name: str) -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into an available torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was requested but CUDA is not available; "
                         "use device='cpu' or 'auto'")
    return torch.device(name)
