"""Claim 2: ReLU at criticality, V/K^2 = 5(l-1) and the NTK table.

ReLU, C_b = 0, C_W = 2 (critical), lambda_b = 0, lambda_W = 1, q0 = 1, Gaussian
weights, equal widths (PDLT arXiv:2106.10165 Sec. 5.2, 5.4.1; values of
docs/references.md items 4 and 7):

    K = 2,  Theta = l,  V/K^2 = 5(l-1),  F/(K Theta) = l-1,  D/(K Theta) = 3(l-1),
    B/Theta^2 = (l-1)(2l-1)/(3l),  A/Theta^2 -> 7l/3,  (A+2B)/Theta^2 -> 11l/3,
    (V, D, F, B, A) = (20, 12, 4, 2, 8) at l = 2 and (40, 36, 12, 10, 38) at l = 3.

Theory, three ways: the closed forms above are checked symbolically against
:func:`fwtheory.scale_invariant_solution` (sympy solution of the derived
recursions), whose values must equal :func:`fwtheory.predict` (the numeric
recursion) at every layer within the recursion's own round-off bound, and the
reference table values must be reproduced.

The round-off criterion: a coefficient that is exactly 0 for ReLU (G1, Theta1)
comes out of the float64 recursion as the sum of O(1)-size terms that cancel,
so its error is set by the size of those terms, not by its own size (which is
0). :func:`fwtheory._termscale.roundoff_bounds` bounds the accumulated error
E^(l) of every 1/n coefficient from the magnitudes of the terms of its
recursion and the quadrature tolerance; the check is
|predict - exact| <= E^(l) + 1e-12 |exact| at every layer (1e-12 |exact| alone
for K and Theta, whose recursions are computed to the quadrature tolerance
1e-12). A fixed limit such as 1e-9 passes or fails with the depth and with the
platform's rounding (2.5e-10 here, 2.5e-9 elsewhere for Theta1 at depth 200).
The deviation relative to the natural scale of each quantity (K, K^2, Theta,
K Theta, Theta^2 at that layer) is reported as well. Monte Carlo: :func:`fwtheory.simulate` at several widths, width
extrapolated per layer (X(n) = c0 + c1/n); each ratio's c0 must lie within
4 SE of the theory at every layer l >= 2 (layer 1 is exact: zero fluctuations).
"""

__all__ = ["run", "QUICK", "FULL", "TITLE"]

import numpy as np

from ._common import Report, claim_seed, fmt, max_abs, new_figure, zscores
from ._paths import DEFAULT_OUT_DIR

CLAIM = 2
STEM = "v2_relu_criticality"
TITLE = "ReLU at criticality: V/K^2 = 5(l-1) and the NTK table"
SOURCES = ["Roberts, Yaida, Hanin, arXiv:2106.10165, Sec. 5.2 and 5.4.1 (scale-invariant class)",
           "Roberts, Yaida, Hanin, arXiv:2106.10165, Ch. 8-9 (NTK fluctuations D, F, A, B)",
           "Bahri, Hanin et al., Les Houches lectures arXiv:2309.01592, Thm 4.2 (kappa_4 ~ C L/n)"]
QUICK = dict(theory_depth=50, widths=[16, 32, 64], mc_depth=4, samples=4000, z=4.0)
FULL = dict(theory_depth=200, widths=[24, 48, 96], mc_depth=5, samples=6000, z=4.0)
PREDICT_RTOL = 1e-12    # quadrature tolerance of the moments (fwtheory.gauss.DEFAULT_RTOL)
MC_RATIOS = ("V/K^2", "D/(K Theta)", "F/(K Theta)", "B/Theta^2", "A/Theta^2")
TABLE = {2: dict(V=20, D=12, F=4, B=2, A=8), 3: dict(V=40, D=36, F=12, B=10, A=38)}


