"""Weighted histograms with sum-of-w^2 variances, signed bins included.

Histograms are scikit-hep ``hist.Hist`` objects with ``Weight`` storage:
each bin contains the sum of weights and the sum of squared weights, both in
float64. A bin content may be negative when the sample carries negative
weights; its variance, the sum of w^2, stays non-negative. Scaling a
histogram by c multiplies the contents by c and the variances by c^2, which
is what ``hist`` does for ``h * c`` with ``Weight`` storage (checked in
the tests for hist 2.12).
"""

from __future__ import annotations

import numpy as np

from quasiratio.errors import InputError

#: Default percentiles of the target distribution between which bins are placed.
DEFAULT_PERCENTILES = (0.1, 99.9)


def _as_weights(values: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    if sample_weight is None:
        return np.ones(values.shape[0])
    weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if weight.shape[0] != values.shape[0]:
        raise InputError(
            f"{values.shape[0]} values but {weight.shape[0]} weights; pass one weight per value"
        )
    return weight


def weighted_histogram(
    values: np.ndarray,
    sample_weight: np.ndarray | None,
    edges: np.ndarray,
    *,
    name: str = "x",
    label: str | None = None,
):
    """Fill a ``hist.Hist`` with ``Weight`` storage from signed weights.

    Bins are half-open [edge_i, edge_i+1). Values below the first edge or
    at or above the last one go to the underflow and overflow bins.
    """
    import hist

    values = np.asarray(values, dtype=np.float64).reshape(-1)
    weight = _as_weights(values, sample_weight)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise InputError(
            f"histogram edges must be a strictly increasing 1-D array of at least 2 values, "
            f"got {edges!r}"
        )
    axis = hist.axis.Variable(edges, name=name, label=label or name)
    histogram = hist.Hist(axis, storage=hist.storage.Weight())
    histogram.fill(values, weight=weight)
    return histogram


def bin_sums(
    values: np.ndarray, sample_weight: np.ndarray | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the in-range bin sums of w and of w^2 in float64, flow bins left out."""
    histogram = weighted_histogram(values, sample_weight, edges)
    return histogram.values().copy(), histogram.variances().copy()


def percentile_edges(
    values: np.ndarray,
    *,
    bins: int = 50,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> np.ndarray:
    """Return ``bins + 1`` equally spaced edges between two percentiles of ``values``.

    The percentiles are those of the event positions, not of the weights,
    because a weighted percentile is undefined where the running sum of
    signed weights is not monotonic. Events outside the edges fall into
    the flow bins, which the closure metrics leave out.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if int(bins) != bins or bins < 2:
        raise InputError(f"number of bins must be an integer of at least 2, got {bins!r}")
    low, high = percentiles
    if not 0 <= low < high <= 100:
        raise InputError(
            f"percentiles {percentiles!r} must satisfy 0 <= low < high <= 100"
        )
    if values.size == 0:
        raise InputError("cannot place bins on an empty sample; pass at least one event")
    lower, upper = np.percentile(values, [low, high])
    if not upper > lower:
        raise InputError(
            f"the {low} and {high} percentiles of the values are both {lower:.6g}, so no "
            "bins fit between them; choose a feature that varies or wider percentiles"
        )
    return np.linspace(lower, upper, int(bins) + 1)


def feature_edges(
    values: np.ndarray,
    *,
    bins: int = 50,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> np.ndarray:
    """Return bin edges for one feature: one bin per value if it is discrete, else percentiles.

    A feature with at most ``bins`` distinct values (a jet count, a
    charge, a constant) gets one bin centred on each value, with edges
    halfway between neighbours, so no value falls into a flow bin. Other
    features get :func:`percentile_edges`.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError("cannot place bins on an empty sample; pass at least one event")
    distinct = np.unique(values)
    if distinct.size > bins:
        return percentile_edges(values, bins=bins, percentiles=percentiles)
    gap = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
    middles = 0.5 * (distinct[1:] + distinct[:-1])
    return np.concatenate([[distinct[0] - 0.5 * gap], middles, [distinct[-1] + 0.5 * gap]])


def normalized_histogram(histogram):
    """Return ``histogram`` scaled to a sum of 1 over its in-range bins.

    The variances scale by the square of the factor. The total must be
    positive; with signed weights it can be zero or negative, and then no
    shape comparison is defined, so :class:`InputError` is raised.
    """
    total = float(np.sum(histogram.values()))
    spread = float(np.sum(np.abs(histogram.values())))
    if not total > 1e-12 * spread or not total > 0:
        raise InputError(
            f"histogram {histogram.axes[0].name!r} sums to {total:.6g} over its bins (sum of "
            f"|bin contents| {spread:.6g}), so it cannot be normalised to 1; use a sample "
            "whose weights sum to a positive total in the plotted range"
        )
    return histogram * (1.0 / total)
