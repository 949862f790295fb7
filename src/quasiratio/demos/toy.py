"""Demo on the 2-D signed Gaussian-mixture toy, whose exact ratio is known.

Source p0 = (4 N_2.5 - N_2.3) / 3 and target q1 = 2 N_2.0 - N_1.2 (see
:mod:`quasiratio.toys.gaussian_mixture`): both samples carry weights of
+1 and -1, and the target density is negative for radius below about
1.22, so the ratio is negative there. The learned ratio is compared with
the exact one on held-out source events, and the held-out source is
reweighted to the held-out target for the closure report.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from quasiratio.demos import common
from quasiratio.demos.checks import per_event_agreement

logger = logging.getLogger(__name__)

#: Events per sample (source and target) in the full and the quick run.
EVENTS = 40_000
QUICK_EVENTS = 6_000

#: Fraction of each sample held out for the checks.
TEST_FRACTION = 0.3

#: Estimator method; "auto" lets the library choose from the weights.
METHOD = "auto"

#: |true ratio| above which a sign is counted as clear.
CLEAR_RATIO = 0.2


def run_demo(output_dir: Path, *, quick: bool = False, seed: int = 0, progress: bool = False) -> dict:
    """Fit the toy ratio, check it against the exact one and write the report."""
    from quasiratio.toys import gaussian_mixture

    start = time.perf_counter()
    n = QUICK_EVENTS if quick else EVENTS
    source, target = gaussian_mixture.make_samples(n, n, seed=seed)
    source_train, source_test = source.shuffled_split([1 - TEST_FRACTION], seed=seed)
    target_train, target_test = target.shuffled_split([1 - TEST_FRACTION], seed=seed + 1)
    logger.info("toy: %d source and %d target events, %.0f %% held out", n, n, 100 * TEST_FRACTION)

    config = common.training_config(
        quick=quick, seed=seed, progress=progress, epochs=60, patience=10, batch_size=256
    )
    estimator, choice = common.fit(
        METHOD, target_train, source_train, config=config, hidden=(64, 64, 64)
    )
    ratio = estimator.ratio(source_test.x)
    truth = gaussian_mixture.true_ratio(source_test.x)
    agreement = per_event_agreement(ratio, truth, far_from_zero=CLEAR_RATIO)

    result = {
        "demo": "gaussian-mixture",
        "quick": quick,
        "seed": seed,
        "events_per_sample": n,
        "method": choice,
        "per_event": agreement,
    }
    report = {
        "source": source_test,
        "target": target_test,
        "ratio": ratio,
        "truth": truth,
        "history": common.training_history(estimator),
        "metadata": {"demo": "gaussian-mixture", "method": choice},
        "classifier_test": not quick,
    }
    return common.write_demo_folder(
        output_dir, parts={"": (estimator, report)}, result=result, start=start,
        summarize=_summary,
    )


def _summary(result: dict) -> dict:
    agreement = result["per_event"]
    return {
        "method": result["method"]["method"],
        "correlation with exact ratio": agreement["correlation"],
        "relative MSE": agreement["relative_mse"],
        f"correct sign where |r| > {CLEAR_RATIO}": agreement["sign_agreement_far"],
        "negative predictions": agreement["predicted_negative_fraction"],
        "true negative fraction": agreement["true_negative_fraction"],
        "classifier AUC (0.5 = closure)": result["closure"].get("classifier_auc"),
        "wall time [s]": result["wall_time_s"],
    }
