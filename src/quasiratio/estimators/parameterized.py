"""Parameterised ratios r(x | theta) = p(x | theta) / p0(x) with theta as a network input.

One network learns the ratio for a whole range of parameter points: the
inputs are the features x followed by the parameters theta. Numerator
events are simulated (or reweighted) at their own theta, carried as the
per-event extra ``theta`` of shape (N, P). Denominator events come from
the fixed reference p0 and must carry a theta drawn from the same
distribution as the numerator's, so that theta alone does not separate
the classes. When the denominator has no ``theta``, each of its events
is paired with the theta of a numerator event drawn at random (seeded by
``config.seed``).

Why this works: the classifier is trained on pairs (x, theta) with density
pi(theta) p(x | theta) in the numerator and pi(theta) p0(x) in the
denominator, so the ratio it learns at (x, theta) is p(x | theta) / p0(x)
for every theta in the support of pi, and pi cancels. The ratio is only
trained where pi is positive; outside that range it is an extrapolation.

The same class serves the joint methods of :mod:`quasiratio.estimators.alice`,
which also work without theta (a single pair of hypotheses).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from quasiratio.errors import InputError, NegativeWeightWarning
from quasiratio.estimators.base import RatioEstimator, register_method
from quasiratio.estimators.carl import CARL
from quasiratio.estimators.preparation import features_for, prepare_classes, to_tensors
from quasiratio.estimators.revert import REVERT
from quasiratio.events import EventSample
from quasiratio.training import train

__all__ = ["ParameterizedCARL", "ParameterizedEstimator", "ParameterizedREVERT"]


class ParameterizedEstimator(RatioEstimator):
    """Base of the estimators that take theta as a network input.

    ``parameter_names`` names the columns of theta (default ``theta`` for
    one parameter, ``theta0``, ``theta1``, ... for several); they are
    saved with the model. Subclasses list the per-event arrays their loss
    needs in :attr:`joint_extras` and set :attr:`requires_theta`.
    """

    #: Per-event extras (besides theta) that both classes must carry.
    joint_extras: ClassVar[tuple[str, ...]] = ()
    #: False when the method also learns an unparameterised ratio r(x).
    requires_theta: ClassVar[bool] = True

    def __init__(self, *, parameter_names: Sequence[str] | None = None, **options) -> None:
        super().__init__(**options)
        self.parameter_names = None if parameter_names is None else tuple(parameter_names)

    # ------------------------------------------------------------------ fit
    def _check_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        super()._check_samples(numerator, denominator)
        if self.requires_theta and "theta" not in numerator.extras:
            raise InputError(
                f"method {self.method!r} learns r(x | theta) and needs the per-event "
                "parameters of the numerator; pass EventSample.from_arrays(x, w, theta=...)"
            )
        for sample in (numerator, denominator):
            _warn_sparse_signed(sample)
            missing = [name for name in self.joint_extras if name not in sample.extras]
            if missing:
                raise InputError(
                    f"{sample.source}: method {self.method!r} needs the per-event arrays "
                    f"{missing}, which event files do not carry; build EventSamples with "
                    "these extras in Python, e.g. EventSample.from_arrays(x, w, r_xz=...) "
                    "or quasiratio.morphing.parameterized_samples"
                )

    def _fit_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        numerator, denominator = self._append_theta(numerator, denominator)
        train_set, validation_set = prepare_classes(
            numerator, denominator, extras=self._training_extras(),
            validation_fraction=self.config.validation_fraction, seed=self.config.seed,
        )
        model = self.new_model(train_set["x"], train_set["weight"])
        self.history_ = train(
            model, self._objective, to_tensors(train_set), self.config,
            validation=to_tensors(validation_set) if validation_set else None,
        )
        self.network_ = model
        self._after_training(train_set, validation_set)

    def _training_extras(self) -> tuple[str, ...]:
        return self.joint_extras

    def _append_theta(self, numerator: EventSample, denominator: EventSample):
        """Set the fitted parameter names and append theta to both feature arrays."""
        if "theta" not in numerator.extras:
            self.parameter_names_ = ()
            return numerator, denominator
        theta_num = _as_matrix(numerator.extras["theta"])
        n_parameters = theta_num.shape[1]
        self.parameter_names_ = self._resolve_names(n_parameters)
        if "theta" in denominator.extras:
            theta_den = _as_matrix(denominator.extras["theta"])
        else:
            rng = np.random.default_rng(self.config.seed)
            pick = rng.integers(0, len(theta_num), len(denominator))
            theta_den = theta_num[pick]
        if theta_den.shape[1] != n_parameters:
            raise InputError(
                f"the numerator has {n_parameters} parameters per event but the denominator "
                f"has {theta_den.shape[1]}; pass theta of the same width for both"
            )
        return self._augment(numerator, theta_num), self._augment(denominator, theta_den)

    def _resolve_names(self, n_parameters: int) -> tuple[str, ...]:
        names = self.parameter_names
        if names is None:
            names = tuple(f"theta{i}" for i in range(n_parameters))
            if n_parameters == 1:
                names = ("theta",)
        if len(names) != n_parameters:
            raise InputError(
                f"parameter_names={list(names)} has {len(names)} names but theta has "
                f"{n_parameters} columns; pass one name per column"
            )
        clash = sorted(set(names) & set(self.feature_names_))
        if clash or len(set(names)) != len(names):
            raise InputError(
                f"parameter_names={list(names)} must be distinct and differ from the "
                f"feature names; {clash} clash"
            )
        return tuple(str(n) for n in names)

    def _augment(self, sample: EventSample, theta: np.ndarray) -> EventSample:
        return sample.replace(
            x=np.hstack([sample.x, theta]),
            feature_names=sample.feature_names + self.parameter_names_,
        )

    # ------------------------------------------------------------ evaluate
    def ratio(self, x, theta=None) -> np.ndarray:
        """Estimated r(x | theta), signed, float64 of shape (N,).

        ``theta`` is one point (shape (P,), or a number when P = 1) or one
        point per event (N, P); by default the ``theta`` extra of an
        EventSample ``x``. Unparameterised models take no theta.
        """
        return self._evaluate(x, self._ratio_chunk, theta)

    def log_ratio(self, x, theta=None) -> np.ndarray:
        """Estimated log r(x | theta), for methods whose ratio is positive."""
        if not self.positive_ratio:
            return super().log_ratio(x)
        return self._evaluate(x, self._log_ratio_chunk, theta)

    def logit(self, x, theta=None) -> np.ndarray:
        """Network output z(x, theta) as float64."""
        return self._evaluate(x, self._logit_chunk, theta)

    def score(self, x, theta=None) -> np.ndarray:
        """Estimated score grad_theta log r(x | theta), float64 of shape (N, P).

        Because p0 does not depend on theta this is the score of
        p(x | theta). Defined for methods with log r = z.
        """
        if not self.positive_ratio or not self.parameter_names_:
            raise InputError(
                f"score is defined only for parameterised methods with log r = z, not "
                f"for {self.method!r}"
            )
        return self._evaluate(x, self._score_chunk, theta, grad=True)

    def _score_chunk(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.clone().requires_grad_(True)
        return theta_gradient(self.network_, inputs, self.n_features_in_).double()

    def _inputs(self, x, theta) -> np.ndarray:
        values = features_for(x, self.feature_names_)
        n_parameters = len(self.parameter_names_)
        if theta is None and isinstance(x, EventSample) and "theta" in x.extras:
            theta = x.extras["theta"]
        if n_parameters == 0:
            if theta is not None:
                raise InputError(f"this {self.method!r} model is not parameterised; "
                                 "call it without theta")
            return values
        if theta is None:
            raise InputError(
                f"this model learns r(x | {', '.join(self.parameter_names_)}); pass theta= "
                f"as one point of shape ({n_parameters},) or one per event"
            )
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim <= 1 and theta.size == n_parameters:
            theta = np.broadcast_to(theta.reshape(1, -1), (len(values), n_parameters))
        theta = _as_matrix(theta)
        if theta.shape != (len(values), n_parameters) or not np.isfinite(theta).all():
            raise InputError(
                f"theta has shape {theta.shape}; pass finite values of shape "
                f"({n_parameters},) or ({len(values)}, {n_parameters}) for "
                f"{list(self.parameter_names_)}"
            )
        return np.hstack([values, theta])

    def _evaluate(self, x, function, theta=None, *, grad: bool = False) -> np.ndarray:
        self._check_fitted()
        values = self._inputs(x, theta)
        device = self._device()
        parts = []
        mode = torch.enable_grad() if grad else torch.inference_mode()
        with mode:
            for start in range(0, len(values), self.chunk_size):
                chunk = torch.as_tensor(
                    values[start:start + self.chunk_size], dtype=torch.float32, device=device
                )
                parts.append(function(chunk).detach().to("cpu", torch.float64).numpy())
        return np.concatenate(parts) if parts else np.zeros(0)

    # --------------------------------------------------- hooks for saving
    def _options(self) -> dict:
        names = self.parameter_names
        return {**super()._options(), "parameter_names": None if names is None else list(names)}

    def _method_fields(self) -> dict:
        return {**super()._method_fields(), "parameter_names": list(self.parameter_names_)}

    def _restore_fields(self, fields: dict) -> None:
        super()._restore_fields(fields)
        self.parameter_names_ = tuple(fields.get("parameter_names", ()))


def theta_gradient(model: torch.nn.Module, inputs: torch.Tensor, n_features: int) -> torch.Tensor:
    """Gradient of the logit with respect to the theta columns of ``inputs``, shape (B, P).

    ``inputs`` must require grad. The graph is kept (``create_graph``), so
    a loss built from the gradient trains the network through it.
    """
    logit = model(inputs)
    (grad,) = torch.autograd.grad(logit.sum(), inputs, create_graph=True)
    return grad[:, n_features:]


#: Minimum mean number of events per distinct theta for signed weights (an estimate).
MIN_EVENTS_PER_THETA = 20


def _warn_sparse_signed(sample: EventSample) -> None:
    """Warn when negative weights meet a theta that is nearly unique per event.

    With a continuous draw every event sits alone in (x, theta), so a
    flexible network can isolate a negative-weight event and drive its
    loss up without bound, which lowers the weighted sum without limit.
    On the latent toy with 25 % negative weights this made log r diverge
    within 20 epochs, while a grid of 5 theta values learned it.
    """
    if "theta" not in sample.extras or not np.any(sample.sample_weight < 0):
        return
    distinct = len(np.unique(_as_matrix(sample.extras["theta"]), axis=0))
    if distinct * MIN_EVENTS_PER_THETA > len(sample):
        warnings.warn(
            f"{sample.source}: negative weights with {distinct} distinct theta values for "
            f"{len(sample)} events; a network can isolate single negative-weight events in "
            "(x, theta) and the loss then has no minimum, so draw theta from a grid with "
            f"at least {MIN_EVENTS_PER_THETA} events per point",
            NegativeWeightWarning,
            stacklevel=5,
        )


def _as_matrix(theta) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    return theta[:, None] if theta.ndim == 1 else theta


@register_method("parameterized-carl")
class ParameterizedCARL(ParameterizedEstimator, CARL):
    """CARL for r(x | theta); log r(x | theta) = z(x, theta). Calibration is not supported."""

    def _check_samples(self, numerator, denominator) -> None:
        if self.calibration is not None:
            raise InputError(
                f"calibration={self.calibration!r} is not supported for r(x | theta), "
                "because one calibrator cannot serve every theta; use calibration=None"
            )
        super()._check_samples(numerator, denominator)


@register_method("parameterized-revert")
class ParameterizedREVERT(ParameterizedEstimator, REVERT):
    """REVERT for r(x | theta) = -2 sinh z(x, theta), which can take any sign."""
