"""Readers for event files: LHE, ROOT TTrees and tables, chosen by file extension.

Every reader returns an :class:`~quasiratio.events.EventSample` with signed
float64 weights. Weight choice when ``weight=None``:

- LHE: the event weight XWGTUP. Named weights are chosen by id; the
  first named weight is never taken as the nominal.
- ROOT: the branch ``genWeight``, ``weight`` or ``sample_weight`` (the first
  the tree has), else unit weights.
- Tables: a column called ``weight`` or ``sample_weight`` when present (logged),
  else unit weights.

Columns or branches whose name contains "weight" are never default
features. When ``weight=None`` finds such columns but none of the default
names above, the reader warns with
:class:`~quasiratio.errors.UnusedWeightWarning` and uses unit weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from quasiratio.errors import InputError
from quasiratio.events import EventSample, apply_negative_weight_policy

__all__ = [
    "SUFFIXES",
    "file_kind",
    "iter_events",
    "list_weight_names",
    "read_events",
]

#: File-name endings each reader accepts, matched case-insensitively.
SUFFIXES = {
    "lhe": (".lhe", ".lhe.gz"),
    "root": (".root",),
    "parquet": (".parquet", ".pq"),
    "hdf5": (".h5", ".hdf5"),
    "npz": (".npz",),
    "csv": (".csv", ".csv.gz"),
}


def file_kind(path: str | os.PathLike) -> str:
    """Return the reader name for ``path`` from its extension."""
    name = os.fspath(path).lower()
    for kind, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return kind
    known = ", ".join(s for suffixes in SUFFIXES.values() for s in suffixes)
    raise InputError(f"{os.fspath(path)}: unknown event file extension; use one of {known}")


def read_events(
    path: str | os.PathLike,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
    negative_weights: str = "keep",
) -> EventSample:
    """Read an event file into an :class:`EventSample`.

    ``weight`` names the weight (an LHE weight id, a ROOT branch or
    product such as ``"genWeight * LHEScaleWeight[8]"``, or a table
    column). ``features`` lists feature names, the reader's default set
    when None. ``tree`` picks the ROOT TTree or HDF5 group.
    ``negative_weights`` is ``"keep"``, ``"drop"`` or ``"abs"`` (see
    :func:`quasiratio.events.apply_negative_weight_policy`).
    """
    kind = file_kind(path)
    features = _as_feature_list(features)
    if kind == "lhe":
        from quasiratio.io.lhe_sample import read_lhe_sample

        sample = read_lhe_sample(path, weight=weight, features=features)
    elif kind == "root":
        from quasiratio.io.root import read_root

        sample = read_root(path, weight=weight, features=features, tree=tree)
    else:
        from quasiratio.io.tables import read_table

        sample = read_table(path, kind, weight=weight, features=features, tree=tree)
    return apply_negative_weight_policy(sample, negative_weights)


def iter_events(
    path: str | os.PathLike,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
    chunk_size: int = 100_000,
) -> Iterator[EventSample]:
    """Yield EventSamples of at most ``chunk_size`` events in file order.

    Memory stays bounded by one chunk. With ``features=None`` the default
    names are fixed by the first chunk, so every chunk has the same
    columns.
    """
    from quasiratio.io.streaming import iter_file

    return iter_file(
        path, weight=weight, features=_as_feature_list(features), tree=tree, chunk_size=chunk_size
    )


def list_weight_names(path: str | os.PathLike, tree: str | None = None) -> list[str]:
    """Return the names accepted as ``weight=`` for ``path``.

    LHE: ``"XWGTUP"`` then the declared named ids. ROOT: branches whose
    name contains "weight", jagged ones as ``Name[i]``. Tables: numeric
    columns whose name contains "weight".
    """
    kind = file_kind(path)
    if kind == "lhe":
        from quasiratio.io.lhe import lhe_weight_names

        return lhe_weight_names(path)
    if kind == "root":
        from quasiratio.io.root import root_weight_names

        return root_weight_names(path, tree=tree)
    from quasiratio.io.tables import table_weight_names

    return table_weight_names(path, kind, tree=tree)


def _as_feature_list(features: Sequence[str] | str | None) -> list[str] | None:
    if features is None:
        return None
    if isinstance(features, str):
        features = [features]
    names = [str(f) for f in features]
    if not names:
        raise InputError("features=[] names no feature; pass at least one name or None")
    return names
