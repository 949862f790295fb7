"""``quasiratio inspect``: JSON keys, exact figures and one-line errors on bad input."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quasiratio.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
FXFX = DATA / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"
JJ = DATA / "pylhe-testfile-madgraph5-3.5.8-pp_to_jj.lhe.gz"
POWHEG = DATA / "pylhe-testfile-powheg-box-v2-hvq.lhe"
NANO = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

REQUIRED_KEYS = {
    "events",
    "sum_weights",
    "sum_abs_weights",
    "negative_fraction",
    "effective_sample_size",
    "weight_names",
}


def run_cli(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def inspect_json(capsys, *argv):
    code, out, err = run_cli(capsys, "inspect", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_inspect_json_keys(capsys):
    summary = inspect_json(capsys, POWHEG)
    assert REQUIRED_KEYS <= set(summary)
    assert summary["events"] == 6
    assert summary["negative_fraction"] == pytest.approx(2 / 6)
    assert len(summary["weight_names"]) == 46
    assert summary["weight_names"][0] == "XWGTUP"


def test_inspect_fxfx_figures(capsys):
    summary = inspect_json(capsys, FXFX)
    assert summary["events"] == 10000
    assert summary["sum_weights"] == pytest.approx(33963334.428, rel=1e-12)
    assert summary["sum_abs_weights"] == pytest.approx(53944305.0, rel=1e-12)
    assert summary["negative_fraction"] == 0.1852
    assert summary["effective_sample_size"] == pytest.approx(10000 * (1 - 2 * 0.1852) ** 2)
    assert summary["max_weight_share"] == pytest.approx(1e-4)


def test_inspect_named_weight(capsys):
    summary = inspect_json(capsys, JJ, "--weight", "45")
    assert summary["weight_name"] == "45"
    assert summary["sum_weights"] == pytest.approx(699670670000.0, rel=1e-12)
    assert len(summary["weight_names"]) == 146


def test_inspect_table_output(capsys):
    code, out, _ = run_cli(capsys, "inspect", POWHEG)
    assert code == 0
    assert "events                 6" in out
    assert "negative fraction      0.3333" in out


def assert_one_line_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("quasiratio inspect: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file_message(capsys, tmp_path):
    missing = tmp_path / "nothere.lhe.gz"
    code, out, err = run_cli(capsys, "inspect", missing)
    assert_one_line_error(code, out, err, str(missing), "file not found")


def test_empty_gzip_message(capsys, tmp_path):
    empty = tmp_path / "empty.lhe.gz"
    empty.write_bytes(b"")
    code, out, err = run_cli(capsys, "inspect", empty)
    assert_one_line_error(code, out, err, "empty.lhe.gz", "file is empty")


def test_truncated_gzip_message(capsys, tmp_path):
    data = FXFX.read_bytes()
    cut = tmp_path / "cut.lhe.gz"
    cut.write_bytes(data[: len(data) // 3])
    code, out, err = run_cli(capsys, "inspect", cut)
    assert_one_line_error(code, out, err, "cut.lhe.gz", "not a readable LHE file")


def test_unknown_weight_message(capsys):
    code, out, err = run_cli(capsys, "inspect", POWHEG, "--weight", "nominal")
    assert_one_line_error(
        code, out, err, "unknown weight name 'nominal'", "XWGTUP, MUR1.0_MUF1.0_PDF99208082"
    )


def test_nonfinite_weight_message(capsys, tmp_path):
    text = POWHEG.read_text()
    # Replace XWGTUP of the first event (1.11453E+07) by inf.
    bad = tmp_path / "inf.lhe"
    bad.write_text(text.replace("1.11453E+07", "inf", 1))
    code, out, err = run_cli(capsys, "inspect", bad)
    assert_one_line_error(code, out, err, "weight 'XWGTUP' has 1 NaN or infinite values")


def test_nonfinite_feature_message(capsys, tmp_path):
    text = POWHEG.read_text()
    # The first outgoing electron's px (-9.921110112E-02) becomes NaN, so l1_pt or l2_pt is NaN.
    bad = tmp_path / "nanx.lhe"
    bad.write_text(text.replace("-9.921110112E-02", "nan", 1))
    code, out, err = run_cli(capsys, "inspect", bad)
    assert_one_line_error(code, out, err, "nanx.lhe", "_pt' (1 events)")


def test_console_script_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "quasiratio", "inspect", str(tmp_path / "x.lhe")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "file not found" in result.stderr


def test_inspect_nanoaod_signed_sum(capsys):
    summary = inspect_json(capsys, NANO, "--tree", "Events")
    w = float(np.float32(225892.45))
    # 174 positive and 26 negative genWeight values of one magnitude.
    assert summary["events"] == 200
    assert summary["weight_name"] == "genWeight"
    assert summary["sum_weights"] == pytest.approx(148 * w, rel=1e-12)
    assert summary["sum_abs_weights"] == pytest.approx(200 * w, rel=1e-12)
    assert summary["negative_fraction"] == 0.13
    assert summary["effective_sample_size"] == pytest.approx(148**2 / 200, rel=1e-12)
    assert "LHEScaleWeight[8]" in summary["weight_names"]


def test_inspect_nanoaod_table(capsys):
    code, out, _ = run_cli(capsys, "inspect", NANO, "--weight", "genWeight * LHEScaleWeight[8]")
    assert code == 0
    for label in ("events", "sum of weights", "sum of |weights|", "negative fraction"):
        assert label in out
    assert "effective sample size" in out
    assert "weight                 genWeight * LHEScaleWeight[8]" in out
