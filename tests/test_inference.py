"""Interference inference: likelihood, fits, intervals, coverage and the learned model.

The reduced setting scales the toy's background yields by 1e-4 and its
signal yields by 1e-2 (about 1,050 events at mu = 1.2), which keeps the
normalised shapes of the reference toy and a 68.3 % interval on mu of
width 0.39 on Asimov data (0.23 at full size), while 300
pseudo-experiments stay cheap.
"""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from quasiratio.demos.interference import (
    QUICK_LEARNING,
    mass_templates,
    reduced_toy,
    toy_yields,
    train_ratios,
    training_samples,
)
from quasiratio.errors import InputError
from quasiratio.inference import (
    BinnedTemplateFit,
    InterferenceModel,
    UnbinnedLikelihood,
    Yields,
    coverage,
    neyman_belt,
    neyman_interval,
    wilks_interval,
    wilks_threshold,
)
from quasiratio.inference.binned import histogram_template
from quasiratio.inference.intervals import BOUNDARY, CROSSING
from quasiratio.toys.interference import InterferenceToy

MU_TRUE = 1.2
GRID = np.linspace(0.0, 3.0, 61)
TOY = reduced_toy()
YIELDS = toy_yields(TOY)
ORACLE = InterferenceModel(TOY.exact_ratios, YIELDS)


@pytest.fixture(scope="module")
def learned():
    """The learned model, trained once for the whole module (20 to 50 s on a shared 2-core CPU)."""
    samples = training_samples(TOY, QUICK_LEARNING, seed=0)
    signal, signed = train_ratios(samples, QUICK_LEARNING, seed=0)
    return InterferenceModel.from_estimators(signal, signed, YIELDS), samples


@pytest.fixture(scope="module")
def asimov():
    return TOY.asimov_data(MU_TRUE)


@pytest.fixture(scope="module")
def pseudo_experiments():
    """300 pseudo-experiments at mu = 1.2 shared by the coverage tests."""
    return TOY.sample_pseudo_data(MU_TRUE, seed=2024, n_experiments=300)


def interval_at_asimov(model, data, cl=0.683):
    likelihood = UnbinnedLikelihood(model.event_ratios(data), model.yields)
    return likelihood, wilks_interval(likelihood, cl, GRID)


def test_oracle_asimov_fit_is_exact(asimov):
    likelihood, interval = interval_at_asimov(ORACLE, asimov)
    # The Asimov weights are quadrature weights of nu p(x|1.2), so the score
    # vanishes at 1.2 up to the quadrature error (about 1e-12 relative).
    assert likelihood.mu_hat[0] == pytest.approx(MU_TRUE, abs=1e-8)
    assert interval.lower_status == CROSSING
    assert interval.upper_status == CROSSING
    assert interval.lower < MU_TRUE < interval.upper


def test_learned_asimov_fit_within_own_interval(learned, asimov):
    model, _ = learned
    likelihood, interval = interval_at_asimov(model, asimov)
    assert interval.contains(MU_TRUE)
    assert interval.contains(float(likelihood.mu_hat[0]))


def test_learned_interval_width_close_to_oracle(learned, asimov):
    model, samples = learned
    _, oracle = interval_at_asimov(ORACLE, asimov)
    _, learned_interval = interval_at_asimov(model, asimov)
    assert learned_interval.width <= 1.25 * oracle.width
    # The oracle is the limit: a narrower learned interval by more than
    # 10 % would be a mis-modelled likelihood, not a better method.
    assert learned_interval.width >= 0.9 * oracle.width


def test_binned_fit_reported_next_to_oracle(learned, asimov):
    _, samples = learned
    edges = np.linspace(*TOY.mass_range, 61)
    templates = mass_templates(samples, TOY.sample_background(200_000, seed=9), edges)
    counts, _ = np.histogram(asimov.x[:, 0], bins=edges, weights=asimov.sample_weight)
    binned = BinnedTemplateFit(templates, YIELDS, counts)
    interval = wilks_interval(binned, 0.683, GRID)
    _, oracle = interval_at_asimov(ORACLE, asimov)
    # The mass alone contains less information than mass and angle together.
    assert interval.width > oracle.width
    assert interval.contains(MU_TRUE)


@pytest.mark.parametrize("name", ["oracle", "learned"])
def test_wilks_coverage_at_reduced_size(name, learned, pseudo_experiments):
    model = ORACLE if name == "oracle" else learned[0]
    data, counts = pseudo_experiments
    likelihood = UnbinnedLikelihood(model.event_ratios(data, counts=counts), YIELDS)
    fraction, n = coverage(likelihood, MU_TRUE, 0.683)
    sigma = math.sqrt(0.683 * 0.317 / n)
    assert n == 300
    assert abs(fraction - 0.683) <= 3 * sigma


