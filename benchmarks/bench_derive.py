"""Benchmark of fwtheory.derive, cold (issue 12); prints timings, asserts nothing.

Each measurement runs in a fresh Python process (no sympy cache, no lru_cache):

1. every single-input order-1 correlator (K, G1, V, Theta, Theta1, D, F, A, B and the
   NTK descendants P, Q, R, S, T, U) for the Gaussian and the orthogonal ensemble
   (target: under 3 s);
2. the order-1/n^2 correlators G2, V1, U6, both ensembles (target: under 60 s).

Printed per measurement: the import of fwtheory.symbolic (sympy included), the
derivations alone, and their sum (wall clock), and the CPU time of the child
process (what an idle core would take; the wall clock grows with the machine's
load, printed too); the targets apply to the sum. ``--repeat k``
repeats each measurement in k fresh processes (median and range).

Run: python benchmarks/bench_derive.py [--repeat 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from fwtheory.symbolic import derive
from fwtheory.symbolic.derivation import NAMES, ORDER2_NAMES
t1, c1 = time.perf_counter(), time.process_time()
names = NAMES if sys.argv[1] == "1" else ORDER2_NAMES
for ensemble in ("gaussian", "orthogonal"):
    for name in names:
        derive(name, ensemble)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "derive": t2 - t1, "cpu_import": c1 - c0, "cpu_derive": c2 - c1,
                  "count": 2 * len(names)}))
"""

TARGETS = {"1": 3.0, "2": 60.0}


def measure(order):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD, order], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes per measurement (default: 1)")
    args = ap.parse_args(argv)
    for order, label in (("1", "order 1/n (15 correlators)"), ("2", "order 1/n^2 (G2, V1, U6)")):
        runs = [measure(order) for _ in range(args.repeat)]
        total = [r["import"] + r["derive"] for r in runs]
        med = statistics.median(total)
        spread = f" (range {min(total):.2f}-{max(total):.2f})" if len(runs) > 1 else ""
        cpu = statistics.median(r["cpu_import"] + r["cpu_derive"] for r in runs)
        print(f"cold derive, {label}, gaussian + orthogonal ({runs[0]['count']} recursions): "
              f"import {statistics.median(r['import'] for r in runs):.2f} s + derive "
              f"{statistics.median(r['derive'] for r in runs):.2f} s = {med:.2f} s wall{spread}, "
              f"{cpu:.2f} s CPU (import {statistics.median(r['cpu_import'] for r in runs):.2f} + derive "
              f"{statistics.median(r['cpu_derive'] for r in runs):.2f}; target < {TARGETS[order]:g} s); "
              f"load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
