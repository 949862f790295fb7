"""Loss curves of a training run and the checkpoints that let it resume.

A checkpoint is written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which restores only tensors and plain
Python containers and never runs code from the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from quasiratio._atomic import atomic_path
from quasiratio.errors import TrainingError

CHECKPOINT_NAME = "checkpoint.pt"

#: Training options that may differ between a run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "progress", "resume", "checkpoint_dir", "num_threads", "device")


@dataclasses.dataclass
class TrainingHistory:
    """Loss curves of a training run, one entry per completed epoch.

    Losses are full-sample sums of weight * loss with each class
    normalised to its fixed total. ``best_epoch`` counts from 0 and names
    the epoch whose weights the model has after training.
    ``validation_reliable`` is False when a validation class had a total
    indistinguishable from zero, in which case the validation losses are
    recorded but were not used.
    """

    train_loss: list[float] = dataclasses.field(default_factory=list)
    validation_loss: list[float] = dataclasses.field(default_factory=list)
    learning_rate: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    validation_reliable: bool = True

    def record(self, train_loss: float, validation_loss: float | None, rate: float) -> None:
        self.train_loss.append(float(train_loss))
        if validation_loss is not None:
            self.validation_loss.append(float(validation_loss))
        self.learning_rate.append(float(rate))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingHistory:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def plot(self, ax=None):
        """Draw the training and validation loss per epoch; return the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        epochs = range(1, len(self.train_loss) + 1)
        ax.plot(epochs, self.train_loss, label="training")
        if self.validation_loss:
            label = "validation" if self.validation_reliable else "validation (total ~ 0, unused)"
            ax.plot(epochs, self.validation_loss, label=label)
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("weighted loss")
        ax.legend()
        return ax


def run_fingerprint(model, data, validation, config) -> str:
    """Hash of what must match for a checkpoint to continue this run."""
    options = {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES}
    described = {
        "options": options,
        "parameters": {k: list(v.shape) for k, v in model.state_dict().items()},
        "data": _describe(data),
        "validation": _describe(validation) if validation is not None else None,
    }
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _describe(data) -> dict:
    # The float64 sum of each tensor distinguishes inputs of the same shape.
    return {
        key: [list(value.shape), round(float(value.double().sum()), 6)]
        for key, value in data.items()
    }


def save_checkpoint(loop, epoch: int) -> None:
    """Write the state of a ``training._Loop`` after ``epoch`` atomically."""
    state = {
        "fingerprint": loop.fingerprint,
        "epoch": epoch,
        "model": loop.model.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict() if loop.scheduler is not None else None,
        "generator": loop.generator.get_state(),
        "history": loop.history.to_dict(),
        "best_loss": loop.best_loss,
        "best_state": loop.best_state,
        "bad_epochs": loop.bad_epochs,
    }
    path = Path(loop.config.checkpoint_dir) / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(directory: Path, fingerprint: str) -> dict | None:
    """Read the checkpoint in ``directory``; None when there is none yet."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file fails in many ways
        # Only the first sentence: torch's full message for an unsafe file suggests
        # weights_only=False, which would let the file run code.
        reason = str(error).split(". ")[0][:200]
        raise TrainingError(
            f"cannot read the checkpoint {path}: {reason}; delete it to start afresh"
        ) from error
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise TrainingError(
            f"the checkpoint {path} was written by a run with other data, network or "
            "training options; delete it or use another checkpoint directory"
        )
    return state
