"""Benchmark: cost per network of the NTK-descendant Monte Carlo.

Run: ``python benchmarks/bench_descendants.py [--widths 32 64 128] [--depth 6]
[--samples 2000] [--pairs 8] [--ensembles gaussian orthogonal]``

For each width and ensemble it times, on the same machine and thread count:

* ``fwtheory.mc.simulate``: K, the full n x n NTK and its fluctuations
  (no dNTK / ddNTK), O(L n^3) per network;
* ``fwtheory.mc.descendants.simulate_descendants``: K, Theta (sampled NTK
  diagonal) and the dNTK / ddNTK statistics P, Q, R, S, T, U at every layer,
  O(pairs L^2 n^2) per network;

and prints wall-clock and CPU milliseconds per network and their ratio. The
descendant run is also split into drawing the networks (shared with
``simulate``) and the numba kernel. A warm-up call compiles the kernels first.

If ``simulate`` cannot summarize (e.g. a dependency of its estimator is
missing), its sampling loop ``fwtheory.mc.sampling._run`` is timed instead and
a note is printed; that loop is the whole cost of ``simulate`` anyway.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from fwtheory import Network  # noqa: E402
from fwtheory.mc import descendants  # noqa: E402
from fwtheory.mc import sampling  # noqa: E402
from fwtheory.mc._descendant_kernels import NSTAT, descendant_stats  # noqa: E402


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def time_simulate(net, samples, seed=0):
    """(wall, cpu, note) of fwtheory.mc.simulate for ``samples`` networks."""
    try:
        sampling.simulate(net, samples=min(samples, 64), seed=seed)        # warm-up
        return _timed(lambda: sampling.simulate(net, samples=samples, seed=seed)) + ("simulate",)
    except ImportError as exc:
        sampling._run(net, min(samples, 64), seed, 1.0, None)
        return _timed(lambda: sampling._run(net, samples, seed, 1.0, None)) + (
            f"sampling._run (simulate failed: {exc})",)


def time_descendants(net, samples, pairs, seed=0):
    descendants.simulate_descendants(net, samples=min(samples, 64), seed=seed, pairs=pairs)
    return _timed(lambda: descendants.simulate_descendants(net, samples=samples, seed=seed, pairs=pairs))


def time_split(net, pairs, reps=3):
    """CPU ms per network of drawing a chunk and of the kernel alone (one thread)."""
    n = net.width
    C = descendants._chunk_size(n)
    plan = descendants._Plan(net, 1.0, pairs, C, C, tuple(np.random.SeedSequence(0).spawn(1)))
    draw = min(_timed(lambda: descendants._draw_chunk(plan, 0))[1] for _ in range(reps))
    z1, W, B, P = descendants._draw_chunk(plan, 0)
    z, D = descendants.forward_base(z1, W, B, net.activation)
    out = np.empty((C, net.depth, NSTAT))
    args = (W, z, D, P, net.lambda_b, net.lambda_W, float(net.input_dim), 1.0, out)
    descendant_stats(*args)
    kern = min(_timed(lambda: descendant_stats(*args))[1] for _ in range(reps))
    return 1e3 * draw / C, 1e3 * kern / C


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--ensembles", nargs="+", default=["gaussian", "orthogonal"])
    args = ap.parse_args(argv)
    try:
        import numba

        threads = numba.get_num_threads()
    except Exception:  # pragma: no cover
        threads = 1
    print(f"# {args.activation}, depth {args.depth}, {args.samples} networks per run, pairs={args.pairs}, "
          f"{threads} worker threads, {os.cpu_count()} CPUs; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"{'ensemble':11s} {'n':>4s} | {'simulate ms/net':>21s} | {'descendants ms/net':>21s} | "
          f"{'ratio':>11s} | {'desc. split (CPU, 1 thread)':>27s}")
    print(f"{'':11s} {'':>4s} | {'wall':>10s} {'CPU':>10s} | {'wall':>10s} {'CPU':>10s} | "
          f"{'wall':>5s} {'CPU':>5s} | {'draw':>8s} {'kernel':>8s}")
    notes = set()
    for ens in args.ensembles:
        for n in args.widths:
            net = Network(args.activation, depth=args.depth, width=n, ensemble=ens)
            ws, cs, note = time_simulate(net, args.samples)
            if note != "simulate":
                notes.add(note)
            wd, cd = time_descendants(net, args.samples, args.pairs)
            draw, kern = time_split(net, args.pairs)
            N = args.samples
            print(f"{ens:11s} {n:4d} | {1e3 * ws / N:10.3f} {1e3 * cs / N:10.3f} | "
                  f"{1e3 * wd / N:10.3f} {1e3 * cd / N:10.3f} | {wd / ws:5.2f} {cd / cs:5.2f} | "
                  f"{draw:8.3f} {kern:8.3f}")
    for note in sorted(notes):
        print(f"note: without descendants timed as {note}")


if __name__ == "__main__":
    main()
