"""Deconvolutional networks: geometry, bivariate expectations, kernel/NTK recursions, the
Monte Carlo's backward pass, and theory against simulation (docs/deconv.md)."""

import subprocess
import sys

import numpy as np
import pytest

from fwtheory import gauss
from fwtheory.activations import get_activation
from fwtheory.deconv import Architecture, deconv_kernels
from fwtheory.deconv.diagnostics import (border_amplitude, checkerboard_amplitude, checkerboard_patterns,
                                         condition_number)
from fwtheory.deconv.pairs import pair_moments
from fwtheory.errors import ParameterError
from fwtheory.mc.deconv import _draw, _forward, _input_signal, _ntk, _windows, network_function, simulate_deconv


@pytest.mark.parametrize("dim", [1, 2])
def test_geometry_degrees(dim):
    a = Architecture.build(dim=dim, input_side=3, depth=2, stride=2, filter=4)
    assert a.sides == [3, 6, 12]
    g = a.layers[1]
    deg = g.degree.reshape((12,) * dim)
    inner = deg[(slice(1, -1),) * dim]
    assert (inner == 2 ** dim).all()                 # (f/s)^d connections in the interior
    assert deg.min() == 1                            # a corner receives one connection
    gg = Architecture.build(dim=dim, input_side=3, depth=2, parametrization="graph").layers[1]
    assert np.allclose(gg.scale ** 2 * gg.degree, 1.0)
    assert np.allclose(g.scale, 0.5 ** (dim / 2))


def test_bad_options():
    with pytest.raises(ParameterError, match="parametrization"):
        Architecture.build(parametrization="reflect")
    with pytest.raises(ParameterError, match="padding"):
        Architecture.build(filter=4, padding=2)
    with pytest.raises(ParameterError, match="stride"):
        Architecture.build(stride=5, filter=3, padding=0)
    with pytest.raises(ParameterError, match="lambda_W"):
        deconv_kernels("relu", depth=3, lambda_W=[1.0, 2.0])


@pytest.mark.parametrize("name", ["relu", "leaky_relu(0.3)", "tanh", "gelu"])
def test_pair_moments_match_expect_multi(name):
    act = get_activation(name)
    rng = np.random.default_rng(3)
    K11, K22 = rng.uniform(0.3, 2.5, 6), rng.uniform(0.3, 2.5, 6)
    c = np.array([-0.97, -0.4, 0.0, 0.35, 0.8, 0.9999])
    K12 = c * np.sqrt(K11 * K22)
    ss, tt = pair_moments(act, K11, K22, K12)

    def f(Z):
        d = act.derivatives(Z, 1)
        return np.stack([d[0, 0] * d[0, 1], d[1, 0] * d[1, 1]])
    for i in range(6):
        ref = gauss.expect_multi(f, [[K11[i], K12[i]], [K12[i], K22[i]]], kinks=act.kinks, rtol=1e-11)
        assert np.allclose([ss[i], tt[i]], ref, rtol=1e-8, atol=1e-12)


