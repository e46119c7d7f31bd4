"""Benchmark of predict(precision="mpmath") against the float64 path; prints, asserts nothing.

predict(Network("tanh", depth=50)) (all 15 correlators) at the default 30 digits:
first call in a fresh process (includes the one-off Gauss-rule builds and the
mpmath lambdify of the recursions), then warm calls (median); the float64 path
warm (median). The previous engine (adaptive mpmath.quad, one quadrature per
moment, still available as fwtheory.gauss.expect_monomials_mp) is timed in the
same run on three layers (K of layers 1, L/2, L - 1, all moments of the
recursions, grouped by dk as the old predict did) and scaled to L - 1 layers.

Run: python benchmarks/bench_mpmath.py [--depth 50] [--dps 30] [--activation tanh] [--skip-old]
"""

import argparse
import time

from fwtheory import Network, gauss, gauss_mp, predict
from fwtheory.prediction import _compile

from _timing import median_time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--dps", type=int, default=30)
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-old", action="store_true", help="do not time the old engine")
    args = ap.parse_args()
    net = Network(args.activation, depth=args.depth, width=64)
    predict(net)  # derivation and float64 lambdify, not part of either timing
    t0 = time.perf_counter()
    predict(net, precision="mpmath", dps=args.dps)
    cold = time.perf_counter() - t0
    warm = median_time(lambda: predict(net, precision="mpmath", dps=args.dps), args.repeat)
    f64 = median_time(lambda: predict(net), 7 * args.repeat)
    stats = gauss_mp.engine_stats()
    print(f"predict {args.activation}, depth {args.depth}, all correlators, dps {args.dps}")
    print(f"  float64 (warm, median)          : {1e3 * f64:9.2f} ms")
    print(f"  mpmath first call (rule builds)  : {cold:9.2f} s")
    print(f"  mpmath warm (median of {args.repeat})       : {warm:9.2f} s "
          f"({1e3 * warm / args.depth:.0f} ms per layer)")
    print(f"  mpmath / float64 (warm)          : {warm / f64:9.0f}x")
    print(f"  activation evaluations per layer : {stats['evaluations'] / max(stats['calls'], 1):9.0f}"
          f"  (fallbacks to mpmath.quad: {stats['fallbacks']})")
    if not args.skip_old:
        moments = _compile(net.ensemble, "mpmath").moments
        ks = predict(net, precision="mpmath", dps=args.dps)["K"]
        sample = [ks[0], ks[len(ks) // 2], ks[-2]]
        t0 = time.perf_counter()
        for K in sample:
            for dk in (0, 1, 2):
                powers = [m.powers for m in moments if m.dk == dk]
                gauss.expect_monomials_mp(net.activation, [K], powers, dk, dps=args.dps)
        old = (time.perf_counter() - t0) / len(sample) * (args.depth - 1)
        print(f"  old engine (mpmath.quad), est.   : {old:9.2f} s ({1e3 * old / (args.depth - 1):.0f} ms "
              f"per layer) -> speed-up {old / cold:.0f}x (first call), {old / warm:.0f}x (warm)")


if __name__ == "__main__":
    main()
