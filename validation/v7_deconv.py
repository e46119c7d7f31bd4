"""Validation 7: the deconvolutional-network claims of Jacot, Gabriel, Ged, Hongler (arXiv:1907.05715) as numbers.

Usage::

    python validation/v7_deconv.py [--out-dir DIR]

tanh, C_b = 0.1, stride 2, filter 4, at C_W = 0.6, 1, 1.6 times the edge of chaos
(ordered, critical, chaotic). Measured (definitions: fwtheory.deconv.diagnostics,
docs/deconv.md):

1. checkerboard against depth per regime: the checkerboard amplitude of the NTK
   diagonal (variation modulo the stride; also for filter 3, where s does not divide
   f) and the checkerboard dominance of the full 1-D NTK, depths 1..6;
2. border artifact amplitude with zero padding and with the graph parametrization
   (2-D, depth 4);
3. the NTK condition number with the uniform, the trace-balanced and the optimal
   layer-dependent learning rate (1-D, depth 4);
4. kernel gradient descent toward a smooth target plus noise: checkerboard content
   of the fit at half loss against the target's (1-D, depth 4 from 4 locations and
   depth 6 from 1 location).

Writes v7_deconv.json and v7_deconv.png into DIR and prints, per claim, the numbers
and whether they support it (criteria stated in the output; nothing is tuned).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from fwtheory.deconv.diagnostics import (border_amplitude, checkerboard_amplitude, checkerboard_dominance,
                                         depth_study, fit_study, learning_rate_study, regime_settings)
from fwtheory.deconv.theory import deconv_kernels


def run(out_dir="."):
    t0 = time.time()
    act, C_b = "tanh", 0.1
    regimes = regime_settings(act, C_b)
    res = {"activation": act, "C_b": C_b, "regimes": regimes, "stride": 2}
    depths = list(range(1, 7))
    # 1. checkerboard vs depth
    cb = {}
    for reg, cw in regimes.items():
        dom = []
        for L in depths:
            r = deconv_kernels(act, C_b=C_b, C_W=cw, dim=1, input_side=2, depth=L)
            dom.append(checkerboard_dominance(r.Theta[-1], r.architecture.output_side, 1, 2))
        diag4 = [d["checkerboard"] for d in depth_study(act, cw, C_b, depths, dim=1, input_side=4)]
        diag3 = [d["checkerboard"] for d in depth_study(act, cw, C_b, depths, dim=1, input_side=4, filter=3,
                                                        padding=0)]
        cb[reg] = {"dominance_1d": dom, "diag_amplitude_f4": diag4, "diag_amplitude_f3": diag3}
    res["checkerboard"] = {"depths": depths, **cb}
    # 2. border artifacts
    border = {}
    for reg, cw in regimes.items():
        border[reg] = {}
        for par in ("zero-padding", "graph"):
            d = deconv_kernels(act, C_b=C_b, C_W=cw, dim=2, input_side=4, depth=4, parametrization=par,
                               full=False).ntk_diagonal
            border[reg][par] = {"border_amplitude": border_amplitude(d),
                                "checkerboard_amplitude": checkerboard_amplitude(d, 2),
                                "profile": (d[d.shape[0] // 2] / d.max()).tolist()}
    res["border"] = border
    # 3. learning rates
    res["learning_rates"] = {reg: learning_rate_study(act, cw, C_b, dim=1, input_side=4, depth=4)
                             for reg, cw in regimes.items()}
    # 4. kernel descent
    res["fit"] = {reg: fit_study(act, cw, C_b, dim=1, input_side=4, depth=4) for reg, cw in regimes.items()}
    res["fit_depth6"] = {reg: fit_study(act, cw, C_b, dim=1, input_side=1, depth=6) for reg, cw in regimes.items()}
    # verdicts (criteria stated, not tuned)
    o, c = cb["ordered"]["dominance_1d"], cb["chaotic"]["dominance_1d"]
    v1 = all(a > b for a, b in zip(o[1:], c[1:]))
    gb = max(border[r]["graph"]["border_amplitude"] for r in regimes)
    zb = min(border[r]["zero-padding"]["border_amplitude"] for r in regimes)
    v2 = gb < 1e-10 and zb > 0.1
    lr = res["learning_rates"]
    v3b = all(lr[r]["cond_balanced"] < lr[r]["cond_uniform"] for r in regimes)
    v3o = all(lr[r]["cond_optimal"] < 0.9 * lr[r]["cond_uniform"] for r in regimes)
    fit = res["fit"]
    amp = {r: fit[r]["cb_at_half"] / fit[r]["cb_target"] for r in regimes}
    v4 = amp["ordered"] > amp["chaotic"]
    f6 = res["fit_depth6"]
    amp6 = {r: f6[r]["cb_at_half"] / f6[r]["cb_target"] for r in regimes}
    res["verdicts"] = {
        "checkerboard_dominance_larger_in_order_than_chaos_at_depths_2_6": v1,
        "graph_removes_border_artifacts": v2,
        "trace_balanced_lr_lowers_condition_number_in_every_regime": v3b,
        "some_layer_dependent_lr_lowers_condition_number_by_10pct_in_every_regime": v3o,
        "fit_amplifies_checkerboard_more_in_order_than_chaos": v4,
        "checkerboard_amplification_at_half_loss": amp,
        "checkerboard_amplification_at_half_loss_depth6": amp6}
    res["seconds"] = time.time() - t0
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "v7_deconv.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    _plot(res, os.path.join(out_dir, "v7_deconv.png"))
    return res


def _plot(res, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots(1, 4)
    col = {"ordered": "tab:blue", "critical": "k", "chaotic": "tab:red"}
    d = res["checkerboard"]["depths"]
    for r in res["regimes"]:
        ax[0].plot(d, res["checkerboard"][r]["dominance_1d"], "-o", color=col[r], label=f"{r}: dominance")
        ax[0].plot(d, res["checkerboard"][r]["diag_amplitude_f3"], ":", color=col[r], label=f"{r}: A_cb diag (f=3)")
    ax[0].set_xlabel("depth")
    ax[0].set_title("checkerboard vs depth (f=4: A_cb diag = 0)", fontsize=9)
    ax[0].legend(fontsize=6)
    for r in res["regimes"]:
        for par, ls in (("zero-padding", "-"), ("graph", "--")):
            ax[1].plot(res["border"][r][par]["profile"], ls, color=col[r], label=f"{r}, {par}")
    ax[1].set_title("border profile Theta(o,o)/max (2-D, middle row)", fontsize=9)
    ax[1].legend(fontsize=6)
    regs = list(res["regimes"])
    x = np.arange(len(regs))
    lr = res["learning_rates"]
    for i, (k, lab) in enumerate((("cond_uniform", "uniform"), ("cond_balanced", "balanced"),
                                  ("cond_optimal", "optimal"))):
        ax[2].bar(x + 0.27 * (i - 1), [lr[r][k] for r in regs], 0.27, label=lab)
    ax[2].set_xticks(x, regs)
    ax[2].set_title("NTK condition number vs layer learning rates", fontsize=9)
    ax[2].legend(fontsize=7)
    for r in regs:
        f = res["fit"][r]
        ax[3].semilogx(f["times"], f["cb_fit"], color=col[r], label=f"{r} fit")
        ax[3].axhline(f["cb_target"], color="gray", lw=0.8)
    ax[3].set_xlabel("t lambda_max")
    ax[3].set_title("checkerboard content of the kernel-descent fit", fontsize=9)
    ax[3].legend(fontsize=7)
    fig.savefig(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    res = run(a.out_dir)
    json.dump({"verdicts": res["verdicts"], "seconds": round(res["seconds"], 1)}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