def test_zero_padding_interior_is_the_fully_connected_recursion():
    # ReLU at criticality (C_b = 0, C_W = 2), lambda_W = 1, q0 = 1: K = C_W q0 = 2, Theta^(l) = l (PDLT Ch. 8)
    r = deconv_kernels("relu", C_W=2.0, input_side=4, depth=4)
    th, k = r.ntk_diagonal, r.kernel_diagonal
    assert np.allclose(th[20:44], 4.0, rtol=1e-13) and np.allclose(k[20:44], 2.0, rtol=1e-13)
    assert th[0] < 0.1 * th.max()                    # the border artifact
    # tanh: the interior follows K' = C_b + C_W <tanh^2>_K, Theta' = lb + lw <s^2> + C_W <s'^2> Theta
    r = deconv_kernels("tanh", C_b=0.1, C_W=1.7, lambda_b=0.3, input_side=4, depth=3)
    K, T = 0.1 + 1.7, 0.3 + 1.0
    for _ in range(2):
        s2, t2 = gauss.expect_monomials("tanh", K, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
        K, T = 0.1 + 1.7 * s2, 0.3 + s2 + 1.7 * t2 * T
    assert np.isclose(r.kernel_diagonal[16], K, rtol=1e-12) and np.isclose(r.ntk_diagonal[16], T, rtol=1e-12)


@pytest.mark.parametrize("dim", [1, 2])
def test_graph_parametrization_has_no_border_profile(dim):
    r = deconv_kernels("tanh", C_b=0.1, C_W=2.5, dim=dim, input_side=2, depth=3, parametrization="graph",
                       full=False)
    assert border_amplitude(r.ntk_diagonal) < 1e-12
    z = deconv_kernels("tanh", C_b=0.1, C_W=2.5, dim=dim, input_side=2, depth=3, full=False)
    assert border_amplitude(z.ntk_diagonal) > 0.5
    assert checkerboard_amplitude(z.ntk_diagonal, 2) < 1e-12   # s | f: balanced residue classes


def test_full_diagonal_and_contributions_agree():
    kw = dict(C_b=0.2, C_W=1.4, lambda_b=0.5, lambda_W=[1.0, 0.5, 2.0], input_side=3, depth=3, input_corr=0.3)
    full = deconv_kernels("tanh", contributions=True, **kw)
    diag = deconv_kernels("tanh", full=False, **kw)
    assert np.allclose(np.diag(full.Theta[-1]), diag.Theta[-1], rtol=1e-10)
    assert np.allclose(np.diag(full.K[-1]), diag.K[-1], rtol=1e-10)
    B, W = full.contributions
    total = sum(0.5 * b for b in B) + sum(lw * w for lw, w in zip([1.0, 0.5, 2.0], W))
    assert np.allclose(total, full.Theta[-1], rtol=1e-12)
    assert condition_number(full.Theta[-1]) >= 1.0
    V = checkerboard_patterns(full.architecture.output_side, 1, 2)
    assert V.shape[1] == 1 and np.allclose(V.T @ V, 1.0)


@pytest.mark.parametrize("dim, side, par", [(1, 2, "zero-padding"), (2, 1, "graph")])
def test_backward_pass_matches_finite_differences(dim, side, par):
    act = get_activation("tanh")
    arch = Architecture.build(dim=dim, input_side=side, depth=3, parametrization=par)
    rng = np.random.default_rng(0)
    x = _input_signal(np.eye(side ** dim) * 1.3 + 0.2, 4)
    Ws, bs = _draw(rng, arch, 4, 3, 0.3, 1.7)
    lb, lw = np.array([0.5, 0.2, 0.7]), np.array([1.0, 0.6, 1.4])
    _, As, dAs = _forward(act, arch, x, Ws, bs)
    wins, edges = _windows(arch)
    full = _ntk(arch, wins, edges, As, dAs, Ws, lb, lw, 1, "full")
    diag = _ntk(arch, wins, edges, As, dAs, Ws, lb, lw, 1, "diagonal")
    rows, h = [], 1e-6
    for l in range(3):
        for arr, lam in ((Ws[l], lw[l] / Ws[l].shape[2]), (bs[l], lb[l])):
            flat = arr.reshape(-1)
            for j in range(flat.size):
                old = flat[j]
                flat[j] = old + h
                fp = network_function(act, arch, x, Ws, bs)[0]
                flat[j] = old - h
                fm = network_function(act, arch, x, Ws, bs)[0]
                flat[j] = old
                rows.append(np.sqrt(lam) * (fp - fm) / (2 * h))
    J = np.array(rows)
    ref = J.T @ J
    assert np.abs(full - ref).max() <= 1e-7 * np.abs(ref).max()
    assert np.allclose(diag, np.diag(full), rtol=1e-12)


def test_simulation_is_seeded():
    kw = dict(channels=8, networks=3, seed=5, C_W=2.0, input_side=2, depth=2, ntk="diagonal")
    a, b = simulate_deconv("relu", **kw), simulate_deconv("relu", **kw)
    assert np.array_equal(a.K, b.K) and np.array_equal(a.Theta, b.Theta)
    c = simulate_deconv("relu", **(kw | {"seed": 6}))
    assert not np.array_equal(a.K, c.K)


def test_cli_deconv_runs_and_refuses_bad_input(tmp_path):
    cmd = [sys.executable, "-m", "fwtheory", "deconv", "--dim", "1", "--depth", "3", "--max-depth", "3",
           "--out-dir", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "deconv.png").stat().st_size > 0 and (tmp_path / "deconv.json").stat().st_size > 0
    r = subprocess.run(cmd[:4] + ["--stride", "0", "--no-files"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "stride" in r.stderr


# ------------------------------------------------------------------ acceptance (slow)
@pytest.mark.slow
@pytest.mark.parametrize("dim, side, ntk, networks", [(1, 4, "full", 64), (2, 1, "diagonal", 32)])
@pytest.mark.parametrize("act, C_b, C_W, lam_b", [("relu", 0.0, 2.0, 0.0), ("tanh", 0.1, 1.986, 0.3)])
def test_theory_matches_simulation_at_256_channels(dim, side, ntk, networks, act, C_b, C_W, lam_b):
    """Acceptance: stride 2, filter 4, depth 4, 256 channels: K(o, o) and Theta(o, o) within
    3 SE + 2% at every output location (and, in 1-D, every off-diagonal entry within
    4 SE + 2% of sqrt(Theta(o,o) Theta(o',o')))."""
    arch = Architecture.build(dim=dim, input_side=side, depth=4, stride=2, filter=4)
    th = deconv_kernels(act, arch, C_b=C_b, C_W=C_W, lambda_b=lam_b)
    sim = simulate_deconv(act, arch, channels=256, networks=networks, seed=1, C_b=C_b, C_W=C_W,
                          lambda_b=lam_b, ntk=ntk)
    K, T = th.K[-1], th.Theta[-1]
    dK, dKs = np.diag(sim.K), np.diag(sim.K_se)
    assert np.all(np.abs(dK - np.diag(K)) <= 3 * dKs + 0.02 * np.diag(K))
    Ts = np.diag(sim.Theta) if ntk == "full" else sim.Theta
    Tse = np.diag(sim.Theta_se) if ntk == "full" else sim.Theta_se
    assert np.all(np.abs(Ts - np.diag(T)) <= 3 * Tse + 0.02 * np.diag(T))
    if ntk == "full":
        for M, S, E in ((K, sim.K, sim.K_se), (T, sim.Theta, sim.Theta_se)):
            scale = np.sqrt(np.outer(np.diag(M), np.diag(M)))
            assert np.all(np.abs(S - M) <= 4 * E + 0.02 * scale)


@pytest.mark.slow
def test_graph_parametrization_and_layer_learning_rates_match_simulation():
    """The graph parametrization with a layer-dependent learning rate, 1-D, 256 channels."""
    arch = Architecture.build(dim=1, input_side=4, depth=4, parametrization="graph")
    lw = [2.0, 1.0, 0.5, 0.25]
    th = deconv_kernels("tanh", arch, C_b=0.1, C_W=3.0, lambda_b=0.2, lambda_W=lw, input_corr=0.2)
    sim = simulate_deconv("tanh", arch, channels=256, networks=64, seed=2, C_b=0.1, C_W=3.0, lambda_b=0.2,
                          lambda_W=lw, input_corr=0.2, ntk="diagonal")
    K, T = np.diag(th.K[-1]), np.diag(th.Theta[-1])
    assert np.all(np.abs(np.diag(sim.K) - K) <= 3 * np.diag(sim.K_se) + 0.02 * K)
    assert np.all(np.abs(sim.Theta - T) <= 3 * sim.Theta_se + 0.02 * T)
