"""Weighted event samples: features, signed weights, summaries and splits.

An :class:`EventSample` is what every reader returns and every estimator
takes. Weights are signed and stored in float64, because sums of signed
weights lose precision quickly in float32 when positive and negative
entries cancel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from quasiratio.errors import InputError

#: Names of the optional per-event arrays an :class:`EventSample` may carry.
EXTRA_NAMES = ("r_xz", "t_xz", "theta")


@dataclasses.dataclass(frozen=True)
class WeightSummary:
    """Summary figures of a weighted sample.

    ``effective_sample_size`` is (sum w)^2 / sum w^2: the number of
    unit-weight events that would give the same relative statistical error
    on the total. It is defined for signed weights too, and cancellation
    lowers it: 10,000 events with 18.5 % of weights at -w and the rest at
    +w have an ESS of 3,969. ``max_weight_share`` is the largest single |w|
    divided by sum |w|. ``negative_fraction`` counts events with w < 0.
    """

    events: int
    sum_weights: float
    sum_abs_weights: float
    negative_fraction: float
    effective_sample_size: float
    max_weight_share: float

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def summarize_weights(sample_weight: np.ndarray) -> WeightSummary:
    """Compute the :class:`WeightSummary` of a weight array in float64."""
    w = np.asarray(sample_weight, dtype=np.float64)
    n = int(w.size)
    if n == 0:
        return WeightSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    sum_w = float(np.sum(w))
    sum_abs = float(np.sum(np.abs(w)))
    sum_w2 = float(np.sum(w * w))
    ess = sum_w**2 / sum_w2 if sum_w2 > 0 else 0.0
    share = float(np.max(np.abs(w)) / sum_abs) if sum_abs > 0 else 0.0
    return WeightSummary(
        events=n,
        sum_weights=sum_w,
        sum_abs_weights=sum_abs,
        negative_fraction=float(np.count_nonzero(w < 0) / n),
        effective_sample_size=ess,
        max_weight_share=share,
    )


def check_finite(values: np.ndarray, what: str, *, columns: Sequence[str] | None = None) -> None:
    """Raise :class:`InputError` naming the column and count of non-finite values."""
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    if values.ndim == 2 and columns is not None:
        counts = bad.sum(axis=0)
        named = ", ".join(
            f"{name!r} ({int(c)} events)" for name, c in zip(columns, counts) if c
        )
        raise InputError(
            f"{what} contain NaN or infinite values in column {named}; "
            "remove or repair those events before use"
        )
    raise InputError(
        f"{what} contain {int(bad.sum())} NaN or infinite values; "
        "remove or repair those events before use"
    )


def _as_features(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"features must have shape (N, D), got shape {x.shape}")
    return x


@dataclasses.dataclass(frozen=True, eq=False)
class EventSample:
    """A weighted sample of events.

    Attributes
    ----------
    x:
        Features, float64 array of shape (N, D).
    sample_weight:
        Signed per-event weights, float64 array of shape (N,).
    feature_names:
        One name per feature column.
    extras:
        Optional per-event arrays keyed by name (``r_xz``, ``t_xz``,
        ``theta`` or any other), each with N rows.
    weight_name:
        Name of the weight the sample was read with, if any.
    source:
        Where the sample came from, used in messages.
    """

    x: np.ndarray
    sample_weight: np.ndarray
    feature_names: tuple[str, ...]
    extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    weight_name: str | None = None
    source: str = "sample"

    def __post_init__(self) -> None:
        x = _as_features(self.x)
        w = np.asarray(self.sample_weight, dtype=np.float64).reshape(-1)
        if w.shape[0] != x.shape[0]:
            raise InputError(
                f"{self.source}: {x.shape[0]} events of features but "
                f"{w.shape[0]} weights; pass one weight per event"
            )
        names = tuple(str(n) for n in self.feature_names)
        if len(names) != x.shape[1]:
            raise InputError(
                f"{self.source}: {x.shape[1]} feature columns but {len(names)} "
                f"feature names {list(names)}; pass one name per column"
            )
        if len(set(names)) != len(names):
            raise InputError(f"{self.source}: duplicate feature names in {list(names)}")
        check_finite(x, f"{self.source}: features", columns=names)
        check_finite(w, f"{self.source}: weights")
        extras = {}
        for key, value in dict(self.extras).items():
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape[:1] != (x.shape[0],):
                raise InputError(
                    f"{self.source}: extra {key!r} has shape {arr.shape}, "
                    f"expected {x.shape[0]} rows"
                )
            check_finite(arr, f"{self.source}: extra {key!r}")
            extras[key] = arr
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "sample_weight", w)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "extras", MappingProxyType(extras))

    @classmethod
    def from_arrays(
        cls,
        x: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        feature_names: Sequence[str] | None = None,
        source: str = "sample",
        **extras: np.ndarray,
    ) -> EventSample:
        """Build a sample from arrays; weights default to 1 and names to x0, x1, ..."""
        x = _as_features(x)
        if sample_weight is None:
            sample_weight = np.ones(x.shape[0])
        if feature_names is None:
            feature_names = [f"x{i}" for i in range(x.shape[1])]
        return cls(x, sample_weight, tuple(feature_names), extras, source=source)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def summary(self) -> WeightSummary:
        return summarize_weights(self.sample_weight)

    def replace(self, **changes) -> EventSample:
        """Return a copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)

    def with_weights(self, sample_weight: np.ndarray, *, weight_name: str | None = None) -> EventSample:
        return self.replace(sample_weight=sample_weight, weight_name=weight_name or self.weight_name)

    def take(self, index: np.ndarray) -> EventSample:
        """Return the events at ``index`` (integer indices or a boolean mask)."""
        index = np.asarray(index)
        extras = {k: v[index] for k, v in self.extras.items()}
        return self.replace(x=self.x[index], sample_weight=self.sample_weight[index], extras=extras)

    def select(self, features: Sequence[str]) -> EventSample:
        """Return a sample with only the named feature columns, in that order."""
        missing = [f for f in features if f not in self.feature_names]
        if missing:
            raise InputError(
                f"{self.source}: unknown features {missing}; "
                f"available: {list(self.feature_names)}"
            )
        cols = [self.feature_names.index(f) for f in features]
        return self.replace(x=self.x[:, cols], feature_names=tuple(features))

    def normalized(self, total: float = 1.0) -> EventSample:
        """Scale the weights so that they sum to ``total``.

        Raises :class:`InputError` when the sum of weights is zero or
        negative, or tiny next to the sum of |w|, where no positive total
        can be reached by scaling.
        """
        sum_w = float(np.sum(self.sample_weight, dtype=np.float64))
        sum_abs = float(np.sum(np.abs(self.sample_weight), dtype=np.float64))
        if not sum_w > 1e-12 * max(sum_abs, 1e-300):
            raise InputError(
                f"{self.source}: the weights sum to {sum_w:.6g} (sum of |w| is "
                f"{sum_abs:.6g}), so they cannot be normalised to a positive total; "
                "use a sample whose weights sum to a positive number"
            )
        return self.with_weights(self.sample_weight * (total / sum_w))

    def split_by_sign(self) -> tuple[EventSample, EventSample]:
        """Return the events with w >= 0 and those with w < 0, weights unchanged.

        Events with zero weight go to the first sample.
        """
        negative = self.sample_weight < 0
        return self.take(~negative), self.take(negative)

    def shuffled_split(
        self, fractions: Sequence[float], *, seed: int | None = 0
    ) -> tuple[EventSample, ...]:
        """Split the events at random into parts of the given fractions.

        ``fractions`` must be positive and sum to at most 1; a remainder
        forms one more part. The same seed always gives the same split.
        """
        fractions = [float(f) for f in fractions]
        if any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-12:
            raise InputError(
                f"split fractions {fractions} must be positive and sum to at most 1"
            )
        n = len(self)
        order = np.random.default_rng(seed).permutation(n)
        bounds = np.floor(np.cumsum(fractions) * n + 1e-9).astype(int)
        if sum(fractions) < 1 - 1e-12:
            bounds = np.append(bounds, n)
        bounds[-1] = min(bounds[-1], n)
        parts = np.split(order, bounds[:-1])
        return tuple(self.take(np.sort(p)) for p in parts)

    def train_validation_test_split(
        self, validation: float = 0.2, test: float = 0.2, *, seed: int | None = 0
    ) -> tuple[EventSample, EventSample, EventSample]:
        """Split into train, validation and test samples with a fixed seed."""
        train = 1.0 - validation - test
        if not 0 < train <= 1 or validation < 0 or test < 0:
            raise InputError(
                f"validation={validation} and test={test} must be >= 0 and leave "
                "a positive training fraction"
            )
        parts = [f for f in (train, validation, test) if f > 0]
        split = list(self.shuffled_split(parts, seed=seed))
        if validation <= 0:
            split.insert(1, self.take(np.zeros(0, dtype=int)))
        if test <= 0:
            split.append(self.take(np.zeros(0, dtype=int)))
        return split[0], split[1], split[2]


