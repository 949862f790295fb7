"""Les Houches Event files (plain or gzipped), read through pylhe.

An LHE event carries the event weight XWGTUP and, in LHEF 3 files, named
weights in one of two syntaxes: ``<rwgt><wgt id="...">`` and a bare
``<weights>`` block whose values follow the order of the ids declared in
the header's ``<initrwgt>``. Both are read. When one event has both, the
named ``<rwgt>`` value of an id wins (pylhe 2.1 keeps it whatever the order
of the two blocks).

Rules the reader enforces, each with a :class:`FileFormatError` naming the
event index (counted from 0) and the ids:

- every event carries exactly the ids declared in ``<initrwgt>``; a file
  without ``<initrwgt>`` takes the ids of its first event as the declaration;
- the particle count in the event header equals the number of particle lines;
- a file that ends early (truncated XML or gzip stream) is an error, never
  a shorter sample.

Momenta and masses are in GeV, as written by the generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import operator
import os
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator

import awkward as ak
import numpy as np

from quasiratio.errors import FileFormatError, InputError, QuasiRatioError
from quasiratio.io.checks import check_readable

logger = logging.getLogger(__name__)

#: Name under which the per-event weight XWGTUP is offered next to the named weights.
EVENT_WEIGHT = "XWGTUP"

#: Per-particle fields kept from the LHE particle lines.
PARTICLE_FIELDS = ("pid", "status", "mother1", "mother2", "px", "py", "pz", "e", "m")

# Exceptions that pylhe 2.1, gzip and the XML parser raise on damaged input.
# pylhe indexes and converts fields without checks, so a damaged particle or
# weight line surfaces as IndexError, TypeError or AttributeError.
_PARSE_ERRORS = (
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    EOFError,
    OSError,
    zlib.error,
    ET.ParseError,
    UnicodeDecodeError,
    StopIteration,
)


@dataclasses.dataclass(frozen=True)
class LHEEvents:
    """Events of an LHE file as arrays.

    ``particles`` is a jagged awkward array of records with the fields of
    :data:`PARTICLE_FIELDS`, one list per event, in file order.
    ``weights`` maps ``"XWGTUP"`` and every named weight id to a float64
    array of one value per event. ``weight_ids`` lists the named ids in
    declaration order (``"XWGTUP"`` is not among them). ``first_index`` is
    the file index of the first event, for chunks of a longer file.
    """

    particles: ak.Array
    weights: dict[str, np.ndarray]
    weight_ids: tuple[str, ...]
    process_id: np.ndarray
    first_index: int = 0

    def __len__(self) -> int:
        return int(self.weights[EVENT_WEIGHT].shape[0])

    def weight(self, name: str | None, *, source: str) -> np.ndarray:
        """Return the weight array called ``name`` (XWGTUP when None)."""
        key = EVENT_WEIGHT if name is None else str(name)
        if key not in self.weights:
            raise InputError(
                f"{source}: unknown weight name {key!r}; choose one of: "
                f"{_preview([EVENT_WEIGHT, *self.weight_ids])}"
            )
        return self.weights[key]


def _preview(names: list[str], limit: int = 30) -> str:
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f", ... ({len(names)} in all)"
    return text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


@contextlib.contextmanager
def _lhe_errors(path: str) -> Iterator[None]:
    """Turn pylhe, gzip and XML failures into one-line :class:`FileFormatError`s.

    pylhe 2.1 reports an XML parse error as a RuntimeWarning and then stops
    yielding events, which would silently shorten a truncated file, so
    that warning is an error here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except QuasiRatioError:
            raise
        except _PARSE_ERRORS as exc:
            raise FileFormatError(
                f"{path}: not a readable LHE file ({_one_line(exc)}); "
                "check that the file is complete Les Houches XML (re-copy or regenerate it)"
            ) from None
    for record in caught:
        message = str(record.message)
        if issubclass(record.category, RuntimeWarning) and message.startswith("Parse Error"):
            raise FileFormatError(
                f"{path}: the LHE XML is malformed or truncated ({message[:200]}); "
                "re-copy or regenerate the file"
            )
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)


def _open(path: str):
    import pylhe

    return pylhe.LHEFile.fromfile(path, with_attributes=True, generator=True)


