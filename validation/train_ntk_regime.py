"""Width exponents of the NTK regime (docs/training.md, "Width exponents").

Trains many independent networks (tanh at criticality, C_W = 1, C_b = 0, L = 3,
lambda_W = 1, lambda_b = 0) at each width n by full-batch gradient descent on a
fixed small data set (m = 4 inputs with |x|^2 = n0 = 8, fixed targets), T steps
at a small learning rate, and measures per width:

  (i)   E_init ||Theta_T - Theta_0||_F / ||Theta_0||_F         (each network's change)
  (ii)  ||E_init[Theta_T - Theta_0]||_F / ||E_init Theta_0||_F  (the mean change)
  (iii) E_init ||f_T - flin_T|| / sqrt(m)                       (gap to the network's own
        linearization: same initialization, NTK frozen at step 0, same GD)
  (iv)  ||E_init[f_T - flin_T]|| / sqrt(m)                      (the mean gap)

||E[.]||^2 is estimated without bias, (|sum_i D_i|^2 - sum_i |D_i|^2) / (N (N-1)),
errors by a delete-one-block jackknife over networks (50 blocks). Exponents:
weighted least squares of log(value) on log(n); also the two-term fit c1/n + c2/sqrt(n)
(c2 = 0 for smooth activations). Derived exponents (smooth activations):
-1 for all four (the dNTK and ddNTKs are O(1/n) per network, not only on average).
With ``--activation relu`` (C_W = 2) the script measures the same quantities for ReLU,
where kink crossings add an O(n^{-1/2}) term (docs/training.md); no pass criterion then.

Usage::

    python validation/train_ntk_regime.py [--quick] [--out-dir DIR] [--seed S]

writes train_ntk_regime.json (and .png) into DIR; prints the table and one PASS/FAIL line
(tanh: |measured - derived| <= 0.1 for every exponent).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from fwtheory import Network
from fwtheory._io import ProgressBar, atomic_write_bytes, atomic_write_text, check_output_dir, dumps_json
from fwtheory.plotting import figure_png
from fwtheory.train import linearized_outputs, train

DERIVED = {"ntk_change": -1.0, "mean_ntk_change": -1.0, "lin_gap": -1.0, "mean_lin_gap": -1.0}
BLOCKS = 50


def dataset(n0=8, m=4, seed=12345):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n0))
    X *= math.sqrt(n0) / np.linalg.norm(X, axis=1, keepdims=True)     # |x|^2 = n0 (q0 = 1)
    Y = np.array([[0.6], [-0.4], [0.3], [-0.5]])[:m]
    return X, Y


def run_width(n, inits, steps, eta, seed, X, Y, bar=None, activation="tanh"):
    net = Network(activation, depth=3, width=n, input_dim=X.shape[1], C_W=2.0 if activation == "relu" else 1.0,
                  C_b=0.0)
    m = X.shape[0]
    theta0 = np.empty((inits, m, m))
    dtheta = np.empty((inits, m, m))
    gap = np.empty((inits, m))
    for s in range(inits):
        h = train(net, X, Y, steps=steps, learning_rate=eta, seed=seed * 10_000_000 + n * 10_000 + s,
                  record_steps=[0, steps])
        lin, _ = linearized_outputs(h.ntk[0], h.outputs[0], Y, eta, [steps])
        theta0[s] = h.ntk[0]
        dtheta[s] = h.ntk[1] - h.ntk[0]
        gap[s] = (h.outputs[1] - lin[0])[:, 0]
        if bar is not None:
            bar.update(1)
    return theta0, dtheta, gap


def _norm_of_mean(D):
    """Unbiased ||E D||^2 from samples D (N, ...), per jackknife block."""
    N = D.shape[0]
    flat = D.reshape(N, -1)
    tot = flat.sum(axis=0)
    sq = np.einsum("ij,ij->", flat, flat)
    return (tot @ tot - sq) / (N * (N - 1))


def jackknife(samples, stat):
    """(value, se) of stat(samples) with delete-one-block jackknife over axis 0."""
    N = samples[0].shape[0]
    edges = np.linspace(0, N, BLOCKS + 1).astype(int)
    full = stat(*samples)
    reps = []
    for b in range(BLOCKS):
        keep = np.r_[0:edges[b], edges[b + 1]:N]
        reps.append(stat(*[s[keep] for s in samples]))
    reps = np.array(reps)
    B = len(reps)
    value = B * full - (B - 1) * reps.mean(axis=0)
    se = math.sqrt((B - 1) / B * np.sum((reps - reps.mean(axis=0)) ** 2))
    return float(value), float(se)


def measures(theta0, dtheta, gap):
    m = gap.shape[1]
    out = {}
    r = np.linalg.norm(dtheta.reshape(len(dtheta), -1), axis=1) / np.linalg.norm(theta0.reshape(len(theta0), -1),
                                                                                   axis=1)
    out["ntk_change"] = (float(r.mean()), float(r.std(ddof=1) / math.sqrt(len(r))))

    def mean_change(d, t):
        u = _norm_of_mean(d)
        return math.copysign(math.sqrt(abs(u)), u) / np.linalg.norm(t.mean(axis=0))

    out["mean_ntk_change"] = jackknife([dtheta, theta0], mean_change)
    g = np.linalg.norm(gap, axis=1) / math.sqrt(m)
    out["lin_gap"] = (float(g.mean()), float(g.std(ddof=1) / math.sqrt(len(g))))

    def mean_gap(d):
        u = _norm_of_mean(d)
        return math.copysign(math.sqrt(abs(u)), u) / math.sqrt(m)

    out["mean_lin_gap"] = jackknife([gap], mean_gap)
    return out


def fit_exponent(widths, values, errors):
    """Weighted least squares log v = a + alpha log n: (alpha, se(alpha), chi2, dof)."""
    x = np.log(np.asarray(widths, float))
    v, e = np.asarray(values, float), np.asarray(errors, float)
    if np.any(v <= 0):
        return float("nan"), float("nan"), float("nan"), len(x) - 2
    y, s = np.log(v), e / v
    A = np.stack([np.ones_like(x), x], axis=1) / s[:, None]
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ (A.T @ (y / s))
    chi2 = float(np.sum(((y - coef[0] - coef[1] * x) / s) ** 2))
    return float(coef[1]), float(math.sqrt(cov[1, 1])), chi2, len(x) - 2


def fit_two_term(widths, values, errors):
    """Weighted least squares v = c1/n + c2/sqrt(n): (c1, se, c2, se, chi2, dof)."""
    n = np.asarray(widths, float)
    v, e = np.asarray(values, float), np.asarray(errors, float)
    A = np.stack([1.0 / n, n ** -0.5], axis=1) / e[:, None]
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ (A.T @ (v / e))
    chi2 = float(np.sum((A @ coef - v / e) ** 2))
    return (float(coef[0]), float(math.sqrt(cov[0, 0])), float(coef[1]), float(math.sqrt(cov[1, 1])), chi2,
            len(n) - 2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="widths 32..256, 400 networks each")
    p.add_argument("--widths", default=None, help="comma-separated widths (default 64,128,256,512,1024)")
    p.add_argument("--inits", type=int, default=None, help="networks per width (default 2000; quick 400)")
    p.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    out_dir = check_output_dir(a.out_dir, "out_dir")
    widths = ([int(w) for w in a.widths.split(",")] if a.widths else
              ([32, 64, 128, 256] if a.quick else [64, 128, 256, 512, 1024]))
    N = a.inits if a.inits is not None else (400 if a.quick else 2000)
    counts = {n: N for n in widths}
    X, Y = dataset()
    t0 = time.time()
    rows = {}
    with ProgressBar(sum(counts.values()), label="train_ntk_regime") as bar:
        for n in widths:
            theta0, dtheta, gap = run_width(n, counts[n], a.steps, a.learning_rate, a.seed, X, Y, bar,
                                            a.activation)
            rows[n] = measures(theta0, dtheta, gap)
    fits, ok = {}, True
    for key, derived in DERIVED.items():
        vals = [rows[n][key][0] for n in widths]
        errs = [rows[n][key][1] for n in widths]
        alpha, se, chi2, dof = fit_exponent(widths, vals, errs)
        passed = math.isfinite(alpha) and abs(alpha - derived) <= 0.1
        if a.activation == "tanh":
            ok &= passed
        fits[key] = {"measured": alpha, "se": se, "chi2": chi2, "dof": dof, "derived": derived, "passed": passed,
                     "two_term": dict(zip(("c1", "c1_se", "c2", "c2_se", "chi2", "dof"),
                                          fit_two_term(widths, vals, errs)))}
    print(f"{'n':>6} {'N':>6}  " + "  ".join(f"{k:>22}" for k in DERIVED))
    for n in widths:
        print(f"{n:>6} {counts[n]:>6}  " + "  ".join(f"{rows[n][k][0]:11.4e} +- {rows[n][k][1]:8.2e}"
                                                  for k in DERIVED))
    for key, f in fits.items():
        print(f"{key:>16}: exponent {f['measured']:+.3f} +- {f['se']:.3f} (chi2 {f['chi2']:.1f}/{f['dof']}), "
              f"derived {f['derived']:+.2f}  {'ok' if f['passed'] else 'OFF'}")
    for key, f in fits.items():
        t = f["two_term"]
        print(f"{key:>16}: c1/n + c2/sqrt(n): c1 = {t['c1']:.3g} +- {t['c1_se']:.2g}, "
              f"c2 = {t['c2']:.3g} +- {t['c2_se']:.2g} (chi2 {t['chi2']:.1f}/{t['dof']})")
    local = {k: [math.log(rows[n2][k][0] / rows[n1][k][0]) / math.log(n2 / n1)
                 if rows[n1][k][0] > 0 and rows[n2][k][0] > 0 else None
                 for n1, n2 in zip(widths, widths[1:])] for k in DERIVED}
    print("local slopes between consecutive widths:", {k: [None if v is None else round(v, 3) for v in vs]
                                                       for k, vs in local.items()})
    cw = 2 if a.activation == "relu" else 1
    result = {"activation": a.activation, "local_slopes": local, "widths": widths, "inits": counts,
              "steps": a.steps, "learning_rate": a.learning_rate, "seed": a.seed,
              "network": f"{a.activation}, L=3, C_W={cw}, C_b=0, lambda_W=1, lambda_b=0, n0=8, m=4",
              "values": {k: [rows[n][k][0] for n in widths] for k in DERIVED},
              "errors": {k: [rows[n][k][1] for n in widths] for k in DERIVED},
              "fits": fits, "passed": bool(ok), "elapsed_s": time.time() - t0}
    stem = "train_ntk_regime" + ("" if a.activation == "tanh" else "_" + a.activation)
    atomic_write_text(os.path.join(out_dir, stem + ".json"), dumps_json(result))
    try:
        _plot(widths, rows, fits, os.path.join(out_dir, stem + ".png"), a.activation)
    except ImportError:
        pass
    if a.activation == "tanh":
        print(("PASS" if ok else "FAIL") + " [train_ntk_regime] exponents within 0.1 of the derived -1, -1, -1, -1")
    return 0 if ok else 1


def _plot(widths, rows, fits, path, activation):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for key in DERIVED:
        v = np.array([rows[n][key][0] for n in widths])
        e = np.array([rows[n][key][1] for n in widths])
        f = fits[key]
        ax.errorbar(widths, v, e, marker="o", capsize=3,
                    label=f"{key}: {f['measured']:+.2f}±{f['se']:.2f}"
                          + (f" (derived {f['derived']:+.1f})" if activation == "tanh" else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width n")
    ax.set_ylabel("relative change / gap")
    ax.legend(fontsize=7)
    ax.set_title(f"{activation} L=3: NTK-regime width exponents")
    fig.tight_layout()
    png = figure_png(fig, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, png, "out_dir")


if __name__ == "__main__":
    sys.exit(main())
