"""Shared CLI input helpers: option names, feature parsing and reading a pair of samples."""

import argparse

import numpy as np
import pytest

from quasiratio.cli._common import add_pair_arguments, load_pair, load_sample, parse_features
from quasiratio.errors import InputError, NegativeWeightWarning
from quasiratio.io.features import FeatureLeakWarning


def write_csv(path, columns):
    names = list(columns)
    rows = np.stack([np.asarray(columns[n], dtype=float) for n in names], axis=1)
    path.write_text(
        ",".join(names) + "\n" + "\n".join(",".join(map(repr, r)) for r in rows.tolist()) + "\n"
    )
    return str(path)


def pair_args(argv):
    parser = argparse.ArgumentParser()
    add_pair_arguments(parser)
    return parser.parse_args(argv)


def test_pair_options_parse():
    args = pair_args(
        [
            "--numerator",
            "n.csv",
            "--denominator",
            "d.csv",
            "--numerator-weight",
            "genWeight * LHEScaleWeight[8]",
            "--features",
            "a,b",
            "c",
            "--negative-weights",
            "drop",
            "--tree",
            "Events",
        ]
    )
    assert args.numerator_weight == "genWeight * LHEScaleWeight[8]"
    assert args.denominator_weight is None
    assert parse_features(args.features) == ["a", "b", "c"]
    assert args.negative_weights == "drop"
    assert args.tree == "Events"


def test_parse_features_rejects_empty():
    assert parse_features(None) is None
    with pytest.raises(InputError, match="--features names no feature"):
        parse_features([",", " "])


def test_load_pair_keeps_shared_features(tmp_path):
    num = write_csv(tmp_path / "n.csv", {"a": [1, 2, 3], "b": [0, 1, 0], "weight": [1, -1, 2]})
    den = write_csv(tmp_path / "d.csv", {"a": [2, 3, 1], "c": [5, 5, 6], "weight": [1, 1, 1]})
    numerator, denominator = load_pair(pair_args(["--numerator", num, "--denominator", den]))
    assert numerator.feature_names == ("a",)
    assert denominator.feature_names == ("a",)
    assert numerator.sample_weight.tolist() == [1.0, -1.0, 2.0]


def test_load_pair_warns_on_convention_leak(tmp_path):
    num = write_csv(tmp_path / "n.csv", {"a": [1, 2, 3], "m": [0.33, 0.33, 0.33]})
    den = write_csv(tmp_path / "d.csv", {"a": [2, 3, 1], "m": [0.0, 0.0, 0.0]})
    with pytest.warns(FeatureLeakWarning, match=r"\['m'\]"):
        load_pair(pair_args(["--numerator", num, "--denominator", den]))


def test_denominator_needs_positive_total(tmp_path):
    num = write_csv(tmp_path / "n.csv", {"a": [1, 2], "weight": [1, 1]})
    den = write_csv(tmp_path / "d.csv", {"a": [1, 2], "weight": [1, -1]})
    with pytest.raises(InputError, match=r"d\.csv: the weights sum to 0"):
        load_pair(pair_args(["--numerator", num, "--denominator", den]))


def test_load_sample_policy_warns(tmp_path):
    path = write_csv(tmp_path / "s.csv", {"a": [1, 2, 3, 4], "weight": [1, -1, 2, 2]})
    with pytest.warns(NegativeWeightWarning, match="'drop' changes 25.0% of the events"):
        sample = load_sample(path, policy="drop")
    assert sample.sample_weight.tolist() == [1.0, 2.0, 2.0]
