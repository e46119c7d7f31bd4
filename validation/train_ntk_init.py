"""The trainer's NTK at initialization against fwtheory.simulate (docs/training.md).

For tanh (C_W = 1, C_b = 0.1, lambda_b = 0.5) and ReLU (C_W = 2), Gaussian and
orthogonal weights, L = 3 and 6, n = 32, input x = (1, ..., 1): over N
initializations drawn by fwtheory.train.init_params, the output-layer NTK of
fwtheory.train.empirical_ntk (two outputs) gives E[H_11], Var(H_11) and E[H_12^2];
fwtheory.simulate (N networks, its own random streams) measures the same
moments at layer L (jackknife errors). Pass: every difference within 3 combined SE.

Usage::

    python validation/train_ntk_init.py [--inits N] [--out-dir DIR] [--seed S]
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from fwtheory import Network
from fwtheory._io import ProgressBar, atomic_write_text, check_output_dir, dumps_json
from fwtheory.mc import simulate
from fwtheory.train import empirical_ntk, init_params

WIDTH = 32


def trainer_moments(net, N, seed, bar=None):
    x = np.ones((1, net.input_dim))
    H = np.empty((N, 2, 2))
    for s in range(N):
        H[s] = empirical_ntk(net, init_params(net, net.input_dim, 2, seed + s), x)[0, :, 0, :]
        if bar is not None:
            bar.update(1)
    d, off = H[:, 0, 0], H[:, 0, 1]
    rt = math.sqrt(N)
    return {"E[H_ii]": (d.mean(), d.std(ddof=1) / rt),
            "Var(H_ii)": (np.var(d, ddof=1), np.std((d - d.mean()) ** 2, ddof=1) / rt),
            "E[H_ik^2]": (np.mean(off ** 2), np.std(off ** 2, ddof=1) / rt)}


def simulate_moments(net, N, seed):
    sim = simulate(net, samples=N, seed=seed)
    out = {}
    for key, f in (("E[H_ii]", lambda m: m["h"]), ("Var(H_ii)", lambda m: m["h2"] - m["Eh^2"]),
                   ("E[H_ik^2]", lambda m: m["hik2"])):
        v, e = sim.jackknife(f)
        out[key] = (float(v[-1]), float(e[-1]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inits", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    out_dir = check_output_dir(a.out_dir, "out_dir")
    t0 = time.time()
    rows, ok = [], True
    configs = [(act, ens, L) for act in ("tanh", "relu") for ens in ("gaussian", "orthogonal") for L in (3, 6)]
    with ProgressBar(a.inits * len(configs), label="train_ntk_init") as bar:
        for act, ens, L in configs:
            kw = dict(C_W=1.0, C_b=0.1, lambda_b=0.5) if act == "tanh" else dict(C_W=2.0)
            net = Network(act, depth=L, width=WIDTH, ensemble=ens, **kw)
            mine = trainer_moments(net, a.inits, a.seed * 1_000_000, bar)
            ref = simulate_moments(net, a.inits, a.seed)
            for key in mine:
                (v, e), (rv, re) = mine[key], ref[key]
                z = (v - rv) / math.hypot(e, re)
                ok &= abs(z) <= 3
                rows.append({"activation": act, "ensemble": ens, "depth": L, "quantity": key, "trainer": v,
                             "trainer_se": e, "simulate": rv, "simulate_se": re, "z": z})
    print(f"{'act':>5} {'ens':>10} {'L':>2} {'quantity':>10} {'trainer':>22} {'simulate':>22} {'z':>6}")
    for r in rows:
        print(f"{r['activation']:>5} {r['ensemble']:>10} {r['depth']:>2} {r['quantity']:>10} "
              f"{r['trainer']:11.5g} +- {r['trainer_se']:8.2g} {r['simulate']:11.5g} +- {r['simulate_se']:8.2g} "
              f"{r['z']:6.2f}")
    atomic_write_text(os.path.join(out_dir, "train_ntk_init.json"),
                      dumps_json({"rows": rows, "width": WIDTH, "inits": a.inits, "seed": a.seed,
                                  "passed": bool(ok), "elapsed_s": time.time() - t0}))
    print(("PASS" if ok else "FAIL") + " [train_ntk_init] trainer NTK moments within 3 SE of simulate")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
