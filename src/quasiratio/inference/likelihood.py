"""Extended unbinned likelihood of the interference model, its maximum and scans.

For events x_i with weights w_i (1 for data) the extended log-likelihood,
up to terms that do not depend on mu, is

    ln L(mu) = -nu(mu) + sum_i w_i ln(1 + z_i(mu)),
    z(mu) = [t sigma_SI r_SI(x) + (t^2 - t) sigma_S r_S(x)] / sigma_B,   t = sqrt(mu),

(see :mod:`quasiratio.inference.model`). Events with |z| small for every
mu up to ``mu_max`` enter through a power series in t
(:mod:`quasiratio.inference.series`), the others exactly. In t the event
factor is a quadratic, so the score d ln L / dt and its derivative are
exact sums and the maximum is found by Newton steps inside a bracket from
a coarse grid.
The supported range is mu >= 0. Where h <= 0 for some event the model is
not a density, ln L is -inf there and the scan marks the point invalid.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np

from quasiratio.errors import InputError, QuasiRatioWarning
from quasiratio.inference import series
from quasiratio.inference.model import EventRatios, Yields, check_signal_strength

logger = logging.getLogger(__name__)

#: Status of a scan point.
OK, INVALID = "ok", "invalid"


@dataclasses.dataclass(frozen=True)
class Scan:
    """Test statistic lambda(mu) = -2 [ln L(mu) - ln L(mu_hat)] on a grid of mu.

    ``mu``, ``test_statistic`` and ``status`` are aligned; ``status`` is
    ``"ok"`` or ``"invalid"`` (model density <= 0 at some event, lambda = inf).
    """

    method: str
    mu: np.ndarray
    test_statistic: np.ndarray
    status: np.ndarray
    mu_hat: float

    def to_dict(self) -> dict:
        return {"method": self.method, "mu_hat": self.mu_hat, "mu": self.mu.tolist(),
                "test_statistic": self.test_statistic.tolist(), "status": self.status.tolist()}


class UnbinnedLikelihood:
    """Extended unbinned likelihood of each experiment in ``ratios``.

    ``mu_max`` bounds the fit; ``grid_points`` is the size of the coarse
    grid, uniform in sqrt(mu), that brackets the maximum.
    """

    method = "unbinned"

    def __init__(self, ratios: EventRatios, yields: Yields, *, mu_max: float = 10.0,
                 grid_points: int = 41, chunk_size: int = 4_000_000) -> None:
        if not (np.isfinite(mu_max) and mu_max > 0):
            raise InputError(f"mu_max={mu_max} must be a positive number")
        self.ratios = ratios
        self.yields = yields
        self.mu_max = float(mu_max)
        self.grid_points = int(grid_points)
        self.chunk_size = int(chunk_size)
        u = yields.signal_interference / yields.background * ratios.signal_interference
        v = yields.signal / yields.background * ratios.signal
        near = series.series_bound(u, v, self.mu_max) > series.SERIES_RADIUS
        index = ratios.experiment_index
        n = ratios.n_experiments
        self._u, self._v, self._w = u[near], v[near], ratios.weight[near]
        self._counts = np.bincount(index[near], minlength=n)
        far_counts = np.bincount(index[~near], minlength=n)
        self._series = series.series_polynomial(u[~near], v[~near], ratios.weight[~near],
                                                far_counts)
        self.near_fraction = float(near.mean()) if len(near) else 0.0
        self._mu_hat: np.ndarray | None = None
        self._best: np.ndarray | None = None

    @property
    def n_experiments(self) -> int:
        return self.ratios.n_experiments

    def _check(self, mu) -> np.ndarray:
        mu = check_signal_strength(mu)
        if np.any(mu > self.mu_max * (1 + 1e-12)):
            raise InputError(f"mu={mu.max():g} is above mu_max={self.mu_max:g}; build the "
                             "likelihood with a larger mu_max")
        return mu

    def log_likelihood(self, mu) -> np.ndarray:
        """Return ln L on a grid of mu, shape (len(mu), n_experiments); -inf where invalid.

        The constant sum_i w_i ln(sigma_B p_B(x_i)) is left out.
        """
        mu = self._check(mu)
        root = np.sqrt(mu)
        out = series.evaluate_grid(self._series, root)
        rows = max(1, self.chunk_size // max(len(self._u), 1))
        for start in range(0, len(mu), rows):
            block = slice(start, start + rows)
            a, b = root[block, None], (mu[block] - root[block])[:, None]
            terms = self._w * _safe_log1p(a * self._u + b * self._v)
            out[block] += series.segment_sum(terms, self._counts)
        return out - self.yields.expected(mu)[:, None]

    def log_likelihood_at(self, mu_per_experiment) -> np.ndarray:
        """Return ln L of each experiment at its own mu, shape (n_experiments,)."""
        mu = self._check(mu_per_experiment)
        root = np.sqrt(mu)
        a, b = np.repeat(root, self._counts), np.repeat(mu - root, self._counts)
        near = series.segment_sum(self._w * _safe_log1p(a * self._u + b * self._v),
                                  self._counts)
        return near + series.evaluate(self._series, root) - self.yields.expected(mu)

    def _score(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return d ln L / dt and d^2 ln L / dt^2 of each experiment at t = sqrt(mu)."""
        y = self.yields
        t_event = np.repeat(t, self._counts)
        h = 1 + t_event * self._u + (t_event**2 - t_event) * self._v
        ratio = (self._u + (2 * t_event - 1) * self._v) / h
        first = series.segment_sum(self._w * ratio, self._counts)
        second = series.segment_sum(self._w * (2 * self._v / h - ratio**2), self._counts)
        first += series.evaluate(self._series, t, derivative=1)
        second += series.evaluate(self._series, t, derivative=2)
        first -= y.signal_interference + (2 * t - 1) * y.signal
        second -= 2 * y.signal
        return first, second

    @property
    def mu_hat(self) -> np.ndarray:
        """Maximum-likelihood mu of each experiment on [0, mu_max]."""
        if self._mu_hat is None:
            self._mu_hat = self._fit()
        return self._mu_hat

    def _fit(self) -> np.ndarray:
        t_grid = np.linspace(0.0, np.sqrt(self.mu_max), self.grid_points)
        values = self.log_likelihood(t_grid**2)
        k = np.argmax(values, axis=0)
        lo, hi = grid_bracket(t_grid, k)
        t = _newton_in_bracket(self._score, t_grid[k], lo, hi)
        t = np.where(self.log_likelihood_at(t**2) >= values[k, np.arange(len(k))], t, t_grid[k])
        at_limit = np.isclose(t, t_grid[-1])
        if at_limit.any():
            warnings.warn(
                f"{int(at_limit.sum())} of {len(t)} fits reached mu_max={self.mu_max}; "
                "raise mu_max", QuasiRatioWarning, stacklevel=3)
        return t**2

    @property
    def max_log_likelihood(self) -> np.ndarray:
        """ln L(mu_hat) of each experiment."""
        if self._best is None:
            self._best = self.log_likelihood_at(self.mu_hat)
        return self._best

    def test_statistic(self, mu) -> np.ndarray:
        """Return lambda(mu) on a grid of mu, shape (len(mu), n_experiments)."""
        return -2.0 * (self.log_likelihood(mu) - self.max_log_likelihood[None, :])

    def test_statistic_at(self, mu_per_experiment) -> np.ndarray:
        """Return lambda of each experiment at its own mu, shape (n_experiments,)."""
        return -2.0 * (self.log_likelihood_at(mu_per_experiment) - self.max_log_likelihood)

    def scan(self, mu, *, experiment: int = 0) -> Scan:
        """Return the :class:`Scan` of one experiment on the grid ``mu``."""
        mu = check_signal_strength(mu)
        lam = self.test_statistic(mu)[:, experiment]
        status = np.where(np.isfinite(lam), OK, INVALID)
        return Scan(self.method, mu, lam, status, float(self.mu_hat[experiment]))


