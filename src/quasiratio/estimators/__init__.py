"""Ratio estimators, their registry by method name, and model loading."""

from __future__ import annotations

import importlib

from quasiratio.estimators.base import (
    RatioEstimator,
    make_estimator,
    register_method,
    registered_methods,
)
from quasiratio.estimators.carl import CARL
from quasiratio.estimators.revert import REVERT

__all__ = [
    "CARL",
    "REVERT",
    "RatioEstimator",
    "load",
    "make_estimator",
    "register_method",
    "registered_methods",
]

#: Module that registers each method not imported above, imported on first use.
_METHOD_MODULES = {
    "rosmm": "quasiratio.estimators.mixtures",
    "auto": "quasiratio.estimators.auto",
    "alice": "quasiratio.estimators.alice",
    "alices": "quasiratio.estimators.alice",
    "joint-revert": "quasiratio.estimators.alice",
    "parameterized-carl": "quasiratio.estimators.parameterized",
    "parameterized-revert": "quasiratio.estimators.parameterized",
}


def import_method_module(method: str) -> None:
    """Import the module that registers ``method``, if it is a known lazy one."""
    module = _METHOD_MODULES.get(method)
    if module is None:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise


def load(path, *, network=None) -> RatioEstimator:
    """Load a model directory written by ``RatioEstimator.save``.

    ``network`` is needed only for a model trained with a custom
    ``torch.nn.Module``: pass an untrained instance of the same class (a
    dict by network name for estimators with several networks).
    """
    from quasiratio.estimators.model_io import load_estimator

    return load_estimator(path, network=network)
