"""RoSMM, the ratio of signed mixtures (Drnevich et al., arXiv:2410.10216).

Each sample is split by the sign of its weights, an ordinary CARL
classifier learns the ratio r_ab = p1_b / p0_a between every pair of
denominator and numerator subsets on |w|, and the sub-ratios are combined
with the signed coefficients c0, c1 into q1/p0. The derivation of the
combination and its overflow-free form are in
:mod:`quasiratio.estimators.signed_mixture`.

Coefficients come three ways. ``"sums"`` takes them from the weight
sums. ``"fit"`` minimises the REVERT loss of the combined ratio on the
full signed data with the sub-classifiers frozen. ``"finetune"`` trains
the coefficients and the sub-networks together with the REVERT loss.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings

import numpy as np
import torch
from torch import nn

from quasiratio.errors import InputError, QuasiRatioWarning
from quasiratio.estimators.base import RatioEstimator, register_method
from quasiratio.estimators.carl import CARL
from quasiratio.estimators.preparation import as_samples, prepare_classes, to_tensors
from quasiratio.estimators.signed_mixture import (
    NEGATIVE,
    POSITIVE,
    CoefficientFitModel,
    FinetuneModel,
    SignedCoefficients,
    combine_log_ratios,
    count_nonpositive_denominators,
    inverse_signed_mixture,
    revert_logit,
    sub_ratio_name,
)
from quasiratio.losses import revert_loss
from quasiratio.training import TrainingConfig, train

__all__ = ["DenominatorSignWarning", "RoSMM", "combine_log_ratios", "inverse_signed_mixture",
           "sub_ratio_name"]

logger = logging.getLogger(__name__)

COEFFICIENT_MODES = ("sums", "fit", "finetune")

#: Default smallest number of events a sign subset needs to train its classifier on.
# NOTE: a rule of thumb, not a measured limit. Below about 100 events even one
# bin holding all of them has a 10 % Poisson error, and the validation split
# leaves fewer still for training.
DEFAULT_MIN_SUBSET_EVENTS = 100


class DenominatorSignWarning(QuasiRatioWarning):
    """The learned denominator density c0 p0+ + (1 - c0) p0- is <= 0 at some events."""


def _own_checkpoint(config: TrainingConfig, stage: str) -> TrainingConfig:
    """Give one training stage its own checkpoint folder inside ``config.checkpoint_dir``.

    A checkpoint contains one network, so the sub-classifiers and the
    coefficient stages must not share a file, or ``resume`` would load one
    stage's state into another.
    """
    if config.checkpoint_dir is None:
        return config
    return config.replace(checkpoint_dir=os.path.join(config.checkpoint_dir, stage))


def _fit_objective(model: nn.Module, batch) -> torch.Tensor:
    return revert_loss(model(batch["log_r"]), batch["y"])


def _finetune_objective(model: nn.Module, batch) -> torch.Tensor:
    return revert_loss(model(batch["x"]), batch["y"])


@register_method("rosmm")
class RoSMM(RatioEstimator):
    """Ratio of signed mixtures: CARL sub-classifiers on sign subsets, recombined.

    ``coefficients`` is "sums", "fit" or "finetune" (see the module
    docstring). ``min_subset_events`` is the smallest number of events
    with non-zero weight that each required sign subset must have; a
    smaller subset raises :class:`InputError` naming it. The
    ``coefficient_config`` (a TrainingConfig or its dict) drives the "fit"
    and "finetune" stages. By default "fit" uses ``config`` with learning
    rate 1e-2, because only one or two scalars are trained, and "finetune"
    uses ``config`` with a tenth of its learning rate, to stay near the
    pre-trained sub-networks. The other options are those of
    :class:`RatioEstimator` and apply to every sub-classifier; classifier
    i is seeded with ``config.seed + i``.

    :meth:`logit` returns the REVERT logit -asinh(r / 2) of the combined
    ratio, so it can be compared with a REVERT network's output.

    Warning: with a signed denominator the learned p0 = c0 p0+ - (c0 - 1)
    p0- is a difference of two estimates and can come out <= 0 where the
    sub-classifiers are poorly trained, mostly in sparse tails. The ratio
    there is infinite or has the wrong sign, and :meth:`ratio` issues a
    :class:`DenominatorSignWarning` with the number of such events.
    """

    positive_ratio = False
    #: Events with a non-positive learned denominator in the current evaluation.
    _nonpositive_denominators = 0

    def __init__(
        self,
        *,
        coefficients: str = "sums",
        min_subset_events: int = DEFAULT_MIN_SUBSET_EVENTS,
        coefficient_config: TrainingConfig | dict | None = None,
        **options,
    ) -> None:
        super().__init__(**options)
        self.coefficients = coefficients
        self.min_subset_events = min_subset_events
        self.coefficient_config = coefficient_config

    def _check_samples(self, numerator, denominator) -> None:
        if self.coefficients not in COEFFICIENT_MODES:
            raise InputError(
                f"coefficients={self.coefficients!r} is not one of {list(COEFFICIENT_MODES)}"
            )
        if not isinstance(self.min_subset_events, int) or self.min_subset_events < 1:
            raise InputError(
                f"min_subset_events={self.min_subset_events!r} must be an integer >= 1"
            )
        self._stage_config()

    def _stage_config(self) -> TrainingConfig:
        stored = self.coefficient_config
        if isinstance(stored, TrainingConfig):
            return stored
        if isinstance(stored, dict):
            return TrainingConfig.from_dict(stored)
        if stored is not None:
            raise InputError(
                f"coefficient_config must be a TrainingConfig, a dict or None, got "
                f"{type(stored).__name__}"
            )
        if self.coefficients == "fit":
            return self.config.replace(learning_rate=1e-2)
        return self.config.replace(learning_rate=self.config.learning_rate * 0.1)

    def _split(self, sample, role: str) -> tuple[dict, float | None]:
        """Return the |w| subsets of ``sample`` by sign and its coefficient c (None if unsigned)."""
        positive, negative = sample.split_by_sign()
        if len(negative) == 0:
            return {POSITIVE: sample}, None
        sample.normalized(1.0)  # raises InputError for a sum of weights <= 0
        w = sample.sample_weight
        c = float(np.sum(w[w > 0]) / np.sum(w))
        subsets = {}
        for sign, part in ((POSITIVE, positive), (NEGATIVE, negative)):
            n = int(np.count_nonzero(part.sample_weight))
            if n < self.min_subset_events:
                raise InputError(
                    f"the {role} subset with {'positive' if sign == POSITIVE else 'negative'} "
                    f"weights has {n} events, fewer than min_subset_events="
                    f"{self.min_subset_events} needed to train its classifier; use more "
                    "events, method 'revert', or a lower min_subset_events"
                )
            subsets[sign] = part.with_weights(np.abs(part.sample_weight))
        return subsets, c

    def _fit_samples(self, numerator, denominator) -> None:
        numerator_parts, c1 = self._split(numerator, "numerator")
        denominator_parts, c0 = self._split(denominator, "denominator")
        self.sub_models_, self.histories_ = {}, {}
        pairs = [(a, b) for a in denominator_parts for b in numerator_parts]
        for i, (a, b) in enumerate(pairs):
            name = sub_ratio_name(a, b)
            classifier = CARL(
                hidden=self.hidden, activation=self.activation, network=self.network,
                config=_own_checkpoint(self.config.replace(seed=self.config.seed + i), name),
                chunk_size=self.chunk_size,
            )
            classifier.fit(numerator_parts[b], denominator_parts[a])
            self.sub_models_[name] = classifier.network_
            self.histories_[name] = classifier.history_
        coefficients = SignedCoefficients(c0, c1)
        self.coefficients_from_sums_ = coefficients.to_dict()
        if self.coefficients == "fit":
            self._fit_coefficients(numerator, denominator, coefficients)
        elif self.coefficients == "finetune":
            self._finetune(numerator, denominator, coefficients)
        self.coefficients_ = coefficients.to_dict()
        logger.info("RoSMM with %d sub-classifiers, coefficients %s (%s; from the sums %s)",
                    len(pairs), self.coefficients_, self.coefficients,
                    self.coefficients_from_sums_)

    def refit_coefficients(self, numerator, denominator, *, coefficients: str) -> RoSMM:
        """Return a copy with the same sub-classifiers and coefficients found by ``coefficients``.

        Pass the samples the estimator was fitted on. The copy starts from
        the coefficients of the weight sums, so comparing the three modes
        costs one set of sub-classifier trainings instead of three.
        """
        self._check_fitted()
        clone = copy.deepcopy(self)
        clone.coefficients = coefficients
        numerator, denominator = as_samples(numerator, denominator, None, None)
        clone._check_samples(numerator, denominator)
        sums = self.coefficients_from_sums_
        start = SignedCoefficients(sums["c0"], sums["c1"])
        if coefficients == "fit":
            clone._fit_coefficients(numerator, denominator, start)
        elif coefficients == "finetune":
            clone._finetune(numerator, denominator, start)
        clone.coefficients_ = start.to_dict()
        return clone

    def _signed_data(self, numerator, denominator, config: TrainingConfig):
        return prepare_classes(numerator, denominator,
                               validation_fraction=config.validation_fraction, seed=config.seed)

    def _log_ratio_tensors(self, arrays: dict, names: list[str]) -> dict:
        log_r = np.column_stack([self._evaluate(arrays["x"], self.sub_models_[n]) for n in names])
        tensors = to_tensors({"y": arrays["y"], "weight": arrays["weight"]})
        tensors["log_r"] = torch.as_tensor(log_r, dtype=torch.float64)
        return tensors

    def _fit_coefficients(self, numerator, denominator, coefficients) -> None:
        if not coefficients.sides:
            logger.info("no sample has negative weights, so there is no coefficient to fit")
            return
        # NOTE: the fitted c0 can move far from the weight sums while the
        # closure barely changes (on the Gaussian-mixture toy with 150,000
        # events per class: c0 1.13 against 1.33), because errors of the
        # frozen sub-ratios trade off against c0.
        config = _own_checkpoint(self._stage_config(), "coefficients")
        train_set, validation_set = self._signed_data(numerator, denominator, config)
        names = list(self.sub_models_)
        model = CoefficientFitModel(names, coefficients)
        validation = self._log_ratio_tensors(validation_set, names) if validation_set else None
        self.histories_["coefficients"] = train(
            model, _fit_objective, self._log_ratio_tensors(train_set, names), config,
            validation=validation,
        )

    def _finetune(self, numerator, denominator, coefficients) -> None:
        config = _own_checkpoint(self._stage_config(), "finetune")
        train_set, validation_set = self._signed_data(numerator, denominator, config)
        model = FinetuneModel(self.sub_models_, coefficients)
        self.histories_["finetune"] = train(
            model, _finetune_objective, to_tensors(train_set), config,
            validation=to_tensors(validation_set) if validation_set else None,
        )
        self.sub_models_ = dict(model.sub_models.items())

    # ------------------------------------------------------------ evaluate
    def _coefficient_tensors(self, device) -> tuple:
        return tuple(
            None if self.coefficients_[name] is None
            else torch.tensor(self.coefficients_[name], dtype=torch.float64, device=device)
            for name in ("c0", "c1")
        )

    def _ratio_chunk(self, x: torch.Tensor) -> torch.Tensor:
        log_r = {name: model(x) for name, model in self.sub_models_.items()}
        c0, c1 = self._coefficient_tensors(x.device)
        self._nonpositive_denominators += count_nonpositive_denominators(log_r, c0)
        return combine_log_ratios(log_r, c0, c1)

    def _logit_chunk(self, x: torch.Tensor) -> torch.Tensor:
        return revert_logit(self._ratio_chunk(x))

    def ratio(self, x) -> np.ndarray:
        """Estimated r(x), signed, float64; warns where the learned p0 is not positive."""
        self._nonpositive_denominators = 0
        r = super().ratio(x)
        if self._nonpositive_denominators:
            warnings.warn(
                f"the learned denominator c0 p0+ + (1 - c0) p0- is <= 0 at "
                f"{self._nonpositive_denominators} of {len(r)} events, so the ratio there is "
                "infinite or has the wrong sign; train the sub-classifiers on more events "
                "or use coefficients='finetune'",
                DenominatorSignWarning,
                stacklevel=2,
            )
        return r

    def logit(self, x) -> np.ndarray:
        """REVERT logit -asinh(r / 2) of the combined ratio, float64."""
        self._nonpositive_denominators = 0
        return super().logit(x)

    # --------------------------------------------------- hooks for saving
    def _models(self) -> dict:
        return dict(self.sub_models_)

    def _set_models(self, models: dict) -> None:
        self.sub_models_ = dict(models)

    def _histories(self) -> dict:
        return dict(self.histories_)

    def _set_histories(self, histories: dict) -> None:
        self.histories_ = dict(histories)

    def _options(self) -> dict:
        stored = self.coefficient_config
        if isinstance(stored, TrainingConfig):
            stored = stored.to_dict()
        return {**super()._options(), "coefficients": self.coefficients,
                "min_subset_events": self.min_subset_events, "coefficient_config": stored}

    def _method_fields(self) -> dict:
        return {"coefficients": self.coefficients_,
                "coefficients_from_sums": self.coefficients_from_sums_}

    def _restore_fields(self, fields: dict) -> None:
        self.coefficients_ = dict(fields["coefficients"])
        self.coefficients_from_sums_ = dict(fields["coefficients_from_sums"])
