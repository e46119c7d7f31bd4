"""Monte Carlo of the NTK descendants: dNTK and ddNTK statistics P, Q, R, S, T, U.

Definitions (:mod:`fwtheory.quantities`; PDLT arXiv:2106.10165 Ch. 11 and
Ch. infinity). Single input x = sqrt(q0) (1, ..., 1) in R^{n0}, layer
l = 1..L, the parameters mu of layers 1..l with the NTK learning-rate tensor
lambda_mu = lambda_b per bias and lambda_W / n_{l'-1} per weight of layer l'.
Write

    g_c = (lambda_mu dz^(l)_c / dtheta_mu)_mu           (a parameter-space vector)
    h_{a,c} = Hess(z^(l)_a) g_c                         (= d/de grad z_a(theta + e g_c))

Then

    H_{ac}            = grad z_a . g_c                               (NTK)
    dH_{a c d}        = Hess(z_a)[g_c, g_d]                          (dNTK)
    ddI_{a c d e}     = D^3 z_a[g_c, g_d, g_e]                       (ddI NTK)
    ddII_{a1a2a3a4}   = sum_mu lambda_mu h_{a1,a3}(mu) h_{a2,a4}(mu)  (ddII NTK)

and, for i != k and n = n_{l-1},

    P = n E[dH_{ikk} z_i]      Q = n E[dH_{iik} z_k]      R = n E[ddI_{iikk}]
    S = n E[<h_{ik}, h_{ik}>]  T = n E[<h_{ii}, h_{kk}>]  U = n E[<h_{ik}, h_{ki}>]

with <u, v> = sum_mu lambda_mu u_mu v_mu. (These are exactly the index
pairings of ``quantities.py``: S = n E[ddII_{iikk}], T = n E[ddII_{ikik}],
U = n E[ddII_{ikki}].)

Method (exact derivatives of each sampled network, no finite differences)
--------------------------------------------------------------------------
Network z^(1) = b^(1) + W^(1) x, z^(l') = b^(l') + W^(l') s^(l'-1),
s^(l') = sigma(z^(l')), s^(0) = x. For a target layer l and a neuron a:

* **Backprop vectors** delta^(l')_a = dz^(l)_a / dz^(l'): delta^(l)_a = e_a,
  delta^(l'-1)_a = sigma'(z^(l'-1)) o t^(l')_a with t^(l')_a = W^(l')T delta^(l')_a.
  dz_a/dW^(l') = delta^(l')_a (x) s^(l'-1) and dz_a/db^(l') = delta^(l')_a, so
  g_c is rank one per layer: dW^(l') = kappa_l' delta^(l')_c (x) s^(l'-1),
  db^(l') = lambda_b delta^(l')_c, with kappa_l' = lambda_W / n_{l'-1}.

* **dNTK and ddI NTK: Taylor mode.** z(theta + a g_i + b g_k) as a truncated
  bivariate series on the monomials {1, a, b, ab, b^2, ab^2} (closed under
  division, so products truncate consistently). With e the non-constant part
  of the series of z^(l'-1) and sigma^(k) taken at the base point,

      s_a   = sigma' e_a                 s_b  = sigma' e_b
      s_ab  = sigma' e_ab + sigma'' e_a e_b
      s_bb  = sigma' e_bb + sigma''/2 e_b^2
      s_abb = sigma' e_abb + sigma'' (e_a e_bb + e_b e_ab) + sigma'''/2 e_a e_b^2

  and, writing <u> := s^(l'-1) . u (base activation dotted into a coefficient)
  and delta = delta^(l'),

      z_a   = W s_a + (lambda_b + kappa <s>) delta_i
      z_b   = W s_b + (lambda_b + kappa <s>) delta_k
      z_ab  = W s_ab  + kappa (<s_b> delta_i + <s_a> delta_k)
      z_bb  = W s_bb  + kappa <s_b> delta_k
      z_abb = W s_abb + kappa (<s_bb> delta_i + <s_ab> delta_k)

  (layer 1: s^(0) = x is fixed, so z_a = (lambda_b + lambda_W q0) delta_i,
  z_b likewise, higher coefficients 0). As the perturbation is linear in theta,
  [a^p b^q] z = D^{p+q} z[g_i^p, g_k^q] / (p! q!), hence at the target layer

      H_{m i} = [a] z_m,  dH_{m k k} = 2 [b^2] z_m,  dH_{m i k} = [ab] z_m,
      ddI_{i i k k} = 2 [a b^2] z_i.

* **ddII NTK: forward over reverse.** The tangent of the gradient of z_a along
  g_c is, per layer, h_{a,c}|_{W^(l')} = dd_a (x) s + delta_a (x) ds_c and
  h_{a,c}|_{b^(l')} = dd_a, with dd_a := d delta^(l')_a along g_c and
  ds_c = d s^(l'-1) along g_c (= s_a or s_b above). The weight metric kappa is
  a multiple of the Frobenius product, and <u (x) v, u' (x) v'>_F = (u.u')(v.v'), so

      <h_{a,c}, h_{b,d}> = sum_l' lambda_b dd_a.dd_b + kappa_l' [ (dd_a.dd_b)(s.s)
                           + (dd_a.delta_b)(s.ds_d) + (delta_a.dd_b)(ds_c.s)
                           + (delta_a.delta_b)(ds_c.ds_d) ]

  in O(n) per layer. The tangents of the backprop vectors follow from
  differentiating the backward recursion (dW^T delta_a = kappa (delta_c.delta_a) s):

      dd^(l)_a = 0,
      dd^(l'-1)_a = sigma''(z^(l'-1)) o dz^(l'-1)_c o t^(l')_a
                    + sigma'(z^(l'-1)) o [kappa_l' (delta^(l')_c . delta^(l')_a) s^(l'-1)
                                         + W^(l')T dd^(l')_a]

  where dz^(l'-1)_c is the forward tangent z_a (c = i) or z_b (c = k).

Residual networks (``Network(residual=gamma)``, PDLT appendix B):
z^(l') = z^(l'-1) + gamma (b^(l') + W^(l') s^(l'-1)) for l' >= 2. The gradient of
z_a with respect to the parameters of layer l' >= 2 is gamma times the plain one,
so g_c and the tangents of layer l' carry a factor gamma, and the skip connection
adds the identity to every Jacobian. With e the series of z^(l'-1) (as above):

    delta^(l'-1)_a = delta^(l')_a + gamma sigma'(z^(l'-1)) o t^(l')_a
    z_x = e_x + gamma W s_x + gamma^2 (the plain-MLP parameter terms above),
          x in {a, b, ab, b^2, ab^2}
    <h_{a,c}, h_{b,d}>: the layer-l' terms times gamma^2 (layer 1 unchanged)
    dd^(l'-1)_a = dd^(l')_a + gamma [sigma'' o dz_c o t_a
                  + sigma' o (gamma kappa_l' (delta_c . delta_a) s + W^T dd_a)]

(numpy reference :func:`network_stats_numpy` with ``gamma``, checked against
the brute-force derivatives of tiny residual networks in the tests).

Cost per network, target layer l and pair (i, k): 11 matrix-vector products
per layer below l (2 backprop, 5 Taylor, 4 tangent backprop), i.e.
22 pairs n^2 L(L-1)/2 flops per network in all, against the O(L n^3) of the
full-NTK sampler :func:`fwtheory.mc.simulate` (``benchmarks/bench_descendants.py``).

Estimators. Per network and layer, ``pairs`` ordered pairs (i, k), i != k,
are drawn uniformly (outside the kernels, from the chunk's seed). Per pair:
Q-sample (dH_{iik} z_k + dH_{kki} z_i)/2 (both are free), R-sample
ddI_{iikk}, P-sample mean_{m != k} dH_{mkk} z_m (all m at once), S-sample
(<h_ik, h_ik> + <h_ki, h_ki>)/2, T-sample <h_ii, h_kk>, U-sample <h_ik, h_ki>,
and Theta-sample (H_ii + H_kk)/2; K-sample is mean_m z_m^2 over all neurons.
These per-network means are unbiased for the expectations above (neurons are
exchangeable and the pairs are drawn independently of the network); the
standard errors come from the independent networks (delete-one-block
jackknife, :func:`fwtheory.mc.estimators.jackknife`), which accounts for
all correlations within a network.

ReLU and other kinked activations use the a.e. derivatives
(sigma'' = sigma''' = 0 for ReLU): with probability one no preactivation sits
on a kink, so these are the exact derivatives of the sampled network.

References
----------
D. A. Roberts, S. Yaida, B. Hanin, *The Principles of Deep Learning Theory*,
arXiv:2106.10165: Ch. 11 (the dNTK) and Ch. infinity (the ddNTKs); the index
pairings and the 1/n normalizations used here are those written in
:mod:`fwtheory.quantities`. A. Griewank, A. Walther, *Evaluating Derivatives*,
2nd ed. (SIAM 2008): propagation of univariate/bivariate Taylor coefficients
and second-order adjoints (forward over reverse).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["simulate_descendants", "DescendantSimulation", "forward_base", "network_stats_numpy",
           "estimate_memory", "STAT_NAMES"]

import math
from dataclasses import dataclass

import numpy as np

from .. import quantities
from ..errors import ParameterError, check_int, check_real
from ..network import Network, check_input_norm
from ._descendant_kernels import STAT_NAMES, descendant_stats
from .ensembles import chunk_generator, draw_biases, draw_weight_normals, first_layer_preactivations
from ._runner import (SamplerResult, combine_widths, refuse_if_too_big, result_dict, run_chunks, run_widths,
                      summarize_sums, worker_count)
from .estimators import BlockSums

NSTAT = len(STAT_NAMES)
_IDX = {name: j for j, name in enumerate(STAT_NAMES)}
TARGET_BLOCKS = 200          # jackknife blocks (fewer when there are fewer networks)
KEYS = ("K", "Theta") + quantities.DESCENDANTS


# ------------------------------------------------------------ base forward pass
def forward_base(z1, weights, biases, activation, gamma=None):
    """Preactivations and activation derivatives of every layer.

    Parameters
    ----------
    z1 : (C, n) first-layer preactivations z^(1) = b^(1) + W^(1) x.
    weights : (C, L-1, n, n) W^(2..L) (already scaled).
    biases : (C, L-1, n) b^(2..L).
    activation : Activation
    gamma : float or None
        Residual strength (z^(l+1) = z^(l) + gamma (b + W sigma(z^(l)))); None: plain MLP.

    Returns
    -------
    z : (C, L, n) z^(1..L)
    D : (C, L, 4, n) sigma^(k)(z^(l)), k = 0..3 (``Activation.derivatives``:
        the same closed forms as the theory side; a.e. derivatives for kinks).
    """
    C, n = z1.shape
    L = weights.shape[1] + 1
    z = np.empty((C, L, n))
    D = np.empty((C, L, 4, n))
    z[:, 0] = z1
    for l in range(L):
        D[:, l] = np.moveaxis(activation.derivatives(z[:, l], 3), 0, 1)
        if l + 1 < L:
            block = biases[:, l] + np.matmul(weights[:, l], D[:, l, 0, :, None])[..., 0]
            z[:, l + 1] = block if gamma is None else z[:, l] + gamma * block
    return z, D


# ------------------------------------------------------------ numpy reference
def network_stats_numpy(W, z, D, pairs, lambda_b, lambda_W, input_dim, q0, gamma=None):
    """Per-layer descendant statistics of one network (clear numpy reference).

    The numba kernel :func:`fwtheory.mc._descendant_kernels.descendant_stats`
    implements the same algorithm and is tested against this function.

    Parameters
    ----------
    W : (L-1, n, n) weights of layers 2..L.
    z : (L, n) preactivations; D : (L, 4, n) sigma^(k)(z^(l)), k = 0..3.
    pairs : (L, P, 2) int, ordered neuron pairs (i, k), i != k, per target layer.
    lambda_b, lambda_W : learning rates; input_dim : n0; q0 : |x|^2 / n0.
    gamma : residual strength or None (plain MLP); see the module docstring.

    Returns
    -------
    (L, NSTAT) array, columns :data:`STAT_NAMES`: mean_m z_m^2, and the pair means
    of (H_ii + H_kk)/2 and of the P..U samples *without* the factor n
    (see the module docstring).
    """
    L, n = z.shape
    P = pairs.shape[1]
    out = np.empty((L, NSTAT))
    rows = np.arange(P)
    xx = input_dim * q0                                   # x . x
    kappa = np.array([lambda_W / input_dim] + [lambda_W / n] * (L - 1))
    res = gamma                                           # None: plain MLP
    r = 1.0 if gamma is None else gamma                   # factor of the block of layers >= 2
    for t in range(L):                                    # target layer l = t + 1
        i, k = pairs[t, :, 0], pairs[t, :, 1]
        # -- backprop vectors delta^(l')_{i,k} (index l'-1) and t^(l') = W^T delta^(l')
        delta = np.zeros((t + 1, 2, P, n))
        tvec = np.zeros((t + 1, 2, P, n))
        delta[t, 0, rows, i] = 1.0
        delta[t, 1, rows, k] = 1.0
        for lp in range(t, 0, -1):                        # layer lp+1 -> lp (0-based)
            tvec[lp] = delta[lp] @ W[lp - 1]
            step = D[lp - 1, 1] * tvec[lp]
            delta[lp - 1] = step if res is None else delta[lp] + res * step
        # -- Taylor mode: coefficients [a, b, ab, bb, abb] of z^(l') and the s-tangents
        Z = np.zeros((t + 1, 5, P, n))
        ds = np.zeros((t + 1, 2, P, n))                   # d s^(l'-1) along g_i, g_k
        c1 = lambda_b + lambda_W * q0
        Z[0, 0] = c1 * delta[0, 0]
        Z[0, 1] = c1 * delta[0, 1]
        for lp in range(1, t + 1):
            s0, d1, d2, d3 = D[lp - 1]
            ea, eb, eab, ebb, eabb = Z[lp - 1]
            sa = d1 * ea
            sb = d1 * eb
            sab = d1 * eab + d2 * ea * eb
            sbb = d1 * ebb + 0.5 * d2 * eb * eb
            sabb = d1 * eabb + d2 * (ea * ebb + eb * eab) + 0.5 * d3 * ea * eb * eb
            ds[lp, 0], ds[lp, 1] = sa, sb
            kap = kappa[lp]
            ss = s0 @ s0
            WS = np.stack([sa, sb, sab, sbb, sabb]) @ W[lp - 1].T
            di, dk = delta[lp, 0], delta[lp, 1]
            if res is None:
                Z[lp, 0] = WS[0] + (lambda_b + kap * ss) * di
                Z[lp, 1] = WS[1] + (lambda_b + kap * ss) * dk
                Z[lp, 2] = WS[2] + kap * ((sb @ s0)[:, None] * di + (sa @ s0)[:, None] * dk)
                Z[lp, 3] = WS[3] + kap * (sb @ s0)[:, None] * dk
                Z[lp, 4] = WS[4] + kap * ((sbb @ s0)[:, None] * di + (sab @ s0)[:, None] * dk)
            else:   # z = z_prev + r (b + W s), the layer's parameter directions scaled by r
                r2k = r * r * kap
                Z[lp, 0] = ea + r * WS[0] + r * r * (lambda_b + kap * ss) * di
                Z[lp, 1] = eb + r * WS[1] + r * r * (lambda_b + kap * ss) * dk
                Z[lp, 2] = eab + r * WS[2] + r2k * ((sb @ s0)[:, None] * di + (sa @ s0)[:, None] * dk)
                Z[lp, 3] = ebb + r * WS[3] + r2k * (sb @ s0)[:, None] * dk
                Z[lp, 4] = eabb + r * WS[4] + r2k * ((sbb @ s0)[:, None] * di + (sab @ s0)[:, None] * dk)
        zt = z[t]
        za, zb, zab, zbb, zabb = Z[t]
        H_ii, H_kk = za[rows, i], zb[rows, k]
        P_s = 2.0 * (zbb @ zt - zbb[rows, k] * zt[k]) / (n - 1)
        Q_s = 0.5 * (zab[rows, i] * zt[k] + zab[rows, k] * zt[i])
        R_s = 2.0 * zabb[rows, i]
        # -- forward over reverse. Neurons: 0 = i, 1 = k (of each pair); dd[(a, c)] is
        # the tangent of delta_a along g_c, ds[lp, c] the tangent of s^(l'-1) along g_c.
        dd = {(a, c): np.zeros((P, n)) for a in (0, 1) for c in (0, 1)}
        products = {"S_ik": ((0, 1), (0, 1)), "S_ki": ((1, 0), (1, 0)),   # <h_ik,h_ik>, <h_ki,h_ki>
                    "T": ((0, 0), (1, 1)), "U": ((0, 1), (1, 0))}        # <h_ii,h_kk>, <h_ik,h_ki>
        acc = {key: np.zeros(P) for key in products}
        rowdot = lambda u, v: np.sum(u * v, axis=-1)  # noqa: E731
        for lp in range(t, -1, -1):                       # weights and biases of layer l' = lp + 1
            kap = kappa[lp]
            if lp == 0:                                   # s^(0) = x: fixed, x.x = n0 q0
                ss, s_ds, dsv = xx, np.zeros((2, P)), np.zeros((2, P, n))
            else:
                s0 = D[lp - 1, 0]
                ss, dsv = s0 @ s0, ds[lp]
                s_ds = dsv @ s0                           # s . ds_c, (2, P)
            for key, ((a, c), (b, d)) in products.items():
                u, v = dd[(a, c)], dd[(b, d)]
                da, db = delta[lp, a], delta[lp, b]
                uv = rowdot(u, v)
                term = lambda_b * uv + kap * (uv * ss + rowdot(u, db) * s_ds[d]
                                              + rowdot(da, v) * s_ds[c]
                                              + rowdot(da, db) * rowdot(dsv[c], dsv[d]))
                acc[key] += term if (res is None or lp == 0) else r * r * term
            if lp == 0:
                break
            # dd^(l'-1)_a = sigma'' o dz_c o t_a + sigma' o (kap (delta_c . delta_a) s + W^T dd^(l')_a)
            d1, d2 = D[lp - 1, 1], D[lp - 1, 2]
            if res is None:
                dd = {(a, c): d2 * Z[lp - 1, c] * tvec[lp, a]
                      + d1 * (kap * rowdot(delta[lp, c], delta[lp, a])[:, None] * s0 + u @ W[lp - 1])
                      for (a, c), u in dd.items()}
            else:   # delta_prev = delta + r sigma' o W^T delta; dW along g_c = kap r delta_c (x) s
                dd = {(a, c): u + r * (d2 * Z[lp - 1, c] * tvec[lp, a]
                                       + d1 * (kap * r * rowdot(delta[lp, c], delta[lp, a])[:, None] * s0
                                               + u @ W[lp - 1]))
                      for (a, c), u in dd.items()}
        S_s = 0.5 * (acc["S_ik"] + acc["S_ki"])
        T_s, U_s = acc["T"], acc["U"]
        out[t, _IDX["z2"]] = np.mean(zt * zt)
        out[t, _IDX["h"]] = np.mean(0.5 * (H_ii + H_kk))
        for key, val in (("P", P_s), ("Q", Q_s), ("R", R_s), ("S", S_s), ("T", T_s), ("U", U_s)):
            out[t, _IDX[key]] = np.mean(val)
    return out


# ----------------------------------------------------------------- results
@dataclass
class DescendantSimulation(SamplerResult):
    """Result of :func:`simulate_descendants` (fields: :class:`._runner.SamplerResult`).

    ``values``/``errors`` hold "K", "Theta" (measured E[z_i^2] and E[H_ii] at this
    width) and P, Q, R, S, T, U (``quantities.DESCENDANTS``, n E[...] with
    n = n_{l-1}); ``ratios``/``ratio_errors`` the ``quantities.DESCENDANT_RATIOS``;
    ``pairs`` the neuron pairs (i, k) sampled per network and layer.
    """

    pairs: int = None

    def to_dict(self):
        """Plain-JSON dictionary (keys: network, layers, K, Theta, P..U and
        "<key>_se", ratios, ratios_se, samples, seed, pairs, overflow, ...)."""
        return result_dict(self, KEYS, pairs=self.pairs)


# --------------------------------------------------------------- estimators
def _estimator(n_prev):
    """(S, N) block sums -> {("c", key): values, ("r", ratio): ratios}; linear in the
    means except the ratios (whose jackknife removes the O(1/N) bias)."""
    def estimate(S, N):
        with np.errstate(all="ignore"):
            m = {name: S[..., j] / N for j, name in enumerate(STAT_NAMES)}
            vals = {"K": m["z2"], "Theta": m["h"]}
            for key in quantities.DESCENDANTS:
                vals[key] = n_prev * m[key]
        out = {("c", k): v for k, v in vals.items()}
        ratios = quantities.ratio_values(vals)
        out.update({("r", k): ratios[k] for k in quantities.DESCENDANT_RATIOS})
        return out
    return estimate


# --------------------------------------------------------------- sampling
_STREAM = 0x644E544B          # spawn-key prefix: streams independent of simulate()'s


def _chunk_size(n):
    """Networks per chunk, a function of the width only (so that a depth-L run
    is the first L layers of any deeper run with the same seed)."""
    return int(min(64, max(1, (1 << 16) // (n * n))))




@dataclass(frozen=True)
class _Plan:
    network: Network
    input_norm: float
    pairs: int
    chunk: int
    samples: int
    seeds: tuple


def _draw_pairs(rng, C, n, P):
    """(C, P, 2) ordered pairs (i, k), i != k, uniform."""
    i = rng.integers(0, n, size=(C, P))
    k = (i + 1 + rng.integers(0, n - 1, size=(C, P))) % n
    return np.stack([i, k], axis=-1)


def _draw_chunk(plan, c):
    """The networks of chunk ``c``: z^(1) (C, n), weights (C, L-1, n, n), biases
    (C, L-1, n), pairs (C, L, P, 2). Draw order: z^(1), pairs of layer 1, then
    per layer l = 2..L its biases, weight normals and pairs."""
    from ._kernels import haar_batch

    net = plan.network
    n, L, P = net.width, net.depth, plan.pairs
    C = min(plan.chunk, plan.samples - c * plan.chunk)
    rng = chunk_generator(plan.seeds[c])
    z1 = first_layer_preactivations(rng, net, C, plan.input_norm)
    W = np.empty((C, L - 1, n, n))
    B = np.empty((C, L - 1, n))
    pairs = np.empty((C, L, P, 2), dtype=np.int64)
    pairs[:, 0] = _draw_pairs(rng, C, n, P)
    for l in range(1, L):
        B[:, l - 1] = draw_biases(rng, net.C_b, (C, n))
        R = draw_weight_normals(rng, net.ensemble, C, n)
        if net.ensemble != "orthogonal":     # i.i.d. ensembles: standardized entries
            np.multiply(R, math.sqrt(net.C_W / n), out=W[:, l - 1])
        else:
            O = np.empty((C, n, n))
            haar_batch(R, O)
            np.multiply(O, math.sqrt(net.C_W), out=W[:, l - 1])
        pairs[:, l] = _draw_pairs(rng, C, n, P)
    return z1, W, B, pairs


def _simulate_chunk(plan, c):
    """Per-network statistics (C, L, NSTAT) of chunk ``c``."""
    net = plan.network
    z1, W, B, pairs = _draw_chunk(plan, c)
    with np.errstate(all="ignore"):      # overflowed networks are excluded afterwards
        z, D = forward_base(z1, W, B, net.activation, net.residual)
        out = np.empty((z.shape[0], net.depth, NSTAT))
        if net.residual is None:
            descendant_stats(W, z, D, pairs, net.lambda_b, net.lambda_W, float(net.input_dim),
                             plan.input_norm, out)
        else:
            descendant_stats(W, z, D, pairs, net.lambda_b, net.lambda_W, float(net.input_dim),
                             plan.input_norm, out, net.residual)
    return out


def _run(network, samples, seed, input_norm, pairs, progress):
    n = network.width
    chunk = _chunk_size(n)
    n_chunks = -(-samples // chunk)
    root = np.random.SeedSequence(seed, spawn_key=(_STREAM, n))
    plan = _Plan(network, input_norm, pairs, chunk, samples, tuple(root.spawn(n_chunks)))
    block = max(1, -(-samples // TARGET_BLOCKS))
    sums = BlockSums(network.depth, block, -(-samples // block), n_sums=NSTAT, extend=None)
    network.activation.derivatives(np.zeros(1), 3)     # build lambdified derivatives up front
    interrupted = run_chunks(_simulate_chunk, plan, n_chunks, sums, progress, "fwtheory-mc-desc")
    return sums, interrupted


def _summarize(network, seed, input_norm, pairs, sums, requested, interrupted):
    L = network.depth
    notes = []
    n_prev = np.full(L, float(network.width))
    n_prev[0] = network.input_dim
    fields = summarize_sums(sums, _estimator(n_prev), KEYS, quantities.DESCENDANT_RATIOS, requested,
                            interrupted, notes)
    return DescendantSimulation(network=network, seed=seed, pairs=pairs, input_norm=input_norm, **fields)






def estimate_memory(network, workers=None):
    """Peak bytes: chunks in flight (2 per worker) holding the weights, z, the
    derivative tables and the kernel's scratch, plus the block sums."""
    n, L = network.width, network.depth
    workers = workers or worker_count()
    C = _chunk_size(n)
    per_chunk = 8 * (C * L * (n * n + 7 * n + NSTAT) + 2 * n * n)
    return 2 * workers * per_chunk + 8 * TARGET_BLOCKS * L * NSTAT


