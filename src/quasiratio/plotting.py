"""Shared plotting helpers in the style of particle-physics publications.

matplotlib and mplhep are imported inside the functions, so importing this
module costs nothing. Figures are built as ``matplotlib.figure.Figure``
objects without pyplot, so they render with the Agg canvas and never touch
the user's interactive backend. Histograms are drawn as steps with
sum-of-w^2 error bands, and negative bin contents are drawn as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

#: Colours of the unweighted source, the reweighted source and the target.
COLORS = {"source": "#7a7a7a", "reweighted": "#e24a33", "target": "#1f5aa6"}


@contextlib.contextmanager
def hep_style() -> Iterator[None]:
    """Apply the ROOT-like style of mplhep inside the block.

    Falls back to matplotlib's defaults when mplhep is not
    installed, so reports still render.
    """
    import matplotlib

    try:
        import mplhep
    except ImportError:
        style: dict = {}
    else:
        style = dict(mplhep.style.ROOT)
    style.update({"figure.dpi": 100, "savefig.bbox": "tight"})
    with matplotlib.rc_context(style):
        yield


def new_figure(*, ratio_panel: bool = False, size: tuple[float, float] = (8.0, 7.0)):
    """Return a figure and its axes; with ``ratio_panel`` a main panel and a ratio panel below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    if not ratio_panel:
        return figure, figure.add_subplot()
    main, lower = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05}
    )
    return figure, (main, lower)


def draw_histogram(ax, values, variances, edges, *, label: str, color: str) -> None:
    """Draw bin contents as steps with a +-1 sigma band of sqrt(sum w^2)."""
    error = np.sqrt(variances)
    ax.stairs(values, edges, label=label, color=color, linewidth=1.6)
    ax.stairs(values + error, edges, baseline=values - error, fill=True, color=color, alpha=0.25)


def draw_ratio(ax, values, variances, reference, edges, *, color: str) -> None:
    """Draw values / reference with the band of the numerator's error.

    Bins where the reference is not positive are left empty, because a
    ratio to a zero or negative bin has no meaning as a closure check.
    """
    shown = reference > 0
    scale = np.divide(1.0, reference, out=np.zeros_like(reference), where=shown)
    ratio = np.where(shown, values * scale, np.nan)
    error = np.where(shown, np.sqrt(variances) * scale, np.nan)
    ax.stairs(ratio, edges, color=color, linewidth=1.4)
    ax.stairs(ratio + error, edges, baseline=ratio - error, fill=True, color=color, alpha=0.25)


def comparison_figure(
    histograms: Sequence[tuple[str, np.ndarray, np.ndarray, str]],
    reference: tuple[np.ndarray, np.ndarray],
    edges: np.ndarray,
    *,
    xlabel: str,
    ylabel: str = "fraction per bin",
    ratio_label: str = "ratio to target",
):
    """Build a figure comparing histograms, with a lower panel of each divided by ``reference``.

    ``histograms`` contains (label, values, variances, colour) tuples in drawing
    order; ``reference`` is the (values, variances) of the target.
    """
    figure, (main, lower) = new_figure(ratio_panel=True)
    for label, values, variances, color in histograms:
        draw_histogram(main, values, variances, edges, label=label, color=color)
        draw_ratio(lower, values, variances, reference[0], edges, color=color)
    main.axhline(0.0, color="black", linewidth=0.6)
    main.set_ylabel(ylabel)
    main.legend()
    lower.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    # Centred, so that it does not run into the top-aligned label above it.
    lower.set_ylabel(ratio_label, loc="center", fontsize="small")
    lower.set_xlabel(xlabel)
    lower.set_ylim(0.5, 1.5)
    # Inner ticks only: the 1.5 label would sit on the 0 label of the main panel.
    lower.set_yticks([0.75, 1.0, 1.25])
    figure.align_ylabels([main, lower])
    return figure


def ratio_distribution_figure(ratio: np.ndarray, truth: np.ndarray | None = None, *, bins: int = 100):
    """Build a histogram of the learned ratio per event, with the true ratio if known."""
    figure, ax = new_figure(size=(8.0, 5.5))
    values = [ratio] if truth is None else [ratio, truth]
    low = min(float(np.min(v)) for v in values)
    high = max(float(np.max(v)) for v in values)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    ax.hist(ratio, bins=edges, histtype="step", color=COLORS["reweighted"], label=r"learned $\hat r$")
    if truth is not None:
        ax.hist(
            truth, bins=edges, histtype="step", color=COLORS["target"], linestyle="--",
            label="true r",
        )
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel("ratio per source event")
    ax.set_ylabel("events")
    ax.legend()
    return figure


def loss_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]):
    """Build the training (solid) and validation (dashed) loss per epoch of each network.

    ``curves`` maps a network name to its (training, validation) losses.
    The name is left out of the legend when there is one network only.
    """
    figure, ax = new_figure(size=(8.0, 5.5))
    for index, (name, (train_loss, validation_loss)) in enumerate(curves.items()):
        color = f"C{index}"
        prefix = f"{name}: " if len(curves) > 1 else ""
        ax.plot(np.arange(1, len(train_loss) + 1), train_loss, color=color, label=f"{prefix}training")
        if len(validation_loss):
            ax.plot(
                np.arange(1, len(validation_loss) + 1), validation_loss,
                color=color, linestyle="--", label=f"{prefix}validation",
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("weighted loss")
    ax.legend()
    return figure
