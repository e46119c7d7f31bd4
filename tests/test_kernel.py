"""Infinite-width kernel, mean NTK and susceptibilities (fwtheory.kernel)."""

import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fwtheory
from fwtheory import Network, gauss
from fwtheory.activations import BUILTIN_NAMES, get_activation
from fwtheory.errors import NumericalError, ParameterError
from fwtheory.kernel import _sigma_only, infinite_width, kernel_matrix


def test_lazy_top_level_names():
    assert fwtheory.infinite_width is infinite_width
    assert fwtheory.kernel_matrix is kernel_matrix
    assert callable(fwtheory.criticality) and callable(fwtheory.fixed_points)


def test_tanh_reference_values():
    # docs/references.md items 5 and 8: C_W = 1, C_b = 0, lambda_W = 1, K^(1) = Theta^(1) = 1
    r = infinite_width(Network("tanh", depth=3, width=8))
    np.testing.assert_allclose(r.K, [1.0, 0.394294, 0.236450], atol=5e-7)
    assert r.Theta[1] == pytest.approx(0.858697, abs=5e-7)
    # chi's at layer 1: C_W d<tanh^2>/dK and C_W <sech^4> at K = 1, cross-checked with the oracle
    ref = gauss.expect_monomials_mp("tanh", 1.0, [(2, 0, 0, 0, 0)], dk=1, dps=20)[0]
    assert r.chi_parallel[0] == pytest.approx(float(ref), rel=1e-12)


def test_linear_network_is_exact():
    C_b, C_W, lb, lW, q0, L = 0.3, 1.7, 0.2, 0.9, 1.3, 30
    r = infinite_width(Network("linear", depth=L, width=4, C_b=C_b, C_W=C_W, lambda_b=lb, lambda_W=lW),
                       input_norm=q0)
    # exact rational recursion: <z^2>_K = K, <1>_K = 1
    F = Fraction
    K, Th = [F(C_b) + F(C_W) * F(q0)], [F(lb) + F(lW) * F(q0)]
    for _ in range(L - 1):
        Th.append(F(lb) + F(lW) * K[-1] + F(C_W) * Th[-1])
        K.append(F(C_b) + F(C_W) * K[-1])
    np.testing.assert_allclose(r.K, [float(k) for k in K], rtol=1e-13)
    np.testing.assert_allclose(r.Theta, [float(t) for t in Th], rtol=1e-13)
    np.testing.assert_allclose(r.chi_parallel, C_W, rtol=1e-13)
    np.testing.assert_allclose(r.chi_perp, C_W, rtol=1e-13)
    # closed form K^(l) = C_b sum_{j<l} C_W^j + C_W^l q0
    ell = np.arange(1, L + 1)
    np.testing.assert_allclose(r.K, C_b * (C_W ** ell - 1) / (C_W - 1) + C_W ** ell * q0, rtol=1e-12)


def test_relu_at_criticality():
    # K^(l) = K^(1), chi_par = chi_perp = 1, Theta^(l) = l lambda_W K / 2 (docs/references.md item 7)
    r = infinite_width(Network("relu", depth=200, width=8, C_W=2.0), input_norm=0.7)
    np.testing.assert_allclose(r.K, 1.4, rtol=1e-13)
    np.testing.assert_allclose(r.Theta, r.layers * 0.7, rtol=1e-12)
    np.testing.assert_allclose(r.chi_parallel, 1.0, rtol=1e-13)
    np.testing.assert_allclose(r.chi_perp, 1.0, rtol=1e-13)


