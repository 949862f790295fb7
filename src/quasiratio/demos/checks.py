"""Figures the demos report: per-event agreement with a known ratio and
weighted category fractions with their statistical uncertainties.

A learned ratio r_hat(x) estimates E[w_num / w_den | x] over the events
at x. Where the features determine the event, as for parton-level
kinematics of a fixed process, that conditional mean is the per-event
weight ratio itself, so the learned and the true ratio can be compared
event by event. Where they do not (flavours not in the features, for
example), the per-event truth scatters around r_hat and the correlation
is bounded below 1 even for a perfect estimator.
"""

from __future__ import annotations

import json
import os

import numpy as np

from quasiratio._atomic import atomic_path
from quasiratio.errors import InputError


def normalized_truth(numerator_weight: np.ndarray, denominator_weight: np.ndarray) -> np.ndarray:
    """Return the per-event ratio of two weights of the same events, normalised.

    Each class is normalised to unit total before training, so the ratio
    the estimator learns is (w_num / sum w_num) / (w_den / sum w_den).
    """
    w_num = np.asarray(numerator_weight, dtype=np.float64)
    w_den = np.asarray(denominator_weight, dtype=np.float64)
    if np.any(w_den <= 0):
        raise InputError(
            f"{int(np.count_nonzero(w_den <= 0))} denominator weights are <= 0; the per-event "
            "ratio needs a positive denominator weight for every event"
        )
    return (w_num / w_den) * (w_den.sum() / w_num.sum())


def per_event_agreement(
    predicted: np.ndarray, truth: np.ndarray, *, far_from_zero: float | None = None
) -> dict[str, float]:
    """Compare a learned ratio with the true ratio event by event.

    Returns the Pearson correlation, the mean squared error, the MSE
    relative to the variance of the truth (0 is perfect, 1 is no better
    than the mean), the fraction of events whose predicted sign matches
    the true sign (events with truth exactly 0 left out), and the same
    fraction among events with |truth| > ``far_from_zero``.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 1:
        raise InputError(
            f"predicted ratio of shape {predicted.shape} and truth of shape {truth.shape} "
            "must be equally long 1-D arrays"
        )
    mse = float(np.mean((predicted - truth) ** 2))
    nonzero = truth != 0
    figures = {
        "events": int(truth.size),
        "correlation": float(np.corrcoef(predicted, truth)[0, 1]),
        "mse": mse,
        "relative_mse": mse / float(np.var(truth)),
        "sign_agreement": _sign_agreement(predicted[nonzero], truth[nonzero]),
        "true_negative_fraction": float(np.mean(truth < 0)),
        "predicted_negative_fraction": float(np.mean(predicted < 0)),
    }
    if far_from_zero is not None:
        far = np.abs(truth) > far_from_zero
        figures["far_from_zero"] = float(far_from_zero)
        figures["far_events"] = int(far.sum())
        figures["sign_agreement_far"] = _sign_agreement(predicted[far], truth[far])
    return figures


def _sign_agreement(predicted: np.ndarray, truth: np.ndarray) -> float:
    if truth.size == 0:
        return float("nan")
    return float(np.mean(np.sign(predicted) == np.sign(truth)))


def category_fractions(
    values: np.ndarray, sample_weight: np.ndarray, categories
) -> tuple[np.ndarray, np.ndarray]:
    """Return the weighted fraction of each category and its standard deviation.

    f_k = W_k / W with W_k the sum of weights in category k. Treating each
    weight as an independent random quantity, the delta method gives
    var f_k = [(1 - f_k)^2 sum_{i in k} w_i^2 + f_k^2 sum_{i not in k} w_i^2] / W^2,
    which holds for signed weights because only w^2 enters.
    """
    values = np.asarray(values)
    w = np.asarray(sample_weight, dtype=np.float64)
    total = float(w.sum())
    if not total > 1e-12 * float(np.abs(w).sum()):
        raise InputError(
            f"the weights sum to {total:.6g}, so category fractions are undefined; "
            "use a sample whose weights sum to a positive number"
        )
    fractions, deviations = [], []
    sum_w2 = float(np.sum(w * w))
    for category in categories:
        inside = values == category
        f = float(w[inside].sum()) / total
        w2_in = float(np.sum(w[inside] ** 2))
        variance = ((1 - f) ** 2 * w2_in + f**2 * (sum_w2 - w2_in)) / total**2
        fractions.append(f)
        deviations.append(np.sqrt(variance))
    return np.array(fractions), np.array(deviations)


def compare_fractions(
    values_a: np.ndarray,
    weight_a: np.ndarray,
    values_b: np.ndarray,
    weight_b: np.ndarray,
    categories,
    *,
    extra_std: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Return, per category, both fractions, the combined deviation and the pull.

    ``extra_std`` adds independent deviations in quadrature, such as that of
    the training sample whose fractions a learned ratio inherits.
    """
    f_a, s_a = category_fractions(values_a, weight_a, categories)
    f_b, s_b = category_fractions(values_b, weight_b, categories)
    extra = np.zeros(len(f_a)) if extra_std is None else np.asarray(extra_std, dtype=np.float64)
    combined = np.sqrt(s_a**2 + s_b**2 + extra**2)
    rows = []
    for k, category in enumerate(categories):
        rows.append(
            {
                "category": float(category),
                "fraction_a": float(f_a[k]),
                "fraction_b": float(f_b[k]),
                "combined_std": float(combined[k]),
                "pull": float((f_a[k] - f_b[k]) / combined[k]),
            }
        )
    return rows


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_to_builtin) + "\n")


def _to_builtin(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
