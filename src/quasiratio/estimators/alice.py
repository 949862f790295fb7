"""Estimators that learn from the joint ratio r_xz and the joint score t_xz.

A simulator computes more than the events it writes: for each event the
latent (parton-level) configuration z gives the joint likelihood ratio
r_xz = q1(x, z) / p0(x, z) and the joint score
t_xz = grad_theta log p(x, z | theta). Both are per-event extras of an
:class:`~quasiratio.events.EventSample` (``r_xz`` of shape (N,), ``t_xz``
of shape (N, P)). Any regression target whose conditional mean given x
is the quantity of interest trains a network to that mean, and r_xz and
t_xz are such targets with less variance than the class label. These
estimators need fewer events than CARL or REVERT for the same error.

ALICE (Stoye et al., arXiv:1808.00973). Cross-entropy against the soft
label r_xz / (1 + r_xz) on events of both classes with equal class
totals. At x the expected loss is minimised by
s = E[r_xz / (1 + r_xz) | x] under the mixture (p0 + q1) / 2, which is
q1(x) / (p0(x) + q1(x)), so log r = z as for CARL. The soft label lies in
[0, 1] only for r_xz >= 0; ALICE rejects negative r_xz and names the
joint REVERT method below.

ALICES (Brehmer et al., arXiv:1805.12244). ALICE plus
alpha |t_xz - grad_theta log r_hat(x | theta)|^2 on the events weighted
to p(x, z | theta), the numerator here (y = 1). The expectation of t_xz
given x under p(z | x, theta) is the marginal score
grad_theta log p(x | theta), which equals grad_theta log r(x | theta)
because p0 does not depend on theta. The gradient of the logit with
respect to the theta input is taken by autograd with ``create_graph``,
so the network is trained through it. MadMiner calls these events
y = 0 because its ratio puts theta0 on top of a fixed theta1; the
physics is the same.

Joint REVERT (``method="joint-revert"``), the signed counterpart, trained
on denominator events only. Per event

    l = r_xz s - log s - log(1 - s),   s = sigmoid(z).

Derivation. Under p0(x, z) the expected loss at x is
R(x) s - log s - log(1 - s) with R(x) = E_p0[r_xz | x]. Its derivative
in s, R - 1/s + 1/(1 - s), vanishes at R = 1/s + 1/(s - 1) = -2 sinh(z),
and the second derivative 1/s^2 + 1/(1 - s)^2 is positive for every
real R, so the minimum is unique whatever the sign of R. Finally
R(x) = integral of p0(z | x) q1(x, z) / p0(x, z) dz
     = integral of q1(x, z) dz / p0(x) = q1(x) / p0(x) = r(x),
which needs only p0 >= 0 and holds for a signed quasi-density q1. The
term r_xz s replaces REVERT's numerator-sample expectation E_q1[s] by
E_p0[r_xz s], so no numerator events are needed and the label noise of
the class assignment is gone. The ratio is r = -2 sinh(z); log r is not
defined where it is negative.
"""

from __future__ import annotations

import numpy as np
import torch

from quasiratio.errors import InputError
from quasiratio.estimators.base import register_method
from quasiratio.estimators.parameterized import ParameterizedEstimator, theta_gradient
from quasiratio.estimators.preparation import to_tensors
from quasiratio.events import EventSample
from quasiratio.losses import alice_loss, carl_ratio, joint_revert_loss, revert_ratio
from quasiratio.training import TrainingConfig, train

__all__ = ["ALICE", "ALICES", "JointREVERT"]


@register_method("alice")
class ALICE(ParameterizedEstimator):
    """ALICE: cross-entropy against r_xz / (1 + r_xz); log r(x [| theta]) = z.

    Both samples carry ``r_xz``, the joint ratio at each event's own
    theta when the samples carry ``theta`` (then r(x | theta) is learned).
    """

    positive_ratio = True
    requires_theta = False
    joint_extras = ("r_xz",)

    def _check_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        super()._check_samples(numerator, denominator)
        if ("theta" in numerator.extras) != ("theta" in denominator.extras):
            raise InputError(
                f"method {self.method!r} needs theta in both samples or in neither, because "
                "each event's r_xz belongs to its own theta; pass theta for both"
            )
        for sample in (numerator, denominator):
            r_xz = sample.extras["r_xz"]
            negative = int(np.count_nonzero(r_xz < 0))
            if negative:
                raise InputError(
                    f"{sample.source}: {negative} events have a negative joint ratio r_xz "
                    f"(min {float(r_xz.min()):.4g}), so the ALICE soft label "
                    "r_xz / (1 + r_xz) leaves [0, 1]; use method='joint-revert', which "
                    "learns signed ratios from denominator events and r_xz"
                )

    def _objective(self, model, batch) -> torch.Tensor:
        return alice_loss(model(batch["x"]), batch["r_xz"])

    @staticmethod
    def _ratio_from_logit(logit: torch.Tensor) -> torch.Tensor:
        return carl_ratio(logit.double())


