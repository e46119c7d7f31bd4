"""Claim 3: the K* = 0 universality class at large depth (tanh, Gaussian weights).

At criticality (C_b = 0, C_W = 1) the tanh kernel flows to zero as
K^(l) ~ 1/(-a_1 l) with a_1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2 = -2,
so K ~ 1/(2l), and the four-point vertex grows as V/K^2 -> (2/3) l
(PDLT arXiv:2106.10165 Sec. 5.3.3 and 5.4.2; docs/conventions.md, docs/references.md
item 5). :func:`fwtheory.kstar0_asymptotics` derives these leading forms (and
G1 -> 1/(3 a_1) = -1/6, Theta -> lambda_W/2, F/(K Theta) -> l/4,
B/Theta^2 -> l/3) by a power-law balance of the derived recursions; D, A and
Theta1 it reports as undetermined (their leading sources cancel).

Checks: the symbolic forms are the published ones (a_1 = -2, K = 1/(2l),
V/K^2 = 2l/3); :func:`fwtheory.predict` at large depth converges to every
determined leading form, with relative deviation at the largest depth at most
2 ln(L)/L (the size of the first correction, O(ln l / l)) and smaller than at
depth L/10. The numeric depth dependence of the undetermined ones is
recorded (not a pass criterion).
"""

__all__ = ["run", "QUICK", "FULL", "TITLE"]

import math

import numpy as np

from ._common import Report, fmt, new_figure
from ._paths import DEFAULT_OUT_DIR

CLAIM = 3
STEM = "v3_kstar0_tanh"
TITLE = "K*=0 asymptotics for tanh: K ~ 1/(2l), V/K^2 -> (2/3) l"
SOURCES = ["Roberts, Yaida, Hanin, arXiv:2106.10165, Sec. 5.3.3 (K* = 0 class) and 5.4.2"]
QUICK = dict(depth=10000, width=64)
FULL = dict(depth=100000, width=64)
# quantity -> (how to get it from a Prediction, how to get it from Asymptotics)
FORMS = ("K", "G1", "Theta", "V/K^2", "F/(K Theta)", "B/Theta^2")
UNDETERMINED = ("D/(K Theta)", "A/Theta^2", "Theta1/Theta")


def _series(pred, name):
    if name in pred.values:
        return np.asarray(pred[name], dtype=float)
    return np.asarray(pred.ratios[name], dtype=float)


def _asym(asym, name):
    return asym.leading[name] if name in asym.leading else asym.ratios[name]


