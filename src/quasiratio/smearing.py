"""Gaussian detector response for the jets of parton-level (LHE) events.

Parton-level features are functions of the simulated configuration z, so
a ratio learned on them equals the joint ratio and there is nothing to
average out. Smearing the outgoing partons makes the observed x differ
from z, as a detector would.
"""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np

from quasiratio.errors import InputError

#: |PDG ids| of the outgoing partons that become jets: quarks d to b and the gluon.
JET_PIDS = (1, 2, 3, 4, 5, 21)


@dataclasses.dataclass(frozen=True)
class JetSmearing:
    """Gaussian jet resolution in pT, eta and phi, applied to outgoing partons.

    The pT of every outgoing (status 1) quark or gluon is multiplied by a
    response 1 + N(0, s^2) with the calorimeter-like relative resolution
    s = sqrt((stochastic / sqrt(pT / GeV))^2 + constant^2), and eta and
    phi are shifted by independent N(0, angular^2). The defaults, 100 %
    stochastic, 5 % constant and 0.05 in eta and phi, are an estimate of
    a typical LHC jet resolution, not a calibrated detector. Masses are
    kept. A response <= 0 has probability below 1e-5 at pT = 20 GeV with
    the defaults; it is redrawn, which truncates the Gaussian there.
    Other particles (the Higgs boson, leptons) pass unchanged.
    """

    stochastic: float = 1.0
    constant: float = 0.05
    angular: float = 0.05

    def __post_init__(self) -> None:
        for name in ("stochastic", "constant", "angular"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"JetSmearing {name}={value} must be a finite number >= 0")

    def relative_resolution(self, pt: np.ndarray) -> np.ndarray:
        """Relative pT resolution s(pT) for pT in GeV."""
        pt = np.asarray(pt, dtype=np.float64)
        return np.hypot(self.stochastic / np.sqrt(pt), self.constant)

    def apply(self, particles: ak.Array, *, seed: int | None = 0) -> ak.Array:
        """Return a copy of LHE particle records with the jets smeared.

        ``particles`` is the jagged record array of
        :func:`quasiratio.io.lhe.read_lhe` (fields px, py, pz, e, m, pid,
        status, ...). The same seed gives the same smearing.
        """
        counts = ak.num(particles, axis=1)
        flat = {field: ak.to_numpy(ak.flatten(particles[field])) for field in particles.fields}
        jets = (flat["status"] == 1) & np.isin(np.abs(flat["pid"]), JET_PIDS)
        px, py, pz, m = (flat[c][jets].astype(np.float64) for c in ("px", "py", "pz", "m"))
        pt = np.hypot(px, py)
        eta = np.arcsinh(pz / pt)
        phi = np.arctan2(py, px)

        rng = np.random.default_rng(seed)
        pt = pt * self._response(self.relative_resolution(pt), rng)
        eta = eta + self.angular * rng.standard_normal(eta.size)
        phi = np.angle(np.exp(1j * (phi + self.angular * rng.standard_normal(phi.size))))

        smeared = {c: flat[c].astype(np.float64) for c in ("px", "py", "pz", "e")}
        smeared["px"][jets] = pt * np.cos(phi)
        smeared["py"][jets] = pt * np.sin(phi)
        smeared["pz"][jets] = pt * np.sinh(eta)
        smeared["e"][jets] = np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)
        flat.update(smeared)
        return ak.unflatten(ak.zip(flat), counts)

    @staticmethod
    def _response(resolution: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw 1 + N(0, resolution^2), redrawing the entries <= 0."""
        response = 1.0 + resolution * rng.standard_normal(resolution.size)
        bad = response <= 0
        while bad.any():
            response[bad] = 1.0 + resolution[bad] * rng.standard_normal(int(bad.sum()))
            bad = response <= 0
        return response
