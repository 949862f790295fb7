"""Latent-variable Gaussian toys with exact marginal and joint ratios.

The simulator draws a latent (parton-level) value z and observes
x = z + e with e ~ N(0, sigma^2), independent of the parameter theta.
Because p(x | z) does not depend on theta, it cancels in the joint ratio:

    r_xz(x, z | theta1, theta0) = p(z | theta1) / p(z | theta0)
    t_xz(x, z | theta) = d/dtheta log p(z | theta)

and E[r_xz | x] under p0(z | x) is the marginal ratio r(x) = p1(x) / p0(x).
The spread of r_xz around r(x) grows with sigma, so sigma sets how much a
joint-ratio method must average out.

:class:`LatentGaussian` is the model z ~ N(theta, 1), where
p(x | theta) = N(x; theta, 1 + sigma^2) and

    log r(x | theta1, theta0) = [(x - theta0)^2 - (x - theta1)^2] / (2 (1 + sigma^2))
    log r_xz = [(z - theta0)^2 - (z - theta1)^2] / 2,   t_xz(theta) = z - theta.

:class:`LatentSignedMixture` has a numerator that is a quasi-density in z
(a Gaussian minus a narrower one), so r_xz and r(x) are negative near 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quasiratio.errors import InputError
from quasiratio.events import EventSample

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _normal_pdf(x: np.ndarray, mean: float | np.ndarray, var: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mean) ** 2 / var - _LOG_SQRT_2PI - 0.5 * np.log(var))


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise InputError(f"{name}={value} must be positive")


@dataclasses.dataclass(frozen=True)
class LatentGaussian:
    """The model z ~ N(theta, 1), x = z + N(0, sigma^2), with scalar theta."""

    sigma: float = 1.0

    def __post_init__(self) -> None:
        _check_positive("sigma", self.sigma)

    @property
    def variance(self) -> float:
        """Variance 1 + sigma^2 of x given theta."""
        return 1.0 + self.sigma**2

    def simulate(
        self, theta: np.ndarray, *, seed: int | None = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one (x, z) pair per entry of ``theta``; returns arrays of shape (N,)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        rng = np.random.default_rng(seed)
        z = theta + rng.standard_normal(theta.size)
        x = z + self.sigma * rng.standard_normal(theta.size)
        return x, z

    def log_ratio(self, x, theta1, theta0) -> np.ndarray:
        """Exact log p(x | theta1) - log p(x | theta0)."""
        x = np.asarray(x, dtype=np.float64)
        return ((x - theta0) ** 2 - (x - theta1) ** 2) / (2.0 * self.variance)

    def score(self, x, theta) -> np.ndarray:
        """Exact marginal score d/dtheta log p(x | theta)."""
        return (np.asarray(x, dtype=np.float64) - theta) / self.variance

    @staticmethod
    def joint_log_ratio(z, theta1, theta0) -> np.ndarray:
        """Joint log r_xz = log p(z | theta1) - log p(z | theta0)."""
        z = np.asarray(z, dtype=np.float64)
        return ((z - theta0) ** 2 - (z - theta1) ** 2) / 2.0

    @staticmethod
    def joint_score(z, theta) -> np.ndarray:
        """Joint score t_xz = d/dtheta log p(z | theta) = z - theta."""
        return np.asarray(z, dtype=np.float64) - theta

    def parameterized_samples(
        self,
        n: int,
        *,
        theta_range: tuple[float, float] = (-1.0, 1.0),
        theta_grid=None,
        reference: float = 0.0,
        seed: int | None = 0,
    ) -> tuple[EventSample, EventSample]:
        """Draw training samples for r(x | theta) = p(x | theta) / p(x | reference).

        Returns (numerator, denominator), ``n`` events each with unit
        weights. Numerator events are simulated at theta drawn uniformly
        from ``theta_range``, or from the points of ``theta_grid`` when it
        is given. Denominator events are simulated at
        ``reference`` and carry a theta drawn independently from the same
        range, so that theta alone does not tell the classes apart. Every
        event carries the extras ``theta`` (N, 1), ``r_xz`` =
        p(z | theta) / p(z | reference) at its own theta, and ``t_xz``
        (N, 1) = z - theta, the joint score at its own theta (which is the
        score of the distribution it was drawn from only for numerator
        events).
        """
        low, high = (float(v) for v in theta_range)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise InputError(f"theta_range={theta_range} must be two finite numbers, low < high")
        if n < 1:
            raise InputError(f"n={n} must be at least 1")
        rng = np.random.default_rng(seed)
        if theta_grid is None:
            theta_num = rng.uniform(low, high, n)
            theta_den = rng.uniform(low, high, n)
        else:
            grid = np.asarray(theta_grid, dtype=np.float64).reshape(-1)
            if grid.size == 0 or not np.isfinite(grid).all():
                raise InputError(
                    f"theta_grid={theta_grid} must be a non-empty list of finite values"
                )
            theta_num = rng.choice(grid, n)
            theta_den = rng.choice(grid, n)
        seeds = rng.integers(0, 2**63 - 1, size=2)
        x_num, z_num = self.simulate(theta_num, seed=int(seeds[0]))
        x_den, z_den = self.simulate(np.full(n, float(reference)), seed=int(seeds[1]))
        numerator = self._sample(x_num, z_num, theta_num, reference, "latent numerator")
        denominator = self._sample(x_den, z_den, theta_den, reference, "latent denominator")
        return numerator, denominator

    def _sample(self, x, z, theta, reference, source) -> EventSample:
        return EventSample.from_arrays(
            x[:, None],
            feature_names=["x"],
            source=source,
            theta=theta[:, None],
            r_xz=np.exp(self.joint_log_ratio(z, theta, reference)),
            t_xz=self.joint_score(z, theta)[:, None],
        )


@dataclasses.dataclass(frozen=True)
class LatentSignedMixture:
    """A signed numerator in the latent variable, observed through Gaussian smearing.

    Numerator q(z) = [N(z; 0, 1) - k N(z; 0, width^2)] / (1 - k), which
    integrates to 1 and is negative at z = 0 when k > width. Denominator
    p0(z) = N(z; 0, reference_width^2). With x = z + N(0, sigma^2),
    q(x) = [N(x; 0, 1 + sigma^2) - k N(x; 0, width^2 + sigma^2)] / (1 - k),
    negative at x = 0 when k^2 (1 + sigma^2) > width^2 + sigma^2.
    """

    k: float = 0.7
    width: float = 0.3
    reference_width: float = 1.5
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.k < 1:
            raise InputError(f"k={self.k} must lie in (0, 1) for the numerator to integrate to 1")
        for name in ("width", "reference_width", "sigma"):
            _check_positive(name, getattr(self, name))

    def joint_ratio(self, z) -> np.ndarray:
        """Joint ratio r_xz = q(z) / p0(z), negative where q(z) < 0."""
        z = np.asarray(z, dtype=np.float64)
        q = (_normal_pdf(z, 0.0, 1.0) - self.k * _normal_pdf(z, 0.0, self.width**2)) / (1 - self.k)
        return q / _normal_pdf(z, 0.0, self.reference_width**2)

    def ratio(self, x) -> np.ndarray:
        """Exact marginal ratio r(x) = q(x) / p0(x)."""
        x = np.asarray(x, dtype=np.float64)
        s2 = self.sigma**2
        q = _normal_pdf(x, 0.0, 1.0 + s2) - self.k * _normal_pdf(x, 0.0, self.width**2 + s2)
        return q / (1 - self.k) / _normal_pdf(x, 0.0, self.reference_width**2 + s2)

    def denominator_sample(self, n: int, *, seed: int | None = 0) -> EventSample:
        """Draw ``n`` unit-weight events from p0 with the extra ``r_xz``."""
        if n < 1:
            raise InputError(f"n={n} must be at least 1")
        rng = np.random.default_rng(seed)
        z = self.reference_width * rng.standard_normal(n)
        x = z + self.sigma * rng.standard_normal(n)
        return EventSample.from_arrays(
            x[:, None], feature_names=["x"], source="signed latent denominator",
            r_xz=self.joint_ratio(z),
        )
