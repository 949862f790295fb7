"""Resonance interfering with a falling continuum: exact densities from amplitudes.

Two observables, the invariant mass m (GeV) on [m_low, m_high] and a decay
angle c = cos(theta) on [-1, 1]. The yield densities (events per GeV per
unit of c, at the reference luminosity and mu = 1) are built from
amplitudes:

    A_S(m, c) = g_S exp(i phi) BW(m) a_S(c),   BW(m) = M Gamma / (m^2 - M^2 + i M Gamma)
    A_B(m, c) = g_B (m / M)^(-k_B / 2) a_B(c)
    S = |A_S|^2,   I = 2 Re(A_S A_B*),   B_int = |A_B|^2,
    B_q = g_Q^2 (m / M)^(-k_Q) a_Q(c)^2,

with a_S^2 = 3/4 (1 - c^2), a_B^2 = 3/8 (1 + c^2) and
a_Q^2 = (1 + alpha c^2) / (2 + 2 alpha / 3), each of unit integral over c,
so the angle separates S from B, and the interference has the third shape
sqrt(1 - c^4). Only the component B_int of the
background interferes, as the gluon-initiated continuum does in gg -> ZZ,
while the dominant B_q (quark-initiated) does not. The couplings follow
from the yields: g_S from the signal yield, g_B from the interfering
background yield, g_Q from the rest of the background, and the phase phi
from the net interference yield I = sigma_SI - sigma_S. Of the two roots
for phi the code takes base - arccos(I / R) (see :attr:`InterferenceToy.phase`),
which at the reference setting is the one with the larger
c = (positive S+I) / (net S+I): 2.12 against 1.20 for the other root.
Re BW changes sign at m = M, so S + I is negative on one side of the
resonance.

Reference setting: the yields at mu = 1.2 are 9,995,240 background events,
653 for the (mu - sqrt(mu)) S term and 4,105 for the sqrt(mu) (S + I)
term, so sigma_S = 6,245.5 and sigma_SI = 3,747.3 events at mu = 1 and the
net interference is destructive. An interfering background of 20,000
events gives c = 2.12. Setting it to the whole background is the
extreme case for stress tests (:meth:`InterferenceToy.whole_background_interferes`).

Positivity: at the reference yields the total is
B_q + |sqrt(mu) A_S + A_B|^2 >= 0 for every mu >= 0. ``background_scale``
and ``signal_scale`` multiply the expected yields without changing any
normalised shape. Since mu S + sqrt(mu) I >= -B_int pointwise, the scaled
total stays non-negative for every mu >= 0 when
signal_scale <= background_scale (1 + min_x B_q / B_int), which the
constructor enforces. The supported range is therefore mu >= 0.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import integrate

from quasiratio.errors import InputError
from quasiratio.events import EventSample

#: Feature names of every sample of the toy.
FEATURE_NAMES = ("mass", "cos_theta")

#: Signal strength at which the reference yields are quoted.
REFERENCE_MU = 1.2

#: Expected events at mu = 1.2: background, (mu - sqrt(mu)) S and sqrt(mu) (S + I).
REFERENCE_COUNTS = (9_995_240.0, 653.0, 4_105.0)

#: Reference sigma_S and sigma_SI (events at mu = 1) from the counts at mu = 1.2.
REFERENCE_SIGNAL_YIELD = REFERENCE_COUNTS[1] / (REFERENCE_MU - math.sqrt(REFERENCE_MU))
REFERENCE_SIGNAL_INTERFERENCE_YIELD = REFERENCE_COUNTS[2] / math.sqrt(REFERENCE_MU)


def _power_law_integral(k: float, low: float, high: float, scale: float) -> float:
    """Return the integral of (m / scale)^(-k) over [low, high]."""
    return scale**k * (high ** (1 - k) - low ** (1 - k)) / (1 - k)


def _sample_power_law(n: int, k: float, low: float, high: float, rng) -> np.ndarray:
    u = rng.random(n)
    a, b = low ** (1 - k), high ** (1 - k)
    return (a + u * (b - a)) ** (1 / (1 - k))


def _sample_quadratic_angle(n: int, alpha: float, rng) -> np.ndarray:
    """Draw c in [-1, 1] with density proportional to 1 + alpha c^2 by rejection."""
    envelope = max(1.0, 1.0 + alpha)
    return _rejection(n, lambda k: rng.uniform(-1, 1, k),
                      lambda c: (1 + alpha * c * c) / envelope, rng)


def _rejection(n: int, propose, accept_probability, rng) -> np.ndarray:
    parts, total = [np.zeros(0)], 0
    while total < n:
        batch = max(2 * (n - total), 1024)
        values = propose(batch)
        values = values[rng.random(batch) < accept_probability(values)]
        parts.append(values)
        total += len(values)
    return np.concatenate(parts)[:n]


@dataclasses.dataclass(frozen=True)
class InterferenceToy:
    """Resonance plus partly interfering background with exact densities.

    The four ``*_yield`` fields are events at mu = 1 at the reference
    luminosity and fix every shape; ``background_scale`` and
    ``signal_scale`` multiply the expected background and signal yields.
    """

    background_yield: float = REFERENCE_COUNTS[0]
    signal_yield: float = REFERENCE_SIGNAL_YIELD
    signal_interference_yield: float = REFERENCE_SIGNAL_INTERFERENCE_YIELD
    interfering_background_yield: float = 20_000.0
    background_scale: float = 1.0
    signal_scale: float = 1.0
    resonance_mass: float = 500.0
    resonance_width: float = 50.0
    mass_range: tuple[float, float] = (250.0, 1000.0)
    interfering_slope: float = 4.0
    noninterfering_slope: float = 4.5
    noninterfering_angular: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.mass_range
        if not 0 < low < self.resonance_mass < high:
            raise InputError(
                f"mass_range {self.mass_range} must satisfy 0 < low < resonance_mass "
                f"({self.resonance_mass}) < high"
            )
        if not 0 < self.interfering_background_yield <= self.background_yield:
            raise InputError(
                f"interfering_background_yield={self.interfering_background_yield} must be "
                f"positive and at most background_yield={self.background_yield}"
            )
        if min(self.background_scale, self.signal_scale, self.signal_yield) <= 0:
            raise InputError("background_scale, signal_scale and signal_yield must be positive")
        if not -1 < self.noninterfering_angular:
            raise InputError(f"noninterfering_angular={self.noninterfering_angular} must be > -1")
        limit = self.background_scale * (1 + self._min_noninterfering_share())
        if self.signal_scale > limit * (1 + 1e-12):
            raise InputError(
                f"signal_scale={self.signal_scale} exceeds {limit:.6g}, above which the "
                "total density is negative for some mu >= 0; lower signal_scale or raise "
                "background_scale"
            )
        _ = self.phase

    @classmethod
    def whole_background_interferes(cls, **changes) -> InterferenceToy:
        """Return the extreme setting in which the whole background interferes."""
        background = changes.get("background_yield", REFERENCE_COUNTS[0])
        return cls(interfering_background_yield=background, **changes)

    # ----- couplings and shapes ------------------------------------------------

    def _propagator(self, m: np.ndarray) -> np.ndarray:
        mass, width = self.resonance_mass, self.resonance_width
        return mass * width / (m * m - mass * mass + 1j * mass * width)

    def _interfering_amplitude_mass(self, m: np.ndarray) -> np.ndarray:
        return (m / self.resonance_mass) ** (-self.interfering_slope / 2)

    def _quad(self, f) -> float:
        low, high = self.mass_range
        value, _ = integrate.quad(f, low, high, points=[self.resonance_mass],
                                  limit=400, epsabs=0, epsrel=1e-12)
        return value

    @functools.cached_property
    def _couplings(self) -> tuple[float, float, float]:
        low, high = self.mass_range
        signal_norm = self._quad(lambda m: abs(self._propagator(m)) ** 2)
        interfering_norm = _power_law_integral(self.interfering_slope, low, high,
                                               self.resonance_mass)
        quark_norm = _power_law_integral(self.noninterfering_slope, low, high,
                                         self.resonance_mass)
        quark_yield = self.background_yield - self.interfering_background_yield
        return (math.sqrt(self.signal_yield / signal_norm),
                math.sqrt(self.interfering_background_yield / interfering_norm),
                math.sqrt(quark_yield / quark_norm))

    @functools.cached_property
    def phase(self) -> float:
        """Phase phi of the signal amplitude (radians) that gives the net interference yield."""
        g_s, g_b, _ = self._couplings
        overlap, _ = integrate.quad(lambda c: math.sqrt(9 / 32 * (1 - c**4)), -1, 1,
                                    epsabs=0, epsrel=1e-13)
        j_re = self._quad(lambda m: self._interfering_amplitude_mass(m) * self._propagator(m).real)
        j_im = self._quad(lambda m: self._interfering_amplitude_mass(m) * self._propagator(m).imag)
        # I = A cos(phi) + B sin(phi) = R cos(phi - base), from Re(e^{i phi} BW).
        a, b = 2 * g_s * g_b * overlap * j_re, -2 * g_s * g_b * overlap * j_im
        radius, base = math.hypot(a, b), math.atan2(b, a)
        interference = self.signal_interference_yield - self.signal_yield
        if abs(interference) > radius:
            raise InputError(
                f"an interference yield of {interference:.6g} events is out of reach with "
                f"an interfering background of {self.interfering_background_yield:.6g} "
                f"(at most {radius:.6g} in magnitude); raise interfering_background_yield"
            )
        return base - math.acos(interference / radius)

    def _min_noninterfering_share(self) -> float:
        """Return min over x of B_q / B_int (monotonic in m and c, so taken at the corners)."""
        if self.interfering_background_yield >= self.background_yield:
            return 0.0
        x = np.array([[m, c] for m in self.mass_range for c in (0.0, 1.0)])
        parts = self._yield_density_parts(x)
        return float(np.min(parts["quark"] / parts["interfering"]))

    def _yield_density_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Return S, I, B_int and B_q yield densities at the reference luminosity."""
        x = np.asarray(x, dtype=np.float64)
        m, c = x[:, 0], x[:, 1]
        g_s, g_b, g_q = self._couplings
        alpha = self.noninterfering_angular
        bw = self._propagator(m)
        a_s = np.sqrt(3 / 4 * (1 - c * c))
        a_b = np.sqrt(3 / 8 * (1 + c * c))
        f_b = self._interfering_amplitude_mass(m)
        rotated = math.cos(self.phase) * bw.real - math.sin(self.phase) * bw.imag
        return {
            "signal": g_s**2 * (bw.real**2 + bw.imag**2) * a_s**2,
            "interference": 2 * g_s * g_b * rotated * f_b * a_s * a_b,
            "interfering": g_b**2 * f_b**2 * a_b**2,
            "quark": g_q**2 * (m / self.resonance_mass) ** (-self.noninterfering_slope)
            * (1 + alpha * c * c) / (2 + 2 * alpha / 3),
        }

    # ----- densities -----------------------------------------------------------

    @property
    def expected_background(self) -> float:
        """Expected background events sigma_B (independent of mu)."""
        return self.background_scale * self.background_yield

    @property
    def expected_signal(self) -> float:
        """Expected signal events sigma_S at mu = 1."""
        return self.signal_scale * self.signal_yield

    @property
    def expected_signal_interference(self) -> float:
        """Expected net signal-plus-interference events sigma_SI at mu = 1."""
        return self.signal_scale * self.signal_interference_yield

    def expected_events(self, mu) -> np.ndarray:
        """Return nu(mu) = sigma_B + sqrt(mu) sigma_SI + (mu - sqrt(mu)) sigma_S."""
        mu = np.asarray(mu, dtype=np.float64)
        root = np.sqrt(mu)
        return (self.expected_background + root * self.expected_signal_interference
                + (mu - root) * self.expected_signal)

    def densities(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Return the normalised p_B, p_S and q_SI at x.

        The keys are ``background``, ``signal`` and ``signal_interference``.
        """
        return self._densities_from_parts(self._yield_density_parts(x))

    def _densities_from_parts(self, parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "background": (parts["interfering"] + parts["quark"]) / self.background_yield,
            "signal": parts["signal"] / self.signal_yield,
            "signal_interference": (parts["signal"] + parts["interference"])
            / self.signal_interference_yield,
        }

    def intensity(self, x: np.ndarray, mu: float) -> np.ndarray:
        """Return the expected events per GeV per unit cos(theta) at x for signal strength mu."""
        return self._intensity_from_densities(self.densities(x), mu)

    def _intensity_from_densities(self, d: dict[str, np.ndarray], mu: float) -> np.ndarray:
        root = math.sqrt(mu)
        return (self.expected_background * d["background"]
                + root * self.expected_signal_interference * d["signal_interference"]
                + (mu - root) * self.expected_signal * d["signal"])

    def exact_ratios(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the exact r_S = p_S / p_B and signed r_SI = q_SI / p_B."""
        d = self.densities(x)
        return d["signal"] / d["background"], d["signal_interference"] / d["background"]

    def signal_ratio(self, x: np.ndarray) -> np.ndarray:
        """Return the exact r_S = p_S / p_B."""
        d = self.densities(x)
        return d["signal"] / d["background"]

    def signal_interference_ratio(self, x: np.ndarray) -> np.ndarray:
        """Return the exact signed r_SI = q_SI / p_B."""
        d = self.densities(x)
        return d["signal_interference"] / d["background"]

    def positive_fraction(self) -> float:
        """Return c = (integral of the positive part of q_SI) / (integral of q_SI)."""
        x, w = self.quadrature_nodes()
        q = self.densities(x)["signal_interference"]
        return float(np.sum(w * np.clip(q, 0, None)) / np.sum(w * q))

    def quadrature_nodes(self, *, mass_panels: int = 240, angle_nodes: int = 24):
        """Return Gauss-Legendre nodes (N, 2) and weights over the (m, c) rectangle.

        Mass panels are uniform in arctan((m - M) / Gamma), so they crowd
        at the resonance; each has 8 nodes. The angle nodes are uniform
        Gauss-Legendre nodes in arcsin(c).
        """
        low, high = self.mass_range
        mass, width = self.resonance_mass, self.resonance_width
        edges = mass + width * np.tan(np.linspace(np.arctan((low - mass) / width),
                                                  np.arctan((high - mass) / width),
                                                  mass_panels + 1))
        t, tw = np.polynomial.legendre.leggauss(8)
        half = np.diff(edges)[:, None] / 2
        m_nodes = (edges[:-1, None] + half * (t + 1)).ravel()
        m_weights = (half * tw).ravel()
        # c = sin(phi) removes the square-root endpoint behaviour of sqrt(1 - c^4).
        phi, phi_weights = np.polynomial.legendre.leggauss(angle_nodes)
        c_nodes = np.sin(phi * np.pi / 2)
        c_weights = phi_weights * np.cos(phi * np.pi / 2) * np.pi / 2
        x = np.stack(np.meshgrid(m_nodes, c_nodes, indexing="ij"), axis=-1).reshape(-1, 2)
        return x, np.outer(m_weights, c_weights).ravel()

    def asimov_data(self, mu: float, **quadrature) -> EventSample:
        """Return quadrature nodes whose weighted sums are integrals over nu p(x|mu)."""
        _check_mu(mu)
        x, w = self.quadrature_nodes(**quadrature)
        return EventSample(x, w * self.intensity(x, mu), FEATURE_NAMES, source="asimov data")

    # ----- samplers ------------------------------------------------------------

    def _sample_mass_angle(self, component: str, n: int, rng) -> np.ndarray:
        low, high = self.mass_range
        if component == "signal":
            mass, width = self.resonance_mass, self.resonance_width
            lo_t = np.arctan((low**2 - mass**2) / (mass * width))
            hi_t = np.arctan((high**2 - mass**2) / (mass * width))
            # Cauchy in s = m^2 times ds/dm = 2m, so accept with low / m.
            m = _rejection(n, lambda k: np.sqrt(mass**2 + mass * width
                                                * np.tan(rng.uniform(lo_t, hi_t, k))),
                           lambda v: low / v, rng)
            c = _sample_quadratic_angle(n, -1.0, rng)
        elif component == "interfering":
            m = _sample_power_law(n, self.interfering_slope, low, high, rng)
            c = _sample_quadratic_angle(n, 1.0, rng)
        else:
            m = _sample_power_law(n, self.noninterfering_slope, low, high, rng)
            c = _sample_quadratic_angle(n, self.noninterfering_angular, rng)
        return np.stack([m, c], axis=1)

    def _sample_mixture(self, yields: dict[str, float], n: int, rng) -> np.ndarray:
        names = list(yields)
        probabilities = np.array([yields[k] for k in names]) / sum(yields.values())
        counts = rng.multinomial(n, probabilities)
        x = np.concatenate([self._sample_mass_angle(k, int(c), rng)
                            for k, c in zip(names, counts)])
        return x[rng.permutation(n)]

    def sample_background(self, n: int, *, seed=None) -> EventSample:
        """Draw n background events (weight 1) from p_B."""
        rng = np.random.default_rng(seed)
        quark = self.background_yield - self.interfering_background_yield
        x = self._sample_mixture({"interfering": self.interfering_background_yield,
                                  "quark": quark}, n, rng)
        return EventSample(x, np.ones(n), FEATURE_NAMES, source="background sample")

    def sample_signal(self, n: int, *, seed=None) -> EventSample:
        """Draw n signal events (weight 1) from p_S."""
        rng = np.random.default_rng(seed)
        x = self._sample_mass_angle("signal", n, rng)
        return EventSample(x, np.ones(n), FEATURE_NAMES, source="signal sample")

    def sample_signal_interference(self, n: int, *, seed=None) -> EventSample:
        """Draw n events from |q_SI| with weights sign(q_SI) = +1 or -1.

        The proposal 2 S + B_int bounds |S + I| because 2 |A_S| |A_B| <=
        |A_S|^2 + |A_B|^2, and each proposal event is kept with probability
        |S + I| / (2 S + B_int).
        """
        rng = np.random.default_rng(seed)
        yields = {"signal": 2 * self.signal_yield,
                  "interfering": self.interfering_background_yield}
        parts, total = [], 0
        while total < n:
            batch = 4 * (n - total) + 1024
            x = self._sample_mixture(yields, batch, rng)
            p = self._yield_density_parts(x)
            s_plus_i = p["signal"] + p["interference"]
            keep = rng.random(batch) * (2 * p["signal"] + p["interfering"]) < np.abs(s_plus_i)
            parts.append((x[keep], np.sign(s_plus_i[keep])))
            total += int(keep.sum())
        x = np.concatenate([p[0] for p in parts])[:n]
        w = np.concatenate([p[1] for p in parts])[:n]
        return EventSample(x, w, FEATURE_NAMES, source="signal+interference sample")

    def sample_pseudo_data(self, mu: float, *, seed=None, n_experiments: int = 1):
        """Draw Poisson pseudo-experiments from nu(mu) p(x|mu).

        Returns ``(sample, counts)``: all experiments one after another in
        one :class:`EventSample` of unit weights and the number of events of
        each. The proposal B_q + (1 + sqrt(mu) k) B_int + (mu + sqrt(mu)) k S,
        with k = signal_scale / background_scale, bounds the total density
        (because |I| <= S + B_int), and events are kept with probability
        total / proposal, which leaves a Poisson process of the total.
        """
        _check_mu(mu)
        rng = np.random.default_rng(seed)
        k = self.signal_scale / self.background_scale
        root = math.sqrt(mu)
        yields = {"quark": self.background_yield - self.interfering_background_yield,
                  "interfering": (1 + root * k) * self.interfering_background_yield,
                  "signal": (mu + root) * k * self.signal_yield}
        proposal_total = self.background_scale * sum(yields.values())
        yields = {name: value for name, value in yields.items() if value > 0}
        n_proposed = rng.poisson(proposal_total, size=n_experiments)
        x = self._sample_mixture(yields, int(n_proposed.sum()), rng)
        parts = self._yield_density_parts(x)
        proposal = self.background_scale * sum(
            parts[name] * value / self._reference_yield(name) for name, value in yields.items())
        intensity = self._intensity_from_densities(self._densities_from_parts(parts), mu)
        keep = rng.random(len(x)) * proposal < intensity
        experiment = np.repeat(np.arange(n_experiments), n_proposed)
        counts = np.bincount(experiment[keep], minlength=n_experiments)
        sample = EventSample(x[keep], np.ones(int(keep.sum())), FEATURE_NAMES,
                             source=f"pseudo-data at mu={mu}")
        return sample, counts

    def _reference_yield(self, component: str) -> float:
        if component == "signal":
            return self.signal_yield
        if component == "interfering":
            return self.interfering_background_yield
        return self.background_yield - self.interfering_background_yield


def _check_mu(mu: float) -> None:
    if not (np.isfinite(mu) and mu >= 0):
        raise InputError(f"signal strength mu={mu} is outside the supported range mu >= 0")