def _closed_forms():
    import sympy

    from ..exact import ell, scale_invariant_solution

    sol = scale_invariant_solution("relu")          # C_W = 1/A_2 = 2, lambda_b = 0, lambda_W = q0 = 1
    l = ell
    expected = {
        "K": (sol.expressions["K"], sympy.Integer(2)),
        "Theta": (sol.expressions["Theta"], l),
        "V/K^2": (sol.ratio("V", "K", "K"), 5 * (l - 1)),
        "F/(K Theta)": (sol.ratio("F", "K", "Theta"), l - 1),
        "D/(K Theta)": (sol.ratio("D", "K", "Theta"), 3 * (l - 1)),
        "B/Theta^2": (sol.ratio("B", "Theta", "Theta"), (l - 1) * (2 * l - 1) / (3 * l)),
    }
    exact_ok = {k: sympy.simplify(got - want) == 0 for k, (got, want) in expected.items()}
    a_ratio = sol.ratio("A", "Theta", "Theta")
    ab_ratio = sympy.simplify(a_ratio + 2 * sol.ratio("B", "Theta", "Theta"))
    slopes = {"A/Theta^2": sympy.limit(a_ratio / l, l, sympy.oo),
              "(A+2B)/Theta^2": sympy.limit(ab_ratio / l, l, sympy.oo)}
    forms = {k: sympy.sstr(sympy.factor(got)) for k, (got, _) in expected.items()}
    forms["A/Theta^2"] = sympy.sstr(sympy.factor(a_ratio))
    forms["(A+2B)/Theta^2"] = sympy.sstr(sympy.factor(ab_ratio))
    return sol, exact_ok, slopes, forms


#: natural scale of each quantity: the leading-order quantities of its dimension
_SCALES = {"K": ("K",), "G1": ("K",), "V": ("K", "K"), "Theta": ("Theta",), "Theta1": ("Theta",),
           "D": ("K", "Theta"), "F": ("K", "Theta"), "A": ("Theta", "Theta"), "B": ("Theta", "Theta")}


