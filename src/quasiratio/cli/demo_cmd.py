"""Run an end-to-end demo on the shipped event files or a built-in toy.

Demos: default (= nlo), nlo, eft, scale, interference, gaussian-mixture.
Each trains a ratio, checks it on held-out events and writes a report
folder (plots, metrics JSON, training curves) to --output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path

from quasiratio.cli._common import seed_value
from quasiratio.demos import DEMOS, demo_names, resolve_name

#: Width at which long values (such as the reason for a method choice) wrap.
VALUE_WIDTH = 72

#: Parent folder of the demo outputs when --output is not given.
DEFAULT_OUTPUT_ROOT = Path("quasiratio-demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    listing = "; ".join(f"{name}: {text}" for name, (_, text) in DEMOS.items())
    parser.add_argument(
        "name",
        nargs="?",
        default="default",
        choices=demo_names(),
        metavar="NAME",
        help=f"demo to run (default: nlo). {listing}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="train for a few seconds only (a smoke test; figures are not representative)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"report folder (default: {DEFAULT_OUTPUT_ROOT}/NAME)",
    )
    parser.add_argument(
        "--seed", type=seed_value, default=0, metavar="N", help="seed of splits, toys and training"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from quasiratio._atomic import check_replaceable_directory
    from quasiratio.demos import run_demo
    from quasiratio.demos.common import DEMO_MARKER

    name = resolve_name(args.name)
    output = args.output if args.output is not None else DEFAULT_OUTPUT_ROOT / name
    # The interference demo adds its files to the folder; the others replace it as a whole.
    marker = None if name == "interference" else DEMO_MARKER
    check_replaceable_directory(output, marker=marker)
    progress = not args.quiet and sys.stderr.isatty()
    result = run_demo(name, output, quick=args.quick, seed=args.seed, progress=progress)
    if args.json:
        print(json.dumps(result, indent=2, default=_json_default))
    else:
        print(format_summary(result))
    return 0


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def format_summary(result: dict) -> str:
    """Return the headline figures of a demo result as an aligned two-column table."""
    rows = [("demo", result.get("demo", "?"))]
    summary = result.get("summary")
    if not isinstance(summary, dict):
        summary = {k: v for k, v in result.items() if _is_scalar(v)}
    rows += [(str(k), v) for k, v in summary.items() if k != "demo"]
    rows.append(("report", result.get("output", "?")))
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, value in rows:
        wrapped = textwrap.wrap(_format_value(value), VALUE_WIDTH) or [""]
        lines.append(f"{label:<{width}}  {wrapped[0]}")
        lines += [f"{'':<{width}}  {part}" for part in wrapped[1:]]
    return "\n".join(lines)


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _format_value(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return str(value)
