"""Summary page of a closure report, as Markdown and as HTML."""

from __future__ import annotations

import html
from pathlib import Path

#: Top-level metrics shown on the summary page, with their descriptions.
HEADLINE = (
    ("normalization", "sum(w r) / sum(w) over the source, 1 at closure"),
    ("normalization_error", "its statistical error"),
    ("effective_sample_size", "(sum w r)^2 / sum (w r)^2"),
    ("max_weight_share", "largest |w r| / sum |w r|"),
    ("negative_ratio_fraction", "fraction of source events with r < 0"),
    ("negative_ratio_weighted_fraction", "|w| share of source events with r < 0"),
    ("ratio_mse", "mean squared error of r against the truth"),
    ("sliced_wasserstein", "sliced 1-Wasserstein distance of the signed measures"),
    ("sliced_wasserstein_null_mean", "its expected value from sample fluctuations"),
    ("classifier_auc", "held-out AUC of a classifier, 0.5 at closure"),
    ("classifier_auc_null_std", "its standard deviation at closure"),
    ("outside_support_fraction", "fraction of source events outside the training range"),
)

FEATURE_COLUMNS = (
    ("chi2_per_dof", "chi2/dof"),
    ("chi2_per_dof_null_std", "null std"),
    ("chi2_per_dof_before", "chi2/dof before"),
    ("chi2_divergence", "chi2 divergence"),
    ("chi2_divergence_null_mean", "its null mean"),
)


def _format(value) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rows(content: dict) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    headline = [
        [key, _format(content[key]), meaning] for key, meaning in HEADLINE if key in content
    ]
    features = [
        [name] + [_format(values.get(key)) for key, _ in FEATURE_COLUMNS]
        for name, values in content["features"].items()
    ]
    regions = []
    for region in content.get("negative_regions", []):
        bounds = "; ".join(
            f"{_format(low) if low is not None else '-inf'} < {name} <= "
            f"{_format(high) if high is not None else 'inf'}"
            for name, (low, high) in region["bounds"].items()
        )
        regions.append(
            [bounds, str(region["events"]), _format(region["negative_share"]),
             _format(region["purity"]), _format(region["reweighted_sum"])]
        )
    return headline, features, regions


_REGION_HEADER = ["bounds", "events", "share of negative |w r|", "purity", "sum of w r"]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    # A bare "|" inside a cell, as in |w|, would end the cell.
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_summary_pages(folder: Path, content: dict) -> None:
    """Write ``summary.md`` and ``index.html`` listing the metrics, regions and plots."""
    headline, features, regions = _rows(content)
    feature_header = ["feature"] + [label for _, label in FEATURE_COLUMNS]
    metadata = [[str(k), str(v)] for k, v in content.get("metadata", {}).items()]
    errors = [[k, v] for k, v in content.get("errors", {}).items()]
    sections = [
        ("Inputs", ["field", "value"], metadata),
        ("Closure metrics", ["metric", "value", "meaning"], headline),
        ("Per feature", feature_header, features),
        ("Regions with negative ratio", _REGION_HEADER, regions),
        ("Undefined metrics", ["metric", "reason"], errors),
    ]

    lines = ["# Closure report", ""]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Closure report</title>",
             "</head><body><h1>Closure report</h1>"]
    for title, header, rows in sections:
        if not rows:
            continue
        lines += [f"## {title}", ""] + _markdown_table(header, rows)
        parts.append(f"<h2>{html.escape(title)}</h2>" + _html_table(header, rows))
    lines += ["## Plots", ""] + [f"![{plot}]({plot})" for plot in content.get("plots", [])]
    parts.append("<h2>Plots</h2>")
    parts += [f"<p><img src='{html.escape(p)}' alt='{html.escape(p)}'></p>" for p in content.get("plots", [])]
    parts.append("</body></html>")
    (folder / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
