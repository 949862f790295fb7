"""Per-event quadratic morphing of EFT reweighting weights.

At leading order every amplitude is linear in the Wilson coefficients c,
so each event's weight is a quadratic form in c:

    w(c) = w_SM + sum_i a_i c_i + sum_i b_i c_i^2 + sum_{i<j} m_ij c_i c_j.

The coefficients are solved per event from weights stored at known points
(for one operator, c = 0, 0.1, 0.2 fix w_SM, a and b; a point with two
non-zero operators fixes their m_ij). From them follow, for any two
points, the joint likelihood ratio and the joint score of the simulated
(parton-level) configuration z, which the morphing weights describe:

    r_xz(theta1, theta0) = w(theta1) / w(theta0),
    t_xz(theta) = grad_c w(theta) / w(theta).

The linear coefficient a_i alone (the interference term) is negative for
many events, so it is a signed target. The full quadratic w(c) is a sum of
squared amplitudes per event, hence non-negative for every c up to the
rounding of the stored weights.

Point names follow the MadGraph reweighting ids of the SMEFTsim files:
``SM`` is c = 0, ``cHW_0p1`` is cHW = 0.1 (``m0p1`` would be -0.1) and
``cHB_0p1_cHW_0p1`` sets two operators.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np

from quasiratio.errors import InputError

logger = logging.getLogger(__name__)

_VALUE = re.compile(r"^(m?)(\d+)(?:p(\d+))?$")


def parse_point(name: str) -> dict[str, float] | None:
    """Parse a reweighting id such as ``cHW_0p1`` into {operator: value}.

    Returns {} for ``SM`` and None for a name that is not a morphing point
    (``XWGTUP``, scale or PDF variations).
    """
    if name == "SM":
        return {}
    tokens = name.split("_")
    if len(tokens) < 2 or len(tokens) % 2:
        return None
    point = {}
    for operator, value in zip(tokens[::2], tokens[1::2]):
        match = _VALUE.match(value)
        if match is None or not operator or operator in point:
            return None
        sign, whole, fraction = match.groups()
        number = float(f"{whole}.{fraction or '0'}")
        point[operator] = -number if sign else number
    return point


def _basis(operators: Sequence[str], pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Exponents of the monomials 1, c_i, c_i^2, c_i c_j; shape (M, K)."""
    k = len(operators)
    rows = [np.zeros(k, dtype=int)]
    rows += [np.eye(k, dtype=int)[i] for i in range(k)]
    rows += [2 * np.eye(k, dtype=int)[i] for i in range(k)]
    for i, j in pairs:
        row = np.zeros(k, dtype=int)
        row[[i, j]] = 1
        rows.append(row)
    return np.array(rows)


