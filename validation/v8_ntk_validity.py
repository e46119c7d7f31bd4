"""Seleznova and Kutyniok's NTK-regime claims, measured (arXiv:2012.04477, arXiv:2202.00553).

ReLU and sigmoid, width n = 100, input dimension 100, unit-norm inputs, the authors'
standard parametrization (every weight and bias at learning rate 1: lambda_b = 1,
lambda_W = n in PDLT's convention), sigma_b^2 = C_b in {0, 0.1}; the protocol of
:mod:`fwtheory.validity` scaled down (fewer depths, C_W values and initializations).

Part A: initialization dispersion std/mean of Theta(x0, x0), 400 initializations, at
depth/width <= 0.1 (L = 2, 5, 10) in every phase, against sqrt((A + 2B)/n)/Theta
(order 1/n); criterion |measured - predicted| <= 3 SE + 10% of the prediction.
Part B: the depth x C_W study (init dispersion, NTK change after T steps, final loss)
with the theory beside each (:func:`fwtheory.validity.validity_study`).
Part C: bias-free ReLU (lambda_b = 0): the same study, to show the scale invariance.

Usage::

    python validation/v8_ntk_validity.py [--quick] [--out-dir DIR] [--seed S]

writes v8_ntk_validity.json and v8_<activation>_cb<C_b>.png heat maps into DIR and
prints the tables; exit status 0 when every part-A cell passes, else 1.
"""

import argparse
import os
import sys
import time

from fwtheory import Network
from fwtheory._io import atomic_write_text, dumps_json
from fwtheory.ntk_dispersion import ntk_dispersion
from fwtheory.validity import _render, init_dispersion, validity_study

N = 100
CW_A = {"relu": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5), "sigmoid": (0.5, 3.5, 50.0, 103.0, 200.0)}
CW_B = {"relu": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5), "sigmoid": (0.5, 2.0, 3.5, 50.0, 103.0, 200.0)}


def part_a(seed, inits, depths):
    rows = []
    for act in ("relu", "sigmoid"):
        for cb in (0.0, 0.1):
            for L in depths:
                for cw in CW_A[act]:
                    net = Network(act, depth=L, width=N, C_W=cw, C_b=cb, lambda_b=1.0, lambda_W=float(N))
                    cv, se, _ = init_dispersion(net, inits, seed=seed)
                    pred = float(ntk_dispersion(net, input_norm=1.0 / N).relative[-1])
                    ok = abs(cv - pred) <= 3 * se + 0.1 * pred
                    rows.append({"activation": act, "C_b": cb, "L": L, "C_W": cw, "measured": cv, "se": se,
                                 "predicted": pred, "deviation": cv / pred - 1.0, "pass": bool(ok)})
                    print(f"A {act:7s} C_b={cb:<4g} L={L:<3d} C_W={cw:<6g} measured {cv:.4f} +- {se:.4f}  "
                          f"order-1/n {pred:.4f}  ({100 * (cv / pred - 1):+.1f}%) {'ok' if ok else 'FAIL'}",
                          flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="v8_ntk_validity.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out-dir", default=".")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    t0 = time.time()
    depths_a = (2, 5, 10)
    depths_b = (2, 5, 10) if args.quick else (2, 5, 10, 20, 40)
    inits_a, inits_b, steps = (150, 12, 30) if args.quick else (400, 30, 50)
    result = {"width": N, "seed": args.seed, "part_a": part_a(args.seed, inits_a, depths_a), "part_b": [],
              "part_c": None}
    for act in ("relu", "sigmoid"):
        for cb in (0.0, 0.1):
            s = validity_study(act, width=N, depths=depths_b, cw_values=CW_B[act], cb=cb, inits=inits_b,
                               steps=steps, seed=args.seed)
            print(f"\nB {act}, C_b = {cb:g}, edge of chaos C_W = {s.edge_of_chaos}", flush=True)
            print(s.table(), flush=True)
            result["part_b"].append(s.to_dict())
            with open(os.path.join(args.out_dir, f"v8_{act}_cb{cb:g}.png"), "wb") as fh:
                fh.write(_render(s))
    s = validity_study("relu", width=N, depths=depths_b[:3], cw_values=(1.0, 2.0, 3.0), cb=0.0, inits=inits_b,
                       steps=steps, lambda_b=0.0, seed=args.seed)
    print("\nC bias-free ReLU (lambda_b = 0)", flush=True)
    print(s.table(), flush=True)
    result["part_c"] = s.to_dict()
    passed = all(r["pass"] for r in result["part_a"])
    result["pass"] = passed
    result["seconds"] = time.time() - t0
    atomic_write_text(os.path.join(args.out_dir, "v8_ntk_validity.json"), dumps_json(result) + "\n")
    n_ok = sum(r["pass"] for r in result["part_a"])
    print(f"\nv8 {'PASS' if passed else 'FAIL'}: part A {n_ok}/{len(result['part_a'])} cells within 3 SE + 10%; "
          f"{result['seconds']:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
