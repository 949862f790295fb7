"""Training samples for r(x | c) from the events and morphing of an EFT LHE file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from quasiratio.errors import InputError
from quasiratio.events import EventSample
from quasiratio.morphing.basis import Morphing, nonzero_weights

#: Features of the VBF Higgs file that carry its EFT information. The
#: single azimuthal angles are uniform, so only their difference enters,
#: and the Higgs mass is fixed.
VBF_FEATURES = (
    "j1_pt", "j2_pt", "j1_eta", "j2_eta", "h1_pt", "jj_mass", "jj_delta_eta", "jj_delta_phi",
)


def read_morphed_events(
    path,
    *,
    operators: Sequence[str] | None = None,
    interactions: bool = True,
    features: Sequence[str] | None = VBF_FEATURES,
    smearing=None,
    seed: int | None = 0,
) -> tuple[EventSample, Morphing]:
    """Read an EFT LHE file into SM-weighted events and their per-event morphing.

    ``sample`` contains the features computed after ``smearing`` (a
    :class:`~quasiratio.smearing.JetSmearing`, or None for parton level)
    with the SM weight w(0) as sample weight. Feature names are those of
    :mod:`quasiratio.io.features` (None for its default set);
    :data:`VBF_FEATURES`, the default here, includes ``jj_delta_phi``, which is sensitive to the tensor structure
    of the HVV coupling. ``operators`` and ``interactions`` go to
    :meth:`Morphing.from_weights`.
    """
    from quasiratio.io.features import lhe_features
    from quasiratio.io.lhe import read_lhe

    events = read_lhe(path)
    morphing = Morphing.from_weights(
        events.weights, operators=operators, interactions=interactions
    )
    particles = events.particles
    if smearing is not None:
        particles = smearing.apply(particles, seed=seed)
    x, names = lhe_features(particles, features)
    sm = morphing.weight(morphing.sm_point)
    sample = EventSample(x, sm, tuple(names), weight_name="SM", source=str(path))
    return sample, morphing


def draw_theta(theta, n: int, operators: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Draw one parameter point per event, shape (n, K).

    ``theta`` is either a grid, an array (G, K) of points from which each
    event takes one at random, or a mapping {operator: (low, high)} for
    independent uniform draws (operators not named stay at 0).
    """
    operators = list(operators)
    k = len(operators)
    if isinstance(theta, Mapping):
        unknown = sorted(set(theta) - set(operators))
        if unknown:
            raise InputError(f"unknown operators {unknown} in theta; known: {operators}")
        draws = np.zeros((n, k))
        for op, bounds in theta.items():
            low, high = (float(v) for v in bounds)
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise InputError(f"theta range {op}={bounds} must be finite with low < high")
            draws[:, operators.index(op)] = rng.uniform(low, high, n)
        return draws
    grid = np.asarray(theta, dtype=np.float64)
    if grid.ndim == 1 and k == 1:
        grid = grid[:, None]
    if grid.ndim != 2 or grid.shape[1] != k or len(grid) == 0 or not np.isfinite(grid).all():
        raise InputError(
            f"theta grid has shape {grid.shape}; pass finite points of shape (G, {k}) "
            "or a mapping {operator: (low, high)}"
        )
    return grid[rng.integers(0, len(grid), n)]


def parameterized_samples(
    sample: EventSample,
    morphing: Morphing,
    *,
    theta,
    reference=None,
    normalize: bool = True,
    seed: int | None = 0,
) -> tuple[EventSample, EventSample]:
    """Build numerator and denominator samples for r(x | theta) from morphing weights.

    Both are copies of ``sample``'s events. The numerator copy carries, per
    event, a theta drawn by :func:`draw_theta` and the weight w(theta).
    The denominator copy carries w(reference) (default the SM) and an
    independently drawn theta, so theta alone does not tell the classes
    apart. With ``normalize`` each numerator weight is multiplied by
    sigma(reference) / sigma(theta), where sigma is the sum of the
    weights over all events, so r(x | theta) is a ratio of unit-normalised
    densities; without it, r is the ratio of differential cross-sections.

    Extras of both samples: ``theta`` (N, K); ``r_xz``, the joint ratio at
    the event's own theta against the reference, with the same
    normalisation; ``t_xz`` (N, K), the gradient of log r_xz at the
    event's own theta. Only in the numerator is that the joint score of
    the distribution the event is weighted to.
    """
    if len(morphing) != len(sample):
        raise InputError(f"the morphing has {len(morphing)} events but the sample has "
                         f"{len(sample)}; pass the morphing of the same events")
    rng = np.random.default_rng(seed)
    reference = morphing.sm_point if reference is None else morphing.as_theta(reference)
    w_ref = nonzero_weights(morphing.weight(reference), "the reference")
    sigma_ref = float(morphing.total_weight(reference)[0])
    if not sigma_ref > 0:
        raise InputError(f"the weights at the reference sum to {sigma_ref:.6g}; "
                         "choose a reference point with a positive cross-section")

    def joint(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = morphing.weight(theta)
        score = morphing.gradient(theta) / nonzero_weights(w, "a drawn theta")[:, None]
        factor = np.ones(len(w))
        if normalize:
            sigma = morphing.total_weight(theta)
            if not (sigma > 0).all():
                raise InputError("the weights sum to a non-positive cross-section at some "
                                 "drawn theta; narrow the theta range")
            factor = sigma_ref / sigma
            score = score - morphing.total_weight_gradient(theta) / sigma[:, None]
        return w * factor, w / w_ref * factor, score

    theta_num = draw_theta(theta, len(sample), morphing.operators, rng)
    theta_den = draw_theta(theta, len(sample), morphing.operators, rng)
    w_num, r_num, t_num = joint(theta_num)
    _, r_den, t_den = joint(theta_den)
    numerator = sample.replace(
        sample_weight=w_num, extras={"theta": theta_num, "r_xz": r_num, "t_xz": t_num},
        source=f"{sample.source} at theta", weight_name=None,
    )
    denominator = sample.replace(
        sample_weight=w_ref, extras={"theta": theta_den, "r_xz": r_den, "t_xz": t_den},
        source=f"{sample.source} at the reference",
    )
    return numerator, denominator
