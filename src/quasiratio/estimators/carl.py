"""CARL: a binary classifier whose logit is log r, with optional calibration.

With each class normalised to the same total, the cross-entropy minimum
is s = q1 / (q1 + p0), so r = exp(z) and log r = z (derivation in
:mod:`quasiratio.losses`). The ratio is positive by construction, so
CARL cannot represent a numerator that is negative somewhere. It still
learns a positive ratio correctly from negatively weighted events.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from quasiratio.calibration import CALIBRATIONS, Calibrator, fit_calibrator
from quasiratio.errors import InputError, NegativeWeightWarning
from quasiratio.estimators.base import RatioEstimator, register_method
from quasiratio.losses import carl_loss, carl_ratio


@register_method("carl")
class CARL(RatioEstimator):
    """Classifier ratio estimator; see :class:`RatioEstimator` for the common options.

    ``calibration`` is None, "histogram" or "isotonic". A calibrator is
    fitted on the validation events (the training events when
    ``validation_fraction`` is 0) and replaces exp(z) by the calibrated
    ratio, which with signed weights can be zero or negative.
    """

    positive_ratio = True

    def __init__(self, *, calibration: str | None = None, **options) -> None:
        super().__init__(**options)
        self.calibration = calibration

    def _check_samples(self, numerator, denominator) -> None:
        if self.calibration not in CALIBRATIONS:
            raise InputError(
                f"calibration={self.calibration!r} is not one of {list(CALIBRATIONS)}"
            )
        if np.any(numerator.sample_weight < 0):
            warnings.warn(
                f"{numerator.source}: the numerator has negative weights; CARL learns a "
                "positive ratio only, so ratios below zero cannot be represented; use "
                "method 'revert' or 'rosmm'",
                NegativeWeightWarning,
                stacklevel=3,  # the caller of fit()
            )

    def _objective(self, model, batch) -> torch.Tensor:
        return carl_loss(model(batch["x"]), batch["y"])

    @staticmethod
    def _ratio_from_logit(logit: torch.Tensor) -> torch.Tensor:
        return carl_ratio(logit.double())

    def _after_training(self, train_set, validation_set) -> None:
        self.calibrator_: Calibrator | None = None
        if self.calibration is None:
            return
        arrays = validation_set if validation_set is not None else train_set
        logit = self.logit(arrays["x"])
        self.calibrator_ = fit_calibrator(
            self.calibration, logit, arrays["y"], arrays["weight"]
        )

    def ratio(self, x) -> np.ndarray:
        """Estimated r(x) as float64: exp(z), or the calibrated ratio when calibrated."""
        if getattr(self, "calibrator_", None) is None:
            return super().ratio(x)
        return self.calibrator_.ratio(self.logit(x))

    def log_ratio(self, x) -> np.ndarray:
        """log r(x) as float64: the logit, or the log of the calibrated ratio.

        A calibrated ratio fitted on signed weights can be zero or
        negative somewhere. There log r is undefined, so InputError is
        raised with the number of events affected.
        """
        if getattr(self, "calibrator_", None) is None:
            return super().log_ratio(x)
        r = self.ratio(x)
        bad = int(np.count_nonzero(r <= 0))
        if bad:
            raise InputError(
                f"log_ratio is undefined for {bad} events where the calibrated CARL ratio "
                "is zero or negative; use ratio(), or calibration=None for exp(logit)"
            )
        return np.log(r)

    def _options(self) -> dict:
        return {**super()._options(), "calibration": self.calibration}

    def _method_fields(self) -> dict:
        calibrator = getattr(self, "calibrator_", None)
        return {"calibrator": calibrator.to_dict() if calibrator is not None else None}

    def _restore_fields(self, fields: dict) -> None:
        stored = fields.get("calibrator")
        self.calibrator_ = Calibrator.from_dict(stored) if stored is not None else None
