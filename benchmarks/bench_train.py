"""Benchmark: one full-batch gradient-descent step of fwtheory.train against the machine's GEMM rate.

Run: ``python benchmarks/bench_train.py [--width 256] [--depth 20] [--inputs 256] [--repeat 30]``

Times ``fwtheory.train.train`` (record_ntk=False: forward pass, backward pass and
update, the loss at every step) on a tanh MLP of the given width and depth with
``inputs`` training inputs of dimension ``width`` and one output, per step (the
fixed cost of a call, initialization and the final forward pass, is removed by
timing ``repeat`` and 2 steps and differencing). In the same run it times numpy
matmul of the same shapes (inputs x width times width x width) and prints

    ratio = (flops of one step / step time) / (GEMM flops / GEMM time)

where the flops of one step count only the matrix products: per hidden-to-hidden
layer 3 products of 2 m n^2 (Z = S W^T, dW = G^T S, G W), the first layer 2, the
output layer 3 products of 2 m n (G is m x 1). Elementwise work (tanh, its
derivative, the update W -= c dW) is not counted and is what the ratio loses.
Threads: whatever BLAS uses (set OPENBLAS_NUM_THREADS=1 for a one-core figure); the
reference GEMM runs with the same setting.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from fwtheory import Network  # noqa: E402
from fwtheory.train import train  # noqa: E402


def step_flops(m, n, L):
    big = 2.0 * m * n * n
    return big * (2 + 3 * (L - 2)) + 3 * 2.0 * m * n


def gemm_rate(m, n, repeat):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((m, n)), rng.standard_normal((n, n))
    out = np.empty((m, n))
    np.matmul(A, B, out=out)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            np.matmul(A, B, out=out)
        best = min(best, (time.perf_counter() - t) / repeat)
    return 2.0 * m * n * n / best, best


def step_time(n, L, m, repeat):
    net = Network("tanh", depth=L, width=n)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((m, n)), rng.standard_normal((m, 1))
    kw = dict(learning_rate=1e-3, seed=0, record_ntk=False, record_steps=[0])
    train(net, X, Y, steps=2, **kw)                          # warm-up
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        train(net, X, Y, steps=repeat + 2, **kw)
        long = time.perf_counter() - t
        t = time.perf_counter()
        train(net, X, Y, steps=2, **kw)
        short = time.perf_counter() - t
        best = min(best, (long - short) / repeat)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--inputs", type=int, default=256)
    p.add_argument("--repeat", type=int, default=30)
    a = p.parse_args(argv)
    n, L, m = a.width, a.depth, a.inputs
    rate, t_gemm = gemm_rate(m, n, 200)
    t_step = step_time(n, L, m, a.repeat)
    flops = step_flops(m, n, L)
    ratio = (flops / t_step) / rate
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"width {n}, depth {L}, {m} inputs, BLAS threads {threads}")
    print(f"GEMM ({m} x {n}) @ ({n} x {n}): {t_gemm * 1e3:.3f} ms, {rate / 1e9:.1f} GFLOP/s")
    print(f"one full-batch step: {t_step * 1e3:.2f} ms, {flops / 1e9:.3f} GFLOP in products, "
          f"{flops / t_step / 1e9:.1f} GFLOP/s")
    print(f"ratio to the GEMM rate: {ratio:.2f} (target >= 0.40)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
