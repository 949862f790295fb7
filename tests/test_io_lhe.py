"""LHE reader: exact figures of the shipped files and the rules on weight blocks."""

import functools
import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from quasiratio.errors import FileFormatError, InputError
from quasiratio.io import iter_events, list_weight_names, read_events
from quasiratio.io.lhe import read_lhe, read_lhe_weights
from quasiratio.io.lhe_sample import sample_from_lhe

DATA = Path(__file__).resolve().parents[1] / "data"
FXFX = DATA / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
MLM = DATA / "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
JJ = DATA / "pylhe-testfile-madgraph5-3.5.8-pp_to_jj.lhe.gz"
POWHEG = DATA / "pylhe-testfile-powheg-box-v2-hvq.lhe"
SMEFT = DATA / "event2vec-smeftsim_VBFH-1.lhe.gz"

# The third number of the first line after <event ...> is XWGTUP.
_EVENT_LINE = re.compile(r"<event[^>]*>\s*\n\s*\S+\s+\S+\s+(\S+)")


@functools.lru_cache(maxsize=None)
def parsed(path: Path):
    """Parse each shipped file once per module; samples are built from the parsed events."""
    return read_lhe(path)


def shipped_sample(path: Path, weight=None, features=None):
    return sample_from_lhe(parsed(path), source=str(path), weight=weight, features=features)


@functools.lru_cache(maxsize=None)
def _text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as f:
            return f.read()
    return path.read_text()


def _xwgtup_by_regex(path: Path) -> np.ndarray:
    """XWGTUP of every event, parsed without pylhe as an independent check."""
    return np.array([float(v) for v in _EVENT_LINE.findall(_text(path))])


def _declared_ids_by_regex(path: Path) -> list[str]:
    text = _text(path)
    if "<initrwgt>" not in text:
        return []
    block = text.split("<initrwgt>")[1].split("</initrwgt>")[0]
    return re.findall(r"<weight id=['\"]([^'\"]+)['\"]", block)


# (file, events, negative events, named weights, sum of XWGTUP). The sums
# come from a float64 sum of a regex parse of the files and agree with pylhe.
SHIPPED = [
    (FXFX, 10000, 1852, 0, 33963334.428),
    (MLM, 10000, 0, 0, 3751.3),
    (JJ, 1000, 0, 145, 699670670000.0),
    (POWHEG, 6, 2, 45, 22290600.0),
    (SMEFT, 10000, 0, 21, 33430.188),
]


@pytest.mark.parametrize(
    "path, events, negative, named, total", SHIPPED, ids=lambda v: getattr(v, "name", v)
)
def test_shipped_lhe_counts(path, events, negative, named, total):
    weights = parsed(path).weights
    xwgtup = weights["XWGTUP"]
    expected = _xwgtup_by_regex(path)

    assert xwgtup.shape == (events,)
    assert expected.shape == (events,)
    assert np.array_equal(xwgtup, expected)
    assert int(np.count_nonzero(xwgtup < 0)) == negative
    assert xwgtup.sum() == pytest.approx(total, rel=1e-12)
    assert len(weights) == named + 1
    assert list(weights)[1:] == _declared_ids_by_regex(path)


def test_shipped_lhe_weight_sums():
    # Sums checked against a plain regex parse of the same files (float64, file order).
    assert _xwgtup_by_regex(FXFX).sum() == pytest.approx(33963334.428, rel=1e-12)
    summary = shipped_sample(FXFX).summary()
    assert summary.sum_weights == pytest.approx(33963334.428, rel=1e-12)
    # All FxFx weights are +-5394.4305, so sum |w| = 10000 * 5394.4305.
    assert summary.sum_abs_weights == pytest.approx(53944305.0, rel=1e-12)
    assert summary.negative_fraction == 0.1852
    # ESS = (sum w)^2 / sum w^2 = N (1 - 2 f)^2 for weights of one magnitude.
    assert summary.effective_sample_size == pytest.approx(10000 * (1 - 2 * 0.1852) ** 2)


def test_mlm_constant_weights():
    sample = shipped_sample(MLM)
    assert len(sample) == 10000
    assert np.all(sample.sample_weight == 0.37513)
    assert sample.summary().sum_weights == pytest.approx(3751.3, rel=1e-12)


