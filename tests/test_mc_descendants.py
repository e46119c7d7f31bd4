"""Monte Carlo of the NTK descendants P, Q, R, S, T, U (fwtheory.mc.descendants).

1. Exactness: on tiny networks the per-network samples equal brute-force
   contractions of gradients, Hessians and third derivatives of the full
   parameter vector (mpmath central differences at 50 digits), built straight
   from the definitions in ``fwtheory.quantities``.
2. The numba kernel equals the numpy reference; reproducibility; bad input.
3. Statistics against ``fwtheory.predict``: a fast width-extrapolation check at
   depth 3, and (``slow``) the three-width fits n = 32, 64, 128 of issue 13 (the c0 of
   c0 + c1/n + c2/n^2 within 3 standard errors; the full-size run is
   validation/descendants_width_fit.py).

``python tests/test_mc_descendants.py`` prints the issue-7 agreement table.
"""

import itertools
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest

from fwtheory import Network, ParameterError, get_activation, quantities
from fwtheory.mc import _runner, descendants
from fwtheory.mc._descendant_kernels import STAT_NAMES, descendant_stats
from fwtheory.mc.descendants import forward_base, network_stats_numpy, simulate_descendants
from fwtheory.mc.ensembles import haar_orthogonal

DESC = quantities.DESCENDANTS


# --------------------------------------------------------------- brute force
def _tiny_network(rng, n0, n, L, ensemble, C_W, C_b):
    if ensemble == "gaussian":
        Ws = [rng.standard_normal((n, n0)) * np.sqrt(C_W / n0)]
        Ws += [rng.standard_normal((n, n)) * np.sqrt(C_W / n) for _ in range(L - 1)]
    else:
        assert n0 == n
        Ws = list(np.sqrt(C_W) * haar_orthogonal(L, n, rng, method="qr"))
    bs = [rng.standard_normal(n) * np.sqrt(C_b) for _ in range(L)]
    return Ws, bs


def _brute_force(act, Ws, bs, x, lam_b, lam_W, dps=50, gamma=None):
    """Per target layer l and ordered pair (i, k): the statistics of
    ``STAT_NAMES`` computed from the definitions, with the full parameter vector
    theta = (W^(1), b^(1), ..., W^(L), b^(L)), lambda_mu = lambda_W / n_{l-1}
    (weights) or lambda_b (biases), g_c = lambda o grad z_c, h_{a,c} = Hess(z_a) g_c.
    Derivatives: mpmath central differences (steps 1e-12 and 1e-10 at 50 digits,
    errors ~1e-20)."""
    import mpmath as mp

    L, n = len(Ws), Ws[0].shape[0]
    lam = []
    for W, b in zip(Ws, bs):
        lam += [lam_W / W.shape[1]] * W.size + [lam_b] * b.size
    with mp.workdps(dps):
        if act.code == 1:
            sig = lambda v: v if v > 0 else mp.mpf(0)  # noqa: E731
        elif act.code == 3:
            sig = mp.tanh
        else:
            sig = act.mp_derivative(0)
        mpf = lambda v: mp.mpf(float(v))  # noqa: E731
        theta0 = np.array([mpf(v) for W, b in zip(Ws, bs) for v in list(W.ravel()) + list(b)], dtype=object)
        lam = np.array([mp.mpf(v) for v in lam], dtype=object)
        xs = np.array([mpf(v) for v in x], dtype=object)
        npar = theta0.size

        def f(th):                                   # all layers' preactivations, (L, n)
            out, s, p = [], xs, 0
            for W in Ws:
                r, c = W.shape
                z = th[p:p + r * c].reshape(r, c).dot(s) + th[p + r * c:p + r * c + r]
                if gamma is not None and out:                # residual block (layers >= 2)
                    z = out[-1] + mp.mpf(gamma) * z
                p += r * c + r
                out.append(z)
                s = np.array([sig(v) for v in z], dtype=object)
            return np.array(out, dtype=object)

        h, h3 = mp.mpf("1e-12"), mp.mpf("1e-10")
        E = np.eye(npar, dtype=int)
        grad = np.empty((L, n, npar), dtype=object)
        for mu in range(npar):
            grad[:, :, mu] = (f(theta0 + h * E[mu]) - f(theta0 - h * E[mu])) / (2 * h)
        hess = np.empty((L, n, npar, npar), dtype=object)
        for mu in range(npar):
            for nu in range(mu, npar):
                v = (f(theta0 + h * (E[mu] + E[nu])) - f(theta0 + h * (E[mu] - E[nu]))
                     - f(theta0 + h * (E[nu] - E[mu])) + f(theta0 - h * (E[mu] + E[nu]))) / (4 * h * h)
                hess[:, :, mu, nu] = v
                hess[:, :, nu, mu] = v
        f0 = f(theta0)
        res = {}
        for l in range(L):
            g = grad[l] * lam[None, :]                             # g_c
            hv = np.einsum("amn,cn->acm", hess[l], g)              # h_{a,c}
            z = f0[l]

            def dH(a, c, d):                                       # Hess(z_a)[g_c, g_d]
                return g[c].dot(hess[l][a].dot(g[d]))

            def ip(u, v):                                          # <u, v>_lambda
                return (u * v * lam).sum()

            for i, k in itertools.permutations(range(n), 2):
                acc = 0                                            # D^3 z_i[g_i, g_k, g_k]
                for s1, s2, s3 in itertools.product((1, -1), repeat=3):
                    acc += s1 * s2 * s3 * f(theta0 + h3 * (s1 * g[i] + (s2 + s3) * g[k]))[l][i]
                res[(l, i, k)] = {
                    "z2": sum(v * v for v in z) / n,
                    "h": (g[i].dot(grad[l][i]) + g[k].dot(grad[l][k])) / 2,
                    "P": sum(dH(m, k, k) * z[m] for m in range(n) if m != k) / (n - 1),
                    "Q": (dH(i, i, k) * z[k] + dH(k, k, i) * z[i]) / 2,
                    "R": acc / (8 * h3 ** 3),
                    "S": (ip(hv[i, k], hv[i, k]) + ip(hv[k, i], hv[k, i])) / 2,   # ddII_iikk, ddII_kkii
                    "T": ip(hv[i, i], hv[k, k]),                                  # ddII_ikik
                    "U": ip(hv[i, k], hv[k, i]),                                  # ddII_ikki
                }
        return {key: np.array([float(d[s]) for s in STAT_NAMES]) for key, d in res.items()}


