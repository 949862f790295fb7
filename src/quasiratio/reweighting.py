"""Reweight event files with a learned ratio: w' = w r_hat(x), one row per event.

The output has the columns ``ratio``, ``weight`` and ``new_weight`` in file
order, written as Parquet, CSV or NPZ according to the extension of the
output path. :func:`reweight_file` either reads the whole input at once or
streams it in chunks of ``chunk_size`` events, so that memory is bounded by
the chunk size and not by the file. Both paths produce the same rows,
because every row depends only on its own event.

Outputs go to a temporary file next to the destination and are renamed
into place when complete, so an interrupted run leaves the previous
output or none.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from quasiratio._atomic import atomic_path
from quasiratio.errors import ExtrapolationWarning, InputError

logger = logging.getLogger(__name__)

#: Columns of a reweighting output, in order.
REWEIGHT_COLUMNS = ("ratio", "weight", "new_weight")

#: Output formats by file extension.
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".npz": "npz"}


@dataclasses.dataclass(frozen=True)
class ReweightSummary:
    """Totals of one reweighting run; sums are over all events in float64."""

    events: int
    chunks: int
    sum_weights: float
    sum_new_weights: float
    output: str
    #: Events with a feature outside the training range, where the ratio is extrapolated.
    outside_support: int = 0

    def to_dict(self) -> dict[str, float | int | str]:
        return dataclasses.asdict(self)


def reweight_sample(estimator, sample) -> dict[str, np.ndarray]:
    """Return the columns ``ratio``, ``weight`` and ``new_weight`` for an EventSample.

    The features are taken by the names the estimator was trained on, so
    a file with extra columns or another column order still works.
    """
    names = tuple(estimator.feature_names_)
    if tuple(sample.feature_names) != names:
        sample = sample.select(names)
    ratio = np.asarray(estimator.ratio(sample.x), dtype=np.float64)
    weight = sample.sample_weight
    return {"ratio": ratio, "weight": weight, "new_weight": weight * ratio}


def output_format(path: str | os.PathLike) -> str:
    """Return ``parquet``, ``csv`` or ``npz`` from the extension of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InputError(
            f"output file {str(path)!r} has extension {suffix!r}, which is not one of "
            f"{sorted(OUTPUT_FORMATS)}; name the output file with one of those"
        )
    return OUTPUT_FORMATS[suffix]


def reweight_file(
    estimator,
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    weight: str | None = None,
    chunk_size: int | None = None,
    **read_options,
) -> ReweightSummary:
    """Reweight every event of ``path`` and write the rows to ``output``.

    With ``chunk_size`` the input is streamed through
    :func:`quasiratio.io.iter_events` and each chunk is appended to the
    output as it is computed; without it the file is read at once with
    :func:`quasiratio.io.read_events`. ``read_options`` (``tree``,
    ``negative_weights``) go to the reader.
    """
    from quasiratio import io

    fmt = output_format(output)
    _check_distinct(path, output)
    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"chunk size {chunk_size} must be a positive number of events")
    options = dict(read_options, weight=weight, features=list(estimator.feature_names_))
    if chunk_size is None:
        chunks: Iterable = [io.read_events(path, **options)]
    else:
        chunks = io.iter_events(path, chunk_size=chunk_size, **options)
    return write_rows(estimator, chunks, output, fmt=fmt)


def _check_distinct(path: str | os.PathLike, output: str | os.PathLike) -> None:
    """Reject an output that names the input file, which the rename would destroy."""
    output, path = Path(output), Path(path)
    linked = output.exists() and path.exists() and os.path.samefile(output, path)
    if linked or output.resolve() == path.resolve():
        raise InputError(
            f"output file {str(output)!r} is the input event file; write the reweighted "
            "rows to another file"
        )


def write_rows(
    estimator, samples: Iterable, output: str | os.PathLike, *, fmt: str
) -> ReweightSummary:
    """Reweight a stream of samples and append the rows to ``output`` atomically."""
    events = chunks = outside = 0
    sum_w = sum_new = 0.0
    with atomic_path(output) as tmp:
        writer = open_table_writer(tmp, fmt)
        try:
            for columns, block_outside in _reweighted_blocks(estimator, samples):
                writer.write(columns)
                outside += block_outside
                events += len(columns["ratio"])
                chunks += 1
                sum_w += float(np.sum(columns["weight"]))
                sum_new += float(np.sum(columns["new_weight"]))
                logger.debug("reweighted %d events so far", events)
        finally:
            writer.close()
    logger.info("wrote %d reweighted events to %s", events, output)
    if outside:
        warnings.warn(
            f"{outside} of {events} events have a feature outside the training range, so "
            "their ratios are extrapolations of the network; check the feature units",
            ExtrapolationWarning,
            stacklevel=3,
        )
    return ReweightSummary(events, chunks, sum_w, sum_new, str(output), outside)


