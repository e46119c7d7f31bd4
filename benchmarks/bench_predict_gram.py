"""Benchmark of predict(network, gram=G) (issue 13); prints timings, asserts nothing.

m = 4 inputs, depth 100, all order-1 tensors (K, G1, V, Theta, Theta1, D, F, A, B), tanh
and ReLU, Gaussian weights (target: under 2 s). Reported: the first call in a fresh
process with a warm disk cache (derivation and compiled term arrays on disk), and the
median of repeated calls in one process (compiled pieces in memory; the time is then
the Gaussian expectations and the layer recursion). The very first run on a machine
also derives and compiles (cold: printed separately, disk cache off).

Run: python benchmarks/bench_predict_gram.py
"""

import os
import subprocess
import sys
import tempfile

CHILD = r"""
import statistics, time
import numpy as np
from fwtheory import Network, predict
gram = np.array([[1.0, 0.5, 0.2, -0.1], [0.5, 1.2, 0.3, 0.1], [0.2, 0.3, 0.9, 0.4], [-0.1, 0.1, 0.4, 1.1]])
net = Network("{act}", depth=100, width=64, C_W={cw})
t0 = time.perf_counter()
predict(net, gram=gram)
first = time.perf_counter() - t0
times = []
for _ in range(3):
    t0 = time.perf_counter()
    predict(net, gram=gram)
    times.append(time.perf_counter() - t0)
print(first, statistics.median(times))
"""


def run(act, cw, cache):
    env = dict(os.environ, FWTHEORY_CACHE_DIR=cache, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD.format(act=act, cw=cw)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main():
    with tempfile.TemporaryDirectory() as cache:
        for act, cw in (("tanh", 1.0), ("relu", 2.0)):
            cold, _ = run(act, cw, "off") if act == "tanh" else (float("nan"), None)
            run(act, cw, cache)                        # fill the disk cache
            first, repeat = run(act, cw, cache)
            print(f"predict --gram m = 4, depth 100, {act:5s}: fresh process, warm disk cache "
                  f"{first:5.2f} s; repeated {repeat:5.2f} s (target < 2 s)"
                  + (f"; cold (derive + compile) {cold:6.1f} s" if act == "tanh" else ""))


if __name__ == "__main__":
    main()
