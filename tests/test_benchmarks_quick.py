"""Every benchmark script runs in --quick mode and writes its JSON record.

The figures are not asserted here (they depend on the machine); the
benchmarks themselves compare them with their targets.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from run_all import read_record  # noqa: E402
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.stem != "run_all"
                 and not p.stem.startswith("_"))


def run_quick(script: Path, results: Path) -> subprocess.CompletedProcess:
    output = results / f"{script.stem}.quick.json"
    return subprocess.run([sys.executable, str(script), "--quick", "--output", str(output)],
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """Run the quick benchmarks two at a time (the CI machine has two cores)."""
    results = tmp_path_factory.mktemp("results")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(SCRIPTS, pool.map(lambda s: run_quick(s, results), SCRIPTS)))
    return results, runs


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_quick_benchmark_writes_record(script, quick_results):
    results, runs = quick_results
    run = runs[script]
    assert run.returncode in (0, 1), run.stderr[-2000:]
    record = read_record(results / f"{script.stem}.quick.json")
    assert record is not None, f"{script.name} --quick wrote no JSON record"
    assert record["quick"] is True


def test_page_lists_every_benchmark(quick_results, tmp_path):
    results, _ = quick_results
    page = tmp_path / "benchmarks.md"
    run = subprocess.run([sys.executable, str(BENCHMARKS / "run_all.py"), "--results",
                          str(results), "--page", str(page)], capture_output=True, text=True)
    text = page.read_text()
    assert run.returncode == 0, run.stderr
    assert "python benchmarks/run_all.py" in text
    for script in SCRIPTS:
        assert f"## {script.stem}:" in text
        assert "No result recorded yet" not in text.split(f"## {script.stem}:")[1].split("## ")[0]
