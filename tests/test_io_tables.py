"""Table readers (Parquet, CSV, HDF5, NPZ): weight rule, feature columns, chunks, bad input."""

import warnings

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quasiratio.cli._common import load_sample
from quasiratio.errors import FileFormatError, InputError, UnusedWeightWarning
from quasiratio.io import iter_events, list_weight_names, read_events

RNG = np.random.default_rng(7)
N = 250
COLUMNS = {
    "pt": RNG.exponential(30.0, N),
    "eta": RNG.normal(0.0, 2.0, N),
    "njet": RNG.integers(0, 4, N).astype(np.float64),
    "weight": RNG.choice([-1.5, 2.0], N),
    "weight_up": RNG.normal(1.0, 0.1, N),
}


def write_table(path, columns):
    suffix = path.name.split(".", 1)[1]
    if suffix == "parquet":
        pq.write_table(pa.table(columns), path, row_group_size=100)
    elif suffix == "csv":
        names = list(columns)
        rows = np.stack([columns[n] for n in names], axis=1)
        lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    elif suffix == "h5":
        with h5py.File(path, "w", track_order=True) as f:
            for name, values in columns.items():
                f[name] = values
    else:
        np.savez(path, **columns)
    return path


FORMATS = ["t.parquet", "t.csv", "t.h5", "t.npz"]


@pytest.mark.parametrize("name", FORMATS)
def test_table_roundtrip(tmp_path, name):
    path = write_table(tmp_path / name, COLUMNS)
    sample = read_events(path)
    assert sample.feature_names == ("pt", "eta", "njet")
    assert sample.weight_name == "weight"
    assert np.array_equal(sample.sample_weight, COLUMNS["weight"])
    assert np.array_equal(sample.x[:, 0], COLUMNS["pt"])
    assert list_weight_names(path) == ["weight", "weight_up"]


@pytest.mark.parametrize("name", FORMATS)
def test_table_chunks(tmp_path, name):
    path = write_table(tmp_path / name, COLUMNS)
    chunks = list(iter_events(path, weight="weight_up", chunk_size=100))
    assert sum(len(c) for c in chunks) == N
    assert max(len(c) for c in chunks) <= 100
    assert np.array_equal(np.concatenate([c.sample_weight for c in chunks]), COLUMNS["weight_up"])
    assert all(c.feature_names == ("pt", "eta", "njet") for c in chunks)


def test_parquet_chunks_follow_request(tmp_path):
    path = write_table(tmp_path / "t.parquet", COLUMNS)
    assert [len(c) for c in iter_events(path, chunk_size=100)] == [100, 100, 50]


def test_unused_weight_column_warns(tmp_path):
    columns = {k: v for k, v in COLUMNS.items() if k != "weight"}
    path = write_table(tmp_path / "t.parquet", columns)
    with pytest.warns(UnusedWeightWarning, match=r"\['weight_up'\] were found but not used"):
        sample = read_events(path)
    assert np.all(sample.sample_weight == 1.0)
    assert "weight_up" not in sample.feature_names


def test_named_weight_does_not_warn(tmp_path):
    path = write_table(tmp_path / "t.parquet", COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedWeightWarning)
        sample = read_events(path, weight="weight_up", features=["pt"])
    assert sample.feature_names == ("pt",)
    assert np.array_equal(sample.sample_weight, COLUMNS["weight_up"])


def test_weighted_read_differs_from_unweighted(tmp_path):
    path = write_table(tmp_path / "t.parquet", COLUMNS)
    weighted = read_events(path).summary()
    unweighted = read_events(path, weight=None, features=["pt"]).summary()
    expected = float(np.sum(COLUMNS["weight"]))
    assert weighted.sum_weights == pytest.approx(expected)
    assert unweighted.sum_weights == pytest.approx(expected)
    assert weighted.negative_fraction == pytest.approx(np.mean(COLUMNS["weight"] < 0))


def test_sample_weight_column(tmp_path):
    path = write_table(
        tmp_path / "t.npz", {"x1": np.arange(3.0), "sample_weight": np.array([1.0, 2, 3])}
    )
    assert read_events(path).sample_weight.tolist() == [1.0, 2.0, 3.0]


def test_npz_matrix_with_names(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(
        path, x=np.arange(6.0).reshape(3, 2), feature_names=np.array(["a", "b"]), weight=np.ones(3)
    )
    sample = read_events(path)
    assert sample.feature_names == ("a", "b")
    assert sample.x[:, 1].tolist() == [1.0, 3.0, 5.0]


def test_nonfinite_feature_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,weight\n1,2,1\nnan,3,1\ninf,4,1\n")
    with pytest.raises(InputError, match=r"bad\.csv: features contain .* 'a' \(2 events\)"):
        read_events(path)


def test_nonfinite_weight_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,weight\n1,1\n2,nan\n")
    with pytest.raises(InputError, match=r"weight 'weight' has 1 NaN or infinite values"):
        read_events(path)


def test_nonpositive_total_rejected(tmp_path):
    # +-2 weights in equal numbers sum to exactly zero.
    path = write_table(
        tmp_path / "z.csv", {"a": np.arange(4.0), "weight": np.array([2.0, -2, 2, -2])}
    )
    assert load_sample(str(path)).summary().sum_weights == 0.0
    with pytest.raises(InputError, match=r"z\.csv: the weights sum to 0 .* positive"):
        load_sample(str(path), positive_total=True)


def test_unknown_and_text_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label,weight\n1,x,1\n2,y,1\n")
    assert read_events(path).feature_names == ("a",)
    with pytest.raises(InputError, match=r"column 'label' is not numeric"):
        read_events(path, features=["label"])
    with pytest.raises(InputError, match=r"unknown weight column 'w'; choose one of"):
        read_events(path, weight="w")
    with pytest.raises(InputError, match=r"unknown feature column 'b'"):
        read_events(path, features=["b"])


def test_damaged_tables(tmp_path):
    parquet = write_table(tmp_path / "t.parquet", COLUMNS)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[:300])
    with pytest.raises(FileFormatError, match=r"cut\.parquet: not a readable parquet file"):
        read_events(cut)
    npz = tmp_path / "cut.npz"
    npz.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(FileFormatError, match=r"cut\.npz: not a readable npz file"):
        read_events(npz)


def test_unknown_extension(tmp_path):
    with pytest.raises(InputError, match=r"unknown event file extension; use one of .lhe"):
        read_events(tmp_path / "events.txt")


def test_header_only_and_empty_column(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b,weight\n")
    sample = read_events(header_only)
    assert len(sample) == 0
    assert sample.feature_names == ("a", "b")
    blank = tmp_path / "blank.csv"
    blank.write_text("a,b,weight\n1,,1\n2,,1\n")
    with pytest.raises(InputError, match=r"'b' \(2 events\)"):
        read_events(blank)