def _ours(act, Ws, bs, x, lam_b, lam_W, kernel, gamma=None):
    L, n, n0 = len(Ws), Ws[0].shape[0], Ws[0].shape[1]
    q0 = float(x @ x) / n0
    W = np.array(Ws[1:]).reshape(1, L - 1, n, n)
    B = np.array(bs[1:]).reshape(1, L - 1, n)
    z, D = forward_base((Ws[0] @ x + bs[0])[None], W, B, act, gamma)
    keys = list(itertools.permutations(range(n), 2))
    pairs = np.array([[[i, k]] * L for i, k in keys], dtype=np.int64).reshape(len(keys), L, 1, 2)
    out = np.empty((len(keys), L, len(STAT_NAMES)))
    if kernel:
        rep = lambda a: np.repeat(a, len(keys), axis=0)  # noqa: E731
        if gamma is None:
            descendant_stats(rep(W), rep(z), rep(D), pairs, lam_b, lam_W, float(n0), q0, out)
        else:
            descendant_stats(rep(W), rep(z), rep(D), pairs, lam_b, lam_W, float(n0), q0, out, gamma)
    else:
        for j in range(len(keys)):
            out[j] = network_stats_numpy(W[0], z[0], D[0], pairs[j], lam_b, lam_W, n0, q0, gamma)
    return {(l, i, k): out[j, l] for j, (i, k) in enumerate(keys) for l in range(L)}


TINY = [
    # activation, ensemble, n0, n, L, C_W, C_b, lambda_b, lambda_W, q0
    ("tanh", "gaussian", 2, 3, 3, 1.3, 0.2, 0.4, 1.3, 0.7),
    ("tanh", "orthogonal", 3, 3, 3, 1.0, 0.0, 0.0, 1.0, 1.0),
    ("sin(z) + 0.25*z**2", "gaussian", 3, 3, 3, 1.1, 0.1, 0.3, 0.8, 1.2),
    ("sin(z) + 0.25*z**2", "orthogonal", 3, 3, 3, 1.0, 0.2, 0.5, 1.0, 0.5),
    ("relu", "gaussian", 3, 3, 3, 2.0, 0.0, 0.0, 1.0, 1.0),
    ("relu", "orthogonal", 3, 3, 3, 2.0, 0.1, 0.2, 1.0, 1.0),
    ("tanh", "gaussian", 3, 3, 4, 1.0, 0.0, 0.0, 1.0, 1.0),
]


