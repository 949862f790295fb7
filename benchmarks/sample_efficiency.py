"""Sample efficiency of joint-ratio methods on the latent Gaussian toy.

The toy draws z ~ N(theta, 1) and observes x = z + N(0, sigma^2), so the
exact log r(x | theta) = log p(x | theta) - log p(x | 0) is known while
the training events carry the joint ratio r_xz and joint score t_xz of z
(:class:`quasiratio.toys.latent.LatentGaussian`, sigma = 1, theta uniform
in [-1, 1], reference theta = 0). For each training size N (simulated
events), each method learns r(x | theta) and is scored by the mean squared
error of log r on 20,000 held-out reference events, each with its own
theta drawn uniformly in [-1, 1].

Methods: quasiratio's parameterised CARL, ALICE, ALICES (alpha = 1) and
joint REVERT, and MadMiner's CARL, ALICE and ALICES when the ``madminer``
package imports. The two-class methods get N/2 numerator and N/2
denominator events; joint REVERT, which needs no numerator, gets N
denominator events. Every method uses the same network: two hidden
layers of 64 tanh units, MadMiner's default activation. All share batch
size 128 and keep the best epoch on 20 % of the events held out for
validation. Each run gets enough epochs for at least 4,000 batches and
at least 8 epochs. ALICE converges slowly (probably because soft labels
near 1/2 give small gradients): at N = 10,000 its error fell from 0.006
after 1,500 batches to 0.0016 after 5,000, so a smaller budget measures
the optimiser rather than the statistics. Optimisers differ: AdamW with
a cosine schedule in quasiratio, AMSGrad with exponential decay from
1e-3 to 1e-4 in MadMiner. The MSE of joint REVERT counts only the test
events where its signed ratio -2 sinh z is positive, and the record
gives the number of the others as ``nonpositive``.

MadMiner 0.9.6 is installed with ``pip install madminer --no-deps``
(never let it change the installed torch). Its package import loads its
Delphes reader, which imports ``uproot3``; the ML part never uses it, so
this script puts an empty module under that name when ``uproot3`` is
missing.

    python benchmarks/sample_efficiency.py            # N = 1,000 to 100,000
    python benchmarks/sample_efficiency.py --quick    # N = 1,000 and 10,000, fewer batches

Writes a JSON record (default ``benchmarks/results/sample_efficiency.json``,
or ``sample_efficiency.quick.json`` with ``--quick``) for
``benchmarks/run_all.py`` and a Markdown table next to it (``.md``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from quasiratio.estimators import make_estimator
from quasiratio.toys.latent import LatentGaussian
from quasiratio.training import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"
TOY = LatentGaussian(sigma=1.0)
HIDDEN = (64, 64)
BATCH_SIZE = 128
MIN_EPOCHS = 8
TEST_EVENTS = 20_000
FULL_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
OURS = {
    "CARL": "parameterized-carl",
    "ALICE": "alice",
    "ALICES": "alices",
    "joint REVERT": "joint-revert",
}
MADMINER = {"CARL": "carl", "ALICE": "alice", "ALICES": "alices"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="N = 1,000 and 10,000, at least 1,500 batches per run")
    parser.add_argument("--sizes", type=int, nargs="+", help="training sizes (simulated events)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="independent training sets per size (default 1)")
    parser.add_argument("--min-steps", type=int,
                        help="minimum number of batches per training run "
                             "(default 4,000, or 1,500 with --quick)")
    parser.add_argument("--no-madminer", action="store_true", help="skip MadMiner's methods")
    parser.add_argument("--output", type=Path, help="JSON result file")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    args.min_steps = args.min_steps or (1_500 if args.quick else 4_000)
    name = "sample_efficiency.quick.json" if args.quick else "sample_efficiency.json"
    args.output = args.output or RESULTS / name
    return args


def epochs_for(n: int, min_steps: int) -> int:
    """Epochs that give at least ``min_steps`` batches on the 80 % training part of N events."""
    return max(MIN_EPOCHS, math.ceil(min_steps * BATCH_SIZE / (0.8 * n)))


def held_out_events() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    theta = rng.uniform(-1.0, 1.0, TEST_EVENTS)
    x, _ = TOY.simulate(np.zeros(TEST_EVENTS), seed=54321)
    return x, theta, TOY.log_ratio(x, theta, 0.0)


def run_ours(method: str, n: int, seed: int, test, epochs: int) -> dict:
    numerator, denominator = TOY.parameterized_samples(n // 2, seed=seed)
    config = TrainingConfig(
        epochs=epochs, batch_size=BATCH_SIZE, validation_fraction=0.2, patience=None,
        seed=seed, progress=False,
    )
    estimator = make_estimator(method, hidden=HIDDEN, activation="tanh", config=config)
    if method == "joint-revert":
        _, denominator = TOY.parameterized_samples(n, seed=seed)
        estimator.fit(None, denominator)
        ratio = estimator.ratio(test[0], theta=test[1][:, None])
        positive = ratio > 0
        return _score(np.log(ratio[positive]), test[2][positive], int((~positive).sum()))
    estimator.fit(numerator, denominator)
    return _score(estimator.log_ratio(test[0], theta=test[1][:, None]), test[2], 0)


def import_madminer():
    """Import MadMiner's ratio estimator, or return the reason it cannot run."""
    try:
        import uproot3  # noqa: F401
    except ImportError:
        sys.modules["uproot3"] = types.ModuleType("uproot3")
    try:
        from madminer.ml import ParameterizedRatioEstimator
    except Exception as error:  # any failure means MadMiner cannot run here
        return None, f"import failed: {type(error).__name__}: {error}"
    return ParameterizedRatioEstimator, None


