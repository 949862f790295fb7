"""Data-parallel training with torch.distributed, as launched by ``torchrun``.

Each process reads its shard of both samples: the events whose index in
the file, counted from 0, is congruent to the process rank modulo the
number of processes. Every quantity that the single-process fit takes
over a whole sample is formed as a float64 ``all_reduce`` sum instead.
These are the class totals that normalise the weights, the moments of
the input standardisation, the feature range, the validation loss, and
the class totals that decide whether early stopping may use it.

Batches have the same composition as in one process. Every process draws
the same permutation of the global training rows each epoch, takes the
same slices of it, and evaluates the rows of each slice that it holds.
DistributedDataParallel then sums the gradients of the per-process parts
of the batch loss, which is the gradient of the whole batch loss. The
run therefore follows the single-process run with the same seed, up to
the order of floating-point additions.

Only single-network estimators that train through the default
``RatioEstimator._fit_samples`` (CARL and REVERT) are supported.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from quasiratio.errors import InputError, NegativeWeightWarning
from quasiratio.estimators.base import RatioEstimator
from quasiratio.estimators.preparation import _join, to_tensors
from quasiratio.events import EventSample, apply_negative_weight_policy, concatenate
from quasiratio.training import _Runtime, resolve_device, train

logger = logging.getLogger(__name__)


class DataParallelRuntime(_Runtime):
    """A training runtime over an initialised default process group."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device, world_size=dist.get_world_size(), rank=dist.get_rank())
        self.n_global = 0
        self.positions: torch.Tensor | None = None

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        total = value.detach().to(self.device, torch.float64).clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def reduce(self, values: np.ndarray, op: str) -> np.ndarray:
        """Combine a float64 array over all processes with ``sum``, ``min`` or ``max``."""
        ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device).clone()
        dist.all_reduce(tensor, op=ops[op])
        return tensor.cpu().numpy()

    def global_counts(self, counts: dict[str, int]) -> dict[str, int]:
        totals = self.reduce(np.array(list(counts.values()), dtype=np.float64), "sum")
        return {key: int(v) for key, v in zip(counts, totals)}

    def wrap_model(self, model: nn.Module) -> nn.Module:
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        wrapped.register_comm_hook(None, _sum_gradients)
        return wrapped

    def set_training_rows(self, global_rows: np.ndarray, n_global: int) -> None:
        """Record which global training rows this process holds, in its row order."""
        positions = torch.full((n_global,), -1, dtype=torch.int64)
        positions[torch.as_tensor(global_rows, dtype=torch.int64)] = torch.arange(len(global_rows))
        self.positions = positions.to(self.device)
        self.n_global = n_global

    def global_events(self, n_local: int) -> int:
        return self.n_global

    def local_rows(self, index: torch.Tensor) -> torch.Tensor:
        rows = self.positions[index]
        return rows[rows >= 0]


def _sum_gradients(state, bucket):
    """DDP communication hook that sums the gradient buckets over processes."""
    future = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return future.then(lambda done: done.value()[0])


