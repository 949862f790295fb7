"""Weighted histograms: exact float64 sums, sum-of-w^2 variances and scaling."""

import math

import numpy as np
import pytest

from quasiratio.diagnostics.histograms import (
    bin_sums,
    feature_edges,
    normalized_histogram,
    percentile_edges,
    weighted_histogram,
)
from quasiratio.errors import InputError

EPS = np.finfo(np.float64).eps


def _bincount_sums(x, w, edges):
    index = np.searchsorted(edges, x, side="right") - 1
    inside = (index >= 0) & (index < edges.size - 1)
    n = edges.size - 1
    sums = np.bincount(index[inside], weights=w[inside], minlength=n)
    squares = np.bincount(index[inside], weights=w[inside] ** 2, minlength=n)
    return sums, squares, np.bincount(index[inside], minlength=n)


def test_bin_sums_match_bincount_over_40_decades():
    rng = np.random.default_rng(0)
    x = rng.uniform(-10.0, 0.0, 200_000)
    w = np.exp(-4.0 * x)  # from 1 to e^40 = 2.4e17
    edges = np.linspace(-10.0, 0.0, 41)
    values, variances = bin_sums(x, w, edges)
    expected, expected_squares, counts = _bincount_sums(x, w, edges)
    # Both are float64 sums of the same positive terms, possibly in another
    # order, so they differ by at most (events in the bin) * eps relatively.
    tolerance = counts.max() * EPS
    np.testing.assert_allclose(values, expected, rtol=tolerance, atol=0)
    np.testing.assert_allclose(variances, expected_squares, rtol=tolerance, atol=0)
    assert values.dtype == np.float64
    # The bin of the smallest weights sits 17 decades below the largest bin
    # and still matches its correctly rounded sum.
    index = np.searchsorted(edges, x, side="right") - 1
    exact = math.fsum(w[index == edges.size - 2])
    assert values[-1] == pytest.approx(exact, rel=counts[-1] * EPS)
    assert values[0] / values[-1] > 1e16


def test_signed_bins_keep_sign_and_positive_variance():
    x = np.array([0.5, 0.5, 1.5, 1.5, 1.5])
    w = np.array([1.0, -3.0, 2.0, -0.5, -0.5])
    histogram = weighted_histogram(x, w, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(histogram.values(), [-2.0, 1.0])
    np.testing.assert_array_equal(histogram.variances(), [10.0, 4.5])


def test_scaling_multiplies_variance_by_square():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    w = rng.normal(size=1000)  # half the weights negative
    histogram = weighted_histogram(x, w, np.linspace(-3, 3, 13))
    factor = 10**9
    scaled = histogram * factor
    np.testing.assert_allclose(scaled.values(), histogram.values() * factor, rtol=1e-15)
    np.testing.assert_allclose(scaled.variances(), histogram.variances() * factor**2, rtol=1e-15)
    assert np.all(scaled.variances() > 0)


def test_fill_normalised_equals_scale_after():
    rng = np.random.default_rng(2)
    x = rng.normal(size=5000)
    w = np.exp(rng.normal(scale=3.0, size=5000)) * np.where(rng.random(5000) < 0.2, -1, 1)
    edges = np.linspace(-3, 3, 25)
    total = w.sum()
    filled = weighted_histogram(x, w / total, edges)
    scaled = weighted_histogram(x, w, edges) * (1.0 / total)
    # One extra rounding per term and per sum: a few eps relative to the
    # sum of |w| in the bin, which bounds the error of a signed sum.
    abs_values = weighted_histogram(x, np.abs(w) / abs(total), edges).values()
    np.testing.assert_allclose(filled.values(), scaled.values(), rtol=0, atol=1e-13 * abs_values.max())
    np.testing.assert_allclose(filled.variances(), scaled.variances(), rtol=1e-12)


def test_normalized_histogram_sums_to_one():
    x = np.array([0.1, 0.2, 1.5, 1.7])
    histogram = normalized_histogram(weighted_histogram(x, [2.0, -1.0, 3.0, 1.0], [0.0, 1.0, 2.0]))
    np.testing.assert_allclose(histogram.values(), [0.2, 0.8])
    np.testing.assert_allclose(histogram.variances(), [5.0 / 25.0, 10.0 / 25.0])


def test_normalized_histogram_rejects_zero_total():
    histogram = weighted_histogram([0.5, 1.5], [1.0, -1.0], [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="cannot be normalised"):
        normalized_histogram(histogram)


def test_percentile_edges_span_requested_range():
    values = np.arange(1001, dtype=float)
    edges = percentile_edges(values, bins=10, percentiles=(10.0, 90.0))
    np.testing.assert_allclose(edges, np.linspace(100.0, 900.0, 11))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bins": 1}, "at least 2"),
        ({"percentiles": (50.0, 10.0)}, "low < high"),
    ],
)
def test_percentile_edges_reject_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        percentile_edges(np.arange(10.0), **kwargs)


def test_percentile_edges_reject_constant_feature():
    with pytest.raises(InputError, match="no bins fit"):
        percentile_edges(np.full(100, 3.0))


def test_histogram_rejects_unsorted_edges():
    with pytest.raises(InputError, match="strictly increasing"):
        weighted_histogram([0.5], [1.0], [1.0, 0.0])


def test_histogram_rejects_weight_count_mismatch():
    with pytest.raises(InputError, match="one weight per value"):
        weighted_histogram([0.5, 0.7], [1.0], [0.0, 1.0])


def test_feature_edges_centre_discrete_values():
    edges = feature_edges(np.array([0.0, 2.0, 2.0, 3.0, 0.0]), bins=10)
    np.testing.assert_allclose(edges, [-0.5, 1.0, 2.5, 3.5])


def test_feature_edges_of_constant_feature():
    np.testing.assert_allclose(feature_edges(np.full(5, 2.0)), [1.5, 2.5])


def test_feature_edges_of_continuous_feature_use_percentiles():
    values = np.random.default_rng(3).normal(size=1000)
    np.testing.assert_allclose(feature_edges(values, bins=20), percentile_edges(values, bins=20))
