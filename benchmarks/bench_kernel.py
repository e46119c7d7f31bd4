"""Benchmark: infinite-width K, Theta, chi_parallel, chi_perp to depth 1000 for one input.

    python benchmarks/bench_kernel.py [--depth 1000] [--repeat 21]

Each activation at its critical initialization (PDLT Ch. 5; docs/conventions.md);
one warm-up call (quadrature node tables, lazy imports), then the median and
minimum wall time of ``repeat`` calls. The result cache of fwtheory.gauss is
cleared before every call so that nothing is reused between repeats. Target
(issue 2): under 20 ms per call.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source tree

from fwtheory import Network, gauss  # noqa: E402
from fwtheory.kernel import infinite_width  # noqa: E402

CASES = (  # activation, C_b, C_W (critical values)
    ("tanh", 0.0, 1.0),
    ("gelu", 0.17292239, 1.98305826),
    ("relu", 0.0, 2.0),
)
TARGET_MS = 20.0


def bench(activation, C_b, C_W, depth, repeat):
    net = Network(activation, depth=depth, width=64, C_b=C_b, C_W=C_W)
    infinite_width(net)  # warm-up
    times = []
    for _ in range(repeat):
        gauss.clear_cache()
        t0 = time.perf_counter()
        result = infinite_width(net)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args(argv)
    print(f"infinite_width: K, Theta, chi_parallel, chi_perp to depth {args.depth}, one input "
          f"(median / min of {args.repeat} calls after warm-up; target < {TARGET_MS:g} ms)")
    print(f"{'activation':>10}  {'C_b':>10}  {'C_W':>10}  {'median ms':>9}  {'min ms':>7}  "
          f"{'K^(L)':>12}  status")
    for activation, C_b, C_W in CASES:
        med, best, res = bench(activation, C_b, C_W, args.depth, args.repeat)
        status = "ok" if med < TARGET_MS else "SLOW"
        print(f"{activation:>10}  {C_b:>10.8g}  {C_W:>10.8g}  {med:9.2f}  {best:7.2f}  "
              f"{res.K[-1]:12.6g}  {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
