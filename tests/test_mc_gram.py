"""Several-input Monte Carlo (simulate(..., gram=G), fwtheory.mc.multi_input): identical
inputs reproduce the single-input sampler, exact deep-linear multi-input moments, the
infinite-width kernel matrix, the input embedding, the CLI and bad input."""

import argparse
import itertools
import json

import numpy as np
import pytest

from fwtheory import Network, ParameterError
from fwtheory.cli import simulate as cli_simulate
from fwtheory.kernel import kernel_matrix
from fwtheory.mc import simulate
from fwtheory.mc.multi_input import GRAM_NAMES, input_vectors

G3 = np.array([[1.0, 0.6, -0.2], [0.6, 1.3, 0.3], [-0.2, 0.3, 0.8]])


@pytest.mark.parametrize("ensemble,residual", [("gaussian", None), ("orthogonal", None), ("uniform", None),
                                               ("rademacher", None), ("gaussian", 0.5)])
def test_identical_inputs_equal_single_input(ensemble, residual):
    # two copies of the single input x = sqrt(q0) (1, ..., 1): same seed, same weights, so every
    # tensor entry is the single-input value (to rounding: different summation order)
    net = Network("tanh", depth=3, width=12, ensemble=ensemble, residual=residual, C_b=0.1)
    q0 = 0.7
    one = simulate(net, 48, seed=5, input_norm=q0)
    two = simulate(net, 48, seed=5, gram=[[q0, q0], [q0, q0]])
    for k in GRAM_NAMES:
        v, e = two.values[k], two.errors[k]
        ref = one.values[k].reshape((-1,) + (1,) * (v.ndim - 1))
        ref_e = one.errors[k].reshape((-1,) + (1,) * (v.ndim - 1))
        np.testing.assert_allclose(v, np.broadcast_to(ref, v.shape), rtol=1e-11, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(e, np.broadcast_to(ref_e, e.shape), rtol=1e-9, atol=1e-12, err_msg=k)
    # the first input's kernel is the single-input one bit for bit
    assert np.array_equal(two.values["K"][:, 0, 0], one.values["K"])


def _deep_linear(G, C_W, lam_b, lam_W, n, L):
    """Exact moments of a deep linear network (C_b = 0, Gaussian weights, any width):
    Ghat^(l) = (C_W/n) sum_i z_i z_i^T is the conditional covariance of layer l+1, and
    E[Ghat'_ab Ghat'_cd | Ghat] = C_W^2 [Ghat_ab Ghat_cd + (Ghat_ac Ghat_bd + Ghat_ad Ghat_bc)/n]
    (Isserlis over the n i.i.d. neurons). So with M^(0) = C_W^2 G x G,
    M^(l) = C_W^2 [M^(l-1)_{ab,cd} + (M^(l-1)_{ac,bd} + M^(l-1)_{ad,bc})/n],
    E[z_a z_b] = C_W^l G_ab, Cov(z_ia z_ib, z_kc z_kd) = M^(l-1)_{ab,cd} - K_ab K_cd,
    Theta^(l+1) = lambda_b + lambda_W K^(l) + C_W Theta^(l), Theta^(1) = lambda_b + lambda_W G."""
    M = C_W ** 2 * np.einsum("ab,cd->abcd", G, G)
    K, T, V = [], [], []
    theta = lam_b + lam_W * G
    for l in range(1, L + 1):
        Kl = C_W ** l * G
        K.append(Kl)
        T.append(theta)
        V.append(M - np.einsum("ab,cd->abcd", Kl, Kl))
        theta = lam_b + lam_W * Kl + C_W * theta
        M = C_W ** 2 * (M + (M.transpose(0, 2, 1, 3) + M.transpose(0, 3, 2, 1)) / n)
    return np.array(K), np.array(T), np.array(V)


def test_deep_linear_exact_multi_input_moments():
    n, L, C_W, lam_b, lam_W = 8, 4, 1.2, 0.3, 0.7
    net = Network("linear", depth=L, width=n, C_W=C_W, lambda_b=lam_b, lambda_W=lam_W)
    sim = simulate(net, 3000, seed=11, gram=G3)
    K, T, V = _deep_linear(G3, C_W, lam_b, lam_W, n, L)
    n_prev = np.array([n] * L, float)[:, None, None, None, None]
    checks = {"K": K, "Theta": T, "V": n_prev * V, "G1": 0 * K, "Theta1": 0 * T}
    for name, exact in checks.items():
        z = (sim.values[name] - exact) / np.where(sim.errors[name] > 0, sim.errors[name], np.inf)
        dev = np.abs(sim.values[name] - exact)
        ok = (np.abs(z) <= 4.0) | (dev <= 1e-10 * (1 + np.abs(exact)))
        assert ok.all(), (name, float(np.max(np.abs(z[~ok]))))
    # the statistics are informative: V_aaaa at layers 2, 3 resolved to better than 20%
    for a in range(3):
        assert np.all(sim.errors["V"][1:3, a, a, a, a] < 0.2 * n * V[1:3, a, a, a, a])


@pytest.mark.parametrize("act,C_W,ensemble,residual", [
    ("tanh", 1.0, "gaussian", None), ("relu", 2.0, "gaussian", None), ("tanh", 1.0, "orthogonal", None),
    ("tanh", 1.0, "uniform", None), ("relu", 2.0, "rademacher", None), ("tanh", 1.0, "gaussian", 0.5)])
def test_leading_order_kernel_and_ntk_match_kernel_matrix(act, C_W, ensemble, residual):
    from fwtheory.mc.multi_input import gram_infinite_width

    n, L = 32, 4
    G = G3[:2, :2]
    net = Network(act, depth=L, width=n, C_W=C_W, C_b=0.05, ensemble=ensemble, residual=residual)
    sim = simulate(net, 600, seed=2, gram=G)
    if residual is None:
        km = kernel_matrix(net.replace(ensemble="gaussian", first_layer="gaussian"), G)
        K_ref, T_ref = km.K, km.Theta
    else:    # the residual recursions; their diagonal is the single-input residual_infinite_width
        from fwtheory.mc.sampling import residual_infinite_width

        K_ref, T_ref = gram_infinite_width(net, G, [])
        for a in range(2):
            k1, t1 = residual_infinite_width(net, G[a, a])
            np.testing.assert_allclose(K_ref[:, a, a], k1, rtol=1e-12)
            np.testing.assert_allclose(T_ref[:, a, a], t1, rtol=1e-12)
    for name, ref in (("K", K_ref), ("Theta", T_ref)):
        v, e = sim.values[name], sim.errors[name]
        # 3 standard errors plus the 1/n correction G1/n, Theta1/n (|G1/K|, |Theta1/Theta| < 2 here)
        assert np.all(np.abs(v - ref) <= 3 * e + 2.0 * np.abs(ref) / n + 1e-12), name


def test_width_extrapolation_with_gram():
    net = Network("tanh", depth=3, width=8, C_b=0.1)
    sim = simulate(net, 200, seed=1, gram=G3[:2, :2], widths=[8, 16])
    assert sim.extrapolation["widths"] == [8, 16]
    assert sim.values["V"].shape == (3, 2, 2, 2, 2)
    per = sim.extrapolation["per_width"]
    # c0 + c1/n reproduces the two widths exactly (two points, two coefficients)
    c0, c1 = sim.extrapolation["c0"]["K"][2], sim.extrapolation["c1"]["K"][2]
    for r in per:
        np.testing.assert_allclose(c0 + c1 / r.network.width, r.values["K"][2], rtol=1e-9)


def test_input_vectors_have_the_gram_matrix():
    for G, n0 in ((G3, 12), (G3[:2, :2], 6), (np.array([[2.0, 2.0], [2.0, 2.0]]), 10)):
        x = input_vectors(G, n0)
        np.testing.assert_allclose(x @ x.T / n0, G, atol=1e-14)
    x = input_vectors([[0.5]], 7)
    np.testing.assert_allclose(x, np.sqrt(0.5) * np.ones((1, 7)))


def test_bad_gram():
    net = Network("tanh", depth=2, width=8)
    for bad in ([[1, 2], [2, 1]], np.eye(5), [[1, 0.1], [0.2, 1]], [[0.0, 0], [0, 1]], "1,x;0,1"):
        with pytest.raises(ParameterError, match="gram"):
            simulate(net, 10, seed=0, gram=bad)
    with pytest.raises(ParameterError, match="input_dim"):
        simulate(Network("tanh", depth=2, width=8, input_dim=6, ensemble="rademacher"), 10, 0, gram=G3)
    with pytest.raises(ParameterError, match="input_dim"):
        simulate(Network("tanh", depth=2, width=2, ensemble="orthogonal"), 10, 0, gram=G3)
    with pytest.raises(ParameterError, match="input_norm"):
        simulate(net, 10, seed=0, gram=G3, input_norm=2.0)


def _args(argv):
    parser = argparse.ArgumentParser(prog="fwtheory")
    cli_simulate.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simulate"] + argv)


NET = ["--activation", "tanh", "--depth", "2", "--width", "8", "--samples", "40"]


def test_cli_gram_json_nested_lists(tmp_path, capsys):
    path = tmp_path / "g.json"
    assert cli_simulate.run(_args(NET + ["--gram", "1,0.5;0.5,1", "--json", "--out", str(path)])) == 0
    d = json.loads(capsys.readouterr().out)
    assert d == json.loads(path.read_text())
    assert np.array(d["K"]).shape == (2, 2, 2) and np.array(d["Theta1_se"]).shape == (2, 2, 2)
    for k in ("V", "D", "F", "A", "B"):
        assert np.array(d[k]).shape == (2, 2, 2, 2, 2)
    assert d["gram"] == [[1.0, 0.5], [0.5, 1.0]]
    sim = simulate(Network("tanh", depth=2, width=8), 40, seed=0, gram=[[1, 0.5], [0.5, 1]])
    np.testing.assert_allclose(np.array(d["V"]), sim.values["V"], rtol=1e-14)


def test_cli_gram_table_and_errors(capsys):
    assert cli_simulate.run(_args(NET + ["--gram", "1,0.5;0.5,1"])) == 0
    out = capsys.readouterr().out
    assert "K_01" in out and "Theta_11" in out and "V_0101" in out
    assert len(out.strip().splitlines()) == 2 + 1 + 2
    with pytest.raises(ParameterError, match="descendants"):
        cli_simulate.run(_args(NET + ["--gram", "1,0.5;0.5,1", "--descendants"]))
    with pytest.raises(ParameterError, match="gram"):
        cli_simulate.run(_args(NET + ["--gram", "1,0.5;0.5"]))


@pytest.mark.parametrize("act,C_W", [("tanh", 1.5), ("relu", 2.0)])
def test_layer_two_exact_against_gauss_multi(act, C_W):
    # Gaussian first layer: the layer-1 neurons are i.i.d. N(0, K1), K1 = C_b + C_W G, at any
    # width, and H^(1) = Theta1 delta. So at layer 2, exactly (n_1 = n):
    #   V_abcd = C_W^2 (<s_a s_b s_c s_d> - <s_a s_b><s_c s_d>),
    #   F_abcd = C_W^2 Theta1_ab <s'_a s'_b s_c s_d>,
    #   B_abcd = C_W^2 Theta1_ab Theta1_cd <s'_a s'_b s'_c s'_d>,   G1 = Theta1 = 0,
    #   D, A: covariances of the conditional means (below),
    # with <.> over N(0, K1) (fwtheory.gauss_multi: 4-input expectations)
    from fwtheory.gauss_multi import expect_monomials

    C_b, lam_b, lam_W = 0.1, 0.2, 1.0
    G = np.array([[1.0, 0.6, -0.3], [0.6, 1.2, 0.2], [-0.3, 0.2, 0.9]])
    net = Network(act, depth=2, width=16, C_W=C_W, C_b=C_b, lambda_b=lam_b, lambda_W=lam_W)
    sim = simulate(net, 2500, seed=4, gram=G)
    K1, T1 = C_b + C_W * G, lam_b + lam_W * G
    idx = list(itertools.product(range(3), repeat=4))
    mons = ([((a, 0), (b, 0), (c, 0), (d, 0)) for a, b, c, d in idx]
            + [((a, 1), (b, 1), (c, 0), (d, 0)) for a, b, c, d in idx]
            + [((a, 1), (b, 1), (c, 1), (d, 1)) for a, b, c, d in idx]
            + [((a, 0), (b, 0)) for a in range(3) for b in range(3)]
            + [((a, 1), (b, 1)) for a in range(3) for b in range(3)])
    v = expect_monomials(act, K1, mons, rtol=1e-8)
    n4 = len(idx)
    ssss, ppss, pppp = (v[i * n4:(i + 1) * n4].reshape((3,) * 4) for i in range(3))
    ss, pp = v[3 * n4:3 * n4 + 9].reshape(3, 3), v[3 * n4 + 9:].reshape(3, 3)
    outer = lambda x, y: np.einsum("ab,cd->abcd", x, y)            # noqa: E731
    T1ab, T1cd = T1[:, :, None, None], T1[None, None, :, :]
    V = C_W ** 2 * (ssss - outer(ss, ss))
    F = C_W ** 2 * T1ab * ppss
    B = C_W ** 2 * outer(T1, T1) * pppp
    # H_ii given layer 1 has mean lambda_b + lambda_W S_ab + C_W Theta1_ab P_ab (S, P neuron means of
    # s_a s_b, s'_a s'_b); neurons i != k of layer 2 are independent given layer 1, so
    # D = n Cov(E[H_ii|.], E[z_kc z_kd|.]) and A = n Cov(E[H_ii|.], E[H_kk|.]):
    cov_ss, cov_ps = ssss - outer(ss, ss), ppss - outer(pp, ss)
    cov_sp = cov_ps.transpose(2, 3, 0, 1)
    D = C_W * (lam_W * cov_ss + C_W * T1ab * cov_ps)
    A = (lam_W ** 2 * cov_ss + lam_W * C_W * (T1cd * cov_sp + T1ab * cov_ps)
         + C_W ** 2 * T1ab * T1cd * (pppp - outer(pp, pp)))
    for name, exact in (("V", V), ("F", F), ("B", B), ("D", D), ("A", A), ("G1", np.zeros((3, 3))),
                        ("Theta1", np.zeros((3, 3)))):
        dev = sim.values[name][1] - exact
        z = dev / np.where(sim.errors[name][1] > 0, sim.errors[name][1], np.inf)
        ok = (np.abs(z) < 4.0) | (np.abs(dev) <= 1e-10)
        assert ok.all(), (name, float(np.max(np.abs(z[~ok]))))
    # resolved: the diagonal of V to better than 25%
    for a in range(3):
        assert sim.errors["V"][1, a, a, a, a] < 0.25 * abs(V[a, a, a, a])
