"""Automatic choice between CARL, REVERT and RoSMM from the data (``method="auto"``).

The rule, applied in this order:

1. No event in either sample has a negative weight: **CARL**. The ratio
   is then non-negative, and CARL's cross-entropy is the standard,
   best-understood loss.
2. Negative weights are present, every sign subset of each signed sample
   has at least ``min_subset_events`` events, and the relative weight
   variance Var(w) / mean(w)^2 = N / ESS - 1 of a signed sample is at
   least ``high_variance``: **RoSMM**. The variance of a gradient step
   grows with Var(w) whatever the loss, while RoSMM's sub-classifiers
   see constant |w| within each subset. RoSMM needs enough negative events
   to train a classifier on each subset, hence the count.
3. The negative weights carry less than ``negligible_share`` of sum |w|
   and no bin of the leading numerator features is net negative (see
   :func:`find_net_negative_regions`): **CARL**. The numerator is then a
   density, so CARL's minimiser is still the ratio.
4. Otherwise **REVERT**: one classifier, no extra data, and any sign of
   the ratio. It is the fallback when the negative subsets are too small
   for RoSMM or the weights are not noisy enough for RoSMM to pay off.

The thresholds are options of :func:`choose_method` and
:class:`AutoEstimator`. The defaults are rules of thumb, not measured
limits: ``min_subset_events=1000`` keeps the Poisson error of a subset
below about 3 %; ``high_variance=1`` is where the weight noise per event
equals the Poisson noise (ESS = N / 2); ``negligible_share=0.01``.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from quasiratio.errors import ModelFormatError
from quasiratio.estimators.base import RatioEstimator, make_estimator, register_method
from quasiratio.events import EventSample

logger = logging.getLogger(__name__)

DEFAULT_MIN_SUBSET_EVENTS = 1000
DEFAULT_HIGH_VARIANCE = 1.0
DEFAULT_NEGLIGIBLE_SHARE = 0.01

#: Names of the methods the automatic choice picks from.
CANDIDATES = ("carl", "revert", "rosmm")


@dataclasses.dataclass(frozen=True)
class MethodChoice:
    """The method picked for a pair of samples, why, and the figures behind it."""

    method: str
    reason: str
    figures: dict

    def to_dict(self) -> dict:
        return {"chosen_method": self.method, "reason": self.reason, "figures": self.figures}


@dataclasses.dataclass(frozen=True)
class NegativeRegion:
    """A bin of the leading features whose summed weight is significantly negative."""

    features: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    sum_weights: float
    significance: float


def _quantile_bin_index(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, bins - 1), edges


def _negative_bins(sample, columns, bins, threshold) -> list[NegativeRegion]:
    """Return the bins of the grid over ``columns`` with sum w < -threshold sqrt(sum w^2)."""
    w = sample.sample_weight
    flat = np.zeros(len(sample), dtype=np.int64)
    edges = []
    for column in columns:
        index, column_edges = _quantile_bin_index(sample.x[:, column], bins)
        flat = flat * bins + index
        edges.append(column_edges)
    size = bins ** len(columns)
    sum_w = np.bincount(flat, weights=w, minlength=size)
    sum_w2 = np.bincount(flat, weights=w * w, minlength=size)
    significance = np.divide(sum_w, np.sqrt(sum_w2), out=np.zeros(size), where=sum_w2 > 0)
    regions = []
    for cell in np.flatnonzero(significance < -threshold):
        position = np.unravel_index(cell, (bins,) * len(columns))
        regions.append(
            NegativeRegion(
                features=tuple(sample.feature_names[c] for c in columns),
                low=tuple(float(e[p]) for e, p in zip(edges, position)),
                high=tuple(float(e[p + 1]) for e, p in zip(edges, position)),
                sum_weights=float(sum_w[cell]),
                significance=float(significance[cell]),
            )
        )
    return regions


def find_net_negative_regions(
    sample: EventSample,
    *,
    max_features: int = 3,
    bins_1d: int = 16,
    bins_2d: int = 8,
    threshold: float = 3.0,
) -> list[NegativeRegion]:
    """Find bins of the leading features where the sample is net negative.

    The check bins each of the first ``max_features`` features in
    ``bins_1d`` equal-count bins, and the first two features together in a
    ``bins_2d`` x ``bins_2d`` grid of equal-count edges. The grid is needed
    because a target can be negative in a disc around the origin while
    every one-dimensional projection is positive, as in the Gaussian
    mixture toy. A bin counts when its sum of weights lies more than
    ``threshold`` standard errors sqrt(sum w^2) below zero. Every bin holds
    about 1/16 or 1/64 of the events, so a flagged bin is a region that
    matters for the fit. Regions hidden in three or more dimensions are not
    seen.
    """
    n_features = min(int(max_features), sample.n_features)
    regions = []
    for column in range(n_features):
        regions += _negative_bins(sample, [column], bins_1d, threshold)
    if n_features >= 2:
        regions += _negative_bins(sample, [0, 1], bins_2d, threshold)
    return regions


def relative_weight_variance(sample_weight: np.ndarray) -> float:
    """Return Var(w) / mean(w)^2 = N / ESS - 1, the weight noise per event."""
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(len(w) * np.sum(w * w) / np.sum(w) ** 2 - 1.0)


def _sample_figures(sample: EventSample) -> dict:
    negative = sample.sample_weight < 0
    summary = sample.summary()
    negative_share = float(np.sum(np.abs(sample.sample_weight[negative])) / summary.sum_abs_weights)
    return {
        "events": len(sample),
        "negative_events": int(negative.sum()),
        "positive_events": int((~negative).sum()),
        "negative_abs_weight_share": negative_share,
        "effective_sample_size": summary.effective_sample_size,
        "relative_weight_variance": relative_weight_variance(sample.sample_weight),
    }


def choose_method(
    numerator: EventSample,
    denominator: EventSample,
    *,
    min_subset_events: int = DEFAULT_MIN_SUBSET_EVENTS,
    high_variance: float = DEFAULT_HIGH_VARIANCE,
    negligible_share: float = DEFAULT_NEGLIGIBLE_SHARE,
) -> MethodChoice:
    """Pick CARL, REVERT or RoSMM for a pair of samples; see the module docstring."""
    numerator.normalized(float(len(numerator)))
    denominator.normalized(float(len(denominator)))
    figures = {"numerator": _sample_figures(numerator), "denominator": _sample_figures(denominator)}
    regions = find_net_negative_regions(numerator)
    figures["numerator_net_negative_bins"] = len(regions)
    signed = [name for name in ("numerator", "denominator") if figures[name]["negative_events"]]
    if not signed:
        return MethodChoice("carl", "no event has a negative weight, so the ratio is "
                            "non-negative and CARL's cross-entropy applies directly", figures)

    counts = ", ".join(f"{name} {figures[name]['negative_events']} of "
                       f"{figures[name]['events']}" for name in signed)
    variance = max(figures[name]["relative_weight_variance"] for name in signed)
    smallest = min(min(figures[name]["negative_events"], figures[name]["positive_events"])
                   for name in signed)
    if smallest >= min_subset_events and variance >= high_variance:
        return MethodChoice(
            "rosmm",
            f"negative weights ({counts}) with relative weight variance {variance:.3g} "
            f">= {high_variance:g}, and every sign subset has >= {min_subset_events} events "
            f"(smallest {smallest}), so RoSMM's classifiers on non-negative subsets "
            "avoid the weight noise of a single signed-weight network",
            figures,
        )
    share = max(figures[name]["negative_abs_weight_share"] for name in signed)
    if not regions and share < negligible_share:
        return MethodChoice(
            "carl",
            f"negative weights ({counts}) carry only {share:.2%} of sum |w| (< "
            f"{negligible_share:.0%}) and no bin of the leading numerator features is "
            "net negative, so the ratio is non-negative and CARL applies",
            figures,
        )
    why = (f"{len(regions)} bins of the leading numerator features are net negative"
           if regions else f"negative weights carry {share:.2%} of sum |w|")
    if smallest < min_subset_events:
        limit = f"a sign subset has only {smallest} events (< {min_subset_events}) for RoSMM"
    else:
        limit = f"the relative weight variance {variance:.3g} is below {high_variance:g}"
    return MethodChoice(
        "revert",
        f"negative weights ({counts}) and {why}, so a signed method is needed. RoSMM is "
        f"not chosen because {limit}, so REVERT, with one classifier and no extra data, is",
        figures,
    )


@register_method("auto")
class AutoEstimator(RatioEstimator):
    """Estimator that picks CARL, REVERT or RoSMM from the data, then trains it.

    The thresholds are those of :func:`choose_method`; the other options
    are those of :class:`RatioEstimator` and go to the chosen estimator.
    Fitted attributes: ``chosen_method_``, ``reason_``, ``choice_figures_``
    and ``estimator_``, the fitted estimator every call is passed to. The
    saved metadata stores ``chosen_method`` and ``reason`` among the
    method fields.
    """

    def __init__(
        self,
        *,
        min_subset_events: int = DEFAULT_MIN_SUBSET_EVENTS,
        high_variance: float = DEFAULT_HIGH_VARIANCE,
        negligible_share: float = DEFAULT_NEGLIGIBLE_SHARE,
        **options,
    ) -> None:
        super().__init__(**options)
        self.min_subset_events = min_subset_events
        self.high_variance = high_variance
        self.negligible_share = negligible_share

    def _fit_samples(self, numerator, denominator) -> None:
        choice = choose_method(
            numerator, denominator, min_subset_events=self.min_subset_events,
            high_variance=self.high_variance, negligible_share=self.negligible_share,
        )
        logger.info("method 'auto' chose %r: %s", choice.method, choice.reason)
        self.chosen_method_ = choice.method
        self.reason_ = choice.reason
        self.choice_figures_ = choice.figures
        self.estimator_ = self._new_inner(choice.method, {})
        self.estimator_.fit(numerator, denominator)

    def _new_inner(self, method: str, inner_options: dict) -> RatioEstimator:
        options = {**super()._options(), **inner_options}
        return make_estimator(method, network=self.network, config=self.config, **options)

    @property
    def positive_ratio(self) -> bool:
        inner = getattr(self, "estimator_", None)
        return bool(inner is not None and inner.positive_ratio)

    def ratio(self, x) -> np.ndarray:
        """Estimated r(x) of the chosen estimator, float64."""
        self._check_fitted()
        return self.estimator_.ratio(x)

    def log_ratio(self, x) -> np.ndarray:
        """log r(x) of the chosen estimator; InputError when its ratio can be <= 0."""
        self._check_fitted()
        return self.estimator_.log_ratio(x)

    def logit(self, x) -> np.ndarray:
        """Logit of the chosen estimator, float64."""
        self._check_fitted()
        return self.estimator_.logit(x)

    # --------------------------------------------------- hooks for saving
    def _models(self) -> dict:
        return self.estimator_._models()

    def _set_models(self, models: dict) -> None:
        self._loaded_models = models

    def _histories(self) -> dict:
        return self.estimator_._histories()

    def _set_histories(self, histories: dict) -> None:
        self._loaded_histories = histories

    def _options(self) -> dict:
        return {**super()._options(), "min_subset_events": self.min_subset_events,
                "high_variance": self.high_variance, "negligible_share": self.negligible_share}

    def _method_fields(self) -> dict:
        inner = self.estimator_
        base_options = set(super()._options())
        return {
            "chosen_method": self.chosen_method_,
            "reason": self.reason_,
            "figures": self.choice_figures_,
            "chosen_options": {k: v for k, v in inner._options().items() if k not in base_options},
            "chosen_fields": inner._method_fields(),
        }

    def _restore_fields(self, fields: dict) -> None:
        """Rebuild the chosen estimator, because only now is its method known."""
        try:
            self.chosen_method_ = fields["chosen_method"]
            self.reason_ = fields["reason"]
            self.choice_figures_ = fields["figures"]
            inner = self._new_inner(self.chosen_method_, fields["chosen_options"])
        except (KeyError, TypeError) as error:
            raise ModelFormatError(
                f"the metadata of an 'auto' model lacks a valid chosen method ({error}); "
                "save the model again"
            ) from None
        inner._set_models(self._loaded_models)
        inner._set_histories(self._loaded_histories)
        inner.feature_names_ = self.feature_names_
        inner.n_features_in_ = self.n_features_in_
        inner.support_ = self.support_
        inner._restore_fields(fields["chosen_fields"])
        self.estimator_ = inner
