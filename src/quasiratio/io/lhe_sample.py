"""LHE events as EventSamples: a chosen weight and features from the particle records."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from quasiratio.events import EventSample
from quasiratio.io.checks import check_weight_values
from quasiratio.io.features import lhe_features
from quasiratio.io.lhe import EVENT_WEIGHT, LHEEvents, iter_lhe, read_lhe


def sample_from_lhe(
    events: LHEEvents,
    *,
    source: str,
    weight: str | None = None,
    features: Sequence[str] | None = None,
) -> EventSample:
    """Build an EventSample from parsed LHE events, so one parse can serve several weights."""
    name = weight or EVENT_WEIGHT
    w = check_weight_values(events.weight(weight, source=source), name, source)
    x, names = lhe_features(events.particles, features)
    return EventSample(x, w, tuple(names), weight_name=name, source=source)


def read_lhe_sample(
    path: str | os.PathLike, *, weight: str | None = None, features: Sequence[str] | None = None
) -> EventSample:
    """Read an LHE file with the weight ``weight`` (XWGTUP when None)."""
    return sample_from_lhe(
        read_lhe(path), source=os.fspath(path), weight=weight, features=features
    )


def iter_lhe_samples(
    path: str | os.PathLike,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    chunk_size: int = 100_000,
) -> Iterator[EventSample]:
    """Yield EventSamples of an LHE file chunk by chunk, with the names of the first chunk."""
    for events in iter_lhe(path, chunk_size=chunk_size):
        sample = sample_from_lhe(events, source=os.fspath(path), weight=weight, features=features)
        features = list(sample.feature_names)
        yield sample
