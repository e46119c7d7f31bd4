"""Forward pass, backward pass and exact empirical NTK of an MLP (numpy, GEMMs via BLAS).

Network and parameters: :mod:`fwtheory.train.params` (PDLT arXiv:2106.10165
eqs. (4.2)-(4.4); a batch of inputs is a matrix X of shape (m, n0), one row per
input, so every layer is one GEMM, Z^(l+1) = sigma(Z^(l)) W^T + b).

Backward pass. With the backprop rows delta^(l) = dE/dz^(l) (for the loss,
E the output error) or delta^(l)_{a,i} = dz^(L)_i(x_a)/dz^(l)(x_a) (for the NTK),

    delta^(L)   = dE/dz^(L)
    delta^(l-1) = (delta^(l) W^(l)) o sigma'(z^(l-1))                     (plain)
    delta^(l-1) = P^T delta^(l) + gamma (delta^(l) W^(l)) o sigma'(z^(l-1))   (residual)

and the parameter derivatives of layer l are r_l delta^(l) (x) s^(l-1) for W^(l)
and r_l delta^(l) for b^(l), r_l = gamma for residual blocks (l >= 2), else 1;
s^(0) = x.

Empirical NTK (PDLT Ch. 7-8, the learning-rate tensor lambda_b per bias and
lambda_W / n_{l-1} per weight of layer l):

    Theta_{(a,i),(b,j)} = sum_mu lambda_mu dz_i(x_a)/dtheta_mu dz_j(x_b)/dtheta_mu
                        = sum_l r_l^2 (delta^(l)_{a,i} . delta^(l)_{b,j})
                                  [lambda_b + (lambda_W / n_{l-1}) s^(l-1)(x_a) . s^(l-1)(x_b)]

since dz/dW^(l) is the rank-one matrix delta (x) s and <u (x) v, u' (x) v'>_F =
(u . u')(v . v'): two Gram matrices per layer, no per-parameter Jacobian.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["mlp_forward", "forward", "backward", "gradient", "loss_and_gradient", "empirical_ntk",
           "Cache"]

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..network import Network


def _activation(act, z):
    """sigma(z), sigma'(z) (arrays of z's shape). tanh and ReLU by numpy ufuncs
    (vectorized; sigma' = 1 - tanh^2 and relu'(0) = 1 as in the Monte Carlo kernels),
    the other built-ins by the Monte Carlo's jitted :func:`activation_values`,
    custom activations by ``Activation.derivatives``."""
    if act.code == 3:                       # tanh
        s = np.tanh(z)
        sp = np.multiply(s, s)
        np.subtract(1.0, sp, out=sp)
        return s, sp
    if act.code == 1:                       # relu
        sp = (z >= 0.0).astype(float)
        return z * sp, sp
    if act.code >= 0:
        from ..mc._kernels import activation_values

        z = np.ascontiguousarray(z)
        s, sp = np.empty_like(z), np.empty_like(z)
        activation_values(act.code, act.slope, z.reshape(-1), s.reshape(-1), sp.reshape(-1))
        return s, sp
    d = act.derivatives(z, 1)
    return d[0], d[1]


@dataclass
class Cache:
    """Forward-pass intermediates of a batch: ``s[l]`` = sigma(z^(l)) for l = 0..L-1
    (s[0] = X), ``sp[l]`` = sigma'(z^(l)) (sp[0] unused, None), ``out`` = z^(L)."""

    s: list
    sp: list
    out: np.ndarray


def forward(network, params, X):
    """Forward pass of the batch X (m, n0); returns a :class:`Cache`."""
    act, gamma = network.activation, network.residual
    L = len(params)
    s, sp = [X], [None]
    z = None
    for l, (W, b) in enumerate(params, start=1):
        pre = s[-1] @ W.T
        pre += b
        if gamma is not None and l >= 2:
            pre *= gamma
            pre += z[:, :W.shape[0]]
        z = pre
        if l < L:
            a, d = _activation(act, z)
            s.append(a)
            sp.append(d)
    return Cache(s, sp, z)


def mlp_forward(network, params, X):
    """Network outputs z^(L)(x_a), shape (m, n_out), for the inputs X (m, n0)."""
    return forward(network, params, np.asarray(X, dtype=float)).out


