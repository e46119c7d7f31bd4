"""Orthogonal against Gaussian tanh at criticality (depth 30, width 64): initial NTK
dispersion (measured and predicted) and full-batch training-loss curves (docs/training.md).

1. Dispersion: over N initializations, std/mean of the output NTK Theta(x, x)
   (x = (1, ..., 1), q0 = 1) from the trainer's empirical NTK, beside the order-1/n
   prediction sqrt((A + 2B)/n) / (Theta + Theta1/n) of fwtheory.predict
   (Var(H_ii) = (A + 2B)/n, docs/conventions.md) and the same ratio from
   fwtheory.simulate at this width.
2. Training: m = 32 inputs on the sphere |x|^2 = n0 = 64, targets y = sin(u.x / sqrt(n0)),
   u ~ N(0, I) fixed; full-batch GD with eta = 0.5 / (m Theta^(L)) (Theta^(L) the
   infinite-width NTK, the same for both ensembles) for S steps; 5 seeds per ensemble.
   Loss curves (mean and spread) and the relative NTK change at the end.

Usage::

    python validation/train_orthogonal_tanh.py [--inits N] [--steps S] [--out-dir DIR]

writes train_orthogonal_tanh.json and train_orthogonal_tanh.png into DIR.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from fwtheory import Network, predict
from fwtheory._io import ProgressBar, atomic_write_bytes, atomic_write_text, check_output_dir, dumps_json
from fwtheory.mc import simulate
from fwtheory.plotting import figure_png
from fwtheory.train import empirical_ntk, init_params, train

DEPTH, WIDTH, M = 30, 64, 32
ENSEMBLES = ("gaussian", "orthogonal")


def network(ensemble):
    return Network("tanh", depth=DEPTH, width=WIDTH, C_W=1.0, C_b=0.0, ensemble=ensemble)


def dispersion(net, N, seed, bar=None):
    x = np.ones((1, WIDTH))
    th = np.empty(N)
    for s in range(N):
        th[s] = empirical_ntk(net, init_params(net, WIDTH, 1, seed + s), x)[0, 0]
        if bar is not None:
            bar.update(1)
    mean, sd = th.mean(), th.std(ddof=1)
    # delta-method SE of sd/mean (normal-theory se of sd: sd/sqrt(2(N-1)))
    ratio = sd / mean
    se = ratio * math.sqrt(1.0 / (2 * (N - 1)) + (sd / mean) ** 2 / N)
    return float(ratio), float(se), float(mean)


def data(seed=2024):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((M, WIDTH))
    X *= math.sqrt(WIDTH) / np.linalg.norm(X, axis=1, keepdims=True)
    u = rng.standard_normal(WIDTH)
    Y = np.sin(X @ u / math.sqrt(WIDTH))[:, None]
    return X, Y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inits", type=int, default=2000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args(argv)
    out_dir = check_output_dir(a.out_dir, "out_dir")
    t0 = time.time()
    X, Y = data()
    out = {"depth": DEPTH, "width": WIDTH, "m": M, "inits": a.inits, "steps": a.steps, "seeds": a.seeds,
           "seed": a.seed, "ensembles": {}}
    with ProgressBar(2 * a.inits + 2 * a.seeds * a.steps, label="train_orthogonal_tanh") as bar:
        for ens in ENSEMBLES:
            net = network(ens)
            pr = predict(net)
            A, B, T, T1 = (float(pr[k][-1]) for k in ("A", "B", "Theta", "Theta1"))
            pred = math.sqrt((A + 2 * B) / WIDTH) / (T + T1 / WIDTH)
            meas, se, mean = dispersion(net, a.inits, a.seed * 1_000_000, bar)
            sim = simulate(net, samples=a.inits, seed=a.seed)
            sv, sse = sim.jackknife(lambda m: np.sqrt(np.maximum(m["h2"] - m["Eh^2"], 0)) / m["h"])
            eta = 0.5 / (M * T)
            curves, changes = [], []
            for k in range(a.seeds):
                h = train(net, X, Y, steps=a.steps, learning_rate=eta, seed=a.seed * 1000 + k,
                          record_steps=[0, a.steps], progress=bar.update)
                curves.append(h.loss_curve / h.loss_curve[0])
                changes.append(float(h.ntk_change()[-1]))
            curves = np.array(curves)
            out["ensembles"][ens] = {
                "dispersion_measured": meas, "dispersion_se": se, "mean_theta": mean,
                "dispersion_predicted": pred, "A": A, "B": B, "Theta": T, "Theta1": T1,
                "dispersion_simulate": float(sv[-1]), "dispersion_simulate_se": float(sse[-1]),
                "learning_rate": eta, "relative_loss_final": curves[:, -1].tolist(),
                "relative_loss_at": {str(s): curves[:, s].tolist() for s in (10, 100, 1000) if s <= a.steps},
                "ntk_change_final": changes, "loss_curves": curves[:, ::10].tolist(),
            }
    for ens, r in out["ensembles"].items():
        print(f"{ens:>10}: Theta(x,x) dispersion measured {r['dispersion_measured']:.4f} +- {r['dispersion_se']:.4f} "
              f"(simulate {r['dispersion_simulate']:.4f} +- {r['dispersion_simulate_se']:.4f}), "
              f"order-1/n prediction {r['dispersion_predicted']:.4f}")
        print(f"{'':>10}  final loss / initial over {a.seeds} seeds: "
              + ", ".join(f"{v:.3g}" for v in r["relative_loss_final"])
              + f";  NTK change: " + ", ".join(f"{v:.3g}" for v in r["ntk_change_final"]))
    out["elapsed_s"] = time.time() - t0
    atomic_write_text(os.path.join(out_dir, "train_orthogonal_tanh.json"), dumps_json(out))
    try:
        _plot(out, os.path.join(out_dir, "train_orthogonal_tanh.png"))
    except ImportError:
        pass
    return 0


def _plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for ens, color in zip(ENSEMBLES, ("C0", "C3")):
        r = out["ensembles"][ens]
        curves = np.array(r["loss_curves"])
        steps = np.arange(curves.shape[1]) * 10
        for k, c in enumerate(curves):
            ax.plot(steps, c, color=color, alpha=0.5, lw=1, label=ens if k == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("gradient-descent step")
    ax.set_ylabel("loss / initial loss")
    ax.set_title(f"tanh at criticality, L={out['depth']}, n={out['width']}, {out['seeds']} seeds each")
    ax.legend()
    fig.tight_layout()
    png = figure_png(fig, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, png, "out_dir")


if __name__ == "__main__":
    sys.exit(main())
