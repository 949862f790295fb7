"""Checks shared by the readers, so every kind of file fails with the same messages."""

from __future__ import annotations

import numpy as np

from quasiratio.errors import InputError


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
