"""Normalization layers at infinite width (fwtheory.normalization) and their Monte Carlo
(fwtheory.mc.normalized): closed forms, exact identities, exact NTK, agreement at n = 512."""

import math

import numpy as np
import pytest

from fwtheory import Network, ParameterError, gauss, kernel_matrix
from fwtheory.activations import get_activation
from fwtheory.mc import normalized as mcn
from fwtheory.normalization import batchnorm_step, layernorm_step, normalized_kernels

GRAM3 = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.4], [0.2, 0.4, 1.0]])


def _relu_centered(c):
    """Correlation of centred ReLU activations and E[s's']/v at unit variance (closed forms)."""
    k = math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c
    return (k - 1.0) / (math.pi - 1.0), (math.pi - math.acos(c)) / (math.pi - 1.0)


def test_layernorm_step_relu_closed_form():
    q, c = 1.7, 0.35
    K = q * np.array([[1.0, c], [c, 1.0]])
    Th = np.array([[2.0, 0.7], [0.7, 2.0]])
    Kn, Tn = layernorm_step("relu", K, Th, C_b=0.2, C_W=1.3, lambda_b=0.4, lambda_W=0.9)
    rho, tt = _relu_centered(c)
    # v = q (pi - 1) / (2 pi), E[s' s'] = (pi - arccos c) / (2 pi): the ratio is tt / q
    assert Kn[0, 0] == pytest.approx(0.2 + 1.3, rel=1e-13)
    assert Kn[0, 1] == pytest.approx(0.2 + 1.3 * rho, rel=1e-10)
    assert Tn[0, 0] == pytest.approx(0.4 + 0.9 + 1.3 * (math.pi / (math.pi - 1)) / q * 2.0, rel=1e-10)
    assert Tn[0, 1] == pytest.approx(0.4 + 0.9 * rho + 1.3 * tt / q * 0.7, rel=1e-10)


def test_none_matches_kernel_matrix():
    r = normalized_kernels("tanh", GRAM3, 5, C_b=0.1, C_W=1.9, lambda_b=0.3, lambda_W=1.1, normalization="none")
    km = kernel_matrix(Network("tanh", 5, 4, C_b=0.1, C_W=1.9, lambda_b=0.3, lambda_W=1.1), GRAM3)
    np.testing.assert_allclose(r.K, km.K, rtol=1e-12)
    np.testing.assert_allclose(r.Theta, km.Theta, rtol=1e-12)


