"""Two-dimensional toy whose negative target region is invisible in 1-D projections.

A signed target can be negative in a region of two or more features while
the distribution of every single feature stays positive, so histograms of
single features cannot reveal it. This toy builds such a target:

    q1 = k [N((0, 0), 1) + N((a, -a), s) + N((-a, a), s)] - e N((a, a), d),

with k = (1 + e) / 3, a = 1.5, s = 0.6, d = 0.4, e = 0.1, and N(m, sigma)
the isotropic two-dimensional normal density with mean m and scale sigma.
It integrates to 1. The dip at the corner (a, a) makes q1 negative in a
blob around it (both features between about 0.69 and 2.89), because the
two side lobes sit at (a, -a) and (-a, a), far from the corner.

Every marginal stays positive. The x1 marginal contains the term
k phi_s(x1 - a) of the lobe at (a, -a), and the dip contributes
-e phi_d(x1 - a). Their ratio is (k d / (e s)) exp(u^2 (1/d^2 - 1/s^2) / 2)
with u = x1 - a, which is at least k d / (e s) = 2.44 > 1 for every u. The
x2 marginal follows by symmetry.

The source is p0 = N((0, 0), 2), which is wider than every target
component, so the true ratio q1/p0 is bounded (between about -4.3 and 7.8).
Target events are drawn from the |coefficient| mixture with weight +1 or
-1 by component sign, so about e / (1 + 2 e) = 8.3 % of them are negative.
"""

from __future__ import annotations

import numpy as np

from quasiratio.errors import InputError
from quasiratio.events import EventSample

#: Feature names of the toy samples.
FEATURE_NAMES = ("x1", "x2")

#: Position of the corner where the target is negative, in both features.
CORNER = 1.5

#: Coefficient of the negative dip.
DIP_COEFFICIENT = 0.1

#: Scale of the isotropic normal source density.
SOURCE_SCALE = 2.0

_LOBE = (1.0 + DIP_COEFFICIENT) / 3.0

#: (mean, scale, coefficient) of the target components.
TARGET_COMPONENTS = (
    ((0.0, 0.0), 1.0, _LOBE),
    ((CORNER, -CORNER), 0.6, _LOBE),
    ((-CORNER, CORNER), 0.6, _LOBE),
    ((CORNER, CORNER), 0.4, -DIP_COEFFICIENT),
)


def _normal(values: np.ndarray, mean: float, scale: float) -> np.ndarray:
    return np.exp(-0.5 * ((values - mean) / scale) ** 2) / (np.sqrt(2.0 * np.pi) * scale)


def _as_points(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise InputError(f"toy points must have shape (N, 2), got {x.shape}")
    return x


def source_density(x: np.ndarray) -> np.ndarray:
    """Return the source density p0(x) = N(x; (0, 0), 2)."""
    x = _as_points(x)
    return _normal(x[:, 0], 0.0, SOURCE_SCALE) * _normal(x[:, 1], 0.0, SOURCE_SCALE)


def target_density(x: np.ndarray) -> np.ndarray:
    """Return the target quasi-density q1(x), negative around (1.5, 1.5)."""
    x = _as_points(x)
    return sum(
        c * _normal(x[:, 0], m[0], s) * _normal(x[:, 1], m[1], s)
        for m, s, c in TARGET_COMPONENTS
    )


def target_marginal(values: np.ndarray, axis: int) -> np.ndarray:
    """Return the exact marginal density of feature ``axis`` (0 or 1) of the target."""
    if axis not in (0, 1):
        raise InputError(f"axis must be 0 or 1, got {axis!r}")
    values = np.asarray(values, dtype=np.float64)
    return sum(c * _normal(values, m[axis], s) for m, s, c in TARGET_COMPONENTS)


def true_ratio(x: np.ndarray) -> np.ndarray:
    """Return the exact ratio q1(x)/p0(x) of each event, shape (N,)."""
    return target_density(x) / source_density(x)


def _check_count(n: int) -> int:
    if int(n) != n or n < 1:
        raise InputError(f"number of events must be a positive integer, got {n!r}")
    return int(n)


def sample_source(n: int, *, seed: int | np.random.Generator | None = 0) -> EventSample:
    """Draw ``n`` source events from N((0, 0), 2) with unit weights."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((_check_count(n), 2)) * SOURCE_SCALE
    return EventSample(x, np.ones(len(x)), FEATURE_NAMES, source="hidden-negative toy source")


def sample_target(n: int, *, seed: int | np.random.Generator | None = 0) -> EventSample:
    """Draw ``n`` target events from the |coefficient| mixture with weights +1 or -1."""
    n = _check_count(n)
    rng = np.random.default_rng(seed)
    means = np.array([m for m, _, _ in TARGET_COMPONENTS])
    scales = np.array([s for _, s, _ in TARGET_COMPONENTS])
    coefficients = np.array([c for _, _, c in TARGET_COMPONENTS])
    probabilities = np.abs(coefficients) / np.abs(coefficients).sum()
    component = rng.choice(len(coefficients), size=n, p=probabilities)
    x = means[component] + rng.standard_normal((n, 2)) * scales[component, None]
    weight = np.sign(coefficients[component])
    return EventSample(x, weight, FEATURE_NAMES, source="hidden-negative toy target")


def make_samples(
    n_source: int, n_target: int, *, seed: int = 0
) -> tuple[EventSample, EventSample]:
    """Draw independent source and target samples from one seed."""
    source_rng, target_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    return sample_source(n_source, seed=source_rng), sample_target(n_target, seed=target_rng)