def _declared_ids(lhefile, path: str) -> list[str] | None:
    header = lhefile.header
    if header is None or not header.initrwgt.entries:
        return None
    ids = [str(i) for i in header.initrwgt.list_weights_ids()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise FileFormatError(
            f"{path}: <initrwgt> declares the weight ids {duplicates} more than once; "
            "fix the header so each id is declared once"
        )
    return ids


# LHEParticle attributes in the order of PARTICLE_FIELDS.
_PARTICLE_ATTRIBUTES = operator.attrgetter(
    "id", "status", "mother1", "mother2", "px", "py", "pz", "e", "m"
)


class _ChunkBuilder:
    """Collects events and turns them into one :class:`LHEEvents`.

    Each particle becomes one tuple of its fields, and the tuples become a
    (particles, fields) float64 matrix in one numpy call, which keeps the
    Python work per particle to one attribute lookup.
    """

    def __init__(self, ids: list[str] | None, first_index: int) -> None:
        self.ids = ids
        self.first_index = first_index
        self.counts: list[int] = []
        self.rows: list[tuple] = []
        self.xwgtup: list[float] = []
        self.process_id: list[int] = []
        self.named: list[tuple[float, ...]] = []
        self._id_set = None if ids is None else set(ids)
        self._getter = None if ids is None else _values_getter(ids)

    def add(self, event, index: int, path: str) -> None:
        info = event.eventinfo
        particles = event.particles
        if int(info.nparticles) != len(particles):
            raise FileFormatError(
                f"{path}: event index {index} declares {info.nparticles} particles but "
                f"lists {len(particles)}; repair or drop that event"
            )
        self._check_ids(event.weights, index, path)
        self.xwgtup.append(float(info.weight))
        self.process_id.append(int(info.pid))
        self.named.append(self._getter(event.weights))
        self.counts.append(len(particles))
        self.rows.extend(map(_PARTICLE_ATTRIBUTES, particles))

    def _check_ids(self, weights: dict, index: int, path: str) -> None:
        if self.ids is None:
            # No <initrwgt>: the first event fixes which ids every event carries.
            self.ids = [str(k) for k in weights]
            self._id_set = set(self.ids)
            self._getter = _values_getter(self.ids)
        if weights.keys() == self._id_set:
            return
        missing = [i for i in self.ids if i not in weights]
        extra = [str(k) for k in weights if k not in self._id_set]
        parts = []
        if missing:
            parts.append(f"lacks the declared weight ids {_preview(missing, 10)}")
        if extra:
            parts.append(f"carries the undeclared weight ids {_preview(extra, 10)}")
        raise FileFormatError(
            f"{path}: event index {index} {' and '.join(parts)}; every event must carry "
            "exactly the ids declared in <initrwgt>, so repair the file or its header"
        )

    def build(self) -> LHEEvents:
        n = len(self.counts)
        table = np.array(self.rows, dtype=np.float64).reshape(len(self.rows), len(PARTICLE_FIELDS))
        flat = {
            name: table[:, k].astype(np.int64) if name in _INT_FIELDS else table[:, k]
            for k, name in enumerate(PARTICLE_FIELDS)
        }
        particles = ak.unflatten(ak.zip(flat), np.asarray(self.counts, dtype=np.int64))
        ids = tuple(self.ids or ())
        named = np.array(self.named, dtype=np.float64).reshape(n, len(ids))
        weights = {EVENT_WEIGHT: np.asarray(self.xwgtup, dtype=np.float64)}
        weights.update({wid: named[:, k].copy() for k, wid in enumerate(ids)})
        return LHEEvents(
            particles=particles,
            weights=weights,
            weight_ids=ids,
            process_id=np.asarray(self.process_id, dtype=np.int64),
            first_index=self.first_index,
        )


def _values_getter(ids: list[str]):
    """Return a function mapping a weights dict to the tuple of its values in ``ids`` order."""
    if not ids:
        return lambda weights: ()
    if len(ids) == 1:
        return lambda weights: (weights[ids[0]],)
    return operator.itemgetter(*ids)


_INT_FIELDS = ("pid", "status", "mother1", "mother2")


def iter_lhe(path: str | os.PathLike, *, chunk_size: int = 100_000) -> Iterator[LHEEvents]:
    """Yield the events of an LHE file in chunks of at most ``chunk_size``, in file order.

    Memory stays bounded by one chunk because pylhe parses the XML
    incrementally. An empty event list still yields one empty chunk, so
    callers learn the declared weight ids.
    """
    if int(chunk_size) < 1:
        raise InputError(f"chunk_size={chunk_size} must be a positive number of events")
    path = check_readable(path)
    with _lhe_errors(path):
        lhefile = _open(path)
        ids = _declared_ids(lhefile, path)
        events = iter(lhefile.events)
    index = 0
    yielded = False
    while True:
        builder = _ChunkBuilder(ids, index)
        with _lhe_errors(path):
            for event in events:
                builder.add(event, index, path)
                index += 1
                if len(builder.counts) >= chunk_size:
                    break
        ids = builder.ids
        if not builder.counts and yielded:
            return
        yielded = True
        yield builder.build()
        if len(builder.counts) < chunk_size:
            return


def read_lhe(path: str | os.PathLike) -> LHEEvents:
    """Read every event of an LHE file into one :class:`LHEEvents`."""
    chunks = list(iter_lhe(path, chunk_size=1 << 62))
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    return LHEEvents(
        particles=ak.concatenate([c.particles for c in chunks]),
        weights={k: np.concatenate([c.weights[k] for c in chunks]) for k in first.weights},
        weight_ids=first.weight_ids,
        process_id=np.concatenate([c.process_id for c in chunks]),
    )


def read_lhe_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return every weight of an LHE file: ``"XWGTUP"`` and each named id.

    Each value is a float64 array with one entry per event, in file order.
    The named weights keep the declaration order of ``<initrwgt>``.
    """
    return dict(read_lhe(path).weights)


def lhe_weight_names(path: str | os.PathLike) -> list[str]:
    """Return ``"XWGTUP"`` followed by the named weight ids the file declares."""
    path = check_readable(path)
    with _lhe_errors(path):
        lhefile = _open(path)
        ids = _declared_ids(lhefile, path)
        if ids is None:
            first = next(iter(lhefile.events), None)
            ids = [] if first is None else [str(k) for k in first.weights]
    return [EVENT_WEIGHT, *ids]
