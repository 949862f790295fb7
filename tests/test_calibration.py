import matplotlib
import numpy as np
import pytest

from quasiratio.calibration import Calibrator, fit_calibrator, reliability_plot
from quasiratio.errors import InputError

matplotlib.use("Agg")

KINDS = ("histogram", "isotonic")


def _scores(seed=0, n=4_000):
    """Logits z = x for N(0.5, 1) over N(0, 1); the true r(z) = exp(0.5 z - 0.125)."""
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(0.5, 1, n), rng.normal(0, 1, n)])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    w = rng.uniform(0.5, 1.5, 2 * n)
    return z, y, w


def _same(a: Calibrator, b: Calibrator):
    np.testing.assert_allclose(a.knots, b.knots, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.probability, b.probability, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_cancelling_pair_leaves_calibrator_unchanged(kind):
    z, y, w = _scores()
    base = fit_calibrator(kind, z, y, w)
    for extra_z, label in [(0.123456, 1.0), (z[10], 1.0), (-3.3, 0.0)]:
        added = fit_calibrator(
            kind,
            np.append(z, [extra_z, extra_z]),
            np.append(y, [label, label]),
            np.append(w, [2.5, -2.5]),
        )
        _same(added, base)


@pytest.mark.parametrize("kind", KINDS)
def test_integer_weight_equals_copies(kind):
    z, y, w = _scores()
    w = np.round(w * 2)  # integer weights 1, 2 and 3
    copies = np.repeat(np.arange(len(z)), w.astype(int))
    _same(fit_calibrator(kind, z, y, w), fit_calibrator(kind, z[copies], y[copies],
                                                         np.ones(len(copies))))


def test_isotonic_equals_pava_for_positive_weights():
    from sklearn.isotonic import IsotonicRegression

    z, y, w = _scores(n=1_000)
    # A denominator event above every other logit keeps the top block below
    # c = 1; ordinary PAVA would otherwise end in a block of numerator events
    # only, which this calibrator pools with its neighbour to keep r finite.
    z, y, w = np.append(z, z.max() + 1), np.append(y, 0.0), np.append(w, 1.0)
    # Normalise each class to 1, as the calibrator does internally.
    w = np.where(y == 1, w / w[y == 1].sum(), w / w[y == 0].sum())
    reference = IsotonicRegression().fit(z, y, sample_weight=w)
    calibrator = fit_calibrator("isotonic", z, y, w)
    np.testing.assert_allclose(calibrator.calibrated_probability(z), reference.predict(z),
                               atol=1e-12)


def test_calibrators_finite_and_isotonic_monotone():
    z, y, w = _scores()
    grid = np.linspace(-5, 5, 501)
    for kind in KINDS:
        ratio = fit_calibrator(kind, z, y, w).ratio(grid)
        assert np.all(np.isfinite(ratio))
        if kind == "isotonic":
            assert np.all(np.diff(ratio) >= 0)


@pytest.mark.parametrize("kind", KINDS)
def test_signed_weights_recover_ratio(kind):
    # Score t = x^2 for the numerator 1.2 N(0, 1) - 0.2 N(0, 0.5) (events of
    # weight +1 and -1) over N(0, 1): r = 1.2 - 0.4 exp(-1.5 t) rises with t.
    # Histogram bins of 1/40 of 240,000 events give relative errors near
    # sqrt(2 * 7,000) / 5,000 = 2.4 % per bin at small t; 8 % is about 3 of them.
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1, 120_000), rng.normal(0, 0.5, 20_000),
                        rng.normal(0, 1, 100_000)])
    y = np.concatenate([np.ones(140_000), np.zeros(100_000)])
    w = np.concatenate([np.ones(120_000), -np.ones(20_000), np.ones(100_000)])
    calibrator = fit_calibrator(kind, x**2, y, w)
    t = np.array([0.02, 0.1, 0.3, 0.6, 1.0, 2.0])
    truth = 1.2 - 0.4 * np.exp(-1.5 * t)
    np.testing.assert_allclose(calibrator.ratio(t), truth, rtol=0.08)


def test_negative_block_weight_pooled():
    # The middle logit holds net negative numerator weight; PAVA must pool it
    # so every block has a positive denominator weight and a finite ratio.
    z = np.array([0.0, 1.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    w = np.array([1.0, -2.0, 0.5, 2.0, 1.0, 1.0, 1.0])
    for kind in KINDS:
        ratio = fit_calibrator(kind, z, y, w, **({"bins": 3} if kind == "histogram" else {}))
        values = ratio.ratio(np.array([0.0, 1.0, 2.0]))
        assert np.all(np.isfinite(values))
        if kind == "isotonic":
            assert np.all(np.diff(values) >= 0)


def test_nonpositive_class_total_rejected():
    with pytest.raises(InputError, match="positive weight total"):
        fit_calibrator("isotonic", np.array([0.0, 1.0]), np.array([1, 0]),
                       np.array([-1.0, 1.0]))
    with pytest.raises(InputError, match="not one of"):
        fit_calibrator("platt", np.zeros(2), np.array([1, 0]), np.ones(2))


def test_round_trip_through_dict():
    z, y, w = _scores()
    for kind in KINDS:
        calibrator = fit_calibrator(kind, z, y, w)
        _same(Calibrator.from_dict(calibrator.to_dict()), calibrator)


def test_reliability_plot_draws():
    z, y, w = _scores()
    ax = reliability_plot(z, y, w, calibrator=fit_calibrator("isotonic", z, y, w))
    points = ax.get_lines()[1].get_xydata()
    assert len(points) >= 10
    # A calibrated classifier lies near the diagonal.
    assert np.max(np.abs(points[:, 0] - points[:, 1])) < 0.1
