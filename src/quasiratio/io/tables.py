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
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence

import numpy as np

from quasiratio.errors import FileFormatError, InputError, QuasiRatioError, UnusedWeightWarning
from quasiratio.events import EventSample
from quasiratio.io.checks import check_readable, check_weight_values

logger = logging.getLogger(__name__)

#: Column names taken as the weight when ``weight=None``, in order of preference.
DEFAULT_WEIGHT_COLUMNS = ("weight", "sample_weight")


def is_weight_like(name: str) -> bool:
    """Return whether a column name marks a weight (it contains "weight", any case)."""
    return "weight" in name.lower()


Columns = dict[str, np.ndarray]

# Exceptions that pyarrow, h5py and numpy raise on damaged files. h5py raises
# RuntimeError for a corrupt group, pyarrow NotImplementedError for an
# unknown encoding, and a corrupt size field can ask for more memory than exists.
_READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


def _fail(path: str, exc: BaseException, what: str) -> FileFormatError:
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return FileFormatError(
        f"{path}: not a readable {what} file ({text}); check or re-create the file"
    )


def _arrow_columns(table, path: str) -> tuple[Columns, list[str]]:
    import pyarrow as pa

    names = list(table.column_names)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FileFormatError(f"{path}: duplicate column names {duplicates}; rename them")
    numeric: Columns = {}
    other = []
    for name in names:
        column = table.column(name)
        if _is_numeric_type(column.type):
            numeric[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            other.append(name)
    return numeric, other


def _h5_columns(path: str, group_name: str | None, start: int = 0, stop: int | None = None):
    import h5py

    with h5py.File(path, "r") as f:
        group = f
        if group_name is not None:
            if group_name not in f or not isinstance(f[group_name], h5py.Group):
                groups = [k for k in f if isinstance(f[k], h5py.Group)]
                raise InputError(
                    f"{path}: no HDF5 group {group_name!r}; available groups: {groups}"
                )
            group = f[group_name]
        datasets = {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}
        compound = [k for k, v in datasets.items() if v.dtype.names]
        if len(datasets) == 1 and compound:
            data = datasets[compound[0]][start:stop]
            return _split_fields({n: data[n] for n in data.dtype.names})
        return _split_fields({k: v[start:stop] for k, v in datasets.items() if v.ndim == 1})


def _h5_length(path: str, group_name: str | None) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        group = f if group_name is None else f[group_name]
        lengths = {
            v.shape[0] for v in group.values() if isinstance(v, h5py.Dataset) and v.ndim >= 1
        }
    return max(lengths, default=0)


def _split_fields(arrays: dict) -> tuple[Columns, list[str]]:
    numeric: Columns = {}
    other = []
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind in "biuf":
            numeric[str(name)] = values.astype(np.float64)
        else:
            other.append(str(name))
    return numeric, other


def _npz_columns(path: str) -> tuple[Columns, list[str]]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    x = arrays.pop("x", None)
    names = arrays.pop("feature_names", None)
    columns = {k: v for k, v in arrays.items() if v.ndim == 1}
    if x is not None:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[:, None]
        labels = (
            [str(n) for n in names] if names is not None else [f"x{i}" for i in range(x.shape[1])]
        )
        if len(labels) != x.shape[1]:
            raise FileFormatError(
                f"{path}: 'feature_names' has {len(labels)} entries but 'x' has {x.shape[1]} "
                "columns; store one name per column"
            )
        columns = {**{n: x[:, i] for i, n in enumerate(labels)}, **columns}
    return _split_fields(columns)


def load_columns(path: str, kind: str, tree: str | None = None) -> tuple[Columns, list[str]]:
    """Read every column of a table: numeric ones as float64 arrays, and the other names."""
    path = check_readable(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return _arrow_columns(pq.read_table(path), path)
        if kind == "csv":
            import pyarrow.csv as pcsv

            return _arrow_columns(pcsv.read_csv(path), path)
        if kind == "hdf5":
            return _h5_columns(path, tree)
        return _npz_columns(path)
    except QuasiRatioError:
        raise
    except _READ_ERRORS as exc:
        raise _fail(path, exc, kind) from None


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
        return [c for c in _parquet_numeric_names(os.fspath(path)) if is_weight_like(c)]
    columns, _ = load_columns(os.fspath(path), kind, tree)
    return [c for c in columns if is_weight_like(c)]


def _parquet_numeric_names(path: str) -> list[str]:
    """Return the numeric column names of a Parquet file from its schema alone."""
    import pyarrow.parquet as pq

    path = check_readable(path)
    try:
        schema = pq.read_schema(path)
    except _READ_ERRORS as exc:
        raise _fail(path, exc, "parquet") from None
    return [field.name for field in schema if _is_numeric_type(field.type)]


def _is_numeric_type(arrow_type) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
    )


def _arrow_batches(path: str, kind: str, chunk_size: int):
    if kind == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        return
    import pyarrow.csv as pcsv

    for batch in pcsv.open_csv(path):
        for start in range(0, batch.num_rows, chunk_size):
            yield batch.slice(start, chunk_size)


def _column_chunks(path: str, kind: str, tree: str | None, chunk_size: int):
    if kind in ("parquet", "csv"):
        import pyarrow as pa

        for batch in _arrow_batches(path, kind, chunk_size):
            yield _arrow_columns(pa.Table.from_batches([batch]), path)
    elif kind == "hdf5":
        n = _h5_length(path, tree)
        for start in range(0, max(n, 1), chunk_size):
            yield _h5_columns(path, tree, start, start + chunk_size)
    else:
        # NOTE: an NPZ member is decompressed whole on access, so NPZ input
        # is loaded once and only sliced; memory is not bounded by chunk_size.
        columns, other = _npz_columns(path)
        n = len(next(iter(columns.values()))) if columns else 0
        for start in range(0, max(n, 1), chunk_size):
            yield {k: v[start : start + chunk_size] for k, v in columns.items()}, other


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
    chunks = _column_chunks(path, kind, tree, chunk_size)
    while True:
        try:
            columns, other = next(chunks)
        except StopIteration:
            return
        except QuasiRatioError:
            raise
        except _READ_ERRORS as exc:
            raise _fail(path, exc, kind) from None
        sample = columns_to_sample(columns, other, path, weight=weight, features=features)
        features = list(sample.feature_names)
        yield sample
