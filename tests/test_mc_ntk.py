"""The sampler's forward pass and NTK forward equation (PDLT Ch. 8; docs/conventions.md)
against the definition H_{i1 i2} = sum_mu lambda_mu dz_i1/dtheta_mu dz_i2/dtheta_mu
(lambda_b per bias, lambda_W / n_{l-1} per weight of layer l), by central finite
differences over every parameter of a tiny network."""

import math

import numpy as np
import pytest

from fwtheory import get_activation
from fwtheory.mc import _kernels
from fwtheory.mc.ensembles import haar_normal_count


def _forward(params, x, act):
    """Plain numpy forward pass: list of z^(l)."""
    zs, a = [], x
    for W, b in params:
        z = b + W @ a
        zs.append(z)
        a = act.derivatives(z, 0)[0]
    return zs


def _ntk_by_definition(params, x, act, lam_b, lam_W, h=1e-6):
    L = len(params)
    n = params[0][0].shape[0]
    H = [np.zeros((n, n)) for _ in range(L)]
    for m, (W, b) in enumerate(params):
        fan_in = W.shape[1]
        for arr, lam in ((W, lam_W / fan_in), (b, lam_b)):
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                plus = _forward(params, x, act)
                arr[idx] = old - h
                minus = _forward(params, x, act)
                arr[idx] = old
                for l in range(m, L):
                    g = (plus[l] - minus[l]) / (2 * h)
                    H[l] += lam * np.outer(g, g)
    return H


def _kernel_layers(params, x, act, lam_b, lam_W, haar=None):
    """z and H of every layer from the kernels (explicit weights, or Haar
    matrices rebuilt from their normals when ``haar = (normals, scales)``)."""
    W1, b1 = params[0]
    n = W1.shape[0]
    q0 = x @ x / x.size
    z = (b1 + W1 @ x)[None]
    H = ((lam_b + lam_W * q0) * np.eye(n))[None]
    zs, Hs = [z[0]], [H[0]]
    for l, (W, b) in enumerate(params[1:]):
        z_out, H_out, st = np.empty_like(z), np.empty_like(H), np.empty((1, _kernels.NSTAT))
        if act.code >= 0:
            s = sp = np.empty((1, 0))
        else:
            d = act.derivatives(z, 1)
            s, sp = d[0], d[1]
        if haar is None:
            _kernels.propagate_dense(act.code, act.slope, 1.0, lam_b, lam_W, z, H, s, sp,
                                     np.ascontiguousarray(W.T)[None], b[None], z_out, H_out, st)
        else:
            g, scale = haar[0][l], haar[1]
            _kernels.propagate_haar(act.code, act.slope, scale, lam_b, lam_W, z, H, s, sp,
                                    g[None], b[None], z_out, H_out, st)
        z, H = z_out, H_out
        zs.append(z[0])
        Hs.append(H[0])
    return zs, Hs


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "z*tanh(z) + sin(z)/2"])
def test_gaussian_ntk_matches_definition(activation):
    act = get_activation(activation)
    rng = np.random.default_rng(7)
    n0, n, L, C_W, C_b, lam_b, lam_W = 3, 4, 4, 1.7, 0.3, 0.6, 1.3
    x = rng.standard_normal(n0)
    params = [(rng.standard_normal((n, n0)) * math.sqrt(C_W / n0), rng.standard_normal(n) * math.sqrt(C_b))]
    params += [(rng.standard_normal((n, n)) * math.sqrt(C_W / n), rng.standard_normal(n) * math.sqrt(C_b))
               for _ in range(L - 1)]
    zs, Hs = _kernel_layers(params, x, act, lam_b, lam_W)
    ref_z = _forward(params, x, act)
    ref_H = _ntk_by_definition(params, x, act, lam_b, lam_W)
    for l in range(L):
        np.testing.assert_allclose(zs[l], ref_z[l], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Hs[l], ref_H[l], rtol=1e-6, atol=1e-7)
    assert np.abs(Hs[-1] - np.diag(np.diag(Hs[-1]))).max() > 1e-2   # off-diagonal NTK is exercised


@pytest.mark.parametrize("activation", ["tanh", "swish"])
def test_orthogonal_ntk_matches_definition(activation):
    act = get_activation(activation)
    rng = np.random.default_rng(11)
    n, L, C_W, C_b, lam_b, lam_W = 5, 4, 1.4, 0.2, 0.5, 1.1
    x = rng.standard_normal(n)
    normals = rng.standard_normal((L, haar_normal_count(n)))
    O = np.empty((L, n, n))
    _kernels.haar_batch(normals, O)
    # the kernel uses W = sqrt(C_W) O^T for the Haar O it builds from the normals
    params = [(math.sqrt(C_W) * O[l].T, rng.standard_normal(n) * math.sqrt(C_b)) for l in range(L)]
    zs, Hs = _kernel_layers(params, x, act, lam_b, lam_W, haar=(normals[1:], math.sqrt(C_W)))
    ref_z = _forward(params, x, act)
    ref_H = _ntk_by_definition(params, x, act, lam_b, lam_W)
    for l in range(L):
        np.testing.assert_allclose(zs[l], ref_z[l], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Hs[l], ref_H[l], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu(0.2)", "tanh", "sin", "erf",
                                  "sigmoid", "softplus", "gelu", "swish"])
def test_kernel_activations_match_reference(name):
    act = get_activation(name)
    z = np.concatenate([np.linspace(-9, 9, 181), [0.0, -0.0, 1e-300, -40.0, 40.0]])
    s, sp = np.empty_like(z), np.empty_like(z)
    _kernels.activation_values(act.code, act.slope, z, s, sp)
    ref = act.derivatives(z, 1)
    np.testing.assert_allclose(s, ref[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(sp, ref[1], rtol=1e-13, atol=1e-15)


def test_layer_stats_are_the_pair_u_statistics():
    rng = np.random.default_rng(3)
    n = 6
    z = rng.standard_normal((2, n))
    A = rng.standard_normal((2, n, n))
    H = A @ A.transpose(0, 2, 1)
    out = np.empty((2, _kernels.NSTAT))
    _kernels.layer_stats(z, H, out)
    for a in range(2):
        off = ~np.eye(n, dtype=bool)
        d, zz = np.diag(H[a]), z[a] ** 2
        expect = [zz.mean(), (zz ** 2).mean(), d.mean(), (d ** 2).mean(),
                  np.outer(zz, zz)[off].mean(), np.outer(d, zz)[off].mean(), np.outer(d, d)[off].mean(),
                  (H[a] * np.outer(z[a], z[a]))[off].mean(), (H[a] ** 2)[off].mean()]
        np.testing.assert_allclose(out[a], expect, rtol=1e-12)
