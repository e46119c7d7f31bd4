"""Evidence for issue 12 (kappa_4 ensembles): V, G1, Theta, Theta1 of i.i.d. (uniform,
Rademacher) and Gaussian networks over widths n = 32, 64, 128, width-extrapolated.

For each network, ``simulate(net, samples, seed, widths=[32, 64, 128])`` runs the three widths
(same seed for every network, so width n uses SeedSequence(seed, spawn_key=(n, c))) and
``fwtheory.mc.estimators.fit_widths`` fits c0 + c1/n (and c0 + c1/n + c2/n^2 where the data
reject the two-term model). Reported per correlator and layer l <= 6:

* the n = 64 criterion of the issue: |sim - predict| <= 3 SE + 5% |predict|;
* the chosen fit's c0 +- SE against predict, z = (c0 - predict)/SE, and the three-term
  fit's c0 +- SE (which interpolates the three widths);
* for ReLU V with Gaussian weights, the exact finite-n value n K^2 ((1 + 5/n)^(l-1) - 1)
  at each width and what each fit model gives when fitted to those exact values
  (the truncation bias of the extrapolation itself).

ReLU with Rademacher weights uses a Gaussian first layer (predict refuses a Rademacher
first layer with C_b = 0 for kinked activations: z^(1) has an atom at 0); ``--which relu_cb``
runs a Rademacher first layer with C_b = 0.1 instead (the Gaussian bias smooths the lattice of
z^(1)), next to the Gaussian network with the same C_b.

Run (single thread): NUMBA_NUM_THREADS=1 python validation/evidence_kappa4_widths.py \
    --samples 60000 --seed 5 --out kappa4_widths.json
"""

import argparse
import json
import sys
import time

import numpy as np

from fwtheory import Network, predict, simulate
from fwtheory.mc.estimators import fit_widths

WIDTHS = (32, 64, 128)
DEPTH = 6
KEYS = ("V", "G1", "Theta", "Theta1")


def networks(which):
    out = []
    if which in ("relu", "all"):
        out += [("relu", 2.0, "uniform", "uniform"), ("relu", 2.0, "rademacher", "gaussian"),
                ("relu", 2.0, "gaussian", "gaussian")]
    if which == "tanh_uniform":          # the rerun of one network at another seed
        out += [("tanh", 1.0, "uniform", "uniform")]
    if which in ("relu_cb", "all"):      # Rademacher first layer made admissible by a bias, C_b = 0.1
        out += [("relu", 2.0, "rademacher", "rademacher", 0.1), ("relu", 2.0, "gaussian", "gaussian", 0.1)]
    if which in ("tanh", "all"):
        out += [("tanh", 1.0, "uniform", "uniform"), ("tanh", 1.0, "rademacher", "rademacher"),
                ("tanh", 1.0, "gaussian", "gaussian")]
    return out


def relu_gaussian_exact(n, K=2.0, L=DEPTH):
    """n (E[z_i^2 z_k^2] - K^2) for ReLU, C_W = 2, C_b = 0, Gaussian weights, layers 1..L."""
    l = np.arange(1, L + 1)
    return n * K ** 2 * ((1.0 + 5.0 / n) ** (l - 1) - 1.0)


