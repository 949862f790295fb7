"""GPU check: training throughput on CUDA and agreement of CPU and GPU ratios.

Trains REVERT on a signed-weight toy: the numerator is N(0.5, 1) in 4
dimensions with 10 % of its events at weight -1, the denominator
N(0, 1). The same seed runs on the CPU, on CUDA in float32 and on CUDA
with bfloat16 autocast, and each run reports events per second. Then
the learned ratios are compared on 20,000 fresh denominator events.

Tolerance: CPU and GPU run different kernels, so their float32 roundings
differ and training drifts apart from the first step. Both runs are
estimates of the same ratio, and the yardstick for their difference is
the training noise itself: the median of |r_a - r_b| / |r_a| between two
CPU runs that differ only in the seed. The check passes when the
CPU-GPU median difference is below half of that seed-to-seed median
(float32) and below it (bfloat16 autocast).

It also runs ``quasiratio fit --device cuda --mixed-precision`` and
``quasiratio reweight`` on a small file, to check the command-line path.

    python benchmarks/gpu_check.py            # 200,000 events per class, 5 epochs
    python benchmarks/gpu_check.py --quick    # 20,000 events per class, 2 epochs

Without CUDA it runs the CPU half only and records that the GPU was not
measured; the JSON record goes to ``benchmarks/results/gpu_check.json``
(``gpu_check.quick.json`` with ``--quick``) for ``benchmarks/run_all.py``.
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
import torch

from quasiratio.estimators import make_estimator
from quasiratio.events import EventSample
from quasiratio.training import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"
N_FEATURES = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events per class, 2 epochs")
    parser.add_argument("--events", type=int, help="events per class")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=4096, help="events per batch")
    parser.add_argument("--output", type=Path, help="JSON result file")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 20_000 if args.quick else 200_000
    if args.epochs is None:
        args.epochs = 2 if args.quick else 5
    if args.output is None:
        args.output = RESULTS / ("gpu_check.quick.json" if args.quick else "gpu_check.json")
    return args


def toy(events: int, seed: int) -> tuple[EventSample, EventSample]:
    rng = np.random.default_rng(seed)
    numerator = rng.normal(0.5, 1.0, (events, N_FEATURES))
    weight = np.where(rng.random(events) < 0.1, -1.0, 1.0)
    denominator = rng.normal(0.0, 1.0, (events, N_FEATURES))
    return EventSample.from_arrays(numerator, weight), EventSample.from_arrays(denominator)


def fit(samples, args, *, device: str, seed: int = 0, mixed_precision: bool = False):
    """Train one REVERT model; return it with its training throughput in events/s."""
    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                            seed=seed, device=device, mixed_precision=mixed_precision,
                            progress=False)
    estimator = make_estimator("revert", config=config)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    estimator.fit(*samples)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    epochs = len(estimator.history_.train_loss)
    trained = 2 * args.events * (1 - config.validation_fraction) * epochs
    return estimator, trained / seconds


def median_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.abs(a - b) / np.abs(a)))


def check_cli(workdir: Path) -> dict[str, object]:
    """Fit on CUDA with mixed precision through the CLI, then reweight on the CPU."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    numerator, denominator = toy(5_000, seed=3)
    for name, sample in (("numerator", numerator), ("denominator", denominator)):
        columns = {f"x{i}": sample.x[:, i] for i in range(N_FEATURES)}
        columns["weight"] = sample.sample_weight
        pq.write_table(pa.table(columns), workdir / f"{name}.parquet")
    quasiratio = [sys.executable, "-m", "quasiratio", "-q"]
    fit_command = quasiratio + [
        "fit", "--numerator", str(workdir / "numerator.parquet"),
        "--denominator", str(workdir / "denominator.parquet"), "--output", str(workdir / "model"),
        "--epochs", "2", "--device", "cuda", "--mixed-precision"]
    reweight_command = quasiratio + [
        "reweight", str(workdir / "model"), str(workdir / "denominator.parquet"),
        "--output", str(workdir / "out.parquet")]
    fit_status = subprocess.run(fit_command).returncode
    reweight_status = subprocess.run(reweight_command).returncode if fit_status == 0 else None
    return {"cli_fit_exit_status": fit_status, "cli_reweight_exit_status": reweight_status}


def measure(args: argparse.Namespace) -> tuple[dict, list[str]]:
    samples = toy(args.events, seed=1)
    _, evaluation = toy(20_000, seed=2)
    cpu, cpu_rate = fit(samples, args, device="cpu")
    cpu_other_seed, _ = fit(samples, args, device="cpu", seed=1)
    r_cpu = cpu.ratio(evaluation)
    noise = median_difference(r_cpu, cpu_other_seed.ratio(evaluation))
    figures: dict[str, object] = {
        "events_per_class": args.events, "epochs": args.epochs, "batch_size": args.batch_size,
        "cpu_events_per_second": round(cpu_rate),
        "seed_to_seed_median_relative_difference": noise,
    }
    if not torch.cuda.is_available():
        return figures, ["CUDA is not available here: only the CPU half ran, the GPU is "
                         "not measured."]
    figures["gpu"] = torch.cuda.get_device_name(0)
    for label, mixed in (("float32", False), ("bfloat16", True)):
        gpu, rate = fit(samples, args, device="cuda", mixed_precision=mixed)
        difference = median_difference(r_cpu, gpu.ratio(evaluation))
        limit = noise / 2 if not mixed else noise
        figures[f"cuda_{label}_events_per_second"] = round(rate)
        figures[f"cuda_{label}_median_relative_difference_to_cpu"] = difference
        figures[f"cuda_{label}_within_tolerance"] = difference < limit
    with tempfile.TemporaryDirectory(prefix="quasiratio-gpu-") as tmp:
        figures.update(check_cli(Path(tmp)))
    return figures, []


def machine() -> dict[str, object]:
    return {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures, notes = measure(args)
    record = {
        "benchmark": "gpu_check",
        "title": "CUDA throughput and CPU/GPU agreement",
        "command": "python benchmarks/gpu_check.py" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "figures": figures,
        "notes": notes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    failed = [k for k, v in figures.items() if k.endswith("within_tolerance") and v is False]
    failed += [k for k, v in figures.items() if k.endswith("exit_status") and v not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