def _newton_in_bracket(score, t, lo, hi, *, tol: float = 1e-12, max_iter: int = 100):
    """Solve score(t) = 0 for a maximum inside [lo, hi], one bracket per experiment.

    A Newton step is taken when it stays inside the bracket and the
    curvature is negative, otherwise the bracket is bisected. A maximum on
    an edge of the bracket (a fit at mu = 0) is returned as that edge.
    """
    t, lo, hi = t.astype(float), lo.astype(float), hi.astype(float)
    done = np.zeros(t.shape, dtype=bool)
    for _ in range(max_iter):
        g, dg = score(t)
        lo = np.where(g > 0, t, lo)
        hi = np.where(g > 0, hi, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - g / dg
        use = (dg < 0) & (newton >= lo) & (newton <= hi)
        t_new = np.where(use, newton, 0.5 * (lo + hi))
        # A converged experiment keeps its value; a step from the root can
        # leave it on a bracket edge, where bisection would move it away.
        converged = (use & (np.abs(t_new - t) < tol)) | (hi - lo < tol)
        t = np.where(done, t, t_new)
        done |= converged
        if done.all():
            return t
    logger.warning("maximum of ln L not converged to %g in %d steps", tol, max_iter)
    return t


def _safe_log1p(z: np.ndarray) -> np.ndarray:
    """Return ln(1 + z) with -inf where 1 + z <= 0, where the model is not a density."""
    out = np.full(z.shape, -np.inf)
    np.log1p(z, out=out, where=z > -1)
    return out


def grid_bracket(t_grid: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the grid neighbours (lo, hi) of the best grid index ``k`` of each experiment.

    The fits scan t = sqrt(mu) on a grid, then refine inside [lo, hi];
    at the grid ends the bracket is cut to the grid.
    """
    lo = t_grid[np.maximum(k - 1, 0)]
    hi = t_grid[np.minimum(k + 1, len(t_grid) - 1)]
    return lo, hi
