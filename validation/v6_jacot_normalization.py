"""Jacot et al. (arXiv:1907.05715) on normalization, as numbers: freeze, LayerNorm, BatchNorm.

Standardized ReLU sigma(x) = sqrt(2) max(x, 0) (E[sigma(X)^2] = 1), C_W = lambda_W = 1 - beta^2,
C_b = lambda_b = beta^2 (Jacot's NTK parametrization in PDLT form), three unit inputs with
overlaps 0.6, 0.2, 0.4. For each claim the infinite-width maps of fwtheory.normalization
and a Monte Carlo at moderate width (fwtheory.mc.normalized) give the mean off-diagonal
of the normalized NTK Theta_ab / sqrt(Theta_aa Theta_bb) against depth:

  (a) plain network: r = 1 - beta^2 < 1, freeze (off-diagonal -> 1);
  (b) LayerNorm after every nonlinearity: r = (1 - beta^2) pi / (pi - 1), chaos (-> 0)
      only when beta^2 < 1/pi;
  (c) BatchNorm after the last nonlinearity, for several eps: the constant mode of the
      NTK is reduced to lambda_b (rows of Theta - lambda_b sum to zero).

Usage: python validation/v6_jacot_normalization.py [--quick] [--out-dir DIR] [--seed S]
writes v6_jacot_normalization.json and .png into DIR (default: the working directory).
Not part of ``fwtheory validate`` (it takes minutes).
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from fwtheory._io import atomic_write_bytes, atomic_write_text, dumps_json
from fwtheory.mc.normalized import simulate_normalized
from fwtheory.plotting import figure_png
from fwtheory.normalization import normalized_kernels

ACT = "sqrt(2)*Max(z, 0)"
GRAM = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.4], [0.2, 0.4, 1.0]])
IU = np.triu_indices(3, 1)


def _params(beta2):
    return dict(C_b=beta2, C_W=1 - beta2, lambda_b=beta2, lambda_W=1 - beta2)


def _off(theta):
    d = np.sqrt(np.einsum("lii->li", theta))
    return (theta / (d[:, :, None] * d[:, None, :]))[:, IU[0], IU[1]].mean(axis=1)


def _const_mode(theta):
    """Share of the constant vector: 1^T Theta 1 / (m tr Theta) (1 for an all-equal matrix)."""
    m = theta.shape[-1]
    return theta.sum(axis=(1, 2)) / (m * np.einsum("lii->l", theta))


def run(quick=False, out_dir=".", seed=0):
    t0 = time.time()
    betas2 = (0.1, 0.3, 0.5)
    depth_th = 50
    depth_mc = 8 if quick else 12
    width, nets = (128, 10) if quick else (256, 30)
    eps_list = (0.1, 0.01) if quick else (0.1, 0.01, 0.001)
    depth_bn = 6 if quick else 10
    res = {"activation": ACT, "gram": GRAM.tolist(), "mc_width": width, "mc_networks": nets, "seed": seed,
           "freeze_layernorm": [], "batchnorm": []}
    for b2 in betas2:
        p = _params(b2)
        entry = {"beta2": b2, "r_plain": 1 - b2, "r_layernorm": (1 - b2) * math.pi / (math.pi - 1)}
        for norm in ("none", "layernorm"):
            th = normalized_kernels(ACT, GRAM, depth_th, normalization=norm, **p)
            mc = simulate_normalized(ACT, GRAM, depth_mc, width, nets, seed, normalization=norm, **p)
            entry[norm] = {"theory_offdiag": _off(th.Theta).tolist(), "mc_offdiag": _off(mc.Theta).tolist(),
                           "theory_const_mode": _const_mode(th.Theta).tolist()}
        res["freeze_layernorm"].append(entry)
    p = _params(0.1)
    plain = normalized_kernels(ACT, GRAM, depth_bn, normalization="none", **p)
    res["batchnorm_reference_plain"] = {"offdiag": _off(plain.Theta).tolist(),
                                        "const_mode": _const_mode(plain.Theta).tolist()}
    for eps in eps_list:
        d = depth_bn if eps >= 0.01 else 4
        th = normalized_kernels(ACT, GRAM, d, normalization="batchnorm", bn_eps=eps, **p)
        e = {"eps": eps, "depth": d, "theory_offdiag": _off(th.Theta).tolist(),
             "theory_const_mode": _const_mode(th.Theta).tolist(),
             "theory_Theta_last": th.Theta[-1].tolist(), "quad_error": float(th.quad_error.max())}
        if eps == 0.01:
            mc = simulate_normalized(ACT, GRAM, d, width, nets, seed, normalization="batchnorm", bn_eps=eps, **p)
            e["mc_offdiag"] = _off(mc.Theta).tolist()
            e["mc_const_mode"] = _const_mode(mc.Theta).tolist()
        res["batchnorm"].append(e)
    res["elapsed_s"] = time.time() - t0
    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, "v6_jacot_normalization.json")
    png = os.path.join(out_dir, "v6_jacot_normalization.png")
    atomic_write_text(js, dumps_json(res) + "\n")
    atomic_write_bytes(png, _plot(res))
    return res, js, png


def _plot(res):

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    colors = ("tab:blue", "tab:green", "tab:purple")
    for col, e in zip(colors, res["freeze_layernorm"]):
        for norm, ls, mk in (("none", "-", "o"), ("layernorm", "--", "s")):
            th, mc = e[norm]["theory_offdiag"], e[norm]["mc_offdiag"]
            r = e["r_plain"] if norm == "none" else e["r_layernorm"]
            lab = f"beta^2 = {e['beta2']:g}, {'plain' if norm == 'none' else 'LayerNorm'} (r = {r:.3f})"
            ax.plot(range(1, len(th) + 1), th, ls, color=col, label=lab)
            ax.plot(range(1, len(mc) + 1), mc, mk, color=col, mfc="none", ms=4)
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel(r"mean $\Theta_{ab}/\sqrt{\Theta_{aa}\Theta_{bb}}$, $a \neq b$")
    ax.set_title(f"standardized ReLU: freeze vs LayerNorm (markers: MC, n = {res['mc_width']})", fontsize=10)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ref = res["batchnorm_reference_plain"]["offdiag"]
    bx.plot(range(1, len(ref) + 1), ref, "k-", label="plain (beta^2 = 0.1)")
    for col, e in zip(("tab:orange", "tab:red", "tab:brown"), res["batchnorm"]):
        th = e["theory_offdiag"]
        bx.plot(range(1, len(th) + 1), th, "-", color=col, label=f"BatchNorm at last layer, eps = {e['eps']:g}")
        if "mc_offdiag" in e:
            bx.plot(range(1, len(th) + 1), e["mc_offdiag"], "o", color=col, mfc="none", ms=5,
                    label=f"MC, n = {res['mc_width']}")
    bx.axhline(-0.5, color="gray", lw=0.8, ls=":")
    bx.set_xlabel(r"depth $L$ (BatchNorm before layer $L$)")
    bx.set_ylabel("mean normalized NTK off-diagonal")
    bx.set_title("BatchNorm after the last nonlinearity (-1/(m-1) dotted)", fontsize=10)
    bx.grid(True, alpha=0.3)
    bx.legend(fontsize=7)
    return figure_png(fig)


def acceptance(width=512, networks=100, seed=0, depth=10, bn_eps=0.01):
    """Infinite-width maps vs MC: every kernel and NTK entry at l <= depth within 3 SE + 2%.

    ReLU with C_b = lambda_b = 0.1, C_W = lambda_W = 1.8 (Jacot's beta^2 = 0.1 for the plain
    layers). Prints the largest |MC - theory| / SE and |MC - theory| / |theory| per case.
    """
    G, ok = GRAM, True
    kw = dict(C_b=0.1, C_W=1.8, lambda_b=0.1, lambda_W=1.8, bn_eps=bn_eps)
    for norm in ("none", "layernorm", "batchnorm"):
        th = normalized_kernels("relu", G, depth, normalization=norm, **kw)
        mc = simulate_normalized("relu", G, depth, width, networks, seed, normalization=norm, **kw)
        for name, T, M, S in (("K", th.K, mc.K, mc.K_se), ("Theta", th.Theta, mc.Theta, mc.Theta_se)):
            dev = np.abs(M - T)
            good = dev <= 3 * S + 0.02 * np.abs(T) + 1e-12
            rand = S > 1e-12 * np.abs(T)  # layer 1 is deterministic (SE ~ round-off): no z there
            z = np.where(rand, dev / np.where(rand, S, 1.0), 0.0)
            ok &= bool(good.all())
            print(f"{norm:9s} {name:5s}: max |dev|/SE = {z.max():.2f}, max |dev|/|theory| = "
                  f"{(dev / np.abs(T)).max():.4f}, within 3 SE + 2%: {bool(good.all())}")
    return ok


def width_scan(widths=(64, 128, 256, 512), beta2=0.3, depth=10, networks=30, seed=1):
    """LayerNorm at beta^2 = 0.3: MC normalized off-diagonal at layer ``depth`` against width.

    Jackknife standard errors over networks (the off-diagonal is a ratio of means).
    """
    from fwtheory.activations import get_activation
    from fwtheory.mc import normalized as mcn

    p = _params(beta2)
    th = _off(normalized_kernels(ACT, GRAM, depth, normalization="layernorm", **p).Theta)[-1]
    print(f"LayerNorm beta^2 = {beta2}, layer {depth}: map {th:.4f}")
    X, act = mcn._inputs(GRAM), get_activation(ACT)
    for n in widths:
        H = []
        for child in np.random.SeedSequence(seed).spawn(networks):
            Ws, bs = mcn.draw_parameters(np.random.default_rng(child), n, 3, depth, p["C_b"], p["C_W"])
            H.append(mcn.network_stats(Ws, bs, X, act, "layernorm", p["lambda_b"], p["lambda_W"], 0.0, 32)[1][-1])
        H = np.array(H)
        full = _off(H.mean(axis=0)[None])[0]
        jk = np.array([_off(np.delete(H, i, axis=0).mean(axis=0)[None])[0] for i in range(networks)])
        se = math.sqrt((networks - 1) / networks * np.sum((jk - jk.mean()) ** 2))
        print(f"n = {n:4d}: MC {full:.4f} +- {se:.4f}, map - MC = {th - full:+.4f}")


def ln_bias(runs, depth=10):
    """LayerNorm NTK entries (ReLU, C_b = lambda_b = 0.1, C_W = lambda_W = 1.8) against the map:
    (MC - map) / SE and (MC - map) / map per layer and entry (a <= b), for runs 'n:networks:seed'."""
    kw = dict(C_b=0.1, C_W=1.8, lambda_b=0.1, lambda_W=1.8)
    th = normalized_kernels("relu", GRAM, depth, normalization="layernorm", **kw)
    iu = np.triu_indices(3)
    for run_ in runs:
        n, nets, seed = (int(v) for v in run_.split(":"))
        mc = simulate_normalized("relu", GRAM, depth, n, nets, seed, normalization="layernorm", **kw)
        print(f"n = {n}, {nets} networks, seed {seed}: entries (00, 01, 02, 11, 12, 22)")
        for l in range(1, depth):
            z = (mc.Theta[l] - th.Theta[l]) / mc.Theta_se[l]
            r = (mc.Theta[l] - th.Theta[l]) / th.Theta[l]
            print(f"  l = {l + 1:2d}: dev/SE {np.round(z[iu], 2).tolist()}  rel {np.round(r[iu], 3).tolist()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--acceptance", action="store_true",
                    help="only compare the maps with MC at n = 512, 100 networks, l <= 10")
    ap.add_argument("--width-scan", action="store_true",
                    help="only the LayerNorm beta^2 = 0.3 width scan (n = 64..512, layer 10)")
    ap.add_argument("--ln-bias", nargs="+", metavar="N:NETWORKS:SEED",
                    help="only the LayerNorm NTK entries against the map at these widths")
    a = ap.parse_args(argv)
    if a.ln_bias:
        ln_bias(a.ln_bias)
        return 0
    if a.width_scan:
        width_scan()
        return 0
    if a.acceptance:
        return 0 if acceptance(seed=a.seed) else 1
    res, js, png = run(a.quick, a.out_dir, a.seed)
    for e in res["freeze_layernorm"]:
        for norm in ("none", "layernorm"):
            th, mc = e[norm]["theory_offdiag"], e[norm]["mc_offdiag"]
            L = len(mc)
            print(f"beta^2={e['beta2']:.1f} {norm:9s}: theory offdiag l=1,{L},50: {th[0]:.4f} {th[L - 1]:.4f} "
                  f"{th[-1]:.4f} | MC l={L}: {mc[-1]:.4f}")
    print("plain beta^2=0.1 const mode:", np.round(res["batchnorm_reference_plain"]["const_mode"], 4).tolist())
    for e in res["batchnorm"]:
        line = f"BN eps={e['eps']:g}: theory offdiag {np.round(e['theory_offdiag'], 4).tolist()}"
        line += f" const mode last {e['theory_const_mode'][-1]:.4f} Theta_L diag {e['theory_Theta_last'][0][0]:.3f}"
        if "mc_offdiag" in e:
            line += f" | MC offdiag {np.round(e['mc_offdiag'], 4).tolist()}"
        print(line)
    print(f"wrote {js} and {png} ({res['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
