"""Signed weights of chosen variance on a fixed sample, and a toy built on them.

The generator gives each event the weight

    W = 1 + sigma_w (eta - B) / sqrt(eta (1 - eta)),    B ~ Bernoulli(eta),

independently of its features. Then E[W] = 1 because E[B] = eta, and
Var(W) = sigma_w^2 eta (1 - eta) / (eta (1 - eta)) = sigma_w^2. The events
with B = 1 get W = 1 - sigma_w sqrt((1 - eta) / eta), which is negative
once sigma_w > sqrt(eta / (1 - eta)), so eta is then the expected fraction
of negative weights. Because W does not depend on x, the weighted sample
still describes the density the events were drawn from: only the
statistical noise grows with sigma_w.

The toy pairs an unweighted source N_2.5 with a target N_2.0 carrying
these weights (N_s the isotropic two-dimensional normal of scale s, the
positive components of :mod:`quasiratio.toys.gaussian_mixture`). Its true
ratio is (2.5/2)^2 exp(-|x|^2 (1/8 - 1/12.5)), positive everywhere.
"""

from __future__ import annotations

import numpy as np

from quasiratio.errors import InputError
from quasiratio.events import EventSample

SOURCE_SCALE = 2.5
TARGET_SCALE = 2.0
FEATURE_NAMES = ("x1", "x2")


def _check_options(sigma_w: float, eta: float) -> None:
    if not np.isfinite(sigma_w) or sigma_w < 0:
        raise InputError(f"sigma_w={sigma_w!r} must be a finite number >= 0")
    if not 0.0 < eta < 1.0:
        raise InputError(f"eta={eta!r} must lie strictly between 0 and 1")


def signed_weights(
    n: int, *, sigma_w: float, eta: float, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Draw ``n`` weights with mean 1 and variance ``sigma_w**2`` (float64)."""
    _check_options(sigma_w, eta)
    rng = np.random.default_rng(seed)
    b = rng.random(int(n)) < eta
    return 1.0 + sigma_w * (eta - b) / np.sqrt(eta * (1.0 - eta))


def negative_weight(*, sigma_w: float, eta: float) -> float:
    """Return the weight of the events with B = 1 (negative when sigma_w is large enough)."""
    _check_options(sigma_w, eta)
    return 1.0 - sigma_w * np.sqrt((1.0 - eta) / eta)


def true_ratio(x: np.ndarray) -> np.ndarray:
    """Return the exact ratio N_2.0(x) / N_2.5(x), shape (N,)."""
    x = np.asarray(x, dtype=np.float64)
    r2 = np.sum(x * x, axis=1)
    scale_ratio = (SOURCE_SCALE / TARGET_SCALE) ** 2
    return scale_ratio * np.exp(-0.5 * r2 * (TARGET_SCALE**-2 - SOURCE_SCALE**-2))


def make_samples(
    n_source: int, n_target: int, *, sigma_w: float, eta: float, seed: int = 0
) -> tuple[EventSample, EventSample]:
    """Draw an unweighted N_2.5 source and an N_2.0 target with generator weights."""
    _check_options(sigma_w, eta)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
    source = EventSample(
        rngs[0].standard_normal((int(n_source), 2)) * SOURCE_SCALE,
        np.ones(int(n_source)),
        FEATURE_NAMES,
        source="weight-variance source",
    )
    target = EventSample(
        rngs[1].standard_normal((int(n_target), 2)) * TARGET_SCALE,
        signed_weights(n_target, sigma_w=sigma_w, eta=eta, seed=rngs[2]),
        FEATURE_NAMES,
        source="weight-variance target",
    )
    return source, target
