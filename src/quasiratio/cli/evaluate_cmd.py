"""Compare the denominator reweighted by a saved model with the numerator.

Loads the model directory, evaluates r_hat on every denominator event and
prints the closure metrics. Per feature these are the weighted chi-square
per degree of freedom, before and after reweighting, and the chi-square
divergence. Over all features they are the normalisation check, ESS,
largest weight share, negative-ratio fraction, signed sliced Wasserstein
distance, classifier two-sample AUC and the regions where the ratio is
negative. With --report DIR it also writes plots and a summary page to DIR.
"""

from __future__ import annotations

import argparse
import json

from quasiratio.cli._common import add_pair_arguments, parse_features, seed_value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="DIR", help="model directory written by 'quasiratio fit'")
    add_pair_arguments(parser)
    parser.add_argument(
        "--report", metavar="DIR", default=None,
        help="write plots, metrics.json, summary.md and index.html to this folder",
    )
    parser.add_argument(
        "--bins", type=int, default=50,
        help="bins per feature, equally spaced between the 0.1 and 99.9 percentiles of the "
        "numerator (default: 50)",
    )
    parser.add_argument(
        "--no-classifier-test", action="store_true",
        help="skip the classifier two-sample test, the slowest metric",
    )
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the random splits and projections")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _read_inputs(args: argparse.Namespace, model):
    from quasiratio.cli._common import load_pair

    requested = parse_features(args.features)
    model_features = list(model.feature_names_)
    args.features = model_features + [n for n in (requested or []) if n not in model_features]
    numerator, denominator = load_pair(args)
    return numerator, denominator, requested or model_features


def _format_text(summary: dict) -> str:
    from quasiratio.diagnostics.summary_page import FEATURE_COLUMNS, HEADLINE

    def shown(value) -> str:
        return "undefined" if value is None else f"{value:.4g}"

    rows = [(key, shown(summary[key])) for key, _ in HEADLINE if key in summary]
    for name, values in summary["features"].items():
        rows += [(f"{name}: {label}", shown(values[key])) for key, label in FEATURE_COLUMNS]
    for i, region in enumerate(summary["negative_regions"], 1):
        bounds = ", ".join(
            f"{name} in ({low}, {high}]" for name, (low, high) in region["bounds"].items()
        )
        rows.append((f"negative region {i}", f"{bounds}; {region['events']} events"))
    rows += [(f"undefined {key}", message) for key, message in summary["errors"].items()]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _history(model):
    # Estimators with several networks keep one history per network.
    histories = getattr(model, "histories_", None)
    return histories if histories else getattr(model, "history_", None)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from quasiratio._atomic import check_replaceable_directory
    from quasiratio.diagnostics.report import REPORT_MARKER, evaluation_summary, write_report
    from quasiratio.estimators import load

    if args.report is not None:
        check_replaceable_directory(args.report, marker=REPORT_MARKER)
    model = load(args.model)
    numerator, denominator, features = _read_inputs(args, model)
    ratio = np.asarray(model.ratio(denominator), dtype=np.float64)
    summary = evaluation_summary(
        denominator, numerator, ratio, features=features, bins=args.bins,
        classifier_test=not args.no_classifier_test, seed=args.seed,
    )
    outside = getattr(model, "outside_support", None)
    if outside is not None:
        summary["outside_support_fraction"] = float(np.mean(outside(denominator)))
    metadata = {
        "model": str(args.model),
        "method": getattr(model, "method", ""),
        "numerator": str(args.numerator),
        "denominator": str(args.denominator),
    }
    if args.report is not None:
        write_report(
            args.report, denominator, numerator, ratio, history=_history(model),
            metadata=metadata, features=features, bins=args.bins, summary=summary,
        )
    output = {**metadata, **summary}
    print(json.dumps(output, indent=2) if args.json else _format_text(output))
    return 0