@register_method("alices")
class ALICES(ALICE):
    """ALICE plus ``alpha`` |t_xz - grad_theta z(x, theta)|^2 on numerator events.

    The numerator carries ``t_xz`` (N, P), the joint score at each
    event's own theta; the denominator needs none (its score term is
    zero). ``alpha`` weighs the score term against the cross-entropy.
    """

    requires_theta = True

    def __init__(self, *, alpha: float = 1.0, **options) -> None:
        super().__init__(**options)
        self.alpha = alpha

    def _check_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        if not (isinstance(self.alpha, (int, float)) and np.isfinite(self.alpha)
                and self.alpha >= 0):
            raise InputError(f"alpha={self.alpha!r} must be a finite number >= 0")
        super()._check_samples(numerator, denominator)
        if "t_xz" not in numerator.extras:
            raise InputError(
                f"{numerator.source}: method 'alices' needs the joint score t_xz of the "
                "numerator events; pass EventSample.from_arrays(x, w, theta=..., "
                "r_xz=..., t_xz=...)"
            )
        width = np.asarray(numerator.extras["theta"]).reshape(len(numerator), -1).shape[1]
        t_xz = np.asarray(numerator.extras["t_xz"]).reshape(len(numerator), -1)
        if t_xz.shape[1] != width:
            raise InputError(
                f"{numerator.source}: t_xz has {t_xz.shape[1]} columns but theta has "
                f"{width}; pass one score component per parameter"
            )

    def _fit_samples(self, numerator: EventSample, denominator: EventSample) -> None:
        width = np.asarray(numerator.extras["t_xz"]).reshape(len(numerator), -1).shape[1]
        extras = {"t_xz": np.zeros((len(denominator), width)), **denominator.extras}
        super()._fit_samples(numerator, denominator.replace(extras=extras))

    def _training_extras(self) -> tuple[str, ...]:
        return ("r_xz", "t_xz")

    def _objective(self, model, batch) -> torch.Tensor:
        # The validation pass runs under no_grad; the score term needs the graph.
        with torch.enable_grad():
            inputs = batch["x"].detach().clone().requires_grad_(True)
            logit = model(inputs)
            score = theta_gradient(model, inputs, self.n_features_in_)
        t_xz = batch["t_xz"].reshape(len(score), -1)
        score_error = ((t_xz - score) ** 2).sum(dim=1)
        return alice_loss(logit, batch["r_xz"]) + self.alpha * batch["y"] * score_error

    def _options(self) -> dict:
        return {**super()._options(), "alpha": self.alpha}


@register_method("joint-revert")
class JointREVERT(ParameterizedEstimator):
    """Signed ratio from denominator events and r_xz: r = -2 sinh z (derivation above).

    Call ``fit(None, denominator)``; the denominator carries ``r_xz``
    (any sign) and, for r(x | theta), ``theta`` with r_xz at that theta.
    """

    positive_ratio = False
    requires_theta = False
    joint_extras = ("r_xz",)

    def fit(self, numerator, denominator, *, numerator_weight=None, denominator_weight=None):
        """Learn r(x) = E_p0[r_xz | x] from the denominator sample; return self."""
        if not isinstance(self.config, TrainingConfig):
            raise InputError(f"config must be a TrainingConfig, got {type(self.config).__name__}")
        if self.chunk_size < 1:
            raise InputError(f"chunk_size={self.chunk_size} must be an integer >= 1")
        if numerator is not None or numerator_weight is not None:
            raise InputError(
                "method 'joint-revert' learns from denominator events and their r_xz alone, "
                "so it takes no numerator sample; call fit(None, denominator) in Python with "
                "r_xz as an EventSample extra"
            )
        if not isinstance(denominator, EventSample) or denominator_weight is not None:
            raise InputError(
                "method 'joint-revert' needs an EventSample with the extra r_xz as the "
                "denominator; build it with EventSample.from_arrays(x, w, r_xz=...)"
            )
        if len(denominator) == 0:
            raise InputError(f"the {denominator.source} sample has no events")
        if "r_xz" not in denominator.extras:
            raise InputError(
                f"{denominator.source}: method 'joint-revert' needs the per-event joint "
                "ratio r_xz; pass EventSample.from_arrays(x, w, r_xz=...)"
            )
        self.feature_names_ = denominator.feature_names
        self.n_features_in_ = denominator.n_features
        kept = denominator.x[denominator.sample_weight != 0]
        if len(kept) == 0:
            raise InputError(f"every weight of the {denominator.source} sample is zero")
        self.support_ = {"min": kept.min(axis=0).tolist(), "max": kept.max(axis=0).tolist()}
        self._fit_denominator(denominator)
        return self

    def _fit_denominator(self, denominator: EventSample) -> None:
        denominator, _ = self._append_theta(denominator, denominator)
        parts = _split(denominator.normalized(1.0), self.config.validation_fraction,
                       self.config.seed)
        arrays = [_arrays(part) if part is not None else None for part in parts]
        model = self.new_model(arrays[0]["x"], arrays[0]["weight"])
        self.history_ = train(
            model, self._objective, to_tensors(arrays[0]), self.config,
            validation=to_tensors(arrays[1]) if arrays[1] is not None else None,
        )
        self.network_ = model

    def _objective(self, model, batch) -> torch.Tensor:
        return joint_revert_loss(model(batch["x"]), batch["r_xz"])

    @staticmethod
    def _ratio_from_logit(logit: torch.Tensor) -> torch.Tensor:
        return revert_ratio(logit.double())


def _split(sample: EventSample, fraction: float, seed: int):
    """Split into training and validation parts, each scaled back to a total of about 1.

    Scaling by (events in the sample) / (events in the part) keeps each
    part's expected total at 1 without dividing by its own signed sum.
    """
    if fraction <= 0:
        return sample, None
    parts = sample.shuffled_split([1.0 - fraction, fraction], seed=seed)
    return tuple(p.with_weights(p.sample_weight * (len(sample) / max(len(p), 1))) for p in parts)


def _arrays(sample: EventSample) -> dict[str, np.ndarray]:
    return {
        "x": sample.x,
        "y": np.zeros(len(sample)),
        "weight": sample.sample_weight,
        "r_xz": sample.extras["r_xz"],
    }
