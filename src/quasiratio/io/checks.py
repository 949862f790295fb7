"""Checks shared by the readers, so every kind of file fails with the same messages."""

from __future__ import annotations

import os

import numpy as np

from quasiratio.errors import FileFormatError, InputError


def check_readable(path: str | os.PathLike) -> str:
    """Return ``path`` as a string, raising :class:`FileFormatError` if it is missing or empty."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileFormatError(f"{path}: file not found; check the path")
    if os.path.isdir(path):
        raise FileFormatError(f"{path}: is a directory, not an event file; pass a file")
    if os.path.getsize(path) == 0:
        raise FileFormatError(f"{path}: file is empty (0 bytes); regenerate or re-copy it")
    return path


def check_weight_values(values: np.ndarray, name: str, source: str) -> np.ndarray:
    """Return ``values`` as float64, raising :class:`InputError` on NaN or infinite entries."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{source}: weight {name!r} has {int(bad.sum())} NaN or infinite values "
            f"(first at event index {first}); repair or remove those events"
        )
    return values
