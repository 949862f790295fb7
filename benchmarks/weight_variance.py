"""Weight-variance study: REVERT (one network) against RoSMM as Var(w) grows.

The source is N_2.5 with unit weights and the target N_2.0 with weights
W = 1 + sigma_w (eta - B) / sqrt(eta (1 - eta)), B ~ Bernoulli(eta), so
E[W] = 1 and Var(W) = sigma_w^2 (:mod:`quasiratio.toys.weight_variance`).
The training events are the same at every grid point; only the weights
change. Both methods get the same events and training options, and RoSMM
uses its two-classifier form for a signed numerator with coefficients
from the weight sums. Each fit is scored by the chi-square divergence
sum_i (p_i - q_i)^2 / q_i on the radius between the reweighted test
source and an unweighted test target. The 50 bins lie between the 0.1 and
99.9 percentiles of the test target, a narrower range than the closure
table's, because the divergence needs every target bin filled. The exact ratio on the same test events
gives the finite-sample floor.

The published result (REVERT paper, arXiv:2512.19913): both methods sit
at the finite-sample floor at sigma_w = 1, the divergence of the single
network grows about 3.6 times faster with sigma_w than RoSMM's, and eta
hardly matters. The record fits a straight line in sigma_w per method
(all eta pooled, and per eta) and reports the ratio of the slopes.

    python benchmarks/weight_variance.py           # sigma_w 1..5, eta 0.1/0.3/0.5, 40,000 events
    python benchmarks/weight_variance.py --quick   # sigma_w 1/3/5, eta 0.1/0.5, 10,000 events

Writes ``results/weight_variance.json`` (``.quick.json``), a Markdown table
(``.md``) and a plot of the divergence against sigma_w (``.png``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from quasiratio.diagnostics.distances import chi_square_divergence
from quasiratio.diagnostics.histograms import percentile_edges
from quasiratio.estimators import make_estimator
from quasiratio.toys import weight_variance as wv
from quasiratio.training import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"
HIDDEN = (64, 64)
METHODS = ("revert", "rosmm")
PUBLISHED_SLOPE_RATIO = 3.6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="sigma_w 1, 3, 5 and eta 0.1, 0.5 with 10,000 events per class")
    parser.add_argument("--events", type=int, help="training events per class")
    parser.add_argument("--test", type=int, help="test events per class")
    parser.add_argument("--sigmas", type=float, nargs="+", help="values of sigma_w")
    parser.add_argument("--etas", type=float, nargs="+", help="values of eta")
    parser.add_argument("--epochs", type=int, help="training epochs of every network")
    parser.add_argument("--patience", type=int,
                        help="epochs without a lower validation loss before training stops "
                             "(default: no early stopping)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the events and networks")
    parser.add_argument("--output", type=Path, help="JSON result file")
    args = parser.parse_args(argv)
    args.events = args.events or (10_000 if args.quick else 40_000)
    args.test = args.test or (50_000 if args.quick else 200_000)
    args.sigmas = args.sigmas or ([1.0, 3.0, 5.0] if args.quick else [1.0, 2.0, 3.0, 4.0, 5.0])
    args.etas = args.etas or ([0.1, 0.5] if args.quick else [0.1, 0.3, 0.5])
    args.epochs = args.epochs or (10 if args.quick else 20)
    name = "weight_variance.quick.json" if args.quick else "weight_variance.json"
    args.output = args.output or RESULTS / name
    return args


class Scorer:
    """Chi-square divergence on the radius against one fixed unweighted test target."""

    def __init__(self, n_test: int, seed: int) -> None:
        source, target = wv.make_samples(n_test, n_test, sigma_w=0.0, eta=0.5, seed=seed)
        self.x = source.x
        self.source_radius = np.hypot(source.x[:, 0], source.x[:, 1])
        self.target_radius = np.hypot(target.x[:, 0], target.x[:, 1])
        self.edges = percentile_edges(self.target_radius, bins=50, percentiles=(0.1, 99.9))

    def divergence(self, ratio: np.ndarray) -> dict:
        result = chi_square_divergence(self.source_radius, ratio, self.target_radius,
                                       np.ones_like(self.target_radius), self.edges)
        return {"divergence": result.value, "null_mean": result.null_mean}


def run_grid(args, scorer: Scorer) -> list[dict]:
    config = TrainingConfig(epochs=args.epochs, batch_size=1024, learning_rate=3e-3,
                            patience=args.patience, seed=args.seed, progress=False)
    rows = []
    for eta in args.etas:
        for sigma_w in args.sigmas:
            source, target = wv.make_samples(args.events, args.events, sigma_w=sigma_w,
                                             eta=eta, seed=args.seed)
            for method in METHODS:
                start = time.perf_counter()
                estimator = make_estimator(method, config=config, hidden=HIDDEN)
                estimator.fit(target, source)
                row = {"method": method, "sigma_w": sigma_w, "eta": eta,
                       "negative_events": int(np.sum(target.sample_weight < 0)),
                       **scorer.divergence(estimator.ratio(scorer.x)),
                       "training_seconds": time.perf_counter() - start}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    return rows


def slope(rows: list[dict], method: str, eta: float | None = None) -> float:
    """Least-squares slope of the divergence against sigma_w."""
    points = [(r["sigma_w"], r["divergence"]) for r in rows
              if r["method"] == method and (eta is None or r["eta"] == eta)]
    sigma, value = np.array(points).T
    return float(np.polyfit(sigma, value, 1)[0])


def summarize(rows: list[dict], args, floor: float) -> dict:
    slopes = {m: slope(rows, m) for m in METHODS}
    per_eta = {str(eta): {m: slope(rows, m, eta) for m in METHODS} for eta in args.etas}
    at_one = {m: float(np.mean([r["divergence"] for r in rows
                                if r["method"] == m and r["sigma_w"] == min(args.sigmas)]))
              for m in METHODS}
    return {
        "slope_per_sigma_w": slopes,
        "slope_ratio_revert_over_rosmm": slopes["revert"] / slopes["rosmm"],
        "published_slope_ratio": PUBLISHED_SLOPE_RATIO,
        "slope_per_sigma_w_by_eta": per_eta,
        "divergence_at_smallest_sigma_w": at_one,
        "exact_ratio_divergence": floor,
    }


def plot(path: Path, rows: list[dict], args, floor: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {"revert": ("tab:red", "REVERT"), "rosmm": ("tab:blue", "RoSMM")}
    markers = ["o", "s", "^", "v", "D"]
    for method, (color, label) in styles.items():
        for eta, marker in zip(args.etas, markers):
            points = [(r["sigma_w"], r["divergence"]) for r in rows
                      if r["method"] == method and r["eta"] == eta]
            sigma, value = np.array(points).T
            ax.plot(sigma, value, marker=marker, color=color, label=f"{label}, eta={eta:g}")
    ax.axhline(floor, color="black", ls="--", label="exact ratio")
    ax.set_xlabel("sigma_w (standard deviation of the target weights)")
    ax.set_ylabel("chi-square divergence on the radius")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(record: dict) -> str:
    summary = record["summary"]
    lines = [f"# {record['title']}", "", f"`{record['command']}` on {record['machine']}, "
             f"{record['date']}; {record['events_per_class']} training events per class.", "",
             "| eta | sigma_w | REVERT | RoSMM | negative events |", "| ---: | ---: | ---: | ---: | ---: |"]
    by_key = {(r["eta"], r["sigma_w"], r["method"]): r for r in record["runs"]}
    for eta, sigma_w in sorted({(r["eta"], r["sigma_w"]) for r in record["runs"]}):
        revert, rosmm = (by_key[(eta, sigma_w, m)] for m in METHODS)
        lines.append(f"| {eta:g} | {sigma_w:g} | {revert['divergence']:.3g} | "
                     f"{rosmm['divergence']:.3g} | {rosmm['negative_events']} |")
    lines += ["", f"Exact ratio: {summary['exact_ratio_divergence']:.3g}. Slopes per unit "
              f"sigma_w: REVERT {summary['slope_per_sigma_w']['revert']:.3g}, RoSMM "
              f"{summary['slope_per_sigma_w']['rosmm']:.3g}, ratio "
              f"{summary['slope_ratio_revert_over_rosmm']:.2f} (published 3.6).", "",
              record["notes"], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    scorer = Scorer(args.test, args.seed + 1000)
    floor = scorer.divergence(wv.true_ratio(scorer.x))["divergence"]
    rows = run_grid(args, scorer)
    record = {
        "benchmark": "weight_variance",
        "title": "Weight-variance study: REVERT against RoSMM",
        "command": " ".join(["python", "benchmarks/weight_variance.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   "1 thread",
        "quick": args.quick,
        "events_per_class": args.events,
        "test_events_per_class": args.test,
        "epochs": args.epochs,
        "summary": summarize(rows, args, floor),
        "runs": rows,
        "patience": args.patience,
        "notes": (f"Networks: MLP {list(HIDDEN)}, batch 1024, learning rate 3e-3, cosine "
                  f"schedule, {args.epochs} epochs, early-stopping patience {args.patience}, "
                  "best validation epoch kept, one seed."),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(record))
    plot(args.output.with_suffix(".png"), rows, args, floor)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