def _check_memory(network):
    refuse_if_too_big(network, estimate_memory(network), "depth")


def simulate_descendants(network: Network, samples: int, seed: int, pairs: int = 8, input_norm: float = 1.0,
                         widths: Sequence[int] | None = None, progress: Any = None) -> DescendantSimulation:
    """Monte Carlo estimates of the NTK-descendant statistics P, Q, R, S, T, U.

    Exact derivatives of every sampled network (Taylor mode for the dNTK and the
    ddI NTK, forward over reverse for the ddII NTK; see the module docstring),
    at every layer, with jackknife errors over independent networks.

    Parameters
    ----------
    network : Network
        Architecture, initialization and ensemble (gaussian, orthogonal,
        uniform or rademacher; hidden layers square; an orthogonal first layer
        needs ``input_dim == width``), optionally residual (``residual=gamma``).
    samples : int >= 2
        Independent networks (per width).
    seed : int >= 0
        Seed; width ``n``, chunk ``c`` draw from
        ``SeedSequence(seed, spawn_key=(0x644E544B, n, c))`` (streams independent
        of :func:`fwtheory.mc.simulate`'s), so results are bit-identical for any
        thread count, and the layers 1..L of a run are those of any deeper run.
    pairs : int >= 1
        Ordered neuron pairs (i, k), i != k, per network and layer, drawn
        uniformly (P uses all neurons m != k of each pair).
    input_norm : float >= 0
        q0 = |x|^2 / n0 of the input x = sqrt(q0) (1, ..., 1).
    widths : list of int >= 2, optional
        Run every width (``input_dim`` follows the width when it equals it in
        ``network``) and fit X(n) = c0 + c1/n per layer (n = n_{l-1}); values are
        then the intercepts c0 (see :class:`fwtheory.mc.Extrapolation`).
    progress : None, True, callable(k) or object with ``update(k)``
        Progress reporting (number of networks just finished).

    Returns
    -------
    DescendantSimulation

    Notes
    -----
    The values are n E[...] at the simulated width, i.e. the leading-order
    coefficients of ``predict`` plus finite-width corrections, and for the
    descendants these are large: at n = 64 and l = 6 (tanh, Gaussian, critical)
    T is 4.5x its leading value, U 1.45x, Q 1.4x; for ReLU (C_W = 2) P, R, U
    vanish at leading order but are O(l^k / n) here. At l >= 4 and n <= 64 a
    1/n^2 term is visible, so the c0 + c1/n extrapolation is biased by about
    c2 / (n_1 n_2) unless wider networks are included (see
    tests/test_mc_descendants.py).
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    samples = check_int("samples", samples, lower=2)
    seed = check_int("seed", seed, lower=0)
    pairs = check_int("pairs", pairs, lower=1)
    input_norm = check_input_norm(network, input_norm)   # > 0 when C_b = 0, as in kernel/predict

    def run_one(net, step):
        sums, interrupted = _run(net, samples, seed, input_norm, pairs, step)
        return _summarize(net, seed, input_norm, pairs, sums, samples, interrupted)

    results, planned = run_widths(network, widths, samples, progress, "descendants", _check_memory,
                                  run_one)
    if widths is None:
        return results[0]
    return _combine(network, seed, input_norm, pairs, samples, results, planned)


def _combine(network, seed, input_norm, pairs, samples, results, planned):
    """Width scan: weighted fits X(n) = c0 + c1/n per layer (estimators.fit_inverse_width)."""
    fields = combine_widths(results, planned, samples, KEYS, quantities.DESCENDANT_RATIOS)
    return DescendantSimulation(network=network, seed=seed, pairs=pairs, input_norm=input_norm, **fields)