@pytest.mark.parametrize("act, ensemble, n0, n, L, C_W, C_b, lam_b, lam_W, q0", TINY)
def test_per_network_samples_equal_brute_force_derivatives(act, ensemble, n0, n, L, C_W, C_b,
                                                           lam_b, lam_W, q0):
    act = get_activation(act)
    rng = np.random.default_rng(zlib.crc32(f"{act.name} {ensemble} {L}".encode()))
    Ws, bs = _tiny_network(rng, n0, n, L, ensemble, C_W, C_b)
    x = np.sqrt(q0) * np.ones(n0)
    brute = _brute_force(act, Ws, bs, x, lam_b, lam_W)
    for kernel in (False, True):
        ours = _ours(act, Ws, bs, x, lam_b, lam_W, kernel)
        for key, ref in brute.items():
            scale = max(np.abs(v).max() for k2, v in brute.items() if k2[0] == key[0])
            np.testing.assert_allclose(ours[key], ref, rtol=1e-8, atol=1e-10 * scale,
                                       err_msg=f"layer {key[0] + 1}, pair {key[1:]}, kernel={kernel}")
    # layer 1 is linear in the parameters: no descendants
    assert all(np.all(ours[(0, i, k)][2:] == 0.0) for (l, i, k) in ours if l == 0)


@pytest.mark.parametrize("act, gamma, n0, n, L, C_W, C_b, lam_b, lam_W, q0", [
    ("tanh", 0.7, 2, 2, 3, 1.3, 0.2, 0.4, 1.3, 0.7),
    ("sin(z) + 0.25*z**2", 1.4, 2, 2, 3, 1.1, 0.1, 0.3, 0.8, 1.2),
])
def test_residual_samples_equal_brute_force_derivatives(act, gamma, n0, n, L, C_W, C_b, lam_b, lam_W, q0):
    """Residual networks z^(l+1) = z^(l) + gamma (b + W sigma(z^(l))) (numpy reference only;
    the kernel is compared with the reference below)."""
    act = get_activation(act)
    rng = np.random.default_rng(zlib.crc32(f"residual {act.name} {gamma}".encode()))
    Ws, bs = _tiny_network(rng, n0, n, L, "gaussian", C_W, C_b)
    x = np.sqrt(q0) * np.ones(n0)
    brute = _brute_force(act, Ws, bs, x, lam_b, lam_W, gamma=gamma)
    ours = _ours(act, Ws, bs, x, lam_b, lam_W, False, gamma)
    for key, ref in brute.items():
        scale = max(np.abs(v).max() for k2, v in brute.items() if k2[0] == key[0])
        np.testing.assert_allclose(ours[key], ref, rtol=1e-8, atol=1e-10 * scale,
                                   err_msg=f"layer {key[0] + 1}, pair {key[1:]}")
    plain = _ours(act, Ws, bs, x, lam_b, lam_W, False)
    assert not np.allclose(ours[(L - 1, 0, 1)], plain[(L - 1, 0, 1)])


# ------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize("act, ensemble", [("tanh", "gaussian"), ("tanh", "orthogonal"),
                                           ("relu", "gaussian"), ("gelu", "orthogonal"),
                                           ("z*tanh(z) + 0.1*z", "gaussian")])
