"""Learn the ratio of two weights carried by the same events, and check it per event.

A generator that stores several weights per event (EFT reweighting
points, scale variations) describes several distributions with one set
of phase-space points. The numerator sample is the events with weight
w_num, the denominator the same events with w_den, and the learned ratio
estimates E[w_num / w_den | x] up to the normalisation of each class.
At parton level, with features that fix the kinematics of the event,
that is the per-event weight ratio itself, apart from what the features
leave open (here the parton flavours). So the learned ratio is compared
with the per-event truth on held-out events.

The classifier two-sample test of the closure report is left out, because
it assumes independent source and target events and here they are the
same points.
As a reference for how much of the per-event truth the features can
explain, a gradient-boosted regression tree is fitted to the truth
itself on the training events and scored on the held-out ones.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from quasiratio.demos import common
from quasiratio.demos.checks import normalized_truth, per_event_agreement

logger = logging.getLogger(__name__)

#: Fraction of the events held out for the per-event comparison.
TEST_FRACTION = 0.3


@dataclasses.dataclass(frozen=True)
class WeightRatioPart:
    """One learned weight ratio: its held-out check and what the report needs."""

    name: str
    estimator: object
    choice: dict
    per_event: dict
    regression_reference: dict | None
    report: dict


def read_events_and_weights(path, features):
    """Read an LHE file once; return its events (unit weights) and every weight by name."""
    from quasiratio.events import EventSample
    from quasiratio.io.features import lhe_features
    from quasiratio.io.lhe import read_lhe

    lhe = read_lhe(path)
    x, names = lhe_features(lhe.particles, list(features))
    events = EventSample.from_arrays(x, feature_names=names, source=str(path))
    return events, dict(lhe.weights)


def add_delta_phi(sample, first: str = "j1_phi", second: str = "j2_phi", name: str = "jj_delta_phi"):
    """Return ``sample`` with the azimuthal difference of two objects, wrapped to (-pi, pi]."""
    from quasiratio.events import EventSample

    phi = sample.x[:, sample.feature_names.index(first)] - sample.x[:, sample.feature_names.index(second)]
    wrapped = np.pi - np.mod(np.pi - phi, 2 * np.pi)
    x = np.column_stack([sample.x, wrapped])
    return EventSample(
        x, sample.sample_weight, (*sample.feature_names, name), sample.extras,
        weight_name=sample.weight_name, source=sample.source,
    )


def split_indices(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted training and held-out event indices, seeded."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(TEST_FRACTION * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def fit_weight_ratio(
    name: str,
    events,
    numerator_weight: np.ndarray,
    denominator_weight: np.ndarray,
    *,
    config,
    seed: int,
    hidden=(64, 64, 64),
    clear_ratio: float | None = None,
    regression_reference: bool = True,
    report_options: dict | None = None,
) -> WeightRatioPart:
    """Learn w_num / w_den on the same events and compare with the per-event truth.

    ``events`` carries the features; its own weights are ignored.
    ``clear_ratio`` is the |true ratio| above which signs are counted
    separately (see :func:`~quasiratio.demos.checks.per_event_agreement`).
    """
    train, test = split_indices(len(events), seed=seed)
    numerator = events.with_weights(numerator_weight, weight_name=f"{name} numerator")
    denominator = events.with_weights(denominator_weight, weight_name=f"{name} denominator")
    estimator, choice = common.fit(
        "auto", numerator.take(train), denominator.take(train), config=config, hidden=hidden
    )
    truth = normalized_truth(numerator_weight, denominator_weight)
    ratio = estimator.ratio(events.take(test))
    per_event = per_event_agreement(ratio, truth[test], far_from_zero=clear_ratio)
    reference = None
    if regression_reference:
        reference = _regression_reference(events.x[train], truth[train], events.x[test], truth[test],
                                          seed=seed, clear_ratio=clear_ratio)
    logger.info("%s: per-event correlation %.3f (regression reference %s)", name,
                per_event["correlation"], None if reference is None else f"{reference['correlation']:.3f}")
    report = {
        "source": denominator.take(test),
        "target": numerator.take(test),
        "ratio": ratio,
        "truth": truth[test],
        "history": common.training_history(estimator),
        "metadata": {"part": name, "method": choice, "per_event": per_event},
        **(report_options or {}),
    }
    return WeightRatioPart(name, estimator, choice, per_event, reference, report)


def _regression_reference(x_train, y_train, x_test, y_test, *, seed: int, clear_ratio) -> dict:
    """Score a regression tree fitted to the truth itself, on the held-out events."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=200, early_stopping=True, random_state=seed)
    model.fit(x_train, y_train)
    return per_event_agreement(model.predict(x_test), y_test, far_from_zero=clear_ratio)


def part_result(part: WeightRatioPart) -> dict:
    """Return the JSON figures of a part."""
    return {
        "method": part.choice,
        "per_event": part.per_event,
        "regression_reference": part.regression_reference,
    }
