"""Claim 4: orthogonal tanh networks, depth-independent V/K^2 and saturating NTK correlators.

Day, Kahn, Roberts (arXiv:2310.07765, abstract): tanh networks at criticality
with Haar-orthogonal weights have leading-order preactivation fluctuations that
are independent of depth, and all NTK correlators saturate at a depth of ~20,
whereas with Gaussian weights they grow linearly. In fwtheory's normalization
(:mod:`fwtheory.quantities`; derived, docs/references.md item 6): orthogonal V/K^2 -> -2,
F/(K Theta) -> -2/3, B/Theta^2, D/(K Theta), A/Theta^2 peak within the first
few layers and decay; Gaussian V/K^2 ~ (2/3) l, F/(K Theta) ~ l/4,
B/Theta^2 ~ l/3 (PDLT arXiv:2106.10165 Sec. 5.4.2).

Setting: tanh, C_b = 0, C_W = 1, lambda_b = 0, lambda_W = 1, q0 = 1, square
layers, the first layer of the same ensemble as the others (orthogonal first
layer: V^(1)/K^2 = -2 exactly at leading order). Which first layer Day et al.
use is not known here (docs/unverified.md).

Pass criteria (theory to depth L, Monte Carlo to depth L_mc):

1. :func:`fwtheory.kstar0_asymptotics` gives orthogonal V/K^2 = -2,
   F/(K Theta) = -2/3, G1/K = 2 and Gaussian V/K^2 = 2l/3, F/(K Theta) = l/4,
   B/Theta^2 = l/3.
2. Depth independence: orthogonal |V/K^2 + 2| <= 0.25 at every layer 1..L,
   within 1% of -2 at L; the 5% saturation depth (first layer after which
   |V/K^2 + 2| <= 0.1 stays true) lies in [10, 30], i.e. "near 20".
3. The orthogonal NTK correlators F/(K Theta), B/Theta^2, D/(K Theta),
   A/Theta^2 have stopped growing by layer 20: for l >= 20,
   |r(l)| <= 1.1 max(|r(20)|, |r_inf|) (r_inf = the asymptote when the
   asymptotics determine a constant, else 0).
4. Gaussian growth: least-squares slopes over [L/2, L] of V/K^2, F/(K Theta),
   B/Theta^2 within 5% of 2/3, 1/4, 1/3.
5. Monte Carlo (both ensembles, two widths, width-extrapolated): the five
   ratios within 4 SE of the theory at the layers ``mc_layers`` (2, 3, 5, 10,
   15, 20, and 25, 30 in the full run; the z-scores of all layers are in the
   JSON: neighbouring layers are strongly correlated and the O(1/n^2) terms
   left by a two-width fit of D and A show up there as runs of |z| ~ 3), and
   Gaussian minus orthogonal V/K^2 at L_mc more than 4 combined SE.
"""

__all__ = ["run", "QUICK", "FULL", "TITLE"]

import numpy as np

from ._common import Report, claim_seed, fmt, max_abs, new_figure, zscores
from ._paths import DEFAULT_OUT_DIR

CLAIM = 4
STEM = "v4_orthogonal_tanh"
TITLE = "orthogonal tanh: V/K^2 -> -2, NTK correlators saturate near depth 20"
SOURCES = ["Day, Kahn, Roberts, Feature Learning and Generalization in Deep Networks with Orthogonal "
           "Weights, arXiv:2310.07765 (MLST 2025)",
           "Roberts, Yaida, Hanin, arXiv:2106.10165, Sec. 5.4.2 (Gaussian growth)",
           "Collins, Sniady, CMP 264 (2006) 773 (orthogonal Weingarten calculus)"]
QUICK = dict(theory_depth=200, width=64, mc_widths=[32, 64], mc_depth=20, samples=1000, z=4.0,
             mc_layers=[2, 3, 5, 10, 15, 20])
FULL = dict(theory_depth=1000, width=64, mc_widths=[32, 64], mc_depth=30, samples=4000, z=4.0,
            mc_layers=[2, 3, 5, 10, 15, 20, 25, 30])
NTK_RATIOS = ("F/(K Theta)", "B/Theta^2", "D/(K Theta)", "A/Theta^2")
MC_RATIOS = ("V/K^2",) + NTK_RATIOS
GAUSSIAN_SLOPES = {"V/K^2": 2 / 3, "F/(K Theta)": 1 / 4, "B/Theta^2": 1 / 3}
SATURATION_LAYER = 20
LINTHRESH = {"V/K^2": 2.0, "F/(K Theta)": 0.5, "B/Theta^2": 0.2, "D/(K Theta)": 0.05,
             "A/Theta^2": 0.02, "G1/K": 2.0}       # symlog plots: linear within +-LINTHRESH
BAND = 0.05


