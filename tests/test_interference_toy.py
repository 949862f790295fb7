"""The interference toy: yields, signs, positivity and samplers against its exact densities."""

import math

import numpy as np
import pytest
from scipy import integrate

from quasiratio.errors import InputError
from quasiratio.toys.interference import REFERENCE_COUNTS, InterferenceToy

REFERENCE = InterferenceToy()
REDUCED = InterferenceToy(background_scale=1e-4, signal_scale=1e-2)
EXTREME = InterferenceToy.whole_background_interferes()


def integrate_independently(toy, f, mass_range=None):
    """Integrate f(x) over the toy's rectangle with adaptive quad in m and 64 nodes in arcsin(c).

    A different rule from the toy's own quadrature nodes, so the yields
    are checked by an independent integration.
    """
    phi, weights = np.polynomial.legendre.leggauss(64)
    c = np.sin(phi * np.pi / 2)
    weights = weights * np.cos(phi * np.pi / 2) * np.pi / 2

    def over_angle(m):
        x = np.stack([np.full_like(c, m), c], axis=1)
        return np.sum(weights * f(x))

    low, high = mass_range or toy.mass_range
    points = [toy.resonance_mass] if low < toy.resonance_mass < high else None
    value, _ = integrate.quad(over_angle, low, high, points=points,
                              limit=500, epsabs=0, epsrel=1e-11)
    return value


@pytest.mark.parametrize("name", ["background", "signal", "signal_interference"])
def test_density_integrates_to_one(name):
    value = integrate_independently(REFERENCE, lambda x: REFERENCE.densities(x)[name])
    assert value == pytest.approx(1.0, rel=1e-9)


def test_reference_yields_at_mu_1p2():
    mu = 1.2
    root = math.sqrt(mu)
    signal_term = integrate_independently(
        REFERENCE, lambda x: (mu - root) * REFERENCE.expected_signal
        * REFERENCE.densities(x)["signal"])
    interference_term = integrate_independently(
        REFERENCE, lambda x: root * REFERENCE.expected_signal_interference
        * REFERENCE.densities(x)["signal_interference"])
    total = integrate_independently(REFERENCE, lambda x: REFERENCE.intensity(x, mu))
    assert signal_term == pytest.approx(653.0, rel=1e-9)
    assert interference_term == pytest.approx(4105.0, rel=1e-9)
    assert total == pytest.approx(sum(REFERENCE_COUNTS), rel=1e-9)
    assert REFERENCE.expected_events(mu) == pytest.approx(sum(REFERENCE_COUNTS), rel=1e-12)


def test_signal_over_background_ratio():
    ratio = REFERENCE.expected_background / REFERENCE.expected_signal
    assert ratio == pytest.approx(1600, rel=0.01)
    # Net destructive interference: sigma_SI < sigma_S.
    assert REFERENCE.expected_signal_interference < REFERENCE.expected_signal


def test_signal_interference_negative_somewhere():
    x, _ = REFERENCE.quadrature_nodes()
    q = REFERENCE.densities(x)["signal_interference"]
    assert q.min() < 0
    # Re BW changes sign at m = M: with this phase S + I is negative only below it.
    assert np.all(x[q < 0, 0] < REFERENCE.resonance_mass)


def test_mass_marginal_changes_sign_across_resonance():
    c = np.linspace(-1, 1, 2001)

    def marginal(m):
        x = np.stack([np.full_like(c, m), c], axis=1)
        return np.trapezoid(REFERENCE.densities(x)["signal_interference"], c)

    assert marginal(400.0) < 0
    assert marginal(500.0) > 0
    assert marginal(600.0) > 0


def test_positive_fraction_between_two_and_three():
    c = REFERENCE.positive_fraction()
    assert 2.0 <= c <= 3.0


def test_extreme_setting_cancels_much_more():
    assert EXTREME.positive_fraction() > 10 * REFERENCE.positive_fraction()


def test_extreme_setting_samples():
    background = EXTREME.sample_background(1000, seed=1)
    signed = EXTREME.sample_signal_interference(1000, seed=2)
    data, counts = EXTREME.whole_background_interferes(background_scale=1e-5,
                                                       signal_scale=1e-5).sample_pseudo_data(
        1.2, seed=3, n_experiments=2)
    assert len(background) == 1000
    assert len(signed) == 1000
    assert len(data) == counts.sum()


