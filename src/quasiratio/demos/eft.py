"""EFT demo on the SMEFTsim VBF Higgs file: a full EFT point and the interference term.

The file contains 10,000 LO events of p p > h j j generated at the SM point,
each with MadGraph reweighting weights at several Wilson-coefficient
values. Two ratios are learned, each on the same events with two weights:

(a) ``cHW_0p2`` over ``SM``: the full weight at cHW = 0.2 over the SM
    weight, a positive ratio between about 0.7 and 1.4 per event.
(b) the interference term over ``SM``: the linear coefficient a of the
    per-event quadratic w(c) = w_SM + a c + b c^2, solved from the stored
    points c = 0, 0.1 and 0.2. About 47 % of the events have a < 0, so
    the numerator is a quasi-density and the ratio changes sign across
    phase space.

Features: the default LHE features that vary in this file (leading and
second parton pT and eta, Higgs pT and eta, jj_mass, jj_delta_eta,
sys_mass, sys_rapidity) plus jj_delta_phi, the azimuthal angle between
the two partons. Together they fix the event kinematics up to a rotation
about the beam axis, so the per-event weight ratio is a function of them
apart from the parton flavours, which they leave open.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from quasiratio.demos import common
from quasiratio.demos.weight_ratio import (
    add_delta_phi,
    fit_weight_ratio,
    part_result,
    read_events_and_weights,
)

logger = logging.getLogger(__name__)

EFT_FILE = "event2vec-smeftsim_VBFH-1.lhe.gz"
OPERATOR = "cHW"
POINT = "cHW_0p2"

#: Features of the demo; jj_delta_phi is added from j1_phi and j2_phi.
FEATURES = (
    "j1_pt", "j1_eta", "j2_pt", "j2_eta", "h1_pt", "h1_eta",
    "jj_mass", "jj_delta_eta", "jj_delta_phi", "sys_mass", "sys_rapidity",
)

#: |normalised true ratio| above which the interference sign is counted as clear.
# The normalised ratio is (a / w_SM) / (sum a / sum w_SM), so 1 is the
# average interference-to-SM ratio. Most events lie between -16 and +17.
CLEAR_RATIO = 1.0

#: Features plotted in the quick run, which only checks that the report is written.
QUICK_REPORT_FEATURES = ("h1_pt", "jj_delta_phi")

#: Events used in the quick run.
QUICK_EVENTS = 3_000


def load_events(*, quick: bool = False, seed: int = 0):
    """Return the events with the demo features and the per-event weights by name."""
    path = common.data_file(EFT_FILE)
    read = [name for name in FEATURES if name != "jj_delta_phi"] + ["j1_phi", "j2_phi"]
    events, weights = read_events_and_weights(path, read)
    events = add_delta_phi(events).select(list(FEATURES))
    if quick:
        index = np.sort(np.random.default_rng(seed).permutation(len(events))[:QUICK_EVENTS])
        events = events.take(index)
        weights = {name: values[index] for name, values in weights.items()}
    return events, weights


def interference_weight(weights: dict):
    """Return the per-event linear coefficient a of cHW, from the 0, 0.1 and 0.2 points."""
    from quasiratio.morphing import Morphing

    morphing = Morphing.from_weights(weights, operators=[OPERATOR], interactions=False)
    return morphing.linear(OPERATOR)


def run_demo(output_dir: Path, *, quick: bool = False, seed: int = 0, progress: bool = False) -> dict:
    """Learn cHW_0p2 / SM and interference / SM and check both per event."""
    start = time.perf_counter()
    events, weights = load_events(quick=quick, seed=seed)
    w_sm = weights["SM"]
    a = interference_weight(weights)
    logger.info("EFT: %d events, %.1f %% with negative interference weight",
                len(events), 100 * float((a < 0).mean()))

    config = common.training_config(
        quick=quick, seed=seed, progress=progress, epochs=100, patience=15, batch_size=256,
        learning_rate=3e-3,
    )
    report_options = {"classifier_test": False, "bins": 30}
    if quick:
        report_options["features"] = list(QUICK_REPORT_FEATURES)
    options = {"config": config, "seed": seed, "regression_reference": not quick,
               "report_options": report_options}
    point = fit_weight_ratio(POINT, events, weights[POINT], w_sm, **options)
    interference = fit_weight_ratio("interference", events, a, w_sm, clear_ratio=CLEAR_RATIO, **options)

    result = {
        "demo": "eft",
        "quick": quick,
        "seed": seed,
        "file": EFT_FILE,
        "events": len(events),
        "features": list(FEATURES),
        "interference_negative_fraction": float((a < 0).mean()),
        "interference_to_sm_total": float(a.sum() / w_sm.sum()),
        POINT: part_result(point),
        "interference": part_result(interference),
    }
    parts = {
        POINT: (point.estimator, point.report),
        "interference": (interference.estimator, interference.report),
    }
    return common.write_demo_folder(
        output_dir, parts=parts, result=result, start=start, summarize=_summary
    )


def _summary(result: dict) -> dict:
    point, interference = result[POINT], result["interference"]
    summary = {
        f"{POINT}/SM method": point["method"]["method"],
        f"{POINT}/SM per-event correlation": point["per_event"]["correlation"],
        f"{POINT}/SM relative MSE": point["per_event"]["relative_mse"],
        "interference/SM method": interference["method"]["method"],
        "interference/SM per-event correlation": interference["per_event"]["correlation"],
        "interference/SM relative MSE": interference["per_event"]["relative_mse"],
        "interference/SM correct sign (all)": interference["per_event"]["sign_agreement"],
        f"interference/SM correct sign (|r| > {CLEAR_RATIO})":
            interference["per_event"]["sign_agreement_far"],
        "interference/SM negative predictions": interference["per_event"]["predicted_negative_fraction"],
    }
    reference = interference["regression_reference"]
    if reference is not None:
        summary["interference/SM correlation of a regression on the truth"] = reference["correlation"]
    summary["wall time [s]"] = result["wall_time_s"]
    return summary
