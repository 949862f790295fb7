"""Checks that turn an undefined metric into a :class:`MetricError` with its reason."""

from __future__ import annotations

import numpy as np

from quasiratio.errors import MetricError

#: A signed total below this fraction of the sum of |w| counts as cancelled to zero.
CANCELLATION_TOLERANCE = 1e-9


def negative_fraction(weight: np.ndarray) -> float:
    """Return the fraction of events with a negative weight."""
    return float(np.count_nonzero(weight < 0) / weight.size) if weight.size else 0.0


def require_positive_total(weight: np.ndarray, *, metric: str, what: str) -> float:
    """Return sum(w) in float64, raising :class:`MetricError` unless it is clearly positive.

    Normalising by a total that is zero, negative or a cancellation
    residue of large positive and negative weights flips or inflates the
    metric, so the metric is undefined there.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.size == 0:
        raise MetricError(f"{metric}: {what} has no events; pass a non-empty sample")
    total = float(np.sum(weight))
    check_positive_sum(
        total, float(np.sum(np.abs(weight))), negative_fraction(weight), metric=metric, what=what
    )
    return total


def check_positive_sum(
    total: float, sum_abs: float, fraction: float, *, metric: str, what: str
) -> None:
    """Raise :class:`MetricError` unless ``total`` is positive and not a cancellation residue."""
    if total > CANCELLATION_TOLERANCE * sum_abs and total > 0:
        return
    raise MetricError(
        f"{metric} is undefined: the {what} weights sum to {total:.6g} (sum of |w| "
        f"{sum_abs:.6g}, negative fraction {fraction:.3g}), so they cannot be "
        "normalised; use samples whose weights sum to a positive total"
    )


def require_same_length(values: np.ndarray, weight: np.ndarray, *, metric: str, what: str) -> None:
    if values.shape[0] != weight.shape[0]:
        raise MetricError(
            f"{metric}: {what} has {values.shape[0]} events but {weight.shape[0]} weights; "
            "pass one weight per event"
        )
