"""Evidence for issue 13 (several inputs): the distribution of the width-fit z values and the
n = 64 deviations of the two-input Monte Carlo against ``predict(network, gram=G)``.

``run``: the eight cases of validation/multi_input_vs_mc.py (tanh C_W = 1, ReLU C_W = 2, C_b = 0;
gaussian and orthogonal weights; G = [[1, c], [c, 1]], c = 0.2, 0.8; depth 8; widths 32, 64, 128)
at a given seed and number of networks; stores, per case, the theory, the per-width values and
errors and the chosen fit's c0, c0_se of every tensor entry of K, V, Theta, A, B (JSON).

``analyze``: reads one or more such files and reports

1. per run: the number N of *distinct* compared entries (one representative per orbit of the
   index symmetries K_ab = K_ba, V_abcd = V_bacd = V_cdab (same for A), B_abcd = B_badc = B_cdab;
   input-0-only entries of the two cosines, which share their networks, counted once; entries with
   zero error (below 1e-9 (1 + |theory|)): K, Theta, A, B at layer 1, left out), the counts of |z| > 2, > 3, > 4 against the normal expectation
   N * P(|Z| > t), the largest |z|, and which entries exceed 3;
2. between runs (different seeds): which of the |z| > 3 entries of one run exceed again, and the
   correlation of the z values of the same entries across seeds;
3. n = 64, l <= 4 (issue 13's second criterion): every entry failing |sim - theory| <= 3 SE + 5%,
   and for each the deviation d(n) = sim(n) - theory at n = 32, 64, 128 with the fit
   d = a + b/n (a should vanish within its error, b the next-order coefficient) and n d(n);
4. layer-1 V of an orthogonal first layer against its exact finite-n value
   -C_W^2 n (n (G_ac G_bd + G_ad G_bc) - 2 G_ab G_cd) / ((n - 1)(n + 2)).

``single``: single-input ``simulate`` at n = 64 (the input-0 networks of the two-input run of
the same seed) against single-input ``predict`` for A and B, l <= 4.
``layer1``: item 4 with 20 000 networks per width (ReLU, C_W = 2, c = 0.2).

Run (single thread):
    NUMBA_NUM_THREADS=1 python validation/evidence_multi_input.py run --samples 1000 --seed 11 --out mi_s11.json
    NUMBA_NUM_THREADS=1 python validation/evidence_multi_input.py analyze mi_s11.json mi_s12.json
    NUMBA_NUM_THREADS=1 python validation/evidence_multi_input.py single --samples 1000 --seed 11 mi_s11.json
    NUMBA_NUM_THREADS=1 python validation/evidence_multi_input.py layer1 --samples 20000 --seed 21
"""

import argparse
import itertools
import json
import sys
import time
from math import erfc, sqrt

import numpy as np

NAMES = ("K", "V", "Theta", "A", "B")
RANK = {"K": 2, "Theta": 2, "V": 4, "A": 4, "B": 4}
WIDTHS = (32, 64, 128)
CASES = [(act, ens, cos) for act in ("tanh", "relu") for ens in ("gaussian", "orthogonal") for cos in (0.2, 0.8)]


def run(samples, seed, depth, out):
    from fwtheory import Network, predict, simulate

    cases = []
    for act, ens, cos in CASES:
        net = Network(act, depth=depth, width=64, C_W=2.0 if act == "relu" else 1.0, ensemble=ens)
        G = [[1.0, cos], [cos, 1.0]]
        t0 = time.perf_counter()
        sim = simulate(net, samples, seed, gram=G, widths=list(WIDTHS))
        secs = time.perf_counter() - t0
        th = predict(net, gram=G)
        ex = sim.extrapolation
        case = {"activation": act, "ensemble": ens, "cos": cos, "C_W": net.C_W, "seconds": secs,
                "theory": {}, "c0": {}, "c0_se": {}, "terms": {}, "per_width": {}}
        for k in NAMES:
            case["theory"][k] = np.asarray(th[k], float).tolist()
            case["c0"][k] = np.asarray(ex["c0"][k], float).tolist()
            case["c0_se"][k] = np.asarray(ex["c0_se"][k], float).tolist()
            case["terms"][k] = np.asarray(ex["terms"][k], float).tolist()
            case["per_width"][k] = {str(r.network.width): {"sim": np.asarray(r.values[k], float).tolist(),
                                                           "se": np.asarray(r.errors[k], float).tolist()}
                                    for r in ex["per_width"]}
        cases.append(case)
        print(f"{act} {ens} cos {cos}: {secs:.0f} s", flush=True)
    with open(out, "w") as fh:
        json.dump({"samples": samples, "seed": seed, "depth": depth, "widths": list(WIDTHS), "cases": cases}, fh)