def run_madminer(estimator_class, method: str, n: int, seed: int, test, epochs: int) -> dict:
    numerator, denominator = TOY.parameterized_samples(n // 2, seed=seed)
    # MadMiner puts the parameterised point theta0 on top with y = 0 and the
    # reference theta1 below with y = 1; r_xz and t_xz are the same numbers.
    x = np.vstack([numerator.x, denominator.x])
    y = np.r_[np.zeros(len(numerator)), np.ones(len(denominator))][:, None]
    theta = np.vstack([numerator.extras["theta"], denominator.extras["theta"]])
    r_xz = np.r_[numerator.extras["r_xz"], denominator.extras["r_xz"]][:, None]
    t_xz = np.vstack([numerator.extras["t_xz"], denominator.extras["t_xz"]])
    torch.manual_seed(seed)
    np.random.seed(seed)
    estimator = estimator_class(n_hidden=HIDDEN, activation="tanh")
    estimator.train(
        method, x, y, theta, r_xz=r_xz, t_xz=t_xz, alpha=1.0, n_epochs=epochs,
        batch_size=BATCH_SIZE, validation_split=0.2, early_stopping=True, verbose="none",
        n_workers=0,
    )
    log_r, _ = estimator.evaluate_log_likelihood_ratio(
        test[0][:, None], test[1][:, None], test_all_combinations=False
    )
    return _score(np.asarray(log_r).reshape(-1), test[2], 0)


def _score(estimate: np.ndarray, truth: np.ndarray, nonpositive: int) -> dict:
    return {"mse_log_r": float(np.mean((estimate - truth) ** 2)), "nonpositive": nonpositive}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    logging.getLogger("madminer").setLevel(logging.WARNING)
    test = held_out_events()
    madminer_class, madminer_problem = (None, "skipped (--no-madminer)")
    if not args.no_madminer:
        madminer_class, madminer_problem = import_madminer()
    runs = []
    for n in args.sizes:
        epochs = epochs_for(n, args.min_steps)
        for seed in range(args.seeds):
            jobs = [("quasiratio", name, lambda m=m: run_ours(m, n, seed, test, epochs))
                    for name, m in OURS.items()]
            if madminer_class is not None:
                jobs += [("MadMiner", name,
                          lambda m=m: run_madminer(madminer_class, m, n, seed, test, epochs))
                         for name, m in MADMINER.items()]
            for library, name, job in jobs:
                runs.append(_timed(library, name, n, seed, epochs, job))
                print(json.dumps(runs[-1]), file=sys.stderr)
    return {
        "benchmark": "sample_efficiency",
        "title": "Sample efficiency of joint-ratio methods (latent Gaussian toy)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
                   f"torch {torch.__version__}, 1 thread",
        "quick": bool(args.quick),
        "notes": _notes(madminer_problem),
        "mse_log_r": _table(runs),
        "runs": runs,
    }


def _timed(library: str, name: str, n: int, seed: int, epochs: int, job) -> dict:
    start = time.perf_counter()
    row = {"library": library, "method": name, "events": n, "seed": seed, "epochs": epochs}
    try:
        row.update(job())
    except Exception as error:  # a failed run is a result to report, not a crash
        row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def _table(runs: list[dict]) -> dict:
    """Mean MSE over seeds, by method (rows) and training size (columns)."""
    table: dict[str, dict[str, float | str]] = {}
    for row in runs:
        key = f"{row['method']} ({row['library']})"
        column = f"N={row['events']}"
        values = [r.get("mse_log_r") for r in runs
                  if (r["method"], r["library"], r["events"]) == (row["method"], row["library"],
                                                                  row["events"])]
        finite = [v for v in values if v is not None]
        cell = float(np.mean(finite)) if finite else row.get("error", "failed")
        table.setdefault(key, {})[column] = cell
    return table


def _notes(madminer_problem: str | None) -> str:
    text = (
        "MSE of log r on 20,000 held-out reference events, mean over seeds; N counts "
        "simulated training events (N/2 per class, N denominator events for joint REVERT)."
    )
    if madminer_problem:
        text += f" MadMiner not run: {madminer_problem}."
    return text


def markdown(record: dict) -> str:
    table = record["mse_log_r"]
    columns = sorted({c for row in table.values() for c in row}, key=lambda c: int(c[2:]))
    lines = [f"# {record['title']}", "", record["notes"], "",
             f"`{record['command']}` on {record['machine']}, {record['date']}", "",
             "| method | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for key, row in table.items():
        cells = [f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, ""))
                 for c in columns]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    text = markdown(record)
    args.output.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
