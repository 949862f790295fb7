import numpy as np
import pytest

from quasiratio.errors import InputError
from quasiratio.events import EventSample, apply_negative_weight_policy, summarize_weights


def test_summary_of_signed_weights():
    w = np.array([2.0, -1.0, 1.0, 0.5])
    s = summarize_weights(w)
    assert s.events == 4
    assert s.sum_weights == pytest.approx(2.5)
    assert s.sum_abs_weights == pytest.approx(4.5)
    assert s.negative_fraction == pytest.approx(0.25)
    assert s.effective_sample_size == pytest.approx(2.5**2 / 6.25)
    assert s.max_weight_share == pytest.approx(2.0 / 4.5)


def test_nonfinite_feature_names_column():
    x = np.zeros((5, 2))
    x[1, 1] = np.nan
    x[3, 1] = np.inf
    with pytest.raises(InputError, match=r"'b' \(2 events\)"):
        EventSample.from_arrays(x, feature_names=["a", "b"])


def test_normalize_rejects_nonpositive_total():
    s = EventSample.from_arrays(np.zeros((2, 1)), np.array([1.0, -1.0]))
    with pytest.raises(InputError, match="sum to 0"):
        s.normalized(1.0)


def test_split_is_seeded_and_complete():
    s = EventSample.from_arrays(np.arange(100.0)[:, None])
    a = s.train_validation_test_split(0.2, 0.1, seed=3)
    b = s.train_validation_test_split(0.2, 0.1, seed=3)
    assert [len(p) for p in a] == [70, 20, 10]
    assert np.array_equal(a[1].x, b[1].x)
    joined = np.sort(np.concatenate([p.x[:, 0] for p in a]))
    assert np.array_equal(joined, np.arange(100.0))


def test_drop_policy_warns_and_removes():
    s = EventSample.from_arrays(np.zeros((4, 1)), np.array([1.0, -1.0, 2.0, -3.0]))
    with pytest.warns(UserWarning, match="no longer follows"):
        dropped = apply_negative_weight_policy(s, "drop")
    assert len(dropped) == 2
    assert apply_negative_weight_policy(s, "keep") is s
