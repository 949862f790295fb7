"""Morphing of the SMEFT VBF Higgs file's weights, jet smearing, and training samples."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from quasiratio.errors import InputError
from quasiratio.io.lhe import read_lhe
from quasiratio.morphing import (
    Morphing,
    draw_theta,
    parameterized_samples,
    parse_point,
    read_morphed_events,
)
from quasiratio.smearing import JET_PIDS, JetSmearing

VBF_FILE = Path(__file__).resolve().parents[1] / "data" / "event2vec-smeftsim_VBFH-1.lhe.gz"
OPERATORS = ("cHB", "cHDD", "cHW", "cHWB", "cHbox")

# The file prints weights with 8 significant digits (format %.7e), so each
# stored value is within 5e-8 of its exact value in relative terms.
ROUNDING = 5e-8


@pytest.fixture(scope="module")
def events():
    return read_lhe(VBF_FILE)


@pytest.fixture(scope="module")
def weights(events):
    return events.weights


@pytest.fixture(scope="module")
def parton():
    """Parton-level VBF features with the cHW morphing."""
    return read_morphed_events(VBF_FILE, operators=["cHW"])


@pytest.mark.parametrize(
    ("name", "point"),
    [
        ("SM", {}),
        ("cHW_0p1", {"cHW": 0.1}),
        ("cHbox_0p2", {"cHbox": 0.2}),
        ("cHB_0p1_cHW_0p1", {"cHB": 0.1, "cHW": 0.1}),
        ("cHW_m1p5", {"cHW": -1.5}),
        ("cHW_2", {"cHW": 2.0}),
        ("XWGTUP", None),
        ("cHW_0p1_cHW_0p2", None),
        ("muR_0p5_x", None),
    ],
)
def test_parse_point(name, point):
    assert parse_point(name) == point


def test_full_morphing_reproduces_weights(weights):
    morphing = Morphing.from_weights(weights)
    stored = [name for name in weights if parse_point(name) is not None]
    assert morphing.operators == OPERATORS
    assert morphing.coefficients.shape == (10000, 21)
    assert len(stored) == 21
    for name in stored:
        np.testing.assert_allclose(morphing.weight(parse_point(name)), weights[name],
                                   rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("operator", OPERATORS)
def test_single_operator_reproduces_weights(weights, operator):
    morphing = Morphing.from_weights(weights, operators=[operator])
    assert morphing.exponents.ravel().tolist() == [0, 1, 2]
    for value, name in ((0.0, "SM"), (0.1, f"{operator}_0p1"), (0.2, f"{operator}_0p2")):
        np.testing.assert_allclose(morphing.weight(value), weights[name], rtol=1e-12)
    w_sm, w1, w2 = weights["SM"], weights[f"{operator}_0p1"], weights[f"{operator}_0p2"]
    np.testing.assert_allclose(morphing.quadratic(operator), (w2 - 2 * w1 + w_sm) / 0.02,
                               rtol=1e-9, atol=1e-9)


def test_pair_weights_within_cauchy_schwarz(weights):
    # At leading order w(c) = sum over helicities and colours of
    # |M_SM + sum_i c_i M_i|^2, so the Gram matrix of the amplitudes is
    # positive semi-definite and the cross term obeys |m_ij| <= 2 sqrt(b_i b_j).
    # The single-operator morphings (c = 0, 0.1, 0.2) therefore predict that
    # the stored pair weight at c_i = c_j = 0.1 lies within
    # w_i(0.1) + w_j(0.1) - w_SM +- 0.01 * 2 sqrt(b_i b_j), up to rounding.
    w_sm = weights["SM"]
    quadratic, error = {}, {}
    for op in OPERATORS:
        w1, w2 = weights[f"{op}_0p1"], weights[f"{op}_0p2"]
        quadratic[op] = Morphing.from_weights(weights, operators=[op]).quadratic(op)
        error[op] = ROUNDING * (np.abs(w2) + 2 * np.abs(w1) + np.abs(w_sm)) / 0.02
    for first, second in itertools.combinations(OPERATORS, 2):
        name = f"{first}_0p1_{second}_0p1"
        w_first, w_second = weights[f"{first}_0p1"], weights[f"{second}_0p1"]
        cross = weights[name] - w_first - w_second + w_sm
        cross_error = ROUNDING * (np.abs(weights[name]) + np.abs(w_first) + np.abs(w_second)
                                  + np.abs(w_sm))
        largest = 0.02 * np.sqrt(np.clip(quadratic[first] + error[first], 0, None)
                                 * np.clip(quadratic[second] + error[second], 0, None))
        assert np.all(np.abs(cross) <= largest + cross_error), name
        # The bound is far from vacuous: where it exceeds the rounding a hundred
        # times, the median of |m_ij| / (2 sqrt(b_i b_j)) is 0.75 to 0.996 in
        # this file, because one amplitude structure dominates each event.
        informative = largest > 100 * cross_error
        assert np.median(np.abs(cross[informative]) / largest[informative]) > 0.5, name


def test_morphed_weights_non_negative(weights):
    # The same positivity for every c: w(c) >= 0 up to the propagated rounding
    # of the stored weights, checked at 500 random points in [-2, 2]^5.
    morphing = Morphing.from_weights(weights)
    names = [n for n in weights if parse_point(n) is not None]
    design = np.array([[parse_point(n).get(op, 0.0) for op in OPERATORS] for n in names])
    monomials = np.prod(design[:, None, :] ** morphing.exponents, axis=-1)
    stored = np.stack([np.abs(weights[n]) for n in names], axis=1)
    coefficient_error = ROUNDING * stored @ np.abs(np.linalg.inv(monomials)).T
    points = np.random.default_rng(0).uniform(-2, 2, (500, 5))
    for point in points:
        basis = np.abs(np.prod(point ** morphing.exponents, axis=-1))
        assert np.all(morphing.weight(point) >= -coefficient_error @ basis)


def test_joint_ratio_and_score(weights):
    morphing = Morphing.from_weights(weights, operators=["cHW"])
    w_sm = weights["SM"]
    np.testing.assert_allclose(morphing.joint_ratio(0.2), weights["cHW_0p2"] / w_sm, rtol=1e-12)
    np.testing.assert_allclose(morphing.joint_ratio(0.2, 0.1),
                               weights["cHW_0p2"] / weights["cHW_0p1"], rtol=1e-12)
    np.testing.assert_allclose(morphing.joint_score()[:, 0], morphing.linear("cHW") / w_sm)

    step = 1e-5
    log_ratio = np.log(morphing.joint_ratio(0.3 + step)) - np.log(morphing.joint_ratio(0.3 - step))
    np.testing.assert_allclose(morphing.joint_score(0.3)[:, 0], log_ratio / (2 * step),
                               rtol=1e-5, atol=1e-7)


def test_interference_term_is_signed(weights):
    # The linear term alone is a quasi-density for cHW: about 47 % of the
    # events have a < 0, yet its sum over events is positive.
    linear = Morphing.from_weights(weights, operators=["cHW"]).linear("cHW")
    assert 0.3 < np.mean(linear < 0) < 0.7
    assert linear.sum() > 0


def test_total_weight_matches_sum(weights):
    morphing = Morphing.from_weights(weights)
    totals = morphing.total_weight([parse_point("cHW_0p2").get(op, 0.0) for op in OPERATORS])
    assert totals.shape == (1,)
    np.testing.assert_allclose(totals[0], weights["cHW_0p2"].sum(), rtol=1e-12)


def test_morphing_input_errors(weights):
    with pytest.raises(InputError, match="subset of the operators"):
        Morphing.from_weights(weights, operators=["cXY"])
    partial = {k: v for k, v in weights.items() if k in ("SM", "cHW_0p1")}
    with pytest.raises(InputError, match="do not fix a quadratic"):
        Morphing.from_weights(partial)
    morphing = Morphing.from_weights(weights, operators=["cHW", "cHB"])
    with pytest.raises(InputError, match="theta has shape"):
        morphing.weight([0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="unknown operators"):
        morphing.weight({"cHbox": 0.1})


def test_parameterized_samples_consistent(weights, parton):
    sample, morphing = parton
    numerator, denominator = parameterized_samples(sample, morphing, theta=[-0.5, 0.5], seed=3)
    theta = numerator.extras["theta"]
    sigma = morphing.total_weight(theta)
    sigma_sm = morphing.total_weight([0.0])[0]
    assert set(np.unique(theta)) == {-0.5, 0.5}
    assert numerator.extras["t_xz"].shape == (len(sample), 1)
    np.testing.assert_allclose(denominator.sample_weight, weights["SM"])
    np.testing.assert_allclose(numerator.sample_weight,
                               morphing.weight(theta) * sigma_sm / sigma, rtol=1e-12)
    np.testing.assert_allclose(numerator.extras["r_xz"],
                               numerator.sample_weight / weights["SM"], rtol=1e-12)
    # Each half of the grid is normalised to the SM cross-section per event drawn.
    for value in (-0.5, 0.5):
        chosen = theta[:, 0] == value
        share = numerator.sample_weight[chosen].sum() / weights["SM"][chosen].sum()
        exact = (morphing.weight([value])[chosen].sum() / weights["SM"][chosen].sum()
                 * sigma_sm / morphing.total_weight([value])[0])
        assert share == pytest.approx(exact, rel=1e-12)

    step = 1e-5
    shifted = [
        morphing.weight(theta + s) / morphing.total_weight(theta + s) for s in (step, -step)
    ]
    score = (np.log(shifted[0]) - np.log(shifted[1])) / (2 * step)
    np.testing.assert_allclose(numerator.extras["t_xz"][:, 0], score, rtol=1e-5, atol=1e-6)


def test_draw_theta_ranges():
    rng = np.random.default_rng(0)
    draws = draw_theta({"cHW": (-1, 1)}, 1000, ["cHB", "cHW"], rng)
    assert draws.shape == (1000, 2)
    assert np.all(draws[:, 0] == 0)
    assert draws[:, 1].min() >= -1
    assert draws[:, 1].max() <= 1
    with pytest.raises(InputError, match="low < high"):
        draw_theta({"cHW": (1, -1)}, 10, ["cHW"], rng)
    with pytest.raises(InputError, match="theta grid"):
        draw_theta(np.zeros((3, 2)), 10, ["cHW"], rng)


def _jet_kinematics(particles):
    import awkward as ak

    flat = {f: ak.to_numpy(ak.flatten(particles[f])) for f in ("px", "py", "pz", "pid", "status")}
    jets = (flat["status"] == 1) & np.isin(np.abs(flat["pid"]), JET_PIDS)
    pt = np.hypot(flat["px"], flat["py"])[jets]
    eta = np.arcsinh(flat["pz"][jets] / pt)
    phi = np.arctan2(flat["py"], flat["px"])[jets]
    return pt, eta, phi, jets, flat


def test_smearing_follows_resolution_model(events):
    smearing = JetSmearing()
    smeared = smearing.apply(events.particles, seed=4)
    pt, eta, phi, jets, flat = _jet_kinematics(events.particles)
    pt_s, eta_s, phi_s, jets_s, flat_s = _jet_kinematics(smeared)
    n = len(pt)
    # Pulls of a correctly sized Gaussian have mean 0 +- 1/sqrt(n) and width
    # 1 +- 1/sqrt(2n); 5 standard errors keep the test stable.
    pulls = (pt_s / pt - 1) / smearing.relative_resolution(pt)
    eta_pulls = (eta_s - eta) / smearing.angular
    phi_pulls = np.angle(np.exp(1j * (phi_s - phi))) / smearing.angular
    for values in (pulls, eta_pulls, phi_pulls):
        assert abs(values.mean()) < 5 / np.sqrt(n)
        assert abs(values.std() - 1) < 5 / np.sqrt(2 * n)
    assert np.array_equal(jets, jets_s)
    assert np.array_equal(flat["px"][~jets], flat_s["px"][~jets])
    assert n == 20000


def test_smearing_seeded_and_features_change(events, parton):
    smearing = JetSmearing(stochastic=0.5, constant=0.1, angular=0.02)
    first = smearing.apply(events.particles, seed=5)
    again = smearing.apply(events.particles, seed=5)
    other = smearing.apply(events.particles, seed=6)
    assert np.array_equal(_jet_kinematics(first)[0], _jet_kinematics(again)[0])
    assert not np.array_equal(_jet_kinematics(first)[0], _jet_kinematics(other)[0])

    sample, _ = parton
    detector, _ = read_morphed_events(VBF_FILE, operators=["cHW"], smearing=smearing, seed=5)
    h1 = sample.feature_names.index("h1_pt")
    mjj = sample.feature_names.index("jj_mass")
    np.testing.assert_array_equal(sample.x[:, h1], detector.x[:, h1])
    assert not np.allclose(sample.x[:, mjj], detector.x[:, mjj])
    with pytest.raises(InputError, match="stochastic"):
        JetSmearing(stochastic=-1.0)
