"""Fuzzing of the LHE and table readers and of the command-line parsing.

Every malformed input must end in a QuasiRatioError subclass with a
one-line message (or read as a valid sample), never another exception or
a hang. Inputs that once broke this rule are kept in tests/corpus/ and
replayed by test_corpus_inputs. Set QUASIRATIO_FUZZ_EXAMPLES to run a
longer campaign locally.
"""

import contextlib
import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quasiratio.cli import SUBCOMMANDS, build_parser, main
from quasiratio.errors import QuasiRatioError
from quasiratio.events import EventSample
from quasiratio.io import read_events

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
POWHEG = HERE.parent / "data" / "pylhe-testfile-powheg-box-v2-hvq.lhe"

# CI runs a fixed, small set of examples; a campaign (the variable set) draws new ones.
CAMPAIGN = "QUASIRATIO_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("QUASIRATIO_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,
    derandomize=not CAMPAIGN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID_LHE = """<LesHouchesEvents version="3.0">
<header>
<initrwgt>
<weightgroup name="scale">
<weight id="a">mu=1</weight>
<weight id="b">mu=2</weight>
</weightgroup>
</initrwgt>
</header>
<init>
2212 2212 6.5e3 6.5e3 0 0 247000 247000 -4 1
1.0 0.1 1.0 1
</init>
<event>
 4 1 -1.25 91.0 0.0078 0.118
 2 -1 0 0 501 0 0 0 100 100 0 0 9
 -2 -1 0 0 0 501 0 0 -50 50 0 0 9
 11 1 1 2 0 0 10 20 30 40 0.000511 0 9
 -13 1 1 2 0 0 -10 -20 20 30 0.105 0 9
# a comment line after the particles
<rwgt>
<wgt id='a'> 1.5 </wgt>
<wgt id='b'> 2.5 </wgt>
</rwgt>
<weights>
9.0 9.5
</weights>
</event>
<event>
 5 1 2.5 91.0 0.0078 0.118
 21 -1 0 0 501 502 0 0 100 100 0 0 9
 2 -1 0 0 502 0 0 0 -50 50 0 0 9
 22 1 1 2 0 0 10 20 30 41.2 0 0 9
 14 1 1 2 0 0 -12 -20 20 31 0 0 9
 2 1 1 2 501 0 2 0 0 28 0.33 0 9
<weights>
3.0 4.0
</weights>
</event>
</LesHouchesEvents>
"""

TOKENS = [
    "<",
    ">",
    "&",
    "&amp;",
    "<event>",
    "</event>",
    "<rwgt>",
    "</rwgt>",
    "<wgt id='a'>",
    "<wgt id='z'>",
    "</wgt>",
    "<weights>",
    "</weights>",
    "<initrwgt>",
    "</LesHouchesEvents>",
    "<!--",
    "-->",
    "<![CDATA[",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "1.5.5",
    "-",
    "#",
    "\n",
    " ",
    "\x00",
    "\u00e9",
    "0",
    "99999999999999999999",
    "<weight id='a'>x</weight>",
]

_mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 60)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(TOKENS) | st.text(max_size=6)),
    st.tuples(st.just("swap"), st.floats(0, 1), st.floats(0, 1)),
)


def mutate(text: str, mutations) -> str:
    for mutation in mutations:
        kind, where = mutation[0], int(mutation[1] * len(text))
        if kind == "truncate":
            text = text[:where]
        elif kind == "delete":
            text = text[:where] + text[where + mutation[2] :]
        elif kind == "insert":
            text = text[:where] + mutation[2] + text[where:]
        else:
            other = int(mutation[2] * len(text))
            lo, hi = sorted((where, other))
            text = text[:lo] + text[hi:] + text[lo:hi]
    return text


def assert_clean_outcome(read):
    """Run ``read``; it must return an EventSample or raise a one-line QuasiRatioError."""
    try:
        result = read()
    except QuasiRatioError as exc:
        message = str(exc)
        assert message.strip()
        assert len(message.strip().splitlines()) == 1, message
        return None
    assert isinstance(result, EventSample)
    assert np.all(np.isfinite(result.x))
    assert np.all(np.isfinite(result.sample_weight))
    return result


def test_valid_template_reads():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ok.lhe"
        path.write_text(VALID_LHE)
        sample = assert_clean_outcome(lambda: read_events(path, weight="a"))
    assert sample is not None
    assert sample.sample_weight.tolist() == [1.5, 3.0]


