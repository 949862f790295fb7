"""Summarise an event file: event count, weight sums, negative fraction, ESS and weight names.

The JSON output (--json) has the keys events, sum_weights, sum_abs_weights,
negative_fraction, effective_sample_size, max_weight_share, weight_names,
weight_name, feature_names and path.
"""

from __future__ import annotations

import argparse
import json

from quasiratio.cli._common import add_tree_argument, add_weight_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="event file to summarise")
    add_weight_argument(parser)
    add_tree_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def summarize_file(path: str, *, weight: str | None = None, tree: str | None = None) -> dict:
    """Return the summary of one event file as a JSON-ready dict."""
    from quasiratio.cli._common import load_sample
    from quasiratio.io import list_weight_names

    sample = load_sample(path, weight=weight, tree=tree)
    summary = sample.summary().to_dict()
    summary["weight_names"] = list_weight_names(path, tree=tree)
    summary["weight_name"] = sample.weight_name
    summary["feature_names"] = list(sample.feature_names)
    summary["path"] = str(path)
    return summary


def format_table(summary: dict) -> str:
    """Return the summary as aligned text lines."""
    names = summary["weight_names"]
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    rows = [
        ("file", summary["path"]),
        ("events", f"{summary['events']:d}"),
        ("weight", summary["weight_name"] or "unit weights"),
        ("sum of weights", f"{summary['sum_weights']:.6g}"),
        ("sum of |weights|", f"{summary['sum_abs_weights']:.6g}"),
        ("negative fraction", f"{summary['negative_fraction']:.4f}"),
        ("effective sample size", f"{summary['effective_sample_size']:.1f}"),
        ("max weight share", f"{summary['max_weight_share']:.3g}"),
        ("weight names", shown or "none"),
        ("features", ", ".join(summary["feature_names"])),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if summary["events"] and summary["sum_weights"] <= 0:
        lines.append(
            "note: the weights sum to zero or less, so this sample cannot be a denominator "
            "or be normalised"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summary = summarize_file(args.path, weight=args.weight, tree=args.tree)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
    return 0
