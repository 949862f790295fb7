"""Exception and warning classes raised by quasiratio.

Every error that a user can cause with bad input derives from
:class:`QuasiRatioError`, so the command line can turn it into a one-line
message and a non-zero exit status instead of a traceback.
"""

from __future__ import annotations


class QuasiRatioError(Exception):
    """Base class of every error raised by quasiratio on bad input or state."""


class InputError(QuasiRatioError, ValueError):
    """Invalid user input: a value, an option, a shape or a weight column."""


class FileFormatError(InputError):
    """An event or table file that is missing, unreadable, truncated or malformed."""


class ModelFormatError(QuasiRatioError):
    """A saved model directory that is incomplete, tampered with or too new."""


class TrainingError(QuasiRatioError, RuntimeError):
    """Training that cannot go on, such as a non-finite loss."""


class MetricError(QuasiRatioError, ValueError):
    """A metric that is not defined for the weights it was given."""


class QuasiRatioWarning(UserWarning):
    """Base class of the warnings issued by quasiratio."""


class NegativeWeightWarning(QuasiRatioWarning):
    """Negative weights were changed or cannot be represented by the method."""


class UnusedWeightWarning(QuasiRatioWarning):
    """A weight column exists in the input but was not used."""


class ExtrapolationWarning(QuasiRatioWarning):
    """A ratio was evaluated outside the support seen in training."""


class SmallTotalWarning(QuasiRatioWarning):
    """A sum of signed weights is tiny next to the sum of their absolute values."""


class NormalizationWarning(QuasiRatioWarning):
    """A learned ratio does not average to 1 over the denominator sample."""
