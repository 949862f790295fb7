"""RoSMM: the stable combination, the sub-classifier forms and the toys with known truth."""

import json

import numpy as np
import pytest
import torch

from quasiratio.errors import InputError
from quasiratio.estimators import load, make_estimator
from quasiratio.estimators.mixtures import (
    DenominatorSignWarning,
    combine_log_ratios,
    sub_ratio_name,
)
from quasiratio.events import EventSample
from quasiratio.toys import gaussian_mixture as gm
from quasiratio.toys import weight_variance as wv
from quasiratio.training import TrainingConfig

PP, NP, PN, NN = (sub_ratio_name(a, b) for a, b in
                  (("pos", "pos"), ("neg", "pos"), ("pos", "neg"), ("neg", "neg")))


def _tensor(*values):
    return torch.tensor(values, dtype=torch.float64)


def _published_form(r, c0, c1):
    """The combination as published, with 1/c1 and 1/(1 - c1) inside the brackets."""
    first = 1 / ((c0 / c1) / r[PP] + ((1 - c0) / c1) / r[NP])
    second = 1 / ((c0 / (1 - c1)) / r[PN] + ((1 - c0) / (1 - c1)) / r[NN])
    return first + second


def test_combination_matches_published_form():
    rng = np.random.default_rng(0)
    log_r = {name: torch.as_tensor(rng.normal(0, 1, 50)) for name in (PP, NP, PN, NN)}
    c0, c1 = _tensor(4 / 3)[0], _tensor(2.0)[0]
    expected = _published_form({k: torch.exp(v) for k, v in log_r.items()}, c0, c1)
    torch.testing.assert_close(combine_log_ratios(log_r, c0, c1), expected, rtol=1e-12, atol=0)


def test_combination_two_classifier_forms():
    rng = np.random.default_rng(1)
    u, v = (torch.as_tensor(rng.normal(0, 1, 20)) for _ in range(2))
    c = _tensor(1.7)[0]
    numerator_only = combine_log_ratios({PP: u, PN: v}, None, c)
    torch.testing.assert_close(numerator_only, c * torch.exp(u) + (1 - c) * torch.exp(v))
    denominator_only = combine_log_ratios({PP: u, NP: v}, c, None)
    torch.testing.assert_close(denominator_only, 1 / (c / torch.exp(u) + (1 - c) / torch.exp(v)))


def test_combination_sub_ratio_limits():
    # exp(800) overflows float64, so each case fails without the shifted form.
    c0, c1 = _tensor(4 / 3)[0], _tensor(2.0)[0]
    zero = _tensor(0.0, 0.0)
    big = _tensor(800.0, -800.0)
    cases = {
        # r++ -> infinity: the first bracket tends to c1 r-+ / (1 - c0) = -6 r-+.
        PP: (big, c1 / (1 - c0) * torch.exp(zero)),
        # r-+ -> infinity: the first bracket tends to c1 r++ / c0 = 1.5 r++.
        NP: (big, c1 / c0 * torch.exp(zero)),
    }
    for name, (values, first_limit) in cases.items():
        log_r = {PP: zero, NP: zero, PN: zero, NN: zero, name: values}
        ratio = combine_log_ratios(log_r, c0, c1)
        second = (1 - c1) / (c0 + (1 - c0))
        assert torch.isfinite(ratio).all()
        torch.testing.assert_close(ratio[0], first_limit[0] + second)
        # A sub-ratio tending to 0 sends its bracket to 0.
        assert ratio[1] == pytest.approx(float(second), rel=1e-12)


def test_combination_coefficient_limits():
    # Only one sub-ratio of each bracket is extreme; with both extreme
    # the true ratio itself overflows.
    huge = _tensor(800.0, -800.0, 0.5)
    log_r = {PP: _tensor(0.3, 0.3, 0.3), NP: huge, PN: _tensor(0.2, 0.2, 0.2), NN: huge}
    for c0 in (1.0, 1.0 + 1e-15, 1e-300, 2.0):
        for c1 in (0.0, 1e-300, 1.0, 1.0 + 1e-15, 3.0):
            ratio = combine_log_ratios(log_r, _tensor(c0)[0], _tensor(c1)[0])
            assert torch.isfinite(ratio).all(), (c0, c1)
    # c0 = 1 drops p0-, and c1 = 1 drops p1-: the ratio is then r++ alone.
    exact = combine_log_ratios(log_r, _tensor(1.0)[0], _tensor(1.0)[0])
    torch.testing.assert_close(exact, torch.exp(log_r[PP]))


