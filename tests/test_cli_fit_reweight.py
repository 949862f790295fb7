"""``quasiratio fit`` and ``quasiratio reweight``: outputs, weights used, interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import quasiratio
from quasiratio.cli import main
from quasiratio.errors import UnusedWeightWarning
from quasiratio.estimators import _METHOD_MODULES, import_method_module, registered_methods
from quasiratio.training import TrainingConfig

DATA = Path(__file__).resolve().parents[1] / "data"
FXFX = DATA / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
MLM = DATA / "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
FAST = ["--epochs", "2", "--batch-size", "256", "--hidden", "8"]


def write_parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path, row_group_size=1000)
    return path


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    """Numerator N(0.5, 1) x N(0, 1), denominator N(0, 1)^2, 3000 events each, weights +-1."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(5)
    files = {}
    for role, shift in (("numerator", 0.5), ("denominator", 0.0)):
        columns = {"a": rng.normal(shift, 1.0, 3000), "b": rng.normal(0.0, 1.0, 3000),
                   "weight": np.where(rng.random(3000) < 0.05, -1.0, 1.0)}
        files[role] = write_parquet(folder / f"{role}.parquet", columns)
    return files


def fit_args(files: dict, output: Path, *extra: str) -> list[str]:
    return ["fit", "--numerator", str(files["numerator"]), "--denominator",
            str(files["denominator"]), "--output", str(output), *FAST, *extra]


@pytest.fixture(scope="module")
def fitted_model(toy_files, tmp_path_factory):
    output = tmp_path_factory.mktemp("model") / "model"
    assert main(fit_args(toy_files, output, "--method", "revert", "--seed", "1")) == 0
    return output


def test_fit_json_summary(toy_files, tmp_path, capsys):
    output = tmp_path / "carl"
    code = main(fit_args(toy_files, output, "--method", "carl", "--json"))
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["method"] == "carl"
    assert summary["events"] == {"numerator": 3000, "denominator": 3000}
    assert summary["output"] == str(output)
    assert summary["features"] == ["a", "b"]
    assert len(summary["losses"]["network"]["train"]) == 2
    assert summary["interrupted"] is False
    assert set(summary["normalization"]) == {"value", "error"}
    assert quasiratio.load(output).method == "carl"
    assert not Path(f"{output}.checkpoint").exists()


def all_methods() -> list[str]:
    for method in _METHOD_MODULES:
        import_method_module(method)
    return registered_methods()


@pytest.mark.parametrize("method", all_methods())
def test_fit_accepts_every_method(method, toy_files, tmp_path, capsys):
    # A method either trains on these files or stops with the library's
    # one-line message, as ALICE does without a joint-ratio column. An
    # unknown-method error or a traceback fails the test.
    code = main(fit_args(toy_files, tmp_path / method, "--method", method))
    err = capsys.readouterr().err
    assert "unknown method" not in err
    assert code in (0, 2)
    if code == 0:
        assert quasiratio.load(tmp_path / method).method == method
    else:
        assert err.count("\n") == 1, err
        assert not (tmp_path / method).exists()


def table_copies(files: dict, folder: Path, kind: str) -> dict:
    """Write the toy files again as CSV, NPZ or HDF5."""
    import h5py
    import pyarrow.csv as pcsv

    copies = {}
    for role, path in files.items():
        table = pq.read_table(path)
        target = folder / f"{role}.{kind}"
        if kind == "csv":
            pcsv.write_csv(table, target)
        elif kind == "npz":
            np.savez(target, **{name: table.column(name).to_numpy() for name in table.column_names})
        else:
            with h5py.File(target, "w", track_order=True) as h5:
                for name in table.column_names:
                    h5[name] = table.column(name).to_numpy()
        copies[role] = target
    return copies


@pytest.mark.parametrize("kind", ["csv", "npz", "h5", "root"])
def test_fit_every_input_kind(kind, toy_files, tmp_path, capsys):
    if kind == "root":
        nanoaod = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
        files = {"numerator": nanoaod, "denominator": nanoaod}
        expected = {"numerator": 200, "denominator": 200}
    else:
        files = table_copies(toy_files, tmp_path, kind)
        expected = {"numerator": 3000, "denominator": 3000}
    code = main(fit_args(files, tmp_path / "model", "--json"))
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["events"] == expected
    assert quasiratio.load(tmp_path / "model").method == "revert"


def test_fit_unknown_method(toy_files, tmp_path, capsys):
    code = main(fit_args(toy_files, tmp_path / "m", "--method", "knn"))
    assert code == 2
    assert "unknown method 'knn'" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".npz"])