def _deviations(pred, exact_vals, bounds):
    """Per quantity: (max deviation relative to its natural scale, max deviation
    in units of the allowed error E^(l) + PREDICT_RTOL |exact|); module docstring.
    ``pred`` maps names to per-layer values, ``bounds`` is
    :func:`fwtheory._termscale.roundoff_bounds` of the prediction."""
    rel_dev, ratio = {}, {}
    for k, v in exact_vals.items():
        v = np.asarray(v, dtype=float)
        dev = np.abs(np.asarray(pred[k], dtype=float) - v)
        scale = np.prod([np.abs(np.asarray(pred[s], dtype=float)) for s in _SCALES[k]], axis=0)
        rel_dev[k] = float(np.max(dev / scale))
        allowed = bounds.get(k, 0.0) + PREDICT_RTOL * np.abs(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(allowed > 0, dev / allowed, np.where(dev == 0, 0.0, np.inf))
        ratio[k] = float(np.max(r))
    return rel_dev, ratio


def run(quick=True, out_dir=DEFAULT_OUT_DIR, seed=0, verbose=True):
    """Run claim 2; write ``v2_relu_criticality.json`` and ``.png``; return the JSON dict."""
    import sympy

    from .._termscale import roundoff_bounds
    from ..mc import simulate
    from ..network import Network
    from ..prediction import predict

    P = dict(QUICK if quick else FULL)
    rep = Report(CLAIM, STEM, TITLE, SOURCES, quick, seed, P, out_dir, verbose)
    zmax = P["z"]

    # ---- theory: closed forms, exact solution == predict, reference table
    sol, exact_ok, slopes, forms = _closed_forms()
    Lt = P["theory_depth"]
    net = Network("relu", depth=Lt, width=64, C_W=2.0)
    pred = predict(net)
    exact_vals = sol.evaluate(Lt)
    rel_dev, bound_ratio = _deviations(pred, exact_vals, roundoff_bounds(pred))
    table_dev = max(abs(float(pred[k][l - 1]) - ref) for l, row in TABLE.items() for k, ref in row.items())
    rep.check("closed forms: K = 2, Theta = l, V/K^2 = 5(l-1), F/(K Theta) = l-1, D/(K Theta) = 3(l-1), "
              "B/Theta^2 = (l-1)(2l-1)/(3l)", all(exact_ok.values()),
              "sympy: " + ", ".join(f"{k} {'ok' if ok else 'DIFFERS'}" for k, ok in exact_ok.items()))
    rep.check("slopes: A/Theta^2 -> 7l/3 and (A+2B)/Theta^2 -> 11l/3",
              slopes["A/Theta^2"] == sympy.Rational(7, 3)
              and slopes["(A+2B)/Theta^2"] == sympy.Rational(11, 3),
              f"lim A/(Theta^2 l) = {slopes['A/Theta^2']}, lim (A+2B)/(Theta^2 l) = {slopes['(A+2B)/Theta^2']}")
    worst = max(rel_dev.values())
    within = max(bound_ratio.values())
    rep.check(f"exact solution == predict at every layer 1..{Lt}", within <= 1.0,
              f"max |predict - exact| / (round-off bound) = {within:.2e} (limit 1); max deviation "
              f"relative to the natural scale {worst:.2e}",
              max_bound_ratio=within, max_relative_deviation=worst)
    rep.check("table values (V, D, F, B, A) at l = 2, 3", table_dev <= 1e-9,
              f"max |predict - table| = {table_dev:.2e}", max_abs_deviation=table_dev)

    # ---- Monte Carlo with width extrapolation
    Lm = P["mc_depth"]
    s = claim_seed(seed, CLAIM, 0)
    rep.seeds["widths " + ",".join(map(str, P["widths"]))] = s
    mc_net = Network("relu", depth=Lm, width=P["widths"][0], C_W=2.0)
    sim = simulate(mc_net, samples=P["samples"], seed=s, widths=P["widths"])
    theory = predict(mc_net).ratios
    mc = {}
    for k in MC_RATIOS:
        z = zscores(sim.ratios[k][1:], sim.ratio_errors[k][1:], theory[k][1:])
        mc[k] = dict(c0=sim.ratios[k], c0_se=sim.ratio_errors[k], theory=theory[k],
                     z=np.r_[np.nan, z], chi2=sim.extrapolation.chi2[k], dof=sim.extrapolation.dof[k])
    zworst = max_abs([v["z"] for v in mc.values()])
    rep.check(f"Monte Carlo (widths {P['widths']}, extrapolated) within {zmax:g} SE at layers 2..{Lm}",
              zworst <= zmax, f"max |z| = {zworst:.2f} over {', '.join(MC_RATIOS)}", max_abs_z=zworst)

    rep.results = {
        "closed_forms": forms, "closed_forms_match": exact_ok,
        "asymptotic_slopes": {k: str(v) for k, v in slopes.items()},
        "theory_layers": pred.layers, "theory_ratios": {k: pred.ratios[k] for k in MC_RATIOS},
        "predict_vs_exact_max_relative_deviation": rel_dev,
        "predict_vs_exact_over_roundoff_bound": bound_ratio,
        "table_max_abs_deviation": table_dev,
        "monte_carlo": {"widths": P["widths"], "samples_per_width": sim.samples,
                        "layers": sim.layers, "ratios": mc},
    }

    # ---- figure
    fig, axes = new_figure(1, 2, (11, 4.4))
    ax = axes[0, 0]
    lt = np.arange(1, Lt + 1)
    for k, name in enumerate(MC_RATIOS):
        ax.plot(lt, pred.ratios[name], color=f"C{k}", lw=1.5, label=name)
    ab = (np.asarray(pred["A"]) + 2 * np.asarray(pred["B"])) / np.asarray(pred["Theta"]) ** 2
    ax.plot(lt, ab, color="k", lw=1, ls="--", label="(A+2B)/Theta^2")
    ax.plot(lt, 11 * lt / 3, color="k", lw=0.8, ls=":", label="11 l / 3")
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel("coefficient of 1/n")
    ax.set_title("theory (predict == exact sympy solution)", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    lm = np.arange(1, Lm + 1)
    for k, name in enumerate(MC_RATIOS):
        ax.plot(lm, theory[name], color=f"C{k}", lw=1.2)
        ax.errorbar(lm + 0.04 * (k - 2), mc[name]["c0"], yerr=mc[name]["c0_se"], fmt="o", ms=4,
                    capsize=2, color=f"C{k}", label=f"{name}: MC c0 (n -> inf)")
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel("coefficient of 1/n")
    ax.set_title(f"Monte Carlo, widths {P['widths']} extrapolated, {sim.samples} networks each",
                 fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle("ReLU at criticality (C_W = 2, C_b = 0, lambda_b = 0)", fontsize=11)
    key = (f"closed forms {'ok' if all(exact_ok.values()) else 'DIFFER'}, predict vs exact "
           f"{worst:.1e}, MC max |z| = {fmt(zworst)} (V/K^2 at l={Lm}: "
           f"{fmt(mc['V/K^2']['c0'][-1], 4)} +- {fmt(mc['V/K^2']['c0_se'][-1], 2)} vs {5 * (Lm - 1)})")
    return rep.finish(fig, key)
