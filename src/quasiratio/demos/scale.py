"""Scale-variation demo on the MG5_aMC 3.5.8 LO dijet file.

The file contains 1,000 events of p p > j j at 13 TeV with 145 named
weights. The nominal weight is id ``45`` (the same for every event) and
id ``24`` recomputes each event with the dynamic scale choice sqrt(s)
(the partonic centre-of-mass energy) in place of the default one. Their
per-event ratio lies between about 0.21 and 1.14, so the learned ratio
of weight 24 over weight 45, trained on the same events with the two
weights, is compared with it event by event on held-out events.

Features: leading-parton pT and eta, second-parton eta, jj_mass and
sys_rapidity. At LO 2 -> 2 the partons are back to back in the
transverse plane, so these fix the kinematics up to a rotation about
the beam axis. The parton flavours, which set the PDFs entering the
weight ratio, are not among them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from quasiratio.demos import common
from quasiratio.demos.weight_ratio import fit_weight_ratio, part_result, read_events_and_weights

logger = logging.getLogger(__name__)

DIJET_FILE = "pylhe-testfile-madgraph5-3.5.8-pp_to_jj.lhe.gz"
NOMINAL = "45"
VARIATION = "24"
FEATURES = ("j1_pt", "j1_eta", "j2_eta", "jj_mass", "sys_rapidity")


def run_demo(output_dir: Path, *, quick: bool = False, seed: int = 0, progress: bool = False) -> dict:
    """Learn weight 24 / weight 45 and check it per event on held-out events."""
    start = time.perf_counter()
    events, weights = read_events_and_weights(common.data_file(DIJET_FILE), FEATURES)
    logger.info("dijet: %d events, weight %s over nominal %s", len(events), VARIATION, NOMINAL)

    config = common.training_config(
        quick=quick, seed=seed, progress=progress, epochs=200, patience=20, batch_size=64,
        learning_rate=3e-3,
    )
    part = fit_weight_ratio(
        f"{VARIATION}/{NOMINAL}", events, weights[VARIATION], weights[NOMINAL],
        config=config, seed=seed, hidden=(32, 32), regression_reference=not quick,
        report_options={"classifier_test": False, "bins": 15},
    )
    result = {
        "demo": "scale",
        "quick": quick,
        "seed": seed,
        "file": DIJET_FILE,
        "events": len(events),
        "numerator_weight": VARIATION,
        "denominator_weight": NOMINAL,
        "features": list(FEATURES),
        **part_result(part),
    }
    return common.write_demo_folder(
        output_dir, parts={"": (part.estimator, part.report)}, result=result, start=start,
        summarize=_summary,
    )


def _summary(result: dict) -> dict:
    per_event = result["per_event"]
    summary = {
        "method": result["method"]["method"],
        "per-event correlation": per_event["correlation"],
        "relative MSE": per_event["relative_mse"],
    }
    reference = result["regression_reference"]
    if reference is not None:
        summary["correlation of a regression on the truth"] = reference["correlation"]
    summary["wall time [s]"] = result["wall_time_s"]
    return summary
