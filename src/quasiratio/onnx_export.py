"""Export a fitted ratio estimator to ONNX for analysis frameworks in C++.

The graph takes the raw features, float32 of shape (batch, D) in the
order of ``feature_names_``, applies the stored input standardisation and
the network(s), and returns two outputs:

- ``ratio``: the signed ratio r_hat(x), float64, as ``estimator.ratio``;
- ``logit``: the network output z(x), float32, as ``estimator.logit``
  (for RoSMM, the REVERT logit -asinh(r / 2) of the combined ratio).

The ratio maps run in float64, like the PyTorch path, so large |z| does
not overflow: CARL exp(z), REVERT -2 sinh(z) written as exp(-z) - exp(z)
(ONNX Runtime 1.32 has no float64 Sinh kernel, and in float64 the
difference loses at most ~1e-16 in absolute terms near z = 0), the
RoSMM combination of its sub-classifiers with the fitted coefficients
folded in as constants, and the histogram or isotonic map of a
calibrated CARL. Each model, ``method="auto"`` included, is exported as
one graph.

The graph is built with ``torch.onnx.export(..., dynamo=True)``, the
exporter based on ``torch.export`` (torch >= 2.5). It runs offline and
needs the ``onnxscript`` package. The TorchScript exporter of torch 2.13
(``dynamo=False``) has no symbolic function for ``aten::sinh``, so it is
not used. Feature names, method and library version are stored in the
model's ``metadata_props``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from quasiratio._atomic import atomic_path
from quasiratio._version import __version__
from quasiratio.errors import InputError

logger = logging.getLogger(__name__)

#: Names of the graph's input and outputs.
INPUT_NAME = "x"
OUTPUT_NAMES = ("ratio", "logit")

#: Default ONNX opset of the exported graph.
DEFAULT_OPSET = 18


class _SingleNetworkGraph(nn.Module):
    """Features -> (ratio float64, logit float32) for a one-network estimator."""

    def __init__(self, model: nn.Module, ratio_map: str) -> None:
        super().__init__()
        self.model = model
        self.ratio_map = ratio_map

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.model(x)
        z64 = z.to(torch.float64)
        if self.ratio_map == "exp":
            ratio = torch.exp(z64)
        else:
            ratio = torch.exp(-z64) - torch.exp(z64)
        return ratio, z


class _MixtureGraph(nn.Module):
    """Features -> (ratio float64, REVERT logit float32) for RoSMM."""

    def __init__(self, sub_models: dict, c0: float | None, c1: float | None) -> None:
        super().__init__()
        self.sub_models = nn.ModuleDict(sub_models)
        self.c0 = c0
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from quasiratio.estimators.mixtures import combine_log_ratios

        log_r = {name: model(x) for name, model in self.sub_models.items()}
        c0 = None if self.c0 is None else torch.tensor(self.c0, dtype=torch.float64)
        c1 = None if self.c1 is None else torch.tensor(self.c1, dtype=torch.float64)
        ratio = combine_log_ratios(log_r, c0, c1)
        # ONNX Runtime 1.32 has Asinh for float32 only, so the logit is formed in float32.
        logit = -torch.asinh(0.5 * ratio.to(torch.float32))
        return ratio, logit


class _CalibratedGraph(nn.Module):
    """Features -> (calibrated ratio float64, logit float32) for a calibrated CARL.

    The calibrated probability c(z) is a step function (histogram) or a
    linear interpolation between knots, constant beyond the ends
    (isotonic), as in :class:`quasiratio.calibration.Calibrator`. The
    number of knots <= z selects the bin or segment, so no search op is
    needed in the graph.
    """

    def __init__(self, model: nn.Module, kind: str, knots: np.ndarray, probability: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self.register_buffer("knots", torch.as_tensor(knots, dtype=torch.float64))
        self.register_buffer("probability", torch.as_tensor(probability, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.model(x)
        z64 = z.to(torch.float64)
        below = (z64[:, None] >= self.knots[None, :]).to(torch.int64).sum(dim=1)
        if self.kind == "histogram":
            c = self.probability[below]
        else:
            c = self._interpolate(z64, below)
        return c / (1.0 - c), z

    def _interpolate(self, z: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
        n = self.knots.shape[0]
        upper = torch.clamp(below, 1, n - 1)
        lower = upper - 1
        x0, x1 = self.knots[lower], self.knots[upper]
        p0, p1 = self.probability[lower], self.probability[upper]
        width = torch.where(x1 > x0, x1 - x0, torch.ones_like(x0))
        t = torch.clamp((z - x0) / width, 0.0, 1.0)
        t = torch.where(below >= n, torch.ones_like(t), t)
        t = torch.where(below == 0, torch.zeros_like(t), t)
        return p0 + t * (p1 - p0)


def _ratio_map(estimator) -> str:
    """Identify the logit-to-ratio map of a one-network estimator by evaluating it.

    Returns ``"exp"`` or ``"revert"``. Any other map has no ONNX
    translation here, so InputError names the method.
    """
    z = torch.linspace(-5.0, 5.0, 41, dtype=torch.float64)
    values = type(estimator)._ratio_from_logit(z)
    if torch.allclose(values, torch.exp(z), rtol=1e-12, atol=0.0):
        return "exp"
    if torch.allclose(values, -2.0 * torch.sinh(z), rtol=1e-12, atol=1e-15):
        return "revert"
    raise InputError(
        f"method {estimator.method!r} maps its logit to the ratio with a function other "
        "than exp(z) or -2 sinh(z), which the ONNX export does not translate; export a "
        "carl, revert or rosmm model instead"
    )


def ratio_graph(estimator) -> nn.Module:
    """Return a ``torch.nn.Module`` from raw features to (ratio, logit), as exported.

    A calibrated CARL exports its calibration map too. Raises InputError
    for models whose ratio the graph cannot reproduce, such as
    parameterised models, which take theta as a second input.
    """
    from quasiratio.estimators.mixtures import RoSMM

    estimator._check_fitted()
    estimator = _chosen(estimator)
    calibrator = getattr(estimator, "calibrator_", None)
    if calibrator is not None:
        return _calibrated_graph(estimator, calibrator).eval()
    if "parameterized" in estimator.method:
        raise InputError(
            f"method {estimator.method!r} takes theta as a second input, which the ONNX "
            "export does not support; export a carl, revert or rosmm model"
        )
    if isinstance(estimator, RoSMM):
        coefficients = estimator.coefficients_
        models = {name: _frozen(model) for name, model in estimator._models().items()}
        graph: nn.Module = _MixtureGraph(models, coefficients["c0"], coefficients["c1"])
    else:
        models = estimator._models()
        if len(models) != 1:
            raise InputError(
                f"method {estimator.method!r} combines {len(models)} networks in a way the "
                "ONNX export does not know; export a carl, revert or rosmm model"
            )
        (model,) = models.values()
        graph = _SingleNetworkGraph(_frozen(model), _ratio_map(estimator))
    return graph.eval()


def _calibrated_graph(estimator, calibrator) -> nn.Module:
    knots = np.asarray(calibrator.knots, dtype=np.float64)
    probability = np.asarray(calibrator.probability, dtype=np.float64)
    kind = calibrator.kind
    if kind == "isotonic" and knots.size < 2:
        # One block: c is constant, which the histogram form with no edges expresses.
        kind, knots, probability = "histogram", knots[:0], probability[:1]
    if kind not in ("histogram", "isotonic"):
        raise InputError(
            f"calibration kind {kind!r} has no ONNX translation; refit with calibration="
            "'histogram', 'isotonic' or None to export the model"
        )
    (model,) = estimator._models().values()
    return _CalibratedGraph(_frozen(model), kind, knots, probability)


def _chosen(estimator):
    """Return the estimator that ``method="auto"`` chose, or ``estimator`` itself."""
    while getattr(estimator, "estimator_", None) is not None:
        estimator = estimator.estimator_
    return estimator


def _frozen(model: nn.Module) -> nn.Module:
    """Return a CPU float32 copy of ``model`` in eval mode without gradients."""
    import copy

    copied = copy.deepcopy(model).to("cpu", torch.float32).eval()
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def _import_onnx():
    try:
        import onnx
        import onnxscript  # noqa: F401  (needed by the torch.export-based exporter)
    except ImportError as error:
        raise InputError(
            f"ONNX export needs the packages onnx and onnxscript ({error}); install them "
            "with pip install 'quasiratio[onnx]'"
        ) from None
    return onnx


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's progress lines, its log records and its deprecation warnings."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def export_onnx(estimator, path: str | os.PathLike, *, opset_version: int = DEFAULT_OPSET) -> Path:
    """Write ``estimator`` (fitted, or a model directory) as an ONNX file; return its path.

    The file is written atomically: an interrupted export leaves the
    previous file or none.
    """
    onnx = _import_onnx()
    estimator = _as_estimator(estimator)
    graph = ratio_graph(estimator)
    n_features = int(estimator.n_features_in_)
    example = torch.as_tensor(example_inputs(estimator, 8), dtype=torch.float32)
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(
            graph, (example,), None, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
            opset_version=opset_version, verbose=False,
        )
    model = program.model_proto
    _set_metadata(onnx, model, estimator)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))
    logger.info(
        "wrote the %s model (%d features) as ONNX to %s", _method_label(estimator), n_features, path
    )
    return path


def _as_estimator(estimator):
    if isinstance(estimator, (str, os.PathLike)):
        from quasiratio.estimators import load

        return load(estimator)
    return estimator


def example_inputs(estimator, n: int) -> np.ndarray:
    """Return ``n`` events drawn uniformly in the per-feature training range, seeded."""
    low = np.asarray(estimator.support_["min"], dtype=np.float64)
    high = np.asarray(estimator.support_["max"], dtype=np.float64)
    fractions = np.random.default_rng(0).uniform(size=(n, low.size))
    return low + fractions * (high - low)


def _set_metadata(onnx, model, estimator) -> None:
    properties = {
        "producer": "quasiratio",
        "quasiratio_version": __version__,
        "method": _method_label(estimator),
        "feature_names": ",".join(estimator.feature_names_),
        "input": f"{INPUT_NAME}: float32 (batch, {estimator.n_features_in_}) raw features",
        "outputs": "ratio: float64 signed r_hat(x); logit: float32 network output",
    }
    onnx.helper.set_model_props(model, properties)
    model.producer_name = "quasiratio"
    model.producer_version = __version__


def _method_label(estimator) -> str:
    chosen = _chosen(estimator)
    if chosen is estimator:
        return estimator.method
    return f"{estimator.method} ({chosen.method})"


def run_onnx(path: str | os.PathLike, x: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate an exported file with ONNX Runtime; return ``ratio`` and ``logit``."""
    try:
        import onnxruntime
    except ImportError as error:
        raise InputError(
            f"running an ONNX model needs onnxruntime ({error}); install it with "
            "pip install 'quasiratio[onnx]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    inputs = {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}
    outputs = session.run(list(OUTPUT_NAMES), inputs)
    return dict(zip(OUTPUT_NAMES, outputs))


def compare_with_torch(estimator, path: str | os.PathLike, x: np.ndarray) -> dict[str, float]:
    """Return the largest differences between ONNX Runtime and PyTorch on ``x``.

    ``ratio_max_difference`` is max |r_onnx - r_torch| / max(|r_torch|, 1):
    relative for |r| >= 1 and absolute below, because near r = 0 a REVERT
    ratio -2 sinh(z) moves by 2 dz for a float32 rounding dz of the logit.
    ``logit_max_difference`` is max |z_onnx - z_torch|, and
    ``sign_mismatches`` counts events with |r_torch| > 1e-5 whose signs differ.
    For a calibrated CARL, r_torch is the calibrator applied to z_onnx.
    """
    estimator = _as_estimator(estimator)
    x32 = np.asarray(x, dtype=np.float32)
    onnx_out = run_onnx(path, x32)
    r_torch = estimator.ratio(x32.astype(np.float64))
    z_torch = estimator.logit(x32.astype(np.float64))
    r_onnx = onnx_out["ratio"].astype(np.float64)
    z_onnx = onnx_out["logit"].astype(np.float64)
    calibrator = getattr(_chosen(estimator), "calibrator_", None)
    if calibrator is not None:
        # A step or a steep segment of the calibration map turns a float32
        # rounding of z into a large ratio change, so the map is compared on
        # the ONNX logit itself and the logits are compared separately.
        r_torch = calibrator.ratio(z_onnx)
    clear = np.abs(r_torch) > 1e-5
    return {
        "events": int(len(x32)),
        "ratio_max_difference": float(
            np.max(np.abs(r_onnx - r_torch) / np.maximum(np.abs(r_torch), 1.0))
        ),
        "logit_max_difference": float(np.max(np.abs(z_onnx - z_torch))),
        "sign_mismatches": int(np.count_nonzero(np.sign(r_onnx[clear]) != np.sign(r_torch[clear]))),
    }
