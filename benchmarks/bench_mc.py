"""Benchmark: fwtheory.mc.simulate against a plain numpy reference sampler.

Run: ``python benchmarks/bench_mc.py [--width 64] [--depth 40] [--samples 2000]``

Both samplers draw single-input networks, propagate the preactivations and the
full n x n NTK (PDLT Ch. 8 forward equation) through every layer, and reduce the same
per-network statistics with the same estimators. The reference is the obvious
numpy code: a Python loop over networks and layers, ``rng.standard_normal`` for
the weights, ``np.linalg.qr`` with Mezzadri's sign fix for Haar layers, and
``W @ M @ W.T`` for the NTK. It prints networks per second for both, their
ratio, and the achieved GFLOP/s (the flops each sampler executes, see
:func:`flops_per_network`; per core = flops over CPU time) next to the
machine's measured matrix-multiply rate, for large matrices and for one
n x n product.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from fwtheory import Network  # noqa: E402
from fwtheory.mc import _kernels  # noqa: E402
from fwtheory.mc import sampling  # noqa: E402
from fwtheory.mc.estimators import BlockSums, correlators, jackknife, moments  # noqa: E402


# ------------------------------------------------------- numpy reference
def _stats_numpy(z, H):
    n = z.size
    z2 = z * z
    d = np.diag(H)
    s2, s4, t1, t2, tz = z2.sum(), (z2 * z2).sum(), d.sum(), (d * d).sum(), (d * z2).sum()
    q, fr = z @ H @ z, np.sum(H * H)
    p = n * (n - 1.0)
    return [s2 / n, s4 / n, t1 / n, t2 / n, (s2 * s2 - s4) / p, (t1 * s2 - tz) / p,
            (t1 * t1 - t2) / p, (q - tz) / p, (fr - t2) / p]


def reference_simulate(net, samples, seed):
    """Plain numpy sampler with the same model and estimators (no numba)."""
    rng = np.random.default_rng(seed)
    n, L = net.width, net.depth
    act = net.activation
    stats = np.empty((samples, L, _kernels.NSTAT))
    eye = np.eye(n)
    for a in range(samples):
        if net.first_layer == "gaussian":
            z = math.sqrt(net.C_W) * rng.standard_normal(n)
        else:
            g = rng.standard_normal(n)
            z = math.sqrt(net.C_W * n) * g / np.linalg.norm(g)
        H = (net.lambda_b + net.lambda_W) * eye
        stats[a, 0] = _stats_numpy(z, H)
        for l in range(1, L):
            if net.ensemble == "gaussian":
                W = math.sqrt(net.C_W / n) * rng.standard_normal((n, n))
            else:
                q, r = np.linalg.qr(rng.standard_normal((n, n)))
                W = math.sqrt(net.C_W) * q * np.sign(np.diag(r))
            d = act.derivatives(z, 1)
            s, sp = d[0], d[1]
            z = W @ s
            H = W @ (H * np.outer(sp, sp)) @ W.T + (net.lambda_b + net.lambda_W * (s @ s) / n) * eye
            stats[a, l] = _stats_numpy(z, H)
    sums = BlockSums(L, max(1, -(-samples // 200)), 200)
    sums.add(stats, np.isfinite(stats).all(axis=-1))
    S, N = sums.used()
    n_prev = np.full(L, float(n))
    K_inf = np.zeros(L)
    return jackknife(lambda S_, N_: correlators(moments(S_, N_), n_prev, K_inf, K_inf), S, N)


# ------------------------------------------------------------- helpers
def matmul_rate(size=2000, reps=5):
    a = np.random.default_rng(0).standard_normal((size, size))
    a @ a
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    return 2 * size ** 3 * reps / (time.perf_counter() - t) / 1e9


def small_matmul_rate(n, reps=20000):
    a = np.random.default_rng(0).standard_normal((n, n))
    b = a.copy()
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def flops_per_network(net, sampler):
    """Floating-point operations of the O(n^3) work per network, as each sampler
    executes it. simulate: Y = W M (2 n^3) and the symmetric H = Y W^T from
    its lower half and top-left block (n^3 + n^3/2), plus (4/3) n^3 to form a
    Haar matrix from reflectors. reference: two full products (4 n^3), plus
    numpy QR and forming Q ((4/3) n^3 each)."""
    n, L = net.width, net.depth
    h = n // 2
    orthogonal = net.ensemble == "orthogonal"
    if sampler == "simulate":
        per_layer = 2 * n ** 3 + 2 * (n - h) * n * n + 2 * h * n * h + (4 * n ** 3 / 3 if orthogonal else 0)
    else:
        per_layer = 4 * n ** 3 + (8 * n ** 3 / 3 if orthogonal else 0)
    return (L - 1) * per_layer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--samples", type=int, default=2000, help="networks for simulate")
    ap.add_argument("--ref-samples", type=int, default=200, help="networks for the reference")
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best kept)")
    args = ap.parse_args(argv)

    import numba

    big = matmul_rate()
    small = small_matmul_rate(args.width)
    print(f"machine: {os.cpu_count()} cpus, numba threads {numba.get_num_threads()}; "
          f"np.dot 2000x2000: {big:.1f} GFLOP/s; np.dot {args.width}x{args.width} (one call): {small:.1f} GFLOP/s")
    print(f"network: {args.activation}, n = {args.width}, L = {args.depth}, one input, full NTK")
    for ensemble in ("gaussian", "orthogonal"):
        net = Network(args.activation, depth=args.depth, width=args.width, ensemble=ensemble)
        sampling.simulate(net, samples=64, seed=0)                      # JIT warm-up
        reference_simulate(net, 4, 0)
        best_mc = best_ref = 0.0
        cpu_mc = cpu_ref = math.inf
        for r in range(args.rounds):   # alternate, keep the best: the machine is shared
            t, c = time.perf_counter(), time.process_time()
            sampling.simulate(net, samples=args.samples, seed=1 + r)
            best_mc = max(best_mc, args.samples / (time.perf_counter() - t))
            cpu_mc = min(cpu_mc, (time.process_time() - c) / args.samples)
            t, c = time.perf_counter(), time.process_time()
            reference_simulate(net, args.ref_samples, 1 + r)
            best_ref = max(best_ref, args.ref_samples / (time.perf_counter() - t))
            cpu_ref = min(cpu_ref, (time.process_time() - c) / args.ref_samples)
        gf_mc, gf_ref = flops_per_network(net, "simulate"), flops_per_network(net, "reference")
        print(f"{ensemble:>10}: simulate {best_mc:8.1f} networks/s ({best_mc * gf_mc / 1e9:5.1f} GFLOP/s, "
              f"{gf_mc / cpu_mc / 1e9:4.1f} per core, {cpu_mc * 1e3:5.2f} cpu-ms/network)   numpy reference "
              f"{best_ref:7.1f} networks/s ({best_ref * gf_ref / 1e9:5.1f} GFLOP/s, {cpu_ref * 1e3:5.2f} "
              f"cpu-ms/network)   speed-up {best_mc / best_ref:5.2f}x wall, {cpu_ref / cpu_mc:4.2f}x cpu")
    print(f"(np.dot 2000x2000 again: {matmul_rate():.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
