"""Mistakes a new user makes on the command line: each must fail cleanly and keep their files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from quasiratio.cli import main
from quasiratio.errors import ExtrapolationWarning

FAST = ["--epochs", "1", "--batch-size", "256", "--hidden", "8"]


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    """Numerator N(0.5, 1) x N(0, 1) and denominator N(0, 1)^2 as CSV, 500 events each."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(11)
    files = {}
    for role, shift in (("numerator", 0.5), ("denominator", 0.0)):
        rows = np.column_stack([rng.normal(shift, 1.0, 500), rng.normal(0.0, 1.0, 500),
                                np.ones(500)])
        path = folder / f"{role}.csv"
        np.savetxt(path, rows, delimiter=",", header="a,b,weight", comments="")
        files[role] = path
    return files


def fit_args(files: dict, output: Path, *extra: str) -> list[str]:
    return ["fit", "--numerator", str(files["numerator"]), "--denominator",
            str(files["denominator"]), "--output", str(output), *FAST, *extra]


@pytest.fixture(scope="module")
def model(toy_files, tmp_path_factory):
    output = tmp_path_factory.mktemp("model") / "model"
    assert main(fit_args(toy_files, output)) == 0
    return output


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def copy_model(model: Path, folder: Path) -> Path:
    folder.mkdir()
    for part in model.iterdir():
        (folder / part.name).write_bytes(part.read_bytes())
    return folder


def test_reweight_rejects_input_as_output(model, toy_files, tmp_path, capsys):
    source = tmp_path / "events.csv"
    source.write_bytes(toy_files["denominator"].read_bytes())
    before = source.read_bytes()
    assert main(["reweight", str(model), str(source), "--output", str(source)]) == 2
    assert "is the input event file" in error_line(capsys)
    assert source.read_bytes() == before


def test_fit_rejects_file_as_output(toy_files, tmp_path, capsys):
    victim = tmp_path / "events.csv"
    victim.write_text("a,b\n1,2\n")
    assert main(fit_args(toy_files, victim)) == 2
    assert "is an existing file" in error_line(capsys)
    assert victim.read_text() == "a,b\n1,2\n"


def test_fit_keeps_folder_of_other_files(toy_files, tmp_path, capsys):
    (tmp_path / "analysis").mkdir()
    notes = tmp_path / "analysis" / "notes.txt"
    notes.write_text("keep")
    assert main(fit_args(toy_files, tmp_path / "analysis")) == 2
    assert "contains files but no metadata.json" in error_line(capsys)
    assert notes.read_text() == "keep"


def test_fit_replaces_earlier_model(toy_files, tmp_path):
    output = tmp_path / "model"
    assert main(fit_args(toy_files, output)) == 0
    assert main(fit_args(toy_files, output, "--seed", "1")) == 0
    assert json.loads((output / "metadata.json").read_text())["training"]["seed"] == 1


