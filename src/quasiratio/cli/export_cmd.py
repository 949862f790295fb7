"""Write a saved model as an ONNX file for C++ analysis frameworks.

The graph takes the raw features (float32, batch x D, in the order stored
in the file's metadata) and returns the signed ratio (float64) and the
network logit (float32). After writing, the file is run once with ONNX
Runtime on events spread over the training range and compared with
PyTorch, unless --no-check is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Events evaluated by the after-export comparison with PyTorch.
CHECK_EVENTS = 1000

#: Largest accepted |r_onnx - r_torch| / max(|r_torch|, 1); float32 rounding is ~1e-7.
CHECK_TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="DIR", help="model directory written by fit")
    parser.add_argument("output", type=Path, metavar="FILE", help="ONNX file to write (.onnx)")
    parser.add_argument(
        "--opset", type=int, default=None, help="ONNX opset version of the graph (default: 18)"
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip the comparison of ONNX Runtime with PyTorch after writing",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from quasiratio._atomic import atomic_path
    from quasiratio.errors import InputError
    from quasiratio.estimators import load
    from quasiratio.onnx_export import DEFAULT_OPSET, export_onnx

    if args.output.suffix.lower() != ".onnx":
        raise InputError(
            f"output file {str(args.output)!r} must end in .onnx; name it for example model.onnx"
        )
    estimator = load(args.model)
    opset = args.opset if args.opset is not None else DEFAULT_OPSET
    result = {
        "output": str(args.output),
        "method": estimator.method,
        "feature_names": list(estimator.feature_names_),
        "opset": opset,
    }
    # The file is checked under its temporary name, so a failed check leaves no output.
    with atomic_path(args.output) as tmp:
        export_onnx(estimator, tmp, opset_version=opset)
        if not args.no_check:
            result["check"] = _check(estimator, tmp)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"wrote {args.output}: method {result['method']}, "
              f"{len(result['feature_names'])} features ({', '.join(result['feature_names'])})")
        if "check" in result:
            check = result["check"]
            print(f"ONNX Runtime vs PyTorch on {check['events']} events: max ratio difference "
                  f"{check['ratio_max_difference']:.2g}, max logit difference "
                  f"{check['logit_max_difference']:.2g}")
    return 0


def _check(estimator, path) -> dict:
    from quasiratio.errors import QuasiRatioError
    from quasiratio.onnx_export import compare_with_torch, example_inputs

    check = compare_with_torch(estimator, path, example_inputs(estimator, CHECK_EVENTS))
    if check["ratio_max_difference"] > CHECK_TOLERANCE or check["sign_mismatches"]:
        raise QuasiRatioError(
            f"ONNX Runtime disagrees with PyTorch on this model ({check}), so no file was "
            "written; report it with the model directory, or pass --no-check to write anyway"
        )
    return check