def test_numba_kernel_matches_numpy_reference(act, ensemble, gamma=None):
    net = Network(act, depth=5, width=12, C_b=0.1, lambda_b=0.3, lambda_W=1.2, ensemble=ensemble,
                  residual=gamma)
    plan = descendants._Plan(net, 0.9, 3, 4, 4, tuple(np.random.SeedSequence(2).spawn(1)))
    z1, W, B, pairs = descendants._draw_chunk(plan, 0)
    z, D = forward_base(z1, W, B, net.activation, gamma)
    out = np.empty((4, 5, len(STAT_NAMES)))
    if gamma is None:
        descendant_stats(W, z, D, pairs, net.lambda_b, net.lambda_W, float(net.input_dim), 0.9, out)
    else:
        descendant_stats(W, z, D, pairs, net.lambda_b, net.lambda_W, float(net.input_dim), 0.9, out, gamma)
    for a in range(4):
        ref = network_stats_numpy(W[a], z[a], D[a], pairs[a], net.lambda_b, net.lambda_W, net.input_dim, 0.9,
                                  gamma)
        np.testing.assert_allclose(out[a], ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


@pytest.mark.parametrize("act, ensemble, gamma", [("tanh", "uniform", 0.8), ("relu", "orthogonal", 0.5),
                                                  ("sin(z) + 0.25*z**2", "rademacher", 1.3)])
def test_numba_kernel_matches_numpy_reference_residual(act, ensemble, gamma):
    test_numba_kernel_matches_numpy_reference(act, ensemble, gamma)


def test_builtin_derivative_tables_match_activation_module():
    z = np.linspace(-3, 3, 7)[None]
    for name in ("tanh", "relu", "gelu", "swish", "erf"):
        act = get_activation(name)
        _, D = forward_base(z, np.zeros((1, 0, 7, 7)), np.zeros((1, 0, 7)), act)
        np.testing.assert_array_equal(D[0, 0], act.derivatives(z[0], 3))


# ------------------------------------------------------------ API behaviour
def _arrays(sim):
    return ([sim.values[k] for k in descendants.KEYS] + [sim.errors[k] for k in descendants.KEYS]
            + [sim.ratios[k] for k in quantities.DESCENDANT_RATIOS])


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_same_seed_same_numbers_at_any_thread_count(ensemble, monkeypatch):
    net = Network("tanh", depth=3, width=8, ensemble=ensemble, C_b=0.1, lambda_b=0.5)
    monkeypatch.setattr(_runner, "worker_count", lambda: 1)
    one = simulate_descendants(net, samples=300, seed=5, pairs=3)
    monkeypatch.setattr(_runner, "worker_count", lambda: 4)
    many = simulate_descendants(net, samples=300, seed=5, pairs=3)
    for a, b in zip(_arrays(one), _arrays(many)):
        assert np.array_equal(a, b, equal_nan=True)
    other = simulate_descendants(net, samples=300, seed=6, pairs=3)
    assert not np.array_equal(one.values["S"], other.values["S"])


def test_shallow_run_is_a_prefix_of_a_deeper_one():
    net = Network("tanh", depth=4, width=8)
    deep = simulate_descendants(net, samples=150, seed=1)
    shallow = simulate_descendants(net.replace(depth=2), samples=150, seed=1)
    for k in descendants.KEYS:
        assert np.array_equal(shallow.values[k], deep.values[k][:2])


def test_first_layer_exact_values():
    net = Network("tanh", depth=2, width=6, lambda_b=0.25, lambda_W=2.0)
    sim = simulate_descendants(net, samples=40, seed=0, input_norm=0.5)
    assert sim.values["Theta"][0] == pytest.approx(0.25 + 2.0 * 0.5, rel=1e-14)
    for k in DESC:
        assert sim.values[k][0] == 0.0 and sim.errors[k][0] == 0.0


def test_result_json_and_width_extrapolation():
    from fwtheory._io import dumps_json

    net = Network("tanh", depth=2, width=8, ensemble="orthogonal")
    sim = simulate_descendants(net, samples=60, seed=0, widths=[6, 8, 12])
    d = json.loads(dumps_json(sim.to_dict()))
    assert set(DESC) <= set(d) and d["extrapolation"]["widths"] == [6, 8, 12]
    assert set(d["ratios"]) == set(quantities.DESCENDANT_RATIOS)
    assert len(sim.extrapolation.per_width) == 3 and sim.extrapolation.per_width[1].network.width == 8


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(samples=1), "samples"), (dict(seed=-1), "seed"), (dict(pairs=0), "pairs"),
    (dict(widths=[8]), "widths"), (dict(input_norm=-1.0), "input_norm"), (dict(progress=3), "progress"),
])
def test_bad_input(kwargs, parameter):
    args = dict(network=Network("tanh", depth=2, width=4), samples=10, seed=0)
    args.update(kwargs)
    with pytest.raises(ParameterError) as err:
        simulate_descendants(**args)
    assert err.value.parameter == parameter


def test_builtin_activation_never_imports_sympy():
    code = ("import sys; sys.path[:0] = sys.argv[1:]\n"
            "from fwtheory import Network\n"
            "from fwtheory.mc.descendants import simulate_descendants\n"
            "simulate_descendants(Network('gelu', depth=3, width=6, ensemble='orthogonal'), 20, 0)\n"
            "assert 'sympy' not in sys.modules, 'sympy was imported'\n")
    subprocess.run([sys.executable, "-c", code] + sys.path, check=True)


