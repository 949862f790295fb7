"""Confidence intervals from a test statistic lambda(mu): Wilks and threshold crossings.

Wilks' theorem: for one parameter away from the boundary, lambda(mu_true)
follows a chi-square distribution with one degree of freedom, so the
interval {mu : lambda(mu) <= F^-1_chi2(CL)} has coverage CL (lambda <= 1.001
at 68.3 %, <= 3.841 at 95 %). Near mu = 0 the model is not linear in mu
(it contains sqrt(mu)) and the bound mu >= 0 applies, so the theorem need
not hold there; :mod:`quasiratio.inference.neyman` replaces the constant
threshold with one calibrated on pseudo-experiments.

Any likelihood object with ``mu_hat`` (one value per experiment) and
``test_statistic(mu)`` (shape (len(mu), n_experiments)) can be used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from quasiratio.errors import InputError

#: Confidence levels reported by default.
DEFAULT_LEVELS = (0.683, 0.95)

#: How an interval edge was found.
CROSSING, BOUNDARY, SCAN_LIMIT = "crossing", "boundary", "scan limit"


@dataclasses.dataclass(frozen=True)
class Interval:
    """Confidence interval [lower, upper] for mu at confidence level ``cl``.

    ``lower_status`` and ``upper_status`` are ``"crossing"`` (lambda meets
    the threshold there), ``"boundary"`` (mu = 0 is inside) or ``"scan
    limit"`` (the interval reaches the end of the scanned grid).
    """

    method: str
    cl: float
    mu_hat: float
    lower: float
    upper: float
    lower_status: str
    upper_status: str

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def contains(self, mu: float) -> bool:
        return self.lower <= mu <= self.upper

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def wilks_threshold(cl: float) -> float:
    """Return the chi-square (1 degree of freedom) quantile at confidence level ``cl``."""
    if not 0 < cl < 1:
        raise InputError(f"confidence level {cl} must lie strictly between 0 and 1")
    return float(stats.chi2.ppf(cl, df=1))


def wilks_interval(likelihood, cl: float, grid, *, experiment: int = 0,
                   method: str | None = None) -> Interval:
    """Return the interval {mu : lambda(mu) <= chi2 quantile} that contains mu_hat."""
    q = wilks_threshold(cl)
    return interval_below(likelihood, lambda mu: np.full(np.shape(mu), q), grid, cl=cl,
                          experiment=experiment, method=method or f"{likelihood.method} wilks")


def interval_below(likelihood, threshold: Callable[[np.ndarray], np.ndarray], grid, *,
                   cl: float, experiment: int = 0, method: str = "") -> Interval:
    """Return the connected set {mu : lambda(mu) <= threshold(mu)} around mu_hat.

    The grid brackets each edge; the edge itself is then found by Brent's
    method on lambda(mu) - threshold(mu), so its precision does not depend
    on the grid spacing. A region below the threshold that is disjoint
    from the one around mu_hat is not included.
    """
    mu_hat = float(likelihood.mu_hat[experiment])
    # mu_hat joins the grid so that the bracketing starts from a point inside.
    grid = np.unique(np.append(np.asarray(grid, dtype=np.float64), [0.0, mu_hat]))

    def excess(mu):
        mu = np.atleast_1d(mu)
        return likelihood.test_statistic(mu)[:, experiment] - threshold(mu)

    below = excess(grid) <= 0
    k = int(np.searchsorted(grid, mu_hat))
    below[k] = True
    lower, lower_status = _edge(excess, grid, below, k, step=-1)
    upper, upper_status = _edge(excess, grid, below, k, step=+1)
    return Interval(method, float(cl), mu_hat, lower, upper, lower_status, upper_status)


def _edge(excess, grid, below, k, *, step):
    i = k
    while 0 <= i + step < len(grid) and below[i + step]:
        i += step
    if i + step < 0:
        return 0.0, BOUNDARY
    if i + step >= len(grid):
        return float(grid[-1]), SCAN_LIMIT
    a, b = sorted((grid[i], grid[i + step]))
    root = optimize.brentq(lambda mu: float(excess(mu)[0]), a, b, xtol=1e-10, rtol=1e-12)
    return float(root), CROSSING


def coverage(likelihood, mu_true: float, cl: float) -> tuple[float, int]:
    """Return the fraction of Wilks intervals that contain ``mu_true`` and the experiment count.

    The interval contains mu_true exactly when lambda(mu_true) <= the
    chi-square quantile, so no interval edges are needed.
    """
    n = likelihood.n_experiments
    lam = likelihood.test_statistic_at(np.full(n, float(mu_true)))
    return float(np.mean(lam <= wilks_threshold(cl))), n