def run(act, C_W, ens, first, C_b=0.0, *, samples, seed):
    net = Network(act, depth=DEPTH, width=64, C_W=C_W, C_b=C_b, ensemble=ens, first_layer=first)
    t0 = time.time()
    sim = simulate(net, samples, seed, widths=list(WIDTHS))
    secs = time.time() - t0
    pred = predict(net)
    ex = sim.extrapolation
    inv_n = np.array([[1.0 / w] * DEPTH for w in WIDTHS])   # input_dim follows the width
    rows = {}
    for k in KEYS:
        p = np.asarray(pred[k], float)[:DEPTH]
        vals = np.array([np.asarray(r.values[k], float)[:DEPTH] for r in ex.per_width])
        errs = np.array([np.asarray(r.errors[k], float)[:DEPTH] for r in ex.per_width])
        fit = fit_widths(inv_n, vals, errs)
        lin, quad = fit["linear"], fit["quadratic"]
        i64 = WIDTHS.index(64)
        with np.errstate(divide="ignore", invalid="ignore"):
            row = {
                "predict": p.tolist(),
                "per_width": {str(w): {"sim": vals[j].tolist(), "se": errs[j].tolist()} for j, w in enumerate(WIDTHS)},
                "n64_pass": (np.abs(vals[i64] - p) <= 3 * errs[i64] + 0.05 * np.abs(p) + 1e-12).tolist(),
                "n64_z": np.where(errs[i64] > 0, (vals[i64] - p) / errs[i64], 0.0).tolist(),
                "model": fit["model"].tolist(),
                "c0": fit["c0"].tolist(), "c0_se": fit["c0_se"].tolist(),
                "z_c0": np.where(fit["c0_se"] > 0, (fit["c0"] - p) / fit["c0_se"], 0.0).tolist(),
                "lin_c0": lin["c0"].tolist(), "lin_c0_se": lin["c0_se"].tolist(), "lin_p": lin["p"].tolist(),
                "quad_c0": quad["c0"].tolist(), "quad_c0_se": quad["c0_se"].tolist(),
                "z_quad": np.where(quad["c0_se"] > 0, (quad["c0"] - p) / quad["c0_se"], 0.0).tolist(),
            }
        if act == "relu" and k == "V" and C_b == 0:
            exact = np.array([relu_gaussian_exact(w) for w in WIDTHS])
            ef = fit_widths(inv_n, exact, np.ones_like(exact))
            row["gaussian_exact_per_width"] = {str(w): exact[j].tolist() for j, w in enumerate(WIDTHS)}
            row["exact_fit_lin_c0"] = ef["linear"]["c0"].tolist()
            row["exact_fit_quad_c0"] = ef["quadratic"]["c0"].tolist()
        rows[k] = row
    res = {"activation": act, "C_W": C_W, "C_b": C_b, "ensemble": ens, "first_layer": first, "widths": list(WIDTHS),
           "depth": DEPTH, "samples": samples, "seed": seed, "seconds": secs, "correlators": rows}
    show(res)
    return res


def show(r):
    print(f"{r['activation']} C_W={r['C_W']} C_b={r['C_b']} {r['ensemble']} (first layer {r['first_layer']}): "
          f"{r['samples']} networks/width, {r['seconds']:.0f} s", flush=True)
    for k, row in r["correlators"].items():
        print(f"  {k}: predict " + " ".join(f"{x:.4g}" for x in row["predict"]), flush=True)
        print("     n=64 " + " ".join(f"{s:.4g}({e:.2g})" for s, e in
                                      zip(row["per_width"]["64"]["sim"], row["per_width"]["64"]["se"]))
              + "  pass " + "".join("Y" if x else "N" for x in row["n64_pass"]), flush=True)
        print("     c0   " + " ".join(f"{c:.4g}({e:.2g})[{m}]" for c, e, m in zip(row["c0"], row["c0_se"], row["model"]))
              + "  z " + " ".join(f"{z:+.1f}" for z in row["z_c0"]), flush=True)
        print("     quad " + " ".join(f"{c:.4g}({e:.2g})" for c, e in zip(row["quad_c0"], row["quad_c0_se"]))
              + "  z " + " ".join(f"{z:+.1f}" for z in row["z_quad"]), flush=True)
        if "exact_fit_quad_c0" in row:
            print("     exact Gaussian fit c0: lin " + " ".join(f"{x:.4g}" for x in row["exact_fit_lin_c0"])
                  + "; quad " + " ".join(f"{x:.4g}" for x in row["exact_fit_quad_c0"]), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--which", choices=("relu", "relu_cb", "tanh", "tanh_uniform", "all"), default="all")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    res = [run(*spec, samples=a.samples, seed=a.seed) for spec in networks(a.which)]
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"seed": a.seed, "samples": a.samples, "results": res}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