@pytest.mark.parametrize("toy", [REFERENCE, REDUCED, EXTREME],
                         ids=["reference", "reduced", "extreme"])
@pytest.mark.parametrize("mu", [0.0, 1e-4, 0.0625, 0.25, 1.0, 1.2, 4.0, 10.0, 100.0])
def test_total_positive_for_supported_mu(toy, mu):
    x, _ = toy.quadrature_nodes(mass_panels=400, angle_nodes=32)
    corners = np.array([[m, c] for m in toy.mass_range for c in (-1.0, 0.0, 1.0)])
    assert toy.intensity(np.concatenate([x, corners]), mu).min() > 0


def test_signal_scale_above_positivity_limit_rejected():
    with pytest.raises(InputError, match="signal_scale"):
        InterferenceToy(background_scale=1e-4, signal_scale=1.0)
    with pytest.raises(InputError, match="signal_scale"):
        InterferenceToy.whole_background_interferes(signal_scale=2.0)


def test_negative_mu_rejected():
    with pytest.raises(InputError, match="mu >= 0"):
        REDUCED.sample_pseudo_data(-0.1, seed=0)


def mass_pulls(toy, sample, density, edges):
    """Return (observed - expected) / sigma of the weighted mass histogram per bin."""
    w = sample.sample_weight
    observed, _ = np.histogram(sample.x[:, 0], bins=edges, weights=w)
    variance, _ = np.histogram(sample.x[:, 0], bins=edges, weights=w * w)
    fractions = np.array([integrate_independently(toy, density, (a, b))
                          for a, b in zip(edges[:-1], edges[1:])])
    expected = fractions / fractions.sum() * w.sum()
    return (observed - expected) / np.sqrt(variance)


@pytest.mark.parametrize("name", ["background", "signal", "signal_interference"])
def test_sampler_follows_density(name):
    sampler = {"background": REFERENCE.sample_background, "signal": REFERENCE.sample_signal,
               "signal_interference": REFERENCE.sample_signal_interference}[name]
    sample = sampler(200_000, seed=11)
    edges = np.linspace(*REFERENCE.mass_range, 31)
    pulls = mass_pulls(REFERENCE, sample, lambda x: REFERENCE.densities(x)[name], edges)
    # Pulls are unit normal; chi2 over 30 bins has mean 30 and sd sqrt(60) = 7.7,
    # and normalising to the sample total removes one degree of freedom.
    assert np.sum(pulls**2) < 30 + 5 * math.sqrt(60)
    assert np.abs(pulls).max() < 4.5


def test_signal_interference_sample_is_signed():
    sample = REFERENCE.sample_signal_interference(100_000, seed=3)
    w = sample.sample_weight
    assert set(np.unique(w)) == {-1.0, 1.0}
    c = np.sum(w[w > 0]) / np.sum(w)
    # sd of sum w is at most sqrt(N) = 316 against a sum near 31,000, so c is
    # known to about 1 %; 5 % is five standard deviations.
    assert c == pytest.approx(REFERENCE.positive_fraction(), rel=0.05)


def test_pseudo_data_counts_follow_expected_events():
    n = 400
    for mu in (0.0, 1.2, 4.0):
        sample, counts = REDUCED.sample_pseudo_data(mu, seed=5, n_experiments=n)
        expected = REDUCED.expected_events(mu)
        assert counts.sum() == len(sample)
        # Poisson: the mean of 400 counts has sd sqrt(nu / 400).
        assert abs(counts.mean() - expected) < 4 * math.sqrt(expected / n)
        assert counts.var() == pytest.approx(expected, rel=0.3)


def test_pseudo_data_follow_total_density():
    sample, _ = REDUCED.sample_pseudo_data(1.2, seed=8, n_experiments=200)
    edges = np.linspace(*REDUCED.mass_range, 31)
    pulls = mass_pulls(REDUCED, sample, lambda x: REDUCED.intensity(x, 1.2), edges)
    assert np.sum(pulls**2) < 30 + 5 * math.sqrt(60)


def test_asimov_weights_sum_to_expected_events():
    data = REDUCED.asimov_data(1.2)
    assert data.sample_weight.sum() == pytest.approx(REDUCED.expected_events(1.2), rel=1e-10)
