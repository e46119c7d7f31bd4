"""Trained networks against the infinite-width Gaussian process of their outputs (Lee et al.
arXiv:1902.06720), and where the two part as depth grows.

tanh at criticality (C_W = 1, C_b = 0, lambda_b = lambda_W = 1), width n = 256, input
dimension 8, 8 training and 4 test inputs (standard normal rows), targets
sin(x.u/sqrt(n0)); every network trained 100 full-batch steps with
eta = 0.5 / lambda_max(Theta) (Theta the infinite-width NTK of the training inputs, loss
(1/2) sum (f - y)^2); mean and variance of each test output over ``--inits``
initializations against :func:`fwtheory.trained_gp.trained_gp` (discrete-step form),
at depths L = 3, 6, 12, 24. Criterion (reported per depth): every test point's mean
and variance within 3 SE + 10% of the prediction.

Usage::

    python validation/v9_trained_outputs.py [--inits N] [--depths 3,6,12,24] [--out-dir DIR] [--seed S]

writes v9_trained_outputs.json into DIR and prints one line per depth.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from fwtheory import Network
from fwtheory._io import atomic_write_text, dumps_json
from fwtheory.train import train
from fwtheory.trained_gp import output_kernels, trained_gp


def main(argv=None):
    p = argparse.ArgumentParser(prog="v9_trained_outputs.py", description=__doc__.splitlines()[0])
    p.add_argument("--inits", type=int, default=200)
    p.add_argument("--depths", default="3,6,12,24")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--out-dir", default=".")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(5)
    n0, m, pt = 8, 8, 4
    X, Xt = rng.standard_normal((m, n0)), rng.standard_normal((pt, n0))
    Y = np.sin(X @ rng.standard_normal(n0) / math.sqrt(n0))
    rows = []
    t0 = time.time()
    for L in [int(v) for v in args.depths.split(",")]:
        net = Network("tanh", depth=L, width=args.width, input_dim=n0, C_W=1.0, C_b=0.0, lambda_b=1.0,
                      lambda_W=1.0)
        _, Th = output_kernels(net, X)
        eta = 0.5 / np.linalg.eigvalsh(Th).max()
        gp = trained_gp(net, X, Y, Xt, steps=args.steps, learning_rate=eta)
        seeds = np.random.SeedSequence((args.seed, L)).generate_state(args.inits)
        out, loss = [], []
        for s in seeds:
            h = train(net, X, Y[:, None], steps=args.steps, learning_rate=eta, seed=int(s), X_test=Xt,
                      record_ntk=False)
            out.append(h.test_outputs[-1, :, 0])
            loss.append(h.loss[-1])
        out = np.array(out)
        N = out.shape[0]
        mean, var = out.mean(0), out.var(0, ddof=1)
        mean_se = np.sqrt(var / N)
        var_se = np.sqrt((((out - mean) ** 4).mean(0) - var ** 2) / N)
        pm, pv = gp.mean[:, 0], np.diag(gp.cov)
        ok_m = np.abs(mean - pm) <= 3 * mean_se + 0.1 * np.abs(pm)
        ok_v = np.abs(var - pv) <= 3 * var_se + 0.1 * pv
        row = {"L": L, "eta": eta, "mean": mean, "mean_se": mean_se, "mean_pred": pm, "var": var, "var_se": var_se,
               "var_pred": pv, "prior_var": np.diag(gp.K)[m:], "loss": float(np.mean(loss)),
               "loss_se": float(np.std(loss, ddof=1) / math.sqrt(N)), "loss_pred": gp.expected_loss,
               "mean_ok": ok_m, "var_ok": ok_v, "pass": bool(ok_m.all() and ok_v.all())}
        rows.append(row)
        dm = np.max(np.abs(mean - pm) / np.maximum(mean_se, 1e-300))
        print(f"L = {L:3d}: mean max |dev|/SE = {dm:.2f}; variance measured/predicted = "
              f"{np.array2string(var / pv, precision=3)} (SE {np.array2string(var_se / pv, precision=3)}); "
              f"loss {row['loss']:.4g} +- {row['loss_se']:.2g} vs {row['loss_pred']:.4g}; "
              f"{'PASS' if row['pass'] else 'FAIL'}", flush=True)
    result = {"width": args.width, "inits": args.inits, "steps": args.steps, "seed": args.seed, "rows": rows,
              "seconds": time.time() - t0}
    atomic_write_text(os.path.join(args.out_dir, "v9_trained_outputs.json"), dumps_json(result) + "\n")
    return 0 if rows and rows[0]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
