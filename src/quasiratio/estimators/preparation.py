"""Turning user samples into the arrays and tensors the training loop takes.

Each class is normalised once to a total weight of 1 before it is split.
So the ratio learned is that of unit-normalised densities, the loss is of
order 1 whatever the units of the weights, and multiplying all weights of
a sample by a constant changes nothing. After the seeded split each part
is scaled by (events in the class) / (events in the part), which keeps
its expected total at 1 without dividing by its own, possibly zero, sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from quasiratio.errors import InputError
from quasiratio.events import EventSample, check_finite, concatenate


def as_samples(numerator, denominator, numerator_weight, denominator_weight):
    """Return both inputs as EventSamples with the same feature columns."""
    num = _as_sample(numerator, numerator_weight, "numerator")
    den = _as_sample(denominator, denominator_weight, "denominator")
    if num.n_features != den.n_features or set(num.feature_names) != set(den.feature_names):
        raise InputError(
            f"numerator features {list(num.feature_names)} and denominator features "
            f"{list(den.feature_names)} differ; pass the same features for both samples"
        )
    if den.feature_names != num.feature_names:
        den = den.select(num.feature_names)
    for sample in (num, den):
        if len(sample) == 0:
            raise InputError(
                f"the {sample.source} sample has no events; pass a file or array with events"
            )
        check_float32_range(sample.x, f"{sample.source}: features", sample.feature_names)
    return num, den


def check_float32_range(values: np.ndarray, what: str, columns: Sequence[str]) -> None:
    """Raise InputError for finite features beyond the float32 range.

    The networks run in float32, where such a value becomes infinite and
    the ratio NaN.
    """
    limit = float(np.finfo(np.float32).max)
    counts = (np.abs(values) > limit).sum(axis=0)
    if counts.any():
        named = ", ".join(f"{name!r} ({int(c)} events)" for name, c in zip(columns, counts) if c)
        raise InputError(
            f"{what} exceed the float32 range of +-{limit:.3g} in column {named}; "
            "rescale those features or remove those events"
        )


def _as_sample(sample, sample_weight, role: str) -> EventSample:
    if isinstance(sample, EventSample):
        if sample_weight is not None:
            raise InputError(
                f"{role}_weight was passed together with an EventSample that has its own "
                f"weights; use sample.with_weights(w) instead"
            )
        return sample if sample.source != "sample" else sample.replace(source=role)
    x = np.asarray(sample, dtype=np.float64)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    return EventSample.from_arrays(x, sample_weight, source=role)


def features_for(x, feature_names: Sequence[str]) -> np.ndarray:
    """Feature array in training column order from an EventSample or an array."""
    if isinstance(x, EventSample):
        values = x.select(list(feature_names)).x
        check_float32_range(values, f"{x.source}: features", feature_names)
        return values
    values = np.asarray(x, dtype=np.float64)
    if values.ndim == 1 and len(feature_names) == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != len(feature_names):
        raise InputError(
            f"features of shape {values.shape} do not match the {len(feature_names)} "
            f"training features {list(feature_names)}; pass an array of shape "
            f"(N, {len(feature_names)})"
        )
    check_finite(values, "features", columns=list(feature_names))
    check_float32_range(values, "features", feature_names)
    return values


def prepare_classes(
    numerator: EventSample,
    denominator: EventSample,
    *,
    validation_fraction: float,
    seed: int,
    extras: Sequence[str] = (),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Normalise, split and join the two classes into training and validation arrays.

    Returns dicts with ``x`` (N, D), ``y`` (1 numerator, 0 denominator),
    ``weight`` (float64) and each name in ``extras``. The validation dict
    is None when ``validation_fraction`` is 0.
    """
    parts = [
        _split_class(numerator.normalized(1.0), validation_fraction, seed),
        _split_class(denominator.normalized(1.0), validation_fraction, seed + 1),
    ]
    labels = (1.0, 0.0)
    train = _join([p[0] for p in parts], labels, extras)
    if validation_fraction <= 0:
        return train, None
    return train, _join([p[1] for p in parts], labels, extras)


def _split_class(sample: EventSample, fraction: float, seed: int):
    if fraction <= 0:
        return sample, None
    train, validation = sample.shuffled_split([1.0 - fraction, fraction], seed=seed)
    if len(train) == 0:
        raise InputError(
            f"{sample.source}: {len(sample)} events leave none for training after a "
            f"validation fraction of {fraction}; pass more events or lower "
            "validation_fraction"
        )
    n = len(sample)
    scaled = []
    for part in (train, validation):
        factor = n / len(part) if len(part) else 1.0
        scaled.append(part.with_weights(part.sample_weight * factor))
    return tuple(scaled)


def _join(samples, labels, extras) -> dict[str, np.ndarray]:
    joined = concatenate(samples)
    y = np.concatenate([np.full(len(s), label) for s, label in zip(samples, labels)])
    arrays = {"x": joined.x, "y": y, "weight": joined.sample_weight}
    for name in extras:
        if name not in joined.extras:
            raise InputError(
                f"the method needs the per-event array {name!r} in both samples; "
                f"found {sorted(joined.extras)}"
            )
        arrays[name] = joined.extras[name]
    return arrays


def to_tensors(arrays: dict[str, np.ndarray], *, weight_dtype=torch.float32) -> dict:
    """Convert prepared arrays to CPU tensors: float32, weights in ``weight_dtype``."""
    tensors = {}
    for name, values in arrays.items():
        dtype = weight_dtype if name == "weight" else torch.float32
        tensors[name] = torch.as_tensor(np.ascontiguousarray(values), dtype=dtype)
    return tensors
