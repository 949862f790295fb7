"""Column loaders for each table format: Parquet and CSV (pyarrow), HDF5 (h5py), NPZ (numpy).

Each loader returns the numeric columns as float64 arrays keyed by name,
in file order, and the names of the other columns. The rules that pick the
weight and the features from them live in :mod:`quasiratio.io.tables`.
"""

from __future__ import annotations

import struct
import zipfile
import zlib

import numpy as np

from quasiratio.errors import FileFormatError, InputError, QuasiRatioError
from quasiratio.io.checks import check_readable

Columns = dict[str, np.ndarray]

# Exceptions that pyarrow, h5py and numpy raise on damaged files. h5py raises
# RuntimeError for a corrupt group, pyarrow NotImplementedError for an
# unknown encoding, and a corrupt size field can ask for more memory than exists.
READ_ERRORS = (
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


def read_failure(path: str, exc: BaseException, what: str) -> FileFormatError:
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return FileFormatError(
        f"{path}: not a readable {what} file ({text}); check or re-create the file"
    )


def arrow_columns(table, path: str) -> tuple[Columns, list[str]]:
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


def h5_columns(path: str, group_name: str | None, start: int = 0, stop: int | None = None):
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
            return _split_fields({n: data[n] for n in data.dtype.names}, path)
        return _split_fields(
            {k: v[start:stop] for k, v in datasets.items() if v.ndim == 1}, path
        )


def h5_length(path: str, group_name: str | None) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        group = f if group_name is None else f[group_name]
        lengths = {
            v.shape[0] for v in group.values() if isinstance(v, h5py.Dataset) and v.ndim >= 1
        }
    return max(lengths, default=0)


def _split_fields(arrays: dict, path: str) -> tuple[Columns, list[str]]:
    lengths = {str(name): len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise FileFormatError(
            f"{path}: columns have different lengths {lengths}; store one value per event "
            "in every column"
        )
    numeric: Columns = {}
    other = []
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind in "biuf":
            numeric[str(name)] = values.astype(np.float64)
        else:
            other.append(str(name))
    return numeric, other


def npz_columns(path: str) -> tuple[Columns, list[str]]:
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
    return _split_fields(columns, path)


def parquet_numeric_names(path: str) -> list[str]:
    """Return the numeric column names of a Parquet file from its schema alone."""
    import pyarrow.parquet as pq

    path = check_readable(path)
    try:
        schema = pq.read_schema(path)
    except READ_ERRORS as exc:
        raise read_failure(path, exc, "parquet") from None
    return [field.name for field in schema if _is_numeric_type(field.type)]


def _is_numeric_type(arrow_type) -> bool:
    """Return whether a column of this Arrow type is read as numbers.

    The null type counts: pyarrow gives it to a CSV column with no values
    (a header-only file, or a column left empty), which then reads as
    NaN and is reported by the NaN check with its name.
    """
    import pyarrow as pa

    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def arrow_batches(path: str, kind: str, chunk_size: int):
    if kind == "parquet":
        import pyarrow.parquet as pq

        # With pre-buffering on, pyarrow keeps read buffers across row groups,
        # so memory grows by about 30 MB per million events. Without it the
        # memory stays bounded by one chunk (measured with benchmarks/stream.py).
        parquet = pq.ParquetFile(path, pre_buffer=False)
        yield from parquet.iter_batches(batch_size=chunk_size)
        return
    import pyarrow.csv as pcsv

    for batch in pcsv.open_csv(path):
        for start in range(0, batch.num_rows, chunk_size):
            yield batch.slice(start, chunk_size)


def column_chunks(path: str, kind: str, tree: str | None, chunk_size: int):
    if kind in ("parquet", "csv"):
        import pyarrow as pa

        for batch in arrow_batches(path, kind, chunk_size):
            yield arrow_columns(pa.Table.from_batches([batch]), path)
    elif kind == "hdf5":
        n = h5_length(path, tree)
        for start in range(0, max(n, 1), chunk_size):
            yield h5_columns(path, tree, start, start + chunk_size)
    else:
        # NOTE: an NPZ member is decompressed whole on access, so NPZ input
        # is loaded once and only sliced; memory is not bounded by chunk_size.
        columns, other = npz_columns(path)
        n = len(next(iter(columns.values()))) if columns else 0
        for start in range(0, max(n, 1), chunk_size):
            yield {k: v[start : start + chunk_size] for k, v in columns.items()}, other


def load_columns(path: str, kind: str, tree: str | None = None) -> tuple[Columns, list[str]]:
    """Read every column of a table: numeric ones as float64 arrays, and the other names."""
    path = check_readable(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return arrow_columns(pq.read_table(path), path)
        if kind == "csv":
            import pyarrow.csv as pcsv

            return arrow_columns(pcsv.read_csv(path), path)
        if kind == "hdf5":
            return h5_columns(path, tree)
        return npz_columns(path)
    except QuasiRatioError:
        raise
    except READ_ERRORS as exc:
        raise read_failure(path, exc, kind) from None