def run(quick=True, out_dir=DEFAULT_OUT_DIR, seed=0, verbose=True):
    """Run claim 3 (theory only; ``seed`` is recorded, not used); return the JSON dict."""
    import sympy

    from ..asymptotics import ell, kstar0_asymptotics
    from ..network import Network
    from ..prediction import predict

    P = dict(QUICK if quick else FULL)
    rep = Report(CLAIM, STEM, TITLE, SOURCES, quick, seed, P, out_dir, verbose)
    L = P["depth"]
    asym = kstar0_asymptotics("tanh")
    symbolic = {
        "a1 = -2": asym.a1 == -2,
        "K ~ 1/(2l)": sympy.simplify(asym.leading["K"] - 1 / (2 * ell)) == 0,
        "V/K^2 ~ 2l/3": sympy.simplify(asym.ratios["V/K^2"] - 2 * ell / 3) == 0,
        "G1 ~ -1/6": sympy.simplify(asym.leading["G1"] + sympy.Rational(1, 6)) == 0,
    }
    rep.check("kstar0_asymptotics gives the published forms", all(symbolic.values()),
              ", ".join(f"{k}: {'ok' if v else 'DIFFERS'}" for k, v in symbolic.items()))

    pred = predict(Network("tanh", depth=L, width=P["width"], C_b=0.0, C_W=1.0))
    layers = np.arange(1, L + 1, dtype=float)
    checkpoints = [10 ** k for k in range(1, int(math.log10(L)) + 1) if 10 ** k <= L]
    if checkpoints[-1] != L:
        checkpoints.append(L)
    tol = 2.0 * math.log(L) / L
    devs, forms, ok_all, mono_all = {}, {}, True, True
    for name in FORMS:
        expr = _asym(asym, name)
        forms[name] = sympy.sstr(expr)
        f = sympy.lambdify(ell, expr, "numpy")
        lead = np.broadcast_to(np.asarray(f(layers), dtype=float), layers.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.abs(_series(pred, name) / lead - 1.0)
        at = [float(dev[c - 1]) for c in checkpoints]
        monotone = float(dev[L - 1]) < float(dev[L // 10 - 1])     # still converging at L
        devs[name] = {"checkpoints": checkpoints, "relative_deviation": at, "curve": dev}
        ok_all &= at[-1] <= tol
        mono_all &= monotone
    worst = max(d["relative_deviation"][-1] for d in devs.values())
    rep.check(f"predict -> leading forms: relative deviation at l = {L} <= 2 ln(L)/L = {tol:.2e}",
              ok_all, "; ".join(f"{k}: {d['relative_deviation'][-1]:.2e}" for k, d in devs.items()),
              max_relative_deviation=worst, tolerance=tol)
    rep.check(f"still converging: every deviation at l = {L} is below its value at l = {L // 10}",
              mono_all, "; ".join(f"{k}: {d['curve'][L // 10 - 1]:.2e} -> {d['curve'][L - 1]:.2e}"
                                  for k, d in devs.items()))

    # undetermined at this order: record the numerics
    undetermined = {}
    lo, hi = max(1, L // 10), L
    for name in UNDETERMINED:
        r = _series(pred, name)
        undetermined[name] = {"asymptotics": "undetermined" if _asym(asym, name) is None else
                              sympy.sstr(_asym(asym, name)),
                              "values_at_checkpoints": [float(r[c - 1]) for c in checkpoints]}
    d = _series(pred, "D/(K Theta)")
    undetermined["D/(K Theta)"]["coefficient_of_ln_l_over_last_decade"] = float(
        (d[hi - 1] - d[lo - 1]) / math.log(hi / lo))
    t1 = _series(pred, "Theta1/Theta")
    undetermined["Theta1/Theta"]["value_over_l_at_L"] = float(t1[-1] / L)
    rep.results = {"leading_forms": forms, "symbolic_checks": symbolic,
                   "deviations": devs, "numeric_only": undetermined,
                   "K_times_2l_at_L": float(pred["K"][-1] * 2 * L),
                   "V_over_K2_over_l_at_L": float(pred.ratios["V/K^2"][-1] / L)}

    fig, axes = new_figure(1, 2, (11, 4.4))
    ax = axes[0, 0]
    for k, name in enumerate(FORMS):
        ax.loglog(layers[1:], devs[name]["curve"][1:], color=f"C{k}", lw=1.3,
                  label=f"{name} vs {forms[name]}")
    ax.loglog(layers[1:], 2 * np.log(layers[1:]) / layers[1:], "k:", lw=1, label="2 ln(l)/l (tolerance)")
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel("|predict / leading form - 1|")
    ax.set_title("convergence of predict to kstar0_asymptotics", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    ax.semilogx(layers, pred["K"] * 2 * layers, label=r"$2\ell\,K^{(\ell)}$  (-> 1)")
    ax.semilogx(layers, pred.ratios["V/K^2"] / (2 * layers / 3), label=r"$(V/K^2) / (2\ell/3)$  (-> 1)")
    ax.semilogx(layers, -6 * np.asarray(pred["G1"]), label=r"$-6\,G^{\{1\}}$  (-> 1)")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylim(0, 1.5)
    ax.set_title("tanh, C_b = 0, C_W = 1, Gaussian weights, K^(1) = 1", fontsize=10)
    ax.legend(fontsize=8)
    key = (f"at l = {L}: 2lK = {fmt(pred['K'][-1] * 2 * L, 6)}, (V/K^2)/l = "
           f"{fmt(pred.ratios['V/K^2'][-1] / L, 6)} (2/3 = 0.666667); max rel. dev. of "
           f"{len(FORMS)} forms {worst:.1e} <= {tol:.1e}")
    return rep.finish(fig, key)