def test_evaluate_rejects_working_directory(model, toy_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    arguments = ["evaluate", str(model), "--numerator", str(toy_files["numerator"]),
                 "--denominator", str(toy_files["denominator"]), "--no-classifier-test",
                 "--report", "."]
    assert main(arguments) == 2
    assert "working directory" in error_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_load_rejects_edited_feature_list(model, toy_files, tmp_path, capsys):
    edited = copy_model(model, tmp_path / "edited")
    metadata = json.loads((edited / "metadata.json").read_text())
    metadata["feature_names"] = ["a"]
    (edited / "metadata.json").write_text(json.dumps(metadata))
    output = tmp_path / "out.csv"
    arguments = ["reweight", str(edited), str(toy_files["denominator"]), "--output", str(output)]
    assert main(arguments) == 2
    assert "lists 1 input names but network 'network' takes 2 inputs" in error_line(capsys)
    assert not output.exists()


def test_unknown_method_lists_lazy_methods(toy_files, tmp_path, capsys):
    assert main(fit_args(toy_files, tmp_path / "model", "--method", "knn")) == 2
    message = error_line(capsys)
    for method in ("rosmm", "auto", "alice", "alices"):
        assert repr(method) in message


def test_reweight_rejects_folder_as_output(model, toy_files, tmp_path, capsys):
    folder = tmp_path / "rows.csv"
    folder.mkdir()
    arguments = ["reweight", str(model), str(toy_files["denominator"]), "--output", str(folder)]
    assert main(arguments) == 2
    assert "is an existing folder" in error_line(capsys)
    assert list(tmp_path.iterdir()) == [folder]


def write_rows(path: Path, rows: list[tuple[float, float]]) -> Path:
    lines = ["a,b,weight"] + [f"{a!r},{b!r},1.0" for a, b in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ratio_rejects_beyond_float32(model):
    from quasiratio import load
    from quasiratio.errors import InputError

    # 1e300 is finite in float64 but infinite in the float32 network, which made the ratio NaN.
    with pytest.raises(InputError, match="float32 range"):
        load(model).ratio(np.array([[1e300, 0.0]]))


def test_reweight_rejects_infinite_ratio(model, tmp_path, capsys):
    # The training range is about +-4. A SiLU network grows linearly far from it in most
    # directions, so features of +-1e30 drive some logit beyond the 710 at which
    # -2 sinh(z) overflows float64.
    far = [(1e30, 0.0), (-1e30, 0.0), (0.0, 1e30), (0.0, -1e30)]
    events = write_rows(tmp_path / "far.csv", [(0.1, 0.0), *far])
    output = tmp_path / "rows.csv"
    assert main(["reweight", str(model), str(events), "--output", str(output)]) == 2
    assert "events get an infinite ratio, 4 lie outside" in error_line(capsys)
    assert not output.exists()


def test_reweight_counts_extrapolated_events(model, tmp_path, capsys):
    events = write_rows(tmp_path / "near.csv", [(0.1, 0.0), (0.2, 0.1), (9.0, 0.0)])
    output = tmp_path / "rows.csv"
    arguments = ["reweight", str(model), str(events), "--output", str(output), "--json"]
    with pytest.warns(ExtrapolationWarning, match="1 of 3 events"):
        assert main(arguments) == 0
    assert json.loads(capsys.readouterr().out)["outside_support"] == 1


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_evaluate_rejects_out_of_range_seed(model, toy_files, seed, capsys):
    # numpy's legacy MT19937 seeding accepts 0 to 2**32 - 1 and raised a traceback otherwise.
    arguments = ["evaluate", str(model), "--numerator", str(toy_files["numerator"]),
                 "--denominator", str(toy_files["denominator"]), "--seed", seed]
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert f"invalid seed '{seed}'" in error_line(capsys)


def test_fit_rejects_weight_as_feature(toy_files, tmp_path, capsys):
    output = tmp_path / "model"
    assert main(fit_args(toy_files, output, "--features", "a", "weight")) == 2
    assert "'weight' is the event weight, so it cannot also be a feature" in error_line(capsys)
    assert not output.exists()


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_inspect_rejects_unequal_columns(suffix, tmp_path, capsys):
    path = tmp_path / f"events{suffix}"
    if suffix == ".npz":
        np.savez(path, a=np.ones(10), b=np.ones(9))
    else:
        import h5py

        with h5py.File(path, "w") as handle:
            handle["a"] = np.ones(10)
            handle["b"] = np.ones(9)
    assert main(["inspect", str(path)]) == 2
    assert "columns have different lengths {'a': 10, 'b': 9}" in error_line(capsys)


def test_streamed_reweight_logs_weight_once(model, toy_files, tmp_path, caplog):
    output = tmp_path / "rows.csv"
    arguments = ["reweight", str(model), str(toy_files["denominator"]), "--output", str(output),
                 "--chunk-size", "50"]
    with caplog.at_level("INFO", logger="quasiratio.io.tables"):
        assert main(arguments) == 0
    choices = [r for r in caplog.records if "as the event weight" in r.getMessage()]
    assert len(choices) == 1


def test_evaluate_keeps_input_folder(model, toy_files, tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    for path in toy_files.values():
        (folder / path.name).write_bytes(path.read_bytes())
    arguments = ["evaluate", str(model), "--numerator", str(folder / "numerator.csv"),
                 "--denominator", str(folder / "denominator.csv"), "--no-classifier-test",
                 "--report", str(folder)]
    assert main(arguments) == 2
    assert "contains files but no metrics.json" in error_line(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["denominator.csv", "numerator.csv"]


def test_demo_keeps_folder_of_other_files(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    assert main(["demo", "gaussian-mixture", "--quick", "--output", str(tmp_path)]) == 2
    assert "contains files but no demo.json" in error_line(capsys)
    assert notes.read_text() == "keep"


def test_cli_warning_is_one_line():
    from quasiratio.cli import _format_warning
    from quasiratio.errors import UnusedWeightWarning

    warning = UnusedWeightWarning("events.csv: weight-like columns were found but not used")
    text = _format_warning(warning, UnusedWeightWarning, "tables.py", 71, "    warnings.warn(")
    assert text == ("UnusedWeightWarning: events.csv: weight-like columns were found but "
                    "not used")


def test_resume_from_foreign_checkpoint(toy_files, tmp_path, capsys):
    output = tmp_path / "model"
    checkpoint = tmp_path / "model.checkpoint"
    checkpoint.mkdir()
    (checkpoint / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(fit_args(toy_files, output, "--resume")) == 2
    message = error_line(capsys)
    assert "cannot read the checkpoint" in message
    assert "weights_only" not in message


def test_cli_log_hides_other_packages_info():
    from quasiratio.cli import _own_or_warning

    def record(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "message", None, None)

    assert _own_or_warning(record("quasiratio.reweighting", logging.INFO))
    assert _own_or_warning(record("onnx_ir.passes", logging.WARNING))
    assert not _own_or_warning(record("onnx_ir.passes", logging.INFO))


def test_fit_names_fix_for_empty_file(toy_files, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,weight\n")
    files = {"numerator": empty, "denominator": toy_files["denominator"]}
    assert main(fit_args(files, tmp_path / "model")) == 2
    assert error_line(capsys).endswith(
        f"the {empty} sample has no events; pass a file or array with events"
    )


def test_fit_other_column_order_no_warning(toy_files, tmp_path, caplog):
    swapped = tmp_path / "numerator.csv"
    rows = np.loadtxt(toy_files["numerator"], delimiter=",", skiprows=1)
    np.savetxt(swapped, rows[:, [1, 0, 2]], delimiter=",", header="b,a,weight", comments="")
    files = {"numerator": swapped, "denominator": toy_files["denominator"]}
    with caplog.at_level("WARNING", logger="quasiratio.cli._common"):
        assert main(fit_args(files, tmp_path / "model")) == 0
    assert not [r for r in caplog.records if "exist in only one" in r.getMessage()]


@pytest.mark.parametrize("support", [{}, None, {"min": ["a", "b"], "max": [1.0, 2.0]}])
def test_load_rejects_edited_support(model, tmp_path, support):
    from quasiratio import load
    from quasiratio.errors import ModelFormatError

    edited = copy_model(model, tmp_path / "edited")
    metadata = json.loads((edited / "metadata.json").read_text())
    metadata["support"] = support
    (edited / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelFormatError, match="invalid 'support' entry"):
        load(edited)
