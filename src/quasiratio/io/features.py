"""Event features built from LHE particle records with awkward and vector.

Only outgoing final-state particles (LHE status 1) enter. They are sorted
into groups by |PDG id| and ordered by pT inside each group:

======== ========================= ====== =============================
prefix   particles                 slots  columns per slot
======== ========================= ====== =============================
``l``    charged leptons 11 13 15  2      ``l1_pt l1_eta l1_phi``
``a``    photons 22                1      ``a1_pt a1_eta a1_phi``
``j``    partons 1-5 and 21        2      ``j1_pt j1_eta j1_phi``
``h``    Higgs boson 25            1      ``h1_pt h1_eta h1_phi h1_mass``
``z``    Z boson 23                1      ``z1_...`` as for ``h``
``w``    W bosons 24               2      ``w1_...`` as for ``h``
``t``    top quarks 6              2      ``t1_...`` as for ``h``
======== ========================= ====== =============================

Neutrinos (12, 14, 16) enter as missing transverse momentum ``met_pt``,
``met_phi`` (their vector sum) and ``n_neutrinos``. An event without
neutrinos has ``met_pt`` 0 and ``met_phi`` equal to the fill value.

A slot without a particle contains :data:`FILL_VALUE` (-10, outside the
range of every pT, eta, phi and mass column), and so does a composite
whose objects are missing. Multiplicities: ``n_leptons``, ``n_photons``,
``n_partons``, ``n_neutrinos``.

Composites: ``ll_mass``, ``ll_pt``, ``ll_rapidity`` of the two leading
charged leptons, ``jj_mass`` and ``jj_delta_eta`` of the two leading
partons, and ``sys_mass``, ``sys_rapidity`` of all outgoing particles.
``sys_pt`` exists on request but is not a default: the incoming partons
of an LHE event carry no transverse momentum, so it is zero up to
rounding in every event.

The default set of a file holds the columns of every group that occurs in
at least one of its events, its multiplicity, ``met_*`` when neutrinos
occur, ``ll_*`` when charged leptons occur, ``jj_*`` when partons occur,
and ``sys_mass``, ``sys_rapidity``. Two files of the same process
therefore get the same names. A default column can still be constant in
one file (``n_partons`` of a fixed 2 -> 2 process).

Masses of light particles (``l1_mass``, ``j1_mass``) can be requested by
name but are never defaults: generators differ in that convention alone
(one file gives leptons and light quarks their physical masses, another
sets them to zero), so a classifier would separate two samples on it.
Masses that identify a particle (Higgs, W, Z, top) are defaults.
:func:`warn_disjoint_features` catches such leaks between two samples.

Any name of the forms ``{prefix}{k}_{pt|eta|phi|mass|rapidity}``, ``n_*``,
``met_*``, ``ll_{mass|pt|rapidity|delta_phi}``,
``jj_{mass|pt|delta_eta|delta_phi}`` and
``sys_{mass|pt|rapidity}`` can be passed as ``features=[...]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import awkward as ak
import numpy as np
import vector

from quasiratio.errors import InputError, QuasiRatioWarning

vector.register_awkward()

#: Value of a feature whose object is absent from the event.
FILL_VALUE = -10.0

#: Particle groups: prefix -> (|PDG ids|, default slots, mass is a default column).
GROUPS = {
    "l": ((11, 13, 15), 2, False),
    "a": ((22,), 1, False),
    "j": ((1, 2, 3, 4, 5, 21), 2, False),
    "h": ((25,), 1, True),
    "z": ((23,), 1, True),
    "w": ((24,), 2, True),
    "t": ((6,), 2, True),
}
NEUTRINOS = (12, 14, 16)

#: Multiplicity names and the group they count.
MULTIPLICITIES = {"n_leptons": "l", "n_photons": "a", "n_partons": "j", "n_neutrinos": "nu"}

_SLOT_NAME = re.compile(r"^([lajhzwt])([1-9][0-9]*)_(pt|eta|phi|mass|rapidity)$")
_COMPOSITES = {
    "ll": ("l", ("mass", "pt", "rapidity", "delta_phi")),
    "jj": ("j", ("mass", "pt", "delta_eta", "delta_phi")),
}


class FeatureLeakWarning(QuasiRatioWarning):
    """A feature takes disjoint values in two samples, so it separates them by itself."""


class _Groups:
    """Final-state particles of each group as pT-ordered Momentum4D arrays, built on demand."""

    def __init__(self, particles: ak.Array) -> None:
        self.final = particles[particles.status == 1]
        self._cache: dict[str, ak.Array] = {}

    def momenta(self, group: str) -> ak.Array:
        if group not in self._cache:
            pids = NEUTRINOS if group == "nu" else GROUPS[group][0]
            p4 = _four_vectors(self.final[_mask(self.final, pids)])
            order = ak.argsort(p4.pt, axis=1, ascending=False)
            self._cache[group] = p4[order]
        return self._cache[group]

    def count(self, group: str) -> np.ndarray:
        return ak.to_numpy(ak.num(self.momenta(group), axis=1)).astype(np.float64)

    def occurs(self, group: str) -> bool:
        return bool(np.any(self.count(group) > 0))


def _mask(final: ak.Array, pids: Sequence[int]) -> ak.Array:
    flat = ak.to_numpy(ak.flatten(abs(final.pid)))
    return ak.unflatten(np.isin(flat, pids), ak.num(final.pid, axis=1))


def _four_vectors(particles: ak.Array) -> ak.Array:
    return ak.zip(
        {
            "px": particles.px,
            "py": particles.py,
            "pz": particles.pz,
            "E": particles.e,
            "m_lhe": particles.m,
        },
        with_name="Momentum4D",
    )


def _slot(values: ak.Array, k: int) -> np.ndarray:
    padded = ak.pad_none(values, k, axis=1, clip=True)[:, k - 1]
    return ak.to_numpy(ak.fill_none(padded, FILL_VALUE)).astype(np.float64)


def _slot_feature(groups: _Groups, prefix: str, k: int, quantity: str) -> np.ndarray:
    p4 = groups.momenta(prefix)
    values = p4.m_lhe if quantity == "mass" else getattr(p4, quantity)
    return _slot(values, k)


def _leading_components(p4: ak.Array, k: int) -> dict[str, np.ndarray]:
    """Return px, py, pz, E of the k-th object (0-based), zero where it is absent."""
    padded = ak.pad_none(p4, k + 1, axis=1, clip=True)
    return {
        c: ak.to_numpy(ak.fill_none(padded[c][:, k], 0.0)).astype(np.float64)
        for c in ("px", "py", "pz", "E")
    }


def _pair_feature(groups: _Groups, group: str, quantity: str) -> np.ndarray:
    p4 = groups.momenta(group)
    has_pair = ak.to_numpy(ak.num(p4, axis=1)) >= 2
    first = _leading_components(p4, 0)
    second = _leading_components(p4, 1)
    with np.errstate(all="ignore"):
        if quantity == "delta_eta":
            values = vector.array(first).eta - vector.array(second).eta
        elif quantity == "delta_phi":
            # phi1 - phi2 wrapped to (-pi, pi].
            difference = vector.array(first).phi - vector.array(second).phi
            values = np.pi - np.mod(np.pi - difference, 2 * np.pi)
        else:
            pair = vector.array({c: first[c] + second[c] for c in first})
            values = getattr(pair, quantity)
    return np.where(has_pair, np.asarray(values, dtype=np.float64), FILL_VALUE)


def _system_feature(groups: _Groups, quantity: str) -> np.ndarray:
    p4 = _four_vectors(groups.final)
    total = vector.array({c: ak.to_numpy(ak.sum(p4[c], axis=1)) for c in ("px", "py", "pz", "E")})
    return np.asarray(getattr(total, quantity), dtype=np.float64)


def _met_feature(groups: _Groups, quantity: str) -> np.ndarray:
    p4 = groups.momenta("nu")
    px = ak.to_numpy(ak.sum(p4.px, axis=1))
    py = ak.to_numpy(ak.sum(p4.py, axis=1))
    if quantity == "pt":
        return np.hypot(px, py)
    return np.where(groups.count("nu") > 0, np.arctan2(py, px), FILL_VALUE)


def _compute(groups: _Groups, name: str) -> np.ndarray:
    match = _SLOT_NAME.match(name)
    if match:
        prefix, k, quantity = match.group(1), int(match.group(2)), match.group(3)
        return _slot_feature(groups, prefix, k, quantity)
    if name in MULTIPLICITIES:
        return groups.count(MULTIPLICITIES[name])
    head, _, quantity = name.partition("_")
    if head in _COMPOSITES and quantity in _COMPOSITES[head][1]:
        return _pair_feature(groups, _COMPOSITES[head][0], quantity)
    if head == "sys" and quantity in ("mass", "pt", "rapidity"):
        return _system_feature(groups, quantity)
    if head == "met" and quantity in ("pt", "phi"):
        return _met_feature(groups, quantity)
    raise InputError(
        f"unknown LHE feature {name!r}; use names such as j1_pt, l2_eta, h1_mass, "
        "n_partons, met_pt, ll_mass, jj_delta_eta or sys_mass (see quasiratio.io.features)"
    )


def default_lhe_features(groups: _Groups) -> list[str]:
    """Return the default feature names for the groups that occur in the events."""
    names: list[str] = []
    for prefix, (_, slots, with_mass) in GROUPS.items():
        if not groups.occurs(prefix):
            continue
        quantities = ("pt", "eta", "phi", "mass") if with_mass else ("pt", "eta", "phi")
        names += [f"{prefix}{k}_{q}" for k in range(1, slots + 1) for q in quantities]
    for name, group in MULTIPLICITIES.items():
        if groups.occurs(group):
            names.append(name)
    if groups.occurs("nu"):
        names += ["met_pt", "met_phi"]
    if groups.occurs("l"):
        names += ["ll_mass", "ll_pt", "ll_rapidity"]
    if groups.occurs("j"):
        names += ["jj_mass", "jj_delta_eta"]
    return names + ["sys_mass", "sys_rapidity"]


def lhe_features(
    particles: ak.Array, features: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Compute features from LHE particle records.

    Returns the (N, D) float64 matrix and its column names: ``features`` in
    the given order, or the default set of these events when None.
    """
    groups = _Groups(particles)
    names = default_lhe_features(groups) if features is None else [str(f) for f in features]
    columns = [_compute(groups, name) for name in names]
    x = np.stack(columns, axis=1) if columns else np.zeros((len(particles), 0))
    return x, names


