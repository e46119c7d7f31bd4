r"""Monte Carlo of finite-width networks of m inputs with LayerNorm or a final BatchNorm.

The networks of :mod:`fwtheory.normalization` (docs/order_chaos.md, "Normalization
layers"), sampled at width n: inputs x_a in R^{n0} with n0 = m and
x_a.x_b / n0 = G_ab, Gaussian weights W^(l)_ij ~ N(0, C_W / n_{l-1}) and biases
b^(l)_i ~ N(0, C_b), z^(1) = b^(1) + W^(1) x, z^(l+1) = b^(l+1) + W^(l+1) s^(l) with

* ``none``: s^(l) = sigma(z^(l));
* ``layernorm``: s^(l)_j = (y_j - ybar) / sqrt(v), y = sigma(z^(l)(x_a)),
  mean and 1/n variance over the n neurons of each input;
* ``batchnorm``: the plain network, and at every layer l >= 2 the output of the
  depth-l network whose last nonlinearity is batch-normalized,
  zbn^(l) = b^(l) + W^(l) yhat, yhat_j(a) = (y_j(a) - ybar_j) / sqrt(v_j + eps),
  mean and 1/m variance over the m inputs for each neuron j (same weights).

Per network and layer: the kernel (1/n) sum_i z_i(x_a) z_i(x_b) over all n
neurons, and the empirical NTK H_ii(x_a, x_b) = sum_mu lambda_mu dz_i(x_a)/dtheta_mu
dz_i(x_b)/dtheta_mu (lambda_b per bias, lambda_W / n_{l-1} per weight of
layer l), averaged over the first ``ntk_neurons`` neurons i (neurons are
exchangeable, so the average is unbiased for E[H_ii]). The NTK is exact: with
delta^(l')_{a<-c} = dz^(l)(x_a) / dz^(l')(x_c) from a hand-written backward pass
(per-input Jacobians sigma' for plain layers, LayerNorm's
(I - 11^T/n - s s^T/n) sigma' / sqrt(v), BatchNorm's per-neuron m x m
(delta_ac - 1/m - yhat_a yhat_c / m) sigma'(z(x_c)) / sqrt(v + eps)),

    H_ii(a, b) = sum_{l'} sum_{c, d} (delta^(l')_{a<-c} delta^(l')_{b<-d})_ii
                 [lambda_b + lambda_W s^(l'-1)(x_c).s^(l'-1)(x_d) / n_{l'-1}]

(c = a, d = b only, without BatchNorm). Networks are independent draws, each
from its own child of ``np.random.SeedSequence(seed)``; means come with standard
errors over networks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..activations import Activation

__all__ = ["NormalizedSimulation", "simulate_normalized"]

from dataclasses import dataclass, field

import numpy as np

from ..activations import get_activation
from ..errors import NumericalError, ParameterError, check_int, check_real

_NORMS = ("none", "layernorm", "batchnorm")


def _inputs(G):
    """X (m, m) with X X^T / m = G (symmetric square root, so singular G works)."""
    w, V = np.linalg.eigh(G)
    return np.sqrt(G.shape[0]) * (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def draw_parameters(rng, n, n0, depth, C_b, C_W):
    """Weights [W^(1) (n, n0), W^(2..L) (n, n)] and biases [b^(1..L) (n,)] of one network."""
    Ws = [rng.standard_normal((n, n0)) * np.sqrt(C_W / n0)]
    Ws += [rng.standard_normal((n, n)) * np.sqrt(C_W / n) for _ in range(depth - 1)]
    bs = [rng.standard_normal(n) * np.sqrt(C_b) for _ in range(depth)]
    return Ws, bs


def _layernorm(Y):
    """Rows of Y normalized over neurons: (S, 1/sd)."""
    Yc = Y - Y.mean(axis=1, keepdims=True)
    v = (Yc * Yc).mean(axis=1, keepdims=True)
    if not np.all(v > 0):
        raise NumericalError("LayerNorm: zero variance over neurons")
    inv = 1.0 / np.sqrt(v)
    return Yc * inv, inv[:, 0]


def _batchnorm(Y, eps):
    """Columns of Y (m, n) normalized over the batch: (Yhat, 1/sqrt(v + eps)); 0 where v + eps = 0."""
    Yc = Y - Y.mean(axis=0, keepdims=True)
    den = np.sqrt((Yc * Yc).mean(axis=0) + eps)
    inv = np.divide(1.0, den, out=np.zeros_like(den), where=den > 0)
    return Yc * inv, inv


def forward(Ws, bs, X, act, normalization, eps=0.0):
    """Forward pass of one network for the m inputs X (m, n0).

    Returns a dict: ``Z`` list of (m, n) preactivations z^(1..L) of the trunk
    (plain or LayerNorm), ``S`` list of the layer inputs s^(0) = X, s^(1..L-1),
    ``D`` list of sigma'(z^(l)), ``inv`` LayerNorm's 1/sd per layer, and for
    batchnorm ``Zbn`` (index l-1 for l >= 2: zbn^(l)), ``Yhat`` and ``bn_inv``.
    """
    L = len(Ws)
    Z, S, D, INV = [X @ Ws[0].T + bs[0]], [X], [], []
    out = {"Z": Z, "S": S, "D": D, "inv": INV}
    if normalization == "batchnorm":
        out.update(Zbn=[None] * L, Yhat=[None] * L, bn_inv=[None] * L)
    for l in range(L):
        d = act.derivatives(Z[l], 1)
        Y, Yp = d[0], d[1]
        D.append(Yp)
        if l + 1 == L:
            break
        if normalization == "layernorm":
            s, inv = _layernorm(Y)
        else:
            s, inv = Y, None
        INV.append(inv)
        S.append(s)
        Z.append(s @ Ws[l + 1].T + bs[l + 1])
        if normalization == "batchnorm":
            yh, binv = _batchnorm(Y, eps)
            out["Yhat"][l + 1], out["bn_inv"][l + 1] = yh, binv
            out["Zbn"][l + 1] = yh @ Ws[l + 1].T + bs[l + 1]
    return out


def _jac_T(delta, W, Yp, s, inv, layernorm):
    """delta (k, n) -> delta W J^(l'-1) with J the activation (and LayerNorm) Jacobian."""
    g = delta @ W
    if layernorm:
        n = g.shape[1]
        g = (g - g.sum(axis=1, keepdims=True) / n - (g @ s)[:, None] * s[None, :] / n) * inv
    return g * Yp[None, :]


def _weight_factor(S, lp, c, d, lam_b, lam_W):
    s = S[lp]
    return lam_b + lam_W * float(s[c] @ s[d]) / s.shape[1]


def network_stats(Ws, bs, X, act, normalization, lam_b, lam_W, eps=0.0, k=None):
    """Kernel (L, m, m) over all neurons and NTK (L, m, m) averaged over the first k neurons.

    For batchnorm, index l - 1 >= 1 holds the batch-normalized depth-l output
    and index 0 the (plain) first layer. Module docstring for the algorithm.
    """
    L, m, n = len(Ws), X.shape[0], Ws[0].shape[0]
    k = n if k is None else min(k, n)
    f = forward(Ws, bs, X, act, normalization, eps)
    Z, S, D, INV = f["Z"], f["S"], f["D"], f["inv"]
    ln = normalization == "layernorm"
    Kl = np.empty((L, m, m))
    Hl = np.empty((L, m, m))
    for l in range(L):
        top = Z[l] if (normalization != "batchnorm" or l == 0) else f["Zbn"][l]
        Kl[l] = top @ top.T / n
        # deltas[a][c]: (k, n) = d z^(top)_I(x_a) / d z^(l')(x_c), for the current l'
        H = np.zeros((m, m))
        if normalization == "batchnorm" and l > 0:
            yh, binv = f["Yhat"][l], f["bn_inv"][l]
            H += lam_b + lam_W * (yh @ yh.T) / n
            # BN Jacobian per neuron j: Jbn[a, c, j]
            Jbn = ((np.eye(m)[:, :, None] - 1.0 / m - yh[:, None, :] * yh[None, :, :] / m)
                   * (D[l - 1] * binv[None, :])[None, :, :])
            Wt = Ws[l][:k]
            deltas = [[Wt * Jbn[a, c][None, :] for c in range(m)] for a in range(m)]
            lp = l - 1
        else:
            deltas = [[np.eye(k, n) if c == a else None for c in range(m)] for a in range(m)]
            lp = l
        while lp >= 0:
            for a in range(m):
                for b in range(a, m):
                    tot = 0.0
                    for c in range(m):
                        if deltas[a][c] is None:
                            continue
                        for d in range(m):
                            if deltas[b][d] is None:
                                continue
                            g = float(np.einsum("ij,ij->", deltas[a][c], deltas[b][d])) / k
                            tot += g * _weight_factor(S, lp, c, d, lam_b, lam_W)
                    H[a, b] += tot
                    if b != a:
                        H[b, a] += tot
            if lp == 0:
                break
            for a in range(m):
                for c in range(m):
                    if deltas[a][c] is not None:
                        deltas[a][c] = _jac_T(deltas[a][c], Ws[lp], D[lp - 1][c], S[lp][c],
                                              INV[lp - 1][c] if ln else None, ln)
            lp -= 1
        Hl[l] = H
    return Kl, Hl


@dataclass(frozen=True)
class NormalizedSimulation:
    """Means and standard errors over ``networks`` independent networks.

    ``K``, ``Theta`` (L, m, m) are the means of the per-network kernel and NTK,
    ``K_se``, ``Theta_se`` their standard errors (std / sqrt(networks)).
    """

    activation: str
    normalization: str
    width: int
    networks: int
    seed: int
    C_b: float
    C_W: float
    lambda_b: float
    lambda_W: float
    bn_eps: float
    ntk_neurons: int
    gram: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    K_se: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)
    Theta_se: np.ndarray = field(repr=False)

    @property
    def normalized(self):
        d = np.sqrt(np.einsum("lii->li", self.Theta))
        return self.Theta / (d[:, :, None] * d[:, None, :])

    def to_dict(self):
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, np.ndarray)}
        for k in ("gram", "K", "K_se", "Theta", "Theta_se"):
            out[k] = getattr(self, k).tolist()
        out["normalized"] = self.normalized.tolist()
        return out


