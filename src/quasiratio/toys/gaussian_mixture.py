"""Two-dimensional signed Gaussian-mixture toy with a negative target region.

The toy of the REVERT paper (Drnevich, Jiggins, Cranmer, arXiv:2512.19913):

    source p0 = (4 N_2.5 - 1 N_2.3) / 3,    target q1 = 2 N_2.0 - 1 N_1.2,

where N_s is the isotropic two-dimensional normal density of scale s,
N_s(x) = exp(-|x|^2 / (2 s^2)) / (2 pi s^2). Both densities integrate to 1.
The source is non-negative everywhere, and the target is negative for
radius |x| below about 1.2158. The true ratio depends on the radius only.
It runs from -1.2935 at the origin to a maximum of 1.7136 at radius about
3.016, and tends to 0 at large radius.

Each sample is drawn from the mixture of the |coefficients|: an event
comes from a positive component with weight +1 or from the negative
component with weight -1. For the source that is 80 % N_2.5 (+1) and
20 % N_2.3 (-1); for the target 2/3 N_2.0 (+1) and 1/3 N_1.2 (-1). The
component counts are binomial, so the coefficient c = (sum of positive
weights) / (sum of weights) of a sample scatters around 4/3 (source) and
2 (target).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from quasiratio.errors import InputError
from quasiratio.events import EventSample

#: Feature names of the toy samples.
FEATURE_NAMES = ("x1", "x2")

#: (scale, coefficient) pairs of the source and target signed mixtures.
SOURCE_COMPONENTS = ((2.5, 4.0 / 3.0), (2.3, -1.0 / 3.0))
TARGET_COMPONENTS = ((2.0, 2.0), (1.2, -1.0))


def radius(x: np.ndarray) -> np.ndarray:
    """Return |x| of each event, the one feature the true ratio depends on."""
    x = np.asarray(x, dtype=np.float64)
    return np.hypot(x[:, 0], x[:, 1])


def _normal_density_of_radius(r: np.ndarray, scale: float) -> np.ndarray:
    return np.exp(-0.5 * (r / scale) ** 2) / (2.0 * np.pi * scale**2)


def _mixture_density_of_radius(r: np.ndarray, components) -> np.ndarray:
    return sum(c * _normal_density_of_radius(r, s) for s, c in components)


def source_density(x: np.ndarray) -> np.ndarray:
    """Return the source density p0(x) (non-negative everywhere)."""
    return _mixture_density_of_radius(radius(x), SOURCE_COMPONENTS)


def target_density(x: np.ndarray) -> np.ndarray:
    """Return the target quasi-density q1(x) (negative near the origin)."""
    return _mixture_density_of_radius(radius(x), TARGET_COMPONENTS)


def true_ratio_of_radius(r: np.ndarray) -> np.ndarray:
    """Return q1/p0 as a function of the radius."""
    r = np.asarray(r, dtype=np.float64)
    num = _mixture_density_of_radius(r, TARGET_COMPONENTS)
    return num / _mixture_density_of_radius(r, SOURCE_COMPONENTS)


def true_ratio(x: np.ndarray) -> np.ndarray:
    """Return the exact ratio q1(x)/p0(x) of each event, shape (N,)."""
    return true_ratio_of_radius(radius(x))


def negative_radius() -> float:
    """Return the radius below which the target, and so the ratio, is negative."""
    return float(brentq(true_ratio_of_radius, 0.5, 2.0, xtol=1e-12))


def sample_signed_mixture(
    n: int, components, *, seed: int | np.random.Generator | None = 0, source: str
) -> EventSample:
    """Draw ``n`` events from the |coefficient| mixture with weights sign(coefficient)."""
    if int(n) != n or n < 1:
        raise InputError(f"number of events must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    scales = np.array([s for s, _ in components])
    coefficients = np.array([c for _, c in components])
    probabilities = np.abs(coefficients) / np.abs(coefficients).sum()
    component = rng.choice(len(components), size=int(n), p=probabilities)
    x = rng.standard_normal((int(n), 2)) * scales[component, None]
    weight = np.sign(coefficients[component])
    return EventSample(x, weight, FEATURE_NAMES, source=source)


def sample_source(n: int, *, seed: int | np.random.Generator | None = 0) -> EventSample:
    """Draw ``n`` source events: 80 % from N_2.5 with weight +1, 20 % from N_2.3 with -1."""
    return sample_signed_mixture(n, SOURCE_COMPONENTS, seed=seed, source="toy source")


def sample_target(n: int, *, seed: int | np.random.Generator | None = 0) -> EventSample:
    """Draw ``n`` target events: 2/3 from N_2.0 with weight +1, 1/3 from N_1.2 with -1."""
    return sample_signed_mixture(n, TARGET_COMPONENTS, seed=seed, source="toy target")


def make_samples(
    n_source: int, n_target: int, *, seed: int = 0
) -> tuple[EventSample, EventSample]:
    """Draw independent source and target samples from one seed."""
    source_rng, target_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    return sample_source(n_source, seed=source_rng), sample_target(n_target, seed=target_rng)