def runtime_from_environment(device: str = "auto") -> DataParallelRuntime | None:
    """Join the process group that ``torchrun`` describes; None for a single process.

    The backend is NCCL on CUDA and gloo on CPU. On CUDA each process
    uses the GPU numbered by its ``LOCAL_RANK``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    logger.info("data-parallel training: process %d of %d on %s",
                dist.get_rank(), dist.get_world_size(), resolved)
    return DataParallelRuntime(resolved)


def shutdown(*, wait: bool = True) -> None:
    """Leave the process group, first waiting for every process when ``wait`` is set."""
    if dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def shard(sample: EventSample, rank: int, world_size: int, offset: int = 0) -> EventSample:
    """Return the events of ``sample`` whose file index is ``rank`` modulo ``world_size``.

    ``offset`` is the file index of the first event of ``sample``.
    """
    index = np.arange(offset, offset + len(sample))
    return sample.take(np.flatnonzero(index % world_size == rank))


def read_shard(path, runtime, *, chunk_size: int = 100_000, policy: str = "keep", **options):
    """Read this process's shard of an event file, streaming the other events past.

    The negative-weight policy is applied before sharding, so the shards
    partition the same events as a single-process read would keep.

    NOTE: every process still parses the whole file; only memory is
    divided between processes, not reading time.
    """
    from quasiratio.io import iter_events

    parts, offset, caught = [], 0, []
    for chunk in iter_events(path, chunk_size=chunk_size, **options):
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always", NegativeWeightWarning)
            chunk = apply_negative_weight_policy(chunk, policy)
        caught += found
        parts.append(shard(chunk, runtime.rank, runtime.world_size, offset))
        offset += len(chunk)
    if caught:
        warnings.warn(str(caught[0].message), NegativeWeightWarning, stacklevel=2)
    if not parts:
        raise InputError(f"{path}: the file contains no events")
    return concatenate(parts)


def load_pair_shards(args, runtime) -> tuple[EventSample, EventSample]:
    """Read this process's shard of ``--numerator`` and ``--denominator``."""
    from quasiratio.cli._common import parse_features

    features = parse_features(getattr(args, "features", None))
    samples = []
    for role in ("numerator", "denominator"):
        sample = read_shard(
            getattr(args, role), runtime, weight=getattr(args, f"{role}_weight", None),
            features=features, tree=getattr(args, "tree", None),
            policy=getattr(args, "negative_weights", "keep"),
        )
        samples.append(sample.replace(source=f"{role} shard {runtime.rank}"))
    return samples[0], samples[1]


def fit_data_parallel(estimator: RatioEstimator, numerator: EventSample,
                      denominator: EventSample, runtime: DataParallelRuntime) -> RatioEstimator:
    """Fit ``estimator`` on the shards of all processes; every process returns the same model.

    ``numerator`` and ``denominator`` are this process's shards, as from
    :func:`shard` with its rank. Only the first process should save.
    """
    check_supported(estimator)
    config = estimator.config
    if not runtime.is_main:
        config = config.replace(progress=False)
    estimator.config = config
    num, den = (s if s.feature_names == numerator.feature_names
                else s.select(numerator.feature_names) for s in (numerator, denominator))
    estimator._check_samples(num, den)
    estimator.feature_names_ = num.feature_names
    estimator.n_features_in_ = num.n_features
    estimator.support_ = _global_support(num, den, runtime)

    train_set, validation_set, rows, n_train = prepare_shards(
        num, den, runtime, validation_fraction=config.validation_fraction, seed=config.seed
    )
    runtime.set_training_rows(rows, n_train)
    model = estimator.new_model(train_set["x"], train_set["weight"])
    _fit_standardizer(model.standardizer, train_set["x"], train_set["weight"], runtime)
    validation = None
    if validation_set is not None:
        validation = to_tensors(validation_set, weight_dtype=torch.float64)
    estimator.history_ = train(model, estimator._objective, to_tensors(train_set), config,
                               validation=validation, runtime=runtime)
    estimator.network_ = model
    estimator._after_training(train_set, validation_set)
    return estimator


def prepare_shards(numerator: EventSample, denominator: EventSample, runtime, *,
                   validation_fraction: float, seed: int):
    """Normalise, split and join the shards as ``prepare_classes`` does for whole samples.

    Returns the training and validation arrays of this process, the
    global training row of each of its training events, and the number
    of training events over all processes. The global training rows are
    those of the single-process arrays: numerator events first, each
    class in file order.
    """
    parts = [
        _split_shard(numerator, validation_fraction, seed, runtime),
        _split_shard(denominator, validation_fraction, seed + 1, runtime),
    ]
    labels = (1.0, 0.0)
    train = _join([p[0] for p in parts], labels, ())
    rows = np.concatenate([parts[0][1], parts[1][1] + parts[0][2]])
    n_train = parts[0][2] + parts[1][2]
    validation = None
    if validation_fraction > 0:
        validation = _join([p[3] for p in parts], labels, ())
    return train, validation, rows, n_train


