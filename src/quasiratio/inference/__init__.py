"""Inference with an interfering signal: model, likelihood, scans and intervals."""

from quasiratio.inference.binned import BinnedTemplateFit, histogram_template
from quasiratio.inference.intervals import (
    DEFAULT_LEVELS,
    Interval,
    coverage,
    wilks_interval,
    wilks_threshold,
)
from quasiratio.inference.likelihood import Scan, UnbinnedLikelihood
from quasiratio.inference.model import EventRatios, InterferenceModel, Yields
from quasiratio.inference.neyman import NeymanBelt, neyman_belt, neyman_interval

__all__ = [
    "DEFAULT_LEVELS",
    "BinnedTemplateFit",
    "EventRatios",
    "InterferenceModel",
    "Interval",
    "NeymanBelt",
    "Scan",
    "UnbinnedLikelihood",
    "Yields",
    "coverage",
    "histogram_template",
    "neyman_belt",
    "neyman_interval",
    "wilks_interval",
    "wilks_threshold",
]
