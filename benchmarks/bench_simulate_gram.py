"""Benchmark: ``simulate`` with m = 4 inputs against one input, per network.

Run: ``python benchmarks/bench_simulate_gram.py [--width 64] [--depth 20] [--samples 512]
[--activation tanh] [--ensemble gaussian,orthogonal] [--repeat 3]``

Both use the same network and seeds; the cost per network is the marginal one,
(T(2N) - T(N)) / N, which removes the fixed cost of a run (the infinite-width
kernel matrix for G1, Theta1 and the jackknife over all tensor components); the several-input
run propagates the 4 inputs and the NTK over (neuron, input) pairs (m(m+1)/2 = 10
NTK blocks of n x n per layer instead of one, plus the multi-input statistics).
Target (issue 13): the 4-input cost per network is at most m(m+1)/2 = 10 times
the single-input cost at n = 64, L = 20. Prints, per ensemble, the CPU time per
network of each (best of ``--repeat`` rounds after one warm-up that compiles the
kernels; every round times the four runs 1 input N, 2N and 4 inputs N, 2N one
after the other, so that both sides see the same machine load), the ratio, and
the load average before and after. Run with one BLAS/numba thread
(``NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``) on a shared machine.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from fwtheory import Network  # noqa: E402
from fwtheory.mc import simulate  # noqa: E402

GRAM4 = np.array([[1.0, 0.5, 0.2, 0.1], [0.5, 1.0, 0.3, 0.4], [0.2, 0.3, 1.5, 0.6], [0.1, 0.4, 0.6, 1.2]])


def _cpu(net, samples, gram, seed):
    t = time.process_time()
    simulate(net, samples, seed=seed, gram=gram)
    return time.process_time() - t


def measure(net, samples, repeat):
    """{1: (T(N), T(2N)), m: (T(N), T(2N))}: best CPU seconds over ``repeat`` interleaved rounds."""
    m = GRAM4.shape[0]
    best = {1: [np.inf, np.inf], m: [np.inf, np.inf]}
    for r in range(repeat):
        for key, gram in ((1, None), (m, GRAM4)):
            for j, N in enumerate((samples, 2 * samples)):
                best[key][j] = min(best[key][j], _cpu(net, N, gram, r))
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--ensemble", default="gaussian,orthogonal", help="comma-separated list")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    m = GRAM4.shape[0]
    for ensemble in a.ensemble.split(","):
        net = Network(a.activation, depth=a.depth, width=a.width, ensemble=ensemble.strip())
        simulate(net.replace(depth=2), 8, seed=0)                # compile the kernels
        simulate(net.replace(depth=2), 8, seed=0, gram=GRAM4)
        load0 = os.getloadavg()[0]
        best = measure(net, a.samples, a.repeat)
        load1 = os.getloadavg()[0]
        one = (best[1][1] - best[1][0]) / a.samples
        four = (best[m][1] - best[m][0]) / a.samples
        print(f"simulate {a.activation}, {net.ensemble}, n = {a.width}, L = {a.depth}, {a.samples} and "
              f"{2 * a.samples} networks (marginal CPU time per network, best of {a.repeat})")
        print(f"  1 input : {1e3 * one:8.3f} ms")
        print(f"  {m} inputs: {1e3 * four:8.3f} ms")
        print(f"  ratio   : {four / one:8.2f}  (target <= m(m+1)/2 = {m * (m + 1) // 2})")
        print(f"  whole run of {a.samples} networks: 1 input {best[1][0]:.2f} s, {m} inputs "
              f"{best[m][0]:.2f} s CPU; load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
