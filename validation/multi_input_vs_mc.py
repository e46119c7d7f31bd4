"""Two-input theory (predict --gram) against two-input Monte Carlo (simulate --gram).

For tanh (C_W = 1) and ReLU (C_W = 2), C_b = 0, Gaussian and orthogonal weights, input
cosines 0.2 and 0.8 (G = [[1, c], [c, 1]]), depth 8, widths n = 32, 64, 128:

* n = 64, layers l <= 4: |sim - theory| <= 3 SE + 5% |theory| per component of K, V, Theta, A, B;
* every layer l <= 8: the intercept c0 of the width fit X(n) = c0 + c1/n [+ c2/n^2]
  (fwtheory.mc.estimators.fit_widths) within 3 of its standard errors of the theory.

Entries that vanish identically (layer-1 fluctuations) are compared with an absolute floor
of 1e-9. Prints one line per case and every failing component; asserts nothing.

Run: python validation/multi_input_vs_mc.py [samples] [depth]   (default 1000 networks per width, depth 8)
"""

import sys
import time

import numpy as np

from fwtheory import Network, predict, simulate

NAMES = ("K", "V", "Theta", "A", "B")


def case(act, ens, cos, samples, depth, seed=11):
    net = Network(act, depth=depth, width=64, C_W=2.0 if act == "relu" else 1.0, ensemble=ens)
    G = [[1.0, cos], [cos, 1.0]]
    t0 = time.perf_counter()
    sim = simulate(net, samples, seed, gram=G, widths=[32, 64, 128])
    theory = predict(net, gram=G)
    ex = sim.extrapolation
    r64 = ex["per_width"][1]
    lines, summary = [], []
    for k in NAMES:
        th = np.asarray(theory[k])
        floor = 1e-9 * (1 + np.abs(th))
        c0, se = ex["c0"][k], ex["c0_se"][k]
        bad_c0 = ~(np.abs(c0 - th) <= 3 * se + floor)
        d64 = r64.values[k] - th
        bad64 = ~(np.abs(d64) <= 3 * r64.errors[k] + 0.05 * np.abs(th) + floor)
        bad64[4:] = False                      # the n = 64 criterion is for l <= 4
        summary.append(f"{k}: c0 {int(bad_c0.sum())}/{bad_c0.size}, n=64 {int(bad64.sum())}/{bad64[:4].size}")
        for i in zip(*np.nonzero(bad_c0)):
            lines.append(f"    c0   {k}{''.join(map(str, i[1:]))} l={i[0] + 1}: c0 {c0[i]:.5g} +- {se[i]:.2g}, "
                         f"theory {th[i]:.5g} ({(c0[i] - th[i]) / se[i]:+.1f} SE)")
        for i in zip(*np.nonzero(bad64)):
            lines.append(f"    n=64 {k}{''.join(map(str, i[1:]))} l={i[0] + 1}: {r64.values[k][i]:.5g} +- "
                         f"{r64.errors[k][i]:.2g}, theory {th[i]:.5g}")
    print(f"{act:4s} {ens:10s} cos {cos}: {samples} networks/width, {time.perf_counter() - t0:.0f} s; "
          + "; ".join(summary), flush=True)
    for line in lines:
        print(line, flush=True)


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    for act in ("tanh", "relu"):
        for ens in ("gaussian", "orthogonal"):
            for cos in (0.2, 0.8):
                case(act, ens, cos, samples, depth)


if __name__ == "__main__":
    main()
