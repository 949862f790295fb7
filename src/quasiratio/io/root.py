"""ROOT TTrees through uproot 5: scalar and jagged branches, and weight products.

Tree choice: ``tree`` when given, else ``Events`` when the file has it,
else the only TTree of the file.

A feature or weight factor is a branch name, optionally with an integer
index into a jagged branch: ``MET_pt``, ``Jet_pt[0]``. A slot past the end
of an event's list contains :data:`~quasiratio.io.features.FILL_VALUE`.

A weight is a product of such factors and number literals, for example
``genWeight * LHEScaleWeight[8]`` (NanoAOD stores the scale and PDF
variations as ratios to the nominal, so they must be multiplied by
``genWeight``). The expression is parsed, never evaluated as code. With
``weight=None`` the first of ``genWeight``, ``weight``, ``sample_weight``
that the tree has is used. Without any of them every event has weight 1,
and branches whose name contains "weight" raise an
:class:`~quasiratio.errors.UnusedWeightWarning`.

Default features of a NanoAOD tree (:data:`NANOAOD_DEFAULT`, those the
tree has): jet, muon and electron multiplicities, the two leading jets'
(pt, eta, phi), the leading muon's and electron's (pt, eta) and the
missing transverse momentum. Other trees: every numeric scalar branch
whose name does not contain "weight".
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np

from quasiratio.errors import FileFormatError, InputError, QuasiRatioError, UnusedWeightWarning
from quasiratio.events import EventSample
from quasiratio.io.checks import check_readable, check_weight_values
from quasiratio.io.expressions import parse_column, parse_weight
from quasiratio.io.features import FILL_VALUE
from quasiratio.io.tables import is_weight_like

logger = logging.getLogger(__name__)

#: Default features of a NanoAOD tree, kept where the tree has the branch.
NANOAOD_DEFAULT = (
    "nJet",
    "Jet_pt[0]",
    "Jet_eta[0]",
    "Jet_phi[0]",
    "Jet_pt[1]",
    "Jet_eta[1]",
    "Jet_phi[1]",
    "nMuon",
    "Muon_pt[0]",
    "Muon_eta[0]",
    "nElectron",
    "Electron_pt[0]",
    "Electron_eta[0]",
    "MET_pt",
    "MET_phi",
)
#: Branches taken as the weight when ``weight=None``, in order of preference.
DEFAULT_WEIGHT_BRANCHES = ("genWeight", "weight", "sample_weight")

_NUMERIC_KINDS = "biuf"


@contextlib.contextmanager
def _read_errors(path: str) -> Iterator[None]:
    """Turn basket read failures (decompression, deserialisation) into FileFormatErrors."""
    try:
        yield
    except QuasiRatioError:
        raise
    except Exception as exc:  # uproot, zlib, lz4 and zstd raise many types on damaged data
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FileFormatError(
            f"{path}: reading the ROOT data failed ({text}); the file is damaged, re-copy it"
        ) from None


def _open_tree(path: str, tree: str | None):
    path = check_readable(path)
    stat = os.stat(path)
    return _load_tree(path, stat.st_size, stat.st_mtime_ns, tree)


@functools.lru_cache(maxsize=4)
def _load_tree(path: str, size: int, mtime_ns: int, tree: str | None):
    """Open a TTree once per process and version of the file.

    Reading the TTree metadata of a NanoAOD file (about 1000 branches) takes
    most of a second, and inspect needs the tree twice. Failures are not cached.
    """
    import uproot

    try:
        handle = uproot.open(path)
        classes = handle.classnames()
        trees = [k.split(";")[0] for k, c in classes.items() if c == "TTree"]
    except QuasiRatioError:
        raise
    except Exception as exc:  # uproot raises many types on damaged files
        text = " ".join(str(exc).split())[:200]
        raise FileFormatError(
            f"{path}: not a readable ROOT file ({text}); re-copy the file"
        ) from None
    if not trees:
        found = sorted(set(classes.values()))
        raise InputError(
            f"{path}: contains no TTree (object types: {found}); quasiratio reads TTrees only, "
            "so store the events as a TTree or a table"
        )
    if tree is None:
        if "Events" in trees:
            tree = "Events"
        elif len(trees) == 1:
            tree = trees[0]
        else:
            raise InputError(
                f"{path}: {len(trees)} TTrees {trees}; choose one with tree= (--tree)"
            )
    if tree not in trees:
        raise InputError(f"{path}: no TTree {tree!r}; available: {trees}")
    with _read_errors(path):
        return handle[tree]


def _numeric_branches(ttree) -> tuple[list[str], list[str]]:
    """Return the numeric scalar and numeric jagged branch names."""
    scalar, jagged = [], []
    for name, branch in ttree.items():
        if "/" in name or "." in name:
            continue
        try:
            dtype = (
                branch.interpretation.to_dtype
                if hasattr(branch.interpretation, "to_dtype")
                else None
            )
            content = getattr(branch.interpretation, "content", None)
        except Exception:  # noqa: BLE001 -- an uninterpretable branch is simply skipped
            continue
        if (
            dtype is not None
            and np.dtype(dtype).kind in _NUMERIC_KINDS
            and not np.dtype(dtype).shape
        ):
            scalar.append(name)
        elif content is not None and hasattr(content, "to_dtype"):
            if np.dtype(content.to_dtype).kind in _NUMERIC_KINDS:
                jagged.append(name)
    return scalar, jagged


def default_root_features(ttree) -> list[str]:
    """Return the default feature names of a tree (see the module docstring)."""
    scalar, jagged = _numeric_branches(ttree)
    available = set(scalar) | set(jagged)
    if "Jet_pt" in jagged:
        return [n for n in NANOAOD_DEFAULT if parse_column(n)[0] in available]
    return [n for n in scalar if not is_weight_like(n)]


def _column_values(arrays, name: str, index: int | None, path: str, *, for_weight: bool):
    values = arrays[name]
    if index is None:
        if values.ndim > 1:
            raise InputError(
                f"{path}: branch {name!r} is jagged (a list per event); "
                f"pick one entry such as {name}[0]"
            )
        return ak.to_numpy(values).astype(np.float64)
    if values.ndim < 2:
        raise InputError(
            f"{path}: branch {name!r} has one value per event; drop the index [{index}]"
        )
    counts = ak.to_numpy(ak.num(values, axis=1))
    short = counts <= index
    if for_weight and short.any():
        raise FileFormatError(
            f"{path}: {int(short.sum())} events have fewer than {index + 1} entries in {name!r} "
            f"(first at event index {int(np.flatnonzero(short)[0])}); choose a smaller index"
        )
    padded = ak.fill_none(ak.pad_none(values, index + 1, axis=1, clip=True)[:, index], FILL_VALUE)
    return ak.to_numpy(padded).astype(np.float64)


def _check_branches(ttree, names: set[str], path: str) -> None:
    scalar, jagged = _numeric_branches(ttree)
    known = set(scalar) | set(jagged)
    for name in sorted(names):
        if name not in ttree.keys():
            raise InputError(f"{path}: no branch {name!r} in tree {ttree.name!r}; check the name")
        if name not in known:
            raise InputError(f"{path}: branch {name!r} is not numeric; choose a numeric branch")


def _plan(ttree, path: str, weight: str | None, features: Sequence[str] | None):
    """Return the weight factors, the feature names and the branches to read."""
    if weight is None:
        found = [name for name in DEFAULT_WEIGHT_BRANCHES if name in ttree.keys()]
        if found:
            logger.info("%s: using branch %r as the event weight", path, found[0])
            weight = found[0]
        else:
            unused = [n for n in _numeric_branches(ttree)[0] if is_weight_like(n)]
            if unused:
                warnings.warn(
                    f"{path}: weight-like branches {unused} were found but not used, so every "
                    "event has weight 1; pass weight=<branch> (--weight) to use one",
                    UnusedWeightWarning,
                    stacklevel=4,
                )
    factors = parse_weight(weight) if weight is not None else []
    names = default_root_features(ttree) if features is None else [str(f) for f in features]
    if not names:
        raise InputError(
            f"{path}: tree {ttree.name!r} has no numeric feature branch; pass features="
        )
    branches = {f[0] for f in factors if not isinstance(f, float)}
    branches |= {parse_column(n)[0] for n in names}
    _check_branches(ttree, branches, path)
    return weight, factors, names, sorted(branches)


def _to_sample(arrays, path: str, weight, factors, names) -> EventSample:
    n = len(arrays)
    w = np.ones(n)
    for factor in factors:
        if isinstance(factor, float):
            w = w * factor
        else:
            w = w * _column_values(arrays, factor[0], factor[1], path, for_weight=True)
    if weight is not None:
        w = check_weight_values(w, weight, path)
    columns = [
        _column_values(arrays, *parse_column(name), path, for_weight=False) for name in names
    ]
    x = np.stack(columns, axis=1) if n else np.zeros((0, len(names)))
    return EventSample(x, w, tuple(names), weight_name=weight, source=path)


def read_root(
    path: str | os.PathLike,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
) -> EventSample:
    """Read a ROOT TTree into an EventSample (see the module docstring for the rules)."""
    path = os.fspath(path)
    ttree = _open_tree(path, tree)
    weight, factors, names, branches = _plan(ttree, path, weight, features)
    with _read_errors(path):
        arrays = ttree.arrays(branches, library="ak")
    return _to_sample(arrays, path, weight, factors, names)


def iter_root(
    path: str | os.PathLike,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
    chunk_size: int = 100_000,
) -> Iterator[EventSample]:
    """Yield EventSamples of at most ``chunk_size`` entries in tree order (``TTree.iterate``)."""
    path = os.fspath(path)
    ttree = _open_tree(path, tree)
    weight, factors, names, branches = _plan(ttree, path, weight, features)
    chunks = ttree.iterate(branches, step_size=int(chunk_size), library="ak")
    while True:
        with _read_errors(path):
            arrays = next(chunks, None)
        if arrays is None:
            return
        yield _to_sample(arrays, path, weight, factors, names)


def root_weight_names(
    path: str | os.PathLike, tree: str | None = None, *, scan: int = 10_000
) -> list[str]:
    """Return weight-like branches; a jagged one as ``Name[0]`` ... ``Name[k-1]``.

    k is the largest list length in the first ``scan`` entries.
    """
    path = os.fspath(path)
    ttree = _open_tree(path, tree)
    scalar, jagged = _numeric_branches(ttree)
    counters = {f"n{name}" for name in jagged}
    names = [n for n in scalar if is_weight_like(n) and n not in counters]
    for name in jagged:
        if is_weight_like(name):
            with _read_errors(path):
                counts = ak.num(ttree[name].array(entry_stop=scan, library="ak"), axis=1)
            names += [f"{name}[{i}]" for i in range(int(ak.max(counts, initial=0)))]
    return names
