"""Full-size interference benchmark: three intervals on mu and the learned model's wall time.

Runs the interference demo at the reference yields (about 10 million
pseudo-data events at mu = 1.2): trains r_S and r_SI, fits the same
pseudo-data with the exact densities, the learned ratios and a binned
mass fit, and times the learned model's ratio evaluation, fit and scan.
Writes ``results.json`` and ``lambda_scan.png`` from the demo plus
``benchmark.json`` and ``benchmark.md`` (a table) to the output folder.

    python benchmarks/interference.py --output benchmarks/results/interference
    python benchmarks/interference.py --quick   # reduced setting, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch

from quasiratio._atomic import atomic_path
from quasiratio.demos.interference import run_demo
from quasiratio.inference import DEFAULT_LEVELS


def table(result: dict) -> str:
    """Return a Markdown table of mu_hat and the intervals of each method."""
    levels = [f"{cl:g}" for cl in DEFAULT_LEVELS]
    lines = ["| method | mu_hat | " + " | ".join(f"{float(cl):.1%} interval" for cl in levels)
             + " |", "|---" * (2 + len(levels)) + "|"]
    for name, figures in result["methods"].items():
        cells = [f"[{figures[f'interval_{cl}'][0]:.3f}, {figures[f'interval_{cl}'][1]:.3f}]"
                 for cl in levels]
        lines.append(f"| {name} | {figures['mu_hat']:.3f} | " + " | ".join(cells) + " |")
    timing = result["learned_timing"]
    lines += ["", f"events: {result['setting']['events']:,}; learned model wall time: "
              f"evaluation {timing['evaluation_s']:.1f} s, fit {timing['fit_s']:.1f} s, "
              f"scan and intervals {timing['scan_and_intervals_s']:.1f} s, "
              f"total {timing['total_s']:.1f} s"]
    norm = result["setting"]["normalization"]
    lines.append("learned ratio means over the background simulation before normalisation: "
                 + ", ".join(f"{name} {v['mean']:.4f} +- {v['standard_error']:.4f}"
                             for name, v in norm.items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/results/interference",
                        help="folder for the JSON, table and plot")
    parser.add_argument("--quick", action="store_true",
                        help="run the reduced setting (about 1,050 events) instead")
    parser.add_argument("--seed", type=int, default=0, help="seed of every sample")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)

    output = Path(args.output)
    started = time.perf_counter()
    result = run_demo(output, quick=args.quick, seed=args.seed, progress=True)
    record = {
        "benchmark": "interference",
        "quick": args.quick,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "events": result["setting"]["events"],
        "methods": result["methods"],
        "learned_timing": result["learned_timing"],
        "normalization": result["setting"]["normalization"],
        "coverage_reduced": result["reduced_setting"]["coverage"],
        "wall_time_s": time.perf_counter() - started,
    }
    with atomic_path(output / "benchmark.json") as path:
        path.write_text(json.dumps(record, indent=2))
    with atomic_path(output / "benchmark.md") as path:
        path.write_text(table(result))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