def _distinct_values(values: np.ndarray, limit: int) -> np.ndarray | None:
    unique = np.unique(values)
    return unique if unique.size <= limit else None


def _is_disjoint(va: np.ndarray, vb: np.ndarray, max_levels: int, min_share: float) -> bool:
    if va.max() < vb.min() or vb.max() < va.min():
        return True
    levels_a = _distinct_values(va, max_levels)
    levels_b = _distinct_values(vb, max_levels)
    if levels_a is None or levels_b is None:
        return False
    only_a = float(np.mean(~np.isin(va, levels_b)))
    only_b = float(np.mean(~np.isin(vb, levels_a)))
    return max(only_a, only_b) >= min_share


def disjoint_features(a, b, *, max_levels: int = 50, min_share: float = 0.25) -> list[str]:
    """Return the features shared by samples ``a`` and ``b`` whose values (mostly) do not overlap.

    A feature is flagged when the value ranges of the two samples do not
    overlap. A feature with at most ``max_levels`` distinct values in each
    sample is also flagged when values that never occur in the other
    sample make up at least ``min_share`` of the events of one sample. That rule finds
    a light-quark mass that is 0.33 GeV in one file and 0 in another even
    though gluons (mass 0 in both) share a value.
    """
    found = []
    for name in a.feature_names:
        if name not in b.feature_names:
            continue
        va = a.x[:, a.feature_names.index(name)]
        vb = b.x[:, b.feature_names.index(name)]
        if va.size and vb.size and _is_disjoint(va, vb, max_levels, min_share):
            found.append(name)
    return found


def warn_disjoint_features(a, b, *, max_levels: int = 50, min_share: float = 0.25) -> list[str]:
    """Warn with :class:`FeatureLeakWarning` about features that separate ``a`` and ``b`` alone.

    Such a feature usually records a generator convention (a particle mass
    set to zero in one sample and physical in the other), and a ratio
    learned on it is meaningless. Returns the names found.
    """
    found = disjoint_features(a, b, max_levels=max_levels, min_share=min_share)
    if found:
        warnings.warn(
            f"features {found} take (mostly) disjoint values in {a.source} and {b.source}, so a "
            "classifier separates the samples on them alone; drop them from the feature "
            "list or give them a common convention",
            FeatureLeakWarning,
            stacklevel=2,
        )
    return found