# ------------------------------------------------------------------ analysis
def orbit(name, idx):
    """Canonical representative of a tensor index under the symmetries of ``name``."""
    if RANK[name] == 2:
        return tuple(sorted(idx))
    a, b, c, d = idx
    if name in ("V", "A"):
        p, q = tuple(sorted((a, b))), tuple(sorted((c, d)))
        return min(p + q, q + p)
    cands = [(a, b, c, d), (b, a, d, c), (c, d, a, b), (d, c, b, a)]   # B: ab<->ba with cd<->dc; pairs swap
    return min(cands)


def entries(case, depth):
    """{(name, layer, rep): dict} of distinct entries of one case."""
    out = {}
    for k in NAMES:
        th = np.asarray(case["theory"][k])
        for idx in itertools.product(range(2), repeat=RANK[k]):
            rep = orbit(k, idx)
            if rep != idx:
                continue
            for l in range(depth):
                key = (k, l + 1, rep)
                i = (l,) + idx
                pw = {w: (np.asarray(case["per_width"][k][w]["sim"])[i], np.asarray(case["per_width"][k][w]["se"])[i])
                      for w in case["per_width"][k]}
                out[key] = {"theory": float(th[i]), "c0": float(np.asarray(case["c0"][k])[i]),
                            "se": float(np.asarray(case["c0_se"][k])[i]),
                            "terms": int(np.asarray(case["terms"][k])[i]), "per_width": pw}
    return out


def symmetric_spread(case):
    """Largest relative difference of the simulated c0 within a symmetry orbit (sanity check)."""
    worst = 0.0
    for k in NAMES:
        c0 = np.asarray(case["c0"][k])
        se = np.asarray(case["c0_se"][k])
        for idx in itertools.product(range(2), repeat=RANK[k]):
            rep = orbit(k, idx)
            d = np.abs(c0[(slice(None),) + idx] - c0[(slice(None),) + rep])
            s = np.where(se[(slice(None),) + rep] > 0, se[(slice(None),) + rep], 1.0)
            worst = max(worst, float(np.nanmax(d / s)))
    return worst


def label(case):
    return f"{case['activation']} {case['ensemble']} c={case['cos']}"


def zlist(data):
    """Distinct compared entries of one run: list of (case label, key, z, entry)."""
    depth = data["depth"]
    rows, seen = [], {}
    for case in data["cases"]:
        for key, e in entries(case, depth).items():
            if not (e["se"] > 1e-9 * (1 + abs(e["theory"])) and np.isfinite(e["c0"])):
                continue        # deterministic entries (K, Theta, A, B at layer 1): zero error
            z = (e["c0"] - e["theory"]) / e["se"]
            e = dict(e, **fixed_models(e, data["widths"]))
            # input-0-only entries of the two cosines share networks: count once
            dup = (case["activation"], case["ensemble"], key, round(e["c0"], 12))
            if all(i == 0 for i in key[2]) and dup in seen:
                continue
            seen[dup] = True
            rows.append((label(case), key, z, e))
    return rows


def fixed_models(e, widths):
    """z of the two-term and of the three-term fit of one entry, each used everywhere
    (no model choice): {"z_lin": ..., "z_quad": ...}."""
    from fwtheory.mc.estimators import fit_inverse_width

    ws = [str(w) for w in widths]
    inv = np.array([[1.0 / int(w)] for w in ws])       # input_dim = width: n_{l-1} = n at every layer
    y = np.array([[e["per_width"][w][0]] for w in ws])
    s = np.array([[e["per_width"][w][1]] for w in ws])
    out = {}
    for name, terms in (("z_lin", 2), ("z_quad", 3)):
        f = fit_inverse_width(inv, y, s, terms=terms)
        out[name] = float((f["c0"][0] - e["theory"]) / f["c0_se"][0])
    return out


