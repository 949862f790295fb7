"""Parameterised ratios r(x | theta) on the latent Gaussian toy and the SMEFT VBF file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quasiratio.errors import InputError
from quasiratio.estimators import load, make_estimator
from quasiratio.events import EventSample
from quasiratio.morphing import parameterized_samples, read_morphed_events
from quasiratio.toys.latent import LatentGaussian
from quasiratio.training import TrainingConfig

TOY = LatentGaussian(sigma=1.0)
VBF_FILE = Path(__file__).resolve().parents[1] / "data" / "event2vec-smeftsim_VBFH-1.lhe.gz"
THETAS = (-0.8, -0.4, 0.0, 0.4, 0.8)
X_GRID = np.linspace(-2.0, 2.0, 41)


def small_config(seed: int = 0, epochs: int = 15, batch_size: int = 128) -> TrainingConfig:
    return TrainingConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=2e-3, patience=None, seed=seed,
        progress=False,
    )


@pytest.fixture(scope="module")
def toy_samples():
    return TOY.parameterized_samples(5000, seed=1)


def test_parameterized_carl_matches_exact(toy_samples):
    # 5000 events per class. A flexible fit averages over roughly 1/16 of the
    # sample, about 300 events per class, where log r is known to
    # sqrt(1/300 + 1/300) = 0.08; the tolerance 0.15 is about twice that. On
    # seeds 0-5 the largest error on |x| < 2 was 0.25 and the RMS below 0.1.
    estimator = make_estimator("parameterized-carl", hidden=(32, 32), config=small_config())
    estimator.fit(*toy_samples)
    for theta in THETAS:
        error = estimator.log_ratio(X_GRID, theta=[theta]) - TOY.log_ratio(X_GRID, theta, 0.0)
        rms = np.sqrt(np.mean(error**2))
        assert rms < 0.15, f"theta={theta}: RMS error {rms:.3f}"


def test_parameterized_revert_matches_exact(toy_samples):
    # Same statistics as for CARL; r is between 0.3 and 2.5 here, and a 0.15
    # error in log r is at most 0.15 * 2.5 ~ 0.4 in r. The RMS bound is 0.2.
    estimator = make_estimator("parameterized-revert", hidden=(32, 32), config=small_config())
    estimator.fit(*toy_samples)
    for theta in THETAS:
        truth = np.exp(TOY.log_ratio(X_GRID, theta, 0.0))
        rms = np.sqrt(np.mean((estimator.ratio(X_GRID, theta=[theta]) - truth) ** 2))
        assert rms < 0.2, f"theta={theta}: RMS error {rms:.3f}"


def test_denominator_theta_paired_from_numerator():
    numerator, denominator = TOY.parameterized_samples(3000, seed=2)
    plain = EventSample.from_arrays(denominator.x, feature_names=["x"])
    estimator = make_estimator("parameterized-carl", hidden=(32, 32), config=small_config(seed=2))
    estimator.fit(numerator, plain)
    error = estimator.log_ratio(X_GRID, theta=[0.8]) - TOY.log_ratio(X_GRID, 0.8, 0.0)
    assert np.sqrt(np.mean(error**2)) < 0.2


def test_parameterized_save_and_load(toy_samples, tmp_path):
    numerator, denominator = (s.take(np.arange(300)) for s in toy_samples)
    estimator = make_estimator("parameterized-revert", hidden=(8,), config=small_config(epochs=2),
                               parameter_names=["mu"])
    estimator.fit(numerator, denominator)
    estimator.save(tmp_path / "model")
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    loaded = load(tmp_path / "model")
    assert metadata["method"] == "parameterized-revert"
    assert metadata["method_fields"]["parameter_names"] == ["mu"]
    assert metadata["feature_names"] == ["x"]
    assert metadata["networks"]["network"]["n_in"] == 2
    assert loaded.parameter_names_ == ("mu",)
    per_event = np.full((len(X_GRID), 1), -0.3)
    np.testing.assert_array_equal(loaded.ratio(X_GRID, theta=per_event),
                                  estimator.ratio(X_GRID, theta=[-0.3]))


def test_theta_argument_checked(toy_samples):
    numerator, denominator = (s.take(np.arange(200)) for s in toy_samples)
    estimator = make_estimator("parameterized-carl", hidden=(8,), config=small_config(epochs=1))
    estimator.fit(numerator, denominator)
    with pytest.raises(InputError, match="pass theta="):
        estimator.ratio(X_GRID)
    with pytest.raises(InputError, match="theta has shape"):
        estimator.ratio(X_GRID, theta=np.zeros((3, 1)))
    with pytest.raises(InputError, match="theta has shape"):
        estimator.ratio(X_GRID, theta=[0.1, 0.2])
    from_extras = estimator.ratio(numerator)
    explicit = estimator.ratio(numerator.x, numerator.extras["theta"])
    np.testing.assert_array_equal(from_extras, explicit)


def test_parameterized_requires_theta():
    sample = EventSample.from_arrays(np.zeros((10, 1)))
    with pytest.raises(InputError, match="theta="):
        make_estimator("parameterized-carl").fit(sample, sample)


@pytest.fixture(scope="module")
def vbf_split():
    """Parton-level VBF events with the cHW morphing, split 80/20 into train and test."""
    sample, morphing = read_morphed_events(VBF_FILE, operators=["cHW"])
    order = np.random.default_rng(0).permutation(len(sample))
    train, test = np.sort(order[:8000]), np.sort(order[8000:])
    return sample.take(train), morphing.take(train), sample.take(test), morphing.take(test)


def test_vbf_alice_follows_joint_ratio(vbf_split):
    # The per-event truth is r_xz(c) = w(c) / w_SM, normalised by the cross-
    # sections, on 2000 held-out events. The learned r(x | c) estimates
    # E[r_xz | x], which differs from r_xz because the initial-state flavours
    # and the azimuth of the event are latent, so the correlation stays well
    # below 1: a gradient-boosted regression of t_xz on the same features
    # (scikit-learn, 8000 training events) reached about 0.75 on held-out
    # events, and ALICE reached 0.62 to 0.75 over four splits and seeds.
    # The thresholds: correlation above
    # 0.55, a regression slope of r_xz on r(x | c) within 25 % of 1 (the
    # conditional mean is calibrated by construction), a mean ratio under the
    # SM of 1 within 0.05 (statistical error about 0.01), and a mean squared
    # error below 80 % of the variance of r_xz.
    train_sample, train_morphing, test_sample, test_morphing = vbf_split
    numerator, denominator = parameterized_samples(
        train_sample, train_morphing, theta={"cHW": (-0.5, 0.5)}, seed=1
    )
    config = small_config(epochs=30, batch_size=256)
    estimator = make_estimator("alice", hidden=(64, 64), config=config,
                               parameter_names=["cHW"]).fit(numerator, denominator)
    sigma_sm = test_morphing.total_weight([0.0])[0]
    for c in (-0.5, -0.25, 0.25, 0.5):
        truth = test_morphing.joint_ratio([c]) * sigma_sm / test_morphing.total_weight([c])[0]
        ratio = estimator.ratio(test_sample, theta=[c])
        correlation = np.corrcoef(ratio, truth)[0, 1]
        slope = np.cov(ratio, truth)[0, 1] / np.var(ratio, ddof=1)
        assert correlation > 0.55, f"c={c}: correlation {correlation:.3f}"
        assert abs(slope - 1) < 0.25, f"c={c}: slope {slope:.3f}"
        assert abs(np.mean(ratio) - 1) < 0.05, f"c={c}: mean ratio {np.mean(ratio):.3f}"
        assert np.mean((ratio - truth) ** 2) < 0.8 * np.var(truth), f"c={c}"