# ----------------------------------------------------- statistics vs theory
# Bonferroni: these tests make 50-150 comparisons each; at 3 sigma apiece a
# correct theory would fail one of them 15-30 % of the time, at 4 sigma < 1 %.
# (Pull study, 24 seeds of the fast tanh/Gaussian case: pulls have sd 0.7-1.1;
# seed 7 has S at layer 2 at -3.2 sigma.) The issue-7 test keeps its 3 sigma.
Z_MULTI = 4.0
CONFIGS = [("tanh", 1.0, "gaussian"), ("tanh", 1.0, "orthogonal"),
           ("relu", 2.0, "gaussian"), ("relu", 2.0, "orthogonal")]


def _network(act, C_W, ensemble, depth, width):
    # issue 7: C_b = 0, lambda_b = 0, lambda_W = 1, q0 = 1
    return Network(act, depth=depth, width=width, C_W=C_W, C_b=0.0, lambda_b=0.0, lambda_W=1.0,
                   ensemble=ensemble)


def _predicted(net):
    from fwtheory import predict

    p = predict(net, input_norm=1.0)
    return {k: np.asarray(p.values[k], float) for k in descendants.KEYS}


@pytest.mark.parametrize("act, C_W, ensemble", CONFIGS)
def test_extrapolated_descendants_agree_with_predict_fast(act, C_W, ensemble):
    """Depth 3, widths 64 and 128: the intercepts c0 of X(n) = c0 + c1/n
    (``simulate_descendants(..., widths=...)``) agree with ``predict`` at layers
    2 and 3 (layer 1 is exact) within Z_MULTI standard errors. The 1/n^2
    remainder biases c0 by about c2/(64*128), well below the errors here (see the
    slow tests)."""
    net = _network(act, C_W, ensemble, depth=3, width=64)
    sim = simulate_descendants(net, samples=2000, seed=7, widths=[64, 128])
    th = _predicted(net)
    for k in descendants.KEYS:
        c0, se = sim.values[k][1:], sim.errors[k][1:]
        assert np.all(np.isfinite(c0)) and np.all(np.isfinite(se))
        # se = 0 only where every network gives exactly the predicted value
        # (ReLU at layer 2: dH_{mkk} = ddI_{iikk} = ddII_{ikki} = 0 identically)
        assert np.all(np.abs(c0 - th[k][1:]) <= Z_MULTI * se + 1e-12 * (1 + np.abs(th[k][1:]))), \
            (k, c0, se, th[k][1:])


def _fit_poly_inverse_width(widths, values, errors, degree):
    """Weighted least squares X(n) = sum_j c_j / n^j, j <= degree, per layer:
    (c0, se(c0), chi2) arrays. Layers with a zero error (exact values) are
    returned as the plain mean with se 0."""
    x = 1.0 / np.asarray(widths, float)
    y, e = np.asarray(values, float), np.asarray(errors, float)
    c0, se0, chi2 = np.empty(y.shape[1]), np.empty(y.shape[1]), np.empty(y.shape[1])
    for l in range(y.shape[1]):
        if np.any(e[:, l] == 0):
            c0[l], se0[l], chi2[l] = y[:, l].mean(), 0.0, 0.0
            continue
        X = np.stack([x ** j for j in range(degree + 1)], axis=1)
        w = 1.0 / e[:, l] ** 2
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        c = cov @ (X.T @ (w * y[:, l]))
        c0[l], se0[l] = c[0], np.sqrt(cov[0, 0])
        chi2[l] = float(np.sum(w * (y[:, l] - X @ c) ** 2))
    return c0, se0, chi2


def _agreement(act, C_W, ensemble, widths=(32, 64), samples=(40000, 20000), depth=6, seed=11):
    """Per-width simulations, predict, and the width fits c0 + c1/n (+ c2/n^2 with
    three or more widths) of every key."""
    net = _network(act, C_W, ensemble, depth, widths[-1])
    th = _predicted(net)
    per_width = {n: simulate_descendants(net.replace(width=n, input_dim=n), N, seed)
                 for n, N in zip(widths, samples)}
    fits = {}
    for k in descendants.KEYS:
        vals = [per_width[n].values[k] for n in widths]
        errs = [per_width[n].errors[k] for n in widths]
        fits[k] = {"linear": _fit_poly_inverse_width(widths, vals, errs, 1)}
        if len(widths) >= 3:
            fits[k]["quadratic"] = _fit_poly_inverse_width(widths, vals, errs, 2)
    return th, per_width, fits


