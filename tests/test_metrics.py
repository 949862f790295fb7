"""Closure metrics: null behaviour with the exact ratio, power without it, signed weights.

The toy is the hidden-negative one: a unit-weight normal source and a target
with 8 % events of weight -1 whose exact ratio is negative in a corner.
The null spreads used below were checked over many seeds: 400 feature
histograms at 20,000 events, 30 Wasserstein runs (32 projections) and
45 classifier runs (50 and 100 boosting rounds) at 10,000 events. The pulls of the chi-square per dof, the chi-square
divergence, the normalisation and the AUC had means within 0.1 of 0 and
standard deviations within 0.1 of 1. The ratio of the sliced Wasserstein
distance to its null mean was 0.93 +- 0.24, with a maximum of 1.62.
"""

import json

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from quasiratio.diagnostics import (
    chi_square_divergence,
    closure_metrics,
    effective_sample_size,
    max_weight_share,
    negative_ratio_fraction,
    normalization_check,
    ratio_mse,
    sliced_wasserstein,
    weighted_auc,
    weighted_chi_square,
)
from quasiratio.errors import MetricError
from quasiratio.events import EventSample
from quasiratio.toys import hidden_negative

N_EVENTS = 10_000
#: A pull beyond 5 standard deviations happens with probability 6e-7.
MAX_PULL = 5.0


@pytest.fixture(scope="module")
def toy():
    source, target = hidden_negative.make_samples(N_EVENTS, N_EVENTS, seed=7)
    return source, target, hidden_negative.true_ratio(source.x)


@pytest.fixture(scope="module")
def exact(toy):
    source, target, ratio = toy
    return closure_metrics(
        source, target, ratio, truth=hidden_negative.true_ratio, n_projections=32, seed=3
    )


@pytest.fixture(scope="module")
def unweighted(toy):
    source, target, ratio = toy
    ones = np.ones(len(source))
    return closure_metrics(source, target, ones, truth=ratio, n_projections=32, seed=3)


def test_closure_metrics_are_json_ready(exact):
    assert json.loads(json.dumps(exact)) == exact
    assert exact["errors"] == {}
    assert exact["source_events"] == N_EVENTS


@pytest.mark.parametrize("feature", ["x1", "x2"])
def test_chi_square_consistent_at_closure(exact, unweighted, feature):
    values = exact["features"][feature]
    pull = (values["chi2_per_dof"] - 1.0) / values["chi2_per_dof_null_std"]
    assert abs(pull) < MAX_PULL
    before = unweighted["features"][feature]["chi2_per_dof"]
    assert (before - 1.0) / values["chi2_per_dof_null_std"] > 20.0
    assert values["chi2_per_dof_before"] == before


@pytest.mark.parametrize("feature", ["x1", "x2"])
def test_chi_square_divergence_consistent_at_closure(exact, unweighted, feature):
    values = exact["features"][feature]
    pull = (values["chi2_divergence"] - values["chi2_divergence_null_mean"]) / values[
        "chi2_divergence_null_std"
    ]
    assert abs(pull) < MAX_PULL
    before = unweighted["features"][feature]
    pull_before = (before["chi2_divergence"] - before["chi2_divergence_null_mean"]) / before[
        "chi2_divergence_null_std"
    ]
    assert pull_before > 20.0


def test_sliced_wasserstein_consistent_at_closure(exact, unweighted):
    assert exact["sliced_wasserstein"] < 2.5 * exact["sliced_wasserstein_null_mean"]
    assert unweighted["sliced_wasserstein"] > 5.0 * unweighted["sliced_wasserstein_null_mean"]


def test_classifier_auc_consistent_at_closure(exact, unweighted):
    assert abs(exact["classifier_auc_z"]) < MAX_PULL
    assert unweighted["classifier_auc_z"] > 20.0
    # Unit weights, 5,000 held-out events per class: sqrt((1/n + 1/n) / 12) = 0.0058.
    assert unweighted["classifier_auc_null_std"] == pytest.approx(0.0058, rel=0.1)


