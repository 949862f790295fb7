"""Binned template fit of one observable with Monte Carlo statistical uncertainty.

The expected count in bin b is

    nu_b(mu) = sigma_B t_B,b + sqrt(mu) sigma_SI t_SI,b + (mu - sqrt(mu)) sigma_S t_S,b,

with templates t normalised to unit sum from weighted simulated
histograms (the S + I template has signed weights). The finite
simulation is handled in the Barlow-Beeston-lite way, with one factor per
bin for all samples together instead of one per sample and bin: gamma_b
scales nu_b, with a Gaussian
constraint of relative width delta_b = sqrt(var nu_b) / nu_b, where
var nu_b sums the squared template weights of every sample. Per bin

    -ln L_b = gamma nu_b - n_b ln(gamma nu_b) + (gamma - 1)^2 / (2 delta_b^2),

whose minimum over gamma solves gamma^2 + (nu_b delta_b^2 - 1) gamma - n_b delta_b^2 = 0,
so gamma is profiled in closed form for every mu.
"""

from __future__ import annotations

import numpy as np

from quasiratio.errors import InputError
from quasiratio.events import EventSample
from quasiratio.inference.likelihood import INVALID, OK, Scan, grid_bracket
from quasiratio.inference.model import Yields, check_signal_strength

#: Template names, in the order of the model terms.
TEMPLATE_NAMES = ("background", "signal", "signal_interference")


def histogram_template(sample: EventSample, feature: str, edges: np.ndarray):
    """Return the unit-sum template and the variance of each bin from a weighted sample."""
    column = sample.x[:, sample.feature_names.index(feature)]
    w = sample.sample_weight
    total = float(np.sum(w))
    if not total > 0:
        raise InputError(f"{sample.source}: weights sum to {total:.6g}; a template needs a "
                         "positive sum of weights")
    counts, _ = np.histogram(column, bins=edges, weights=w)
    sumw2, _ = np.histogram(column, bins=edges, weights=w * w)
    return counts / total, sumw2 / total**2


class BinnedTemplateFit:
    """Poisson template likelihood in one observable, one row of counts per experiment.

    ``templates`` maps each name of :data:`TEMPLATE_NAMES` to a pair
    (unit-sum template, variance per bin); ``observed`` has shape
    (n_experiments, n_bins) or (n_bins,).
    """

    method = "binned"

    def __init__(self, templates: dict, yields: Yields, observed: np.ndarray, *,
                 mu_max: float = 10.0, grid_points: int = 201) -> None:
        missing = [k for k in TEMPLATE_NAMES if k not in templates]
        if missing:
            raise InputError(f"templates {missing} are missing; pass all of {TEMPLATE_NAMES}")
        self._t = {k: np.asarray(templates[k][0], dtype=np.float64) for k in TEMPLATE_NAMES}
        self._var = {k: np.asarray(templates[k][1], dtype=np.float64) for k in TEMPLATE_NAMES}
        self.observed = np.atleast_2d(np.asarray(observed, dtype=np.float64))
        if self.observed.shape[1] != len(self._t["background"]):
            raise InputError(f"observed counts have {self.observed.shape[1]} bins but the "
                             f"templates {len(self._t['background'])}")
        self.yields = yields
        self.mu_max = float(mu_max)
        self.grid_points = int(grid_points)
        self._mu_hat = None

    @property
    def n_experiments(self) -> int:
        return self.observed.shape[0]

    def expected_counts(self, mu) -> tuple[np.ndarray, np.ndarray]:
        """Return nu_b(mu) and its simulation variance, each of shape (len(mu), n_bins)."""
        mu = check_signal_strength(mu)[:, None]
        y = self.yields
        a, b = np.sqrt(mu), mu - np.sqrt(mu)
        nu = (y.background * self._t["background"] + a * y.signal_interference
              * self._t["signal_interference"] + b * y.signal * self._t["signal"])
        var = (y.background**2 * self._var["background"] + a**2 * y.signal_interference**2
               * self._var["signal_interference"] + b**2 * y.signal**2 * self._var["signal"])
        return nu, var

    def negative_log_likelihood(self, mu) -> np.ndarray:
        """Return -ln L with every gamma_b profiled, shape (len(mu), n_experiments)."""
        nu, var = self.expected_counts(mu)
        return _profiled_nll(nu[:, None, :], var[:, None, :], self.observed[None, :, :])

    @property
    def mu_hat(self) -> np.ndarray:
        """Minimum of -ln L on [0, mu_max] per experiment: a grid, then golden-section search."""
        if self._mu_hat is None:
            self._mu_hat = self._fit()
        return self._mu_hat

    def _fit(self) -> np.ndarray:
        t_grid = np.linspace(0.0, np.sqrt(self.mu_max), self.grid_points)
        values = self.negative_log_likelihood(t_grid**2)
        k = np.argmin(values, axis=0)
        lo, hi = grid_bracket(t_grid, k)
        ratio = (np.sqrt(5) - 1) / 2
        for _ in range(60):
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            f1, f2 = self._nll_at(x1**2), self._nll_at(x2**2)
            hi = np.where(f1 < f2, x2, hi)
            lo = np.where(f1 < f2, lo, x1)
        return (0.5 * (lo + hi)) ** 2

    def _nll_at(self, mu_per_experiment: np.ndarray) -> np.ndarray:
        nu, var = self.expected_counts(mu_per_experiment)
        return _profiled_nll(nu, var, self.observed)

    def test_statistic(self, mu) -> np.ndarray:
        """Return lambda(mu) on a grid of mu, shape (len(mu), n_experiments)."""
        best = self._nll_at(self.mu_hat)
        return 2.0 * (self.negative_log_likelihood(mu) - best[None, :])

    def test_statistic_at(self, mu_per_experiment) -> np.ndarray:
        """Return lambda of each experiment at its own mu."""
        mu = check_signal_strength(mu_per_experiment)
        return 2.0 * (self._nll_at(mu) - self._nll_at(self.mu_hat))

    def scan(self, mu, *, experiment: int = 0) -> Scan:
        """Return the :class:`Scan` of one experiment on the grid ``mu``."""
        mu = check_signal_strength(mu)
        lam = self.test_statistic(mu)[:, experiment]
        status = np.where(np.isfinite(lam), OK, INVALID)
        return Scan(self.method, mu, lam, status, float(self.mu_hat[experiment]))


def _profiled_nll(nu: np.ndarray, var: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Return -ln L summed over the last (bin) axis with gamma_b at its closed-form minimum.

    A bin with nu_b <= 0 makes the model invalid there, so -ln L is inf.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        rel2 = var / nu**2
        p = nu * rel2 - 1
        gamma = np.where(rel2 > 0, 0.5 * (-p + np.sqrt(p * p + 4 * n * rel2)), 1.0)
        expected = gamma * nu
        log_term = np.where(n > 0, n * np.log(expected), 0.0)
        constraint = np.where(rel2 > 0, (gamma - 1) ** 2 / (2 * rel2), 0.0)
    terms = np.where(nu > 0, expected - log_term + constraint, np.inf)
    return terms.sum(axis=-1)
