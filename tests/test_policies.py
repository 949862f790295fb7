"""Negative-weight policies and weight use on the shipped FxFx (NLO) and MLM (LO) Z files.

Signed FxFx fractions of events with 0, 1 and 2 extra partons over the
whole file: 0.608, 0.371, 0.021 (every weight is +-5394.43, 1852 of 10,000
negative). Dropping the negative events gives 0.500, 0.396, 0.104 and
|w| gives 0.432, 0.412, 0.156; the MLM file has 0.551, 0.286, 0.163.
"""

import warnings

import numpy as np
import pytest

from quasiratio.demos.checks import category_fractions
from quasiratio.demos.common import data_file
from quasiratio.errors import NegativeWeightWarning
from quasiratio.estimators import make_estimator
from quasiratio.events import apply_negative_weight_policy
from quasiratio.io import read_events
from quasiratio.training import TrainingConfig

FXFX = "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
MLM = "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
FEATURES = ["n_partons", "ll_pt", "ll_mass", "j1_pt", "j1_eta"]
PARTONS = (0, 1, 2)


@pytest.fixture(scope="module")
def samples():
    """Training and held-out parts of FxFx (numerator) and MLM (denominator)."""
    fxfx = read_events(data_file(FXFX), features=FEATURES)
    mlm = read_events(data_file(MLM), features=FEATURES)
    fxfx_train, fxfx_test = fxfx.shuffled_split([0.7], seed=0)
    mlm_train, mlm_test = mlm.shuffled_split([0.7], seed=1)
    return {"fxfx_train": fxfx_train, "fxfx_test": fxfx_test,
            "mlm_train": mlm_train, "mlm_test": mlm_test}


def _config(seed=0):
    return TrainingConfig(epochs=10, batch_size=256, validation_fraction=0.0, patience=None,
                          seed=seed, progress=False)


def _fractions(sample, weight):
    return category_fractions(sample.x[:, 0], weight, PARTONS)


@pytest.fixture(scope="module")
def reweighted(samples):
    """Held-out MLM parton fractions after REVERT reweighting, per policy."""
    results = {}
    for policy in ("keep", "drop", "abs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NegativeWeightWarning)
            numerator = apply_negative_weight_policy(samples["fxfx_train"], policy)
        estimator = make_estimator("revert", hidden=(32, 32), config=_config())
        estimator.fit(numerator, samples["mlm_train"])
        mlm_test = samples["mlm_test"]
        results[policy] = _fractions(mlm_test, mlm_test.sample_weight * estimator.ratio(mlm_test))
    return results


def _combined_std(samples, reweighted_std):
    """Standard deviation of (reweighted MLM fraction - held-out FxFx fraction).

    Three independent parts, each from the delta method with sum w^2
    (see category_fractions): the held-out FxFx fraction, the reweighted
    held-out MLM fraction, and the training FxFx fraction, which the
    learned ratio reproduces at best and so carries into the prediction.
    """
    _, test_std = _fractions(samples["fxfx_test"], samples["fxfx_test"].sample_weight)
    _, train_std = _fractions(samples["fxfx_train"], samples["fxfx_train"].sample_weight)
    return np.sqrt(test_std**2 + reweighted_std**2 + train_std**2)


def test_signed_weights_reproduce_fractions(samples, reweighted):
    target, _ = _fractions(samples["fxfx_test"], samples["fxfx_test"].sample_weight)
    fractions, std = reweighted["keep"]
    pulls = (fractions - target) / _combined_std(samples, std)
    for k in PARTONS:
        assert abs(pulls[k]) < 3, f"{k}-parton pull {pulls[k]:.2f}"


@pytest.mark.parametrize("policy", ["drop", "abs"])
def test_policy_fails_closure(policy, samples, reweighted):
    target, _ = _fractions(samples["fxfx_test"], samples["fxfx_test"].sample_weight)
    fractions, std = reweighted[policy]
    pull = (fractions[2] - target[2]) / _combined_std(samples, std)[2]
    assert pull > 3


@pytest.mark.parametrize("policy, factor", [("drop", 3.0), ("abs", 4.0)])
def test_policy_moves_two_parton_fraction(policy, factor, reweighted):
    # Whole-file truth: keep 0.021, drop 0.104 (x5), abs 0.156 (x7).
    assert reweighted[policy][0][2] > factor * reweighted["keep"][0][2]


@pytest.mark.parametrize("policy", ["drop", "abs"])
def test_policy_warns(policy, samples):
    with pytest.warns(NegativeWeightWarning, match=f"policy '{policy}'"):
        changed = apply_negative_weight_policy(samples["fxfx_train"], policy)
    assert np.all(changed.sample_weight >= 0)


def test_reader_drop_policy_warns():
    with pytest.warns(NegativeWeightWarning, match="18.5%"):
        fxfx = read_events(data_file(FXFX), features=["n_partons"], negative_weights="drop")
    assert len(fxfx) == 8148


def test_keep_policy_is_silent(samples):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeWeightWarning)
        kept = apply_negative_weight_policy(samples["fxfx_train"], "keep")
    assert kept is samples["fxfx_train"]


def test_denominator_weights_are_used(samples):
    """FxFx as weighted denominator vs the same events unweighted, through fit's keywords.

    The MLM/FxFx ratio on 2-parton events is about 0.163 / 0.021 = 7.8
    with the signed FxFx weights and 0.163 / 0.156 = 1.05 without them.
    """
    mlm, fxfx = samples["mlm_train"], samples["fxfx_train"]
    ratios = {}
    for label, weight in (("weighted", fxfx.sample_weight), ("unweighted", None)):
        estimator = make_estimator("carl", hidden=(32, 32), config=_config())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NegativeWeightWarning)
            estimator.fit(mlm.x, fxfx.x, denominator_weight=weight)
        two_partons = samples["mlm_test"].x[samples["mlm_test"].x[:, 0] == 2]
        ratios[label] = float(np.mean(estimator.ratio(two_partons)))

    assert ratios["weighted"] > 4.0
    assert ratios["unweighted"] < 2.0