def test_batchnorm_two_inputs_linear_reduces_to_1d():
    # m = 2, sigma(u) = u: yhat_1 = -yhat_2 = g(d), g(d) = d / sqrt(d^2 + 4 eps), d = u_1 - u_2 ~ N(0, s2);
    # J = g'(d) [[1, -1], [-1, 1]], g'(d) = 4 eps / (d^2 + 4 eps)^(3/2): two 1-D integrals
    eps, K = 0.05, np.array([[1.2, 0.5], [0.5, 0.9]])
    Th = np.array([[1.5, 0.4], [0.4, 1.1]])
    s2 = K[0, 0] + K[1, 1] - 2 * K[0, 1]
    e1 = gauss.expect(lambda d: d * d / (d * d + 4 * eps), s2)
    e2 = gauss.expect(lambda d: 16 * eps ** 2 / (d * d + 4 * eps) ** 3, s2)
    Kn, Tn, err = batchnorm_step("linear", K, Th, C_b=0.1, C_W=2.0, lambda_b=0.3, lambda_W=1.5, bn_eps=eps,
                                 rtol=1e-8)
    sgn = np.array([[1.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_allclose(Kn, 0.1 + 2.0 * e1 * sgn, rtol=1e-7)
    np.testing.assert_allclose(Tn, 0.3 + 1.5 * e1 * sgn + 2.0 * e2 * (Th[0, 0] + Th[1, 1] - 2 * Th[0, 1]) * sgn,
                               rtol=1e-7)


def test_batchnorm_rows_sum_to_bias():
    r = normalized_kernels("relu", GRAM3, 3, C_b=0.2, C_W=1.6, lambda_b=0.3, lambda_W=1.6,
                           normalization="batchnorm", bn_eps=0.1)
    for l in (1, 2):
        np.testing.assert_allclose((r.K[l] - 0.2).sum(axis=1), 0.0, atol=1e-9 * r.K[l].max())
        np.testing.assert_allclose((r.Theta[l] - 0.3).sum(axis=1), 0.0, atol=1e-9 * r.Theta[l].max())
    assert r.quad_error.max() < 1e-3


def test_layernorm_fixes_diagonal_and_decorrelates_relu():
    # Jacot's standardized ReLU, beta^2 = 0.1: plain freezes (off-diagonal grows), LayerNorm
    # (r = (1 - beta^2) pi / (pi - 1) = 1.32 > 1) decorrelates the normalized NTK
    b2 = 0.1
    kw = dict(C_b=b2, C_W=2 * (1 - b2), lambda_b=b2, lambda_W=2 * (1 - b2))
    ln = normalized_kernels("relu", GRAM3, 12, normalization="layernorm", **kw)
    plain = normalized_kernels("relu", GRAM3, 12, normalization="none", **kw)
    np.testing.assert_allclose(np.einsum("lii->li", ln.K)[1:], b2 + 2 * (1 - b2), rtol=1e-13)
    assert np.all(np.diff(ln.offdiag[1:]) < 0) and ln.offdiag[-1] < 0.02
    assert np.all(np.diff(plain.offdiag) > 0)


def test_bad_normalization_name_and_eps():
    with pytest.raises(ParameterError, match="normalization"):
        normalized_kernels("relu", GRAM3, 3, normalization="groupnorm")
    with pytest.raises(ParameterError, match="normalization"):
        mcn.simulate_normalized("relu", GRAM3, 3, 8, 2, 0, normalization="groupnorm")
    with pytest.raises(ParameterError, match="bn_eps"):
        normalized_kernels("relu", GRAM3, 3, normalization="batchnorm", bn_eps=0.0)


@pytest.mark.parametrize("norm", ["none", "layernorm", "batchnorm"])
def test_mc_ntk_is_exact(norm):
    """The backward-pass NTK equals J Lambda J^T from central differences of the forward pass."""
    act = get_activation("tanh")
    X = mcn._inputs(GRAM3)
    np.testing.assert_allclose(X @ X.T / 3, GRAM3, atol=1e-14)
    n, L, lb, lw, eps = 5, 3, 0.3, 1.7, 0.05
    Ws, bs = mcn.draw_parameters(np.random.default_rng(1), n, 3, L, 0.2, 1.5)
    shapes = [w.shape for w in Ws] + [b.shape for b in bs]
    v0 = np.concatenate([a.ravel() for a in Ws + bs])
    metric = np.concatenate([np.full(w.size, lw / w.shape[1]) for w in Ws] + [np.full(b.size, lb) for b in bs])

    def unflat(v):
        out, i = [], 0
        for sh in shapes:
            out.append(v[i:i + int(np.prod(sh))].reshape(sh))
            i += int(np.prod(sh))
        return out[:L], out[L:]

    K, H = mcn.network_stats(Ws, bs, X, act, norm, lb, lw, eps)
    for l in range(L):
        def out(v):
            f = mcn.forward(*unflat(v), X, act, norm, eps)
            return f["Zbn"][l] if norm == "batchnorm" and l > 0 else f["Z"][l]
        h = 1e-6
        J = np.stack([(out(v0 + h * e) - out(v0 - h * e)) / (2 * h) for e in np.eye(v0.size)], axis=-1)
        np.testing.assert_allclose(np.einsum("aip,bip,p->ab", J, J, metric) / n, H[l], rtol=1e-8)
        np.testing.assert_allclose(out(v0) @ out(v0).T / n, K[l], rtol=1e-13)


def test_mc_batchnorm_rows_sum_to_zero_and_seeded():
    kw = dict(C_b=0.0, C_W=1.8, lambda_b=0.0, lambda_W=1.8, normalization="batchnorm", bn_eps=0.01)
    a = mcn.simulate_normalized("relu", GRAM3, 4, 16, 3, 7, **kw)
    b = mcn.simulate_normalized("relu", GRAM3, 4, 16, 3, 7, **kw)
    np.testing.assert_array_equal(a.K, b.K)
    np.testing.assert_array_equal(a.Theta, b.Theta)
    for l in range(1, 4):
        assert np.abs(a.K[l].sum(axis=1)).max() < 1e-12 * np.abs(a.K[l]).max()
        assert np.abs(a.Theta[l].sum(axis=1)).max() < 1e-12 * np.abs(a.Theta[l]).max()


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["none", "layernorm", "batchnorm"])
def test_infinite_width_maps_match_mc_at_512(norm):
    """Acceptance: kernel and NTK entries at l <= 10 within 3 SE + 2% (n = 512, 30 networks)."""
    b2 = 0.1
    kw = dict(C_b=b2, C_W=2 * (1 - b2), lambda_b=b2, lambda_W=2 * (1 - b2), normalization=norm, bn_eps=0.05)
    th = normalized_kernels("relu", GRAM3, 10, **kw)
    mc = mcn.simulate_normalized("relu", GRAM3, 10, 512, 30, 0, **kw)
    for T, M, S in ((th.K, mc.K, mc.K_se), (th.Theta, mc.Theta, mc.Theta_se)):
        assert np.all(np.abs(M - T) <= 3 * S + 0.02 * np.abs(T) + 1e-12)


def test_phase_layernorm_profile_characteristic_value():
    # LayerNorm'd ReLU: chi = C_W <sigma'^2> / Var(sigma) = C_W pi / (pi - 1) at any scale
    from fwtheory import phase

    p = phase.ntk_profile("relu", 0.1, 0.9, GRAM3, depth=8, normalization="layernorm")
    assert p["chi_perp"] == pytest.approx(0.9 * math.pi / (math.pi - 1), rel=1e-12)
    assert p["regime"] == "chaotic" and p["normalization"] == "layernorm"
    ref = normalized_kernels("relu", GRAM3, 8, C_b=0.1, C_W=0.9, normalization="layernorm")
    np.testing.assert_allclose(p["offdiag"], ref.offdiag, rtol=1e-13)
