"""RoSMM, the ratio of signed mixtures (Drnevich et al., arXiv:2410.10216).

Split each sample by the sign of its weights. With c = (sum of positive
weights) / (sum of weights), which is > 1 when a sample has negative
weights and a positive total, a signed density is the mixture

    q = c p+ - (c - 1) p- = c p+ + (1 - c) p-,

where p+ and p- are the unit-normalised densities that |w| describes on
each subset. Write the denominator as p0 = c0 p0+ + (1 - c0) p0-, the
numerator as q1 = c1 p1+ + (1 - c1) p1-, and r_ab = p1_b / p0_a for the
sub-ratio between the denominator subset of sign a and the numerator
subset of sign b. Each r_ab is a ratio of non-negative densities, so an
ordinary CARL classifier learns log r_ab on |w| with no weight noise.
Then

    q1/p0 = c1 p1+ / p0 + (1 - c1) p1- / p0,
    p1_b / p0 = 1 / (c0 p0+ / p1_b + (1 - c0) p0- / p1_b)
              = 1 / (c0 / r_+b + (1 - c0) / r_-b),

so that

    q1/p0 = c1 / [c0/r++ + (1-c0)/r-+] + (1-c1) / [c0/r+- + (1-c0)/r--].

This is the published form 1/[(c0/c1)/r++ + ((1-c0)/c1)/r-+] + ... with
c1 and 1 - c1 moved into the numerators, which keeps it finite as c1
tends to 0 or 1 where the published form divides by them. When only one
side has negative weights two classifiers suffice. For a signed numerator
(p0 = p0+, c0 = 1): r = c1 r+ + (1 - c1) r- with r_b = p1_b / p0. For a
signed denominator (q1 = p1+, c1 = 1): r = 1 / (c0 / r+ + (1 - c0) / r-)
with r_a = q1 / p0_a.

Numerical form. Each bracket is evaluated from the log sub-ratios u, v as
k / (s_A e^A + s_B e^B) with A = log|c0| - u, B = log|1 - c0| - v and s
the signs, divided through by e^M, M = max(A, B), and with the prefactor
sign(k) e^(log|k| - M). Every exponential then has an argument <= 0
except e^(log|k| - M), which overflows only when both sub-ratios of the
bracket are beyond e^709. So the result stays finite when one sub-ratio
tends to 0 or infinity and when a coefficient tends to 0 or 1.

Coefficients come three ways. ``"sums"`` takes them from the weight
sums. ``"fit"`` minimises the REVERT loss of the combined ratio on the
full signed data with the sub-classifiers frozen. ``"finetune"`` trains
the coefficients and the sub-networks together with the REVERT loss.
Fitted coefficients are parameterised as c = 1 + exp(a), so they stay
> 1 as the mixture definition requires. The REVERT loss applies to the
combination through the logit z = -asinh(r / 2), the inverse of
r = -2 sinh z.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings

import numpy as np
import torch
from torch import nn

from quasiratio.errors import InputError, QuasiRatioWarning
from quasiratio.estimators.base import RatioEstimator, register_method
from quasiratio.estimators.carl import CARL
from quasiratio.estimators.preparation import as_samples, prepare_classes, to_tensors
from quasiratio.losses import revert_loss
from quasiratio.training import TrainingConfig, train

__all__ = ["RoSMM", "combine_log_ratios", "inverse_signed_mixture", "sub_ratio_name"]

logger = logging.getLogger(__name__)

COEFFICIENT_MODES = ("sums", "fit", "finetune")

#: Default smallest number of events a sign subset needs to train its classifier on.
# NOTE: a rule of thumb, not a measured limit. Below about 100 events even one
# bin holding all of them has a 10 % Poisson error, and the validation split
# leaves fewer still for training.
DEFAULT_MIN_SUBSET_EVENTS = 100

#: Signs of the subsets a sample splits into: weights >= 0 and weights < 0.
POSITIVE, NEGATIVE = "pos", "neg"


class DenominatorSignWarning(QuasiRatioWarning):
    """The learned denominator density c0 p0+ + (1 - c0) p0- is <= 0 at some events."""


def sub_ratio_name(denominator_sign: str, numerator_sign: str) -> str:
    """Return the name of r_ab = p1_b / p0_a, denominator sign first (``pos_neg`` is r+-)."""
    return f"{denominator_sign}_{numerator_sign}"


def _signed_exp(k: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """Return k exp(exponent) as sign(k) exp(log|k| + exponent), 0 for k = 0."""
    return torch.sign(k) * torch.exp(torch.log(torch.abs(k)) + exponent)


def _bracket_terms(c0, log_r_pos, log_r_neg):
    """Return M and the scaled denominator s_A e^(A-M) + s_B e^(B-M) of one bracket."""
    a = torch.log(torch.abs(c0)) - log_r_pos
    b = torch.log(torch.abs(1.0 - c0)) - log_r_neg
    m = torch.maximum(a, b)
    scaled = torch.sign(c0) * torch.exp(a - m) + torch.sign(1.0 - c0) * torch.exp(b - m)
    return m, scaled


def inverse_signed_mixture(k, c0, log_r_pos, log_r_neg) -> torch.Tensor:
    """Return k / [c0 / r_pos + (1 - c0) / r_neg] from the log sub-ratios, without overflow."""
    m, scaled = _bracket_terms(c0, log_r_pos, log_r_neg)
    return _signed_exp(k, -m) / scaled


def combine_log_ratios(log_r: dict, c0, c1) -> torch.Tensor:
    """Return q1/p0 in float64 from the log sub-ratios by name and the coefficients.

    ``c0`` is None when the denominator has no negative subset and ``c1``
    when the numerator has none; ``log_r`` then holds only the sub-ratios
    that exist.
    """
    log_r = {name: value.to(torch.float64) for name, value in log_r.items()}
    pp = log_r[sub_ratio_name(POSITIVE, POSITIVE)]
    one = torch.ones((), dtype=torch.float64, device=pp.device)
    if c0 is None and c1 is None:
        return torch.exp(pp)
    if c0 is None:
        pn = log_r[sub_ratio_name(POSITIVE, NEGATIVE)]
        return _signed_exp(c1, pp) + _signed_exp(1.0 - c1, pn)
    np_ = log_r[sub_ratio_name(NEGATIVE, POSITIVE)]
    if c1 is None:
        return inverse_signed_mixture(one, c0, pp, np_)
    pn = log_r[sub_ratio_name(POSITIVE, NEGATIVE)]
    nn_ = log_r[sub_ratio_name(NEGATIVE, NEGATIVE)]
    return inverse_signed_mixture(c1, c0, pp, np_) + inverse_signed_mixture(1.0 - c1, c0, pn, nn_)


def count_nonpositive_denominators(log_r: dict, c0) -> int:
    """Count events where a learned p0 / p1_b = c0 / r_+b + (1 - c0) / r_-b is <= 0."""
    if c0 is None:
        return 0
    bad = None
    for b in (POSITIVE, NEGATIVE):
        if sub_ratio_name(POSITIVE, b) not in log_r:
            continue
        _, scaled = _bracket_terms(
            c0, log_r[sub_ratio_name(POSITIVE, b)].double(), log_r[sub_ratio_name(NEGATIVE, b)].double()
        )
        bad = scaled <= 0 if bad is None else bad | (scaled <= 0)
    return int(bad.sum())


class SignedCoefficients(nn.Module):
    """Coefficients c0, c1 > 1 stored as a = log(c - 1); None for a side without negatives."""

    def __init__(self, c0: float | None, c1: float | None) -> None:
        super().__init__()
        self.sides = [name for name, c in (("c0", c0), ("c1", c1)) if c is not None]
        for name, c in (("c0", c0), ("c1", c1)):
            if c is not None:
                start = torch.tensor(math.log(c - 1.0), dtype=torch.float64)
                self.register_parameter(f"log_excess_{name}", nn.Parameter(start))

    def value(self, name: str) -> torch.Tensor | None:
        if name not in self.sides:
            return None
        return 1.0 + torch.exp(getattr(self, f"log_excess_{name}"))

    def to_dict(self) -> dict:
        return {name: float(self.value(name).detach()) if name in self.sides else None
                for name in ("c0", "c1")}


def _revert_logit(ratio: torch.Tensor) -> torch.Tensor:
    """Return the REVERT logit z = -asinh(r / 2), the inverse of r = -2 sinh z."""
    return -torch.asinh(0.5 * ratio)


class _CoefficientFit(nn.Module):
    """REVERT logit from precomputed log sub-ratios (B, K) and trainable coefficients."""

    def __init__(self, names: list[str], coefficients: SignedCoefficients) -> None:
        super().__init__()
        self.names = names
        self.coefficients = coefficients

    def forward(self, log_r: torch.Tensor) -> torch.Tensor:
        by_name = {name: log_r[:, i] for i, name in enumerate(self.names)}
        c = self.coefficients
        return _revert_logit(combine_log_ratios(by_name, c.value("c0"), c.value("c1")))


class _FinetuneModel(nn.Module):
    """REVERT logit of the combination, with sub-networks and coefficients trainable."""

    def __init__(self, sub_models: dict, coefficients: SignedCoefficients) -> None:
        super().__init__()
        self.sub_models = nn.ModuleDict(sub_models)
        self.coefficients = coefficients

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_r = {name: model(x) for name, model in self.sub_models.items()}
        c = self.coefficients
        return _revert_logit(combine_log_ratios(log_r, c.value("c0"), c.value("c1")))


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
    """

    positive_ratio = False

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
                config=self.config.replace(seed=self.config.seed + i),
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
        config = self._stage_config()
        train_set, validation_set = self._signed_data(numerator, denominator, config)
        names = list(self.sub_models_)
        model = _CoefficientFit(names, coefficients)
        validation = self._log_ratio_tensors(validation_set, names) if validation_set else None
        self.histories_["coefficients"] = train(
            model, _fit_objective, self._log_ratio_tensors(train_set, names), config,
            validation=validation,
        )

    def _finetune(self, numerator, denominator, coefficients) -> None:
        config = self._stage_config()
        train_set, validation_set = self._signed_data(numerator, denominator, config)
        model = _FinetuneModel(self.sub_models_, coefficients)
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
        return _revert_logit(self._ratio_chunk(x))

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