def normal_tail(t):
    return erfc(t / sqrt(2.0))


def fmt_key(key):
    return f"{key[0]}_{''.join(map(str, key[2]))} l={key[1]}"


def analyze(files, out_md=None):
    runs = [json.load(open(f)) for f in files]
    lines = []
    p = lines.append
    zs = []
    for f, data in zip(files, runs):
        rows = zlist(data)
        z = np.array([r[2] for r in rows])
        N = z.size
        p(f"## {f}: seed {data['seed']}, {data['samples']} networks/width, depth {data['depth']}")
        p(f"distinct compared entries N = {N} (per tensor: "
          + ", ".join(f"{k} {sum(1 for r in rows if r[1][0] == k)}" for k in NAMES) + ")")
        p(f"max |z| within symmetry orbits (sanity): {max(symmetric_spread(c) for c in data['cases']):.2e}")
        for t in (2, 3, 4):
            p(f"|z| > {t}: {int(np.sum(np.abs(z) > t))} observed, {N * normal_tail(t):.2f} expected (normal)")
        p(f"max |z| = {np.max(np.abs(z)):.2f}; mean z = {np.mean(z):+.3f}; sd z = {np.std(z):.3f}; "
          f"three-term fits chosen: {sum(1 for r in rows if r[3]['terms'] == 3)}")
        for zk, what in (("z_lin", "two-term fit everywhere"), ("z_quad", "three-term fit everywhere")):
            v = np.array([r[3][zk] for r in rows])
            p(f"{what}: mean z {np.mean(v):+.3f}, sd {np.std(v):.3f}, |z| > 2: {int(np.sum(np.abs(v) > 2))}, "
              f"|z| > 3: {int(np.sum(np.abs(v) > 3))}, |z| > 4: {int(np.sum(np.abs(v) > 4))}, "
              f"max |z| {np.max(np.abs(v)):.2f}")
        groups = {}
        for cl, key, zz, e in rows:
            for g in (f"tensor {key[0]}", f"layer {key[1]}", " ".join(cl.split()[:2]), f"{e['terms']}-term fit"):
                groups.setdefault(g, []).append((zz, e["z_lin"], e["z_quad"]))
        p("  group: N; chosen fit: mean z, sd z, frac |z|>2 (normal 0.046), #|z|>3; two-term fit everywhere: "
          "mean, sd; three-term everywhere: mean, sd")
        for g in sorted(groups):
            v = np.array(groups[g])
            p(f"  {g}: {len(v)}; {np.mean(v[:, 0]):+.2f}, {np.std(v[:, 0]):.2f}, {np.mean(np.abs(v[:, 0]) > 2):.3f}, "
              f"{int(np.sum(np.abs(v[:, 0]) > 3))}; {np.mean(v[:, 1]):+.2f}, {np.std(v[:, 1]):.2f}; "
              f"{np.mean(v[:, 2]):+.2f}, {np.std(v[:, 2]):.2f}")
        for cl, key, zz, e in sorted(rows, key=lambda r: -abs(r[2])):
            if abs(zz) <= 3:
                break
            p(f"  |z|>3: {cl} {fmt_key(key)}: c0 {e['c0']:.5g} +- {e['se']:.2g} vs {e['theory']:.5g} "
              f"(z {zz:+.2f}, {e['terms']} terms)")
        zs.append({(r[0], r[1]): r[2] for r in rows})
    for i, j in itertools.combinations(range(len(runs)), 2):
        common = sorted(set(zs[i]) & set(zs[j]))
        a = np.array([zs[i][c] for c in common])
        b = np.array([zs[j][c] for c in common])
        p(f"## seeds {runs[i]['seed']} vs {runs[j]['seed']}: {len(common)} common entries, "
          f"corr(z) = {np.corrcoef(a, b)[0, 1]:+.3f}")
        for c in common:
            if abs(zs[i][c]) > 3 or abs(zs[j][c]) > 3:
                p(f"  {c[0]} {fmt_key(c[1])}: z = {zs[i][c]:+.2f} (seed {runs[i]['seed']}), "
                  f"{zs[j][c]:+.2f} (seed {runs[j]['seed']})")
    for f, data in zip(files, runs):
        p(f"## n = 64, l <= 4, 3 SE + 5%: {f}")
        n64_failures(data, p)
        p(f"## layer-1 V, orthogonal first layer: {f}")
        layer1_orthogonal(data, p)
    text = "\n".join(lines)
    print(text)
    if out_md:
        with open(out_md, "w") as fh:
            fh.write(text + "\n")


