"""The ``fwtheory deconv`` report: NTK-diagonal images per regime, border profiles, depth,
learning rates and kernel descent (definitions in :mod:`fwtheory.deconv.diagnostics`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..activations import Activation

__all__ = ["DeconvReport", "deconv_report", "write_report"]

from dataclasses import dataclass, field

import numpy as np

from ..activations import get_activation
from ..errors import ParameterError
from .diagnostics import (border_amplitude, checkerboard_amplitude, depth_study, fit_study, learning_rate_study,
                          regime_settings)
from .geometry import Architecture
from .theory import deconv_kernels


@dataclass(frozen=True)
class DeconvReport:
    """Diagnostics of one architecture in the ordered, critical and chaotic regimes.

    ``images[regime][parametrization]``: NTK diagonal on the d-D output grid;
    ``summary``: list of dict rows (regime, parametrization, amplitudes, dominance,
    condition numbers, kernel-descent checkerboard content).
    """

    activation: str
    C_b: float
    architecture: dict
    regimes: dict
    images: dict = field(repr=False)
    summary: list = field(repr=False)
    depth: dict = field(repr=False)
    learning_rates: dict = field(repr=False)

    def __repr__(self):
        return (f"DeconvReport({self.activation}, C_b={self.C_b:g}, {self.architecture['dim']}-D, sides "
                f"{self.architecture['sides']}, regimes {', '.join(f'{k} C_W={v:.4g}' for k, v in self.regimes.items())})")

    def to_dict(self):
        return {"activation": self.activation, "C_b": self.C_b, "architecture": self.architecture,
                "regimes": self.regimes, "summary": self.summary, "depth": self.depth,
                "learning_rates": self.learning_rates,
                "ntk_diagonal": {r: {p: np.asarray(v).tolist() for p, v in d.items()} for r, d in self.images.items()}}


def deconv_report(activation: str | Activation = "tanh", C_b: float = 0.1, dim: int = 2, input_side: int = 4,
                  depth: int = 4, stride: int = 2, filter: int = 4, padding: int | None = None,
                  parametrization: str = "zero-padding", max_depth: int = 6,
                  C_W: Mapping[str, float] | None = None) -> DeconvReport:
    """Compute the report. ``C_W``: dict {regime: C_W} (default: 0.6, 1, 1.6 times the edge of chaos).

    Images use the diagonal recursion on the ``dim``-D grid; the full-matrix
    diagnostics (dominance, condition numbers, learning rates, kernel descent) use
    the 1-D network of the same stride, filter and depth (small matrices).
    """
    act = get_activation(activation)
    regimes = dict(C_W) if C_W is not None else regime_settings(act, C_b)
    base = dict(stride=stride, filter=filter, padding=padding)
    arch = Architecture.build(dim=dim, input_side=input_side, depth=depth, parametrization=parametrization, **base)
    pars = [parametrization] + [p for p in ("zero-padding", "graph") if p != parametrization]
    images, summary, depth_rows, lr = {}, [], {}, {}
    for reg, cw in regimes.items():
        images[reg] = {}
        for par in pars:
            a = Architecture.build(dim=dim, input_side=input_side, depth=depth, parametrization=par, **base)
            d = deconv_kernels(act, a, C_b=C_b, C_W=cw, full=False).ntk_diagonal
            images[reg][par] = d
            fs = fit_study(act, cw, C_b, dim=1, input_side=4, depth=depth, parametrization=par, **base)
            summary.append({"regime": reg, "parametrization": par, "C_W": cw,
                            "checkerboard": checkerboard_amplitude(d, stride), "border": border_amplitude(d),
                            "dominance_1d": fs["dominance"], "cond_1d": fs["condition_number"],
                            "cb_target": fs["cb_target"], "cb_fit_half": fs["cb_at_half"]})
            try:
                depth_rows[f"{reg}/{par}"] = depth_study(act, cw, C_b, range(1, max_depth + 1), dim=dim,
                                                         input_side=input_side, parametrization=par, **base)
            except ParameterError as exc:
                if exc.parameter != "depth":
                    raise
                raise ParameterError("max_depth", f"too deep for this grid ({exc})") from None
        lr[reg] = learning_rate_study(act, cw, C_b, dim=1, input_side=4, depth=depth, parametrization=parametrization,
                                      **base)
    return DeconvReport(act.name, float(C_b), arch.to_dict(), regimes, images, summary, depth_rows, lr)


def _render(rep, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    regs = list(rep.images)
    pars = list(rep.images[regs[0]])
    fig = Figure(figsize=(3.2 * len(regs) + 4.2, 3.0 * len(pars)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(len(pars), len(regs) + 1)
    for i, par in enumerate(pars):
        for j, reg in enumerate(regs):
            ax = fig.add_subplot(gs[i, j])
            img = np.asarray(rep.images[reg][par])
            if img.ndim == 1:
                ax.plot(img, "-", lw=1.2)
            else:
                im = ax.imshow(img / img.max(), cmap="viridis", vmin=0.0, vmax=1.0)
                if j == len(regs) - 1:
                    fig.colorbar(im, ax=ax, shrink=0.8, label=r"$\Theta(o,o)/\max$")
            ax.set_title(f"{reg} (C_W={rep.regimes[reg]:.3g}), {par}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    bx = fig.add_subplot(gs[:, -1])
    style = {"ordered": "tab:blue", "critical": "k", "chaotic": "tab:red"}
    for reg in regs:
        for par, ls in zip(pars, ("-", "--")):
            img = np.asarray(rep.images[reg][par])
            prof = img if img.ndim == 1 else img[img.shape[0] // 2]
            bx.plot(prof / prof.max(), ls, color=style.get(reg), lw=1.3, label=f"{reg}, {par}")
    bx.set_xlabel("output location (middle row)")
    bx.set_ylabel(r"$\Theta(o,o)/\max$")
    bx.set_title("border profile", fontsize=9)
    bx.legend(fontsize=6)
    bx.grid(True, alpha=0.3)
    from ..plotting import figure_png

    return figure_png(fig)


def write_report(rep, out_dir=".", stem="deconv"):
    """Write ``deconv.png`` and ``deconv.json`` atomically into ``out_dir``; return both paths."""
    from .._io import check_output_dir, write_png_and_json

    check_output_dir(out_dir, "out_dir")
    return write_png_and_json(out_dir, stem, _render(rep), rep.to_dict())
