r"""Normalization layers at infinite width: kernel and mean-NTK maps for a Gram matrix of inputs.

The setting of Jacot, Gabriel, Ged, Hongler, "Order and Chaos: NTK views on DNN
normalization, checkerboard and boundary artifacts" (arXiv:1907.05715), written in
PDLT conventions (Roberts, Yaida, Hanin, arXiv:2106.10165; docs/conventions.md):
m inputs with Gram matrix G_ab = x_a.x_b / n0, layer 1 linear, z^(l+1) = b + W s^(l),
W_ij ~ N(0, C_W / n), b_i ~ N(0, C_b), learning rates lambda_b, lambda_W / n.
Derivation: docs/order_chaos.md, "Normalization layers".

``normalization="none"``: s^(l) = sigma(z^(l)), the recursions of
:func:`fwtheory.kernel.kernel_matrix`.

``normalization="layernorm"``: LayerNorm over the n neurons of every hidden
layer, applied to the activations (after the nonlinearity, no affine
parameters): s_i = (sigma_i - mean_j sigma_j) / sqrt(var_j sigma_j). At
infinite width the mean and variance over neurons concentrate on
mu_a = <sigma>_{K_aa}, v_a = <sigma^2>_{K_aa} - mu_a^2, and the projection part
of LayerNorm's Jacobian removes two of n directions (an O(1/n) effect), so

    K^(l+1)_ab     = C_b + C_W rho_ab,     rho_ab = E[(sigma(u_a) - mu_a)(sigma(u_b) - mu_b)] / sqrt(v_a v_b)
    Theta^(l+1)_ab = lambda_b + lambda_W rho_ab + C_W E[sigma'(u_a) sigma'(u_b)] / sqrt(v_a v_b) Theta^(l)_ab

with (u_a, u_b) ~ N(0, K^(l)) (2x2 block). The diagonal K^(l)_aa = C_b + C_W
is fixed from layer 2 on; the network behaves as the plain one with the
centred, standardized nonlinearity (sigma - mu) / sqrt(v) (Jacot's
"normalized nonlinearity").

``normalization="batchnorm"``: BatchNorm over the batch of the m inputs,
applied per neuron to the activations of the last hidden layer (after the last
nonlinearity, no affine parameters, variance regularizer ``bn_eps``):
yhat_a = (y_a - ybar) / sqrt(v + eps) with y_a = sigma(u_a), ybar and v the
mean and (1/m) variance over the batch. The batch statistics do not
concentrate (m is finite); at infinite width the layer is a deterministic map
of the m x m kernel:

    K^(L)_ab     = C_b + C_W E[yhat_a yhat_b]
    Theta^(L)_ab = lambda_b + lambda_W E[yhat_a yhat_b] + C_W E[(J Theta^(L-1) J^T)_ab]
    J_ac = d yhat_a / d u_c = (delta_ac - 1/m - yhat_a yhat_c / m) sigma'(u_c) / sqrt(v + eps)

with u ~ N(0, K^(L-1)) (all m inputs jointly: an m-dimensional Gaussian
expectation, :func:`fwtheory.gauss.expect_multi`). The profile over depth gives,
at layer l >= 2, the output layer of the depth-l network whose last
nonlinearity is batch-normalized (the BN map applied to the plain layer l - 1).
Since sum_a yhat_a = 0, both K^(L) - C_b and Theta^(L) - lambda_b have
rows summing to zero. The Jacobian term grows without bound as eps -> 0
(docs/order_chaos.md), so ``bn_eps`` is a parameter of the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .activations import Activation

__all__ = ["NORMALIZATIONS", "NormalizedKernels", "normalized_kernels", "layernorm_step",
           "batchnorm_step"]

import math
from dataclasses import dataclass, field

import numpy as np

from . import gauss
from .activations import get_activation
from .errors import NumericalError, ParameterError, check_int, check_real

NORMALIZATIONS = ("none", "layernorm", "batchnorm")
_S1 = (1, 0, 0, 0, 0)
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _plain_step(act, K, Th, C_b, C_W, lam_b, lam_W):
    ss, tt = gauss.pair_moments(act, K)
    return C_b + C_W * ss, lam_b + lam_W * ss + C_W * tt * Th


def layernorm_step(activation, K, Theta, C_b=0.0, C_W=1.0, lambda_b=0.0, lambda_W=1.0):
    """One layer with LayerNorm on the activations (module docstring): (K, Theta) -> (K', Theta')."""
    act = get_activation(activation)
    K, Th = np.asarray(K, dtype=float), np.asarray(Theta, dtype=float)
    mu = gauss.expect_monomials(act, np.diag(K).copy(), [_S1])[0]
    ss, tt = gauss.pair_moments(act, K)
    v = np.diag(ss) - mu * mu
    if not (np.all(np.isfinite(v)) and np.all(v > 1e-300)):
        raise NumericalError(f"LayerNorm: the activations have zero variance over neurons (v = {v})")
    sd = np.sqrt(v)
    rho = (ss - np.outer(mu, mu)) / np.outer(sd, sd)
    np.fill_diagonal(rho, 1.0)
    return C_b + C_W * rho, lambda_b + lambda_W * rho + C_W * tt / np.outer(sd, sd) * Th


def _bn_integrand(act, m, Th, eps):
    eye = np.eye(m)[:, :, None]

    def f(Z):
        d = act.derivatives(Z, 1)
        y, yp = d[0], d[1]
        yc = y - y.mean(axis=0)
        den = np.sqrt((yc * yc).mean(axis=0) + eps)
        with np.errstate(**_QUIET):
            inv = np.where(den > 0, 1.0 / den, 0.0)  # eps = 0: a neuron constant on the batch gives 0
        yh = yc * inv
        J = (eye - 1.0 / m - yh[:, None, :] * yh[None, :, :] / m) * (yp * inv)[None, :, :]
        JTJ = np.einsum("acn,cd,bdn->abn", J, Th, J)
        return np.concatenate([(yh[:, None] * yh[None, :]).reshape(m * m, -1), JTJ.reshape(m * m, -1)])
    return f


def batchnorm_step(activation, K, Theta, C_b=0.0, C_W=1.0, lambda_b=0.0, lambda_W=1.0, bn_eps=1e-2,
                   rtol=1e-4):
    """The batch-normalized last layer (module docstring): (K^(L-1), Theta^(L-1)) -> (K^(L), Theta^(L)).

    One m-dimensional Gaussian expectation (m <= 4) by :func:`fwtheory.gauss.expect_multi`
    at relative accuracy ``rtol`` (retried at 10 rtol, then 100 rtol). Returns
    (K, Theta, error) with ``error`` the quadrature's estimate (max over entries,
    relative to E[|integrand|]).
    """
    act = get_activation(activation)
    K, Th = np.asarray(K, dtype=float), np.asarray(Theta, dtype=float)
    eps = check_real("bn_eps", bn_eps, lower=0.0, lower_open=True)
    m = K.shape[0]
    if m < 2:
        raise ParameterError("gram", "BatchNorm over the batch needs at least 2 inputs")
    f = _bn_integrand(act, m, Th, eps)
    try:
        val, err = gauss.expect_multi_relaxed(f, K, kinks=act.kinks, rtols=(rtol, 10 * rtol, 100 * rtol),
                                              full_output=True)
    except NumericalError as exc:
        raise NumericalError(f"BatchNorm map: {exc}") from None
    scale = np.maximum(np.abs(val), 1e-300)
    E = val.reshape(2, m, m)
    Kn = C_b + C_W * E[0]
    Tn = lambda_b + lambda_W * E[0] + C_W * E[1]
    return 0.5 * (Kn + Kn.T), 0.5 * (Tn + Tn.T), float(np.max(err / scale))


@dataclass(frozen=True)
class NormalizedKernels:
    """Infinite-width kernel and mean NTK of m inputs over depth, with a normalization layer.

    ``K`` and ``Theta`` have shape (L, m, m), index [l - 1] = layer l
    (for ``batchnorm``: the output layer of the depth-l network whose last
    nonlinearity is batch-normalized; layer 1 has none). ``normalized`` is
    Theta_ab / sqrt(Theta_aa Theta_bb); ``offdiag`` its mean off-diagonal entry
    per layer; ``quad_error`` the BatchNorm quadrature's error estimate per layer.
    """

    activation: str
    normalization: str
    C_b: float
    C_W: float
    lambda_b: float
    lambda_W: float
    bn_eps: float
    gram: np.ndarray = field(repr=False)
    layers: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)
    quad_error: np.ndarray = field(repr=False)

    @property
    def normalized(self):
        d = np.sqrt(np.einsum("lii->li", self.Theta))
        return self.Theta / (d[:, :, None] * d[:, None, :])

    @property
    def offdiag(self):
        m = self.gram.shape[0]
        iu = np.triu_indices(m, 1)
        return self.normalized[:, iu[0], iu[1]].mean(axis=1)

    def to_dict(self):
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, np.ndarray)}
        for k in ("gram", "layers", "K", "Theta", "quad_error"):
            out[k] = getattr(self, k).tolist()
        out["normalized"] = self.normalized.tolist()
        out["offdiag"] = self.offdiag.tolist()
        return out

    def _repr_markdown_(self):
        rows = ["| layer | mean normalized NTK off-diagonal | Theta_11 |", "|---|---|---|"]
        off = self.offdiag
        for i, l in enumerate(self.layers):
            rows.append(f"| {l} | {off[i]:.6g} | {self.Theta[i, 0, 0]:.6g} |")
        head = (f"**{self.activation}**, normalization = {self.normalization}, C_b = {self.C_b:g}, "
                f"C_W = {self.C_W:g}\n\n")
        return head + "\n".join(rows)


def normalized_kernels(activation: str | Activation, gram: ArrayLike, depth: int, C_b: float = 0.0, C_W: float = 1.0,
                       lambda_b: float = 0.0, lambda_W: float = 1.0,
                       normalization: Literal["none", "layernorm", "batchnorm"] = "layernorm",
                       bn_eps: float = 1e-2, rtol: float = 1e-4) -> NormalizedKernels:
    """Kernel and mean NTK matrices over depth for a Gram matrix (module docstring).

    Parameters
    ----------
    activation : activation spec (:func:`fwtheory.get_activation`)
    gram : (m, m) input Gram matrix x_a.x_b / n0, m <= 4 (m >= 2 for batchnorm)
    depth : number of layers L >= 1
    C_b, C_W, lambda_b, lambda_W : initialization and learning rates (PDLT conventions)
    normalization : "none", "layernorm" or "batchnorm"
    bn_eps : BatchNorm's variance regularizer eps > 0 (batchnorm only; the NTK through
        BatchNorm has no eps -> 0 limit, docs/order_chaos.md)
    rtol : relative accuracy of the BatchNorm m-dimensional expectations
    """
    act = get_activation(activation)
    if normalization not in NORMALIZATIONS:
        raise ParameterError("normalization", f"must be one of {', '.join(NORMALIZATIONS)}, "
                                              f"got {normalization!r}")
    L = check_int("depth", depth, lower=1)
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    lam_b = check_real("lambda_b", lambda_b, lower=0.0)
    lam_W = check_real("lambda_W", lambda_W, lower=0.0)
    eps = check_real("bn_eps", bn_eps, lower=0.0, lower_open=True)
    rtol = check_real("rtol", rtol, lower=1e-12, upper=1e-2)
    G = gauss._check_cov(gram, name="gram")
    m = G.shape[0]
    if normalization == "batchnorm" and m < 2:
        raise ParameterError("gram", "BatchNorm over the batch needs at least 2 inputs (m >= 2)")
    K = np.empty((L, m, m))
    Th = np.empty((L, m, m))
    err = np.zeros(L)
    K[0] = C_b + C_W * G
    Th[0] = lam_b + lam_W * G
    if not (np.diag(K[0]) > 0).all():
        raise ParameterError("gram", "every input needs K^(1)_aa = C_b + C_W gram[a, a] > 0")
    k_plain, th_plain = K[0].copy(), Th[0].copy()
    for i in range(L - 1):
        with np.errstate(**_QUIET):
            if normalization == "none":
                K[i + 1], Th[i + 1] = _plain_step(act, K[i], Th[i], C_b, C_W, lam_b, lam_W)
            elif normalization == "layernorm":
                K[i + 1], Th[i + 1] = layernorm_step(act, K[i], Th[i], C_b, C_W, lam_b, lam_W)
            else:
                K[i + 1], Th[i + 1], err[i + 1] = batchnorm_step(act, k_plain, th_plain, C_b, C_W, lam_b,
                                                                 lam_W, eps, rtol)
                if i + 2 < L:
                    k_plain, th_plain = _plain_step(act, k_plain, th_plain, C_b, C_W, lam_b, lam_W)
        if not (np.isfinite(K[i + 1]).all() and np.isfinite(Th[i + 1]).all()
                and (np.diag(K[i + 1]) > 0).all()):
            raise NumericalError(f"kernel or NTK overflow/underflow at layer {i + 2}")
    ro = []
    for a in (G, np.arange(1, L + 1), K, Th, err):
        a = np.array(a)
        a.setflags(write=False)
        ro.append(a)
    return NormalizedKernels(act.name, normalization, C_b, C_W, lam_b, lam_W, eps, *ro)
