"""ONNX export: ONNX Runtime reproduces the PyTorch ratio and logit, signs included."""

import json
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402

from quasiratio.cli import main  # noqa: E402
from quasiratio.errors import InputError  # noqa: E402
from quasiratio.estimators import load, make_estimator  # noqa: E402
from quasiratio.events import EventSample  # noqa: E402
from quasiratio.onnx_export import compare_with_torch, export_onnx, run_onnx  # noqa: E402
from quasiratio.toys import gaussian_mixture  # noqa: E402
from quasiratio.training import TrainingConfig  # noqa: E402

# float32 networks: ONNX Runtime and PyTorch order the same float32 operations
# differently, so logits differ by a few ulp (~1e-7 for |z| ~ 1). The ratio
# map runs in float64 on both sides, so |dr| <= |dr/dz| dz stays ~1e-7 relative
# for exp(z) and ~2e-7 absolute near r = 0 for -2 sinh(z). 1e-5 leaves a
# factor 50 of room and still fails on any real difference in the graph.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def toy_samples():
    source, target = gaussian_mixture.make_samples(2000, 2000, seed=3)
    return target, source


def _fit(method, numerator, denominator, **options):
    config = TrainingConfig(epochs=2, batch_size=256, seed=0, progress=False, patience=None)
    estimator = make_estimator(method, hidden=(16, 16), config=config, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(numerator, denominator)
    return estimator


def _centre_logits(model, x):
    """Shift the last bias so that half of the logits on ``x`` are positive."""
    with torch.no_grad():
        z = model(torch.as_tensor(x, dtype=torch.float32))
        model.network.layers[-1].bias -= z.median()


def _points(n=2000):
    return np.random.default_rng(7).normal(scale=3.0, size=(n, 2))


@pytest.fixture(scope="module")
def exported(toy_samples, tmp_path_factory):
    """Fit and export each method once: method -> (estimator, ONNX path)."""
    folder = tmp_path_factory.mktemp("onnx")
    models = {}
    for method in ("carl", "revert", "rosmm"):
        estimator = _fit(method, *toy_samples)
        if method == "revert":
            _centre_logits(estimator.network_, _points())
        models[method] = (estimator, export_onnx(estimator, folder / f"{method}.onnx"))
    return models


@pytest.mark.parametrize("method", ["carl", "revert", "rosmm"])
def test_onnx_matches_torch(method, exported):
    estimator, path = exported[method]

    check = compare_with_torch(estimator, path, _points())

    assert check["ratio_max_difference"] < TOLERANCE
    assert check["logit_max_difference"] < TOLERANCE
    assert check["sign_mismatches"] == 0


def test_onnx_signed_ratio_both_signs(exported):
    estimator, path = exported["revert"]
    x = _points()
    outputs = run_onnx(path, x)
    r_torch = estimator.ratio(x.astype(np.float32).astype(np.float64))

    assert outputs["ratio"].dtype == np.float64
    assert outputs["logit"].dtype == np.float32
    assert np.mean(r_torch < 0) > 0.3
    assert np.mean(r_torch > 0) > 0.3
    np.testing.assert_array_equal(np.sign(outputs["ratio"]), np.sign(r_torch))
    np.testing.assert_allclose(outputs["ratio"], r_torch, rtol=TOLERANCE, atol=TOLERANCE)


def test_onnx_batch_size_is_dynamic(exported):
    _, path = exported["carl"]
    for n in (1, 3, 1000):
        outputs = run_onnx(path, _points(n))
        assert outputs["ratio"].shape == (n,)
        assert outputs["logit"].shape == (n,)


def test_export_cli_writes_checked_file(toy_samples, tmp_path, capsys):
    estimator = _fit("auto", *toy_samples)
    estimator.save(tmp_path / "model")
    output = tmp_path / "ratio.onnx"

    status = main(["export-onnx", str(tmp_path / "model"), str(output), "--json"])

    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert result["check"]["ratio_max_difference"] < TOLERANCE
    assert result["check"]["sign_mismatches"] == 0
    properties = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert properties["feature_names"] == "x1,x2"
    assert properties["method"].startswith("auto (")
    reloaded = load(tmp_path / "model")
    check = compare_with_torch(reloaded, output, _points(500))
    assert check["ratio_max_difference"] < TOLERANCE


def test_export_cli_rejects_other_extension(toy_samples, tmp_path, capsys):
    estimator = _fit("carl", *toy_samples)
    estimator.save(tmp_path / "model")

    status = main(["export-onnx", str(tmp_path / "model"), str(tmp_path / "ratio.txt")])

    assert status == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "ratio.txt").exists()


@pytest.mark.parametrize("calibration", ["histogram", "isotonic"])
def test_calibrated_carl_exports_map(calibration, toy_samples, tmp_path):
    estimator = _fit("carl", *toy_samples, calibration=calibration)
    path = export_onnx(estimator, tmp_path / "calibrated.onnx")
    x = _points()

    outputs = run_onnx(path, x)
    check = compare_with_torch(estimator, path, x)

    assert check["logit_max_difference"] < TOLERANCE
    assert check["ratio_max_difference"] < 1e-12
    expected = estimator.calibrator_.ratio(outputs["logit"].astype(np.float64))
    np.testing.assert_allclose(outputs["ratio"], expected, rtol=1e-12, atol=0)


def test_parameterized_export_rejected(tmp_path):
    rng = np.random.default_rng(0)
    theta = rng.uniform(size=(400, 1))
    numerator = EventSample.from_arrays(rng.normal(size=(400, 1)) + theta, theta=theta)
    denominator = EventSample.from_arrays(rng.normal(size=(400, 1)), theta=theta)
    estimator = _fit("parameterized-carl", numerator, denominator)

    with pytest.raises(InputError, match="takes theta as a second input"):
        export_onnx(estimator, tmp_path / "parameterized.onnx")
    assert not (tmp_path / "parameterized.onnx").exists()
