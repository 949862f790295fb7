import json
import pickle

import numpy as np
import pytest
import torch

import quasiratio
from quasiratio.errors import InputError, ModelFormatError
from quasiratio.estimators import CARL, REVERT, load
from quasiratio.estimators.model_io import FORMAT_VERSION
from quasiratio.events import EventSample
from quasiratio.training import TrainingConfig

CONFIG = TrainingConfig(epochs=2, batch_size=256, progress=False, num_threads=1)


def _samples():
    rng = np.random.default_rng(0)
    names = ["pt", "eta"]
    numerator = EventSample.from_arrays(rng.normal(0.5, 1, (3_000, 2)), feature_names=names)
    denominator = EventSample.from_arrays(rng.normal(0, 1, (3_000, 2)),
                                          rng.uniform(0.5, 2, 3_000), feature_names=names)
    return numerator, denominator


@pytest.fixture(scope="module")
def fitted():
    numerator, denominator = _samples()
    return {
        "carl": CARL(hidden=(8, 8), calibration="isotonic", config=CONFIG).fit(
            numerator, denominator),
        "revert": REVERT(hidden=(8,), activation="tanh", config=CONFIG).fit(
            numerator, denominator),
    }


@pytest.fixture()
def saved(fitted, tmp_path):
    path = tmp_path / "model"
    fitted["revert"].save(path)
    return path


@pytest.mark.parametrize("method", ["carl", "revert"])
def test_round_trip_gives_same_ratios(fitted, tmp_path, method):
    estimator = fitted[method]
    estimator.save(tmp_path / "model")
    loaded = quasiratio.load(tmp_path / "model")
    x = np.random.default_rng(1).normal(size=(500, 2))
    assert type(loaded) is type(estimator)
    assert loaded.feature_names_ == ("pt", "eta")
    np.testing.assert_array_equal(loaded.ratio(x), estimator.ratio(x))
    np.testing.assert_array_equal(loaded.logit(x), estimator.logit(x))
    assert loaded.history_.train_loss == estimator.history_.train_loss
    assert loaded.config == estimator.config


def test_directory_contents(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["metadata.json", "weights.safetensors"]
    metadata = json.loads((saved / "metadata.json").read_text())
    assert metadata["method"] == "revert"
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["library_version"] == quasiratio.__version__
    assert metadata["feature_names"] == ["pt", "eta"]
    assert metadata["networks"]["network"] == {
        "kind": "mlp", "n_in": 2, "hidden": [8], "activation": "tanh"}
    assert len(metadata["scaling"]["network"]["mean"]) == 2
    assert metadata["training"]["epochs"] == 2


def test_save_replaces_existing_directory(fitted, saved):
    fitted["carl"].save(saved)
    assert isinstance(load(saved), CARL)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_load_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used while loading a model")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    assert load(saved).ratio(np.zeros((1, 2))).shape == (1,)


def _edit_metadata(path, change):
    metadata = json.loads((path / "metadata.json").read_text())
    change(metadata)
    (path / "metadata.json").write_text(json.dumps(metadata))


def test_newer_format_rejected_with_version(saved):
    _edit_metadata(saved, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFormatError, match=rf"model format {FORMAT_VERSION + 1}"):
        load(saved)


def test_newer_library_rejected_with_version(saved):
    _edit_metadata(saved, lambda m: m.update(library_version="99.1.0"))
    with pytest.raises(ModelFormatError, match=r"quasiratio 99\.1\.0"):
        load(saved)


def test_truncated_metadata_rejected(saved):
    text = (saved / "metadata.json").read_text()
    (saved / "metadata.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load(saved)


def test_missing_metadata_entries_rejected(saved):
    _edit_metadata(saved, lambda m: m.pop("networks"))
    with pytest.raises(ModelFormatError, match=r"lacks the entries \['networks'\]"):
        load(saved)


def test_truncated_weights_rejected(saved):
    data = (saved / "weights.safetensors").read_bytes()
    (saved / "weights.safetensors").write_bytes(data[:-100])
    with pytest.raises(ModelFormatError, match="checksum"):
        load(saved)


def test_tampered_weights_rejected(saved):
    data = bytearray((saved / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (saved / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="checksum"):
        load(saved)


def test_pickle_in_place_of_weights_rejected(saved):
    # A pickle payload renamed to the weights file is never unpickled.
    payload = pickle.dumps({"x": 1})
    (saved / "weights.safetensors").write_bytes(payload)
    with pytest.raises(ModelFormatError, match="checksum"):
        load(saved)


def test_architecture_mismatch_rejected(saved):
    _edit_metadata(saved, lambda m: m["networks"]["network"].update(hidden=[16]))
    with pytest.raises(ModelFormatError, match="do not fit its description"):
        load(saved)


def test_unknown_method_rejected(saved):
    _edit_metadata(saved, lambda m: m.update(method="magic"))
    with pytest.raises(ModelFormatError, match="unknown method 'magic'"):
        load(saved)


def test_missing_files_rejected(saved, tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        load(tmp_path / "nowhere")
    (saved / "weights.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="missing"):
        load(saved)


def test_custom_network_needs_instance(tmp_path):
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.layer(x)

    numerator, denominator = _samples()
    estimator = CARL(network=Linear(), config=CONFIG).fit(numerator, denominator)
    estimator.save(tmp_path / "custom")
    with pytest.raises(InputError, match="network="):
        load(tmp_path / "custom")
    loaded = load(tmp_path / "custom", network=Linear())
    x = np.ones((3, 2))
    np.testing.assert_array_equal(loaded.ratio(x), estimator.ratio(x))


def test_invalid_network_spec_rejected(saved):
    _edit_metadata(saved, lambda m: m["networks"]["network"].update(activation="sigmoidal"))
    with pytest.raises(ModelFormatError, match="do not fit its description"):
        load(saved)
