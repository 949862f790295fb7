"""Classifier two-sample test between a reweighted source and a target.

A classifier is trained to tell the two samples apart on one half of the
events, and its weighted AUC is measured on the other half. If the samples
follow the same distribution, no function of x separates them, so the
held-out AUC is 1/2 up to sampling noise whatever the classifier learned.
This makes the test valid for any training rule, and the training rule
only decides how much power the test has.

Negative weights:

* Training uses |w|, each class scaled to the same total. Gradient
  boosting with signed sample weights can have negative Hessian sums in a
  leaf and diverge. The |w| classifier is a fixed score once trained, so
  the held-out test stays valid, but it may miss a difference that only
  shows in the sign of the weights.
* The held-out AUC uses the signed weights:
  AUC = sum_{i in T, j in S} w_i w_j H(s_i - s_j) / (W_T W_S), with
  H(0) = 1/2. This is the signed-measure extension of
  P(score of a target event > score of a source event). Its null
  expectation is 1/2. It can leave [0, 1] when negative weights dominate
  part of the score range; such a value is not a probability, so
  :class:`MetricError` is raised instead of returning it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quasiratio.diagnostics._checks import (
    negative_fraction,
    require_positive_total,
    require_same_length,
)
from quasiratio.errors import MetricError

METRIC = "classifier two-sample AUC"


@dataclasses.dataclass(frozen=True)
class TwoSampleResult:
    """Held-out weighted AUC and its standard deviation under the null.

    ``z = (auc - 1/2) / null_std``; a value above about 3 means the
    classifier separates the samples.
    """

    auc: float
    null_std: float
    test_events: int

    @property
    def z(self) -> float:
        return (self.auc - 0.5) / self.null_std


def _signed_cdf_below(scores: np.ndarray, weight: np.ndarray, points: np.ndarray) -> np.ndarray:
    # Normalised signed weight of ``scores`` below each point, ties counted half.
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
    below = cumulative[np.searchsorted(sorted_scores, points, side="left")]
    up_to = cumulative[np.searchsorted(sorted_scores, points, side="right")]
    return 0.5 * (below + up_to)


def weighted_auc(
    source_score, source_weight, target_score, target_weight
) -> tuple[float, float]:
    """Return the signed-weight AUC of target over source scores and its null std.

    The null standard deviation follows DeLong's placement values with the
    pooled signed CDF H of both normalised samples standing in for each
    sample's CDF: Var = sum_T a_i^2 (H(s_i) - 1/2)^2 + sum_S a_j^2 (H(s_j) - 1/2)^2,
    with a the weights normalised to sum 1. For unit weights and no ties it
    tends to (1/n_S + 1/n_T) / 12.
    """
    a_source = source_weight / require_positive_total(source_weight, metric=METRIC, what="source")
    a_target = target_weight / require_positive_total(target_weight, metric=METRIC, what="target")
    placement = _signed_cdf_below(source_score, a_source, target_score)
    auc = float(np.sum(a_target * placement))
    if not 0.0 <= auc <= 1.0:
        raise MetricError(
            f"{METRIC} is undefined: the signed-weight AUC is {auc:.4g}, outside [0, 1], "
            f"because negative weights dominate part of the score range (negative fraction "
            f"source {negative_fraction(source_weight):.3g}, target "
            f"{negative_fraction(target_weight):.3g}); use the sliced Wasserstein distance"
        )
    scores = np.concatenate([source_score, target_score])
    pooled = 0.5 * np.concatenate([a_source, a_target])
    h_source = _signed_cdf_below(scores, pooled, source_score)
    h_target = _signed_cdf_below(scores, pooled, target_score)
    variance = np.sum(a_source**2 * (h_source - 0.5) ** 2)
    variance += np.sum(a_target**2 * (h_target - 0.5) ** 2)
    return auc, float(np.sqrt(variance))


def _split(n: int, rng: np.random.Generator, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    cut = int(round(n * (1.0 - test_fraction)))
    return order[:cut], order[cut:]


def classifier_two_sample_test(
    x_source,
    source_weight,
    x_target,
    target_weight,
    *,
    test_fraction: float = 0.5,
    max_iter: int = 100,
    num_threads: int | None = 1,
    seed: int = 0,
) -> TwoSampleResult:
    """Train a gradient-boosted classifier on source against target and test it on held-out events.

    The classifier is scikit-learn's ``HistGradientBoostingClassifier``
    with ``max_iter`` boosting rounds and no early stopping. Both samples
    are split at random with ``seed`` into a training part and a held-out
    part of ``test_fraction``. ``num_threads`` limits the OpenMP threads
    of the boosting (None: the library default). The default of 1 is on
    purpose: OpenMP threads that wait for busy cores slow the fit down
    many times over. On a 2-core machine shared with other jobs, 10,000
    events per class took 58 s with the default threads and 1 to 5 s
    with one thread (scikit-learn 1.9).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    x_source = np.asarray(x_source, dtype=np.float64).reshape(len(source_weight), -1)
    x_target = np.asarray(x_target, dtype=np.float64).reshape(len(target_weight), -1)
    source_weight = np.asarray(source_weight, dtype=np.float64)
    target_weight = np.asarray(target_weight, dtype=np.float64)
    require_same_length(x_source, source_weight, metric=METRIC, what="source")
    require_same_length(x_target, target_weight, metric=METRIC, what="target")
    if not 0.0 < test_fraction < 1.0:
        raise MetricError(f"{METRIC}: test_fraction must lie in (0, 1), got {test_fraction!r}")

    rng = np.random.default_rng(seed)
    source_train, source_test = _split(len(source_weight), rng, test_fraction)
    target_train, target_test = _split(len(target_weight), rng, test_fraction)
    # Each class gets a total equal to the mean class size, so the classes
    # are balanced and the mean weight is near 1, as the Hessian thresholds
    # of gradient boosting assume.
    size = 0.5 * (source_train.size + target_train.size)
    train_weight = [np.abs(source_weight[source_train]), np.abs(target_weight[target_train])]
    train_weight = [
        w * (size / require_positive_total(w, metric=METRIC, what="training")) for w in train_weight
    ]
    classifier = HistGradientBoostingClassifier(
        max_iter=max_iter, early_stopping=False, random_state=seed
    )
    with threadpool_limits(limits=num_threads, user_api="openmp"):
        classifier.fit(
            np.concatenate([x_source[source_train], x_target[target_train]]),
            np.concatenate([np.zeros(source_train.size), np.ones(target_train.size)]),
            sample_weight=np.concatenate(train_weight),
        )
        # The decision function is the logit; unlike predict_proba it does
        # not saturate into ties at 0 or 1.
        source_score = classifier.decision_function(x_source[source_test])
        target_score = classifier.decision_function(x_target[target_test])

    auc, null_std = weighted_auc(
        source_score, source_weight[source_test], target_score, target_weight[target_test]
    )
    return TwoSampleResult(
        auc=auc, null_std=null_std, test_events=int(source_test.size + target_test.size)
    )
