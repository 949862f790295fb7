"""Streaming reweighting of a large Parquet file: wall time and peak memory.

Generates a Parquet file of signed-weight events (10 million by default,
in row groups) in a temporary folder, trains a small CARL model with
``quasiratio fit``, then runs ``quasiratio reweight --chunk-size`` on the
large file in a child process. The peak resident memory of that child
comes from ``os.wait4`` (the kernel's ``ru_maxrss``), so it counts every
byte the command held, interpreter and torch included. The target is a
peak below 1.5 GB whatever the file size.

    python benchmarks/stream.py            # 10,000,000 events
    python benchmarks/stream.py --quick    # 200,000 events, for the tests

Writes a JSON record (default ``benchmarks/results/stream.json``, or
``stream.quick.json`` with ``--quick``) that ``benchmarks/run_all.py``
turns into a section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = ("x0", "x1", "x2", "x3")
RSS_LIMIT_MB = 1536.0
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="200,000 events instead of 10 million")
    parser.add_argument("--events", type=int, help="number of events in the large file")
    parser.add_argument("--chunk-size", type=int, default=200_000,
                        help="events per reweighting chunk")
    parser.add_argument("--row-group", type=int, default=250_000,
                        help="events per Parquet row group")
    parser.add_argument("--output", type=Path, help="JSON result file")
    parser.add_argument("--note", action="append", default=[],
                        help="a note to store with the record, such as the machine load")
    parser.add_argument("--workdir", type=Path,
                        help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 200_000 if args.quick else 10_000_000
    if args.output is None:
        args.output = RESULTS / ("stream.quick.json" if args.quick else "stream.json")
    return args


def machine() -> dict[str, object]:
    """Describe the machine the figures were measured on."""
    import torch

    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def write_events(path: Path, events: int, *, row_group: int, shift: float, seed: int,
                 negative_fraction: float = 0.1) -> None:
    """Write Gaussian events with weights +-1 in blocks of one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, events, row_group):
        n = min(row_group, events - start)
        columns = {name: rng.normal(shift, 1.0, n) for name in FEATURES}
        columns["weight"] = np.where(rng.random(n) < negative_fraction, -1.0, 1.0)
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def run_measured(command: list[str]) -> tuple[float, float]:
    """Run ``command`` as a child; return its wall time in s and peak RSS in MB."""
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(
            f"command failed with exit status {child.returncode}: {' '.join(command)}"
        )
    return wall, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def train_model(workdir: Path) -> Path:
    """Train a small CARL model on 20,000 + 20,000 events through the CLI.

    The numerator has positive weights only, as CARL cannot represent a
    negative ratio; the denominator has 10 % negative weights.
    """
    numerator, denominator = workdir / "numerator.parquet", workdir / "denominator.parquet"
    write_events(numerator, 20_000, row_group=20_000, shift=0.3, seed=1, negative_fraction=0.0)
    write_events(denominator, 20_000, row_group=20_000, shift=0.0, seed=2)
    model = workdir / "model"
    subprocess.run(
        [sys.executable, "-m", "quasiratio", "-q", "fit",
         "--numerator", str(numerator), "--numerator-weight", "weight",
         "--denominator", str(denominator), "--denominator-weight", "weight",
         "--features", *FEATURES, "--method", "carl", "--epochs", "2", "--seed", "0",
         "--output", str(model)],
        check=True,
    )
    return model


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    model = train_model(workdir)
    events_file = workdir / "events.parquet"
    start = time.perf_counter()
    write_events(events_file, args.events, row_group=args.row_group, shift=0.0, seed=3)
    generation = time.perf_counter() - start

    output = workdir / "reweighted.parquet"
    command = [sys.executable, "-m", "quasiratio", "-q", "reweight", str(model), str(events_file),
               "--weight", "weight", "--output", str(output), "--chunk-size", str(args.chunk_size)]
    wall, peak = run_measured(command)

    import pyarrow.parquet as pq

    rows = pq.ParquetFile(output).metadata.num_rows
    if rows != args.events:
        raise SystemExit(f"output has {rows} rows, expected {args.events}")
    return {
        "events": args.events,
        "chunk_size": args.chunk_size,
        "row_group_size": args.row_group,
        "input_file_mb": round(events_file.stat().st_size / 2**20, 1),
        "generation_s": round(generation, 2),
        "reweight_wall_s": round(wall, 2),
        "events_per_second": round(args.events / wall),
        "peak_rss_mb": round(peak, 1),
        "rss_limit_mb": RSS_LIMIT_MB,
        "within_limit": peak < RSS_LIMIT_MB,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = measure(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="quasiratio-stream-") as tmp:
            figures = measure(args, Path(tmp))
    record = {
        "benchmark": "stream",
        "title": "Streaming reweighting of a large Parquet file",
        "command": "python benchmarks/stream.py" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "figures": figures,
        "notes": args.note,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0 if figures["within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