def concatenate(samples: Sequence[EventSample]) -> EventSample:
    """Join samples with the same feature names into one."""
    if not samples:
        raise InputError("cannot concatenate an empty list of samples")
    names = samples[0].feature_names
    for s in samples[1:]:
        if s.feature_names != names:
            raise InputError(
                f"feature names differ: {list(names)} and {list(s.feature_names)}"
            )
    keys = set(samples[0].extras)
    extras = {
        k: np.concatenate([s.extras[k] for s in samples])
        for k in keys
        if all(k in s.extras for s in samples)
    }
    return EventSample(
        np.concatenate([s.x for s in samples]),
        np.concatenate([s.sample_weight for s in samples]),
        names,
        extras,
        weight_name=samples[0].weight_name,
        source=samples[0].source,
    )


#: Accepted values of the ``negative_weights`` policy.
NEGATIVE_WEIGHT_POLICIES = ("keep", "drop", "abs")


def apply_negative_weight_policy(sample: EventSample, policy: str = "keep") -> EventSample:
    """Keep, drop or take |w| of negative weights, warning when they change.

    ``keep`` (the default) leaves the signed weights as they are, which is
    the only policy that preserves the distribution the sample describes.
    ``drop`` and ``abs`` change that distribution and issue a
    :class:`~quasiratio.errors.NegativeWeightWarning` saying so.
    """
    import warnings

    from quasiratio.errors import NegativeWeightWarning

    if policy not in NEGATIVE_WEIGHT_POLICIES:
        raise InputError(
            f"negative-weight policy {policy!r} is not one of {list(NEGATIVE_WEIGHT_POLICIES)}"
        )
    negative = sample.sample_weight < 0
    if policy == "keep" or not negative.any():
        return sample
    fraction = float(negative.mean())
    warnings.warn(
        f"{sample.source}: negative-weight policy {policy!r} changes "
        f"{fraction:.1%} of the events, so the sample no longer follows the "
        "distribution its signed weights describe; use 'keep' to preserve it",
        NegativeWeightWarning,
        stacklevel=2,
    )
    if policy == "drop":
        return sample.take(~negative)
    return sample.with_weights(np.abs(sample.sample_weight))