def n64_failures(data, p):
    ws = [str(w) for w in data["widths"]]
    inv = np.array([1.0 / int(w) for w in ws])
    total = fails = 0
    seen = set()
    a_z, per_tensor = [], {}
    for case in data["cases"]:
        for key, e in entries(case, data["depth"]).items():
            if key[1] > 4:
                continue
            s64, se64 = e["per_width"]["64"]
            th = e["theory"]
            if not se64 > 1e-9 * (1 + abs(th)):
                continue        # deterministic entries
            dup = (case["activation"], case["ensemble"], key, round(float(s64), 12))
            if all(i == 0 for i in key[2]) and dup in seen:
                continue        # input-0-only entry of the other cosine: same networks
            seen.add(dup)
            total += 1
            if abs(s64 - th) <= 3 * se64 + 0.05 * abs(th) + 1e-9 * (1 + abs(th)):
                continue
            fails += 1
            d = np.array([e["per_width"][w][0] - th for w in ws])
            s = np.array([e["per_width"][w][1] for w in ws])
            wts = 1.0 / np.maximum(s, 1e-300) ** 2
            X = np.stack([np.ones_like(inv), inv], axis=1)
            cov = np.linalg.inv(X.T @ (wts[:, None] * X))
            a, b = cov @ (X.T @ (wts * d))
            chi2 = float(np.sum(wts * (d - X @ np.array([a, b])) ** 2))
            a_z.append(a / sqrt(cov[0, 0]))
            per_tensor[key[0]] = per_tensor.get(key[0], 0) + 1
            nd = " ".join(f"{int(w) * x:+.3g}({int(w) * y:.2g})" for w, x, y in zip(ws, d, s))
            p(f"  {label(case)} {fmt_key(key)}: theory {th:.4g}, n=64 {s64:.4g} +- {se64:.2g} "
              f"({(s64 - th) / th * 100 if th else float('nan'):+.0f}%); d = a + b/n: a = {a:+.3g} +- "
              f"{sqrt(cov[0, 0]):.2g} ({a / sqrt(cov[0, 0]):+.1f} SE), b = {b:+.3g} +- {sqrt(cov[1, 1]):.2g}, "
              f"chi2(1) = {chi2:.1f}; n d(n) at n = {', '.join(ws)}: {nd}")
    a_z = np.array(a_z)
    p(f"  {fails} of {total} distinct entries fail at n = 64 ("
      + ", ".join(f"{k} {v}" for k, v in sorted(per_tensor.items())) + "); intercept a of d = a + b/n: "
      + (f"|a|/SE max {np.max(np.abs(a_z)):.1f}, mean a/SE {np.mean(a_z):+.2f}, |a|/SE > 2: "
         f"{int(np.sum(np.abs(a_z) > 2))}" if a_z.size else "none"))


