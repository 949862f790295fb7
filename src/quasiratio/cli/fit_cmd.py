"""Train a ratio estimator on a numerator and a denominator file and save the model.

The model directory is written atomically: a killed run leaves the
previous complete model or none. Training writes a checkpoint after
every epoch to DIR.checkpoint next to the output, and --resume continues
from it. Ctrl-C stops training, saves the best model so far and exits
with status 130. Under torchrun with more than one process the
training is data-parallel: each process reads its shard of both files
and only the first writes the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from quasiratio.cli._common import add_pair_arguments, seed_value

logger = logging.getLogger(__name__)

#: Methods documented for ``--method``; the estimator registry is the authority.
METHODS = ("carl", "revert", "rosmm", "auto", "alice", "alices")

#: Exit status after Ctrl-C, as for a process ended by SIGINT.
INTERRUPTED_STATUS = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pair_arguments(parser)
    parser.add_argument("--method", default="revert", metavar="NAME",
                        help=f"estimator: {', '.join(METHODS)} or any registered method "
                             "(default: revert)")
    parser.add_argument("--output", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the split, initial weights "
                        "and batch order (default: 0)")
    parser.add_argument("--epochs", type=int, default=30,
                        help="maximum number of epochs (default: 30)")
    parser.add_argument("--batch-size", type=int, default=512,
                        help="events per batch, summed over processes under torchrun "
                             "(default: 512)")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="AdamW learning rate (default: 0.001)")
    parser.add_argument("--hidden", default="64,64,64", metavar="WIDTHS",
                        help="comma-separated hidden layer widths of the MLP (default: 64,64,64)")
    parser.add_argument("--validation-fraction", type=float, default=0.2,
                        help="fraction of each class held out for early stopping (default: 0.2)")
    parser.add_argument("--patience", type=int, default=5,
                        help="epochs without a lower validation loss before stopping (default: 5)")
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="cpu, cuda, cuda:N or auto (CUDA when available; default: auto)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="run the network in bfloat16 autocast on CUDA (losses stay float32)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in DIR.checkpoint of an earlier run")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def checkpoint_dir(output: str | os.PathLike) -> Path:
    """Return the checkpoint folder of a model directory: ``DIR.checkpoint`` beside it.

    It lives outside DIR because DIR is replaced as a whole when the
    model is saved.
    """
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def parse_hidden(text: str) -> tuple[int, ...]:
    from quasiratio.errors import InputError

    try:
        widths = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise InputError(f"--hidden {text!r} is invalid: pass positive integer widths "
                         "separated by commas, such as 64,64,64")
    return widths


def training_config(args: argparse.Namespace):
    from quasiratio.training import TrainingConfig

    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        progress=False if args.quiet else None,
        checkpoint_dir=str(checkpoint_dir(args.output)),
        resume=args.resume,
        mixed_precision=args.mixed_precision,
    )


def run(args: argparse.Namespace) -> int:
    from quasiratio import distributed
    from quasiratio.estimators import make_estimator
    from quasiratio.estimators.model_io import check_model_destination

    check_model_destination(args.output)
    config = training_config(args)
    estimator = make_estimator(args.method, config=config, hidden=parse_hidden(args.hidden))
    runtime = distributed.runtime_from_environment(config.device)
    if runtime is None:
        from quasiratio.cli._common import load_pair

        numerator, denominator = load_pair(args)
        estimator.fit(numerator, denominator)
        events = {"numerator": len(numerator), "denominator": len(denominator)}
        return finish(args, estimator, events, world_size=1)
    try:
        status = fit_data_parallel(args, estimator, runtime)
    except BaseException:
        # Another process may be waiting in a collective, so do not wait for it.
        distributed.shutdown(wait=False)
        raise
    distributed.shutdown(wait=True)
    return status


def fit_data_parallel(args, estimator, runtime) -> int:
    """Fit on this process's shards; the first process saves and reports."""
    from quasiratio import distributed

    distributed.check_supported(estimator)
    numerator, denominator = distributed.load_pair_shards(args, runtime)
    distributed.fit_data_parallel(estimator, numerator, denominator, runtime)
    events = runtime.global_counts({"numerator": len(numerator),
                                    "denominator": len(denominator)})
    if not runtime.is_main:
        return 0
    return finish(args, estimator, events, world_size=runtime.world_size)


def finish(args, estimator, events: dict[str, int], *, world_size: int) -> int:
    """Save the model, drop the checkpoint of a complete run, and report."""
    histories = estimator._histories()
    interrupted = any(history.interrupted for history in histories.values())
    estimator.save(args.output)
    if interrupted:
        logger.warning("training was interrupted; saved the best model so far to %s. Run the "
                       "same command with --resume to continue training", args.output)
    else:
        shutil.rmtree(checkpoint_dir(args.output), ignore_errors=True)
        logger.info("saved the %s model to %s", estimator.method, args.output)
    if args.json:
        summary = {
            "method": estimator.method,
            "output": str(args.output),
            "events": events,
            "features": list(estimator.feature_names_),
            "interrupted": interrupted,
            "losses": {name: _losses(history) for name, history in histories.items()},
            "world_size": world_size,
            # sum(w r) / sum(w) over the denominator with its error; 1 when trained.
            "normalization": getattr(estimator, "normalization_", None),
        }
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return INTERRUPTED_STATUS if interrupted else 0


def _losses(history) -> dict:
    return {
        "train": history.train_loss,
        "validation": history.validation_loss,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
    }
