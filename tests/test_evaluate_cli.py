"""``quasiratio evaluate``: metrics JSON, report folder and errors."""

import json

import numpy as np
import pytest

from quasiratio.cli import main
from quasiratio.diagnostics import write_report
from quasiratio.toys import hidden_negative
from quasiratio.training_state import TrainingHistory


class ExactModel:
    """Stands in for a saved model: the exact toy ratio and a short history."""

    method = "exact"
    feature_names_ = hidden_negative.FEATURE_NAMES
    history_ = {"train_loss": [1.0, 0.8, 0.7], "validation_loss": [1.1, 0.9, 0.85]}

    def ratio(self, sample):
        return hidden_negative.true_ratio(sample.select(self.feature_names_).x)


def _write_npz(path, sample):
    np.savez(path, x=sample.x, feature_names=np.array(sample.feature_names), weight=sample.sample_weight)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    source, target = hidden_negative.make_samples(6000, 6000, seed=21)
    _write_npz(folder / "numerator.npz", target)
    _write_npz(folder / "denominator.npz", source)
    return folder


def _arguments(files, *extra, model="model"):
    return [
        "evaluate", str(files / model),
        "--numerator", str(files / "numerator.npz"),
        "--denominator", str(files / "denominator.npz"),
        "--numerator-weight", "weight", "--denominator-weight", "weight",
        *extra,
    ]


def test_exact_model_closes_and_writes_report(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("quasiratio.estimators.load", lambda path: ExactModel())
    report = tmp_path / "report"
    assert main(_arguments(files, "--json", "--report", str(report), "--bins", "30")) == 0
    output = json.loads(capsys.readouterr().out)

    assert output["method"] == "exact"
    assert output["source_events"] == 6000
    for name in hidden_negative.FEATURE_NAMES:
        feature = output["features"][name]
        # With the exact ratio the chi-square per dof is 1 +- sqrt(2 / 29).
        assert abs(feature["chi2_per_dof"] - 1.0) < 5.0 * feature["chi2_per_dof_null_std"]
        assert feature["chi2_per_dof_before"] > 3.0
    assert abs(output["classifier_auc_z"]) < 5.0
    region = output["negative_regions"][0]
    assert region["bounds"]["x1"][0] > 0.3
    assert region["bounds"]["x2"][0] > 0.3

    expected = {
        "feature_x1.png", "feature_x2.png", "ratio_distribution.png", "loss_curves.png",
        "metrics.json", "summary.md", "index.html",
    }
    assert {p.name for p in report.iterdir()} == expected
    stored = json.loads((report / "metrics.json").read_text())
    assert stored["features"] == output["features"]
    summary = (report / "summary.md").read_text()
    assert "chi2/dof" in summary
    assert "![feature_x1.png](feature_x1.png)" in summary
    # Pipes inside cells, as in |w|, are escaped so the table stays intact.
    assert "\\|w\\|" in summary


def test_text_output_lists_metrics(files, monkeypatch, capsys):
    monkeypatch.setattr("quasiratio.estimators.load", lambda path: ExactModel())
    assert main(_arguments(files, "--no-classifier-test", "--features", "x1")) == 0
    text = capsys.readouterr().out
    assert "x1: chi2/dof" in text
    assert "x2: chi2/dof" not in text
    assert "negative region 1" in text
    assert "classifier_auc" not in text


def test_missing_model_exits_with_message(files, capsys):
    assert main(_arguments(files, "--json", model="no-such-model")) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("quasiratio evaluate: error:")
    assert "\n" not in error


def test_trained_model_evaluates(files, capsys):
    import torch

    from quasiratio.estimators import REVERT
    from quasiratio.training import TrainingConfig

    torch.set_num_threads(1)
    source, target = hidden_negative.make_samples(3000, 3000, seed=22)
    config = TrainingConfig(epochs=2, batch_size=256, progress=False, num_threads=1, seed=0)
    REVERT(hidden=(16, 16), config=config).fit(target, source).save(files / "model")
    assert main(_arguments(files, "--json", "--no-classifier-test")) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["method"] == "revert"
    assert 0.0 <= output["outside_support_fraction"] <= 1.0
    assert set(output["features"]) == set(hidden_negative.FEATURE_NAMES)


def test_write_report_replaces_previous_folder(tmp_path):
    source, target = hidden_negative.make_samples(2000, 2000, seed=23)
    ratio = hidden_negative.true_ratio(source.x)
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    (folder / "metrics.json").write_text("{}")
    # Estimators with several networks store one history per network.
    histories = {
        "positive": TrainingHistory(train_loss=[1.0, 0.9], validation_loss=[1.1, 1.0]),
        "negative": {"train_loss": [2.0, 1.5], "validation_loss": []},
    }
    content = write_report(
        folder, source, target, ratio, truth=ratio, bins=20, classifier_test=False,
        metadata={"run": "test"}, history=histories,
    )
    assert not (folder / "stale.txt").exists()
    assert content["metadata"] == {"run": "test"}
    assert content["ratio_mse"] == 0.0
    assert "loss_curves.png" in content["plots"]
    assert (folder / "loss_curves.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_negative_bins_are_drawn():
    from quasiratio.plotting import comparison_figure

    edges = np.array([0.0, 1.0, 2.0, 3.0])
    target = (np.array([0.5, 0.3, 0.2]), np.full(3, 0.01))
    signed = ("signed", np.array([0.6, -0.2, 0.6]), np.full(3, 0.02), "red")
    figure = comparison_figure([signed], target, edges, xlabel="x")
    main_axes = figure.axes[0]
    assert main_axes.get_ylim()[0] < -0.2