def test_fit_matches_bounded_scalar_minimiser(pseudo_experiments):
    data, counts = pseudo_experiments
    likelihood = UnbinnedLikelihood(ORACLE.event_ratios(data, counts=counts), YIELDS)
    for j in range(3):
        one = likelihood.log_likelihood_at
        best = optimize.minimize_scalar(
            lambda mu: -one(np.where(np.arange(300) == j, mu, 1.0))[j],
            bounds=(0.0, 10.0), method="bounded", options={"xatol": 1e-10})
        assert likelihood.mu_hat[j] == pytest.approx(best.x, abs=1e-6)


def test_experiments_fitted_together_equal_one_by_one(pseudo_experiments):
    data, counts = pseudo_experiments
    together = UnbinnedLikelihood(ORACLE.event_ratios(data, counts=counts), YIELDS)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for j in (0, 7, 299):
        part = data.take(np.arange(offsets[j], offsets[j + 1]))
        alone = UnbinnedLikelihood(ORACLE.event_ratios(part), YIELDS)
        assert together.mu_hat[j] == pytest.approx(alone.mu_hat[0], abs=1e-9)
        assert together.test_statistic(GRID)[:, j] == pytest.approx(
            alone.test_statistic(GRID)[:, 0], abs=1e-7)


def test_series_equals_direct_sum():
    toy = InterferenceToy()
    yields = toy_yields(toy)
    data = toy.sample_background(200_000, seed=4)
    ratios = InterferenceModel(toy.exact_ratios, yields).event_ratios(data)
    likelihood = UnbinnedLikelihood(ratios, yields)
    mu = np.array([0.0, 0.3, 1.2, 4.0, 10.0])
    root = np.sqrt(mu)[:, None]
    z = (root * yields.signal_interference * ratios.signal_interference
         + (mu[:, None] - root) * yields.signal * ratios.signal) / yields.background
    direct = np.sum(np.log1p(z), axis=1) - yields.expected(mu)
    assert likelihood.near_fraction < 0.2
    # Remainder bound 9.9e-19 per event (series module), rounding ~1e-16 per term.
    assert likelihood.log_likelihood(mu)[:, 0] == pytest.approx(direct, abs=1e-7)


def test_wilks_threshold_values():
    assert wilks_threshold(0.683) == pytest.approx(1.0013, abs=1e-4)
    assert wilks_threshold(0.95) == pytest.approx(3.8415, abs=1e-4)


class QuadraticLikelihood:
    """lambda(mu) = ((mu - mu_hat) / sigma)^2 with an exact interval to compare with."""

    method = "quadratic"

    def __init__(self, mu_hat, sigma):
        self.mu_hat = np.array([mu_hat])
        self.sigma = sigma

    def test_statistic(self, mu):
        return (((np.atleast_1d(mu) - self.mu_hat[0]) / self.sigma) ** 2)[:, None]


def test_wilks_interval_of_quadratic_is_exact():
    interval = wilks_interval(QuadraticLikelihood(1.0, 0.2), 0.95, GRID)
    half = 0.2 * math.sqrt(stats.chi2.ppf(0.95, 1))
    assert interval.lower == pytest.approx(1.0 - half, abs=1e-9)
    assert interval.upper == pytest.approx(1.0 + half, abs=1e-9)


def test_wilks_interval_at_boundary():
    interval = wilks_interval(QuadraticLikelihood(0.05, 0.2), 0.683, GRID)
    assert interval.lower == 0.0
    assert interval.lower_status == BOUNDARY
    assert interval.upper_status == CROSSING


def test_neyman_belt_near_zero_differs_from_wilks():
    def make_likelihood(mu, n, seed):
        data, counts = TOY.sample_pseudo_data(mu, seed=seed, n_experiments=n)
        return UnbinnedLikelihood(ORACLE.event_ratios(data, counts=counts), YIELDS)

    belt = neyman_belt(make_likelihood, [0.0, 0.6, 1.2, 1.8], cl=(0.683,), n_toys=200, seed=3)
    # At mu = 0 the fit sits on the bound for about half of the toys, where
    # lambda(0) = 0: the 68.3 % quantile of 0.5 delta_0 + 0.5 chi2_1 is 0.34,
    # well below the chi2 value 1.0. Away from 0 the sample quantile of 200
    # toys has sd sqrt(p (1 - p) / n) / f_chi2(1.0) = 0.033 / 0.242 = 0.14.
    assert belt.critical_value[0, 0] < 0.75
    assert belt.critical_value[0, 2] == pytest.approx(1.0, abs=4 * 0.14)
    observed = make_likelihood(MU_TRUE, 1, 77)
    neyman = neyman_interval(observed, belt, 0.683, GRID[GRID <= 1.8])
    wilks = wilks_interval(observed, 0.683, GRID)
    assert neyman.contains(float(observed.mu_hat[0]))
    assert neyman.width == pytest.approx(wilks.width, rel=0.3)


