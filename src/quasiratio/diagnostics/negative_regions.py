"""Regions of feature space where a learned ratio is negative.

A signed target can be negative in a corner of several features while each
single-feature histogram looks positive. To find such corners, a shallow
decision tree is fitted to sign(r_hat) with |w| as sample weights. Each
leaf in which most of the |w| has r_hat < 0 becomes a region, described by
one interval per feature: the box of the cuts on the path to that leaf.
A shallow tree gives few boxes with simple bounds, and depth 3 can already
cut out a corner in up to three features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from quasiratio.errors import InputError


@dataclasses.dataclass(frozen=True)
class NegativeRegion:
    """A box of feature space in which the learned ratio is mostly negative.

    Attributes
    ----------
    bounds:
        Feature name -> (low, high) with low < x <= high. An open side is
        -inf or inf.
    events:
        Number of events in the box.
    negative_events:
        Number of those with r_hat < 0.
    weight_share:
        Share of all |w| that lies in the box.
    negative_share:
        Share of all |w r_hat| of negative-ratio events that lies in the box.
    purity:
        Share of the box's |w| on events with r_hat < 0.
    reweighted_sum:
        Sum of w r_hat over the box, that is the signed target yield the
        model puts there, in units of the input weights.
    """

    bounds: dict[str, tuple[float, float]]
    events: int
    negative_events: int
    weight_share: float
    negative_share: float
    purity: float
    reweighted_sum: float

    def contains(self, x: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Return a boolean mask of the rows of ``x`` inside the box."""
        x = np.asarray(x, dtype=np.float64)
        inside = np.ones(x.shape[0], dtype=bool)
        for name, (low, high) in self.bounds.items():
            column = x[:, list(feature_names).index(name)]
            inside &= (column > low) & (column <= high)
        return inside

    def to_dict(self) -> dict:
        """Return the region with open bounds as None, ready for ``json.dumps``."""
        data = dataclasses.asdict(self)
        data["bounds"] = {
            name: [None if np.isinf(low) else low, None if np.isinf(high) else high]
            for name, (low, high) in self.bounds.items()
        }
        return data


def _leaf_boxes(tree, n_features: int) -> dict[int, np.ndarray]:
    # Walk the fitted tree from the root. scikit-learn sends x[f] <= t left.
    boxes: dict[int, np.ndarray] = {}
    start = np.tile([-np.inf, np.inf], (n_features, 1))
    stack = [(0, start)]
    while stack:
        node, box = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == right:
            boxes[node] = box
            continue
        feature, threshold = tree.feature[node], tree.threshold[node]
        left_box, right_box = box.copy(), box.copy()
        left_box[feature, 1] = min(box[feature, 1], threshold)
        right_box[feature, 0] = max(box[feature, 0], threshold)
        stack.extend([(left, left_box), (right, right_box)])
    return boxes


def _check_inputs(x, ratio, sample_weight, feature_names):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    r_hat = np.asarray(ratio, dtype=np.float64).reshape(-1)
    weight = np.ones_like(r_hat) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if not x.shape[0] == r_hat.shape[0] == weight.shape[0]:
        raise InputError(
            f"{x.shape[0]} events, {r_hat.shape[0]} ratios and {weight.shape[0]} weights; "
            "pass one ratio and one weight per event"
        )
    if feature_names is None:
        feature_names = [f"x{i}" for i in range(x.shape[1])]
    if len(feature_names) != x.shape[1]:
        raise InputError(
            f"{x.shape[1]} feature columns but {len(feature_names)} feature names; "
            "pass one name per column"
        )
    return x, r_hat, weight, list(feature_names)


def find_negative_regions(
    x,
    ratio,
    sample_weight=None,
    feature_names: Sequence[str] | None = None,
    *,
    max_depth: int = 3,
    min_weight_fraction: float = 0.01,
    min_purity: float = 0.5,
    seed: int = 0,
) -> list[NegativeRegion]:
    """Find boxes of feature space where most events have a negative ratio.

    ``x``, ``ratio`` and ``sample_weight`` describe the events the ratio
    was evaluated on, normally the source. A tree of ``max_depth`` with
    leaves of at least ``min_weight_fraction`` of the total |w| is fitted
    to the label r_hat < 0. Leaves with ``purity`` of at least
    ``min_purity`` are returned, sorted by ``negative_share``, largest
    first. The list is empty when no event has a negative ratio.

    Signed weights enter as |w|, which is the weight each event has in
    locating the region. The signed yield is in ``reweighted_sum``.
    """
    from sklearn.tree import DecisionTreeClassifier

    x, r_hat, weight, names = _check_inputs(x, ratio, sample_weight, feature_names)
    negative = r_hat < 0
    if not negative.any():
        return []
    magnitude = np.abs(weight)
    if not magnitude.sum() > 0:
        raise InputError("every event weight is 0, so no region can be located; pass non-zero weights")
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_weight_fraction_leaf=min_weight_fraction, random_state=seed
    ).fit(x, negative, sample_weight=magnitude)

    leaf = tree.apply(x)
    size = int(leaf.max()) + 1
    leaf_weight = np.bincount(leaf, weights=magnitude, minlength=size)
    leaf_negative = np.bincount(leaf, weights=magnitude * negative, minlength=size)
    new_weight = weight * r_hat
    negative_mass = np.abs(new_weight) * negative
    # Guards the shares when every negative-ratio event has weight 0.
    negative_total = max(float(negative_mass.sum()), np.finfo(float).tiny)
    leaf_negative_mass = np.bincount(leaf, weights=negative_mass, minlength=size)
    leaf_sum = np.bincount(leaf, weights=new_weight, minlength=size)
    leaf_events = np.bincount(leaf, minlength=size)
    leaf_negative_events = np.bincount(leaf, weights=negative.astype(float), minlength=size)

    regions = []
    for node, box in _leaf_boxes(tree.tree_, x.shape[1]).items():
        if leaf_weight[node] == 0 or leaf_negative[node] / leaf_weight[node] < min_purity:
            continue
        bounds = {
            name: (float(low), float(high))
            for name, (low, high) in zip(names, box)
            if np.isfinite(low) or np.isfinite(high)
        }
        regions.append(
            NegativeRegion(
                bounds=bounds,
                events=int(leaf_events[node]),
                negative_events=int(round(leaf_negative_events[node])),
                weight_share=float(leaf_weight[node] / magnitude.sum()),
                negative_share=float(leaf_negative_mass[node] / negative_total),
                purity=float(leaf_negative[node] / leaf_weight[node]),
                reweighted_sum=float(leaf_sum[node]),
            )
        )
    return sorted(regions, key=lambda region: region.negative_share, reverse=True)
