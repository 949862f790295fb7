"""The ``quasiratio`` command line: one subcommand per task.

Subcommand modules import torch and the heavy readers inside their
``run`` function, so ``quasiratio --help`` and ``quasiratio inspect`` start
quickly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from quasiratio._version import __version__

#: Subcommand name -> module in this package with ``add_arguments`` and ``run``.
SUBCOMMANDS = {
    "inspect": "inspect_cmd",
    "fit": "fit_cmd",
    "reweight": "reweight_cmd",
    "evaluate": "evaluate_cmd",
    "demo": "demo_cmd",
    "export-onnx": "export_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quasiratio",
        description="Learn likelihood ratios from weighted (also negatively weighted) events.",
    )
    parser.add_argument("--version", action="version", version=f"quasiratio {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars and only warnings in the log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(f"quasiratio.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"quasiratio.cli.{module_name}":
                raise
            continue
        doc = (module.__doc__ or "").strip().splitlines()
        sub_parser = sub.add_parser(name, help=doc[0] if doc else None, description=(module.__doc__ or None))
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    if quiet:
        level = logging.WARNING
    elif verbose > 1:
        level = logging.DEBUG
    else:
        level = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if verbose < 2:
        # Other packages' INFO lines (such as the ONNX exporter's passes) only with -vv.
        handler.addFilter(_own_or_warning)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", handlers=[handler]
    )
    # One line per warning: its class and message, without the library source line.
    warnings.formatwarning = _format_warning
    logging.captureWarnings(True)


def _own_or_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] == "quasiratio"


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    from quasiratio.errors import QuasiRatioError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except QuasiRatioError as exc:
        message = " ".join(str(exc).split())
        print(f"quasiratio {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"quasiratio {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
