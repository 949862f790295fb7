"""Default demo: reweight a LO MLM-merged Z sample to the NLO FxFx-merged one.

Numerator (target): MadGraph5_aMC@NLO 2.2.1 p p > l+ l- (+1 jet) at NLO
with FxFx merging, 10,000 events with weights +-5394.43, 18.5 % of them
negative, kept as signed weights. Denominator (source): the same process
at LO, MLM-merged with 0, 1 and 2 extra partons, 10,000 events of equal
positive weight. The ratio is learned from the default LHE features with
the method the library chooses, and 30 % of each sample is held out: the
held-out LO events, reweighted by w r_hat(x), are compared with the
held-out NLO events.

The sharpest check is the fraction of events with 0, 1 and 2 extra
partons. Over the whole files the signed NLO fractions are 0.608, 0.371
and 0.021, while the LO ones are 0.551, 0.286 and 0.163. Dropping the
negative NLO weights would give 0.500, 0.396, 0.104 and taking |w| would
give 0.432, 0.412, 0.156, so only the signed weights describe NLO.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from quasiratio.demos import common
from quasiratio.demos.checks import category_fractions, compare_fractions

logger = logging.getLogger(__name__)

NUMERATOR_FILE = "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
DENOMINATOR_FILE = "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"

#: Fraction of each sample held out for the closure checks.
TEST_FRACTION = 0.3

#: Estimator method; "auto" lets the library choose from the weights.
METHOD = "auto"

#: Hidden-layer widths. With the demo's split, 32 x 32 gave RoSMM 2-parton
#: fractions of 0.032-0.045 for seeds 0-2, and 64 x 64 x 64 gave 0.06-0.15.
#: The training FxFx fraction is 0.026.
HIDDEN = (32, 32)

#: Features plotted and scored in the closure report.
REPORT_FEATURES = ("ll_mass", "ll_pt", "j1_pt", "j1_eta", "n_partons", "l1_pt", "jj_mass")

#: Histogram bins per feature in the report. With about 3,000 held-out NLO
#: events of which 18 % are negative, 50 bins leave many bins near zero.
REPORT_BINS = 20

#: Numbers of extra partons whose fractions are compared.
PARTON_COUNTS = (0, 1, 2)

#: Events used per sample in the quick run.
QUICK_EVENTS = 4_000


def load_samples(*, quick: bool = False, seed: int = 0):
    """Read the NLO (numerator) and LO (denominator) samples with the default features."""
    from quasiratio.io import read_events

    numerator = read_events(common.data_file(NUMERATOR_FILE))
    denominator = read_events(common.data_file(DENOMINATOR_FILE))
    if quick:
        numerator = numerator.shuffled_split([QUICK_EVENTS / len(numerator)], seed=seed)[0]
        denominator = denominator.shuffled_split([QUICK_EVENTS / len(denominator)], seed=seed)[0]
    return numerator, denominator


def _partons(sample):
    return sample.x[:, sample.feature_names.index("n_partons")]


def parton_fractions(reweighted, ratio, target, training_target=None) -> list[dict]:
    """Compare the fractions of 0, 1 and 2 extra partons: reweighted source vs target.

    Each row has ``fraction_a`` (reweighted source), ``fraction_b``
    (target), their combined standard deviation from sum w^2 and the pull.
    With ``training_target``, the deviation of its fractions is added: the
    learned ratio reproduces the training fractions at best, so their
    fluctuation enters the reweighted prediction.
    """
    extra = None
    if training_target is not None:
        _, extra = category_fractions(
            _partons(training_target), training_target.sample_weight, PARTON_COUNTS
        )
    return compare_fractions(
        _partons(reweighted), reweighted.sample_weight * ratio,
        _partons(target), target.sample_weight, PARTON_COUNTS, extra_std=extra,
    )


def policy_fractions(target) -> dict:
    """Return the target's parton-count fractions under the keep, drop and abs policies."""
    column = _partons(target)
    w = target.sample_weight
    variants = {"keep": w, "drop": w * (w > 0), "abs": abs(w)}
    table = {}
    for policy, weight in variants.items():
        fractions, deviations = category_fractions(column, weight, PARTON_COUNTS)
        table[policy] = {"fractions": fractions.tolist(), "std": deviations.tolist()}
    return table


def run_demo(output_dir: Path, *, quick: bool = False, seed: int = 0, progress: bool = False) -> dict:
    """Learn NLO / LO, reweight the held-out LO events and write the closure report."""
    start = time.perf_counter()
    numerator, denominator = load_samples(quick=quick, seed=seed)
    num_train, num_test = numerator.shuffled_split([1 - TEST_FRACTION], seed=seed)
    den_train, den_test = denominator.shuffled_split([1 - TEST_FRACTION], seed=seed + 1)
    logger.info(
        "NLO FxFx %d events (%.1f %% negative), LO MLM %d events; %.0f %% held out",
        len(numerator), 100 * numerator.summary().negative_fraction, len(denominator),
        100 * TEST_FRACTION,
    )

    config = common.training_config(
        quick=quick, seed=seed, progress=progress, epochs=40, patience=10, batch_size=256
    )
    estimator, choice = common.fit(METHOD, num_train, den_train, config=config, hidden=HIDDEN)
    ratio = estimator.ratio(den_test)

    result = {
        "demo": "nlo",
        "quick": quick,
        "seed": seed,
        "numerator": {"file": NUMERATOR_FILE, **numerator.summary().to_dict()},
        "denominator": {"file": DENOMINATOR_FILE, **denominator.summary().to_dict()},
        "held_out_events": {"numerator": len(num_test), "denominator": len(den_test)},
        "features": list(numerator.feature_names),
        "method": choice,
        "parton_fractions": parton_fractions(den_test, ratio, num_test, num_train),
        "target_fractions_by_policy": policy_fractions(num_test),
    }
    report = {
        "source": den_test,
        "target": num_test,
        "ratio": ratio,
        "features": list(REPORT_FEATURES),
        "bins": REPORT_BINS,
        "history": common.training_history(estimator),
        "metadata": {"demo": "nlo", "method": choice, "parton_fractions": result["parton_fractions"]},
        "classifier_test": not quick,
    }
    return common.write_demo_folder(
        output_dir, parts={"": (estimator, report)}, result=result, start=start,
        summarize=_summary,
    )


def _summary(result: dict) -> dict:
    summary = {
        "method": result["method"]["method"],
        "why": result["method"]["reason"],
    }
    for row in result["parton_fractions"]:
        k = int(row["category"])
        summary[f"{k}-parton fraction, LO x r vs NLO"] = (
            f"{row['fraction_a']:.4f} vs {row['fraction_b']:.4f} "
            f"+- {row['combined_std']:.4f} (pull {row['pull']:+.2f})"
        )
    features = result["closure"]["features"]
    for name in ("ll_mass", "ll_pt", "j1_pt", "j1_eta"):
        values = features.get(name, {})
        if values.get("chi2_per_dof") is None:
            continue
        summary[f"chi2/dof {name} (before)"] = (
            f"{values['chi2_per_dof']:.2f} +- {values['chi2_per_dof_null_std']:.2f} "
            f"({values['chi2_per_dof_before']:.2f})"
        )
    summary["classifier AUC (0.5 = closure)"] = result["closure"].get("classifier_auc")
    summary["wall time [s]"] = result["wall_time_s"]
    return summary
