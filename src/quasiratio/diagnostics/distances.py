"""Distances between a reweighted source and a target, defined for signed weights.

Each function takes the source events with their new weights w r_hat and
the target events with their weights. It returns a small result object
with the value and its expectation under the null hypothesis that both
samples follow the same distribution, so a reader can tell a statistical
fluctuation from a bad closure.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quasiratio.diagnostics._checks import (
    check_positive_sum,
    negative_fraction,
    require_positive_total,
    require_same_length,
)
from quasiratio.diagnostics.histograms import bin_sums
from quasiratio.errors import MetricError


@dataclasses.dataclass(frozen=True)
class ChiSquare:
    """Weighted two-sample chi-square of one binned feature.

    ``per_dof`` is ``statistic / (bins - 1)``. Under the null it is close
    to 1 with standard deviation ``null_std = sqrt(2 / (bins - 1))``.
    """

    statistic: float
    bins: int

    @property
    def per_dof(self) -> float:
        return self.statistic / (self.bins - 1)

    @property
    def null_std(self) -> float:
        return float(np.sqrt(2.0 / (self.bins - 1)))


@dataclasses.dataclass(frozen=True)
class Divergence:
    """A distance with its expected value and spread under the null hypothesis.

    ``null_std`` is None where no estimate of the spread is available.
    """

    value: float
    null_mean: float
    null_std: float | None = None


def _binned(values, weight, edges, *, metric: str, what: str):
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    edges = np.asarray(edges, dtype=np.float64)
    require_same_length(values, weight, metric=metric, what=what)
    sums, squares = bin_sums(values, weight, edges)
    in_range = weight[(values >= edges[0]) & (values < edges[-1])]
    check_positive_sum(
        float(sums.sum()), float(np.abs(in_range).sum()), negative_fraction(in_range),
        metric=metric, what=f"in-range {what}",
    )
    return sums, squares


def weighted_chi_square(
    source_values, source_weight, target_values, target_weight, edges
) -> ChiSquare:
    """Compute the weighted two-sample chi-square of one feature.

    chi2 = sum_i (W0 w1_i - W1 w0_i)^2 / (W0^2 s1_i + W1^2 s0_i), with w the
    bin sums of weights, s the bin sums of squared weights and W the totals
    over the in-range bins (sample 0 is the source, 1 the target). It is
    Gagunashvili's test for two weighted histograms (arXiv:physics/0605123).
    Bins where both s vanish are left out and ``bins`` counts the others.

    Signed weights: a bin sum may be negative and s stays the estimate of
    its variance, so each term is still a squared pull of the difference of
    the normalised contents. The totals must be positive, else
    :class:`MetricError` is raised.
    """
    metric = "weighted chi-square"
    w0, s0 = _binned(source_values, source_weight, edges, metric=metric, what="source")
    w1, s1 = _binned(target_values, target_weight, edges, metric=metric, what="target")
    total0, total1 = w0.sum(), w1.sum()
    denominator = total0**2 * s1 + total1**2 * s0
    used = denominator > 0
    if np.count_nonzero(used) < 2:
        raise MetricError(
            f"{metric} is undefined: only {np.count_nonzero(used)} bins contain events; "
            "use more events or wider bins"
        )
    pulls = (total0 * w1[used] - total1 * w0[used]) ** 2 / denominator[used]
    return ChiSquare(statistic=float(pulls.sum()), bins=int(np.count_nonzero(used)))


def _normalized_variance(sums: np.ndarray, squares: np.ndarray) -> np.ndarray:
    # Delta method for p_i = w_i / W with independent bins:
    # Var p_i = [s_i (1 - p_i)^2 + p_i^2 (S - s_i)] / W^2, S = sum of s.
    total = sums.sum()
    p = sums / total
    return (squares * (1.0 - p) ** 2 + p**2 * (squares.sum() - squares)) / total**2


def chi_square_divergence(
    source_values, source_weight, target_values, target_weight, edges
) -> Divergence:
    """Compute the chi-square divergence sum_i (p_i - q_i)^2 / q_i of one binned feature.

    p and q are the reweighted source and the target histograms normalised
    to 1 over the in-range bins. This is the Tsallis relative entropy of
    order 2. The target is the reference, so every target bin must be
    positive: with signed weights a bin can be zero or negative, and
    :class:`MetricError` is raised naming those bins. Negative source
    bins need no special rule because (p - q)^2 is defined for any sign.

    Under the null, p_i - q_i has variance v_i, the sum of the two
    normalised bin variances from sum w^2. The divergence then has mean
    sum v_i / q_i. With independent Gaussian terms its standard deviation
    is sqrt(2 sum (v_i / q_i)^2).
    """
    metric = "chi-square divergence"
    w0, s0 = _binned(source_values, source_weight, edges, metric=metric, what="source")
    w1, s1 = _binned(target_values, target_weight, edges, metric=metric, what="target")
    edges = np.asarray(edges, dtype=np.float64)
    q = w1 / w1.sum()
    bad = np.flatnonzero(q <= 0)
    if bad.size:
        shown = ", ".join(f"{i} [{edges[i]:.4g}, {edges[i + 1]:.4g})" for i in bad[:5])
        raise MetricError(
            f"{metric} is undefined: the target has {bad.size} bins with content <= 0 "
            f"(bin {shown}{', ...' if bad.size > 5 else ''}; target negative fraction "
            f"{negative_fraction(np.asarray(target_weight)):.3g}); use fewer bins or the "
            "weighted chi-square, which allows signed bins"
        )
    p = w0 / w0.sum()
    variance = _normalized_variance(w0, s0) + _normalized_variance(w1, s1)
    expected_terms = variance / q
    return Divergence(
        value=float(np.sum((p - q) ** 2 / q)),
        null_mean=float(expected_terms.sum()),
        null_std=float(np.sqrt(2.0 * np.sum(expected_terms**2))),
    )


def _standardize(x_source: np.ndarray, x_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pooled = np.concatenate([x_source, x_target])
    center = pooled.mean(axis=0)
    scale = pooled.std(axis=0)
    scale[scale == 0] = 1.0
    return (x_source - center) / scale, (x_target - center) / scale


def _jordan_pair(x_source, a_source, x_target, a_target):
    # With normalised signed measures S and T, S - T = (S+ + T-) - (T+ + S-),
    # and both brackets carry the same mass 1 + S- + T-.
    first_x = np.concatenate([x_source[a_source > 0], x_target[a_target < 0]])
    first_w = np.concatenate([a_source[a_source > 0], -a_target[a_target < 0]])
    second_x = np.concatenate([x_target[a_target > 0], x_source[a_source < 0]])
    second_w = np.concatenate([a_target[a_target > 0], -a_source[a_source < 0]])
    return first_x, first_w, second_x, second_w


def _cdf_variance(sorted_weight: np.ndarray) -> np.ndarray:
    # Variance of the normalised signed CDF after each sorted point, delta
    # method with the total fixed at 1: c (1 - F)^2 + F^2 (S - c), where c
    # and S - c are sums of w^2 before and after the point (both >= 0).
    cdf = np.cumsum(sorted_weight)
    squares = sorted_weight**2
    before = np.cumsum(squares)
    after = np.cumsum(squares[::-1])[::-1] - squares
    return before * (1.0 - cdf) ** 2 + cdf**2 * after


def _projected_integrals(t_source, a_source, t_target, a_target) -> tuple[float, float]:
    """Return int |F_S - F_T| dt and its null expectation for one projection.

    Under the null each F_S(t) - F_T(t) is close to Gaussian with mean 0
    and variance V(t), so E|F_S - F_T| = sqrt(2 V / pi).
    """
    t = np.concatenate([t_source, t_target])
    order = np.argsort(t, kind="stable")
    in_source = np.concatenate([np.ones(t_source.size, bool), np.zeros(t_target.size, bool)])
    in_source = in_source[order]
    weight = np.concatenate([a_source, a_target])[order]
    source_part = np.where(in_source, weight, 0.0)
    target_part = np.where(in_source, 0.0, weight)
    difference = np.cumsum(source_part) - np.cumsum(target_part)
    variance = _cdf_variance(source_part) + _cdf_variance(target_part)
    widths = np.diff(t[order])
    observed = float(np.sum(np.abs(difference[:-1]) * widths))
    expected = float(np.sum(np.sqrt(2.0 * variance[:-1] / np.pi) * widths))
    return observed, expected


def sliced_wasserstein(
    x_source,
    source_weight,
    x_target,
    target_weight,
    *,
    n_projections: int = 64,
    seed: int = 0,
) -> Divergence:
    """Compute the sliced 1-Wasserstein distance between two signed samples.

    Each sample is normalised to total 1 and split into its positive and
    negative parts (Jordan decomposition). The distance between the signed
    measures S and T is the 1-Wasserstein distance between S+ + T- and
    T+ + S-, which have equal mass m, averaged over ``n_projections``
    random directions drawn from ``seed``. POT computes it between the two
    parts normalised to 1, and the result is multiplied by m. On each
    direction the value equals int |F_S(t) - F_T(t)| dt with F the signed
    cumulative sums, so it is 0 only for equal projected measures and
    needs no positive bin. Features are first standardised by the pooled
    unweighted mean and standard deviation, so the distance has no unit.

    ``null_mean`` estimates the value expected from sample fluctuations
    alone (see :func:`_projected_integrals`). ``null_std`` is None because
    the values at different t are correlated and no closed form is used.
    """
    import ot

    metric = "sliced Wasserstein distance"
    x_source = np.asarray(x_source, dtype=np.float64).reshape(len(source_weight), -1)
    x_target = np.asarray(x_target, dtype=np.float64).reshape(len(target_weight), -1)
    a_source = np.asarray(source_weight, dtype=np.float64)
    a_target = np.asarray(target_weight, dtype=np.float64)
    a_source = a_source / require_positive_total(a_source, metric=metric, what="source")
    a_target = a_target / require_positive_total(a_target, metric=metric, what="target")
    x_source, x_target = _standardize(x_source, x_target)

    first_x, first_w, second_x, second_w = _jordan_pair(x_source, a_source, x_target, a_target)
    mass = float(first_w.sum())
    projections = ot.sliced.get_random_projections(x_source.shape[1], n_projections, seed=seed)
    distance = ot.sliced_wasserstein_distance(
        first_x, second_x, first_w / mass, second_w / second_w.sum(),
        p=1, projections=projections,
    )
    expected = [
        _projected_integrals(x_source @ theta, a_source, x_target @ theta, a_target)[1]
        for theta in projections.T
    ]
    return Divergence(value=mass * float(distance), null_mean=float(np.mean(expected)))