@pytest.mark.timeout(180)
@FUZZ
@given(
    mutations=st.lists(_mutation, min_size=1, max_size=4),
    compress=st.booleans(),
    cut_gzip=st.floats(0, 1),
)
def test_fuzz_lhe_reader(mutations, compress, cut_gzip):
    text = mutate(VALID_LHE, mutations)
    data = text.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.lhe.gz" if compress else "f.lhe")
        if compress:
            data = gzip.compress(data)
            if cut_gzip < 0.3:
                data = data[: int(len(data) * cut_gzip / 0.3)]
        path.write_bytes(data)
        assert_clean_outcome(lambda: read_events(path, weight="b"))
        assert_clean_outcome(lambda: read_events(path))


_CSV_TOKENS = [
    "a",
    "b",
    "weight",
    ",",
    "\n",
    "1",
    "-2.5",
    "nan",
    "inf",
    '"',
    "x",
    "",
    "1e999",
    "\r\n",
    ";",
]


@pytest.mark.timeout(180)
@FUZZ
@given(
    cells=st.lists(st.sampled_from(_CSV_TOKENS) | st.text(max_size=3), max_size=40),
    weight=st.sampled_from([None, "weight", "a", "missing"]),
)
def test_fuzz_csv_reader(cells, weight):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes("".join(cells).encode("utf-8", "surrogatepass"))
        with _quiet_warnings():
            assert_clean_outcome(lambda: read_events(path, weight=weight))


def _binary_tables(tmp: Path) -> dict[str, bytes]:
    columns = {"a": np.arange(20.0), "weight": np.linspace(-1, 1, 20)}
    pq.write_table(pa.table(columns), tmp / "t.parquet")
    np.savez(tmp / "t.npz", **columns)
    import h5py

    with h5py.File(tmp / "t.h5", "w") as f:
        for name, values in columns.items():
            f[name] = values
    return {name: (tmp / name).read_bytes() for name in ("t.parquet", "t.npz", "t.h5")}


@pytest.mark.timeout(180)
@FUZZ
@given(
    name=st.sampled_from(["t.parquet", "t.npz", "t.h5"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6),
)
def test_fuzz_binary_tables(name, cut, flips):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = bytearray(_binary_tables(tmp)[name])
        for where, value in flips:
            data[int(where * (len(data) - 1))] = value
        if cut < 0.5:
            data = data[: int(len(data) * cut * 2)]
        path = tmp / ("bad" + name)
        path.write_bytes(bytes(data))
        with _quiet_warnings():
            assert_clean_outcome(lambda: read_events(path))


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


_ARG_TOKENS = [
    "--json",
    "--weight",
    "--tree",
    "-v",
    "-q",
    "--features",
    "--numerator",
    "--denominator",
    "--numerator-weight",
    "--denominator-weight",
    "--negative-weights",
    "keep",
    "drop",
    "XWGTUP",
    "MUR1.0_MUF1.0_PDF99208082",
    "genWeight * LHEScaleWeight[8]",
    "Events",
    "",
    "-",
    "--",
    "nope.lhe",
    str(POWHEG),
    "=",
    "--weight=",
    "--tree=Events",
    "\x00",
]


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors, --help and --version
            code = exc.code
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.timeout(180)
@FUZZ
@given(args=st.lists(st.sampled_from(_ARG_TOKENS) | st.text(max_size=8), max_size=6))
def test_fuzz_inspect_arguments(args):
    code, out, err = run_main(["-q", "inspect", *args])
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2 and "error:" in err:
        assert out == ""
        assert len([line for line in err.splitlines() if "error:" in line]) == 1


@pytest.mark.timeout(180)
@FUZZ
@given(
    command=st.sampled_from(sorted(SUBCOMMANDS)),
    args=st.lists(st.sampled_from(_ARG_TOKENS) | st.text(max_size=8), max_size=8),
)
def test_fuzz_argument_parsing(command, args):
    """Parsing alone (nothing runs) ends in a namespace or an argparse usage exit."""
    parser = build_parser()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args([command, *args])
        except SystemExit as exc:
            assert exc.code in (0, 2)


CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_inputs(path):
    with _quiet_warnings():
        assert_clean_outcome(lambda: read_events(path))


@FUZZ
@given(expression=st.text(alphabet="genWeight*LHE[]0123456789 .+-()_'\"e", max_size=30))
def test_fuzz_weight_expressions(expression):
    """A weight expression parses into factors or raises a one-line InputError."""
    from quasiratio.errors import InputError
    from quasiratio.io.expressions import parse_weight

    try:
        factors = parse_weight(expression)
    except InputError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    assert factors
    for factor in factors:
        assert isinstance(factor, (float, tuple))
