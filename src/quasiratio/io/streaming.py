"""Chunked reading of every supported file kind, in file order, with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from quasiratio.errors import InputError
from quasiratio.events import EventSample


def iter_file(
    path: str | os.PathLike,
    *,
    weight: str | None,
    features: Sequence[str] | None,
    tree: str | None,
    chunk_size: int,
) -> Iterator[EventSample]:
    """Yield EventSamples of at most ``chunk_size`` events (see ``quasiratio.io.iter_events``)."""
    from quasiratio.io import file_kind

    if int(chunk_size) < 1:
        raise InputError(f"chunk_size={chunk_size} must be a positive number of events")
    kind = file_kind(path)
    if kind == "lhe":
        from quasiratio.io.lhe_sample import iter_lhe_samples

        return iter_lhe_samples(path, weight=weight, features=features, chunk_size=chunk_size)
    if kind == "root":
        from quasiratio.io.root import iter_root

        return iter_root(path, weight=weight, features=features, tree=tree, chunk_size=chunk_size)
    from quasiratio.io.tables import iter_table

    return iter_table(
        path, kind, weight=weight, features=features, tree=tree, chunk_size=chunk_size
    )
