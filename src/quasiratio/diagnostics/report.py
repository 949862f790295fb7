"""Closure report: metrics, negative regions and plots written to one folder.

The folder contains ``metrics.json``, one ``feature_<name>.png`` per feature,
``ratio_distribution.png``, ``loss_curves.png`` when a training history
is given, and a summary page as ``summary.md`` and ``index.html``. It is
written through :func:`quasiratio._atomic.atomic_directory`, so an
interrupted run leaves the previous report or none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from quasiratio._atomic import atomic_directory
from quasiratio.diagnostics.closure import closure_metrics
from quasiratio.diagnostics.histograms import feature_edges, weighted_histogram
from quasiratio.diagnostics.negative_regions import find_negative_regions
from quasiratio.errors import InputError
from quasiratio.events import EventSample

#: File that every report folder contains; a non-empty folder without it is not replaced.
REPORT_MARKER = "metrics.json"


def evaluation_summary(
    source: EventSample,
    target: EventSample,
    ratio,
    *,
    truth=None,
    features: Sequence[str] | None = None,
    **options,
) -> dict:
    """Return :func:`closure_metrics` plus ``"negative_regions"``, a list of region dicts.

    ``options`` go to :func:`closure_metrics`. The regions are searched in
    all features of ``source``, not only in ``features``, because a
    negative region can need a feature that is not histogrammed.
    """
    summary = closure_metrics(source, target, ratio, truth=truth, features=features, **options)
    regions = find_negative_regions(source.x, ratio, source.sample_weight, source.feature_names)
    summary["negative_regions"] = [region.to_dict() for region in regions]
    return summary


def _curves_of(history) -> tuple[list[float], list[float]] | None:
    if isinstance(history, dict):
        train, validation = history.get("train_loss"), history.get("validation_loss")
    else:
        train = getattr(history, "train_loss", None)
        validation = getattr(history, "validation_loss", None)
    if not train:
        return None
    return list(train), list(validation or [])


def _loss_curves(history) -> dict[str, tuple[list[float], list[float]]]:
    """Return network name -> (training, validation) losses from any history form.

    Accepted forms: one history (an object or dict with ``train_loss`` and
    ``validation_loss``), or a dict of such histories by network name, as
    estimators with several networks store them.
    """
    if history is None:
        return {}
    single = _curves_of(history)
    if single is not None:
        return {"network": single}
    if not isinstance(history, dict):
        return {}
    curves = {str(name): _curves_of(item) for name, item in history.items()}
    return {name: curve for name, curve in curves.items() if curve is not None}


def _file_name(feature: str) -> str:
    return "feature_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", feature) + ".png"


def _total(weight: np.ndarray, what: str) -> float:
    total = float(np.sum(weight))
    if not total > 0:
        raise InputError(
            f"the {what} weights sum to {total:.6g}, so its histograms cannot be "
            "normalised for plotting; use a sample with a positive total weight"
        )
    return total


def _feature_figure(name: str, source: EventSample, target: EventSample, ratio, bins: int):
    from quasiratio.plotting import COLORS, comparison_figure

    column_source = source.x[:, source.feature_names.index(name)]
    column_target = target.x[:, target.feature_names.index(name)]
    edges = feature_edges(column_target, bins=bins)
    weight = source.sample_weight
    # Source and reweighted source share the source total, so a ratio that
    # does not integrate to 1 shows up as an offset from the target.
    source_scale = 1.0 / _total(weight, "source")
    target_scale = 1.0 / _total(target.sample_weight, "target")
    histograms = []
    for label, w, color in (
        ("source", weight, COLORS["source"]),
        (r"source $\times\ \hat r$", weight * ratio, COLORS["reweighted"]),
    ):
        h = weighted_histogram(column_source, w, edges, name=name) * source_scale
        histograms.append((label, h.values(), h.variances(), color))
    h = weighted_histogram(column_target, target.sample_weight, edges, name=name) * target_scale
    histograms.append(("target", h.values(), h.variances(), COLORS["target"]))
    return comparison_figure(histograms, (h.values(), h.variances()), edges, xlabel=name)


def _write_figures(folder: Path, source, target, ratio, names, truth_values, history, bins):
    from quasiratio.plotting import hep_style, loss_figure, ratio_distribution_figure

    plots = []
    with hep_style():
        for name in names:
            _feature_figure(name, source, target, ratio, bins).savefig(folder / _file_name(name))
            plots.append(_file_name(name))
        ratio_distribution_figure(ratio, truth_values).savefig(folder / "ratio_distribution.png")
        plots.append("ratio_distribution.png")
        curves = _loss_curves(history)
        if curves:
            loss_figure(curves).savefig(folder / "loss_curves.png")
            plots.append("loss_curves.png")
    return plots


def write_report(
    output_dir,
    source: EventSample,
    target: EventSample,
    ratio,
    *,
    history=None,
    metadata: dict | None = None,
    truth=None,
    features: Sequence[str] | None = None,
    bins: int = 50,
    summary: dict | None = None,
    **options,
) -> dict:
    """Write the closure report folder and return what ``metrics.json`` holds.

    ``ratio`` is r_hat on each source event and ``truth`` the true ratio
    (array or function of x) when known. ``history`` is a training history
    with ``train_loss`` and ``validation_loss`` (object or dict), or a
    dict of them by network name. A
    ``summary`` from :func:`evaluation_summary` is reused instead of
    computed again. ``options`` go to :func:`closure_metrics`.
    """
    from quasiratio.diagnostics.summary_page import write_summary_pages

    ratio = np.asarray(ratio, dtype=np.float64).reshape(-1)
    if summary is None:
        summary = evaluation_summary(
            source, target, ratio, truth=truth, features=features, bins=bins, **options
        )
    names = list(summary["features"])
    truth_values = None
    if truth is not None:
        truth_values = np.asarray(truth(source.x) if callable(truth) else truth, dtype=np.float64)
    content = {"metadata": dict(metadata or {}), **summary}
    with atomic_directory(output_dir, marker=REPORT_MARKER) as folder:
        content["plots"] = _write_figures(
            folder, source, target, ratio, names, truth_values, history, bins
        )
        with open(folder / "metrics.json", "w", encoding="utf-8") as stream:
            json.dump(content, stream, indent=2)
        write_summary_pages(folder, content)
    return content
