"""Acceptance run: NTK descendants P..U against predict through a three-width fit.

For tanh (C_W = 1) and ReLU (C_W = 2), Gaussian and orthogonal weights, C_b = 0,
lambda_b = 0, lambda_W = 1, q0 = 1, depth 6: ``simulate_descendants`` at widths
n = 32, 64, 128 (independent runs, default 40000, 20000, 10000 networks, seed 11),
then per layer the weighted fit X(n) = c0 + c1/n + c2/n^2
(:func:`fwtheory.mc.estimators.fit_widths`, its "quadratic" fit; n = n_{l-1}).
Criterion (issue 13): |c0 - predict| <= 3 se(c0) for every descendant P, Q, R,
S, T, U at layers 2..6 (layer 1 is exact: all zero). The two-term fit
c0 + c1/n and the model fit_widths chooses are reported too.

Usage::

    python validation/descendants_width_fit.py [--samples 40000 20000 10000] [--seed 11]
                                               [--configs 0 1 2 3] [--out FILE.json]

Prints one line per (configuration, quantity, layer) and a PASS/FAIL summary;
exit status 0 on PASS. Cost: ~7 min single-threaded (benchmarks/README.md has
the per-network costs); the recorded output is in docs/order2.md.
"""

import argparse
import json
import sys
import time

import numpy as np

from fwtheory import Network, predict, quantities
from fwtheory.mc.descendants import simulate_descendants
from fwtheory.mc.estimators import fit_widths

CONFIGS = [("tanh", 1.0, "gaussian"), ("tanh", 1.0, "orthogonal"),
           ("relu", 2.0, "gaussian"), ("relu", 2.0, "orthogonal")]
WIDTHS = (32, 64, 128)
Z = 3.0


def network(act, C_W, ensemble, depth, width):
    return Network(act, depth=depth, width=width, C_W=C_W, C_b=0.0, lambda_b=0.0, lambda_W=1.0,
                   ensemble=ensemble)


def run_config(act, C_W, ensemble, samples, seed, depth=6, widths=WIDTHS):
    """{key: {"theory", "quadratic": (c0, se), "linear": (c0, se), "model"}} for P..U."""
    th = predict(network(act, C_W, ensemble, depth, widths[-1]))
    sims = [simulate_descendants(network(act, C_W, ensemble, depth, n), N, seed)
            for n, N in zip(widths, samples)]
    inv_n = np.array([[1.0 / n] * depth for n in widths])
    out = {}
    for k in quantities.DESCENDANTS:
        fit = fit_widths(inv_n, [s.values[k] for s in sims], [s.errors[k] for s in sims])
        out[k] = {"theory": np.asarray(th[k], float),
                  "quadratic": (fit["quadratic"]["c0"], fit["quadratic"]["c0_se"]),
                  "linear": (fit["linear"]["c0"], fit["linear"]["c0_se"]),
                  "linear_p": fit["linear"]["p"], "model": fit["model"],
                  "per_width": [(s.values[k], s.errors[k]) for s in sims]}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, nargs=3, default=[40000, 20000, 10000])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--configs", type=int, nargs="+", default=list(range(len(CONFIGS))),
                    help="indices into CONFIGS to run (default: all four)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    start = time.monotonic()
    record, worst, failures = [], 0.0, []
    for act, C_W, ens in [CONFIGS[i] for i in args.configs]:
        res = run_config(act, C_W, ens, args.samples, args.seed, args.depth)
        print(f"== {act} C_W={C_W:g} {ens}; n = {list(WIDTHS)}, networks {args.samples}", flush=True)
        for k, r in res.items():
            for l in range(1, args.depth):
                t = r["theory"][l]
                c0, se = r["quadratic"][0][l], r["quadratic"][1][l]
                c0l, sel = r["linear"][0][l], r["linear"][1][l]
                pull = (c0 - t) / se if se > 0 else (0.0 if c0 == t else np.inf)
                pull_l = (c0l - t) / sel if sel > 0 else (0.0 if c0l == t else np.inf)
                ok = abs(c0 - t) <= Z * se + 1e-12 * (1 + abs(t))
                worst = max(worst, abs(pull)) if np.isfinite(pull) else worst
                if not ok:
                    failures.append(f"{act}/{ens} {k} l={l + 1}")
                print(f"{k} l={l + 1}: theory {t:10.4g} | 3-term c0 {c0:10.4g} +- {se:8.2g} ({pull:+5.2f}) "
                      f"| 2-term c0 {c0l:10.4g} +- {sel:8.2g} ({pull_l:+6.2f}, p={r['linear_p'][l]:.2g}) "
                      f"| chosen {r['model'][l]}-term {'ok' if ok else 'FAIL'}", flush=True)
                record.append(dict(activation=act, C_W=C_W, ensemble=ens, quantity=k, layer=l + 1,
                                   theory=t, c0_quadratic=c0, se_quadratic=se, c0_linear=c0l,
                                   se_linear=sel, p_linear=float(r["linear_p"][l]),
                                   chosen_terms=int(r["model"][l]), agree=bool(ok)))
    elapsed = time.monotonic() - start
    verdict = "PASS" if not failures else "FAIL"
    print(f"{verdict}: {len(record) - len(failures)} of {len(record)} three-width c0 within {Z:g} SE "
          f"(largest |pull| {worst:.2f}); {elapsed:.0f} s" + (f"; failing: {', '.join(failures)}"
                                                              if failures else ""))
    if args.out:
        from fwtheory._io import atomic_write_text, dumps_json

        atomic_write_text(args.out, dumps_json(dict(samples=args.samples, seed=args.seed, widths=WIDTHS,
                                                    depth=args.depth, z=Z, results=record,
                                                    elapsed_s=elapsed, verdict=verdict)) + "\n", "out")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
