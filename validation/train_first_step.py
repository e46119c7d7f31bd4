"""First gradient step: the mean NTK change against the dNTK prediction (docs/training.md).

One training input x = (1, ..., 1) (q0 = 1), one output, target y = 0, n = 64,
one full-batch GD step theta <- theta - eta lambda dL/dtheta with
L = (1/2)(z - y)^2. Over N initializations the mean of Delta Theta / eta is held
against

    E[Delta Theta] / eta = -2 (P + 2Q) / n          (P, Q of fwtheory.predict at layer L)

for tanh (C_W = 1) and ReLU (C_W = 2), Gaussian and orthogonal weights, L = 2, 3, 4,
at two step sizes: eta Theta = 0.01 ("finite") and eta Theta = 1e-7 (the eta -> 0
limit taken network by network: for ReLU no preactivation crosses the kink, so
this is the almost-everywhere derivative). For ReLU at finite eta the mean also
contains the kink-crossing term (order eta / sqrt(n)); for L = 2 it is derived in
closed form (fwtheory.train.first_step.relu_crossing_coefficient) and checked with
more initializations.

Pass: |measured - predicted| <= 3 SE + 10% |predicted| for tanh at finite eta and for
both activations in the eta -> 0 limit, and for ReLU L = 2 at finite eta with the
crossing term included. The ReLU finite-eta rows against the dNTK term alone are
reported, not required.

Usage::

    python validation/train_first_step.py [--inits N] [--out-dir DIR] [--seed S]
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
from fwtheory.train.first_step import dntk_first_step, relu_crossing_coefficient

WIDTH = 64


def first_step(net, N, eta_theta, theta, seed, bar=None):
    X, Y = np.ones((1, net.input_dim)), np.zeros((1, 1))
    eta = eta_theta / theta
    d = np.empty(N)
    for s in range(N):
        h = train(net, X, Y, steps=1, learning_rate=eta, seed=seed + s)
        d[s] = (h.ntk[1, 0, 0] - h.ntk[0, 0, 0]) / eta
        if bar is not None:
            bar.update(1)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(N))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inits", type=int, default=2000)
    p.add_argument("--crossing-inits", type=int, default=20000, help="ReLU L=2 finite-eta check")
    p.add_argument("--crossing-width", type=int, default=WIDTH, help="width of the ReLU L=2 check (default 64)")
    p.add_argument("--crossing-only", action="store_true", help="run only the ReLU L=2 crossing check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    out_dir = check_output_dir(a.out_dir, "out_dir")
    configs = [] if a.crossing_only else [(act, ens, L) for act in ("tanh", "relu")
                                          for ens in ("gaussian", "orthogonal") for L in (2, 3, 4)]
    t0 = time.time()
    rows, ok = [], True
    total = 2 * a.inits * len(configs) + a.crossing_inits
    with ProgressBar(total, label="train_first_step") as bar:
        for act, ens, L in configs:
            net = Network(act, depth=L, width=WIDTH, C_W=2.0 if act == "relu" else 1.0, ensemble=ens)
            pred, theta = dntk_first_step(net)
            seed = a.seed * 10_000_000
            fin = first_step(net, a.inits, 0.01, theta, seed, bar)
            lim = first_step(net, a.inits, 1e-7, theta, seed, bar)
            tol = lambda m: 3 * m[1] + 0.1 * abs(pred)  # noqa: E731
            pass_fin = abs(fin[0] - pred) <= tol(fin)
            pass_lim = abs(lim[0] - pred) <= tol(lim)
            required = pass_lim and (pass_fin or act == "relu")
            ok &= required
            rows.append({"activation": act, "ensemble": ens, "depth": L, "width": WIDTH, "inits": a.inits,
                         "predicted": pred, "finite": fin[0], "finite_se": fin[1], "limit": lim[0],
                         "limit_se": lim[1], "finite_within": bool(pass_fin), "limit_within": bool(pass_lim)})
        cw = a.crossing_width
        net = Network("relu", depth=2, width=cw, C_W=2.0)
        pred, theta = dntk_first_step(net)
        cross = -relu_crossing_coefficient(2.0, 1.0, 1.0) / math.sqrt(cw)
        m = first_step(net, a.crossing_inits, 0.01, theta, a.seed * 10_000_000 + 5_000_000, bar)
        within = abs(m[0] - (pred + cross)) <= 3 * m[1] + 0.1 * abs(pred + cross)
        ok &= within
        crossing = {"width": cw, "predicted_dntk": pred, "predicted_crossing": cross, "predicted_total": pred + cross,
                    "measured": m[0], "se": m[1], "inits": a.crossing_inits, "within": bool(within)}
    print(f"{'act':>5} {'ens':>10} {'L':>2} {'-2(P+2Q)/n':>11} {'eta.Theta=0.01':>22} {'eta->0':>22}")
    for r in rows:
        print(f"{r['activation']:>5} {r['ensemble']:>10} {r['depth']:>2} {r['predicted']:11.5f} "
              f"{r['finite']:11.5f} +- {r['finite_se']:7.5f}{'' if r['finite_within'] else '*'} "
              f"{r['limit']:11.5f} +- {r['limit_se']:7.5f}{'' if r['limit_within'] else '*'}")
    c = crossing
    print(f"ReLU L=2 finite eta, n = {c['width']}, {c['inits']} inits: measured {c['measured']:.5f} +- {c['se']:.5f}; "
          f"dNTK {c['predicted_dntk']:.5f} + crossing {c['predicted_crossing']:.5f} = {c['predicted_total']:.5f}")
    print("(* = outside 3 SE + 10%)")
    result = {"rows": rows, "relu_crossing_depth2": crossing, "seed": a.seed, "passed": bool(ok),
              "elapsed_s": time.time() - t0,
              "setup": "x = (1,...,1), q0 = 1, y = 0, one output, n = 64, C_b = 0, lambda_W = 1, lambda_b = 0"}
    name = "train_first_step.json" if not a.crossing_only else f"train_first_step_crossing_{cw}.json"
    atomic_write_text(os.path.join(out_dir, name), dumps_json(result))
    print(("PASS" if ok else "FAIL") + " [train_first_step] E[Delta Theta] = -2 eta (P + 2Q)/n "
          "(tanh; ReLU as eta -> 0, and with the kink-crossing term at L = 2)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
