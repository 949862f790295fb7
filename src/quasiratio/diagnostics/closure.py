"""All closure metrics of one reweighting, as a JSON-ready dictionary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from quasiratio.diagnostics import distances, metrics, two_sample
from quasiratio.diagnostics.histograms import DEFAULT_PERCENTILES, feature_edges
from quasiratio.errors import InputError, MetricError
from quasiratio.events import EventSample

logger = logging.getLogger(__name__)


def _feature_names(source: EventSample, target: EventSample, features) -> list[str]:
    names = list(features) if features is not None else list(source.feature_names)
    missing = [n for n in names if n not in source.feature_names or n not in target.feature_names]
    if missing:
        raise InputError(
            f"features {missing} are not in both samples (source: {list(source.feature_names)}, "
            f"target: {list(target.feature_names)}); pass --features with shared names"
        )
    return names


def _record(results: dict, errors: dict, key: str, compute: Callable[[], dict]) -> None:
    # A metric that is undefined for these weights is reported under
    # "errors" with its reason and its keys are set to None, so one
    # undefined metric does not hide the others. The reason is logged at
    # INFO because it is expected for signed targets and kept in the output.
    try:
        results.update(compute())
    except MetricError as exc:
        logger.info("%s", exc)
        errors[key] = str(exc)


_FEATURE_KEYS = (
    "chi2_per_dof",
    "chi2_per_dof_null_std",
    "chi2_per_dof_before",
    "chi2_divergence",
    "chi2_divergence_null_mean",
    "chi2_divergence_null_std",
)


def _feature_metrics(source_column, new_weight, source_weight, target_column, target_weight, edges):
    results: dict = {"bins": int(edges.size - 1)}
    errors: dict = {}

    def chi_square() -> dict:
        after = distances.weighted_chi_square(
            source_column, new_weight, target_column, target_weight, edges
        )
        return {"chi2_per_dof": after.per_dof, "chi2_per_dof_null_std": after.null_std}

    def chi_square_before() -> dict:
        before = distances.weighted_chi_square(
            source_column, source_weight, target_column, target_weight, edges
        )
        return {"chi2_per_dof_before": before.per_dof}

    def divergence() -> dict:
        value = distances.chi_square_divergence(
            source_column, new_weight, target_column, target_weight, edges
        )
        return {
            "chi2_divergence": value.value,
            "chi2_divergence_null_mean": value.null_mean,
            "chi2_divergence_null_std": value.null_std,
        }

    for key, compute in (
        ("chi2_per_dof", chi_square),
        ("chi2_per_dof_before", chi_square_before),
        ("chi2_divergence", divergence),
    ):
        _record(results, errors, key, compute)
    for key in _FEATURE_KEYS:
        results.setdefault(key, None)
    return results, errors


def _truth_values(truth, source: EventSample) -> np.ndarray:
    if callable(truth):
        return np.asarray(truth(source.x), dtype=np.float64)
    return np.asarray(truth, dtype=np.float64)


def closure_metrics(
    source: EventSample,
    target: EventSample,
    ratio,
    *,
    truth=None,
    features: Sequence[str] | None = None,
    bins: int = 50,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    n_projections: int = 64,
    classifier_test: bool = True,
    seed: int = 0,
) -> dict:
    """Compare the source reweighted by ``ratio`` with the target.

    ``ratio`` contains r_hat on each source event. ``truth`` contains the
    true ratio there, or is a function of x that returns it. Per feature, the
    bins are ``bins`` equal intervals between ``percentiles`` of the
    target, or one bin per value for a feature with at most ``bins``
    distinct values. Returns floats, ints, None and nested dicts only, ready for
    ``json.dumps``. A metric that is undefined for these weights is None
    and its reason is under ``"errors"``. Key names and meanings:

    - ``normalization`` and ``normalization_error``: sum(w r_hat) / sum(w).
    - ``effective_sample_size``, ``max_weight_share``: of w r_hat.
    - ``negative_ratio_fraction`` (events) and ``negative_ratio_weighted_fraction`` (|w|).
    - ``ratio_mse``: when ``truth`` is given.
    - ``sliced_wasserstein`` and ``sliced_wasserstein_null_mean``.
    - ``classifier_auc``, ``classifier_auc_null_std``, ``classifier_auc_z``.
    - ``features``: per name, ``chi2_per_dof`` (1 +- ``chi2_per_dof_null_std``
      at closure), ``chi2_per_dof_before`` (without reweighting) and
      ``chi2_divergence`` with its null mean and standard deviation.
    """
    names = _feature_names(source, target, features)
    source_part, target_part = source.select(names), target.select(names)
    r_hat = np.asarray(ratio, dtype=np.float64).reshape(-1)
    if r_hat.shape[0] != len(source):
        raise InputError(
            f"{r_hat.shape[0]} ratio values for {len(source)} source events; "
            "pass one ratio per source event"
        )
    source_weight = source_part.sample_weight
    new_weight = source_weight * r_hat
    target_weight = target_part.sample_weight
    results: dict = {"source_events": len(source), "target_events": len(target)}
    errors: dict = {}

    def normalization() -> dict:
        check = metrics.normalization_check(r_hat, source_weight)
        return {"normalization": check.value, "normalization_error": check.error}

    def weights() -> dict:
        return {
            "effective_sample_size": metrics.effective_sample_size(new_weight),
            "max_weight_share": metrics.max_weight_share(new_weight),
        }

    def negative() -> dict:
        events, weighted = metrics.negative_ratio_fraction(r_hat, source_weight)
        return {"negative_ratio_fraction": events, "negative_ratio_weighted_fraction": weighted}

    def mse() -> dict:
        truth_values = _truth_values(truth, source)
        return {"ratio_mse": metrics.ratio_mse(r_hat, truth_values, source_weight)}

    def wasserstein() -> dict:
        value = distances.sliced_wasserstein(
            source_part.x, new_weight, target_part.x, target_weight,
            n_projections=n_projections, seed=seed,
        )
        return {"sliced_wasserstein": value.value, "sliced_wasserstein_null_mean": value.null_mean}

    def classifier() -> dict:
        test = two_sample.classifier_two_sample_test(
            source_part.x, new_weight, target_part.x, target_weight, seed=seed
        )
        return {
            "classifier_auc": test.auc,
            "classifier_auc_null_std": test.null_std,
            "classifier_auc_z": test.z,
        }

    computations = [
        ("normalization", normalization),
        ("effective_sample_size", weights),
        ("negative_ratio_fraction", negative),
        ("sliced_wasserstein", wasserstein),
    ]
    if truth is not None:
        computations.append(("ratio_mse", mse))
    if classifier_test:
        computations.append(("classifier_auc", classifier))
    for key, compute in computations:
        _record(results, errors, key, compute)

    results["features"] = {}
    for i, name in enumerate(names):
        edges = feature_edges(target_part.x[:, i], bins=bins, percentiles=percentiles)
        feature, feature_errors = _feature_metrics(
            source_part.x[:, i], new_weight, source_weight, target_part.x[:, i], target_weight, edges
        )
        results["features"][name] = feature
        errors.update({f"{name}.{key}": message for key, message in feature_errors.items()})
    results["errors"] = errors
    return _with_missing_as_none(results, classifier_test, truth is not None)


_METRIC_KEYS = {
    "normalization": ("normalization", "normalization_error"),
    "effective_sample_size": ("effective_sample_size", "max_weight_share"),
    "negative_ratio_fraction": ("negative_ratio_fraction", "negative_ratio_weighted_fraction"),
    "sliced_wasserstein": ("sliced_wasserstein", "sliced_wasserstein_null_mean"),
    "ratio_mse": ("ratio_mse",),
    "classifier_auc": ("classifier_auc", "classifier_auc_null_std", "classifier_auc_z"),
}


def _with_missing_as_none(results: dict, classifier_test: bool, has_truth: bool) -> dict:
    for group, keys in _METRIC_KEYS.items():
        if group == "classifier_auc" and not classifier_test:
            continue
        if group == "ratio_mse" and not has_truth:
            continue
        for key in keys:
            results.setdefault(key, None)
    return results
