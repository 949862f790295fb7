"""Training throughput of the library loop against two reference loops.

In one process, on the same data and the same 3 x 64 MLP (weighted
binary cross-entropy, AdamW), for batch sizes 512 and 4096:

- ``library``: :func:`quasiratio.training.train`, with input
  standardisation and validation switched off;
- ``dataloader``: ``torch.utils.data.DataLoader(TensorDataset(...),
  shuffle=True)``, the loop most research code uses;
- ``bare``: slices of tensors shuffled once per epoch, the practical
  limit of a Python training loop.

Each loop runs ``--repeats`` times, interleaved, and the fastest run
counts, which filters out pauses caused by other processes. The targets
are at least 10 times the DataLoader loop and at least 0.75 of the bare
loop.

    python benchmarks/throughput.py            # 200,000 events, 3 epochs
    python benchmarks/throughput.py --quick    # 20,000 events, 1 epoch

Writes a JSON record (default ``benchmarks/results/throughput.json``, or
``throughput.quick.json`` with ``--quick``) that ``benchmarks/run_all.py``
turns into a section of ``docs/benchmarks.md``, and prints a Markdown
table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from quasiratio.networks import MLP
from quasiratio.training import DEFAULT_NUM_THREADS, TrainingConfig, make_optimizer, train

RESULTS = Path(__file__).resolve().parent / "results"
N_FEATURES = 4
HIDDEN = (64, 64, 64)
BATCH_SIZES = (512, 4096)
LOOPS = ("library", "dataloader", "bare")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events and 1 epoch")
    parser.add_argument("--events", type=int, help="number of training events")
    parser.add_argument("--epochs", type=int, help="epochs per measured run")
    parser.add_argument("--repeats", type=int, help="runs per loop; the fastest counts")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--threads", type=int, default=DEFAULT_NUM_THREADS,
                        help="CPU threads for every loop")
    parser.add_argument("--output", type=Path, help="JSON result file")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 20_000 if args.quick else 200_000
    if args.epochs is None:
        args.epochs = 1 if args.quick else 3
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.output is None:
        args.output = RESULTS / ("throughput.quick.json" if args.quick else "throughput.json")
    return args


def make_data(n: int, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    y = (torch.rand(n, generator=generator) < 0.5).float()
    x = torch.randn(n, N_FEATURES, generator=generator) + 0.5 * y[:, None]
    weight = torch.where(torch.rand(n, generator=generator) < 0.1, -1.0, 1.0) / n
    return {"x": x.to(device), "y": y.to(device), "weight": weight.to(device)}


def new_network(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return MLP(N_FEATURES, HIDDEN).to(device)


def optimizer_for(network: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Build the optimiser the library loop uses, so that only the loops differ."""
    return make_optimizer(network, TrainingConfig(), device)


def weighted_bce(network, x, y, weight, n) -> torch.Tensor:
    per_event = binary_cross_entropy_with_logits(network(x), y, reduction="none")
    return (weight * per_event).sum() * (n / len(x))


def run_library(data, batch_size, epochs, device) -> None:
    network = new_network(device)
    config = TrainingConfig(
        epochs=epochs, batch_size=batch_size, schedule="constant", validation_fraction=0.0,
        patience=None, progress=False, device=str(device), num_threads=torch.get_num_threads(),
    )

    def objective(model, batch):
        return binary_cross_entropy_with_logits(model(batch["x"]), batch["y"], reduction="none")

    train(network, objective, data, config)


def run_dataloader(data, batch_size, epochs, device) -> None:
    network = new_network(device)
    optimizer = optimizer_for(network, device)
    dataset = torch.utils.data.TensorDataset(data["x"], data["y"], data["weight"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    n = len(dataset)
    for _ in range(epochs):
        for x, y, weight in loader:
            loss = weighted_bce(network, x, y, weight, n)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def run_bare(data, batch_size, epochs, device) -> None:
    network = new_network(device)
    optimizer = optimizer_for(network, device)
    n = len(data["x"])
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        x, y, weight = data["x"][order], data["y"][order], data["weight"][order]
        for start in range(0, n, batch_size):
            end = start + batch_size
            loss = weighted_bce(network, x[start:end], y[start:end], weight[start:end], n)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


RUNNERS = {"library": run_library, "dataloader": run_dataloader, "bare": run_bare}


def timed(runner, data, batch_size, epochs, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    runner(data, batch_size, epochs, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(args) -> list[dict]:
    device = torch.device(args.device)
    data = make_data(args.events, device)
    rows = []
    for batch_size in BATCH_SIZES:
        warm_up = {key: value[: 4 * batch_size] for key, value in data.items()}
        for name in LOOPS:  # allocator, kernels, thread pool
            RUNNERS[name](warm_up, batch_size, 1, device)
        best = {name: float("inf") for name in LOOPS}
        for _ in range(args.repeats):
            for name in LOOPS:
                seconds = timed(RUNNERS[name], data, batch_size, args.epochs, device)
                best[name] = min(best[name], seconds)
        rate = {name: args.events * args.epochs / best[name] for name in LOOPS}
        rows.append({
            "batch_size": batch_size,
            "library_events_per_s": round(rate["library"]),
            "dataloader_events_per_s": round(rate["dataloader"]),
            "bare_events_per_s": round(rate["bare"]),
            "library_over_dataloader": round(rate["library"] / rate["dataloader"], 2),
            "library_over_bare": round(rate["library"] / rate["bare"], 3),
        })
    return rows


def machine(args) -> dict:
    description = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        # Other processes share the CPU; the 1-minute load average at the end of
        # the run shows how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
    }
    if args.device.startswith("cuda"):
        description["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return description


def markdown(rows: list[dict]) -> str:
    lines = [
        "| batch | library events/s | DataLoader events/s | bare events/s "
        "| library / DataLoader | library / bare |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch_size']} | {r['library_events_per_s']:,} | "
            f"{r['dataloader_events_per_s']:,} | {r['bare_events_per_s']:,} | "
            f"{r['library_over_dataloader']} | {r['library_over_bare']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = measure(args)
    record = {
        "benchmark": "throughput",
        "title": "Training throughput: library loop, DataLoader loop, bare loop (3 x 64 MLP)",
        "command": "python benchmarks/throughput.py" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(args),
        "events": args.events,
        "epochs": args.epochs,
        "notes": "Targets: library / DataLoader >= 10 and library / bare >= 0.75. "
                 "Fastest of the repeated, interleaved runs.",
        "figures": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
