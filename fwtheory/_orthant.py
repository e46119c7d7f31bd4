r"""Exact Gaussian moments of piecewise-linear activations: truncated (orthant) moments.

For ReLU and leaky ReLU every factor sigma^(d)(z_a), d <= 1, and z_a is a
polynomial in z_a times a constant plus a step: sigma = z (alpha + (1 - alpha)
theta(z)), sigma' = alpha + (1 - alpha) theta(z), and theta^2 = theta. A monomial is
then a sum of terms

    J(e, T; K) = E[ prod_a z_a^{e_a} prod_{a in T} theta(z_a) ],   z ~ N(0, K),

computed exactly by Gaussian integration by parts (Stein's lemma,
E[z_b f(z)] = sum_c K_bc E[d_c f(z)]), where d_c theta(z_c) = delta(z_c) lowers
the dimension: E[g(z) delta(z_c)] = (2 pi K_cc)^(-1/2) E[g | z_c = 0], the
conditional law being centered Gaussian with covariance
K - K_{.c} K_{c.} / K_cc. The recursion ends in orthant probabilities
P(z_T > 0) of correlation matrices R (Sheppard; e.g. Steck, Ann. Math. Stat.
29 (1958) 780):

    |T| = 1: 1/2,   |T| = 2: 1/4 + asin(r12) / (2 pi),
    |T| = 3: 1/8 + (asin r12 + asin r13 + asin r23) / (4 pi),
    |T| = 4: Plackett's reduction (Biometrika 41 (1954) 351),
             dP/dr_ij = phi_2(0, 0; r_ij) P(z_k > 0, z_l > 0 | z_i = z_j = 0),
             integrated along R(t) = I + t (R - I) from P(I) = 1/16 with
             Gauss-Legendre nodes in s, t = 1 - (1 - s)^2 (removes the
             1/sqrt(1 - t^2 r^2) endpoint singularity when |r_ij| -> 1).

All operations are vectorized over a stack of L covariance matrices. The
covariance must be non-singular (callers fall back to quadrature otherwise).
"""

__all__ = ["orthant_probability", "truncated_moment"]

import math
from functools import lru_cache

import numpy as np

_TWO_PI = 2.0 * math.pi


def _corr(K):
    d = np.sqrt(np.einsum("...ii->...i", K))
    return K / (d[..., :, None] * d[..., None, :])


def _asin(x):
    return np.arcsin(np.clip(x, -1.0, 1.0))


@lru_cache(maxsize=None)
def _plackett_nodes(n=64):
    s, w = np.polynomial.legendre.leggauss(n)
    s = 0.5 * (s + 1.0)
    w = 0.5 * w
    t = 1.0 - (1.0 - s) ** 2
    return t, w * 2.0 * (1.0 - s)


def _p4(R):
    """P(z > 0) for 4 x 4 correlation matrices R (L, 4, 4) (module docstring)."""
    t, w = _plackett_nodes()
    L = R.shape[0]
    total = np.full(L, 1.0 / 16.0)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    for (i, j) in pairs:
        k, l = [x for x in range(4) if x not in (i, j)]
        r = R[:, i, j]
        acc = np.zeros(L)
        for tt, ww in zip(t, w):
            Rt = tt * R
            rij = Rt[:, i, j]
            # partial correlation of (k, l) given (i, j) at R(t) (unit diagonal)
            det = 1.0 - rij * rij
            def cov(a, b):
                va = np.stack([Rt[:, a, i], Rt[:, a, j]], axis=1)
                vb = np.stack([Rt[:, b, i], Rt[:, b, j]], axis=1)
                base = 1.0 if a == b else Rt[:, a, b]
                # va M^-1 vb^T with M = [[1, rij], [rij, 1]]
                q = (va[:, 0] * vb[:, 0] + va[:, 1] * vb[:, 1] - rij * (va[:, 0] * vb[:, 1] + va[:, 1] * vb[:, 0])) / det
                return base - q
            ckk, cll, ckl = cov(k, k), cov(l, l), cov(k, l)
            pc = ckl / np.sqrt(ckk * cll)
            p2 = 0.25 + _asin(pc) / _TWO_PI
            acc += ww * r * p2 / (_TWO_PI * np.sqrt(det))
        total += acc
    return total


def orthant_probability(K):
    """P(z_a > 0 for all a) for z ~ N(0, K), K of shape (L, s, s), s <= 4 (non-singular)."""
    s = K.shape[-1]
    L = K.shape[0]
    if s == 0:
        return np.ones(L)
    if s == 1:
        return np.full(L, 0.5)
    R = _corr(K)
    if s == 2:
        return 0.25 + _asin(R[:, 0, 1]) / _TWO_PI
    if s == 3:
        return 0.125 + (_asin(R[:, 0, 1]) + _asin(R[:, 0, 2]) + _asin(R[:, 1, 2])) / (2.0 * _TWO_PI)
    if s == 4:
        return _p4(R)
    raise ValueError("at most 4 coordinates")


def truncated_moment(K, e, T):
    """J(e, T; K) = E[prod_a z_a^e_a prod_{a in T} theta(z_a)] for K (L, s, s)
    non-singular; e a tuple of s exponents, T a tuple of coordinates."""
    memo = {}

    def J(K, e, T, key):
        ck = (key, e, T)
        if ck in memo:
            return memo[ck]
        s = len(e)
        if not any(e):
            sub = list(T)
            val = orthant_probability(K[:, sub][:, :, sub]) if sub else np.ones(K.shape[0])
            memo[ck] = val
            return val
        b = max(range(s), key=lambda a: (e[a] > 0, a not in T, e[a]))
        eb = list(e)
        eb[b] -= 1
        total = np.zeros(K.shape[0])
        for c in range(s):
            Kbc = K[:, b, c]
            if not np.any(Kbc):
                continue
            if eb[c] > 0:
                ec = list(eb)
                ec[c] -= 1
                total = total + Kbc * eb[c] * J(K, tuple(ec), T, key)
            if c in T and eb[c] == 0:
                keep = [a for a in range(s) if a != c]
                Kc = K[:, keep][:, :, keep] - K[:, keep, c][:, :, None] * K[:, c, keep][:, None, :] / K[:, c, c][:, None, None]
                e2 = tuple(eb[a] for a in keep)
                T2 = tuple(keep.index(a) for a in T if a != c)
                dens = 1.0 / np.sqrt(_TWO_PI * K[:, c, c])
                total = total + Kbc * dens * J(Kc, e2, T2, key + (c,))
        memo[ck] = total
        return total

    return J(np.asarray(K, float), tuple(int(v) for v in e), tuple(sorted(T)), ())
