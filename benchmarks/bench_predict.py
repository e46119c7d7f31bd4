"""Benchmark of fwtheory.predict (issue 4); prints timings, asserts nothing.

1. The full single-input set (K, G1, V, Theta, Theta1, D, F, A, B) to depth 1000 for tanh,
   both ensembles, after warm-up (target: under 50 ms).
2. A depth scan over 100 widths x 10 activations (target: under 5 s). The leading-order
   coefficients do not depend on the width, so each activation is predicted once and the
   finite-width moments are formed for every width (Prediction.finite_width).

Run: python benchmarks/bench_predict.py
"""

import time

from fwtheory import Network, predict

from _timing import median_time


def timed(fn, repeat=7):
    fn()  # warm-up: derivation, lambdify, quadrature tables
    return median_time(fn, repeat)


def main():
    for ens in ("gaussian", "orthogonal"):
        net = Network("tanh", depth=1000, width=64, ensemble=ens)
        t = timed(lambda: predict(net))
        print(f"predict tanh {ens:10s} depth 1000, all 9 correlators: {1e3 * t:7.2f} ms (target < 50 ms)")
    acts = ["tanh", "sin", "erf", "gelu", "swish", "relu", "leaky_relu(0.1)", "linear", "sigmoid",
            "softplus"]
    widths = range(8, 808, 8)

    def scan():
        for act in acts:
            p = predict(Network(act, depth=100, width=64))
            for w in widths:
                p.finite_width(w)

    predict(Network("gelu", depth=3, width=8))
    t0 = time.perf_counter()
    scan()
    t = time.perf_counter() - t0
    print(f"depth scan: 10 activations x 100 widths, depth 100: {t:6.2f} s (target < 5 s)")


if __name__ == "__main__":
    main()