def saturation_depth(values, target, band=BAND):
    """First layer (1-based) after which |values - target| <= band |target| holds to the end."""
    outside = ~(np.abs(np.asarray(values, dtype=float) - target) <= band * abs(target))
    if not outside.any():
        return 1
    last = int(np.flatnonzero(outside)[-1])
    return None if last == len(outside) - 1 else last + 2


def _slope(layers, values, lo, hi):
    sel = (layers >= lo) & (layers <= hi)
    return float(np.polyfit(layers[sel].astype(float), np.asarray(values)[sel], 1)[0])


def run(quick=True, out_dir=DEFAULT_OUT_DIR, seed=0, verbose=True):
    """Run claim 4; write ``v4_orthogonal_tanh.json`` and ``.png``; return the JSON dict."""
    import sympy

    from ..asymptotics import ell, kstar0_asymptotics
    from ..mc import simulate
    from ..network import Network
    from ..prediction import predict

    P = dict(QUICK if quick else FULL)
    rep = Report(CLAIM, STEM, TITLE, SOURCES, quick, seed, P, out_dir, verbose)
    L, zmax, l20 = P["theory_depth"], P["z"], SATURATION_LAYER
    layers = np.arange(1, L + 1)

    # 1. asymptotics
    ao, ag = kstar0_asymptotics("tanh", "orthogonal"), kstar0_asymptotics("tanh", "gaussian")
    sym = {
        "orthogonal V/K^2 = -2": ao.ratios["V/K^2"] == -2,
        "orthogonal F/(K Theta) = -2/3": ao.ratios["F/(K Theta)"] == sympy.Rational(-2, 3),
        "orthogonal G1/K = 2": ao.ratios["G1/K"] == 2,
        "gaussian V/K^2 = 2l/3": sympy.simplify(ag.ratios["V/K^2"] - 2 * ell / 3) == 0,
        "gaussian F/(K Theta) = l/4": sympy.simplify(ag.ratios["F/(K Theta)"] - ell / 4) == 0,
        "gaussian B/Theta^2 = l/3": sympy.simplify(ag.ratios["B/Theta^2"] - ell / 3) == 0,
    }
    rep.check("asymptotics: orthogonal limits and Gaussian growth laws", all(sym.values()),
              ", ".join(f"{k}: {'ok' if v else 'DIFFERS'}" for k, v in sym.items()))

    # theory curves
    nets = {e: Network("tanh", depth=L, width=P["width"], C_b=0.0, C_W=1.0, ensemble=e)
            for e in ("gaussian", "orthogonal")}
    theory = {e: predict(net).ratios for e, net in nets.items()}
    orth, gauss = theory["orthogonal"], theory["gaussian"]

    # 2. depth independence of orthogonal V/K^2
    v = np.asarray(orth["V/K^2"])
    vrange = (float(v.min()), float(v.max()))
    sat = saturation_depth(v, -2.0)
    ok2 = (max_abs(v + 2.0) <= 0.25 and abs(v[-1] + 2.0) <= 0.02 and sat is not None
           and 10 <= sat <= 30)
    rep.check("orthogonal V/K^2 depth-independent: within 0.25 of -2 everywhere, 1% at L, "
              "5% saturation depth in [10, 30]", ok2,
              f"range [{vrange[0]:.4f}, {vrange[1]:.4f}], V/K^2({L}) = {v[-1]:.4f}, "
              f"5% saturation depth {sat}", saturation_depth=sat, value_at_L=float(v[-1]))

    # 3. orthogonal NTK correlators stop growing by layer 20
    stop = {}
    for name in NTK_RATIOS:
        r = np.asarray(orth[name])
        lim = ao.ratios[name]
        r_inf = float(lim) if lim is not None and not lim.free_symbols else 0.0
        bound = 1.1 * max(abs(r[l20 - 1]), abs(r_inf))
        after = float(np.max(np.abs(r[l20 - 1:])))
        stop[name] = dict(value_at_20=float(r[l20 - 1]), value_at_L=float(r[-1]),
                          asymptote=r_inf, peak=float(np.max(np.abs(r))),
                          peak_layer=int(np.argmax(np.abs(r)) + 1), max_after_20=after, bound=bound,
                          saturation_depth=saturation_depth(r, r_inf) if r_inf else None,
                          passed=after <= bound)
    rep.check("orthogonal NTK correlators do not grow after layer 20",
              all(s["passed"] for s in stop.values()),
              "; ".join(f"{k}: max|r| after 20 = {s['max_after_20']:.4f} <= {s['bound']:.4f}"
                        for k, s in stop.items()))

    # 4. Gaussian linear growth
    slopes = {k: _slope(layers, gauss[k], L // 2, L) for k in GAUSSIAN_SLOPES}
    ok4 = all(abs(slopes[k] / ref - 1) <= 0.05 for k, ref in GAUSSIAN_SLOPES.items())
    rep.check("Gaussian V/K^2, F/(K Theta), B/Theta^2 grow with slopes 2/3, 1/4, 1/3 (5%)", ok4,
              ", ".join(f"{k}: {slopes[k]:.4f}" for k in slopes), slopes=slopes)

    # 5. Monte Carlo
    Lm = P["mc_depth"]
    mc = {}
    for part, ens in enumerate(("gaussian", "orthogonal")):
        s = claim_seed(seed, CLAIM, part)
        rep.seeds[f"{ens}, widths {P['mc_widths']}"] = s
        net = Network("tanh", depth=Lm, width=P["mc_widths"][0], C_b=0.0, C_W=1.0, ensemble=ens)
        sim = simulate(net, samples=P["samples"], seed=s, widths=P["mc_widths"])
        th = theory[ens]
        mc[ens] = {k: dict(c0=sim.ratios[k], c0_se=sim.ratio_errors[k], theory=th[k][:Lm],
                           z=np.r_[np.nan, zscores(sim.ratios[k][1:], sim.ratio_errors[k][1:],
                                                   th[k][1:Lm])])
                   for k in MC_RATIOS}
        mc[ens]["samples_per_width"] = sim.samples
    idx = np.asarray(P["mc_layers"]) - 1
    zworst = max_abs([mc[e][k]["z"][idx] for e in mc for k in MC_RATIOS])
    zall = max_abs([mc[e][k]["z"] for e in mc for k in MC_RATIOS])
    rep.check(f"Monte Carlo within {zmax:g} SE of the theory at layers {P['mc_layers']} (both ensembles)",
              zworst <= zmax, f"max |z| = {zworst:.2f} over {', '.join(MC_RATIOS)} "
              f"(all layers 2..{Lm}: {zall:.2f}, not a criterion)", max_abs_z=zworst,
              max_abs_z_all_layers=zall)
    vg, vo = mc["gaussian"]["V/K^2"], mc["orthogonal"]["V/K^2"]
    gap = float(vg["c0"][-1] - vo["c0"][-1])
    gap_se = float(np.hypot(vg["c0_se"][-1], vo["c0_se"][-1]))
    rep.check(f"Monte Carlo separates the ensembles at layer {Lm}", gap > zmax * gap_se,
              f"V/K^2: Gaussian {vg['c0'][-1]:.3f} +- {vg['c0_se'][-1]:.3f}, orthogonal "
              f"{vo['c0'][-1]:.3f} +- {vo['c0_se'][-1]:.3f} ({gap / gap_se:.1f} SE apart)",
              separation_in_se=gap / gap_se)

    rep.results = {
        "asymptotics": {"orthogonal": {k: None if x is None else sympy.sstr(x) for k, x in ao.ratios.items()},
                        "gaussian": {k: None if x is None else sympy.sstr(x) for k, x in ag.ratios.items()}},
        "theory_layers": layers,
        "theory": {e: {k: np.asarray(t[k]) for k in MC_RATIOS + ("G1/K",)} for e, t in theory.items()},
        "orthogonal_V_over_K2": {"range": vrange, "saturation_depth_5pct": sat},
        "orthogonal_ntk_after_layer_20": stop,
        "gaussian_slopes": slopes,
        "monte_carlo": {"widths": P["mc_widths"], "depth": Lm, "ratios": mc},
    }

    # figure: one panel per ratio, both ensembles
    fig, axes = new_figure(2, 3, (13, 7.5))
    panels = MC_RATIOS + ("G1/K",)
    lm = np.arange(1, Lm + 1)
    for ax, name in zip(axes.ravel(), panels):
        for k, ens in enumerate(("gaussian", "orthogonal")):
            color = f"C{k}"
            ax.plot(layers, theory[ens][name], color=color, lw=1.4, label=f"{ens} theory")
            if name in MC_RATIOS:
                ax.errorbar(lm, mc[ens][name]["c0"], yerr=mc[ens][name]["c0_se"], fmt="o", ms=3,
                            capsize=2, color=color, label=f"{ens} MC (n -> inf)")
        ax.axvline(l20, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=LINTHRESH[name])
        ax.set_xlabel(r"layer $\ell$")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("tanh at criticality (C_b = 0, C_W = 1): Gaussian vs orthogonal weights; "
                 "dotted line: layer 20", fontsize=11)
    key = (f"orthogonal V/K^2({L}) = {fmt(v[-1], 4)} (5% band from l = {sat}), NTK ratios stop "
           f"growing by l = 20; Gaussian slopes {', '.join(fmt(s, 3) for s in slopes.values())}; "
           f"MC max |z| = {fmt(zworst)}")
    return rep.finish(fig, key)