def simulate_normalized(activation: str | Activation, gram: ArrayLike, depth: int, width: int, networks: int,
                        seed: int, C_b: float = 0.0, C_W: float = 1.0, lambda_b: float = 0.0,
                        lambda_W: float = 1.0, normalization: Literal["none", "layernorm", "batchnorm"] = "none",
                        bn_eps: float = 1e-2, ntk_neurons: int = 32) -> NormalizedSimulation:
    """Sample ``networks`` networks (module docstring); return a :class:`NormalizedSimulation`."""
    act = get_activation(activation)
    if normalization not in _NORMS:
        raise ParameterError("normalization", f"must be one of {', '.join(_NORMS)}, got {normalization!r}")
    L = check_int("depth", depth, lower=1, upper=1000)
    n = check_int("width", width, lower=2, upper=1 << 14)
    N = check_int("networks", networks, lower=2)
    seed = check_int("seed", seed, lower=0, upper=None)
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    lam_b = check_real("lambda_b", lambda_b, lower=0.0)
    lam_W = check_real("lambda_W", lambda_W, lower=0.0)
    eps = check_real("bn_eps", bn_eps, lower=0.0)
    k = check_int("ntk_neurons", ntk_neurons, lower=1)
    G = np.asarray(gram, dtype=float)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or not 1 <= G.shape[0] <= 8 or not np.isfinite(G).all():
        raise ParameterError("gram", "must be a finite (m, m) matrix with 1 <= m <= 8")
    if np.max(np.abs(G - G.T)) > 1e-12 * max(np.max(np.abs(G)), 1e-300) or np.linalg.eigvalsh(G)[0] < -1e-12:
        raise ParameterError("gram", "must be symmetric positive semi-definite")
    m = G.shape[0]
    if normalization == "batchnorm" and m < 2:
        raise ParameterError("gram", "BatchNorm over the batch needs at least 2 inputs")
    X = _inputs(G)
    Ks = np.empty((N, L, m, m))
    Hs = np.empty((N, L, m, m))
    for t, child in enumerate(np.random.SeedSequence(seed).spawn(N)):
        rng = np.random.default_rng(child)
        Ws, bs = draw_parameters(rng, n, m, L, C_b, C_W)
        Ks[t], Hs[t] = network_stats(Ws, bs, X, act, normalization, lam_b, lam_W, eps, k)
    if not (np.isfinite(Ks).all() and np.isfinite(Hs).all()):
        raise NumericalError("non-finite kernel or NTK in a sampled network (overflow)")
    se = lambda a: a.std(axis=0, ddof=1) / np.sqrt(N)  # noqa: E731
    return NormalizedSimulation(act.name, normalization, n, N, seed, C_b, C_W, lam_b, lam_W, eps,
                                min(k, n), G, Ks.mean(axis=0), se(Ks), Hs.mean(axis=0), se(Hs))