def _split_shard(sample: EventSample, fraction: float, seed: int, runtime):
    """Normalise a class to total 1 globally and split it with the single-process rule.

    Returns (training part, its rows within the class, class training
    events over all processes, validation part or None).
    """
    w = sample.sample_weight
    sums = runtime.reduce(np.array([len(sample), w.sum(), np.abs(w).sum()]), "sum")
    n, sum_w, sum_abs = int(sums[0]), float(sums[1]), float(sums[2])
    if not sum_w > 1e-12 * max(sum_abs, 1e-300):
        raise InputError(
            f"{sample.source}: the weights over all processes sum to {sum_w:.6g} (sum of "
            f"|w| is {sum_abs:.6g}), so they cannot be normalised to a positive total; "
            "use a sample whose weights sum to a positive number"
        )
    sample = sample.with_weights(w * (1.0 / sum_w))
    file_index = np.arange(len(sample)) * runtime.world_size + runtime.rank
    if fraction <= 0:
        return sample, file_index, n, None
    # The split of the single-process fit, applied to the global indices.
    indices = EventSample.from_arrays(np.arange(n, dtype=np.float64))
    train_part, validation_part = indices.shuffled_split([1.0 - fraction, fraction], seed=seed)
    train_index = train_part.x[:, 0].astype(np.int64)
    in_train = np.isin(file_index, train_index)
    rows = np.searchsorted(train_index, file_index[in_train])
    train = sample.take(in_train)
    validation = sample.take(~in_train)
    train = train.with_weights(train.sample_weight * _part_factor(n, len(train_index)))
    validation = validation.with_weights(
        validation.sample_weight * _part_factor(n, len(validation_part))
    )
    return train, rows, len(train_index), validation


def _part_factor(n_class: int, n_part: int) -> float:
    return n_class / n_part if n_part else 1.0


def check_supported(estimator: RatioEstimator) -> None:
    """Raise InputError for an estimator or option that cannot train data-parallel."""
    if type(estimator)._fit_samples is not RatioEstimator._fit_samples:
        raise InputError(
            f"method {estimator.method!r} trains several networks or needs per-event extras, "
            "which data-parallel training does not support yet; use carl or revert under "
            "torchrun, or run with one process"
        )
    if type(estimator)._after_training is not RatioEstimator._after_training and \
            getattr(estimator, "calibration", None) is not None:
        raise InputError(
            "calibration is fitted on the validation events of one process, which differ "
            "under torchrun; fit without calibration, or run with one process"
        )
    if estimator.config.resume:
        raise InputError(
            "--resume is not supported under torchrun, because only the first process "
            "writes checkpoints; resume with one process"
        )


def _global_support(numerator: EventSample, denominator: EventSample, runtime) -> dict:
    """Per-feature range of the events with non-zero weight over all processes."""
    x = np.concatenate([s.x[s.sample_weight != 0] for s in (numerator, denominator)])
    low = x.min(axis=0) if len(x) else np.full(numerator.n_features, np.inf)
    high = x.max(axis=0) if len(x) else np.full(numerator.n_features, -np.inf)
    low, high = runtime.reduce(low, "min"), runtime.reduce(high, "max")
    if not np.all(np.isfinite(low)):
        raise InputError("every event weight is zero in both samples; nothing to learn from")
    return {"min": low.tolist(), "max": high.tolist()}


def _fit_standardizer(standardizer, x: np.ndarray, sample_weight: np.ndarray, runtime) -> None:
    """Set mean and scale from |w|-weighted moments summed over all processes.

    The same formulas as ``Standardizer.fit``: mean = sum |w| x / sum |w|,
    scale = sqrt(sum |w| (x - mean)^2 / sum |w|), and 1 for a feature
    without spread.
    """
    w = np.abs(np.asarray(sample_weight, dtype=np.float64))
    x = np.asarray(x, dtype=np.float64)
    total = float(runtime.reduce(np.array([w.sum()]), "sum")[0])
    if not total > 0:
        raise InputError("cannot standardise features: every event weight is zero; "
                         "pass events with non-zero weights")
    mean = runtime.reduce(w @ x, "sum") / total
    std = np.sqrt(runtime.reduce(w @ (x - mean) ** 2, "sum") / total)
    std[~(std > 0)] = 1.0
    standardizer.mean.copy_(torch.as_tensor(mean, dtype=standardizer.mean.dtype))
    standardizer.scale.copy_(torch.as_tensor(std, dtype=standardizer.scale.dtype))
