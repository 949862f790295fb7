"""Input options shared by the subcommands, and the one way they read a sample.

Every subcommand spells its input options the same way:

- ``--numerator PATH`` / ``--denominator PATH`` for a pair of samples; a
  command that reads one file (inspect, reweight) takes it as a positional PATH,
- ``--numerator-weight NAME`` / ``--denominator-weight NAME``, or
  ``--weight NAME`` for the one file,
- ``--features NAME [NAME ...]`` (also comma-separated),
- ``--tree NAME`` for ROOT files and HDF5 groups,
- ``--negative-weights keep|drop|abs``.

This module imports no heavy package at import time, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: Roles of the two samples of a ratio, in the order the options are added.
ROLES = ("numerator", "denominator")

_WEIGHT_HELP = (
    "weight to use: an LHE weight id (default XWGTUP), a ROOT branch or product such as "
    "'genWeight * LHEScaleWeight[8]' (default genWeight), or a table column "
    "(default 'weight' or 'sample_weight')"
)


#: Largest seed that every random generator used by the commands accepts (numpy's MT19937).
MAX_SEED = 2**32 - 1


def seed_value(text: str) -> int:
    """Parse ``--seed``: an integer from 0 to :data:`MAX_SEED`, for argparse's ``type=``."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"invalid seed {text!r}; pass an integer from 0 to {MAX_SEED}"
        )
    return seed


def add_sample_arguments(
    parser: argparse.ArgumentParser, role: str, *, required: bool = True
) -> None:
    """Add ``--{role} PATH`` and ``--{role}-weight NAME``."""
    parser.add_argument(
        f"--{role}",
        metavar="PATH",
        required=required,
        help=f"{role} event file (.lhe, .lhe.gz, .root, .parquet, .h5, .npz, .csv)",
    )
    parser.add_argument(f"--{role}-weight", metavar="NAME", default=None, help=_WEIGHT_HELP)


def add_weight_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--weight NAME`` for commands that read one file."""
    parser.add_argument("--weight", metavar="NAME", default=None, help=_WEIGHT_HELP)


def add_feature_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--features``, ``--tree`` and ``--negative-weights``."""
    parser.add_argument(
        "--features",
        metavar="NAME",
        nargs="+",
        default=None,
        help="feature names (space- or comma-separated); default: the reader's default set",
    )
    add_tree_argument(parser)
    parser.add_argument(
        "--negative-weights",
        choices=("keep", "drop", "abs"),
        default="keep",
        help="negative-weight policy; drop and abs change the distribution (default: keep)",
    )


def add_tree_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--tree NAME``."""
    parser.add_argument(
        "--tree",
        metavar="NAME",
        default=None,
        help="ROOT TTree or HDF5 group to read (default: 'Events' or the only tree)",
    )


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the numerator and denominator options and the feature options."""
    for role in ROLES:
        add_sample_arguments(parser, role)
    add_feature_arguments(parser)


def parse_features(values: Sequence[str] | None) -> list[str] | None:
    """Split ``--features`` values on commas and spaces; None stays None."""
    if values is None:
        return None
    names = [name for value in values for name in value.replace(",", " ").split()]
    if not names:
        from quasiratio.errors import InputError

        raise InputError("--features names no feature; pass at least one name or leave it out")
    return names


def load_sample(
    path: str,
    *,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    tree: str | None = None,
    policy: str = "keep",
    positive_total: bool = False,
):
    """Read one sample as every subcommand does, logging its summary.

    With ``positive_total=True`` a sample whose weights sum to zero or less
    (or to a total tiny next to sum |w|) raises :class:`InputError`, as
    a denominator or any normalised sample needs a positive total.
    """
    from quasiratio.io import read_events

    sample = read_events(
        path, weight=weight, features=features, tree=tree, negative_weights=policy
    )
    summary = sample.summary()
    logger.info(
        "%s: %d events, weight %s, sum w = %.6g, sum |w| = %.6g, negative fraction %.4f, ESS %.1f",
        path,
        summary.events,
        sample.weight_name or "unit",
        summary.sum_weights,
        summary.sum_abs_weights,
        summary.negative_fraction,
        summary.effective_sample_size,
    )
    if positive_total:
        require_positive_total(sample)
    return sample


def require_positive_total(sample) -> None:
    """Raise :class:`InputError` unless the weights of ``sample`` sum to a positive total."""
    sample.normalized(1.0)


def load_pair(args: argparse.Namespace, *, denominator_positive: bool = True):
    """Read ``--numerator`` and ``--denominator`` with the shared options.

    Without ``--features`` each file gets its reader's default set; when
    those differ, both samples keep the names they share (the others are
    logged). Features that take disjoint values in the two samples warn
    with :class:`~quasiratio.io.features.FeatureLeakWarning`.
    """
    from quasiratio.errors import InputError
    from quasiratio.io.features import warn_disjoint_features

    features = parse_features(getattr(args, "features", None))
    samples = []
    for role in ROLES:
        samples.append(
            load_sample(
                getattr(args, role),
                weight=getattr(args, f"{role}_weight", None),
                features=features,
                tree=getattr(args, "tree", None),
                policy=getattr(args, "negative_weights", "keep"),
                positive_total=denominator_positive and role == "denominator",
            )
        )
    numerator, denominator = samples
    if numerator.feature_names != denominator.feature_names:
        shared = [n for n in numerator.feature_names if n in denominator.feature_names]
        if not shared:
            raise InputError(
                f"{numerator.source} and {denominator.source} share no feature name "
                f"({list(numerator.feature_names)} vs {list(denominator.feature_names)}); "
                "pass --features with names both files provide"
            )
        dropped = sorted(set(numerator.feature_names) ^ set(denominator.feature_names))
        if dropped:
            logger.warning(
                "features %s exist in only one of the two files; using the shared %s",
                dropped, shared,
            )
        numerator, denominator = numerator.select(shared), denominator.select(shared)
    warn_disjoint_features(numerator, denominator)
    return numerator, denominator
