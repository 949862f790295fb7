import dataclasses
import warnings

import matplotlib
import numpy as np
import pytest
import torch

from quasiratio.errors import InputError, SmallTotalWarning, TrainingError
from quasiratio.losses import carl_loss
from quasiratio.networks import MLP
from quasiratio.training import TrainingConfig, train

matplotlib.use("Agg")

QUIET = dict(progress=False, num_threads=1)


def _data(n=2000, seed=0, flip=False):
    """1-D classes N(0.5, 1) against N(0, 1), weights summing to 1 per class."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.float32)
    x = rng.normal(0.5 * y, 1.0).astype(np.float32)[:, None]
    if flip:
        y = 1 - y
    weight = np.full(n, 2.0 / n, dtype=np.float32)
    return {"x": torch.tensor(x), "y": torch.tensor(y), "weight": torch.tensor(weight)}


def _objective(model, batch):
    return carl_loss(model(batch["x"]), batch["y"])


def _network():
    torch.manual_seed(0)
    return MLP(1, (8,))


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", 2.5),
        ("learning_rate", -1e-3),
        ("learning_rate", float("nan")),
        ("schedule", "linear"),
        ("weight_decay", -0.1),
        ("validation_fraction", 1.0),
        ("patience", 0),
        ("seed", -1),
        ("device", "gpu"),
        ("num_threads", 0),
        ("progress", "yes"),
        ("mixed_precision", 1),
    ],
)
def test_config_rejects_invalid(field, value):
    with pytest.raises(InputError, match=rf"{field}={value!r} is invalid"):
        TrainingConfig(**{field: value})


def test_config_resume_needs_directory():
    with pytest.raises(InputError, match="resume=True is invalid: it needs checkpoint_dir"):
        TrainingConfig(resume=True)


def test_config_is_frozen_and_round_trips():
    config = TrainingConfig(epochs=3, schedule="plateau")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="unknown training options"):
        TrainingConfig.from_dict({"epoch": 3})


def test_cuda_unavailable_is_input_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(InputError, match="CUDA is not available"):
        train(_network(), _objective, _data(), TrainingConfig(device="cuda", **QUIET))


def test_train_learns_and_records_history():
    model = _network()
    config = TrainingConfig(epochs=4, batch_size=128, learning_rate=1e-2, **QUIET)
    history = train(model, _objective, _data(), config, validation=_data(seed=1))
    assert len(history.train_loss) == 4
    assert len(history.validation_loss) == 4
    assert len(history.learning_rate) == 4
    # Cross-entropy of two classes with total 1 each starts near 2 log 2.
    assert history.train_loss[0] == pytest.approx(2 * np.log(2), abs=0.1)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_epoch is not None
    assert not history.interrupted


def test_seeded_runs_are_identical():
    config = TrainingConfig(epochs=2, batch_size=100, **QUIET)
    first, second = _network(), _network()
    train(first, _objective, _data(), config)
    train(second, _objective, _data(), config)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_nonfinite_loss_names_epoch_and_batch():
    data = _data(n=400)
    data["poison"] = torch.zeros(400)
    data["poison"][123] = 1.0

    def objective(model, batch):
        loss = _objective(model, batch)
        return torch.where(batch["poison"] > 0, torch.full_like(loss, float("nan")), loss)

    config = TrainingConfig(epochs=3, batch_size=50, **QUIET)
    with pytest.raises(TrainingError, match=r"epoch 1, batch \d+ of 8"):
        train(_network(), objective, data, config)


def test_early_stopping_restores_best():
    # Validation labels are flipped, so the validation loss rises from epoch 1 on.
    model = _network()
    config = TrainingConfig(epochs=20, batch_size=100, learning_rate=2e-2, patience=2,
                            schedule="constant", **QUIET)
    validation = _data(seed=1, flip=True)
    history = train(model, _objective, _data(), config, validation=validation)
    assert history.stopped_early
    assert len(history.train_loss) == history.best_epoch + 3
    with torch.no_grad():
        final = float((validation["weight"] * _objective(model, validation)).sum())
    assert final == pytest.approx(history.validation_loss[history.best_epoch], rel=1e-5)


def test_zero_sum_validation_is_not_used():
    # 50 positive and 50 negative numerator events of equal |w| sum to zero.
    validation = _data(n=200, seed=1, flip=True)
    numerator = validation["y"] == 1
    signs = torch.where(torch.arange(200) % 4 < 2, 1.0, -1.0)
    validation["weight"] = torch.where(numerator, 5394.43 * signs, validation["weight"])
    validation["weight"] = validation["weight"].double()
    assert float(validation["weight"][numerator].sum()) == 0.0
    config = TrainingConfig(epochs=6, batch_size=100, learning_rate=2e-2, patience=1,
                            schedule="plateau", **QUIET)
    with pytest.warns(SmallTotalWarning, match="class y=1"):
        history = train(_network(), _objective, _data(), config, validation=validation)
    assert not history.validation_reliable
    assert not history.stopped_early
    assert len(history.train_loss) == 6
    assert history.best_epoch == 5


def test_keyboard_interrupt_keeps_best_model():
    calls = {"n": 0}

    def objective(model, batch):
        calls["n"] += 1
        if calls["n"] == 25:  # 10 training batches plus 1 validation chunk per epoch
            raise KeyboardInterrupt
        return _objective(model, batch)

    model = _network()
    config = TrainingConfig(epochs=10, batch_size=200, **QUIET)
    history = train(model, objective, _data(), config, validation=_data(seed=1))
    assert history.interrupted
    assert len(history.train_loss) == 2
    assert history.best_epoch in (0, 1)


def test_resume_continues_identically(tmp_path):
    data, validation = _data(), _data(seed=1)
    config = TrainingConfig(epochs=4, batch_size=100, checkpoint_dir=str(tmp_path), **QUIET)
    full = _network()
    train(full, _objective, data, config.replace(checkpoint_dir=None), validation=validation)
    calls = {"n": 0}

    def killed_in_third_epoch(model, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 21 + 5:  # 20 training batches plus 1 validation chunk per epoch
            raise KeyboardInterrupt
        return _objective(model, batch)

    interrupted = train(_network(), killed_in_third_epoch, data, config, validation=validation)
    assert interrupted.interrupted
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed = _network()
    history = train(resumed, _objective, data, config.replace(resume=True),
                    validation=validation)
    assert len(history.train_loss) == 4
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_resume_rejects_other_run(tmp_path):
    config = TrainingConfig(epochs=1, batch_size=100, checkpoint_dir=str(tmp_path), **QUIET)
    train(_network(), _objective, _data(), config)
    with pytest.raises(TrainingError, match="other data, network or training options"):
        train(_network(), _objective, _data(seed=5), config.replace(resume=True))


def test_resume_without_checkpoint_starts_afresh(tmp_path):
    config = TrainingConfig(epochs=1, checkpoint_dir=str(tmp_path), resume=True, **QUIET)
    history = train(_network(), _objective, _data(), config)
    assert len(history.train_loss) == 1


def test_data_length_mismatch_is_input_error():
    data = _data()
    data["weight"] = data["weight"][:-1]
    with pytest.raises(InputError, match="differ in length"):
        train(_network(), _objective, data, TrainingConfig(**QUIET))


def test_thread_count_restored():
    before = torch.get_num_threads()
    train(_network(), _objective, _data(n=100), TrainingConfig(epochs=1, **QUIET))
    assert torch.get_num_threads() == before


def test_history_plot_draws_both_curves():
    history = train(_network(), _objective, _data(), TrainingConfig(epochs=2, **QUIET),
                    validation=_data(seed=1))
    ax = history.plot()
    labels = [line.get_label() for line in ax.get_lines()]
    assert "training" in labels
    assert "validation" in labels


def test_progress_bar_runs(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(_network(), _objective, _data(n=100), TrainingConfig(epochs=1, progress=True))
    assert "training" in capsys.readouterr().err


def test_fxfx_zero_sum_validation_warns():
    # All FxFx weights are +-5394.4305, so 50 positive and 50 negative events
    # sum to zero: that validation class total must not drive early stopping.
    from pathlib import Path

    from quasiratio.io import read_events

    data_dir = Path(__file__).resolve().parents[1] / "data"
    path = data_dir / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
    sample = read_events(path).select(["l1_pt", "l1_eta"])
    w = sample.sample_weight
    chosen = np.concatenate([np.flatnonzero(w > 0)[:50], np.flatnonzero(w < 0)[:50]])
    rest = np.setdiff1d(np.arange(len(w)), chosen)[:2000]
    x = np.log(sample.x[:, :1].clip(1.0))  # log pt keeps the inputs of order 1

    def tensors(index, label):
        return {
            "x": torch.tensor(np.c_[x[index], sample.x[index, 1:]], dtype=torch.float32),
            "y": torch.full((len(index),), label),
            "weight": torch.tensor(w[index] / np.abs(w[index]).sum(), dtype=torch.float64),
        }

    def joined(*parts):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    data = joined(tensors(rest[:1000], 1.0), tensors(rest[1000:], 0.0))
    data["weight"] = data["weight"].float()
    validation = joined(tensors(chosen, 1.0), tensors(rest[:100], 0.0))
    assert abs(float(validation["weight"][:100].sum())) < 1e-12
    torch.manual_seed(0)
    network = MLP(2, (8,))
    config = TrainingConfig(epochs=4, batch_size=256, patience=1, **QUIET)
    with pytest.warns(SmallTotalWarning, match="class y=1"):
        history = train(network, _objective, data, config, validation=validation)
    assert not history.validation_reliable
    assert len(history.train_loss) == 4
    assert history.best_epoch == 3
