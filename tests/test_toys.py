"""Toys with known truth: exact densities, exact ratios and weight moments."""

import numpy as np
import pytest
from scipy.integrate import quad

from quasiratio.errors import InputError
from quasiratio.toys import gaussian_mixture as gm
from quasiratio.toys import weight_variance as wv


def test_gaussian_mixture_ratio_range():
    origin = np.zeros((1, 2))
    assert gm.true_ratio(origin)[0] == pytest.approx(-1.29352504, abs=1e-7)
    r = np.linspace(0.0, 20.0, 200_001)
    ratio = gm.true_ratio_of_radius(r)
    assert ratio.min() == pytest.approx(-1.2935, abs=1e-4)
    assert ratio.max() == pytest.approx(1.7136, abs=1e-4)
    assert r[np.argmax(ratio)] == pytest.approx(3.016, abs=1e-3)
    assert gm.negative_radius() == pytest.approx(1.2158, abs=1e-4)
    assert np.all(ratio[r < 1.2158] < 0)
    assert np.all(ratio[r > 1.2159] > 0)


def test_gaussian_mixture_densities_integrate_to_one():
    for density in (gm.source_density, gm.target_density):
        def radial(r, density=density):
            return 2 * np.pi * r * density(np.array([[r, 0.0]]))[0]

        integral, _ = quad(radial, 0, np.inf)
        assert integral == pytest.approx(1.0, abs=1e-9)


def test_gaussian_mixture_source_density_non_negative():
    r = np.linspace(0.0, 30.0, 30_001)
    x = np.column_stack([r, np.zeros_like(r)])
    assert np.all(gm.source_density(x) >= 0)
    assert gm.target_density(x[:1])[0] < 0


def test_gaussian_mixture_component_fractions():
    # The count of weight -1 events is binomial: sd = sqrt(p (1 - p) / n).
    n = 100_000
    source, target = gm.make_samples(n, n, seed=3)
    for sample, p in ((source, 0.2), (target, 1 / 3)):
        negative_fraction = np.mean(sample.sample_weight < 0)
        assert abs(negative_fraction - p) < 5 * np.sqrt(p * (1 - p) / n)
        assert set(np.unique(sample.sample_weight)) == {-1.0, 1.0}


def test_gaussian_mixture_coefficients_from_sums():
    # c = p_hat / (2 p_hat - 1) with p_hat the fraction of +1 events, so
    # sd(c) = |dc/dp| sd(p_hat) = sqrt(p (1 - p) / n) / (2 p - 1)^2:
    # 1.111 / sqrt(n) for the source (p = 0.8), 4.243 / sqrt(n) for the
    # target (p = 2/3).
    n = 100_000
    source, target = gm.make_samples(n, n, seed=4)
    for sample, p, expected in ((source, 0.8, 4 / 3), (target, 2 / 3, 2.0)):
        w = sample.sample_weight
        c = w[w > 0].sum() / w.sum()
        sd = np.sqrt(p * (1 - p) / n) / (2 * p - 1) ** 2
        assert abs(c - expected) < 5 * sd


def test_gaussian_mixture_reweighted_source_closes():
    # The signed weight of the target inside the negative region is
    # 2 (1 - exp(-a^2/8)) - (1 - exp(-a^2/2.88)); the source reweighted
    # with the exact ratio must reproduce it within 5 standard errors.
    a = gm.negative_radius()
    exact = 2 * (1 - np.exp(-(a**2) / 8)) - (1 - np.exp(-(a**2) / 2.88))
    source = gm.sample_source(400_000, seed=5)
    w = source.sample_weight / source.sample_weight.sum()
    contribution = w * gm.true_ratio(source.x) * (gm.radius(source.x) < a)
    error = np.sqrt(np.sum(contribution**2))
    assert exact < 0
    assert abs(contribution.sum() - exact) < 5 * error


def test_gaussian_mixture_seed_reproducible():
    first = gm.sample_target(1000, seed=7)
    second = gm.sample_target(1000, seed=7)
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.sample_weight, second.sample_weight)


def test_gaussian_mixture_rejects_bad_size():
    with pytest.raises(InputError, match="positive integer"):
        gm.sample_source(0)


@pytest.mark.parametrize("sigma_w, eta", [(1.0, 0.1), (4.0, 0.1), (2.0, 0.3), (5.0, 0.02)])
def test_weight_generator_mean_and_variance(sigma_w, eta):
    # sd(mean) = sigma_w / sqrt(n). For the two-point law the kurtosis is
    # kappa = ((1 - eta)^3 + eta^3) / (eta (1 - eta)), so
    # sd(sample variance) = sigma_w^2 sqrt((kappa - 1) / n).
    n = 400_000
    w = wv.signed_weights(n, sigma_w=sigma_w, eta=eta, seed=11)
    kappa = ((1 - eta) ** 3 + eta**3) / (eta * (1 - eta))
    assert abs(w.mean() - 1.0) < 5 * sigma_w / np.sqrt(n)
    assert abs(w.var() - sigma_w**2) < 5 * sigma_w**2 * np.sqrt((kappa - 1) / n)


def test_weight_generator_negative_fraction():
    n = 200_000
    eta = 0.1
    w = wv.signed_weights(n, sigma_w=4.0, eta=eta, seed=12)
    negative = wv.negative_weight(sigma_w=4.0, eta=eta)
    assert negative == pytest.approx(1 - 4 * 3.0)
    values = np.unique(w)
    np.testing.assert_allclose(values, [negative, 1 + 4 * np.sqrt(eta / (1 - eta))], rtol=1e-12)
    assert abs(np.mean(w < 0) - eta) < 5 * np.sqrt(eta * (1 - eta) / n)


def test_weight_generator_small_sigma_stays_positive():
    w = wv.signed_weights(10_000, sigma_w=0.2, eta=0.1, seed=0)
    assert np.all(w > 0)


@pytest.mark.parametrize("sigma_w, eta", [(-1.0, 0.1), (1.0, 0.0), (1.0, 1.0), (np.nan, 0.5)])
def test_weight_generator_rejects_bad_options(sigma_w, eta):
    with pytest.raises(InputError):
        wv.signed_weights(10, sigma_w=sigma_w, eta=eta)


def test_weight_variance_toy_samples_and_ratio():
    source, target = wv.make_samples(1000, 2000, sigma_w=3.0, eta=0.2, seed=1)
    assert len(source) == 1000
    assert len(target) == 2000
    assert np.all(source.sample_weight == 1.0)
    assert np.any(target.sample_weight < 0)
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    r2 = np.array([0.0, 25.0])
    expected = (6.25 / 4) * np.exp(-0.5 * r2 * (1 / 4 - 1 / 6.25))
    np.testing.assert_allclose(wv.true_ratio(x), expected, rtol=1e-12)