def layer1_orthogonal(data, p):
    for case in data["cases"]:
        if case["ensemble"] != "orthogonal":
            continue
        c, C_W = case["cos"], case["C_W"]
        G = np.array([[1.0, c], [c, 1.0]])
        for idx in ((0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (0, 0, 0, 1)):
            a, b, cc, d = idx
            th = np.asarray(case["theory"]["V"])[(0,) + idx]
            parts = []
            for w in map(str, data["widths"]):
                n = int(w)
                exact = -C_W ** 2 * n * (n * (G[a, cc] * G[b, d] + G[a, d] * G[b, cc]) - 2 * G[a, b] * G[cc, d]) \
                    / ((n - 1) * (n + 2))
                s = np.asarray(case["per_width"]["V"][w]["sim"])[(0,) + idx]
                e = np.asarray(case["per_width"]["V"][w]["se"])[(0,) + idx]
                parts.append(f"n={n}: sim {s:+.4f} +- {e:.4f}, exact {exact:+.4f} ({(s - exact) / e:+.1f} SE)")
            p(f"  {label(case)} V_{''.join(map(str, idx))} l=1: predict {th:+.4f}; " + "; ".join(parts))


def single(samples, seed, depth, files):
    """Single-input simulate vs predict at n = 64 (the input-0 networks of the two-input runs of
    the same seed) for A and B, l <= 4, and the same entries (A_0000, B_0000) of the files."""
    from fwtheory import Network, predict, simulate

    runs = [json.load(open(f)) for f in files]
    for act in ("tanh", "relu"):
        for ens in ("gaussian", "orthogonal"):
            net = Network(act, depth=depth, width=64, C_W=2.0 if act == "relu" else 1.0, ensemble=ens)
            sim = simulate(net, samples, seed)
            th = predict(net)
            for k in ("A", "B"):
                parts = []
                for l in range(1, min(4, depth)):
                    s, e, t = sim.values[k][l], sim.errors[k][l], th[k][l]
                    ok = abs(s - t) <= 3 * e + 0.05 * abs(t)
                    same = [np.asarray(c["per_width"][k]["64"]["sim"])[l, 0, 0, 0, 0]
                            for r in runs if r["seed"] == seed and r["samples"] == samples for c in r["cases"]
                            if c["activation"] == act and c["ensemble"] == ens]
                    rel = max((abs(x - s) / abs(s) for x in same), default=float("nan"))
                    parts.append(f"l={l + 1}: {s:.4g} +- {e:.2g} vs {t:.4g} ({(s - t) / t * 100:+.0f}%, "
                                 f"{'pass' if ok else 'FAIL'}; two-input {k}_0000 rel. diff {rel:.1e})")
                print(f"{act} {ens} {k} n=64 single input: " + "; ".join(parts), flush=True)


def layer1(samples, seed, cos=0.2):
    """Layer-1 V of an orthogonal first layer (ReLU, C_W = 2; layer 1 does not depend on the
    activation) at n = 32, 64, 128 against the exact finite-n value and predict."""
    from fwtheory import Network, predict, simulate

    G = np.array([[1.0, cos], [cos, 1.0]])
    for n in WIDTHS:
        net = Network("relu", depth=2, width=n, C_W=2.0, ensemble="orthogonal")
        s = simulate(net, samples, seed, gram=G)
        th = predict(net, gram=G)
        for idx in ((0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (0, 0, 0, 1)):
            a, b, c, d = idx
            exact = -4.0 * n * (n * (G[a, c] * G[b, d] + G[a, d] * G[b, c]) - 2 * G[a, b] * G[c, d]) \
                / ((n - 1) * (n + 2))
            v, e = s.values["V"][(0,) + idx], s.errors["V"][(0,) + idx]
            print(f"n={n} V_{''.join(map(str, idx))} l=1: sim {v:.4f} +- {e:.4f}, exact {exact:.4f} "
                  f"({(v - exact) / e:+.2f} SE), predict {th['V'][(0,) + idx]:.4f}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--samples", type=int, default=1000)
    r.add_argument("--seed", type=int, default=11)
    r.add_argument("--depth", type=int, default=8)
    r.add_argument("--out", required=True)
    a = sub.add_parser("analyze")
    a.add_argument("files", nargs="+")
    a.add_argument("--md", default=None)
    g = sub.add_parser("single")
    g.add_argument("--samples", type=int, default=1000)
    g.add_argument("--seed", type=int, default=11)
    g.add_argument("--depth", type=int, default=8)
    g.add_argument("files", nargs="*")
    y = sub.add_parser("layer1")
    y.add_argument("--samples", type=int, default=20000)
    y.add_argument("--seed", type=int, default=21)
    args = ap.parse_args(argv)
    if args.cmd == "layer1":
        layer1(args.samples, args.seed)
    elif args.cmd == "single":
        single(args.samples, args.seed, args.depth, args.files)
    elif args.cmd == "run":
        run(args.samples, args.seed, args.depth, args.out)
    else:
        analyze(args.files, args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