@pytest.mark.parametrize("name, C_b, C_W, depth", [
    ("swish", 0.55514317, 1.98800468, 150),  # K grows past 6: the loop climbs the quadrature levels
    ("tanh", 0.3, 2.0, 40),
    ("Max(z, 1) - 1", 0.1, 1.5, 8),  # kink away from 0: error-controlled engine per layer
])
def test_recursion_matches_error_controlled_scalar_loop(name, C_b, C_W, depth):
    net = Network(name, depth=depth, width=8, C_b=C_b, C_W=C_W, lambda_b=0.1)
    r = infinite_width(net)
    K, Th = [C_b + C_W], [0.1 + 1.0]
    for _ in range(depth - 1):
        s2, t2 = gauss.expect_monomials(name, K[-1], [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
        Th.append(0.1 + s2 + C_W * t2 * Th[-1])
        K.append(C_b + C_W * s2)
    np.testing.assert_allclose(r.K, K, rtol=1e-12)
    np.testing.assert_allclose(r.Theta, Th, rtol=1e-11)
    chi = C_W * gauss.expect_monomials(name, np.array(K), [(2, 0, 0, 0, 0)], dk=1)[0]
    np.testing.assert_allclose(r.chi_parallel, chi, rtol=1e-12)


def test_result_is_frozen_and_serializable():
    r = infinite_width(Network("gelu", depth=4, width=8, C_b=0.1, C_W=2.0))
    with pytest.raises(ValueError):
        r.K[0] = 1.0
    with pytest.raises(AttributeError):
        r.K = None
    d = json.loads(json.dumps(r.to_dict()))
    assert d["layers"] == [1, 2, 3, 4] and len(d["chi_perp"]) == 4
    assert d["network"]["activation"] == "gelu"


@pytest.mark.parametrize("name", [n for n in BUILTIN_NAMES] + ["leaky_relu(0.3)", "z*tanh(z)"])
def test_fast_sigma_is_the_activation(name):
    act = get_activation(name)
    x = np.linspace(-30, 30, 1201)
    np.testing.assert_array_equal(_sigma_only(act)(x), act.derivatives(x, 0)[0])


def test_no_sympy_import():
    code = ("import sys, fwtheory; r = fwtheory.infinite_width(fwtheory.Network('gelu', depth=50, width=4)); "
            "fwtheory.kernel_matrix(fwtheory.Network('relu', depth=3, width=4), [[1, .5], [.5, 1]]); "
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("q0", [float("nan"), float("inf"), -0.5, "x"])
def test_bad_input_norm(q0):
    with pytest.raises(ParameterError, match="^input_norm:"):
        infinite_width(Network("tanh", depth=2, width=4), input_norm=q0)


def test_zero_kernel_is_rejected():
    with pytest.raises(ParameterError, match="^input_norm:"):
        infinite_width(Network("tanh", depth=2, width=4, C_b=0.0), input_norm=0.0)
    r = infinite_width(Network("tanh", depth=2, width=4, C_b=0.5), input_norm=0.0)
    assert r.K[0] == 0.5


def test_not_a_network():
    with pytest.raises(ParameterError, match="^network:"):
        infinite_width({"activation": "tanh"})


def test_overflow_names_the_layer():
    with pytest.raises(NumericalError, match="layer"):
        infinite_width(Network("relu", depth=3000, width=4, C_W=10.0))
    with pytest.raises(NumericalError, match="layer"):
        infinite_width(Network("linear", depth=3000, width=4, C_W=1e-3, C_b=0.0))


# ------------------------------------------------------------------ several inputs
def _arccos(K):
    d = np.sqrt(np.diag(K))
    c = np.clip(K / np.outer(d, d), -1.0, 1.0)
    np.fill_diagonal(c, 1.0)  # arccos is ill-conditioned at 1: use the exact diagonal
    th = np.arccos(c)
    ss = np.outer(d, d) / (2 * np.pi) * (np.sin(th) + (np.pi - th) * c)
    tt = (np.pi - th) / (2 * np.pi)  # <theta(z_a) theta(z_b)>
    return ss, tt


def test_relu_kernel_matrix_is_the_arccos_kernel_at_every_layer():
    G = np.array([[1.0, 0.6, -0.2], [0.6, 2.0, 0.1], [-0.2, 0.1, 0.5]])
    C_b, C_W, lb, lW = 0.1, 1.7, 0.3, 1.2
    r = kernel_matrix(Network("relu", depth=8, width=8, C_b=C_b, C_W=C_W, lambda_b=lb, lambda_W=lW), G)
    K, Th = C_b + C_W * G, lb + lW * G
    for layer in range(8):
        np.testing.assert_allclose(r.K[layer], K, rtol=1e-12)
        np.testing.assert_allclose(r.Theta[layer], Th, rtol=1e-12)
        ss, tt = _arccos(K)
        K, Th = C_b + C_W * ss, lb + lW * ss + C_W * tt * Th


def test_kernel_matrix_diagonal_is_the_single_input_kernel():
    G = np.array([[0.8, 0.3], [0.3, 1.5]])
    net = Network("gelu", depth=10, width=8, C_b=0.1, C_W=1.9, lambda_b=0.2)
    r = kernel_matrix(net, G)
    for a in range(2):
        w = infinite_width(net, input_norm=G[a, a])
        np.testing.assert_allclose(r.K[:, a, a], w.K, rtol=1e-12)
        np.testing.assert_allclose(r.Theta[:, a, a], w.Theta, rtol=1e-12)
    # identical inputs: the off-diagonal equals the diagonal
    r2 = kernel_matrix(net, [[0.8, 0.8], [0.8, 0.8]])
    np.testing.assert_allclose(r2.K[:, 0, 1], r2.K[:, 0, 0], rtol=1e-11)


@st.composite
def gram_matrices(draw):
    m = draw(st.integers(2, 4))
    n0 = draw(st.integers(1, 5))
    x = np.array(draw(st.lists(st.floats(-2, 2), min_size=m * n0, max_size=m * n0))).reshape(m, n0)
    x[np.all(x == 0, axis=1), 0] = 1.0  # no zero inputs
    return x @ x.T / n0


@given(G=gram_matrices(), name=st.sampled_from(["relu", "tanh", "erf", "gelu", "leaky_relu(0.3)"]))
def test_kernel_matrix_stays_psd(G, name):
    r = kernel_matrix(Network(name, depth=3, width=8, C_b=0.05, C_W=1.5, lambda_b=0.1), G)
    for layer in range(3):
        for M in (r.K[layer], r.Theta[layer]):
            np.testing.assert_allclose(M, M.T, rtol=0, atol=0)
            assert np.linalg.eigvalsh(M).min() >= -1e-10 * np.abs(M).max()


def test_kernel_matrix_errors():
    net = Network("tanh", depth=2, width=4)
    with pytest.raises(ParameterError, match="^gram:"):
        kernel_matrix(net, [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ParameterError, match="^gram:"):
        kernel_matrix(net, np.eye(5))
    with pytest.raises(ParameterError, match="^gram:"):
        kernel_matrix(net, [[0.0, 0.0], [0.0, 1.0]])  # zero input with C_b = 0


def test_infinite_width_returns_all_layers():
    r = infinite_width(Network("erf", depth=1, width=4))
    assert r.layers.tolist() == [1] and r.K.shape == r.Theta.shape == (1,)
    assert math.isfinite(r.chi_parallel[0]) and math.isfinite(r.chi_perp[0])


def test_layer_maps_are_the_derived_recursions():
    """Issue 12 (one source of truth): the leading-order maps that kernel.py
    evaluates are, symbol for symbol, the recursions derive() produces."""
    import sympy

    from fwtheory import derive
    from fwtheory.kernel import kernel_first_layer, kernel_step, ntk_first_layer, ntk_step
    from fwtheory.symbolic import CORRELATOR_SYMBOLS as S
    from fwtheory.symbolic import C_W, C_b, lambda_W, lambda_b, q0
    from fwtheory.symbolic.symbols import moment

    s2, t2 = moment(s=2), moment(t=2)
    for ensemble in ("gaussian", "orthogonal"):
        k, theta = derive("K", ensemble), derive("Theta", ensemble)
        assert sympy.expand(k.expr - kernel_step(C_b, C_W, s2)) == 0
        assert sympy.expand(theta.expr - ntk_step(lambda_b, lambda_W, C_W, s2, t2, S["Theta"])) == 0
        for first in ("gaussian", "orthogonal"):
            assert sympy.expand(k.initial[first] - kernel_first_layer(C_b, C_W, q0)) == 0
            assert sympy.expand(theta.initial[first] - ntk_first_layer(lambda_b, lambda_W, q0)) == 0
