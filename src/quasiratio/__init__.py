"""quasiratio: neural likelihood-ratio estimation on weighted events.

Learns r(x) = q1(x) / p0(x) from two weighted Monte Carlo samples, where
the numerator may carry negative weights and may itself be negative
somewhere (a quasi-probability density such as an interference term).
"""

from quasiratio._version import __version__
from quasiratio.errors import InputError, QuasiRatioError
from quasiratio.events import EventSample, WeightSummary, summarize_weights

__all__ = [
    "EventSample",
    "InputError",
    "QuasiRatioError",
    "WeightSummary",
    "__version__",
    "load",
    "read_events",
    "summarize_weights",
]


def read_events(path, **options):
    """Read an event file into an :class:`EventSample`; see :func:`quasiratio.io.read_events`."""
    from quasiratio.io import read_events as _read_events

    return _read_events(path, **options)


def load(path):
    """Load a saved model directory; see :func:`quasiratio.estimators.load`."""
    from quasiratio.estimators import load as _load

    return _load(path)
