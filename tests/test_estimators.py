"""Ratio estimators on toys whose true ratio is known in closed form.

Tolerances come from the sample sizes; each test states its derivation.
Networks are small and trained briefly so that the file runs in well
under a minute; the seeds are fixed.
"""

import warnings

import numpy as np
import pytest
import torch

from quasiratio.errors import InputError, NegativeWeightWarning, NormalizationWarning
from quasiratio.estimators import CARL, REVERT, make_estimator, registered_methods
from quasiratio.events import EventSample
from quasiratio.training import TrainingConfig


def _config(**changes):
    options = dict(epochs=8, batch_size=1024, learning_rate=3e-3, progress=False,
                   num_threads=1, patience=None, restore_best=False)
    options.update(changes)
    return TrainingConfig(**options)


def _gauss(rng, mean, sigma, n):
    return rng.normal(mean, sigma, n)[:, None]


def _line(estimator, x):
    slope, intercept = np.polyfit(x[:, 0], estimator.log_ratio(x), 1)
    return slope, intercept


def test_orientation_and_swap():
    # N(0.5, 1) over N(0, 1): log r = 0.5 x - 0.125. For logistic regression on
    # N = 16,000 training events per class the slope and intercept have standard
    # errors near 1 / sqrt(N * Var(x) * s (1 - s)) = 1 / sqrt(16000 / 4) = 0.016,
    # so +-0.05 is about 3 standard errors.
    rng = np.random.default_rng(11)
    numerator, denominator = _gauss(rng, 0.5, 1, 20_000), _gauss(rng, 0, 1, 20_000)
    probe = _gauss(rng, 0.25, 1, 20_000)
    config = _config(epochs=6, batch_size=512)
    forward = CARL(hidden=(16, 16), config=config).fit(numerator, denominator)
    backward = CARL(hidden=(16, 16), config=config).fit(denominator, numerator)
    slope, intercept = _line(forward, probe)
    assert slope == pytest.approx(0.5, abs=0.05)
    assert intercept == pytest.approx(-0.125, abs=0.05)
    slope, intercept = _line(backward, probe)
    assert slope == pytest.approx(-0.5, abs=0.05)
    assert intercept == pytest.approx(0.125, abs=0.05)


