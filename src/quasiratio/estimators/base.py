"""The estimator base class: fitting, chunked evaluation, and the registry.

A :class:`RatioEstimator` learns r(x) = q1(x) / p0(x), the ratio of the
numerator and denominator densities each normalised to unit integral.
Subclasses choose the loss and the map from logit to ratio; estimators
built from several networks override the hooks listed in
``docs/architecture.md``. Saving and loading live in
:mod:`quasiratio.estimators.model_io`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from quasiratio.errors import InputError, NormalizationWarning
from quasiratio.estimators.preparation import (
    as_samples,
    features_for,
    prepare_classes,
    to_tensors,
)
from quasiratio.events import EventSample
from quasiratio.networks import MLP, LogitModel, Standardizer, network_spec
from quasiratio.training import TrainingConfig, TrainingHistory, train

__all__ = ["RatioEstimator", "make_estimator", "register_method", "registered_methods"]

#: Estimator classes by method name, filled by :func:`register_method`.
_REGISTRY: dict[str, type[RatioEstimator]] = {}


def register_method(name: str) -> Callable[[type], type]:
    """Register an estimator class under its command-line method name."""

    def decorate(cls: type) -> type:
        cls.method = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered_methods() -> list[str]:
    return sorted(_REGISTRY)


def estimator_class(method: str) -> type[RatioEstimator]:
    """Look up a registered estimator class; InputError naming the known methods."""
    from quasiratio.estimators import _METHOD_MODULES, import_method_module

    import_method_module(method)
    if method not in _REGISTRY:
        # Methods registered on first use are not in the registry yet, but are valid choices.
        known = sorted(set(_REGISTRY) | set(_METHOD_MODULES))
        raise InputError(f"unknown method {method!r}; choose one of {known}")
    return _REGISTRY[method]


def make_estimator(method: str, **options) -> RatioEstimator:
    """Build an unfitted estimator by its method name, passing ``options`` on."""
    return estimator_class(method)(**options)


class RatioEstimator:
    """Base class of the ratio estimators, in the scikit-learn shape.

    ``hidden`` and ``activation`` set the default :class:`MLP`. Pass
    ``network`` to train any other ``torch.nn.Module`` that maps (B, D)
    float32 inputs to (B,) or (B, 1) logits. Fitting trains a copy of
    it, so the module passed in stays unchanged.
    ``config`` contains every training option. ``chunk_size`` is the number
    of events evaluated at once by :meth:`ratio`.
    """

    #: Name under which the class is registered; set by :func:`register_method`.
    method: ClassVar[str] = ""
    #: True when r = exp(logit) > 0 by construction, so log r is the logit.
    positive_ratio: ClassVar[bool] = False

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 64, 64),
        activation: str = "silu",
        network: nn.Module | None = None,
        config: TrainingConfig | None = None,
        chunk_size: int = 65536,
    ) -> None:
        self.hidden = tuple(hidden)
        self.activation = activation
        self.network = network
        self.config = config if config is not None else TrainingConfig()
        self.chunk_size = int(chunk_size)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        numerator: EventSample | np.ndarray,
        denominator: EventSample | np.ndarray,
        *,
        numerator_weight: np.ndarray | None = None,
        denominator_weight: np.ndarray | None = None,
    ) -> RatioEstimator:
        """Learn the ratio of the numerator over the denominator sample; return self.

        Samples are :class:`EventSample` objects, or arrays of shape
        (N, D) with optional weights (default 1).
        """
        if not isinstance(self.config, TrainingConfig):
            raise InputError(
                f"config must be a TrainingConfig, got {type(self.config).__name__}"
            )
        if self.chunk_size < 1:
            raise InputError(f"chunk_size={self.chunk_size} must be an integer >= 1")
        num, den = as_samples(numerator, denominator, numerator_weight, denominator_weight)
        self._check_samples(num, den)
        self.feature_names_ = num.feature_names
        self.n_features_in_ = num.n_features
        self.support_ = _support(num, den)
        self._fit_samples(num, den)
        if not getattr(self, "parameter_names_", ()):
            # A parameterised ratio averages to 1 at each theta separately.
            self.normalization_ = check_normalization(self, den)
        return self

    def _check_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        """Hook: reject or warn about samples the method cannot learn from."""

    def _fit_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        """Hook: train the network(s). The default trains one network."""
        train_set, validation_set = prepare_classes(
            numerator, denominator,
            validation_fraction=self.config.validation_fraction, seed=self.config.seed,
        )
        model = self.new_model(train_set["x"], train_set["weight"])
        self.history_ = train(
            model, self._objective, to_tensors(train_set), self.config,
            validation=_validation_tensors(validation_set),
        )
        self.network_ = model
        self._after_training(train_set, validation_set)

    def _after_training(self, train_set: dict, validation_set: dict | None) -> None:
        """Hook: fit post-hoc parts such as a calibrator on the prepared arrays."""

    def _objective(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per-event loss (B,) of a batch; subclasses define it."""
        raise NotImplementedError

    def new_model(self, x: np.ndarray, sample_weight: np.ndarray) -> LogitModel:
        """Build the network behind a Standardizer fitted on ``x`` with |w|.

        The initial weights depend only on ``config.seed``; the global
        torch random state is left as it was.
        """
        if self.network is not None:
            network = copy.deepcopy(self.network)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                network = MLP(x.shape[1], self.hidden, self.activation)
        standardizer = Standardizer(x.shape[1]).fit(x, sample_weight)
        return LogitModel(network, standardizer)

    # ------------------------------------------------------------ evaluate
    def ratio(self, x: EventSample | np.ndarray) -> np.ndarray:
        """Estimated r(x), signed, as float64 of shape (N,)."""
        return self._evaluate(x, self._ratio_chunk)

    def log_ratio(self, x: EventSample | np.ndarray) -> np.ndarray:
        """Estimated log r(x) as float64, for methods whose ratio is positive."""
        if not self.positive_ratio:
            raise InputError(
                f"log_ratio is not defined for method {self.method!r}: its ratio can be "
                "zero or negative, so use ratio() instead"
            )
        return self._evaluate(x, self._log_ratio_chunk)

    def logit(self, x: EventSample | np.ndarray) -> np.ndarray:
        """Network output z(x) before any squashing, as float64."""
        return self._evaluate(x, self._logit_chunk)

    def outside_support(self, x: EventSample | np.ndarray) -> np.ndarray:
        """Boolean mask of events with a feature outside the training range.

        The ratio there is an extrapolation of the network.
        """
        self._check_fitted()
        values = features_for(x, self.feature_names_)
        low, high = (np.asarray(v) for v in (self.support_["min"], self.support_["max"]))
        return np.any((values < low) | (values > high), axis=1)

    def _ratio_chunk(self, x: torch.Tensor) -> torch.Tensor:
        """Hook: float64 ratio of a float32 chunk on the model device."""
        return self._ratio_from_logit(self._logit_chunk(x))

    def _log_ratio_chunk(self, x: torch.Tensor) -> torch.Tensor:
        return self._logit_chunk(x)

    def _logit_chunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.network_(x).double()

    @staticmethod
    def _ratio_from_logit(logit: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _evaluate(self, x, function: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        self._check_fitted()
        values = features_for(x, self.feature_names_)
        device = self._device()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(values), self.chunk_size):
                chunk = torch.as_tensor(
                    values[start:start + self.chunk_size], dtype=torch.float32, device=device
                )
                parts.append(function(chunk).to("cpu", torch.float64).numpy())
        return np.concatenate(parts) if parts else np.zeros(0)

    def _device(self) -> torch.device:
        for model in self._models().values():
            for parameter in model.parameters():
                return parameter.device
        return torch.device("cpu")

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise InputError(
                f"this {type(self).__name__} is not fitted yet; call fit() or load a "
                "saved model first"
            )

    # --------------------------------------------------- hooks for saving
    def _models(self) -> dict[str, LogitModel]:
        """Hook: the fitted networks by name, as saved in the weights file."""
        return {"network": self.network_}

    def _set_models(self, models: dict[str, LogitModel]) -> None:
        self.network_ = models["network"]

    def _histories(self) -> dict[str, TrainingHistory]:
        return {"network": self.history_}

    def _set_histories(self, histories: dict[str, TrainingHistory]) -> None:
        self.history_ = histories["network"]

    def _options(self) -> dict:
        """Hook: constructor options as JSON, passed back to the constructor on load."""
        return {"hidden": list(self.hidden), "activation": self.activation,
                "chunk_size": self.chunk_size}

    def _method_fields(self) -> dict:
        """Hook: fitted method-specific values as JSON (calibrators, coefficients)."""
        return {}

    def _restore_fields(self, fields: dict) -> None:
        """Hook: restore what :meth:`_method_fields` returned."""

    def network_specs(self) -> dict[str, dict]:
        return {name: network_spec(model.network) for name, model in self._models().items()}

    def save(self, path) -> None:
        """Write the fitted model to the directory ``path`` atomically."""
        from quasiratio.estimators.model_io import save_estimator

        self._check_fitted()
        save_estimator(self, path)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({options})"


def _support(numerator: EventSample, denominator: EventSample) -> dict:
    """Per-feature range of the events with non-zero weight in both samples."""
    x = np.concatenate([
        numerator.x[numerator.sample_weight != 0],
        denominator.x[denominator.sample_weight != 0],
    ])
    if len(x) == 0:
        raise InputError("every event weight is zero in both samples; nothing to learn from")
    return {"min": x.min(axis=0).tolist(), "max": x.max(axis=0).tolist()}


def _validation_tensors(validation_set: dict | None) -> dict | None:
    """Validation tensors with float64 weights, whose sums may cancel to near zero."""
    if validation_set is None:
        return None
    return to_tensors(validation_set, weight_dtype=torch.float64)


#: Largest |sum(w r) / sum(w) - 1| accepted without a warning, whatever the
#: statistical error: beyond 10 % the reweighted total is visibly wrong.
NORMALIZATION_TOLERANCE = 0.1


def check_normalization(estimator: RatioEstimator, denominator: EventSample) -> dict:
    """Compute sum(w r) / sum(w) over the denominator and warn when it is far from 1.

    Both classes are normalised to the same total before training, so a
    learned ratio averages to 1 over p0. An under-trained REVERT network
    sits near z = 0, where r = -2 sinh(z) is near 0, and this check is
    what tells the user. The error is the delta-method standard error
    sqrt(sum w^2 (r - n)^2) / sum w. The check reuses training events, so
    it catches gross failures, not overfitting.
    """
    weight = denominator.sample_weight
    ratio = estimator.ratio(denominator.x)
    total = float(np.sum(weight))
    value = float(np.sum(weight * ratio) / total)
    error = float(np.sqrt(np.sum(weight**2 * (ratio - value) ** 2)) / abs(total))
    logging.getLogger(__name__).info(
        "normalisation sum(w r) / sum(w) over the denominator: %.4f +- %.4f", value, error
    )
    if abs(value - 1.0) > max(5.0 * error, NORMALIZATION_TOLERANCE):
        warnings.warn(
            f"the learned ratio averages to {value:.3g} +- {error:.2g} over the denominator "
            "instead of 1, so reweighted totals will be off; train longer (--epochs), "
            "with a larger network or more events",
            NormalizationWarning,
            stacklevel=3,
        )
    return {"value": value, "error": error}
