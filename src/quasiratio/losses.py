"""Per-event losses and ratio maps, all computed from the logit z.

Every loss returns a tensor of shape (B,) and is written with
``logsigmoid`` so that it stays finite for any finite logit, including
|z| ~ 100 in float32, where ``sigmoid(z)`` rounds to 0 or 1 and a log of
the probability would give -inf. Labels follow y = 1 for numerator (q1)
events and y = 0 for denominator (p0) events. The training loop forms
the weighted sum over events, with each class normalised to the same
total beforehand, so in the derivations below the expected loss at a
point x is q1(x) l(z, 1) + p0(x) l(z, 0), with q1 and p0 both
normalised to unit integral and s = sigmoid(z).

CARL, binary cross-entropy, l = -y log s - (1 - y) log(1 - s):
    d/ds [-q1 log s - p0 log(1 - s)] = 0 gives s = q1 / (q1 + p0), so
    r = s / (1 - s) = exp(z) and log r = z. This needs q1 >= 0: for
    q1 < 0 the expected loss is unbounded below, so CARL cannot
    represent a negative ratio.

REVERT, l = y s - (1 - y)(log s + log(1 - s)):
    d/ds [q1 s - p0 (log s + log(1 - s))] = q1 - p0 / s + p0 / (1 - s) = 0
    gives r = q1 / p0 = 1/s + 1/(s - 1). With 1/s = 1 + exp(-z) and
    1/(1 - s) = 1 + exp(z) this is r = exp(-z) - exp(z) = -2 sinh(z),
    which takes every real value, so negative ratios are representable.
    The second derivative p0 (1/s^2 + 1/(1 - s)^2) is positive whenever
    p0 > 0, whatever the sign of q1, so the pointwise minimum is unique.
    Note the orientation: r > 0 needs z < 0, unlike CARL.

ALICE, cross-entropy against the soft label t = r_xz / (1 + r_xz):
    on events drawn from both classes with equal class totals,
    E[t | x] = integral of (p0(x, z') + q1(x, z')) t dz' / (p0(x) + q1(x))
    = q1(x) / (p0(x) + q1(x)), so as for CARL r = exp(z). Here z' is the
    latent state of the simulator. A soft label lies in [0, 1) only for
    r_xz >= 0, so negative joint ratios are rejected.

Joint REVERT, l = r_xz s - log s - log(1 - s) on denominator events:
    the expected loss at x is E[r_xz | x] s - log s - log(1 - s), whose
    minimiser is E[r_xz | x] = 1/s + 1/(s - 1), and under p0 the
    conditional mean of r_xz = q1(x, z') / p0(x, z') is q1(x) / p0(x).
    So r = -2 sinh(z) as for REVERT, with r_xz of either sign.
"""

from __future__ import annotations

import torch
from torch.nn.functional import logsigmoid

from quasiratio.errors import InputError

__all__ = [
    "alice_loss",
    "carl_loss",
    "carl_ratio",
    "joint_revert_loss",
    "revert_loss",
    "revert_ratio",
]


def _promote(logit: torch.Tensor) -> torch.Tensor:
    """Return the logit as a flat tensor of at least float32 precision.

    Under bf16 autocast the network returns bf16 logits, whose 8-bit
    mantissa is too coarse for sums of signed losses.
    """
    logit = logit.reshape(-1)
    if logit.dtype in (torch.float16, torch.bfloat16):
        return logit.float()
    return logit


def carl_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per event: -y log s - (1 - y) log(1 - s)."""
    z = _promote(logit)
    y = y.reshape(-1).to(z.dtype)
    return -(y * logsigmoid(z) + (1.0 - y) * logsigmoid(-z))


def revert_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """REVERT loss per event: y s - (1 - y)(log s + log(1 - s)).

    s itself is bounded in (0, 1), so ``sigmoid`` is safe there; only the
    logarithms need the log-sigmoid form.
    """
    z = _promote(logit)
    y = y.reshape(-1).to(z.dtype)
    s = torch.sigmoid(z)
    return y * s - (1.0 - y) * (logsigmoid(z) + logsigmoid(-z))


def alice_loss(logit: torch.Tensor, r_xz: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the soft label r_xz / (1 + r_xz), per event.

    Raises :class:`InputError` when any r_xz is negative, because the
    soft label then leaves [0, 1] and the loss has no minimum.
    """
    z = _promote(logit)
    r_xz = r_xz.reshape(-1).to(z.dtype)
    if bool((r_xz < 0).any()):
        raise InputError(
            f"alice_loss got {int((r_xz < 0).sum())} negative joint ratios r_xz "
            f"(min {float(r_xz.min()):.4g}); the soft label r_xz / (1 + r_xz) is "
            "then outside [0, 1], so use joint_revert_loss for signed r_xz"
        )
    label = r_xz / (1.0 + r_xz)
    return -(label * logsigmoid(z) + (1.0 - label) * logsigmoid(-z))


def joint_revert_loss(logit: torch.Tensor, r_xz: torch.Tensor) -> torch.Tensor:
    """Joint REVERT loss per denominator event: r_xz s - log s - log(1 - s)."""
    z = _promote(logit)
    r_xz = r_xz.reshape(-1).to(z.dtype)
    s = torch.sigmoid(z)
    return r_xz * s - (logsigmoid(z) + logsigmoid(-z))


def carl_ratio(logit: torch.Tensor) -> torch.Tensor:
    """Ratio exp(z) of a CARL classifier trained with equal class totals.

    Pass float64 logits where large |z| is expected, because exp(z)
    overflows float32 for z > 88.7.
    """
    return torch.exp(logit)


def revert_ratio(logit: torch.Tensor) -> torch.Tensor:
    """Ratio -2 sinh(z) of a REVERT classifier; negative for z > 0.

    ``torch.sinh`` keeps full relative precision near z = 0, where the
    textbook form (exp(z) - exp(-z)) / 2 cancels. Pass float64 logits
    where large |z| is expected, because sinh overflows float32 for
    |z| > 89.4.
    """
    return -2.0 * torch.sinh(logit)