def test_reweight_rows_in_file_order(suffix, fitted_model, toy_files, tmp_path):
    output = tmp_path / f"out{suffix}"
    assert main(["reweight", str(fitted_model), str(toy_files["denominator"]),
                 "--output", str(output)]) == 0
    table = read_output(output)
    sample = quasiratio.read_events(toy_files["denominator"])
    expected = quasiratio.load(fitted_model).ratio(sample)
    assert list(table) == ["ratio", "weight", "new_weight"]
    np.testing.assert_array_equal(table["ratio"], expected)
    np.testing.assert_array_equal(table["weight"], sample.sample_weight)
    np.testing.assert_array_equal(table["new_weight"], sample.sample_weight * expected)


def read_output(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    if path.suffix == ".csv":
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
    else:
        table = pq.read_table(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def test_reweight_chunked_equals_in_memory(fitted_model, toy_files, tmp_path):
    whole, chunked = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    source = str(toy_files["denominator"])
    assert main(["reweight", str(fitted_model), source, "--output", str(whole),
                 "--chunk-size", "0"]) == 0
    assert main(["reweight", str(fitted_model), source, "--output", str(chunked),
                 "--chunk-size", "700"]) == 0
    expected, result = read_output(whole), read_output(chunked)
    for name in expected:
        np.testing.assert_array_equal(result[name], expected[name])


def test_reweight_bad_extension(fitted_model, toy_files, tmp_path, capsys):
    code = main(["reweight", str(fitted_model), str(toy_files["denominator"]),
                 "--output", str(tmp_path / "out.txt")])
    assert code == 2
    assert "'.txt'" in capsys.readouterr().err
    assert not (tmp_path / "out.txt").exists()


# --- weights actually used: FxFx (18.5 % negative weights) as denominator --------------
#
# With the single feature n_partons the learned ratio is the ratio of the
# class fractions, computed exactly from the files: MLM over FxFx at
# n_partons = 2 is 0.1632 / 0.02128 = 7.67 with the signed FxFx weights
# (46 % of those events are negative) and 0.1632 / 0.1556 = 1.049 with
# unit weights. Training on every event (no validation split) makes these
# the exact minimisers, so the only tolerance is convergence: 20 epochs
# reach both within 2 %, and 10 % is allowed.
SIGNED_RATIO_2, UNIT_RATIO_2 = 0.1632 / 0.0212834, 0.1632 / 0.1556
LHE_FIT = ["--epochs", "20", "--batch-size", "1024", "--learning-rate", "0.01",
           "--hidden", "16", "--validation-fraction", "0", "--method", "carl",
           "--features", "n_partons"]


@pytest.fixture(scope="module")
def z_samples():
    fxfx = quasiratio.read_events(FXFX, features=["n_partons"])
    mlm = quasiratio.read_events(MLM, features=["n_partons"])
    return mlm, fxfx


def ratio_at_two_partons(model) -> float:
    return float(model.ratio(np.array([[2.0]]))[0])


def test_fxfx_weights_used_in_api(z_samples):
    from quasiratio.estimators import make_estimator

    mlm, fxfx = z_samples
    config = TrainingConfig(epochs=20, batch_size=1024, learning_rate=0.01,
                            validation_fraction=0.0, progress=False)
    weighted = make_estimator("carl", config=config, hidden=(16,)).fit(mlm, fxfx)
    unit = make_estimator("carl", config=config, hidden=(16,)).fit(
        mlm, fxfx.with_weights(np.ones(len(fxfx))))
    assert ratio_at_two_partons(weighted) == pytest.approx(SIGNED_RATIO_2, rel=0.1)
    assert ratio_at_two_partons(unit) == pytest.approx(UNIT_RATIO_2, rel=0.1)
    assert ratio_at_two_partons(weighted) > 5 * ratio_at_two_partons(unit)


def test_fxfx_weights_used_in_cli(z_samples, tmp_path):
    mlm, fxfx = z_samples
    numerator = write_parquet(tmp_path / "mlm.parquet", {"n_partons": mlm.x[:, 0]})
    # The same FxFx events with the weight under a name the reader does not
    # take by default: without --denominator-weight it must warn and use 1.
    unweighted = write_parquet(tmp_path / "fxfx.parquet", {
        "n_partons": fxfx.x[:, 0], "event_weight": fxfx.sample_weight})

    weighted_dir, unit_dir = tmp_path / "weighted", tmp_path / "unit"
    assert main(["fit", "--numerator", str(numerator), "--denominator", str(FXFX),
                 "--output", str(weighted_dir), *LHE_FIT]) == 0
    with pytest.warns(UnusedWeightWarning, match="event_weight"):
        assert main(["fit", "--numerator", str(numerator), "--denominator", str(unweighted),
                     "--output", str(unit_dir), *LHE_FIT]) == 0

    weighted, unit = quasiratio.load(weighted_dir), quasiratio.load(unit_dir)
    assert ratio_at_two_partons(weighted) == pytest.approx(SIGNED_RATIO_2, rel=0.1)
    assert ratio_at_two_partons(unit) == pytest.approx(UNIT_RATIO_2, rel=0.1)


# --- interrupted runs ---------------------------------------------------------------


def start_cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "quasiratio", "-q", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"process ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    """10,000 events per class in one feature."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(9)
    return {role: write_parquet(folder / f"{role}.parquet",
                                {"a": rng.normal(shift, 1.0, 10_000)})
            for role, shift in (("numerator", 0.3), ("denominator", 0.0))}


def long_fit(files: dict, output: Path, *extra: str) -> list[str]:
    return ["fit", "--numerator", str(files["numerator"]), "--denominator",
            str(files["denominator"]), "--output", str(output), "--patience", "1000",
            "--hidden", "16", "--batch-size", "256", "--json", *extra]


def model_weights(path: Path) -> bytes:
    return (path / "weights.safetensors").read_bytes()


def test_killed_fit_resumes(long_files, tmp_path, capsys):
    output = tmp_path / "model"
    checkpoint = tmp_path / "model.checkpoint" / "checkpoint.pt"

    # SIGKILL after the first checkpoint: no model directory appears.
    process = start_cli(*long_fit(long_files, output, "--epochs", "1000"))
    wait_for(checkpoint.exists, process)
    process.kill()
    process.wait()
    assert not output.exists()

    # The epoch count may change on resume; the other options may not.
    import torch

    saved = torch.load(checkpoint, weights_only=True)
    done = int(saved["epoch"]) + 1
    code = main(long_fit(long_files, output, "--epochs", str(done + 2), "--resume"))
    losses = json.loads(capsys.readouterr().out)["losses"]["network"]["train"]
    assert code == 0
    assert len(losses) == done + 2
    assert losses[:done] == saved["history"]["train_loss"]
    assert quasiratio.load(output).method == "revert"
    assert not checkpoint.exists()

    # A killed later run leaves the complete model in place, unchanged.
    previous = model_weights(output)
    process = start_cli(*long_fit(long_files, output, "--epochs", "1000", "--seed", "3"))
    wait_for(checkpoint.exists, process)
    process.kill()
    process.wait()
    assert model_weights(output) == previous


def test_interrupted_fit_saves_best_model(long_files, tmp_path):
    output = tmp_path / "model"
    checkpoint = tmp_path / "model.checkpoint" / "checkpoint.pt"
    process = start_cli(*long_fit(long_files, output, "--epochs", "1000"))
    wait_for(checkpoint.exists, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in err
    assert json.loads(out)["interrupted"] is True
    assert quasiratio.load(output).method == "revert"
    assert checkpoint.exists()


def test_killed_reweight_keeps_previous_file(fitted_model, tmp_path):
    rng = np.random.default_rng(2)
    events = write_parquet(tmp_path / "events.parquet", {
        "a": rng.normal(size=200_000), "b": rng.normal(size=200_000)})
    output = tmp_path / "out.parquet"
    output.write_bytes(b"previous complete output")

    def partial_written() -> bool:
        return any(p.stat().st_size > 0 for p in tmp_path.glob(".out.*.partial.parquet"))

    process = start_cli("reweight", str(fitted_model), str(events), "--output", str(output),
                        "--chunk-size", "5000")
    wait_for(partial_written, process)
    process.kill()
    process.wait()
    assert output.read_bytes() == b"previous complete output"

    assert main(["reweight", str(fitted_model), str(events), "--output", str(output),
                 "--chunk-size", "50000"]) == 0
    assert pq.ParquetFile(output).metadata.num_rows == 200_000


def test_rosmm_resume_keeps_stages_apart(toy_files, tmp_path):
    # RoSMM trains two sub-classifiers one after the other; with a shared
    # checkpoint file the second one found the first one's state and failed.
    output = tmp_path / "rosmm"
    assert main(fit_args(toy_files, output, "--method", "rosmm", "--resume")) == 0
    model = quasiratio.load(output)
    assert set(model.sub_models_) == {"pos_pos", "pos_neg", "neg_pos", "neg_neg"}
