"""Closure diagnostics: weighted histograms, metrics, negative regions and reports."""

from quasiratio.diagnostics.closure import closure_metrics
from quasiratio.diagnostics.distances import (
    chi_square_divergence,
    sliced_wasserstein,
    weighted_chi_square,
)
from quasiratio.diagnostics.histograms import feature_edges, percentile_edges, weighted_histogram
from quasiratio.diagnostics.metrics import (
    effective_sample_size,
    max_weight_share,
    negative_ratio_fraction,
    normalization_check,
    ratio_mse,
)
from quasiratio.diagnostics.negative_regions import NegativeRegion, find_negative_regions
from quasiratio.diagnostics.report import evaluation_summary, write_report
from quasiratio.diagnostics.two_sample import classifier_two_sample_test, weighted_auc

__all__ = [
    "NegativeRegion",
    "chi_square_divergence",
    "classifier_two_sample_test",
    "closure_metrics",
    "effective_sample_size",
    "evaluation_summary",
    "feature_edges",
    "find_negative_regions",
    "max_weight_share",
    "negative_ratio_fraction",
    "normalization_check",
    "percentile_edges",
    "ratio_mse",
    "sliced_wasserstein",
    "weighted_auc",
    "weighted_chi_square",
    "weighted_histogram",
    "write_report",
]
