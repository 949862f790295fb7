"""Neyman construction: critical values of lambda(mu) from pseudo-experiments.

For each mu on a grid, pseudo-experiments drawn at that mu give the
distribution of lambda(mu); its CL quantile t_CL(mu) replaces the constant
chi-square threshold of Wilks' theorem, and the interval is
{mu : lambda_obs(mu) <= t_CL(mu)} with t_CL interpolated linearly between
grid points. This keeps the stated coverage where Wilks' theorem fails:
near mu = 0, where the model depends on sqrt(mu) and mu_hat sits on the
bound mu >= 0 for a finite fraction of experiments.

The pseudo-experiments of one mu are fitted together: the likelihood
objects are vectorised over experiments, so each mu costs one evaluation
of the per-event ratios on all its events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from quasiratio.errors import InputError
from quasiratio.inference.intervals import Interval, interval_below
from quasiratio.inference.model import check_signal_strength

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NeymanBelt:
    """Critical values ``critical_value[i, j]`` of lambda at level ``cl[i]`` and ``mu[j]``."""

    mu: np.ndarray
    cl: np.ndarray
    critical_value: np.ndarray
    n_toys: int

    def threshold(self, cl: float) -> Callable[[np.ndarray], np.ndarray]:
        """Return t_CL(mu), linear between grid points and constant beyond them."""
        match = np.flatnonzero(np.isclose(self.cl, cl))
        if not len(match):
            raise InputError(f"confidence level {cl} is not in the belt; built levels: "
                             f"{self.cl.tolist()}")
        values = self.critical_value[match[0]]
        return lambda mu: np.interp(mu, self.mu, values)

    def to_dict(self) -> dict:
        return {"mu": self.mu.tolist(), "cl": self.cl.tolist(),
                "critical_value": self.critical_value.tolist(), "n_toys": self.n_toys}


def neyman_belt(make_likelihood, mu, *, cl=(0.683, 0.95), n_toys: int = 200,
                seed: int = 0, progress: Callable[[str], None] | None = None) -> NeymanBelt:
    """Build the belt from ``make_likelihood(mu, n_toys, seed)``.

    ``make_likelihood`` draws ``n_toys`` pseudo-experiments at ``mu`` and
    returns a likelihood vectorised over them (an
    :class:`~quasiratio.inference.likelihood.UnbinnedLikelihood` or a
    :class:`~quasiratio.inference.binned.BinnedTemplateFit`).
    """
    mu = check_signal_strength(mu)
    cl = np.atleast_1d(np.asarray(cl, dtype=np.float64))
    if n_toys < 10:
        raise InputError(f"n_toys={n_toys} is too few for a quantile; use at least 10")
    critical = np.empty((len(cl), len(mu)))
    for j, value in enumerate(mu):
        likelihood = make_likelihood(float(value), n_toys, seed + j)
        lam = likelihood.test_statistic_at(np.full(likelihood.n_experiments, value))
        critical[:, j] = np.quantile(np.maximum(lam, 0.0), cl)
        logger.debug("belt at mu=%g: critical values %s", value, critical[:, j])
        if progress is not None:
            progress(f"Neyman belt {j + 1}/{len(mu)} at mu={value:g}")
    return NeymanBelt(mu, cl, critical, int(n_toys))


def neyman_interval(likelihood, belt: NeymanBelt, cl: float, grid=None, *,
                    experiment: int = 0) -> Interval:
    """Return {mu : lambda_obs(mu) <= t_CL(mu)} around mu_hat for one observed experiment."""
    grid = belt.mu if grid is None else grid
    return interval_below(likelihood, belt.threshold(cl), grid, cl=cl, experiment=experiment,
                          method=f"{likelihood.method} neyman")
