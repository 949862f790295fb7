"""LHE default features: names, fill value, composites and the convention-leak check."""

import functools
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from quasiratio.errors import InputError
from quasiratio.io import iter_events, read_events
from quasiratio.io.lhe import read_lhe
from quasiratio.io.lhe_sample import sample_from_lhe
from quasiratio.io.features import (
    FILL_VALUE,
    FeatureLeakWarning,
    disjoint_features,
    warn_disjoint_features,
)

DATA = Path(__file__).resolve().parents[1] / "data"
FXFX = DATA / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
MLM = DATA / "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
JJ = DATA / "pylhe-testfile-madgraph5-3.5.8-pp_to_jj.lhe.gz"
SMEFT = DATA / "event2vec-smeftsim_VBFH-1.lhe.gz"

DRELL_YAN_DEFAULT = (
    "l1_pt",
    "l1_eta",
    "l1_phi",
    "l2_pt",
    "l2_eta",
    "l2_phi",
    "j1_pt",
    "j1_eta",
    "j1_phi",
    "j2_pt",
    "j2_eta",
    "j2_phi",
    "n_leptons",
    "n_partons",
    "ll_mass",
    "ll_pt",
    "ll_rapidity",
    "jj_mass",
    "jj_delta_eta",
    "sys_mass",
    "sys_rapidity",
)


@functools.lru_cache(maxsize=None)
def parsed(path):
    """Parse each file once per module; samples with other features reuse the parse."""
    return read_lhe(path)


def sample(path, features=None):
    return sample_from_lhe(parsed(path), source=str(path), features=features)


@pytest.fixture(scope="module")
def fxfx():
    return read_events(FXFX)


@pytest.fixture(scope="module")
def mlm():
    return sample(MLM)


def column(sample, name):
    return sample.x[:, sample.feature_names.index(name)]


def test_drell_yan_default_names(fxfx, mlm):
    assert fxfx.feature_names == DRELL_YAN_DEFAULT
    assert mlm.feature_names == DRELL_YAN_DEFAULT


def test_default_set_has_no_light_masses(fxfx):
    assert not [n for n in fxfx.feature_names if re.fullmatch(r"[lja][0-9]+_mass", n)]


def test_parton_multiplicities(fxfx, mlm):
    # Counts of events with 0, 1, 2 outgoing partons, checked against a
    # count of status-1 quark and gluon lines per event with grep and awk.
    values, counts = np.unique(column(fxfx, "n_partons"), return_counts=True)
    assert values.tolist() == [0, 1, 2]
    assert counts.tolist() == [4321, 4123, 1556]
    values, counts = np.unique(column(mlm, "n_partons"), return_counts=True)
    assert counts.tolist() == [5512, 2856, 1632]


def test_fill_value_for_missing_partons(fxfx):
    no_parton = column(fxfx, "n_partons") == 0
    one_parton = column(fxfx, "n_partons") == 1
    assert np.all(column(fxfx, "j1_pt")[no_parton] == FILL_VALUE)
    assert np.all(column(fxfx, "j1_pt")[~no_parton] > 0)
    assert np.all(column(fxfx, "j2_eta")[one_parton] == FILL_VALUE)
    assert np.all(column(fxfx, "jj_mass")[one_parton] == FILL_VALUE)


def test_first_event_dilepton_mass(fxfx):
    # e+ and e- four-momenta (px, py, pz, E) of the first FxFx event, copied from the file.
    p = np.array([14.377179, -47.989973, -541.79822, 544.10941]) + np.array(
        [-23.5373, 33.62229, -230.43546, 234.06188]
    )
    mass = np.sqrt(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2)
    assert column(fxfx, "ll_mass")[0] == pytest.approx(mass, rel=1e-7)
    assert column(fxfx, "ll_pt")[0] == pytest.approx(np.hypot(p[0], p[1]), rel=1e-7)


def test_leptons_ordered_by_pt(fxfx):
    assert np.all(column(fxfx, "l1_pt") >= column(fxfx, "l2_pt"))


def test_system_pt_vanishes():
    # Incoming partons carry no transverse momentum, so the sum of all
    # outgoing momenta has pT zero up to the 8 printed digits.
    jj = sample(JJ, features=["sys_pt", "sys_mass", "jj_mass"])
    assert np.max(np.abs(jj.x[:, 0])) < 1e-3
    # In a 2 -> 2 process the system is the dijet.
    assert np.allclose(jj.x[:, 1], jj.x[:, 2], rtol=1e-9)


def test_higgs_mass_is_default():
    smeft = sample(SMEFT)
    assert "h1_mass" in smeft.feature_names
    assert "h1_pt" in smeft.feature_names
    assert np.allclose(column(smeft, "h1_mass"), 125.09)


