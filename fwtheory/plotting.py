"""Depth plots: correlators against layer, theory curves and Monte Carlo points.

One panel per quantity; each panel holds any number of :class:`Series`
(theory lines, Monte Carlo points with error bars, reference lines). The
figure is rendered with matplotlib's object API (``matplotlib.figure.Figure``
on the Agg canvas: no pyplot, no global state, no display needed) into PNG
bytes, which are then written atomically (:func:`fwtheory._io.atomic_write_bytes`).
matplotlib is imported only when a plot is made.
"""

__all__ = ["Series", "Panel", "render_panels", "write_panels", "figure_png", "ENSEMBLE_COLORS"]

import io
import math
from dataclasses import dataclass, field

import numpy as np

from ._io import atomic_write_bytes

ENSEMBLE_COLORS = {"gaussian": "tab:blue", "orthogonal": "tab:red"}


@dataclass
class Series:
    """One curve of a panel.

    ``style`` is ``"line"`` (theory), ``"points"`` (measurements; ``errors`` are
    drawn as 1-SE error bars; ``marker`` their symbol, hollow unless ``filled``), ``"hline"`` (a horizontal
    reference at ``values[0]``), ``"vline"`` (a vertical reference at
    ``layers[0]``) or ``"band"`` (a shaded layer range ``layers[0]``..``layers[1]``).
    """

    label: str
    layers: object
    values: object
    errors: object = None
    style: str = "line"
    color: str = None
    marker: str = "o"
    filled: bool = True


@dataclass
class Panel:
    """One axes: a title, a y-axis label and its series."""

    title: str
    ylabel: str
    series: list = field(default_factory=list)


def render_panels(panels, title=None, ncols=None, xlabel="layer $\\ell$", dpi=110):
    """Render ``panels`` to PNG bytes (a grid of ``ncols`` columns)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(len(panels), 1)
    ncols = ncols or min(n, 4 if n > 9 else 3 if n > 4 else n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.5 * nrows + (0.5 if title else 0.0)), dpi=dpi,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    with np.errstate(all="ignore"):     # non-finite points are dropped, not errors
        for ax, panel in zip(axes, panels):
            _draw(ax, panel, xlabel)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        if title:
            fig.suptitle(title, fontsize=11)
        return figure_png(fig)


def figure_png(fig, dpi=None):
    """The PNG bytes of a matplotlib figure (``dpi``: None = the figure's own)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_panels(path, panels, **kw):
    """Render ``panels`` and write the PNG to ``path`` atomically; return ``path``."""
    atomic_write_bytes(path, render_panels(panels, **kw))
    return path


def _finite(series):
    """(x, y, err) of a line/points series with the non-finite points dropped."""
    x = np.atleast_1d(np.asarray(series.layers, dtype=float))
    y = np.atleast_1d(np.asarray(series.values, dtype=float))
    keep = np.isfinite(x) & np.isfinite(y)
    err = None
    if series.errors is not None:
        err = np.atleast_1d(np.asarray(series.errors, dtype=float))
        keep &= np.isfinite(err)
        err = err[keep]
    return x[keep], y[keep], err


def _draw(ax, panel, xlabel):
    for s in panel.series:
        if s.style == "line":
            x, y, _ = _finite(s)
            ax.plot(x, y, "-", color=s.color, lw=1.6, label=s.label)
        elif s.style == "points":
            x, y, err = _finite(s)
            ax.errorbar(x, y, yerr=err, fmt=s.marker, ms=3.0 if s.filled else 4.0, color=s.color,
                        ecolor=s.color, mfc=None if s.filled else "none",
                        elinewidth=0.9, capsize=1.5, alpha=0.85, label=s.label)
        elif s.style == "hline":
            ax.axhline(float(np.ravel(s.values)[0]), ls="--", lw=1.0, color=s.color, alpha=0.7,
                       label=s.label)
        elif s.style == "vline":
            ax.axvline(float(np.ravel(s.layers)[0]), ls=":", lw=1.2, color=s.color, alpha=0.8,
                       label=s.label)
        elif s.style == "band":
            lo, hi = (float(v) for v in np.ravel(s.layers)[:2])
            ax.axvspan(lo, hi, color=s.color or "0.5", alpha=0.12, lw=0, label=s.label)
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown series style {s.style!r}")
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    if any(s.label for s in panel.series):
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