def _factor(network, l):
    return network.residual if (network.residual is not None and l >= 2) else 1.0


def backward(network, params, cache, E):
    """Gradient of a loss with dLoss/dz^(L) = E (m, n_out): list of (dW, db) per layer
    (raw derivatives, without the learning-rate tensor)."""
    gamma = network.residual
    L = len(params)
    grads = [None] * L
    g = E
    for l in range(L, 0, -1):
        W = params[l - 1][0]
        r = _factor(network, l)
        dW = g.T @ cache.s[l - 1]
        db = g.sum(axis=0)
        if r != 1.0:
            dW *= r
            db *= r
        grads[l - 1] = (dW, db)
        if l > 1:
            t = g @ W
            t *= cache.sp[l - 1]
            if gamma is not None and l >= 2:
                t *= gamma
                t[:, :W.shape[0]] += g
            g = t
    return grads


def loss_and_gradient(network, params, X, Y):
    """Squared loss L = (1/2) sum_{a,i} (z_i(x_a) - y_{a,i})^2, its gradient, and the outputs."""
    cache = forward(network, params, X)
    E = cache.out - Y
    return 0.5 * float(np.sum(E * E)), backward(network, params, cache, E), cache.out


def gradient(network, params, X, Y):
    """dL/dtheta of L = (1/2) sum_{a,i} (z_i(x_a) - y_{a,i})^2: list of (dW, db)."""
    return loss_and_gradient(network, params, X, Y)[1]


def _backprop_rows(network, params, cache):
    """delta^(l)_{a,i} = dz^(L)_i(x_a)/dz^(l)(x_a) for l = L..1: list indexed l-1 of
    arrays (m, n_out, n_l)."""
    gamma = network.residual
    L = len(params)
    m, n_out = cache.out.shape
    D = [None] * L
    g = np.broadcast_to(np.eye(n_out), (m, n_out, n_out)).copy()
    for l in range(L, 0, -1):
        D[l - 1] = g
        if l > 1:
            W = params[l - 1][0]
            t = g @ W
            t *= cache.sp[l - 1][:, None, :]
            if gamma is not None:
                t *= gamma
                t[:, :, :W.shape[0]] += g
            g = t
    return D


def empirical_ntk(network: Network, params: Sequence[tuple[np.ndarray, np.ndarray]], X: ArrayLike,
                  X2: ArrayLike | None = None) -> np.ndarray:
    """Exact empirical NTK J lambda J^T (see the module docstring).

    Parameters
    ----------
    network : Network
    params : list of (W, b)
    X : (m, n0) inputs; X2 : (m2, n0) optional second set (cross kernel).

    Returns
    -------
    (m, m2) array for a single output, else (m, n_out, m2, n_out) with entry
    Theta_{(a,i),(b,j)} = sum_mu lambda_mu dz_i(x_a)/dtheta_mu dz_j(x_b)/dtheta_mu;
    lambda_mu = lambda_b for biases and lambda_W / fan_in for the weights of a layer.
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    X = np.asarray(X, dtype=float)
    c1 = forward(network, params, X)
    D1 = _backprop_rows(network, params, c1)
    if X2 is None:
        c2, D2 = c1, D1
    else:
        c2 = forward(network, params, np.asarray(X2, dtype=float))
        D2 = _backprop_rows(network, params, c2)
    m1, n_out = c1.out.shape
    m2 = c2.out.shape[0]
    theta = np.zeros((m1, n_out, m2, n_out))
    for l in range(1, len(params) + 1):
        fan_in = params[l - 1][0].shape[1]
        r2 = _factor(network, l) ** 2
        a, b = D1[l - 1].reshape(m1 * n_out, -1), D2[l - 1].reshape(m2 * n_out, -1)
        G = (a @ b.T).reshape(m1, n_out, m2, n_out)
        S = c1.s[l - 1] @ c2.s[l - 1].T
        S *= network.lambda_W / fan_in
        S += network.lambda_b
        theta += r2 * G * S[:, None, :, None]
    return theta[:, 0, :, 0].copy() if n_out == 1 else theta
