"""Claim 1: deep linear networks have an exactly known finite-width fourth moment.

PDLT (Roberts, Yaida, Hanin; arXiv:2106.10165) Sec. 3.3, eqs. (3.21)-(3.25)
(docs/references.md item 1): for sigma(z) = z, C_b = 0 and hidden widths n,

    E[(z_i^(l))^2]                      = C_W^l q0                  (exact)
    E[(z_i^(l))^4] / (3 E[(z_i^(l))^2]^2) = (1 + 2/n)^(l-1)          (exact)

whose O(1/n) truncation is 1 + 2(l-1)/n (V/K^2 = 2(l-1)). The Monte Carlo
estimates the ratio with a jackknife error (``Simulation.jackknife``) at every
layer and two widths.

Pass criteria: every layer and width within 4 standard errors of the exact
product; E[z^2] within 4 SE of C_W^l q0; and the Monte Carlo resolves the
exact product from its O(1/n) truncation (|z| > 4 for the truncation at some
layer), i.e. the check is of the finite-n formula, not only of its 1/n
expansion.
"""

__all__ = ["run", "QUICK", "FULL", "TITLE"]

import numpy as np

from ._common import Report, claim_seed, fmt, max_abs, new_figure, zscores
from ._paths import DEFAULT_OUT_DIR

CLAIM = 1
STEM = "v1_deep_linear"
TITLE = "deep linear exact finite-width moments (PDLT eq. 3.25)"
SOURCES = ["Roberts, Yaida, Hanin, The Principles of Deep Learning Theory, arXiv:2106.10165, "
           "Sec. 3.3, eqs. (3.21)-(3.25)"]
QUICK = dict(widths=[4, 10], depth=6, samples=60000, C_W=1.0, input_norm=1.0, z=4.0)
FULL = dict(widths=[4, 10], depth=8, samples=400000, C_W=1.0, input_norm=1.0, z=4.0)


def run(quick=True, out_dir=DEFAULT_OUT_DIR, seed=0, verbose=True):
    """Run claim 1; write ``v1_deep_linear.json`` and ``.png`` into ``out_dir``; return the JSON dict."""
    from ..mc import simulate
    from ..network import Network

    P = dict(QUICK if quick else FULL)
    rep = Report(CLAIM, STEM, TITLE, SOURCES, quick, seed, P, out_dir, verbose)
    L, q0, cw, zmax = P["depth"], P["input_norm"], P["C_W"], P["z"]
    layers = np.arange(1, L + 1)
    per_width = {}
    for part, n in enumerate(P["widths"]):
        s = claim_seed(seed, CLAIM, part)
        rep.seeds[f"width {n}"] = s
        sim = simulate(Network("linear", depth=L, width=n, C_W=cw), samples=P["samples"], seed=s,
                       input_norm=q0)
        ratio, ratio_se = sim.jackknife(lambda m: m["z4"] / (3.0 * m["Ez2^2"]))
        ez2, ez2_se = sim.jackknife(lambda m: m["z2"])
        exact = (1.0 + 2.0 / n) ** (layers - 1)
        truncated = 1.0 + 2.0 * (layers - 1) / n
        per_width[n] = dict(
            ratio=ratio, ratio_se=ratio_se, exact=exact, truncated=truncated,
            z_exact=zscores(ratio, ratio_se, exact), z_truncated=zscores(ratio, ratio_se, truncated),
            Ez2=ez2, Ez2_se=ez2_se, Ez2_exact=cw ** layers * q0,
            z_Ez2=zscores(ez2, ez2_se, cw ** layers * q0), samples=sim.samples)
    rep.results = {"layers": layers, "per_width": {str(n): v for n, v in per_width.items()}}

    z_exact = max_abs([v["z_exact"] for v in per_width.values()])
    z_ez2 = max_abs([v["z_Ez2"] for v in per_width.values()])
    z_trunc = max_abs([v["z_truncated"] for v in per_width.values()])
    rep.check("E[z^4]/(3E[z^2]^2) = (1+2/n)^(l-1) at every layer and width", z_exact <= zmax,
              f"max |z| = {z_exact:.2f} (limit {zmax:g})", max_abs_z=z_exact)
    rep.check("E[z^2] = C_W^l q0 at every layer and width", z_ez2 <= zmax,
              f"max |z| = {z_ez2:.2f} (limit {zmax:g})", max_abs_z=z_ez2)
    rep.check("the Monte Carlo resolves the exact product from its O(1/n) truncation",
              z_trunc > zmax,
              f"largest |z| of the truncation 1 + 2(l-1)/n: {z_trunc:.1f} (needs > {zmax:g})",
              abs_z_truncation=z_trunc)

    fig, ax = new_figure(1, 1, (6.4, 4.4))
    ax = ax[0, 0]
    for k, (n, v) in enumerate(per_width.items()):
        color = f"C{k}"
        fine = np.linspace(1, L, 200)
        ax.plot(fine, (1 + 2 / n) ** (fine - 1), color=color, lw=1.5, label=f"exact $(1+2/n)^{{\\ell-1}}$, n={n}")
        ax.plot(layers, v["truncated"], color=color, ls="--", lw=1,
                label=f"O(1/n) truncation $1+2(\\ell-1)/n$, n={n}")
        ax.errorbar(layers + 0.05 * k, v["ratio"], yerr=v["ratio_se"], fmt="o", ms=4, color=color,
                    capsize=2, label=f"Monte Carlo, n={n} ({v['samples']} networks)")
    ax.set_yscale("log")
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel(r"$E[z^4] \,/\, (3\,E[z^2]^2)$")
    ax.set_title("Deep linear network: exact finite-width fourth moment (PDLT eq. 3.25)", fontsize=10)
    ax.legend(fontsize=7)
    key = (f"max |z| = {z_exact:.2f} vs (1+2/n)^(l-1) over n = {P['widths']}, l <= {L}; "
           f"O(1/n) truncation 1+2(l-1)/n off by up to {fmt(z_trunc)} SE")
    return rep.finish(fig, key)