def _negative_weight_toy(seed):
    """1.2 N(0, 1) - 0.2 N(0, 0.5) as 120,000 events of +1 and 20,000 of -1."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, 120_000), rng.normal(0, 0.5, 20_000)])[:, None]
    w = np.concatenate([np.ones(120_000), -np.ones(20_000)])
    numerator = EventSample.from_arrays(x, w, feature_names=["x"])
    denominator = EventSample.from_arrays(_gauss(rng, 0, 1, 120_000), feature_names=["x"])
    return numerator, denominator


@pytest.mark.slow
@pytest.mark.parametrize("method", ["carl", "revert"])
def test_negative_weights_positive_density(method):
    # True r(x) = 1.2 - 0.4 exp(-1.5 x^2), with a dip to 0.8 at x = 0.
    # Near x = 0 a window of width 0.3 contains about 14,000 positive and 4,700
    # negative numerator events (net 9,300) and 14,000 denominator events:
    # a relative error of sqrt(18,700) / 9,300 (+) 1 / sqrt(14,000) = 1.7 %.
    # At |x| = 2 the densities are lower but the network averages over a
    # wider region; 5 % is about 3 of those errors.
    numerator, denominator = _negative_weight_toy(seed=3)
    config = _config(epochs=12, validation_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NegativeWeightWarning)
        estimator = make_estimator(method, hidden=(64, 64), config=config)
        estimator.fit(numerator, denominator)
    x = np.linspace(-2, 2, 41)
    truth = 1.2 - 0.4 * np.exp(-1.5 * x**2)
    relative = estimator.ratio(x[:, None]) / truth - 1
    assert np.max(np.abs(relative)) < 0.05
    assert estimator.ratio(np.zeros((1, 1)))[0] == pytest.approx(0.8, rel=0.05)


def _signed_toy(seed, n):
    """Numerator weights 1 + 0.5 x on N(0, 1) events; r(x) = 1 + 0.5 x."""
    rng = np.random.default_rng(seed)
    x = _gauss(rng, 0, 1, n)
    return (EventSample.from_arrays(x, 1 + 0.5 * x[:, 0]),
            EventSample.from_arrays(_gauss(rng, 0, 1, n)))


def test_revert_learns_signed_ratio():
    # r = 1 + 0.5 x is negative below x = -2. With 40,000 events per class a
    # window of width 0.5 at |x| = 2 contains about 1,000 events of each class, so
    # r there is known to about 0.05 in absolute terms; 0.15 is 3 of those.
    numerator, denominator = _signed_toy(seed=5, n=40_000)
    estimator = REVERT(hidden=(32, 32), config=_config(epochs=10)).fit(numerator, denominator)
    x = np.linspace(-2.5, 2, 19)
    r = estimator.ratio(x[:, None])
    assert np.max(np.abs(r - (1 + 0.5 * x))) < 0.15
    assert r[0] < 0  # x = -2.5, true r = -0.25
    with pytest.raises(InputError, match="revert"):
        estimator.log_ratio(x[:, None])


def test_carl_warns_on_negative_numerator():
    numerator, denominator = _signed_toy(seed=6, n=2_000)
    with pytest.warns(NegativeWeightWarning, match="'revert' or 'rosmm'"):
        CARL(hidden=(4,), config=_config(epochs=1)).fit(numerator, denominator)


def _fit_scaled(scale, normalise=False):
    rng = np.random.default_rng(8)
    x = _gauss(rng, 0.5, 1, 8_000)
    w = rng.uniform(0.5, 1.5, 8_000) * scale
    if normalise:
        w = w / w.sum()
    estimator = CARL(hidden=(16,), config=_config(epochs=3, batch_size=256))
    estimator.fit(x, _gauss(rng, 0, 1, 8_000), numerator_weight=w)
    return estimator.ratio(np.linspace(-2, 2, 9)[:, None])


def test_weight_scale_does_not_matter():
    # Each class is normalised once before training, so only float rounding
    # of the normalised weights (relative 1e-16, then float32) can differ.
    reference = _fit_scaled(1.0)
    np.testing.assert_allclose(_fit_scaled(1000.0), reference, rtol=1e-4)
    np.testing.assert_allclose(_fit_scaled(1.0, normalise=True), reference, rtol=1e-4)


def test_ratio_normalised_on_held_out_denominator():
    # The denominator is three times larger than the numerator. E_p0[r] = 1
    # for the true ratio. Errors: the held-out mean of r has variance
    # Var_p0(r) / N = (exp(0.25) - 1) / 30,000, and the normalisation learned
    # from the training samples fluctuates by about 1 / sqrt(N) of each class,
    # 1 / sqrt(8,000) (+) 1 / sqrt(24,000). Together sigma = 0.013; allow 3 sigma.
    rng = np.random.default_rng(21)
    numerator = _gauss(rng, 0.5, 1, 10_000)
    denominator = _gauss(rng, 0, 1, 30_000)
    held_out = _gauss(rng, 0, 1, 30_000)
    weights = rng.uniform(0.5, 1.5, 30_000)
    estimator = CARL(hidden=(16, 16), config=_config()).fit(numerator, denominator)
    sigma = np.sqrt((np.exp(0.25) - 1) / 30_000 + 1 / 8_000 + 1 / 24_000)
    mean = np.sum(weights * estimator.ratio(held_out)) / np.sum(weights)
    assert mean == pytest.approx(1.0, abs=3 * sigma)


@pytest.mark.parametrize("method", ["carl", "revert"])
def test_saturation_stays_finite(method):
    # N(3, 0.5) over N(0, 1): beyond x ~ 5 a float32 classifier saturates.
    rng = np.random.default_rng(4)
    estimator = make_estimator(method, hidden=(16, 16), config=_config(epochs=4))
    estimator.fit(_gauss(rng, 3, 0.5, 20_000), _gauss(rng, 0, 1, 20_000))
    x = np.linspace(-50, 50, 201)[:, None]
    ratio = estimator.ratio(x)
    logit = estimator.logit(x)
    assert np.all(np.isfinite(ratio))
    assert np.all(np.isfinite(logit))
    outside = estimator.outside_support(x)
    assert outside[0]
    assert outside[-1]
    assert not outside[100]  # x = 0
    if method == "carl":
        # log r is the logit itself, finite even where exp(z) underflows to 0.
        np.testing.assert_array_equal(estimator.log_ratio(x), logit)


def test_feature_names_checked():
    a = EventSample.from_arrays(np.zeros((10, 2)) + [0, 1], feature_names=["a", "b"])
    b = EventSample.from_arrays(np.zeros((10, 2)), feature_names=["b", "c"])
    with pytest.raises(InputError, match="differ"):
        CARL(config=_config(epochs=1)).fit(a, b)


def test_columns_reordered_by_name():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2_000, 2))
    numerator = EventSample.from_arrays(x, feature_names=["a", "b"])
    denominator = EventSample.from_arrays(x[:, ::-1] * 0.9, feature_names=["b", "a"])
    estimator = CARL(hidden=(4,), config=_config(epochs=1)).fit(numerator, denominator)
    assert estimator.feature_names_ == ("a", "b")
    swapped = EventSample.from_arrays(x[:5, ::-1], feature_names=["b", "a"])
    np.testing.assert_array_equal(estimator.ratio(swapped), estimator.ratio(x[:5]))
    with pytest.raises(InputError, match="training features"):
        estimator.ratio(np.zeros((3, 3)))


def test_sample_with_weight_argument_rejected():
    sample = EventSample.from_arrays(np.zeros((5, 1)))
    with pytest.raises(InputError, match="with_weights"):
        CARL().fit(sample, sample, numerator_weight=np.ones(5))


def test_unfitted_estimator_raises():
    with pytest.raises(InputError, match="not fitted"):
        REVERT().ratio(np.zeros((2, 1)))


def test_custom_network_accepted():
    class Affine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def forward(self, x):
            return self.linear(x)  # (B, 1) logits are accepted

    rng = np.random.default_rng(9)
    network = Affine()
    before = network.linear.weight.detach().clone()
    config = _config(epochs=10, batch_size=256, learning_rate=0.03)
    estimator = CARL(network=network, config=config)
    estimator.fit(_gauss(rng, 0.5, 1, 5_000), _gauss(rng, 0, 1, 5_000))
    assert torch.equal(network.linear.weight, before)  # the caller's module is copied
    slope, _ = _line(estimator, _gauss(rng, 0, 1, 5_000))
    assert slope == pytest.approx(0.5, abs=0.1)


def test_make_estimator_names():
    assert {"carl", "revert"} <= set(registered_methods())
    assert isinstance(make_estimator("revert", hidden=(8,)), REVERT)
    with pytest.raises(InputError, match="unknown method 'nope'"):
        make_estimator("nope")


def test_calibrated_carl_matches_truth():
    # Calibration on the 20 % validation split (8,000 events per class) with
    # 40 histogram bins: about 200 events per bin, a relative error near
    # sqrt(2 / 200) = 0.1 per bin; compare at the bulk with 0.25.
    rng = np.random.default_rng(12)
    numerator, denominator = _gauss(rng, 0.5, 1, 40_000), _gauss(rng, 0, 1, 40_000)
    for kind in ("histogram", "isotonic"):
        estimator = CARL(hidden=(8,), calibration=kind, config=_config(epochs=3))
        estimator.fit(numerator, denominator)
        x = np.linspace(-1.5, 1.5, 7)
        truth = np.exp(0.5 * x - 0.125)
        np.testing.assert_allclose(estimator.ratio(x[:, None]), truth, rtol=0.25)


def test_undertrained_revert_warns_on_normalisation():
    # One epoch leaves REVERT's logit near 0, where r = -2 sinh(z) is near 0,
    # so the ratio cannot average to 1 over the denominator.
    rng = np.random.default_rng(0)
    numerator = rng.normal(0.5, 1.0, (5000, 1))
    denominator = rng.normal(0.0, 1.0, (5000, 1))
    config = TrainingConfig(epochs=1, progress=False, learning_rate=1e-4)
    with pytest.warns(NormalizationWarning, match="averages to"):
        model = make_estimator("revert", config=config).fit(numerator, denominator)
    assert abs(model.normalization_["value"] - 1.0) > 0.1


def test_trained_revert_normalisation_near_one():
    # 5000 denominator events: the delta-method error is about 0.007, so a
    # trained model lands within 5 errors of 1 and does not warn.
    rng = np.random.default_rng(0)
    numerator = rng.normal(0.5, 1.0, (5000, 1))
    denominator = rng.normal(0.0, 1.0, (5000, 1))
    config = TrainingConfig(epochs=20, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NormalizationWarning)
        model = make_estimator("revert", config=config).fit(numerator, denominator)
    value, error = model.normalization_["value"], model.normalization_["error"]
    assert abs(value - 1.0) < 5 * error
