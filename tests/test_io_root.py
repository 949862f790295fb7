"""ROOT reader on the shipped NanoAOD file: signed sums, weight products, jagged slots."""

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from quasiratio.errors import FileFormatError, InputError, UnusedWeightWarning
from quasiratio.io import iter_events, list_weight_names, read_events
from quasiratio.io.features import FILL_VALUE
from quasiratio.io.expressions import parse_weight

NANO = Path(__file__).resolve().parents[1] / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


@pytest.fixture(scope="module")
def tree():
    with uproot.open(NANO) as f:
        yield f["Events"].arrays(
            ["genWeight", "LHEScaleWeight", "LHEPdfWeight", "Jet_pt", "nJet", "MET_pt"],
            library="ak",
        )


@pytest.fixture(scope="module")
def nominal():
    return read_events(NANO)


def test_nanoaod_default_weight(nominal, tree):
    gen = ak.to_numpy(tree.genWeight).astype(np.float64)
    assert len(nominal) == 200
    assert nominal.weight_name == "genWeight"
    assert np.array_equal(nominal.sample_weight, gen)


def test_nanoaod_signed_summary(nominal):
    # 174 events at +225892.45 and 26 at -225892.45 (float32 values summed in float64).
    summary = nominal.summary()
    w = np.float64(np.float32(225892.45))
    assert summary.events == 200
    assert summary.sum_weights == pytest.approx((174 - 26) * w, rel=1e-12)
    assert summary.sum_abs_weights == pytest.approx(200 * w, rel=1e-12)
    assert summary.negative_fraction == 0.13
    assert summary.effective_sample_size == pytest.approx(148**2 / 200, rel=1e-12)
    assert summary.sum_weights < summary.sum_abs_weights


def test_scale_variation_product(tree):
    sample = read_events(NANO, weight="genWeight * LHEScaleWeight[8]")
    expected = ak.to_numpy(tree.genWeight).astype(np.float64) * ak.to_numpy(
        tree.LHEScaleWeight[:, 8]
    ).astype(np.float64)
    assert sample.weight_name == "genWeight * LHEScaleWeight[8]"
    assert np.array_equal(sample.sample_weight, expected)
    # A relative variation is not the nominal: the two weight arrays must differ.
    assert not np.array_equal(sample.sample_weight, ak.to_numpy(tree.genWeight))


def test_product_with_constant(tree):
    sample = read_events(NANO, weight="0.5*genWeight*LHEPdfWeight[3]")
    expected = (
        0.5
        * ak.to_numpy(tree.genWeight).astype(np.float64)
        * ak.to_numpy(tree.LHEPdfWeight[:, 3]).astype(np.float64)
    )
    assert np.array_equal(sample.sample_weight, expected)


def test_jagged_slots_padded(nominal, tree):
    jet2 = nominal.x[:, nominal.feature_names.index("Jet_pt[1]")]
    n_jet = ak.to_numpy(tree.nJet)
    assert np.all(jet2[n_jet < 2] == FILL_VALUE)
    assert np.array_equal(
        jet2[n_jet >= 2], ak.to_numpy(tree.Jet_pt[n_jet >= 2][:, 1]).astype(np.float64)
    )


def test_user_features(tree):
    sample = read_events(NANO, features=["MET_pt", "Jet_pt[0]", "nJet"])
    assert sample.feature_names == ("MET_pt", "Jet_pt[0]", "nJet")
    assert np.array_equal(sample.x[:, 0], ak.to_numpy(tree.MET_pt).astype(np.float64))


@pytest.mark.parametrize(
    "expression",
    ["genWeight + 1", "__import__('os').system('true')", "genWeight ** 2", "genWeight[-1]", ""],
)
def test_weight_expression_not_evaluated(expression):
    with pytest.raises(InputError, match="invalid weight expression"):
        parse_weight(expression)


def test_weight_index_out_of_range():
    with pytest.raises(
        FileFormatError, match=r"200 events have fewer than 10 entries in 'LHEScaleWeight'"
    ):
        read_events(NANO, weight="genWeight * LHEScaleWeight[9]")


def test_unknown_branch_and_tree():
    with pytest.raises(InputError, match=r"no branch 'genweight'"):
        read_events(NANO, weight="genweight")
    with pytest.raises(InputError, match=r"no TTree 'Runs'; available: \['Events'\]"):
        read_events(NANO, tree="Runs")
    with pytest.raises(
        InputError, match=r"is jagged \(a list per event\); pick one entry such as Jet_pt\[0\]"
    ):
        read_events(NANO, features=["Jet_pt"])


def test_weight_names_listed():
    names = list_weight_names(NANO)
    assert "genWeight" in names
    assert "LHEScaleWeight[8]" in names
    assert "LHEScaleWeight[9]" not in names
    assert "nLHEScaleWeight" not in names


def test_iter_events_chunks(nominal):
    chunks = list(iter_events(NANO, chunk_size=64))
    assert [len(c) for c in chunks] == [64, 64, 64, 8]
    assert np.array_equal(np.concatenate([c.sample_weight for c in chunks]), nominal.sample_weight)
    assert np.array_equal(np.concatenate([c.x for c in chunks]), nominal.x)


def test_damaged_root_file(tmp_path):
    bad = tmp_path / "bad.root"
    bad.write_bytes(NANO.read_bytes()[:5000])
    with pytest.raises(FileFormatError, match=r"bad\.root"):
        read_events(bad)


def test_damaged_baskets(tmp_path):
    data = bytearray(NANO.read_bytes())
    start = len(data) // 2
    data[start : start + 2000] = bytes(2000)
    bad = tmp_path / "zeroed.root"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=r"zeroed\.root: reading the ROOT data failed"):
        read_events(bad)
    with pytest.raises(FileFormatError, match=r"zeroed\.root: reading the ROOT data failed"):
        list(iter_events(bad, chunk_size=50))


def write_tree(path, branches):
    # mktree writes a TTree; plain assignment writes an RNTuple in uproot 5.7.
    with uproot.recreate(path) as f:
        f.mktree("tree", {name: values.dtype for name, values in branches.items()})
        f["tree"].extend(branches)


def test_plain_tree_weight_rule(tmp_path):
    x = np.arange(5.0)
    write_tree(
        tmp_path / "plain.root", {"x": x, "y": 2 * x, "weight": np.array([1.0, -1, 2, 2, 1])}
    )
    write_tree(tmp_path / "unused.root", {"x": x, "evtWeight": np.full(5, 3.0)})
    sample = read_events(tmp_path / "plain.root")
    assert sample.feature_names == ("x", "y")
    assert sample.sample_weight.tolist() == [1.0, -1.0, 2.0, 2.0, 1.0]
    with pytest.warns(UnusedWeightWarning, match=r"\['evtWeight'\] were found but not used"):
        unused = read_events(tmp_path / "unused.root")
    assert unused.feature_names == ("x",)
    assert np.all(unused.sample_weight == 1.0)


def test_rntuple_rejected(tmp_path):
    with uproot.recreate(tmp_path / "ntuple.root") as f:
        f["ntuple"] = {"x": np.arange(3.0)}
    with pytest.raises(InputError, match=r"contains no TTree .*reads TTrees only"):
        read_events(tmp_path / "ntuple.root")
