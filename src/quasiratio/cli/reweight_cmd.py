"""Reweight an event file with a saved model: one row per event, in file order.

The output has the columns ratio, weight and new_weight = weight * ratio,
as Parquet, CSV or NPZ by the extension of --output. The file is
streamed in chunks of --chunk-size events, so memory is bounded by the
chunk and not by the file, and --chunk-size 0 reads it at once. The rows
are the same either way. The output file is written under a temporary
name and renamed when complete, so an interrupted run leaves the
previous file or none. Weights are used as read, negative ones included,
so that the new weights describe the same signed distribution times the
ratio.
"""

from __future__ import annotations

import argparse
import json

from quasiratio.cli._common import add_tree_argument, add_weight_argument

#: Events per chunk when --chunk-size is not given: a few tens of MB for
#: tens of features, and the rows are the same for any chunk size.
DEFAULT_CHUNK_SIZE = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="DIR", help="model directory written by quasiratio fit")
    parser.add_argument("path", metavar="PATH", help="event file to reweight")
    add_weight_argument(parser)
    add_tree_argument(parser)
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="output file: .parquet, .csv or .npz")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N",
                        help="stream the input in chunks of N events, 0 to read it at once "
                             f"(default: {DEFAULT_CHUNK_SIZE})")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def run(args: argparse.Namespace) -> int:
    from quasiratio.estimators import load
    from quasiratio.reweighting import output_format, reweight_file

    output_format(args.output)
    estimator = load(args.model)
    chunk_size = args.chunk_size if args.chunk_size != 0 else None
    summary = reweight_file(
        estimator, args.path, args.output, weight=args.weight, chunk_size=chunk_size,
        tree=args.tree,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    return 0