def test_normalisation_and_truth_at_closure(toy, exact, unweighted):
    source, _, ratio = toy
    pull = (exact["normalization"] - 1.0) / exact["normalization_error"]
    assert abs(pull) < MAX_PULL
    assert exact["ratio_mse"] == 0.0
    assert unweighted["ratio_mse"] > 1.0
    assert exact["negative_ratio_fraction"] == np.mean(ratio < 0)
    # Unit source weights: the weighted fraction equals the event fraction.
    assert exact["negative_ratio_weighted_fraction"] == pytest.approx(np.mean(ratio < 0))


def test_normalisation_detects_scaled_ratio(toy):
    source, _, ratio = toy
    # A 50 % scale error against a statistical error of about 0.02.
    check = normalization_check(1.5 * ratio, source.sample_weight)
    assert (check.value - 1.0) / check.error > 10.0


def test_weight_metrics_of_known_weights():
    weight = np.array([3.0, -1.0, 1.0, 1.0])
    assert effective_sample_size(weight) == pytest.approx(16.0 / 12.0)
    assert max_weight_share(weight) == pytest.approx(0.5)
    unweighted, weighted = negative_ratio_fraction([-1.0, 1.0, 2.0, -0.5], weight)
    assert unweighted == 0.5
    assert weighted == pytest.approx(4.0 / 6.0)


def test_chi_square_of_hand_computed_bins():
    # Source bins w0 = (2, 1), s0 = (2, 1); target w1 = (1, 3), s1 = (1, 5).
    # W0 = 3, W1 = 4; terms (3*1 - 4*2)^2 / (9*1 + 16*2) and
    # (3*3 - 4*1)^2 / (9*5 + 16*1).
    result = weighted_chi_square(
        [0.5, 0.5, 1.5], [1.0, 1.0, 1.0], [0.5, 1.5, 1.5], [1.0, 1.0, 2.0], [0.0, 1.0, 2.0]
    )
    assert result.bins == 2
    assert result.statistic == pytest.approx(25.0 / 41.0 + 25.0 / 61.0)


def test_pair_of_opposite_events_changes_nothing():
    rng = np.random.default_rng(4)
    x_source, x_target = rng.normal(size=(500, 2)), rng.normal(0.2, 1.0, size=(400, 2))
    w_source, w_target = rng.exponential(size=500), np.ones(400)
    edges = np.linspace(-3, 3, 11)
    extra = np.array([[0.3, -0.2], [0.3, -0.2]])
    w_extra = np.concatenate([w_source, [2.5, -2.5]])
    x_extra = np.concatenate([x_source, extra])
    plain = weighted_chi_square(x_source[:, 0], w_source, x_target[:, 0], w_target, edges)
    paired = weighted_chi_square(x_extra[:, 0], w_extra, x_target[:, 0], w_target, edges)
    # The pair adds 2 * 2.5^2 to one bin's sum of w^2, which is real
    # variance, so only the bin contents, not the statistic, are unchanged.
    assert paired.statistic < plain.statistic
    distance = sliced_wasserstein(x_source, w_source, x_target, w_target, n_projections=8)
    distance_paired = sliced_wasserstein(x_extra, w_extra, x_target, w_target, n_projections=8)
    # Standardisation uses the pooled unweighted spread, which the extra
    # points shift by about 1/900 relative.
    assert distance_paired.value == pytest.approx(distance.value, rel=5e-3)


def test_sliced_wasserstein_equals_scipy_in_one_dimension():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=300), rng.normal(0.5, 1.3, size=200)
    wa, wb = rng.exponential(size=300), rng.exponential(size=200)
    scale = np.concatenate([a, b]).std()
    expected = scipy.stats.wasserstein_distance(a / scale, b / scale, wa, wb)
    result = sliced_wasserstein(a[:, None], wa, b[:, None], wb, n_projections=4)
    assert result.value == pytest.approx(expected, rel=1e-9)


