"""Combination of signed-mixture sub-ratios into q1/p0, and its trainable coefficients.

The algebra of RoSMM, the ratio of signed mixtures (Drnevich et al.,
arXiv:2410.10216).

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

Fitted coefficients are parameterised as c = 1 + exp(a), so they stay
> 1 as the mixture definition requires. The REVERT loss applies to the
combination through the logit z = -asinh(r / 2), the inverse of
r = -2 sinh z.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "NEGATIVE",
    "POSITIVE",
    "CoefficientFitModel",
    "FinetuneModel",
    "SignedCoefficients",
    "combine_log_ratios",
    "count_nonpositive_denominators",
    "inverse_signed_mixture",
    "revert_logit",
    "sub_ratio_name",
]

#: Signs of the subsets a sample splits into: weights >= 0 and weights < 0.
POSITIVE, NEGATIVE = "pos", "neg"


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


def revert_logit(ratio: torch.Tensor) -> torch.Tensor:
    """Return the REVERT logit z = -asinh(r / 2), the inverse of r = -2 sinh z."""
    return -torch.asinh(0.5 * ratio)


class CoefficientFitModel(nn.Module):
    """REVERT logit from precomputed log sub-ratios (B, K) and trainable coefficients."""

    def __init__(self, names: list[str], coefficients: SignedCoefficients) -> None:
        super().__init__()
        self.names = names
        self.coefficients = coefficients

    def forward(self, log_r: torch.Tensor) -> torch.Tensor:
        by_name = {name: log_r[:, i] for i, name in enumerate(self.names)}
        c = self.coefficients
        return revert_logit(combine_log_ratios(by_name, c.value("c0"), c.value("c1")))


class FinetuneModel(nn.Module):
    """REVERT logit of the combination, with sub-networks and coefficients trainable."""

    def __init__(self, sub_models: dict, coefficients: SignedCoefficients) -> None:
        super().__init__()
        self.sub_models = nn.ModuleDict(sub_models)
        self.coefficients = coefficients

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_r = {name: model(x) for name, model in self.sub_models.items()}
        c = self.coefficients
        return revert_logit(combine_log_ratios(log_r, c.value("c0"), c.value("c1")))
