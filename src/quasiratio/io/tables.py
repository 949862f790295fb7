"""Tables of events: Parquet, CSV (through pyarrow), HDF5 (through h5py) and NPZ.

One row per event and one numeric column per quantity. Weight rule:

- ``weight="col"`` uses that column;
- ``weight=None`` uses a column called ``weight`` or ``sample_weight`` when
  there is one (logged at INFO), else unit weights, and then warns with
  :class:`~quasiratio.errors.UnusedWeightWarning` if some column name
  contains "weight", because such a column was found but not used.

Default features are the numeric columns whose name does not contain
"weight", in file order. Boolean columns count as numeric (0 or 1).

HDF5 layout: one-dimensional datasets of equal length in the root group
or in the group named by ``tree``, or one compound dataset whose fields are
the columns. Columns come in the group's iteration order, which h5py
gives as creation order for files written with ``track_order=True`` and
as alphabetical order otherwise. NPZ layout: one-dimensional arrays, or a two-dimensional
array ``x`` with an optional ``feature_names`` array of strings.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np

from quasiratio.errors import InputError, QuasiRatioError, UnusedWeightWarning
from quasiratio.events import EventSample
from quasiratio.io.checks import check_readable, check_weight_values
from quasiratio.io.table_formats import (
    READ_ERRORS,
    Columns,
    column_chunks,
    load_columns,
    parquet_numeric_names,
    read_failure,
)

logger = logging.getLogger(__name__)

#: Column names taken as the weight when ``weight=None``, in order of preference.
DEFAULT_WEIGHT_COLUMNS = ("weight", "sample_weight")


def is_weight_like(name: str) -> bool:
    """Return whether a column name marks a weight (it contains "weight", any case)."""
    return "weight" in name.lower()


def _choose_weight(
    columns: Columns, path: str, weight: str | None
) -> tuple[np.ndarray, str | None]:
    n = len(next(iter(columns.values()))) if columns else 0
    if weight is not None:
        if weight not in columns:
            raise InputError(
                f"{path}: unknown weight column {weight!r}; choose one of the numeric "
                f"columns {list(columns)}"
            )
        return check_weight_values(columns[weight], weight, path), weight
    for name in DEFAULT_WEIGHT_COLUMNS:
        if name in columns:
            logger.info("%s: using column %r as the event weight", path, name)
            return check_weight_values(columns[name], name, path), name
    unused = [c for c in columns if is_weight_like(c)]
    if unused:
        warnings.warn(
            f"{path}: weight-like columns {unused} were found but not used, so every event "
            "has weight 1; pass weight=<column> (--weight on the command line) to use one",
            UnusedWeightWarning,
            stacklevel=5,
        )
    return np.ones(n), None


def _choose_features(
    columns: Columns, other: list[str], path: str, features: Sequence[str] | None, weight_name
) -> list[str]:
    if features is None:
        names = [c for c in columns if not is_weight_like(c) and c != weight_name]
        if not names:
            raise InputError(
                f"{path}: no numeric feature column (columns: {list(columns) + other}); "
                "store features as numeric columns whose names do not contain 'weight'"
            )
        return names
    for name in features:
        if name in other:
            raise InputError(
                f"{path}: column {name!r} is not numeric; choose numeric feature columns"
            )
        if name not in columns:
            raise InputError(
                f"{path}: unknown feature column {name!r}; available: {list(columns)}"
            )
    if weight_name is not None and weight_name in features:
        # A classifier trained on the weights separates the samples by them, not by physics.
        raise InputError(
            f"{path}: column {weight_name!r} is the event weight, so it cannot also be a "
            "feature; remove it from the feature names"
        )
    return list(features)


def columns_to_sample(
    columns: Columns,
    other: list[str],
    path: str,
    *,
    weight: str | None,
    features: Sequence[str] | None,
) -> EventSample:
    """Turn table columns into an EventSample by the weight and feature rules of this module."""
    w, weight_name = _choose_weight(columns, path, weight)
    names = _choose_features(columns, other, path, features, weight_name)
    x = np.stack([columns[n] for n in names], axis=1) if len(w) else np.zeros((0, len(names)))
    return EventSample(x, w, tuple(names), weight_name=weight_name, source=path)


def read_table(
    path: str | os.PathLike,
    kind: str,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
) -> EventSample:
    """Read a Parquet, CSV, HDF5 or NPZ table into an EventSample."""
    path = os.fspath(path)
    columns, other = load_columns(path, kind, tree)
    return columns_to_sample(columns, other, path, weight=weight, features=features)


def table_weight_names(path: str | os.PathLike, kind: str, tree: str | None = None) -> list[str]:
    """Return the numeric columns whose name contains "weight"."""
    if kind == "parquet":
        return [c for c in parquet_numeric_names(os.fspath(path)) if is_weight_like(c)]
    columns, _ = load_columns(os.fspath(path), kind, tree)
    return [c for c in columns if is_weight_like(c)]


def iter_table(
    path: str | os.PathLike,
    kind: str,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
    chunk_size: int = 100_000,
) -> Iterator[EventSample]:
    """Yield EventSamples of at most ``chunk_size`` rows in file order."""
    path = check_readable(path)
    chunks = column_chunks(path, kind, tree, chunk_size)
    while True:
        try:
            columns, other = next(chunks)
        except StopIteration:
            return
        except QuasiRatioError:
            raise
        except READ_ERRORS as exc:
            raise read_failure(path, exc, kind) from None
        sample = columns_to_sample(columns, other, path, weight=weight, features=features)
        features = list(sample.feature_names)
        # Later chunks name the weight the first one chose, which logs that choice only once.
        weight = sample.weight_name if weight is None else weight
        yield sample