def test_combination_gradients_finite_at_limits():
    a0 = torch.tensor(np.log(1e-12), dtype=torch.float64, requires_grad=True)
    a1 = torch.tensor(np.log(1e-12), dtype=torch.float64, requires_grad=True)
    log_r = {PP: _tensor(300.0, -300.0), NP: _tensor(-300.0, 300.0),
             PN: _tensor(0.0, 0.0), NN: _tensor(1.0, 1.0)}
    ratio = combine_log_ratios(log_r, 1 + torch.exp(a0), 1 + torch.exp(a1))
    ratio.sum().backward()
    assert torch.isfinite(ratio).all()
    assert torch.isfinite(a0.grad)
    assert torch.isfinite(a1.grad)


@pytest.fixture(scope="module")
def toy_fits():
    """RoSMM and REVERT trained on the same 2-D Gaussian-mixture events."""
    torch.set_num_threads(1)
    n = 50_000
    source, target = gm.make_samples(n, n, seed=0)
    config = TrainingConfig(epochs=20, batch_size=1024, learning_rate=3e-3, patience=None,
                            progress=False)
    fits = {
        method: make_estimator(method, config=config, hidden=(64, 64)).fit(target, source)
        for method in ("rosmm", "revert")
    }
    return n, fits


@pytest.mark.parametrize("method", ["rosmm", "revert"])
def test_toy_negative_near_origin(toy_fits, method):
    _, fits = toy_fits
    x = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, -0.7]])
    assert np.all(fits[method].ratio(x) < 0)
    assert np.all(fits[method].ratio(np.array([[3.0, 0.0]])) > 0)


@pytest.mark.parametrize("method", ["rosmm", "revert"])
def test_toy_negative_fraction(toy_fits, method):
    # Compared on the same held-out events, so the sampling of the test
    # set cancels; 2 percentage points correspond to a shift of the
    # learned zero of about 0.11 in radius.
    _, fits = toy_fits
    test = gm.sample_source(50_000, seed=99)
    with np.errstate(all="ignore"):
        learned = np.mean(fits[method].ratio(test.x) < 0)
    true = np.mean(gm.true_ratio(test.x) < 0)
    assert true == pytest.approx(0.1144, abs=0.005)
    assert abs(learned - true) < 0.02


def test_toy_coefficients_from_sums(toy_fits):
    # c = p / (2 p - 1) with p the binomial fraction of +1 weights, so
    # sd(c) = sqrt(p (1 - p) / n) / (2 p - 1)^2: 1.111 / sqrt(n) for the
    # source (p = 0.8) and 4.243 / sqrt(n) for the target (p = 2/3).
    n, fits = toy_fits
    sums = fits["rosmm"].coefficients_from_sums_
    assert abs(sums["c0"] - 4 / 3) < 4 * 1.111 / np.sqrt(n)
    assert abs(sums["c1"] - 2.0) < 4 * 4.243 / np.sqrt(n)
    assert fits["rosmm"].coefficients_ == sums
    assert sorted(fits["rosmm"].sub_models_) == sorted([PP, NP, PN, NN])


def _radius_chi2_divergence(ratio, x):
    """Chi-square divergence on the radius between the reweighted N_2.5 and exact N_2.0.

    Bins hold equal numbers of source events; the target probability of a
    bin is the difference of the radial CDF 1 - exp(-r^2 / 8).
    """
    radius = np.hypot(x[:, 0], x[:, 1])
    edges = np.quantile(radius, np.linspace(0, 1, 41))
    target = np.diff(1 - np.exp(-(edges**2) / 8))
    target /= target.sum()
    reweighted = np.histogram(radius, edges, weights=ratio)[0]
    reweighted /= reweighted.sum()
    return float(np.sum((reweighted - target) ** 2 / target))


def test_high_weight_variance_rosmm_beats_revert():
    # sigma_w = 4, eta = 0.1 on a positive target: both methods get the
    # same events and the same training options. The exact ratio sets
    # the floor from the 200,000 test events.
    # NOTE: the margin depends on the training set-up. Here RoSMM wins by
    # 4 to 28 times over seeds 0-4, but benchmarks/weight_variance.py (40,000
    # events, 64 x 64 network, batch 1024, no early stopping) finds the two
    # within a factor 1.5 at sigma_w = 4, eta = 0.1, either way round.
    torch.set_num_threads(1)
    source, target = wv.make_samples(20_000, 20_000, sigma_w=4.0, eta=0.1, seed=0)
    config = TrainingConfig(epochs=30, batch_size=512, learning_rate=2e-3, progress=False)
    x = np.random.default_rng(5).standard_normal((200_000, 2)) * wv.SOURCE_SCALE
    floor = _radius_chi2_divergence(wv.true_ratio(x), x)
    errors = {}
    for method in ("rosmm", "revert"):
        estimator = make_estimator(method, config=config, hidden=(32, 32)).fit(target, source)
        errors[method] = _radius_chi2_divergence(estimator.ratio(x), x)
    assert errors["rosmm"] > floor
    assert errors["rosmm"] < errors["revert"]


