"""Negative-region finder on the toy whose negative corner hides from 1-D projections."""

import json

import numpy as np
import pytest

from quasiratio.diagnostics import find_negative_regions
from quasiratio.diagnostics.histograms import bin_sums
from quasiratio.errors import InputError
from quasiratio.toys import hidden_negative

CORNER = np.array([[hidden_negative.CORNER, hidden_negative.CORNER]])
GRID = np.linspace(-9.0, 9.0, 1801)
STEP = GRID[1] - GRID[0]


@pytest.fixture(scope="module")
def source():
    return hidden_negative.sample_source(20_000, seed=11)


@pytest.fixture(scope="module")
def density():
    x1, x2 = np.meshgrid(GRID, GRID, indexing="ij")
    points = np.column_stack([x1.ravel(), x2.ravel()])
    return hidden_negative.target_density(points).reshape(GRID.size, GRID.size)


def test_target_is_negative_in_corner_and_normalised(density):
    assert hidden_negative.target_density(CORNER)[0] < -0.05
    # Gaussian tails beyond 9 scales are below 1e-17; the Riemann sum of a
    # smooth density on a 0.01 grid is exact to far better than 1e-9.
    assert density.sum() * STEP**2 == pytest.approx(1.0, abs=1e-9)
    assert (density < 0).sum() * STEP**2 > 0.5  # area of the negative blob


@pytest.mark.parametrize("axis", [0, 1])
def test_every_marginal_is_positive(density, axis):
    integrated = density.sum(axis=1 - axis) * STEP
    exact = hidden_negative.target_marginal(GRID, axis)
    np.testing.assert_allclose(integrated, exact, rtol=1e-9, atol=1e-15)
    core = np.abs(GRID) < 5.0
    assert integrated[core].min() > 1e-7
    # Beyond the core only the positive Gaussian tails remain, but the
    # integral there is at the level of rounding, so the exact form is checked.
    assert exact.min() > 0.0


@pytest.mark.parametrize("axis", [0, 1])
def test_target_sample_histograms_look_positive(axis):
    target = hidden_negative.sample_target(20_000, seed=12)
    edges = np.linspace(-3.0, 3.0, 25)
    values, variances = bin_sums(target.x[:, axis], target.sample_weight, edges)
    # The smallest bin, at the edge of the range, contains about 80 net events
    # with a variance of about 80, so it is above zero by about 9 sigma; the
    # bins over the negative corner are higher still.
    assert np.all(values > 5.0 * np.sqrt(variances))


def _assert_corner_region(region):
    assert region.contains(CORNER, hidden_negative.FEATURE_NAMES)[0]
    for name in hidden_negative.FEATURE_NAMES:
        low, high = region.bounds[name]
        # Cut on both features: a cut on one only would be a half-plane,
        # which a one-feature histogram could also reveal.
        assert 0.3 < low < hidden_negative.CORNER
        assert high > hidden_negative.CORNER


def test_exact_ratio_region_found(source):
    ratio = hidden_negative.true_ratio(source.x)
    regions = find_negative_regions(source.x, ratio, source.sample_weight, source.feature_names)
    assert len(regions) >= 1
    region = regions[0]
    _assert_corner_region(region)
    assert region.negative_share > 0.9
    assert region.purity > 0.5
    assert region.reweighted_sum < 0
    inside = region.contains(source.x, source.feature_names)
    assert region.events == inside.sum()
    assert region.negative_events == np.count_nonzero(ratio[inside] < 0)


def test_noisy_ratio_region_found(source):
    ratio = hidden_negative.true_ratio(source.x)
    rng = np.random.default_rng(13)
    # Noise of 30 % plus 0.2 flips the sign of many events near r = 0
    # all over the plane, so the corner must stand out against them.
    noisy = ratio + rng.normal(size=ratio.size) * (0.3 * np.abs(ratio) + 0.2)
    assert np.mean(noisy < 0) > 2.0 * np.mean(ratio < 0)
    regions = find_negative_regions(source.x, noisy, source.sample_weight, source.feature_names)
    _assert_corner_region(regions[0])
    assert regions[0].negative_share > 0.5


def test_positive_ratio_gives_no_region(source):
    regions = find_negative_regions(source.x, np.ones(len(source)), source.sample_weight)
    assert regions == []


def test_region_dict_is_json_ready(source):
    ratio = hidden_negative.true_ratio(source.x)
    region = find_negative_regions(source.x, ratio, feature_names=source.feature_names)[0]
    data = json.loads(json.dumps(region.to_dict()))
    assert set(data["bounds"]) <= set(source.feature_names)
    assert data["events"] == region.events


def test_mismatched_lengths_raise():
    with pytest.raises(InputError, match="one ratio and one weight per event"):
        find_negative_regions(np.zeros((3, 2)), np.ones(2))


def test_zero_weights_raise():
    with pytest.raises(InputError, match="every event weight is 0"):
        find_negative_regions(np.zeros((3, 2)), -np.ones(3), np.zeros(3))
