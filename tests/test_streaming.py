"""Streamed (chunked) reweighting against reading the whole file at once."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import quasiratio
from quasiratio.estimators import make_estimator
from quasiratio.events import EventSample
from quasiratio.reweighting import REWEIGHT_COLUMNS, reweight_file, write_table
from quasiratio.training import TrainingConfig

DATA = Path(__file__).resolve().parents[1] / "data"
N_TABLE = 2_345


def write_inputs(folder: Path) -> dict[str, Path]:
    """The same 2,345 events with signed weights as Parquet, CSV, NPZ and HDF5."""
    rng = np.random.default_rng(4)
    columns = {"a": rng.normal(size=N_TABLE), "b": rng.exponential(size=N_TABLE),
               "weight": np.where(rng.random(N_TABLE) < 0.2, -0.5, 1.5)}
    table = pa.table(columns)
    paths = {kind: folder / f"events.{kind}" for kind in ("parquet", "csv", "npz", "h5")}
    pq.write_table(table, paths["parquet"], row_group_size=500)
    pcsv.write_csv(table, paths["csv"])
    np.savez(paths["npz"], **columns)
    with h5py.File(paths["h5"], "w", track_order=True) as h5:
        for name, values in columns.items():
            h5[name] = values
    return paths


def tiny_model(feature_names, chunk_size: int):
    """A REVERT model trained for one epoch on Gaussian toys with the given feature names."""
    rng = np.random.default_rng(0)
    n_features = len(feature_names)
    numerator = EventSample.from_arrays(rng.normal(0.3, 1.0, (400, n_features)),
                                        feature_names=feature_names)
    denominator = EventSample.from_arrays(rng.normal(0.0, 1.0, (400, n_features)),
                                          feature_names=feature_names)
    config = TrainingConfig(epochs=1, batch_size=128, progress=False)
    estimator = make_estimator("revert", config=config, hidden=(8,), chunk_size=chunk_size)
    return estimator.fit(numerator, denominator)


def read_output(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    table = pcsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    paths = write_inputs(tmp_path_factory.mktemp("inputs"))
    paths["lhe"] = DATA / "pylhe-testfile-madgraph5-3.5.8-pp_to_jj.lhe.gz"
    paths["root"] = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    return paths


FEATURES = {"lhe": ["j1_pt", "j1_eta", "j2_pt"], "root": ["nJet", "Jet_pt[0]", "Jet_eta[0]"]}


@pytest.mark.parametrize("kind", ["parquet", "csv", "npz", "h5", "lhe", "root"])
def test_chunked_equals_in_memory(kind, inputs, tmp_path):
    # Evaluation blocks of 96 events and input chunks of 128: the chunk
    # edges fall inside blocks, so the regrouping in between is exercised.
    model = tiny_model(FEATURES.get(kind, ["a", "b"]), chunk_size=96)
    whole = reweight_file(model, inputs[kind], tmp_path / "whole.parquet")
    chunked = reweight_file(model, inputs[kind], tmp_path / "chunked.parquet", chunk_size=128)
    expected = read_output(tmp_path / "whole.parquet")
    result = read_output(tmp_path / "chunked.parquet")
    assert chunked.events == whole.events
    assert chunked.chunks > 1
    for name in REWEIGHT_COLUMNS:
        np.testing.assert_array_equal(result[name], expected[name])


def test_rows_follow_file_order(inputs, tmp_path):
    model = tiny_model(["a", "b"], chunk_size=300)
    summary = reweight_file(model, inputs["parquet"], tmp_path / "out.npz", chunk_size=1000)
    result = read_output(tmp_path / "out.npz")
    sample = quasiratio.read_events(inputs["parquet"])
    expected = model.ratio(sample)
    assert summary.events == N_TABLE
    np.testing.assert_array_equal(result["ratio"], expected)
    np.testing.assert_array_equal(result["weight"], sample.sample_weight)
    np.testing.assert_array_equal(result["new_weight"], sample.sample_weight * expected)
    assert summary.sum_new_weights == pytest.approx(float(np.sum(sample.sample_weight * expected)),
                                                    rel=1e-12)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".npz"])
def test_writers_round_trip(suffix, tmp_path):
    rng = np.random.default_rng(1)
    columns = {name: rng.normal(size=1000) * 10.0 ** rng.integers(-300, 300, 1000)
               for name in REWEIGHT_COLUMNS}
    write_table(tmp_path / f"out{suffix}", columns)
    result = read_output(tmp_path / f"out{suffix}")
    assert list(result) == list(REWEIGHT_COLUMNS)
    for name in REWEIGHT_COLUMNS:
        np.testing.assert_array_equal(result[name], columns[name])
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_empty_input_gives_header_only(tmp_path):
    pq.write_table(pa.table({"a": np.zeros(0), "b": np.zeros(0)}), tmp_path / "empty.parquet")
    model = tiny_model(["a", "b"], chunk_size=300)
    summary = reweight_file(model, tmp_path / "empty.parquet", tmp_path / "out.parquet",
                            chunk_size=10)
    result = read_output(tmp_path / "out.parquet")
    assert summary.events == 0
    assert list(result) == list(REWEIGHT_COLUMNS)
    assert len(result["ratio"]) == 0