def test_pp_to_jj_nominal_by_id():
    sample = read_events(JJ, weight="45")
    text = _text(JJ)
    by_regex = np.array([float(v) for v in re.findall(r"<wgt id='45'>\s*(\S+)\s*</wgt>", text)])
    first = np.array([float(v) for v in re.findall(r"<wgt id='1'>\s*(\S+)\s*</wgt>", text)])

    assert sample.weight_name == "45"
    assert np.array_equal(sample.sample_weight, by_regex)
    # Id 45 is the nominal: it equals XWGTUP, while the first named weight (id 1) does not.
    assert np.array_equal(sample.sample_weight, _xwgtup_by_regex(JJ))
    assert sample.summary().sum_weights == pytest.approx(699670670000.0, rel=1e-12)
    assert first.sum() == pytest.approx(798143195340.0, rel=1e-12)


def test_default_weight_is_xwgtup():
    sample = shipped_sample(JJ)
    assert sample.weight_name == "XWGTUP"
    assert np.array_equal(sample.sample_weight, _xwgtup_by_regex(JJ))


def test_smeft_named_weight():
    sample = shipped_sample(SMEFT, weight="cHW_0p2")
    text = _text(SMEFT)
    by_regex = np.array(
        [float(v) for v in re.findall(r"<wgt id='cHW_0p2'>\s*(\S+)\s*</wgt>", text)]
    )
    assert np.array_equal(sample.sample_weight, by_regex)


def test_powheg_bare_weights_block():
    weights = read_lhe_weights(POWHEG)
    assert list(weights)[0] == "XWGTUP"
    text = _text(POWHEG)
    blocks = re.findall(r"<weights>(.*?)</weights>", text, flags=re.S)
    values = np.array([[float(v) for v in b.split()] for b in blocks])
    ids = _declared_ids_by_regex(POWHEG)

    assert values.shape == (6, 45)
    for k, wid in enumerate(ids):
        assert np.array_equal(weights[wid], values[:, k]), wid


def test_list_weight_names():
    names = list_weight_names(SMEFT)
    assert names[0] == "XWGTUP"
    assert names[1:] == _declared_ids_by_regex(SMEFT)
    assert len(names) == 22
    assert list_weight_names(FXFX) == ["XWGTUP"]


def test_unknown_weight_lists_names():
    with pytest.raises(InputError, match=r"unknown weight name 'nope'.*XWGTUP, 1, 2"):
        shipped_sample(JJ, weight="nope")


def test_iter_events_matches_read():
    whole = read_events(POWHEG, weight="MUR2.0_MUF2.0_PDF99208082")
    chunks = list(iter_events(POWHEG, weight="MUR2.0_MUF2.0_PDF99208082", chunk_size=4))
    assert [len(c) for c in chunks] == [4, 2]
    assert np.array_equal(np.concatenate([c.sample_weight for c in chunks]), whole.sample_weight)
    assert np.array_equal(np.concatenate([c.x for c in chunks]), whole.x)


# --- small generated files -------------------------------------------------

_HEADER = """<LesHouchesEvents version="3.0">
<header>
{initrwgt}
</header>
<init>
2212 2212 6.5e3 6.5e3 0 0 247000 247000 -4 1
1.0 0.1 1.0 1
</init>
"""
_INITRWGT = """<initrwgt>
<weightgroup name="scale">
<weight id="a">mu=1</weight>
<weight id="b">mu=2</weight>
</weightgroup>
</initrwgt>"""
_EVENT = """<event>
 4 1 {w} 91.0 0.0078 0.118
 2 -1 0 0 501 0 0 0 100 100 0 0 9
 -2 -1 0 0 0 501 0 0 -50 50 0 0 9
 11 1 1 2 0 0 {px} 20 30 40 0 0 9
 -11 1 1 2 0 0 -10 -20 20 30 0 0 9
{blocks}</event>
"""


def write_lhe(path: Path, events: list[dict], *, initrwgt: str = _INITRWGT) -> Path:
    """Write a small LHE file; each event dict sets w, px and the weight blocks."""
    body = _HEADER.format(initrwgt=initrwgt)
    for e in events:
        body += _EVENT.format(w=e.get("w", 1.0), px=e.get("px", 10.0), blocks=e.get("blocks", ""))
    body += "</LesHouchesEvents>\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(body)
    else:
        path.write_text(body)
    return path


RWGT = "<rwgt>\n<wgt id='a'> 1.5 </wgt>\n<wgt id='b'> 2.5 </wgt>\n</rwgt>\n"
BARE = "<weights>\n9.0 9.5\n</weights>\n"


