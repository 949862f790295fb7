"""REVERT: one classifier whose ratio -2 sinh(z) can take any sign.

The loss y s - (1 - y)(log s + log(1 - s)) has its pointwise minimum at
r = 1/s + 1/(s - 1) = -2 sinh(z) whatever the sign of the numerator
density, as long as the denominator density is positive (derivation in
:mod:`quasiratio.losses`). It is the method for signed numerators:
negative weights, interference terms, quasi-densities.
"""

from __future__ import annotations

import torch

from quasiratio.estimators.base import RatioEstimator, register_method
from quasiratio.losses import revert_loss, revert_ratio


@register_method("revert")
class REVERT(RatioEstimator):
    """Signed ratio estimator trained with the REVERT loss; see :class:`RatioEstimator`."""

    positive_ratio = False

    def _objective(self, model, batch) -> torch.Tensor:
        return revert_loss(model(batch["x"]), batch["y"])

    @staticmethod
    def _ratio_from_logit(logit: torch.Tensor) -> torch.Tensor:
        return revert_ratio(logit.double())
