"""Benchmark: ``simulate`` with m = 4 inputs against one input, per network.

Run: ``python benchmarks/bench_simulate_gram.py [--width 64] [--depth 20] [--samples 512]
[--activation tanh] [--ensemble gaussian]``

Both use the same network and seeds; the cost per network is the marginal one,
(T(2N) - T(N)) / N, which removes the fixed cost of a run (the infinite-width
kernel matrix for G1, Theta1 and the jackknife over all tensor components); the several-input
run propagates the 4 inputs and the NTK over (neuron, input) pairs (m(m+1)/2 = 10
NTK blocks of n x n per layer instead of one, plus the multi-input statistics).
Target (issue 13): the 4-input cost per network is at most m(m+1)/2 = 10 times
the single-input cost at n = 64, L = 20. Prints the CPU time per network of
each (best of ``--repeat`` runs after one warm-up that compiles the kernels), the
fixed costs, and the ratio.
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


def _cpu(net, samples, gram, repeat):
    best = np.inf
    for r in range(repeat):
        t = time.process_time()
        simulate(net, samples, seed=r, gram=gram)
        best = min(best, time.process_time() - t)
    return best


def _cpu_per_network(net, samples, gram, repeat):
    """Marginal CPU time per network: (T(2N) - T(N)) / N, so that the fixed cost of a
    run (infinite-width kernel matrix, jackknife over the components) drops out."""
    return (_cpu(net, 2 * samples, gram, repeat) - _cpu(net, samples, gram, repeat)) / samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--ensemble", default="gaussian")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    net = Network(a.activation, depth=a.depth, width=a.width, ensemble=a.ensemble)
    simulate(net.replace(depth=2), 8, seed=0)                # compile the kernels
    simulate(net.replace(depth=2), 8, seed=0, gram=GRAM4)
    one = _cpu_per_network(net, a.samples, None, a.repeat)
    four = _cpu_per_network(net, a.samples, GRAM4, a.repeat)
    m = GRAM4.shape[0]
    print(f"simulate {a.activation}, {a.ensemble}, n = {a.width}, L = {a.depth}, {a.samples} networks "
          f"(CPU time per network, best of {a.repeat})")
    print(f"  1 input : {1e3 * one:8.3f} ms")
    print(f"  {m} inputs: {1e3 * four:8.3f} ms")
    print(f"  ratio   : {four / one:8.2f}  (target <= m(m+1)/2 = {m * (m + 1) // 2})")
    print(f"  whole run of {a.samples} networks: 1 input {_cpu(net, a.samples, None, 1):.2f} s, "
          f"{m} inputs {_cpu(net, a.samples, GRAM4, 1):.2f} s CPU")


if __name__ == "__main__":
    main()
