"""Automatic method choice: clear cases, the recorded reason, and save/load."""

import json
import logging

import numpy as np
import pytest

from quasiratio.errors import InputError
from quasiratio.estimators import load, make_estimator
from quasiratio.estimators.auto import choose_method, find_net_negative_regions
from quasiratio.events import EventSample
from quasiratio.toys import gaussian_mixture as gm
from quasiratio.toys import weight_variance as wv
from quasiratio.training import TrainingConfig


def _normal_sample(n, seed, weights=None):
    x = np.random.default_rng(seed).normal(0, 2, (n, 2))
    return EventSample.from_arrays(x, weights, feature_names=gm.FEATURE_NAMES)


def test_unweighted_samples_choose_carl():
    choice = choose_method(_normal_sample(5000, 0), _normal_sample(5000, 1))
    assert choice.method == "carl"
    assert "no event has a negative weight" in choice.reason


def test_gaussian_mixture_toy_chooses_rosmm():
    source, target = gm.make_samples(20_000, 20_000, seed=0)
    choice = choose_method(target, source)
    assert choice.method == "rosmm"
    assert "relative weight variance" in choice.reason
    assert choice.figures["numerator"]["negative_events"] == np.sum(target.sample_weight < 0)
    assert choice.figures["denominator"]["negative_events"] == np.sum(source.sample_weight < 0)


def test_high_weight_variance_chooses_rosmm():
    source, target = wv.make_samples(20_000, 20_000, sigma_w=4.0, eta=0.1, seed=1)
    choice = choose_method(target, source)
    assert choice.method == "rosmm"
    # Var(w) / mean(w)^2 = 16 for sigma_w = 4 and mean 1.
    assert choice.figures["numerator"]["relative_weight_variance"] == pytest.approx(16, rel=0.1)


def test_few_negative_events_choose_revert():
    source, target = gm.make_samples(20_000, 2000, seed=2)
    choice = choose_method(target, source)
    assert choice.method == "revert"
    assert "(< 1000)" in choice.reason


def test_low_weight_variance_chooses_revert():
    # sigma_w = 0.5, eta = 0.1: 2000 events at w = -0.5, carrying about
    # 4.5 % of sum |w|, and Var(w) / mean(w)^2 = 0.25 < 1.
    source, target = wv.make_samples(20_000, 20_000, sigma_w=0.5, eta=0.1, seed=3)
    choice = choose_method(target, source)
    assert choice.method == "revert"
    assert "is below 1" in choice.reason


def test_negligible_negative_weights_choose_carl():
    # sigma_w = 0.2, eta = 0.002: 0.2 % of events at w = -3.47, about
    # 0.7 % of sum |w|, and the target density is positive everywhere.
    source, target = wv.make_samples(20_000, 20_000, sigma_w=0.2, eta=0.002, seed=4)
    choice = choose_method(target, source)
    assert choice.method == "carl"
    assert "no bin of the leading numerator features is net negative" in choice.reason


def test_net_negative_disc_found_in_grid():
    # Every one-dimensional projection of 2 N_2.0 - N_1.2 is positive, so
    # only the two-dimensional grid finds the negative disc.
    target = gm.sample_target(20_000, seed=5)
    regions = find_net_negative_regions(target)
    assert regions
    assert all(region.features == gm.FEATURE_NAMES for region in regions)
    for region in regions:
        centre = np.array([(lo + hi) / 2 for lo, hi in zip(region.low, region.high)])
        assert np.hypot(*centre) < gm.negative_radius()
        assert region.sum_weights < 0


def test_net_negative_check_quiet_on_positive_sample():
    assert find_net_negative_regions(_normal_sample(20_000, 6)) == []


def test_net_negative_total_rejected():
    weights = -np.ones(1000)
    with pytest.raises(InputError, match="cannot be normalised"):
        choose_method(_normal_sample(1000, 7, weights), _normal_sample(1000, 8))


@pytest.mark.filterwarnings("ignore::quasiratio.estimators.mixtures.DenominatorSignWarning")
def test_auto_fit_records_choice(tmp_path, caplog):
    source, target = gm.make_samples(3000, 3000, seed=9)
    config = TrainingConfig(epochs=2, batch_size=1024, progress=False)
    estimator = make_estimator("auto", config=config, hidden=(8,), min_subset_events=500)
    with caplog.at_level(logging.INFO, logger="quasiratio.estimators.auto"):
        estimator.fit(target, source)
    assert estimator.chosen_method_ == "rosmm"
    assert "method 'auto' chose 'rosmm'" in caplog.text
    assert estimator.reason_ in caplog.text

    estimator.save(tmp_path / "model")
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["method"] == "auto"
    assert metadata["method_fields"]["chosen_method"] == "rosmm"
    assert metadata["method_fields"]["reason"] == estimator.reason_
    loaded = load(tmp_path / "model")
    assert loaded.chosen_method_ == "rosmm"
    x = source.x[:300]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(loaded.ratio(x), estimator.ratio(x))


def test_auto_carl_has_log_ratio():
    config = TrainingConfig(epochs=1, batch_size=1024, progress=False)
    estimator = make_estimator("auto", config=config, hidden=(8,))
    estimator.fit(_normal_sample(2000, 10), _normal_sample(2000, 11))
    assert estimator.chosen_method_ == "carl"
    x = _normal_sample(50, 12).x
    np.testing.assert_allclose(estimator.log_ratio(x), np.log(estimator.ratio(x)), rtol=1e-9)