def _monomials(theta: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Monomials of theta (..., K) for the exponents (M, K); shape (..., M)."""
    return np.prod(theta[..., None, :] ** exponents, axis=-1)


def _polynomial_gradient(coefficients, exponents, theta) -> np.ndarray:
    """Gradient of sum_m coefficients[..., m] * monomial_m(theta); shape (..., K)."""
    columns = []
    for k in range(exponents.shape[1]):
        lowered = exponents.copy()
        lowered[:, k] = np.maximum(lowered[:, k] - 1, 0)
        terms = coefficients * exponents[:, k] * _monomials(theta, lowered)
        columns.append(np.sum(terms, axis=-1))
    return np.stack(columns, axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class Morphing:
    """Per-event quadratic morphing coefficients.

    Attributes
    ----------
    operators:
        Names of the Wilson coefficients, the order of theta's columns.
    exponents:
        Integer array (M, K): monomial m is prod_k theta_k ** exponents[m, k].
    coefficients:
        Float64 array (N, M) of per-event coefficients of those monomials,
        in the units of the stored weights.
    """

    operators: tuple[str, ...]
    exponents: np.ndarray
    coefficients: np.ndarray

    @classmethod
    def from_weights(
        cls,
        weights: Mapping[str, np.ndarray],
        *,
        operators: Sequence[str] | None = None,
        interactions: bool = True,
    ) -> Morphing:
        """Solve the coefficients per event from named weight arrays.

        Names that are not morphing points are ignored. ``operators``
        restricts the model to those operators (points that set any other
        operator are ignored); ``interactions=False`` also drops the points
        with two operators and the m_ij terms. With exactly as many points
        as monomials the solve is exact; with more it is a least-squares fit.
        """
        points = {name: parse_point(name) for name in weights}
        points = {name: p for name, p in points.items() if p is not None}
        names = sorted({op for p in points.values() for op in p})
        chosen = tuple(operators) if operators is not None else tuple(names)
        unknown = [op for op in chosen if op not in names]
        if unknown or not chosen:
            raise InputError(
                f"operators {list(chosen)} must be a non-empty subset of the operators "
                f"found in the weight names, {names}"
            )
        points = {
            name: p for name, p in points.items()
            if set(p) <= set(chosen) and (interactions or len(p) <= 1)
        }
        pairs = sorted({
            tuple(sorted(chosen.index(op) for op in p)) for p in points.values() if len(p) == 2
        })
        exponents = _basis(chosen, pairs)
        thetas = np.array([[points[n].get(op, 0.0) for op in chosen] for n in points])
        design = _monomials(thetas, exponents)
        if np.linalg.matrix_rank(design) < exponents.shape[0]:
            raise InputError(
                f"the weights {sorted(points)} do not fix a quadratic in {list(chosen)}: "
                "each operator needs SM and two non-zero values (and one point per pair)"
            )
        stored = np.stack([np.asarray(weights[n], dtype=np.float64) for n in points], axis=1)
        coefficients, *_ = np.linalg.lstsq(design, stored.T, rcond=None)
        logger.debug("morphing %s from %d points, %d monomials", chosen, len(points), len(design))
        return cls(chosen, exponents, coefficients.T.copy())

    @classmethod
    def from_lhe(cls, path, **options) -> Morphing:
        """Read the named weights of an LHE file and solve the morphing.

        ``options`` go to :meth:`from_weights`.
        """
        from quasiratio.io.lhe import read_lhe_weights

        return cls.from_weights(read_lhe_weights(path), **options)

    def __len__(self) -> int:
        return int(self.coefficients.shape[0])

    def _theta(self, theta) -> np.ndarray:
        """Theta as (K,) or (N, K), from an array or a {operator: value} mapping."""
        if isinstance(theta, Mapping):
            unknown = sorted(set(theta) - set(self.operators))
            if unknown:
                raise InputError(
                    f"unknown operators {unknown}; the morphing has {list(self.operators)}"
                )
            theta = [float(theta.get(op, 0.0)) for op in self.operators]
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim == 0 and len(self.operators) == 1:
            theta = theta.reshape(1)
        if theta.ndim == 1 and len(self.operators) == 1 and theta.shape[0] == len(self) != 1:
            theta = theta[:, None]
        if theta.shape[-1:] != (len(self.operators),) or theta.ndim > 2 or (
            theta.ndim == 2 and theta.shape[0] != len(self)
        ):
            raise InputError(
                f"theta has shape {theta.shape}; pass ({len(self.operators)},) for one point "
                f"or ({len(self)}, {len(self.operators)}) for one point per event"
            )
        return theta

    def weight(self, theta) -> np.ndarray:
        """Per-event weight w(theta), shape (N,)."""
        return np.sum(self.coefficients * _monomials(self._theta(theta), self.exponents), axis=-1)

    def gradient(self, theta) -> np.ndarray:
        """Per-event gradient grad_theta w(theta), shape (N, K)."""
        return _polynomial_gradient(self.coefficients, self.exponents, self._theta(theta))

    def joint_ratio(self, theta1, theta0=None) -> np.ndarray:
        """Joint likelihood ratio r_xz = w(theta1) / w(theta0); theta0 defaults to the SM."""
        denominator = self.weight(self.sm_point if theta0 is None else theta0)
        return self.weight(theta1) / nonzero_weights(denominator, "theta0")

    def joint_score(self, theta=None) -> np.ndarray:
        """Joint score t_xz = grad w(theta) / w(theta), shape (N, K); theta defaults to the SM."""
        theta = self.sm_point if theta is None else theta
        return self.gradient(theta) / nonzero_weights(self.weight(theta), "theta")[:, None]

    def total_weight(self, theta) -> np.ndarray:
        """Sum over all events of w(theta_n) for each row theta_n of (n, K); shape (n,).

        With weights in pb this is the cross-section at each point.
        """
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, len(self.operators))
        return _monomials(theta, self.exponents) @ self.coefficients.sum(axis=0)

    def total_weight_gradient(self, theta) -> np.ndarray:
        """Gradient of :meth:`total_weight` at each row of theta; shape (n, K)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, len(self.operators))
        return _polynomial_gradient(self.coefficients.sum(axis=0), self.exponents, theta)

    def take(self, index) -> Morphing:
        """Return the morphing of the events at ``index`` (integers or a boolean mask)."""
        return dataclasses.replace(self, coefficients=self.coefficients[np.asarray(index)])

    @property
    def sm_point(self) -> np.ndarray:
        """The Standard Model point c = 0, shape (K,)."""
        return np.zeros(len(self.operators))

    def as_theta(self, theta) -> np.ndarray:
        """Theta as (K,) or (N, K), from an array or an {operator: value} mapping."""
        return self._theta(theta)

    def linear(self, operator: str) -> np.ndarray:
        """Per-event interference coefficient a of one operator."""
        return self.coefficients[:, self._column(operator, 1)]

    def quadratic(self, operator: str) -> np.ndarray:
        """Per-event squared-term coefficient b of one operator."""
        return self.coefficients[:, self._column(operator, 2)]

    def _column(self, operator: str, power: int) -> int:
        if operator not in self.operators:
            raise InputError(
                f"unknown operator {operator!r}; the morphing has {list(self.operators)}"
            )
        target = np.zeros(len(self.operators), dtype=int)
        target[self.operators.index(operator)] = power
        return int(np.flatnonzero((self.exponents == target).all(axis=1))[0])



def nonzero_weights(weight: np.ndarray, what: str) -> np.ndarray:
    """Return ``weight``, raising InputError when an event has zero weight at ``what``."""
    zero = weight == 0
    if zero.any():
        raise InputError(
            f"{int(zero.sum())} events have zero weight at {what}, where the joint "
            "ratio and score are undefined; choose a point where every weight is non-zero"
        )
    return weight