def test_barlow_beeston_lite_gamma_is_profiled():
    rng = np.random.default_rng(1)
    templates = {}
    for name in ("background", "signal", "signal_interference"):
        t = rng.uniform(0.2, 1.0, 3)
        templates[name] = (t / t.sum(), np.full(3, 0.01))
    yields = Yields(100.0, 10.0, 8.0)
    observed = np.array([40.0, 30.0, 50.0])
    fit = BinnedTemplateFit(templates, yields, observed)
    nu, var = fit.expected_counts([1.0])
    by_hand = 0.0
    for b in range(3):
        rel2 = var[0, b] / nu[0, b] ** 2
        def nll(g, b=b, rel2=rel2):
            expected = g * nu[0, b]
            return expected - observed[b] * math.log(expected) + (g - 1) ** 2 / (2 * rel2)

        best = optimize.minimize_scalar(nll, bounds=(1e-3, 5), method="bounded",
                                        options={"xatol": 1e-12})
        by_hand += best.fun
    assert fit.negative_log_likelihood([1.0])[0, 0] == pytest.approx(by_hand, abs=1e-8)


def test_binned_exact_templates_recover_asimov_mu(asimov):
    edges = np.linspace(*TOY.mass_range, 41)
    x, w = TOY.quadrature_nodes(mass_panels=400)
    densities = TOY.densities(x)
    templates = {}
    for name, values in densities.items():
        # Quadrature nodes of the same rule as the Asimov data, so the
        # templates match its histogram; tiny variances mimic huge simulation.
        t, _ = np.histogram(x[:, 0], bins=edges, weights=w * values)
        templates[name] = (t / t.sum(), np.full(len(t), 1e-14))
    data = TOY.asimov_data(MU_TRUE, mass_panels=400)
    counts, _ = np.histogram(data.x[:, 0], bins=edges, weights=data.sample_weight)
    fit = BinnedTemplateFit(templates, YIELDS, counts)
    assert fit.mu_hat[0] == pytest.approx(MU_TRUE, abs=1e-6)


def test_histogram_template_needs_positive_sum():
    sample = TOY.sample_signal(10, seed=0)
    with pytest.raises(InputError, match="positive sum"):
        histogram_template(sample.with_weights(-sample.sample_weight), "mass", np.array([0, 2e3]))


def test_negative_mu_and_above_mu_max_rejected(asimov):
    likelihood = UnbinnedLikelihood(ORACLE.event_ratios(asimov), YIELDS, mu_max=5.0)
    with pytest.raises(InputError, match="mu >= 0"):
        likelihood.log_likelihood([-0.5])
    with pytest.raises(InputError, match="mu_max"):
        likelihood.log_likelihood([6.0])


def test_invalid_model_density_marked():
    x, _ = TOY.quadrature_nodes()
    point = x[[np.argmin(TOY.exact_ratios(x)[1])]]
    r_si = float(TOY.exact_ratios(point)[1][0])
    # sigma_SI r_SI = -50 sigma_B makes 1 + z < 0 for every mu above 1 / 50^2.
    broken = Yields(1.0, 1.0, 50.0 / abs(r_si))
    likelihood = UnbinnedLikelihood(ORACLE.with_yields(broken).event_ratios(point), broken)
    scan = likelihood.scan(GRID)
    assert r_si < 0
    assert likelihood.mu_hat[0] < 1 / 50**2
    assert scan.status[0] == "ok"
    assert set(scan.status[1:]) == {"invalid"}
    assert np.all(np.isinf(scan.test_statistic[1:]))


def test_normalized_ratios_average_one():
    background = TOY.sample_background(50_000, seed=12)
    model = ORACLE.normalized(background)
    figures = model.normalization
    ratios = model.event_ratios(background)
    # The exact ratios average 1 under p_B, so the sample means scatter by one standard error.
    for name in ("signal", "signal_interference"):
        assert abs(figures[name]["mean"] - 1.0) < 4 * figures[name]["standard_error"]
    assert ratios.signal.mean() == pytest.approx(1.0, abs=1e-12)
    assert ratios.signal_interference.mean() == pytest.approx(1.0, abs=1e-12)
    assert model.with_yields(YIELDS.scaled(signal=2.0)).normalization is figures
