"""Model directories: JSON metadata plus tensors in safetensors format.

A saved model is a directory with ``metadata.json`` and
``weights.safetensors``. Safetensors files hold only raw tensor bytes and
a JSON header, so loading one cannot execute code, unlike a pickle. The
metadata records the SHA-256 of the weights file, so a changed or
truncated weights file is detected before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from quasiratio._atomic import atomic_directory, check_replaceable_directory
from quasiratio._version import __version__
from quasiratio.errors import InputError, ModelFormatError
from quasiratio.networks import LogitModel, Standardizer, build_network
from quasiratio.training import TrainingConfig, TrainingHistory

#: Version of the model directory layout; raise it when old readers would misread it.
FORMAT_VERSION = 1
METADATA_NAME = "metadata.json"
WEIGHTS_NAME = "weights.safetensors"

_REQUIRED = ("format_version", "library_version", "method", "feature_names", "options",
             "training", "networks", "support", "history", "method_fields", "weights_sha256")


def save_estimator(estimator, path) -> None:
    """Write ``estimator`` to the directory ``path``, replacing it only when complete.

    An existing ``path`` must be empty or a model directory, because it is
    replaced with all its content.
    """
    check_model_destination(path)
    models = estimator._models()
    tensors = {}
    for name, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").contiguous()
    metadata = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "method": estimator.method,
        "feature_names": list(estimator.feature_names_),
        "options": estimator._options(),
        "training": estimator.config.to_dict(),
        "networks": estimator.network_specs(),
        "scaling": {name: {"mean": m.standardizer.mean.tolist(),
                           "scale": m.standardizer.scale.tolist()} for name, m in models.items()},
        "support": estimator.support_,
        "history": {name: h.to_dict() for name, h in estimator._histories().items()},
        "method_fields": estimator._method_fields(),
    }
    with atomic_directory(path, marker=METADATA_NAME) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME))
        metadata["weights_sha256"] = _sha256(tmp / WEIGHTS_NAME)
        text = json.dumps(_finite_json(metadata), indent=2, allow_nan=False)
        (tmp / METADATA_NAME).write_text(text + "\n", encoding="utf-8")


def check_model_destination(path) -> None:
    """Raise InputError unless ``path`` is new, empty or a model directory."""
    check_replaceable_directory(path, marker=METADATA_NAME)


def read_metadata(path) -> dict:
    """Read and check ``metadata.json`` of a model directory."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFormatError(f"model directory {path} not found; pass the --output "
                               "directory of a fit")
    file = path / METADATA_NAME
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{file} is missing, so {path} is not a complete model "
                               "directory; save the model again") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFormatError(f"{file} is not valid JSON ({error}); the file is truncated "
                               "or was edited, so save the model again") from None
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{file} does not contain a JSON object; save the model again")
    _check_versions(metadata, file)
    missing = [key for key in _REQUIRED if key not in metadata]
    if missing:
        raise ModelFormatError(f"{file} lacks the entries {missing}; the file is truncated "
                               "or was edited, so save the model again")
    return metadata


def _check_versions(metadata: dict, file: Path) -> None:
    fmt = metadata.get("format_version")
    library = metadata.get("library_version")
    if not isinstance(fmt, int) or not isinstance(library, str):
        raise ModelFormatError(f"{file} has no valid format_version and library_version; "
                               "it was not written by quasiratio")
    if fmt > FORMAT_VERSION or _version_tuple(library) > _version_tuple(__version__):
        raise ModelFormatError(
            f"{file} was written by quasiratio {library} (model format {fmt}), newer than "
            f"this quasiratio {__version__} (format {FORMAT_VERSION}); upgrade quasiratio "
            "to load it"
        )


def _version_tuple(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        numbers.append(int(digits))
    return tuple(numbers)


def load_estimator(path, *, network=None):
    """Load a model directory written by :meth:`RatioEstimator.save`.

    ``network`` supplies an untrained instance of a custom network (a
    dict by network name for estimators with several), which the
    metadata cannot rebuild.
    """
    from quasiratio.estimators.base import estimator_class

    path = Path(path)
    metadata = read_metadata(path)
    tensors = _read_weights(path / WEIGHTS_NAME, metadata["weights_sha256"])
    try:
        cls = estimator_class(metadata["method"])
    except InputError as error:
        raise ModelFormatError(f"{path}: {error}") from None
    try:
        config = TrainingConfig.from_dict(metadata["training"])
        estimator = cls(**metadata["options"], config=config)
    except (InputError, TypeError) as error:
        raise ModelFormatError(f"{path / METADATA_NAME} has invalid options: {error}") from None
    models = {
        name: _rebuild(name, spec, tensors, network, path)
        for name, spec in metadata["networks"].items()
    }
    estimator._set_models(models)
    estimator._set_histories(
        {name: TrainingHistory.from_dict(h) for name, h in metadata["history"].items()}
    )
    estimator.feature_names_ = tuple(metadata["feature_names"])
    estimator.n_features_in_ = len(estimator.feature_names_)
    estimator.support_ = metadata["support"]
    estimator._restore_fields(metadata["method_fields"])
    _check_input_width(estimator, models, path)
    _check_support(metadata["support"], estimator.n_features_in_, path)
    return estimator


def _check_support(support, width: int, path: Path) -> None:
    """Raise ModelFormatError unless ``support`` has ``width`` numeric minima and maxima."""
    valid = isinstance(support, dict) and all(
        isinstance(support.get(key), list)
        and len(support[key]) == width
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in support[key])
        for key in ("min", "max")
    )
    if not valid:
        raise ModelFormatError(
            f"{path / METADATA_NAME} has an invalid 'support' entry (expected 'min' and 'max' "
            f"lists of {width} numbers); the file was edited, so save the model again"
        )


def _check_input_width(estimator, models: dict, path: Path) -> None:
    """Raise ModelFormatError when the feature names do not fit the networks' inputs.

    A Standardizer of another width would broadcast against the features
    and give ratios without any error, so an edited list must be caught here.
    """
    width = estimator.n_features_in_ + len(getattr(estimator, "parameter_names_", ()))
    for name, model in models.items():
        inputs = model.standardizer.mean.shape[0]
        if inputs != width:
            raise ModelFormatError(
                f"{path / METADATA_NAME} lists {width} input names but network {name!r} "
                f"takes {inputs} inputs; the file was edited, so save the model again"
            )


def _read_weights(file: Path, expected_sha256: str) -> dict:
    if not file.is_file():
        raise ModelFormatError(f"{file} is missing; the model directory is incomplete, so "
                               "save the model again")
    if _sha256(file) != expected_sha256:
        raise ModelFormatError(f"{file} does not match the checksum in {METADATA_NAME}; the "
                               "file was changed or truncated, so save the model again")
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFormatError(f"{file} cannot be read as safetensors: {error}") from None


def _rebuild(name, spec, tensors, network, path) -> LogitModel:
    custom = isinstance(spec, dict) and spec.get("kind") == "custom"
    if custom:
        instance = network.get(name) if isinstance(network, dict) else network
        module = build_network(spec, instance)  # raises InputError without network=
    prefix = f"{name}."
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        if not custom:
            module = build_network(spec)
        model = LogitModel(module, Standardizer(state["standardizer.mean"].shape[0]))
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as error:
        # InputError (an invalid MLP spec) is a ValueError and lands here too.
        raise ModelFormatError(
            f"the weights of network {name!r} in {path} do not fit its description "
            f"{spec}: {error}"
        ) from None
    model.eval()
    return model


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finite_json(value):
    """Replace non-finite floats (an infinite best loss) with None for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value