def test_sliced_wasserstein_signed_equals_cdf_integral():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=400), rng.normal(0.3, 1.0, size=400)
    wa = np.ones(400)
    wb = np.where(rng.random(400) < 0.2, -1.0, 1.0)
    result = sliced_wasserstein(a[:, None], wa, b[:, None], wb, n_projections=2)
    # In one dimension every projection is +-1, so the distance is
    # int |F_a - F_b| dt of the signed CDFs on the standardised axis.
    pooled = np.concatenate([a, b])
    points = (pooled - pooled.mean()) / pooled.std()
    order = np.argsort(points)
    steps = np.concatenate([wa / wa.sum(), -wb / wb.sum()])[order]
    difference = np.cumsum(steps)
    expected = np.sum(np.abs(difference[:-1]) * np.diff(points[order]))
    assert result.value == pytest.approx(expected, rel=1e-9)


def test_weighted_auc_matches_sklearn_for_positive_weights():
    rng = np.random.default_rng(8)
    s, t = rng.normal(size=300), rng.normal(0.4, 1.0, size=200)
    ws, wt = rng.exponential(size=300), rng.exponential(size=200)
    auc, _ = weighted_auc(s, ws, t, wt)
    expected = roc_auc_score(
        np.r_[np.zeros(300), np.ones(200)], np.r_[s, t], sample_weight=np.r_[ws, wt]
    )
    assert auc == pytest.approx(expected, rel=1e-12)


def test_weighted_auc_integer_weight_equals_repeated_event():
    s, t = np.array([0.1, 0.4, 0.9]), np.array([0.2, 0.4, 0.8])
    auc_weighted, _ = weighted_auc(s, np.array([1.0, 3.0, 1.0]), t, np.ones(3))
    auc_repeated, _ = weighted_auc(np.array([0.1, 0.4, 0.4, 0.4, 0.9]), np.ones(5), t, np.ones(3))
    assert auc_weighted == pytest.approx(auc_repeated, rel=1e-14)


def test_zero_sum_weights_raise_naming_metric():
    # 50 positive and 50 negative events of equal |w| sum to exactly zero.
    weight = np.r_[np.full(50, 5394.43), np.full(50, -5394.43)]
    with pytest.raises(MetricError, match=r"normalisation check.*negative fraction 0\.5"):
        normalization_check(np.ones(100), weight)
    with pytest.raises(MetricError, match="weighted chi-square is undefined"):
        values = np.linspace(0.01, 0.99, 100)
        weighted_chi_square(values, weight, values, np.ones(100), [0.0, 0.5, 1.0])


def test_chi_square_divergence_rejects_negative_target_bin():
    target = np.array([0.2, 0.3, 0.6, 0.7, 0.8])
    target_weight = np.array([1.0, -2.0, 1.0, 1.0, 1.0])
    with pytest.raises(MetricError, match=r"chi-square divergence.*bin 0 \[0, 0\.5\)"):
        chi_square_divergence([0.2, 0.7], [1.0, 1.0], target, target_weight, np.array([0.0, 0.5, 1.0]))


def test_weighted_auc_rejects_value_outside_unit_interval():
    with pytest.raises(MetricError, match=r"AUC is 2, outside \[0, 1\]"):
        weighted_auc(np.array([0.0, 1.0]), np.ones(2), np.array([2.0, -1.0]), np.array([2.0, -1.0]))


def test_ratio_mse_rejects_negative_mean():
    with pytest.raises(MetricError, match="ratio mean squared error is undefined"):
        ratio_mse([1.0, 3.0], [1.0, 1.0], [1.0, -0.5])


def test_non_finite_ratio_raises():
    with pytest.raises(MetricError, match="1 NaN or infinite"):
        normalization_check([1.0, np.inf], [1.0, 1.0])


def test_closure_reports_undefined_metrics_by_name():
    rng = np.random.default_rng(9)
    source = EventSample.from_arrays(rng.normal(size=(200, 1)), feature_names=["m"])
    target_weight = np.r_[np.ones(100), -np.ones(100)]
    target = EventSample.from_arrays(rng.normal(size=(200, 1)), target_weight, feature_names=["m"])
    result = closure_metrics(source, target, np.ones(200), classifier_test=False, bins=5)
    assert result["sliced_wasserstein"] is None
    assert "sliced Wasserstein distance is undefined" in result["errors"]["sliced_wasserstein"]
    assert result["features"]["m"]["chi2_per_dof"] is None
    assert "negative fraction 0.5" in result["errors"]["m.chi2_per_dof"]
    assert result["normalization"] == 1.0
