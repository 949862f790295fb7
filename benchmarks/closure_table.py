"""Closure table of the two-dimensional Gaussian-mixture toy.

Source (4 N_2.5 - N_2.3) / 3 and target 2 N_2.0 - N_1.2
(:mod:`quasiratio.toys.gaussian_mixture`), each drawn from its |coefficient|
mixture with weights +1 and -1. Every method is trained on the same
training events and scored on the same test events. The score is the
weighted chi-square per bin, sum_i (W0 w1_i - W1 w0_i)^2 / (W0^2 s1_i +
W1^2 s0_i) / (bins - 1), between the test source reweighted by w r_hat and
the test target. It is taken on the radius, in 99 bins equally spaced
between the 0.1 and 99.99 percentiles of the test target radius.

The published table (REVERT paper, arXiv:2512.19913), with 2,000,000
training and 1,400,000 test events per class: no reweighting 579, REVERT
26.4, RoSMM with coefficients from the weight sums 4.35, fitted 5.9,
fine-tuned 5.3, exact ratio 2.95. The two RoSMM variants with fitted
coefficients start from the sub-classifiers of the "sums" variant
(:meth:`RoSMM.refit_coefficients`), as the three variants share them in
the method's definition.

    python benchmarks/closure_table.py            # 150,000 training, 150,000 test per class
    python benchmarks/closure_table.py --quick    # 20,000 training, 50,000 test per class

Writes ``results/closure_table.json`` (``.quick.json``), a Markdown table
(``.md``) and a plot of the reweighted radius (``.png``).
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

from quasiratio.diagnostics.distances import weighted_chi_square
from quasiratio.diagnostics.histograms import percentile_edges
from quasiratio.estimators import make_estimator
from quasiratio.toys import gaussian_mixture as gm
from quasiratio.training import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"
HIDDEN = (64, 64)
#: Epochs of the joint fine-tuning, which trains four networks on all events.
FINETUNE_EPOCHS = 5
PUBLISHED = {"no reweighting": 579.0, "REVERT": 26.4, "RoSMM sums": 4.35,
             "RoSMM fit": 5.9, "RoSMM finetune": 5.3, "exact ratio": 2.95}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 training and 50,000 test events per class, 10 epochs")
    parser.add_argument("--train", type=int, help="training events per class")
    parser.add_argument("--test", type=int, help="test events per class")
    parser.add_argument("--epochs", type=int, help="training epochs of every network")
    parser.add_argument("--seed", type=int, default=0, help="seed of the events and networks")
    parser.add_argument("--output", type=Path, help="JSON result file")
    args = parser.parse_args(argv)
    args.train = args.train or (20_000 if args.quick else 150_000)
    args.test = args.test or (50_000 if args.quick else 150_000)
    args.epochs = args.epochs or (10 if args.quick else 20)
    name = "closure_table.quick.json" if args.quick else "closure_table.json"
    args.output = args.output or RESULTS / name
    return args


def fit_methods(train_source, train_target, config) -> tuple[dict, dict]:
    """Return the fitted estimators by table row and their training times in seconds."""
    estimators, seconds = {}, {}
    start = time.perf_counter()
    estimators["REVERT"] = make_estimator("revert", config=config, hidden=HIDDEN).fit(
        train_target, train_source)
    seconds["REVERT"] = time.perf_counter() - start
    start = time.perf_counter()
    sums = make_estimator("rosmm", config=config, hidden=HIDDEN).fit(train_target, train_source)
    estimators["RoSMM sums"] = sums
    seconds["RoSMM sums"] = time.perf_counter() - start
    stages = {"fit": config.replace(learning_rate=1e-2),
              "finetune": config.replace(learning_rate=3e-4, epochs=FINETUNE_EPOCHS)}
    for mode, stage_config in stages.items():
        start = time.perf_counter()
        sums.coefficient_config = stage_config
        estimators[f"RoSMM {mode}"] = sums.refit_coefficients(
            train_target, train_source, coefficients=mode)
        seconds[f"RoSMM {mode}"] = time.perf_counter() - start
    return estimators, seconds


def closure_rows(estimators, test_source, test_target) -> tuple[list[dict], dict]:
    """Return one table row per method and the reweighting weights used."""
    source_radius = gm.radius(test_source.x)
    target_radius = gm.radius(test_target.x)
    edges = percentile_edges(target_radius, bins=99, percentiles=(0.1, 99.99))
    ratios = {"no reweighting": np.ones(len(test_source))}
    with np.errstate(all="ignore"):
        ratios.update({name: e.ratio(test_source.x) for name, e in estimators.items()})
    ratios["exact ratio"] = gm.true_ratio(test_source.x)
    rows = []
    for name, ratio in ratios.items():
        finite = np.isfinite(ratio)
        weight = test_source.sample_weight * np.where(finite, ratio, 0.0)
        chi2 = weighted_chi_square(source_radius, weight, target_radius,
                                   test_target.sample_weight, edges)
        rows.append({
            "method": name,
            "chi2_per_bin": chi2.per_dof,
            "null_std": chi2.null_std,
            "published": PUBLISHED[name],
            "negative_ratio_fraction": float(np.mean(ratio < 0)),
            "non_finite_ratios": int(np.count_nonzero(~finite)),
            "coefficients": getattr(estimators.get(name), "coefficients_", None),
        })
    return rows, {"edges": edges, "ratios": ratios}


def plot(path: Path, test_source, test_target, binned: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = binned["edges"]
    centres = 0.5 * (edges[1:] + edges[:-1])
    target, _ = np.histogram(gm.radius(test_target.x), edges, weights=test_target.sample_weight)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.step(centres, target, where="mid", color="black", label="target")
    for name, ratio in binned["ratios"].items():
        weight = test_source.sample_weight * np.where(np.isfinite(ratio), ratio, 0.0)
        source, _ = np.histogram(gm.radius(test_source.x), edges, weights=weight)
        source *= target.sum() / source.sum()
        top.step(centres, source, where="mid", label=name, alpha=0.8)
        with np.errstate(divide="ignore", invalid="ignore"):
            bottom.plot(centres, source / target, label=name, alpha=0.8)
    top.axhline(0, color="grey", lw=0.5)
    top.set_ylabel("signed events per bin")
    top.legend(fontsize=8)
    bottom.set_ylim(0.5, 1.5)
    bottom.set_ylabel("source / target")
    bottom.set_xlabel("radius |x|")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(record: dict) -> str:
    lines = [f"# {record['title']}", "", f"`{record['command']}` on {record['machine']}, "
             f"{record['date']}; {record['train_events_per_class']} training and "
             f"{record['test_events_per_class']} test events per class.", "",
             "| method | chi2 / bin | minus exact ratio | published | negative ratio fraction |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for row in record["table"]:
        lines.append(f"| {row['method']} | {row['chi2_per_bin']:.3g} | "
                     f"{row['excess_over_exact']:+.3g} | {row['published']:g} | "
                     f"{row['negative_ratio_fraction']:.4f} |")
    lines += ["", record["notes"], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    config = TrainingConfig(epochs=args.epochs, batch_size=1024, learning_rate=3e-3,
                            patience=None, seed=args.seed, progress=False)
    train_source, train_target = gm.make_samples(args.train, args.train, seed=args.seed)
    test_source, test_target = gm.make_samples(args.test, args.test, seed=args.seed + 1000)

    estimators, seconds = fit_methods(train_source, train_target, config)
    rows, binned = closure_rows(estimators, test_source, test_target)
    exact = next(r["chi2_per_bin"] for r in rows if r["method"] == "exact ratio")
    for row in rows:
        row["training_seconds"] = seconds.get(row["method"])
        row["excess_over_exact"] = row["chi2_per_bin"] - exact

    record = {
        "benchmark": "closure_table",
        "title": "Closure of the 2-D Gaussian-mixture toy: weighted chi-square per bin",
        "command": " ".join(["python", "benchmarks/closure_table.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   "1 thread",
        "quick": args.quick,
        "train_events_per_class": args.train,
        "test_events_per_class": args.test,
        "epochs": args.epochs,
        "table": rows,
        "notes": (f"Networks: MLP {list(HIDDEN)}, batch 1024, learning rate 3e-3, cosine "
                  f"schedule, {args.epochs} epochs, best validation epoch kept. Coefficient fit "
                  f"at learning rate 1e-2, fine-tuning for {FINETUNE_EPOCHS} epochs at 3e-4. Under "
                  "perfect closure chi2 / bin is 1 with spread "
                  f"{rows[0]['null_std']:.2f}; excess_over_exact is the distance from the "
                  "exact ratio on the same events."),
    }

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(record))
    plot(args.output.with_suffix(".png"), test_source, test_target, binned)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
