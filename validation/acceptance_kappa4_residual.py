"""Acceptance runs: the derived i.i.d. (uniform, Rademacher) and residual recursions
against Monte Carlo (docs/derivation.md, "i.i.d. weights with a fourth cumulant"
and "Residual networks").

    python validation/acceptance_kappa4_residual.py kappa --samples 40000 --out kappa.json
    python validation/acceptance_kappa4_residual.py residual --samples 4000 --out residual.json

Criterion per correlator and layer: |simulation - predict| <= 3 SE + 5% |predict|.
For the i.i.d. ensembles it also reports, per layer, how many standard errors
separate the simulation from the Gaussian prediction (the kappa_4 effect is
resolved where this is large and predict differs from the Gaussian value).
Single thread: export NUMBA_NUM_THREADS=1.
"""

import argparse
import json
import sys
import time

import numpy as np

from fwtheory import Network, predict
from fwtheory.mc import simulate


def _rows(sim, pred, gauss, keys, layers):
    out = {}
    for k in keys:
        s, e, p = (np.asarray(x, float)[:layers] for x in (sim.values[k], sim.errors[k], pred[k]))
        g = np.asarray(gauss[k], float)[:layers] if gauss is not None else None
        tol = 3 * e + 0.05 * np.abs(p)
        row = {"sim": s.tolist(), "se": e.tolist(), "predict": p.tolist(),
               "pass": bool(np.all(np.abs(s - p) <= tol + 1e-12))}
        if g is not None:
            row["gaussian"] = g.tolist()
            with np.errstate(divide="ignore", invalid="ignore"):
                row["sim_vs_gaussian_in_se"] = np.where(e > 0, (s - g) / e, 0.0).tolist()
                row["predict_vs_gaussian_in_se"] = np.where(e > 0, (p - g) / e, 0.0).tolist()
        out[k] = row
    return out


def _kappa_networks():
    """tanh (C_W = 1) and ReLU at criticality (C_W = 2), C_b = 0. A Rademacher first
    layer puts z^(1) on a lattice with an atom at 0, where ReLU's derivative jumps (an
    O(n0^-1/2) effect outside the 1/n theory; predict refuses it), so the ReLU
    Rademacher network has a Gaussian first layer."""
    for act, C_W in (("tanh", 1.0), ("relu", 2.0)):
        for ens in ("uniform", "rademacher"):
            first = "gaussian" if (act == "relu" and ens == "rademacher") else ens
            yield Network(act, depth=6, width=64, C_W=C_W, ensemble=ens, first_layer=first)


def kappa(samples, seed):
    results = []
    for net in _kappa_networks():
        t0 = time.time()
        sim = simulate(net, samples=samples, seed=seed)
        pred = predict(net)
        gnet = net.replace(ensemble="gaussian", first_layer="gaussian")
        gauss = predict(gnet)
        gsim = simulate(gnet, samples=samples, seed=seed + 1)
        rows = _rows(sim, pred, gauss, ("V", "G1", "Theta", "Theta1"), 6)
        for k, row in rows.items():     # the simulated i.i.d. network against the simulated Gaussian one
            d = np.asarray(sim.values[k], float) - np.asarray(gsim.values[k], float)
            e = np.hypot(sim.errors[k], gsim.errors[k])
            row["gaussian_sim"] = np.asarray(gsim.values[k], float).tolist()
            row["gaussian_sim_se"] = np.asarray(gsim.errors[k], float).tolist()
            with np.errstate(divide="ignore", invalid="ignore"):
                row["sim_minus_gaussian_sim_in_se"] = np.where(e > 0, d / e, 0.0).tolist()
        results.append({"activation": net.activation.name, "C_W": net.C_W, "ensemble": net.ensemble,
                        "first_layer": net.first_layer, "width": 64, "depth": 6, "samples": samples,
                        "seconds": time.time() - t0, "correlators": rows})
        _print(results[-1])
    return results


def residual(samples, seed):
    results = []
    for ens in ("gaussian", "orthogonal", "uniform", "rademacher"):
        for gamma in (0.1, 0.5):
            # odd activations only: predict refuses the residual map with a non-odd one
            for act in ("tanh", "sin"):
                if ens in ("uniform", "rademacher") and act == "sin":
                    continue
                depth = 10 if ens in ("gaussian", "orthogonal") else 6
                net = Network(act, depth=depth, width=64, ensemble=ens, residual=gamma)
                t0 = time.time()
                sim = simulate(net, samples=samples, seed=seed)
                pred = predict(net)
                keys = ("K", "V", "G1", "Theta") if ens in ("gaussian", "orthogonal") else ("V", "G1", "Theta")
                rows = _rows(sim, pred, None, keys, depth)
                results.append({"activation": act, "ensemble": ens, "residual": gamma, "width": 64,
                                "depth": depth, "samples": samples, "seconds": time.time() - t0,
                                "correlators": rows})
                _print(results[-1])
    return results


def _print(r):
    head = f"{r['activation']} {r['ensemble']}" + (f" gamma={r['residual']}" if "residual" in r else "")
    head += f" (first layer {r['first_layer']})" if "first_layer" in r else ""
    print(f"{head}: {r['samples']} networks, {r['seconds']:.0f} s", flush=True)
    for k, row in r["correlators"].items():
        line = " ".join(f"{s:+.4f}({e:.4f})/{p:+.4f}" for s, e, p in zip(row["sim"], row["se"], row["predict"]))
        extra = ""
        if "gaussian" in row:
            extra = "  sim-gauss_theory[SE]: " + " ".join(f"{x:+.1f}" for x in row["sim_vs_gaussian_in_se"])
        if "gaussian_sim" in row:
            extra += "  sim-gauss_sim[SE]: " + " ".join(f"{x:+.1f}" for x in row["sim_minus_gaussian_sim_in_se"])
        print(f"  {k:7s} {'PASS' if row['pass'] else 'FAIL'} sim(se)/predict: {line}{extra}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("kappa", "residual"))
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    res = kappa(args.samples, args.seed) if args.part == "kappa" else residual(args.samples, args.seed)
    ok = all(row["pass"] for r in res for row in r["correlators"].values())
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"part": args.part, "seed": args.seed, "results": res, "pass": ok}, fh, indent=1)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
