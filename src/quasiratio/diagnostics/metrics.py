"""Closure metrics of a learned ratio: weights, normalisation, sign and truth.

The new weights of source events are w' = w r_hat(x). Every function states
what its value means when w or r_hat is negative, or raises
:class:`~quasiratio.errors.MetricError` naming the metric and the reason.
No metric takes the square root of a signed weight. Uncertainties come
from sums of w^2, which are non-negative for any sign.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quasiratio.diagnostics._checks import (
    negative_fraction,
    require_positive_total,
    require_same_length,
)
from quasiratio.errors import MetricError


@dataclasses.dataclass(frozen=True)
class Normalization:
    """sum(w r_hat) / sum(w) over the source and its statistical error.

    For a ratio of two densities that each integrate to 1 the expected
    value is 1, so ``(value - 1) / error`` is a pull.
    """

    value: float
    error: float


def _as_float_array(values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise MetricError(
            f"{what} contain {np.count_nonzero(~np.isfinite(array))} NaN or infinite values; "
            "a ratio model must return finite values, so check the model and its inputs"
        )
    return array


def effective_sample_size(sample_weight) -> float:
    """Return Kish's effective sample size (sum w)^2 / sum w^2.

    With signed weights it is still the number of unit-weight events that
    would estimate the total with the same relative variance. Cancelling
    weights make it small, which is the loss of precision they cause; it
    is 0 when the weights sum to 0.
    """
    weight = _as_float_array(sample_weight, "weights")
    squares = float(np.sum(weight**2))
    if squares == 0:
        raise MetricError(
            "effective sample size is undefined: every weight is 0; pass non-zero weights"
        )
    return float(np.sum(weight)) ** 2 / squares


def max_weight_share(sample_weight) -> float:
    """Return max |w| / sum |w|, the share of the largest single event, in (0, 1].

    Using |w| keeps the value in range for any sign. A share near 1
    means one event dominates every weighted histogram.
    """
    weight = _as_float_array(sample_weight, "weights")
    sum_abs = float(np.sum(np.abs(weight)))
    if sum_abs == 0:
        raise MetricError(
            "largest weight share is undefined: every weight is 0; pass non-zero weights"
        )
    return float(np.max(np.abs(weight))) / sum_abs


def normalization_check(ratio, sample_weight) -> Normalization:
    """Compute sum(w r_hat) / sum(w) over source events with its error.

    The error is the ratio-estimator standard error
    sqrt(sum w^2 (r_hat - R)^2) / sum(w), with R the value. It holds for
    signed w, which enter as w^2. The source weights must sum to a
    clearly positive total.
    """
    metric = "normalisation check"
    r_hat = _as_float_array(ratio, "ratios")
    weight = _as_float_array(sample_weight, "weights")
    require_same_length(r_hat, weight, metric=metric, what="source")
    total = require_positive_total(weight, metric=metric, what="source")
    value = float(np.sum(weight * r_hat)) / total
    error = float(np.sqrt(np.sum(weight**2 * (r_hat - value) ** 2))) / total
    return Normalization(value=value, error=error)


def negative_ratio_fraction(ratio, sample_weight=None) -> tuple[float, float]:
    """Return the fraction of events with r_hat < 0, unweighted and |w|-weighted.

    The weighted fraction is sum_{r_hat < 0} |w| / sum |w|, which stays in
    [0, 1] for signed w. It estimates the share of the source in which
    the learned target is negative.
    """
    r_hat = _as_float_array(ratio, "ratios")
    negative = r_hat < 0
    unweighted = float(np.count_nonzero(negative) / r_hat.size) if r_hat.size else 0.0
    if sample_weight is None:
        return unweighted, unweighted
    magnitude = np.abs(_as_float_array(sample_weight, "weights"))
    require_same_length(r_hat, magnitude, metric="negative ratio fraction", what="source")
    sum_abs = float(magnitude.sum())
    if sum_abs == 0:
        raise MetricError(
            "negative ratio fraction is undefined: every weight is 0; pass non-zero weights"
        )
    return unweighted, float(magnitude[negative].sum()) / sum_abs


def ratio_mse(ratio, truth, sample_weight=None) -> float:
    """Return the mean squared error of r_hat against the true ratio over the source.

    The mean is sum w (r_hat - r)^2 / sum w, an estimate of
    E_p0[(r_hat - r)^2], which is non-negative because p0 is a density.
    With negative source weights the estimate can come out negative; that
    value is not a squared error, so :class:`MetricError` is raised.
    """
    metric = "ratio mean squared error"
    r_hat = _as_float_array(ratio, "ratios")
    r_true = _as_float_array(truth, "true ratios")
    require_same_length(r_hat, r_true, metric=metric, what="truth")
    weight = np.ones_like(r_hat) if sample_weight is None else _as_float_array(sample_weight, "weights")
    require_same_length(r_hat, weight, metric=metric, what="source")
    total = require_positive_total(weight, metric=metric, what="source")
    mse = float(np.sum(weight * (r_hat - r_true) ** 2)) / total
    if mse < 0:
        raise MetricError(
            f"{metric} is undefined: the weighted mean is {mse:.4g} < 0 because of negative "
            f"source weights (negative fraction {negative_fraction(weight):.3g}); use a "
            "source sample with fewer negative weights or pass unit weights"
        )
    return mse