def _quick_config(**changes):
    return TrainingConfig(epochs=2, batch_size=1024, progress=False, **changes)


def test_numerator_only_two_classifiers():
    source, target = wv.make_samples(3000, 3000, sigma_w=2.0, eta=0.3, seed=2)
    estimator = make_estimator("rosmm", config=_quick_config(), hidden=(8,)).fit(target, source)
    assert sorted(estimator.sub_models_) == sorted([PP, PN])
    assert estimator.coefficients_["c0"] is None
    w = target.sample_weight
    assert estimator.coefficients_["c1"] == pytest.approx(w[w > 0].sum() / w.sum())


def test_denominator_only_two_classifiers():
    source = gm.sample_source(3000, seed=3)
    target = EventSample.from_arrays(
        np.random.default_rng(4).normal(0, 2, (3000, 2)), feature_names=gm.FEATURE_NAMES
    )
    estimator = make_estimator("rosmm", config=_quick_config(), hidden=(8,)).fit(target, source)
    assert sorted(estimator.sub_models_) == sorted([PP, NP])
    assert estimator.coefficients_["c1"] is None
    assert np.all(np.isfinite(estimator.ratio(source.x[:100])))


def test_small_subset_rejected_with_size():
    source = gm.sample_source(2000, seed=5)
    weights = np.ones(2000)
    weights[:40] = -0.5
    target = EventSample.from_arrays(
        np.random.default_rng(6).normal(0, 2, (2000, 2)), weights, feature_names=gm.FEATURE_NAMES
    )
    estimator = make_estimator("rosmm", config=_quick_config(), hidden=(8,))
    with pytest.raises(InputError, match="numerator subset with negative weights has 40 events"):
        estimator.fit(target, source)


def test_invalid_coefficients_rejected():
    source, target = gm.make_samples(500, 500, seed=7)
    with pytest.raises(InputError, match="coefficients='mean'"):
        make_estimator("rosmm", coefficients="mean").fit(target, source)


@pytest.mark.parametrize("mode", ["fit", "finetune"])
def test_fitted_coefficients_valid_and_saved(tmp_path, mode):
    source, target = gm.make_samples(4000, 4000, seed=8)
    estimator = make_estimator("rosmm", coefficients=mode, config=_quick_config(),
                               hidden=(16,)).fit(target, source)
    assert estimator.coefficients_["c0"] > 1
    assert estimator.coefficients_["c1"] > 1
    assert estimator.coefficients_ != estimator.coefficients_from_sums_
    stage = "coefficients" if mode == "fit" else "finetune"
    assert len(estimator.histories_[stage].train_loss) == 2

    estimator.save(tmp_path / "model")
    loaded = load(tmp_path / "model")
    x = source.x[:500]
    np.testing.assert_array_equal(loaded.ratio(x), estimator.ratio(x))
    assert loaded.coefficients_ == estimator.coefficients_
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["method"] == "rosmm"
    assert metadata["method_fields"]["coefficients"] == estimator.coefficients_
    assert sorted(metadata["networks"]) == sorted([PP, NP, PN, NN])


@pytest.mark.filterwarnings("ignore::quasiratio.estimators.mixtures.DenominatorSignWarning")
def test_logit_is_revert_inverse():
    source, target = gm.make_samples(2000, 2000, seed=9)
    estimator = make_estimator("rosmm", config=_quick_config(), hidden=(8,)).fit(target, source)
    x = source.x[:200]
    np.testing.assert_allclose(-2 * np.sinh(estimator.logit(x)), estimator.ratio(x), rtol=1e-9)
    with pytest.raises(InputError, match="log_ratio is not defined"):
        estimator.log_ratio(x)


def test_nonpositive_learned_denominator_warns():
    source, target = gm.make_samples(2000, 2000, seed=10)
    estimator = make_estimator("rosmm", config=_quick_config(), hidden=(8,)).fit(target, source)
    estimator.coefficients_ = {"c0": 50.0, "c1": 2.0}
    with pytest.warns(DenominatorSignWarning, match="<= 0 at"):
        estimator.ratio(source.x)


@pytest.mark.filterwarnings("ignore::quasiratio.estimators.mixtures.DenominatorSignWarning")
def test_refit_coefficients_keeps_sub_classifiers():
    source, target = gm.make_samples(3000, 3000, seed=11)
    sums = make_estimator("rosmm", config=_quick_config(), hidden=(8,)).fit(target, source)
    fitted = make_estimator("rosmm", coefficients="fit", config=_quick_config(),
                            hidden=(8,)).fit(target, source)
    refitted = sums.refit_coefficients(target, source, coefficients="fit")
    assert refitted.coefficients_ == fitted.coefficients_
    assert sums.coefficients_ == sums.coefficients_from_sums_
    x = source.x[:200]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(refitted.ratio(x), fitted.ratio(x))
