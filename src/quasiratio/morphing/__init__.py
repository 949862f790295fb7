"""EFT morphing: per-event quadratic weights w(c), joint ratios and scores.

:mod:`~quasiratio.morphing.basis` solves the per-event coefficients from
stored reweighting weights; :mod:`~quasiratio.morphing.samples` turns an
EFT LHE file into training samples for r(x | c), with optional jet
smearing.
"""

from quasiratio.morphing.basis import Morphing, parse_point
from quasiratio.morphing.samples import (
    VBF_FEATURES,
    draw_theta,
    parameterized_samples,
    read_morphed_events,
)

__all__ = [
    "Morphing",
    "VBF_FEATURES",
    "draw_theta",
    "parameterized_samples",
    "parse_point",
    "read_morphed_events",
]