def test_light_masses_leak_between_generators():
    names = ["l1_mass", "j1_mass", "ll_mass", "n_partons"]
    a = sample(FXFX, features=names)
    b = sample(MLM, features=names)
    assert disjoint_features(a, b) == ["l1_mass", "j1_mass"]
    with pytest.warns(FeatureLeakWarning, match=r"\['l1_mass', 'j1_mass'\]"):
        warn_disjoint_features(a, b)


def test_default_features_do_not_leak(fxfx, mlm):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureLeakWarning)
        assert warn_disjoint_features(fxfx, mlm) == []


def test_dijet_delta_phi_wrapped():
    jj = sample(SMEFT, features=["jj_delta_phi", "j1_phi", "j2_phi"])
    difference = jj.x[:, 1] - jj.x[:, 2]
    expected = np.where(difference > np.pi, difference - 2 * np.pi, difference)
    expected = np.where(expected <= -np.pi, expected + 2 * np.pi, expected)
    assert np.allclose(jj.x[:, 0], expected, rtol=0, atol=1e-12)
    assert np.all(np.abs(jj.x[:, 0]) <= np.pi)


def test_user_feature_order_kept():
    jj = sample(JJ, features=["j2_pt", "j1_pt", "n_partons"])
    assert jj.feature_names == ("j2_pt", "j1_pt", "n_partons")
    assert np.all(jj.x[:, 2] == 2)


def test_unknown_feature_name():
    with pytest.raises(InputError, match=r"unknown LHE feature 'j1_ptt'"):
        sample(JJ, features=["j1_ptt"])


SMALL_LHE = """<LesHouchesEvents version="3.0">
<init>
2212 2212 6.5e3 6.5e3 0 0 247000 247000 -4 1
1.0 0.1 1.0 1
</init>
<event>
 4 1 1.0 91.0 0.0078 0.118
 2 -1 0 0 501 0 0 0 100 100 0 0 9
 -2 -1 0 0 0 501 0 0 -50 50 0 0 9
 11 1 1 2 0 0 10 20 30 40 0.000511 0 9
 -13 1 1 2 0 0 -10 -20 20 30 0.105 0 9
</event>
<event>
 5 1 1.0 91.0 0.0078 0.118
 21 -1 0 0 501 502 0 0 100 100 0 0 9
 2 -1 0 0 502 0 0 0 -50 50 0 0 9
 22 1 1 2 0 0 10 20 30 41.2 0 0 9
 14 1 1 2 0 0 -12 -20 20 31 0 0 9
 2 1 1 2 501 0 2 0 0 28 0.33 0 9
</event>
</LesHouchesEvents>
"""


def test_hand_computed_features(tmp_path):
    path = tmp_path / "small.lhe"
    path.write_text(SMALL_LHE)
    small = read_events(path)
    first, second = small.x[0], small.x[1]
    value = dict(zip(small.feature_names, zip(first, second)))

    # Event 0: e- (10, 20, 30, 40) and mu+ (-10, -20, 20, 30) sum to (0, 0, 50, 70).
    assert value["l1_pt"][0] == pytest.approx(np.sqrt(500))
    assert value["ll_mass"][0] == pytest.approx(np.sqrt(70**2 - 50**2))
    assert value["ll_pt"][0] == pytest.approx(0.0)
    assert value["ll_rapidity"][0] == pytest.approx(0.5 * np.log(120 / 20))
    assert value["n_leptons"] == (2, 0)
    assert value["met_pt"][0] == 0.0
    assert value["met_phi"][0] == FILL_VALUE
    assert value["a1_pt"][0] == FILL_VALUE
    # Event 1: photon, neutrino (-12, -20, 20, 31) and a u quark (2, 0, 0, 28).
    assert value["a1_pt"][1] == pytest.approx(np.sqrt(500))
    assert value["met_pt"][1] == pytest.approx(np.hypot(12, 20))
    assert value["met_phi"][1] == pytest.approx(np.arctan2(-20, -12))
    assert value["j1_pt"][1] == pytest.approx(2.0)
    assert value["j1_eta"][1] == pytest.approx(0.0)
    assert value["ll_mass"][1] == FILL_VALUE
    assert value["jj_mass"][1] == FILL_VALUE
    # The outgoing particles of event 1 sum to (0, 0, 50, 100.2).
    assert value["sys_mass"][1] == pytest.approx(np.sqrt(100.2**2 - 50**2))


def test_chunks_keep_first_chunk_names(tmp_path):
    path = tmp_path / "small.lhe"
    path.write_text(SMALL_LHE)
    chunks = list(iter_events(path, chunk_size=1))
    whole = read_events(path)
    # The first event has no photon, so a1_* is not a default of the first chunk.
    assert [len(c) for c in chunks] == [1, 1]
    assert chunks[0].feature_names == chunks[1].feature_names
    assert "a1_pt" not in chunks[0].feature_names
    assert "a1_pt" in whole.feature_names
    assert chunks[1].x[0, chunks[1].feature_names.index("n_leptons")] == 0.0
    assert chunks[1].x[0, chunks[1].feature_names.index("l1_pt")] == FILL_VALUE
