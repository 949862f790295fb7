"""Power-series compression of the events far from the signal.

Each event enters ln L through ln(1 + z) with
z(t) = t u + (t^2 - t) v, t = sqrt(mu), u = sigma_SI r_SI / sigma_B and
v = sigma_S r_S / sigma_B. On 0 <= mu <= mu_max,

    |z| <= sqrt(mu_max) |u| + max(1/4, mu_max - sqrt(mu_max)) |v| = zeta,

and where zeta <= rho < 1 the series ln(1 + z) = sum_{k=1..K} (-1)^(k+1) z^k / k
has a remainder below rho^(K+1) / ((K + 1)(1 - rho)) per event: with
rho = 0.05 and K = 12 that is 9.9e-19, so 10^7 events add less than 1e-11
to ln L. Summed over those events the series is a polynomial of degree 2K
in t whose coefficients follow from the weighted moments
sum w u^j v^l (j + l <= K), computed once. Of 10^7 background events of
the reference toy 96 % are far with mu_max = 10 and 98 % with mu_max = 4
(measured on one sample), so a scan touches each of them
once instead of once per mu.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import polynomial

#: Bound rho on |z| below which an event is summed as a series, and the order K.
SERIES_RADIUS = 0.05
SERIES_ORDER = 12


def series_bound(u: np.ndarray, v: np.ndarray, mu_max: float) -> np.ndarray:
    """Return zeta, the bound on |z| of each event over 0 <= mu <= mu_max."""
    root = math.sqrt(mu_max)
    return root * np.abs(u) + max(0.25, mu_max - root) * np.abs(v)


def segment_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum the last axis of ``values`` over consecutive segments of ``counts`` events."""
    counts = np.asarray(counts)
    out = np.zeros(values.shape[:-1] + (len(counts),))
    nonempty = counts > 0
    if values.shape[-1]:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        out[..., nonempty] = np.add.reduceat(values, starts, axis=-1)
    return out


def series_polynomial(u: np.ndarray, v: np.ndarray, w: np.ndarray, counts: np.ndarray,
                      order: int = SERIES_ORDER, *, chunk_size: int = 1_000_000) -> np.ndarray:
    """Return the coefficients (n_experiments, 2 order + 1), ascending in t, of sum w ln(1 + z).

    z^k = sum_j C(k, j) u^j v^(k-j) t^k (t - 1)^(k-j).
    """
    moments = _moments(u, v, w, counts, order, chunk_size)
    coefficients = np.zeros((len(counts), 2 * order + 1))
    for k in range(1, order + 1):
        for j in range(k + 1):
            basis = polynomial.polymul(np.eye(1, k + 1, k)[0],
                                       polynomial.polypow([-1.0, 1.0], k - j))
            factor = (-1) ** (k + 1) / k * math.comb(k, j)
            coefficients[:, :len(basis)] += factor * moments[:, j, k - j, None] * basis
    return coefficients


def _moments(u, v, w, counts, order, chunk_size) -> np.ndarray:
    """Return sum w u^j v^l of each experiment, shape (n_experiments, order + 1, order + 1).

    Each chunk is one matrix product of the power tables of u and v.
    """
    moments = np.zeros((len(counts), order + 1, order + 1))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for e in np.flatnonzero(counts):
        for start in range(offsets[e], offsets[e + 1], chunk_size):
            part = slice(start, min(start + chunk_size, offsets[e + 1]))
            moments[e] += (_powers(u[part], order) * w[part]) @ _powers(v[part], order).T
    return moments


def _powers(values: np.ndarray, order: int) -> np.ndarray:
    """Return the table of values^k, shape (order + 1, N), one contiguous row per k."""
    table = np.empty((order + 1, len(values)))
    table[0] = 1.0
    for k in range(1, order + 1):
        np.multiply(table[k - 1], values, out=table[k])
    return table


def evaluate(coefficients: np.ndarray, t: np.ndarray, *, derivative: int = 0) -> np.ndarray:
    """Evaluate each experiment's polynomial at its own t, shape (n_experiments,)."""
    c = polynomial.polyder(coefficients, derivative, axis=1) if derivative else coefficients
    powers = np.asarray(t, dtype=np.float64)[:, None] ** np.arange(c.shape[1])
    return np.sum(c * powers, axis=1)


def evaluate_grid(coefficients: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Evaluate every polynomial on a grid of t, shape (len(t), n_experiments)."""
    return polynomial.polyval(np.asarray(t, dtype=np.float64), coefficients.T).T
