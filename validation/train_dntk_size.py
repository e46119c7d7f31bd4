"""The dNTK's size in one network: the spread over networks of the first-step NTK change
(docs/training.md, "The size of the dNTK in one network").

One input x = (1, ..., 1), one output, target y = 0, tanh at criticality (C_W = 1,
C_b = 0), L = 3, one GD step with eta Theta = 1e-7 (the eta -> 0 limit), so that per
network Delta Theta / eta = -2 dH z exactly to first order. Over N networks per width
it reports the standard deviation of Delta Theta / eta (the dNTK's per-network size,
times z) next to that of Theta itself, with their width exponents: derived
std(dH z) ~ n^-1 and std(Theta) ~ n^-1/2. SE of a standard deviation from the
sample fourth moment (the distribution of dH z is far from normal; its kurtosis is
printed).

Usage::

    python validation/train_dntk_size.py [--widths 32,64,128,256,512] [--inits N] [--out-dir DIR]
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from fwtheory import Network
from fwtheory._io import ProgressBar, atomic_write_text, check_output_dir, dumps_json
from fwtheory.train import train


def std_se(x):
    """SE of the sample standard deviation without assuming normality:
    Var(s^2) ~ (m4 - s^4) / N, SE(s) = SE(s^2) / (2 s)."""
    s2 = np.var(x, ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return float(math.sqrt(max(m4 - s2 * s2, 0.0) / len(x)) / (2.0 * math.sqrt(s2)))


def fit(widths, values, errors):
    x = np.log(np.asarray(widths, float))
    y = np.log(np.asarray(values, float))
    s = np.asarray(errors, float) / np.asarray(values, float)
    A = np.stack([np.ones_like(x), x], axis=1) / s[:, None]
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ (A.T @ (y / s))
    chi2 = float(np.sum(((y - coef[0] - coef[1] * x) / s) ** 2))
    return float(coef[1]), float(math.sqrt(cov[1, 1])), chi2, len(x) - 2


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="32,64,128,256,512")
    p.add_argument("--inits", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    out_dir = check_output_dir(a.out_dir, "out_dir")
    widths = [int(w) for w in a.widths.split(",")]
    t0 = time.time()
    rows = {}
    with ProgressBar(a.inits * len(widths), label="train_dntk_size") as bar:
        for n in widths:
            net = Network("tanh", depth=3, width=n)
            X, Y = np.ones((1, n)), np.zeros((1, 1))
            eta = 1e-7
            d, th = np.empty(a.inits), np.empty(a.inits)
            for s in range(a.inits):
                h = train(net, X, Y, steps=1, learning_rate=eta, seed=a.seed * 10_000_000 + s)
                d[s] = (h.ntk[1, 0, 0] - h.ntk[0, 0, 0]) / eta
                th[s] = h.ntk[0, 0, 0]
                bar.update(1)
            rows[n] = {"std_dtheta": float(d.std(ddof=1)), "std_dtheta_se": std_se(d),
                       "mean_dtheta": float(d.mean()), "mean_dtheta_se": float(d.std(ddof=1) / math.sqrt(a.inits)),
                       "kurtosis_dtheta": float(np.mean((d - d.mean()) ** 4) / np.var(d) ** 2),
                       "std_theta": float(th.std(ddof=1)), "std_theta_se": std_se(th),
                       "mean_theta": float(th.mean())}
    fits = {}
    for key, derived in (("std_dtheta", -1.0), ("std_theta", -0.5)):
        alpha, se, chi2, dof = fit(widths, [rows[n][key] for n in widths], [rows[n][key + "_se"] for n in widths])
        fits[key] = {"measured": alpha, "se": se, "chi2": chi2, "dof": dof, "derived": derived}
    print(f"{'n':>5} {'std(dTheta/eta)':>22} {'mean(dTheta/eta)':>22} {'std(Theta)':>20} {'kurtosis':>9}")
    for n in widths:
        r = rows[n]
        print(f"{n:>5} {r['std_dtheta']:11.4e} +- {r['std_dtheta_se']:7.1e} {r['mean_dtheta']:11.4e} +- "
              f"{r['mean_dtheta_se']:7.1e} {r['std_theta']:9.4e} +- {r['std_theta_se']:7.1e} {r['kurtosis_dtheta']:9.1f}")
    for key, f in fits.items():
        print(f"{key}: exponent {f['measured']:+.3f} +- {f['se']:.3f} (chi2 {f['chi2']:.1f}/{f['dof']}), "
              f"derived {f['derived']:+.1f}")
    atomic_write_text(os.path.join(out_dir, "train_dntk_size.json"),
                      dumps_json({"widths": widths, "inits": a.inits, "seed": a.seed, "rows": rows, "fits": fits,
                                  "elapsed_s": time.time() - t0}))
    ok = all(abs(f["measured"] - f["derived"]) <= 0.1 for f in fits.values())
    print(("PASS" if ok else "FAIL") + " [train_dntk_size] std(dH z) ~ n^-1, std(Theta) ~ n^-1/2 within 0.1")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
