"""Histogram and isotonic calibration of a classifier, with signed weights.

A calibrator maps the classifier logit z to a calibrated probability
c(z), the weighted fraction of numerator events among all events with
that output, both classes normalised to a total of 1. Then
r = c / (1 - c) = W1 / W0, where W1 and W0 are the numerator and
denominator weight in the same bin or block. Calibration works on z
rather than s = sigmoid(z) because both orderings agree and z keeps its
resolution where s rounds to 1.

Signed weights. scikit-learn's ``IsotonicRegression`` (1.5) drops events
with w <= 0, which changes the distribution the sample describes. Here
events are first pooled by identical z per class, so an integer weight k
equals k copies of an event, and an event added with +w and -w cancels
before anything else is computed. Pool-adjacent-violators then runs on
weighted means, where a block's mean c = W1 / (W0 + W1) is defined only
when its total W0 + W1 is positive. The rule used here: a block stays
open, absorbing its right neighbour, until W0 > 0 and W0 + W1 > 0, and
adjacent blocks whose c decreases are pooled as usual. With positive
weights this equals ordinary PAVA, except that a top block of numerator
events only (c = 1, an infinite ratio) is pooled with its neighbour.
With W0 > 0 the ratio W1 / W0 of every block is finite, and negative
where numerator weight is negative on balance. The histogram
calibrator applies the same validity rule to its bins but, unlike the
isotonic one, is not monotone. The fit needs the denominator weights and the
total weight to be positive overall; otherwise no block can be valid.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quasiratio.errors import InputError

#: Accepted values of the ``calibration`` option of CARL.
CALIBRATIONS = (None, "histogram", "isotonic")


@dataclasses.dataclass(frozen=True, eq=False)
class Calibrator:
    """A fitted monotone map from the logit to the calibrated probability.

    For ``kind="histogram"`` ``knots`` are the interior bin edges in z
    and ``probability`` has one value per bin. For ``"isotonic"``
    ``knots`` are the z of each block's first and last event, and c is
    interpolated linearly between them, constant beyond the ends.
    """

    kind: str
    knots: np.ndarray
    probability: np.ndarray

    def calibrated_probability(self, logit: np.ndarray) -> np.ndarray:
        z = np.asarray(logit, dtype=np.float64)
        if self.kind == "histogram":
            return self.probability[np.searchsorted(self.knots, z, side="right")]
        return np.interp(z, self.knots, self.probability)

    def ratio(self, logit: np.ndarray) -> np.ndarray:
        """Calibrated ratio c / (1 - c), finite because every block has W0 > 0."""
        c = self.calibrated_probability(logit)
        return c / (1.0 - c)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "knots": self.knots.tolist(),
                "probability": self.probability.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> Calibrator:
        return cls(str(values["kind"]), np.asarray(values["knots"], dtype=np.float64),
                   np.asarray(values["probability"], dtype=np.float64))


def fit_calibrator(
    kind: str, logit: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, *, bins: int = 40
) -> Calibrator:
    """Fit a "histogram" (``bins`` quantile bins) or "isotonic" calibrator.

    ``y`` is 1 for numerator and 0 for denominator events. Each class is
    rescaled to a total weight of 1 here, so the caller's normalisation
    does not matter.
    """
    if kind not in ("histogram", "isotonic"):
        raise InputError(f"calibration {kind!r} is not one of ['histogram', 'isotonic']")
    z, w1, w0 = _pool_ties(logit, y, sample_weight)
    if kind == "histogram":
        return _fit_histogram(z, w1, w0, bins)
    return _fit_isotonic(z, w1, w0)


def _pool_ties(logit, y, sample_weight):
    """Sum the weights of each class per distinct logit, normalising each class to 1."""
    z = np.asarray(logit, dtype=np.float64).reshape(-1)
    y = np.asarray(y).reshape(-1)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if not len(z) == len(y) == len(w):
        raise InputError(f"calibration got {len(z)} logits, {len(y)} labels and {len(w)} "
                         "weights; pass one of each per event")
    numerator = y == 1
    totals = (float(w[numerator].sum()), float(w[~numerator].sum()))
    if not (totals[0] > 0 and totals[1] > 0):
        raise InputError(f"calibration needs a positive weight total in each class, got "
                         f"numerator {totals[0]:.4g} and denominator {totals[1]:.4g}")
    values, index = np.unique(z, return_inverse=True)
    w1 = np.bincount(index, weights=np.where(numerator, w, 0.0), minlength=len(values))
    w0 = np.bincount(index, weights=np.where(numerator, 0.0, w), minlength=len(values))
    keep = (w1 != 0) | (w0 != 0)
    return values[keep], w1[keep] / totals[0], w0[keep] / totals[1]


def _fit_histogram(z, w1, w0, bins: int) -> Calibrator:
    if not (isinstance(bins, int) and bins >= 1):
        raise InputError(f"bins={bins!r} must be an integer >= 1")
    # Quantile edges of the pooled |W0| + |W1|, so the bins have similar weights.
    mass = np.cumsum(np.abs(w1) + np.abs(w0))
    cuts = np.searchsorted(mass, mass[-1] * np.arange(1, bins) / bins, side="right")
    starts = np.unique(np.concatenate([[0], cuts[cuts < len(z)]]))
    starts = _merge_invalid(starts, np.add.reduceat(w1, starts), np.add.reduceat(w0, starts))
    s1, s0 = np.add.reduceat(w1, starts), np.add.reduceat(w0, starts)
    knots = 0.5 * (z[starts[1:] - 1] + z[starts[1:]])
    return Calibrator("histogram", knots, s1 / (s1 + s0))


def _merge_invalid(starts, s1, s0):
    """Join bins, left to right, until every bin has W0 > 0 and W0 + W1 > 0."""
    bins: list[list[float]] = []  # [W1, W0, start]
    for start, b1, b0 in zip(starts, s1, s0):
        if bins and not _valid(bins[-1]):
            bins[-1][0] += b1
            bins[-1][1] += b0
        else:
            bins.append([b1, b0, start])
    while len(bins) > 1 and not _valid(bins[-1]):
        b1, b0, _ = bins.pop()
        bins[-1][0] += b1
        bins[-1][1] += b0
    if not _valid(bins[-1]):
        raise InputError("histogram calibration failed: the denominator weights do not "
                         "sum to a positive value over all events")
    return np.asarray([b[2] for b in bins], dtype=np.int64)


def _fit_isotonic(z, w1, w0) -> Calibrator:
    """Pool adjacent violators with the signed-weight rule of the module docstring.

    NOTE: the loop runs in Python over distinct logits, about 1 s per
    10^6 of them; calibration sets are normally far smaller.
    """
    blocks: list[list[float]] = []  # [W1, W0, first index, last index]
    for i in range(len(z)):
        blocks.append([w1[i], w0[i], i, i])
        while len(blocks) > 1 and _should_pool(blocks[-2], blocks[-1]):
            b1, b0, _, last = blocks.pop()
            blocks[-1][0] += b1
            blocks[-1][1] += b0
            blocks[-1][3] = last
    # A trailing block that never became valid joins its left neighbour.
    while len(blocks) > 1 and (not _valid(blocks[-1]) or _should_pool(blocks[-2], blocks[-1])):
        b1, b0, _, last = blocks.pop()
        blocks[-1][0] += b1
        blocks[-1][1] += b0
        blocks[-1][3] = last
    if not _valid(blocks[-1]):
        raise InputError("isotonic calibration failed: the denominator weights do not sum "
                         "to a positive value over all events")
    knots = np.array([[z[b[2]], z[b[3]]] for b in blocks]).reshape(-1)
    probability = np.repeat([b[0] / (b[0] + b[1]) for b in blocks], 2)
    return Calibrator("isotonic", knots, probability)


def _valid(block) -> bool:
    return block[1] > 0 and block[0] + block[1] > 0


def _should_pool(left, right) -> bool:
    if not _valid(left) or not _valid(right):
        # An invalid left block absorbs its neighbour; an invalid right block
        # waits for more events unless the left one must take it now.
        return not _valid(left)
    return left[0] / (left[0] + left[1]) >= right[0] / (right[0] + right[1])


def reliability_plot(logit, y, sample_weight, *, calibrator=None, bins: int = 20, ax=None):
    """Plot the observed numerator fraction against the predicted one; return the axes.

    The prediction is sigmoid(z), or c(z) when ``calibrator`` is given.
    Bins are quantiles of the prediction. Each point is W1 / (W0 + W1)
    in its bin, with both classes normalised to 1, so the points of a
    calibrated classifier lie on the diagonal.
    """
    import matplotlib.pyplot as plt

    z, w1, w0 = _pool_ties(logit, y, sample_weight)
    predicted = calibrator.calibrated_probability(z) if calibrator else 1 / (1 + np.exp(-z))
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bins + 1)))
    index = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, len(edges) - 2)
    s1 = np.bincount(index, weights=w1, minlength=len(edges) - 1)
    s0 = np.bincount(index, weights=w0, minlength=len(edges) - 1)
    weight = np.bincount(index, weights=np.abs(w1) + np.abs(w0), minlength=len(edges) - 1)
    mean = np.bincount(index, weights=predicted * (np.abs(w1) + np.abs(w0)),
                       minlength=len(edges) - 1)
    filled = (weight > 0) & (s1 + s0 > 0)
    if ax is None:
        _, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    ax.plot(mean[filled] / weight[filled], s1[filled] / (s1 + s0)[filled], "o-",
            label="calibrated classifier" if calibrator else "classifier")
    ax.set_xlabel("predicted numerator fraction")
    ax.set_ylabel("observed numerator fraction")
    ax.legend()
    return ax