def _reweighted_blocks(
    estimator, samples: Iterable
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Yield output columns and the count of events outside the training range, per block.

    The network output for an event can differ in the last bit with the
    size of the batch it is evaluated in, because matrix products pick
    their kernels by shape. ``estimator.ratio`` evaluates an array in
    chunks of ``estimator.chunk_size`` from its start, so the events are
    passed on in whole multiples of that size (and the rest at the end).
    Every event then meets the same batch as when the whole file is
    evaluated at once, which makes streamed and in-memory outputs equal.
    """
    block = int(estimator.chunk_size)
    names = tuple(estimator.feature_names_)
    x_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    pending = 0
    emitted = False
    for sample in samples:
        if tuple(sample.feature_names) != names:
            sample = sample.select(names)
        x_parts.append(sample.x)
        w_parts.append(sample.sample_weight)
        pending += len(sample)
        if pending < block:
            continue
        x, w = np.concatenate(x_parts), np.concatenate(w_parts)
        ready = pending - pending % block
        yield _columns(estimator, x[:ready], w[:ready])
        emitted = True
        x_parts, w_parts, pending = [x[ready:]], [w[ready:]], pending - ready
    if pending or not emitted:
        width = len(names)
        x = np.concatenate(x_parts) if x_parts else np.zeros((0, width))
        w = np.concatenate(w_parts) if w_parts else np.zeros(0)
        yield _columns(estimator, x, w)


def _columns(estimator, x: np.ndarray, weight: np.ndarray):
    if not len(x):
        return {"ratio": np.zeros(0), "weight": weight, "new_weight": np.zeros(0)}, 0
    ratio = np.asarray(estimator.ratio(x), dtype=np.float64)
    outside = estimator.outside_support(x)
    infinite = ~np.isfinite(ratio)
    if infinite.any():
        raise InputError(
            f"{int(infinite.sum())} events get an infinite ratio, {int(outside.sum())} lie "
            "outside the training range, so the network extrapolates there; check the "
            "feature units or remove those events"
        )
    columns = {"ratio": ratio, "weight": weight, "new_weight": weight * ratio}
    return columns, int(outside.sum())


def write_table(path: str | os.PathLike, columns: Mapping[str, np.ndarray]) -> None:
    """Write equally long float64 columns to ``path`` atomically, format by extension."""
    fmt = output_format(path)
    with atomic_path(path) as tmp:
        writer = open_table_writer(tmp, fmt)
        try:
            writer.write(columns)
        finally:
            writer.close()


def open_table_writer(path: Path, fmt: str):
    """Open an append-only writer of float64 columns in the format ``fmt``."""
    writers = {"parquet": _ParquetWriter, "csv": _CsvWriter, "npz": _NpzWriter}
    return writers[fmt](Path(path))


def _arrow_table(columns: Mapping[str, np.ndarray]):
    import pyarrow as pa

    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    return pa.table(arrays)


class _ParquetWriter:
    """Appends each write as one Parquet row group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = None

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        import pyarrow.parquet as pq

        table = _arrow_table(columns)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _CsvWriter:
    """Appends rows to a CSV file; floats are written in shortest round-trip form."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sink = None
        self._writer = None

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        import pyarrow.csv as pcsv

        table = _arrow_table(columns)
        if self._writer is None:
            self._sink = open(self.path, "wb")
            options = pcsv.WriteOptions(quoting_header="none")
            self._writer = pcsv.CSVWriter(self._sink, table.schema, write_options=options)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None


class _NpzWriter:
    """Spools each column to a raw float64 file, then packs them into an ``.npz`` zip.

    An ``.npz`` entry needs its length in the header before the data, so
    the columns are collected on disk (not in memory) until ``close``,
    which streams them into the zip with a standard ``.npy`` header each.

    NOTE: a process killed before ``close`` leaves the hidden spool folder
    ``.<stem>.*`` next to the output, as it leaves the temporary output
    file. Neither has the output's name, so neither is taken for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._spool = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
        self._names: list[str] = []
        self._rows = 0

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        if not self._names:
            self._names = list(columns)
        for name in self._names:
            values = np.ascontiguousarray(columns[name], dtype="<f8")
            with open(self._spool / name, "ab") as raw:
                raw.write(values.tobytes())
        self._rows += len(next(iter(columns.values())))

    def close(self) -> None:
        if self._spool is None:
            return
        try:
            self._pack()
        finally:
            for name in self._names:
                (self._spool / name).unlink(missing_ok=True)
            self._spool.rmdir()
            self._spool = None

    def _pack(self) -> None:
        header = {"descr": "<f8", "fortran_order": False, "shape": (self._rows,)}
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in self._names:
                with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array_header_1_0(entry, header)
                    _copy_file(self._spool / name, entry)


def _copy_file(source: Path, sink, block: int = 1 << 22) -> None:
    with open(source, "rb") as raw:
        while data := raw.read(block):
            sink.write(data)