@pytest.mark.parametrize("blocks", [RWGT + BARE, BARE + RWGT], ids=["rwgt-first", "bare-first"])
def test_named_weights_not_overwritten(tmp_path, blocks):
    path = write_lhe(tmp_path / "both.lhe", [{"blocks": blocks}, {"blocks": blocks}])
    weights = read_lhe_weights(path)
    assert weights["a"].tolist() == [1.5, 1.5]
    assert weights["b"].tolist() == [2.5, 2.5]


def test_bare_block_fills_unnamed_ids(tmp_path):
    blocks = "<rwgt>\n<wgt id='a'> 1.5 </wgt>\n</rwgt>\n" + BARE
    path = write_lhe(tmp_path / "partial.lhe", [{"blocks": blocks}])
    weights = read_lhe_weights(path)
    assert weights["a"].tolist() == [1.5]
    assert weights["b"].tolist() == [9.5]


def test_missing_declared_id(tmp_path):
    lacking = "<rwgt>\n<wgt id='a'> 1.5 </wgt>\n</rwgt>\n"
    path = write_lhe(tmp_path / "m.lhe", [{"blocks": RWGT}, {"blocks": RWGT}, {"blocks": lacking}])
    with pytest.raises(FileFormatError, match=r"event index 2 lacks the declared weight ids b"):
        read_events(path)


def test_undeclared_id(tmp_path):
    extra = RWGT.replace("</rwgt>", "<wgt id='c'> 3.0 </wgt>\n</rwgt>")
    path = write_lhe(tmp_path / "u.lhe", [{"blocks": RWGT}, {"blocks": extra}])
    with pytest.raises(
        FileFormatError, match=r"event index 1 carries the undeclared weight ids c"
    ):
        read_events(path)


def test_particle_count_mismatch(tmp_path):
    path = write_lhe(tmp_path / "n.lhe", [{"blocks": RWGT}])
    path.write_text(path.read_text().replace(" 4 1 1.0 91.0", " 5 1 1.0 91.0"))
    with pytest.raises(FileFormatError, match=r"event index 0 declares 5 particles but lists 4"):
        read_events(path)


def test_nan_weight_names_weight(tmp_path):
    path = write_lhe(tmp_path / "nan.lhe", [{"w": "nan", "blocks": RWGT}, {"blocks": RWGT}])
    with pytest.raises(InputError, match=r"weight 'XWGTUP' has 1 NaN or infinite values"):
        read_events(path)


def test_nan_feature_names_column(tmp_path):
    path = write_lhe(tmp_path / "nanx.lhe", [{"px": "nan", "blocks": RWGT}, {"blocks": RWGT}])
    with pytest.raises(InputError, match=r"'l1_pt' \(1 events\)"):
        read_events(path)


def test_truncated_gzip(tmp_path):
    full = write_lhe(tmp_path / "full.lhe.gz", [{"blocks": RWGT}] * 200)
    data = full.read_bytes()
    cut = tmp_path / "cut.lhe.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.lhe\.gz: not a readable LHE file"):
        read_events(cut)


def test_truncated_plain_lhe(tmp_path):
    full = write_lhe(tmp_path / "full.lhe", [{"blocks": RWGT}] * 20)
    text = full.read_text()
    cut = tmp_path / "cut.lhe"
    cut.write_text(text[: len(text) * 2 // 3])
    with pytest.raises(FileFormatError, match=r"cut\.lhe: the LHE XML is malformed or truncated"):
        read_events(cut)


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.lhe.gz"
    empty.write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"empty\.lhe\.gz: file is empty"):
        read_events(empty)
    empty_stream = tmp_path / "stream.lhe.gz"
    with gzip.open(empty_stream, "wb"):
        pass
    with pytest.raises(FileFormatError, match=r"stream\.lhe\.gz: not a readable LHE file"):
        read_events(empty_stream)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match=r"absent\.lhe: file not found"):
        read_events(tmp_path / "absent.lhe")


def test_file_without_initrwgt_uses_first_event_ids(tmp_path):
    events = [{"blocks": RWGT}, {"blocks": RWGT}]
    path = write_lhe(tmp_path / "plain.lhe", events, initrwgt="")
    assert list_weight_names(path) == ["XWGTUP", "a", "b"]
    assert read_events(path, weight="b").sample_weight.tolist() == [2.5, 2.5]
