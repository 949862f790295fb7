"""Plumbing shared by the demos: training options, fitting, and the output folder.

A demo folder contains ``demo.json`` (the figures returned by ``run_demo``),
``model/`` (the fitted estimator, loadable with ``quasiratio.load``) and
``report/`` (the closure report of :func:`quasiratio.diagnostics.write_report`),
or one such ``model/`` and ``report/`` pair per part of a demo with several.
The folder is written through :func:`quasiratio._atomic.atomic_directory`,
so an interrupted demo leaves the previous folder or none.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from quasiratio._atomic import atomic_directory
from quasiratio.demos.checks import write_json

logger = logging.getLogger(__name__)

#: Folder of the shipped event files: data/ of the repository checkout.
DATA_DIR = Path(__file__).resolve().parents[3] / "data"

#: Environment variable that points the demos at another copy of that folder.
DATA_DIR_VARIABLE = "QUASIRATIO_DATA_DIR"


def data_file(name: str) -> Path:
    """Return the path of a shipped event file, with a clear error when it is missing."""
    from quasiratio.errors import FileFormatError

    folder = Path(os.environ.get(DATA_DIR_VARIABLE) or DATA_DIR)
    path = folder / name
    if not path.is_file():
        raise FileFormatError(
            f"shipped event file {path} not found; the demos read the data/ folder of a "
            f"quasiratio checkout, so install from a clone or set {DATA_DIR_VARIABLE} "
            "to that folder"
        )
    return path


def training_config(*, quick: bool, seed: int, progress: bool, epochs: int, **options):
    """Return the TrainingConfig of a demo; ``quick`` cuts training to 3 epochs.

    The quick setting is for tests and a first look at the output only.
    """
    from quasiratio.training import TrainingConfig

    if quick:
        epochs = min(epochs, 3)
        options.setdefault("patience", None)
    return TrainingConfig(epochs=epochs, seed=seed, progress=progress, num_threads=1, **options)


def fit(method: str, numerator, denominator, *, config, hidden, **options):
    """Fit an estimator by method name and return it with how it was chosen.

    Warnings raised during the fit (for example that CARL cannot
    represent negative ratios) are logged and listed in the choice, so
    the demo report shows them.
    """
    from quasiratio.estimators import make_estimator

    estimator = make_estimator(method, config=config, hidden=hidden, **options)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(numerator, denominator)
    elapsed = time.perf_counter() - start
    for warning in caught:
        logger.warning("%s: %s", warning.category.__name__, warning.message)
    choice = method_choice(estimator)
    choice["fit_time_s"] = elapsed
    choice["fit_warnings"] = [str(w.message) for w in caught]
    logger.info("fitted %s in %.1f s", choice["method"], elapsed)
    return estimator, choice


def method_choice(estimator) -> dict:
    """Return the fitted method and, for ``auto``, the method it chose and why."""
    choice = {"requested": estimator.method, "method": estimator.method, "reason": None}
    chosen = getattr(estimator, "chosen_method_", None)
    if chosen is not None:
        choice["method"] = chosen
        choice["reason"] = getattr(estimator, "reason_", None)
    return choice


def training_history(estimator):
    """Return the history of the network to plot: the only one, or the first of several."""
    inner = getattr(estimator, "estimator_", estimator)
    histories = inner._histories()
    return next(iter(histories.values()), None)


#: File that every folder written by :func:`write_demo_folder` contains; a non-empty
#: folder without it is not replaced.
DEMO_MARKER = "demo.json"


def write_demo_folder(
    output_dir: str | Path,
    *,
    parts: dict[str, tuple],
    result: dict,
    start: float,
    summarize: Callable[[dict], dict],
) -> dict:
    """Write models, closure reports and ``demo.json`` to ``output_dir`` atomically.

    ``parts`` maps a part name to ``(estimator, report)``, where
    ``report`` contains the arguments of :func:`quasiratio.diagnostics.write_report`
    (source, target, ratio and options). A part named ``""`` is written to
    ``model/`` and ``report/`` at the top; any other to ``<name>/model``
    and ``<name>/report``. The reports' headline metrics go to
    ``result["closure"]`` (by part name when there are several), the time
    since ``start`` (a ``time.perf_counter`` value) to
    ``result["wall_time_s"]``, and ``summarize(result)`` to
    ``result["summary"]``. Returns ``result``.
    """
    from quasiratio.diagnostics import write_report

    output_dir = Path(output_dir)
    closure = {}
    with atomic_directory(output_dir, marker=DEMO_MARKER) as folder:
        for name, (estimator, report) in parts.items():
            part_folder = folder / name if name else folder
            estimator.save(part_folder / "model")
            closure[name] = _closure_headline(write_report(part_folder / "report", **report))
        result["closure"] = closure[""] if list(closure) == [""] else closure
        result["output"] = str(output_dir)
        result["wall_time_s"] = time.perf_counter() - start
        result["summary"] = summarize(result)
        write_json(folder / DEMO_MARKER, result)
    logger.info("wrote the demo folder %s after %.1f s", output_dir, result["wall_time_s"])
    return result


def _closure_headline(metrics: dict) -> dict:
    """Return the closure metrics that a demo summary quotes."""
    keys = (
        "normalization", "normalization_error", "effective_sample_size",
        "negative_ratio_fraction", "classifier_auc", "classifier_auc_null_std",
        "classifier_auc_z", "sliced_wasserstein", "sliced_wasserstein_null_mean", "ratio_mse",
    )
    headline = {key: metrics.get(key) for key in keys if key in metrics}
    headline["features"] = {
        name: {
            "chi2_per_dof": values.get("chi2_per_dof"),
            "chi2_per_dof_null_std": values.get("chi2_per_dof_null_std"),
            "chi2_per_dof_before": values.get("chi2_per_dof_before"),
        }
        for name, values in metrics.get("features", {}).items()
    }
    return headline