@pytest.mark.slow
@pytest.mark.parametrize("act, C_W, ensemble", CONFIGS)
def test_three_width_fit_agrees_with_predict(act, C_W, ensemble):
    """Issue 13's criterion (it replaces issue 7's two-width 1/n criterion, which the
    O(1/n^2) terms at n = 32, 64 make fail): ``simulate_descendants(..., widths=[32, 64, 128])``
    and the c0 of its three-width fit c0 + c1/n + c2/n^2 (``extrapolation.fits[key]["quadratic"]``)
    within 3 of its standard errors of predict, every descendant, layers 2 and 3 (layer 1 is
    exact). Scaled down (depth 3, 3000 networks per width, ~40 s in all on an idle machine); the
    full run (depth 6, 40000/20000/10000 networks) is validation/descendants_width_fit.py,
    recorded in docs/order2.md. (At depth 4 with 1500 networks per width, ReLU/Gaussian Q at
    layer 2 came out 3.7 SE off, 2.289 +- 0.079 against 2; 4000 networks per width at seeds 11
    and 12 give 2.045 +- 0.049 and 2.050 +- 0.046.)"""
    net = _network(act, C_W, ensemble, depth=3, width=32)
    sim = simulate_descendants(net, samples=3000, seed=11, widths=[32, 64, 128])
    th = _predicted(net)
    failures = []
    for k in DESC:
        quad = sim.extrapolation.fits[k]["quadratic"]
        c0, se = quad["c0"], quad["c0_se"]
        assert np.all(np.isfinite(c0[1:])) and np.all(se[1:] >= 0)
        bad = np.abs(c0 - th[k]) > 3 * se + 1e-12 * (1 + np.abs(th[k]))
        failures += [f"{k} l={l + 1}: c0 {c0[l]:.4g} +- {se[l]:.2g}, theory {th[k][l]:.4g}"
                     for l in np.flatnonzero(bad)]
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("act, C_W, ensemble", CONFIGS)
def test_quadratic_width_extrapolation_agrees_with_predict(act, C_W, ensemble):
    """n = 32, 64, 128, l <= 6: the intercept of X(n) = c0 + c1/n + c2/n^2 agrees
    with predict within Z_MULTI standard errors (the 1/n^2 term is resolved at l >= 4,
    where the two-point 1/n fit of the issue-7 criterion is biased by c2/(32*64))."""
    th, per_width, fits = _agreement(act, C_W, ensemble, widths=(32, 64, 128),
                                     samples=(40000, 20000, 10000))
    for k in DESC:
        c0, se, _ = fits[k]["quadratic"]
        assert np.all(np.abs(c0 - th[k]) <= Z_MULTI * se + 1e-12 * (1 + np.abs(th[k]))), (k, c0, se, th[k])


def main(argv=None):  # pragma: no cover - prints the agreement table
    import argparse

    ap = argparse.ArgumentParser(description="issue-7 agreement table of simulate_descendants vs predict")
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--samples", type=int, nargs="+", default=[40000, 20000])
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    print("cells: simulated value +- se ('*': outside 3 se + 10 % of predict); fits: c0 +- se "
          "(pull in se); C_b = 0, lambda_b = 0, lambda_W = 1, q0 = 1")
    for act, C_W, ens in CONFIGS:
        th, per_width, fits = _agreement(act, C_W, ens, tuple(args.widths), tuple(args.samples),
                                         args.depth, args.seed)
        print(f"\n== {act} C_W={C_W:g} {ens}; n = {args.widths}, networks {args.samples}")
        for k in descendants.KEYS:
            for l in range(1, args.depth):
                cells = []
                for n in args.widths:
                    v, e = per_width[n].values[k][l], per_width[n].errors[k][l]
                    flag = "*" if abs(v - th[k][l]) > 3 * e + 0.1 * abs(th[k][l]) else " "
                    cells.append(f"{v:9.4g} ±{e:7.2g}{flag}")
                for kind, (c0, se, chi2) in fits[k].items():
                    pull = (c0[l] - th[k][l]) / se[l] if se[l] > 0 else 0.0
                    cells.append(f"{kind[:4]} c0 {c0[l]:9.4g} ±{se[l]:7.2g} ({pull:+5.1f})")
                print(f"{k:5s} l={l + 1} theory {th[k][l]:9.4g} | " + " | ".join(cells))


if __name__ == "__main__":  # pragma: no cover
    main()
