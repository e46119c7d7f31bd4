"""Numba kernels of the several-input Monte Carlo: pure array functions.

Every network propagates m inputs (rows a = 0..m-1 of ``z``) and the NTK over
(neuron, input) pairs, stored as blocks ``H[a, b]`` (n x n) with
H[a, b][i, k] = Hhat_{(i, a), (k, b)} and H[b, a] = H[a, b]^T
(PDLT arXiv:2106.10165 Ch. 8, with sample indices):

    z^(l+1)_{i;a} = b_i + sum_j W_ij sigma(z^(l)_{j;a})
    H^(l+1)[a, b] = delta [lambda_b + lambda_W (1/n_l) sum_j sigma_{j;a} sigma_{j;b}]
                    + W (sigma'_a sigma'_b^T o H^(l)[a, b]) W^T

and, residual (``gamma >= 0``; PDLT appendix B),

    z^(l+1)_a = z^(l)_a + gamma (b + W sigma(z^(l)_a)),
    H^(l+1)[a, b] = A_a H^(l)[a, b] A_b^T + gamma^2 delta [lambda_b + lambda_W (1/n_l) sigma_a . sigma_b],
    A_a = I + gamma W diag(sigma'(z^(l)_a)).

The diagonal blocks H[a, a] and the rows z_a are computed by exactly the
arithmetic of the single-input kernels (:mod:`._kernels`), so an input that
equals the single input gives bit-identical values. Only the blocks a <= b
are multiplied out (m(m+1)/2 of them); H[b, a] is the transpose.

Statistics per network and layer (:func:`stat_layout`), pairs P = (a <= b),
ordered pairs (c, d), U-statistics over neurons i != k:

    z2[P]      (1/n) sum_i z_{i;a} z_{i;b}
    h[P]       (1/n) sum_i H[a,b]_ii
    zz[P<=Q]   mean_{i != k} z_{i;a} z_{i;b} z_{k;c} z_{k;d}
    hz[P, Q]   mean_{i != k} H[a,b]_ii z_{k;c} z_{k;d}
    hh[P<=Q]   mean_{i != k} H[a,b]_ii H[c,d]_kk
    f[P, c, d] mean_{i != k} H[a,b]_ik z_{i;c} z_{k;d}
    b[P, c, d] mean_{i != k} H[a,b]_ik H[c,d]_ik
"""

import numpy as np
from numba import njit

from ._kernels import _dot, haar_from_normals, layer_activations

__all__ = ["stat_layout", "propagate_multi", "stats_multi"]

_JIT = dict(cache=True, nogil=True, error_model="numpy")


def stat_layout(m):
    """Offsets of the statistics blocks for m inputs: dict name -> (start, size), and the total."""
    p = m * (m + 1) // 2
    sizes = (("z2", p), ("h", p), ("zz", p * (p + 1) // 2), ("hz", p * p), ("hh", p * (p + 1) // 2),
             ("f", p * m * m), ("b", p * m * m))
    out, start = {}, 0
    for name, size in sizes:
        out[name] = (start, size)
        start += size
    return out, start


@njit(**_JIT)
def _stats_multi(z, H, pa, pb, out):
    m, n = z.shape
    p = pa.shape[0]
    pairs = n * (n - 1.0)
    Sz = np.empty(p)
    Th = np.empty(p)
    zp = np.empty((p, n))      # z_{i;a} z_{i;b}
    hd = np.empty((p, n))      # H[a,b]_ii
    for P in range(p):
        a, b = pa[P], pb[P]
        s = 0.0
        t = 0.0
        for i in range(n):
            v = z[a, i] * z[b, i]
            zp[P, i] = v
            s += v
            h = H[a, b, i, i]
            hd[P, i] = h
            t += h
        Sz[P] = s
        Th[P] = t
        out[P] = s / n
        out[p + P] = t / n
    o = 2 * p
    # zz, hh (P <= Q), hz (all P, Q)
    ozz = o
    ohz = ozz + p * (p + 1) // 2
    ohh = ohz + p * p
    of = ohh + p * (p + 1) // 2
    ob = of + p * m * m
    q = 0
    for P in range(p):
        for Q in range(P, p):
            c1 = _dot(zp[P], zp[Q])
            c2 = _dot(hd[P], hd[Q])
            out[ozz + q] = (Sz[P] * Sz[Q] - c1) / pairs
            out[ohh + q] = (Th[P] * Th[Q] - c2) / pairs
            q += 1
        for Q in range(p):
            out[ohz + P * p + Q] = (Th[P] * Sz[Q] - _dot(hd[P], zp[Q])) / pairs
    # f[P, c, d] = (z_c^T H[a,b] z_d - sum_i H[a,b]_ii z_ic z_id) / pairs, with
    # Y[i, d] = (H[a,b] z_d)_i, one product per block
    zt = np.empty((n, m))
    for d in range(m):
        for i in range(n):
            zt[i, d] = z[d, i]
    Y = np.empty((n, m))
    for P in range(p):
        a, b = pa[P], pb[P]
        np.dot(H[a, b], zt, Y)
        for c in range(m):
            for d in range(m):
                s = 0.0
                dg = 0.0
                for i in range(n):
                    zc = z[c, i]
                    s += zc * Y[i, d]
                    dg += hd[P, i] * zc * z[d, i]
                out[of + (P * m + c) * m + d] = (s - dg) / pairs
    # b[P, c, d] = (<H[a,b], H[c,d]>_F - sum_i H[a,b]_ii H[c,d]_ii) / pairs: Gram matrix
    # of the flattened blocks (one product)
    X = H.reshape(m * m, n * n)
    Xp = np.empty((p, n * n))
    for P in range(p):
        Xp[P] = X[pa[P] * m + pb[P]]
    Gm = np.dot(Xp, X.T)           # rows P = (a <= b) only
    for P in range(p):
        for c in range(m):
            for d in range(m):
                Q = c * m + d
                dg = 0.0
                for i in range(n):
                    dg += hd[P, i] * H[c, d, i, i]
                out[ob + (P * m + c) * m + d] = (Gm[P, Q] - dg) / pairs


@njit(**_JIT)
def stats_multi(z, H, pa, pb, out):
    """Statistics (module docstring) of each network of a chunk: z (C, m, n),
    H (C, m, m, n, n) -> out (C, NS)."""
    for a in range(z.shape[0]):
        _stats_multi(z[a], H[a], pa, pb, out[a])


@njit(**_JIT)
def _block_plain(sc2, spa, spb, Hab, Wt, M, Y, out, symmetric, Wl, T):
    """out = W (spa spb^T o Hab) W^T with W = sc Wt^T (sc2 = sc^2). ``symmetric``
    (a diagonal block): the single-input kernel's arithmetic (lower rows by one
    product, the top-left block by another, the top-right mirrored)."""
    n = spa.shape[0]
    for i in range(n):
        f = sc2 * spa[i]
        Mi = M[i]
        Hi = Hab[i]
        for k in range(n):
            Mi[k] = f * spb[k] * Hi[k]
    np.dot(Wt.T, M, Y)
    h = n // 2
    if symmetric and h > 0:
        np.dot(Y[h:], Wt, out[h:])
        for i in range(n):
            for k in range(h):
                Wl[i, k] = Wt[i, k]
        np.dot(Y[:h], Wl, T)
        for i in range(h):
            Oi = out[i]
            Ti = T[i]
            for k in range(h):
                Oi[k] = Ti[k]
            for k in range(h, n):
                Oi[k] = out[k, i]
    else:
        np.dot(Y, Wt, out)


@njit(**_JIT)
def _step_multi(code, slope, sc, gamma, lam_b, lam_W, z, H, s_given, sp_given, Wt, bias, z_out, H_out,
                stats_out, pa, pb, s, sp, M, Y, Wl, T, At):
    """One network, one layer, all m inputs (module docstring); W = sc * Wt^T.
    ``gamma < 0``: plain layer; otherwise residual of strength gamma."""
    m, n = z.shape
    for a in range(m):
        layer_activations(code, slope, z[a], s_given[a], sp_given[a], s[a], sp[a])
    if gamma < 0.0:
        sc2 = sc * sc
        for a in range(m):   # diagonal blocks: the single-input arithmetic
            _block_plain(sc2, sp[a], sp[a], H[a, a], Wt, M, Y, H_out[a, a], True, Wl, T)
        for a in range(m):   # off-diagonal blocks a < b: Wt^T M Wt into H[a, b] (H[b, a] below)
            for b in range(a + 1, m):
                _block_plain(sc2, sp[a], sp[b], H[a, b], Wt, M, Y, H_out[a, b], False, Wl, T)
    else:
        g = gamma * sc
        for a in range(m):
            Aa = At[a]
            for k in range(n):
                f = g * sp[a, k]
                Ak = Aa[k]
                Wk = Wt[k]
                for i in range(n):
                    Ak[i] = f * Wk[i]
                Ak[k] += 1.0
        for a in range(m):
            for b in range(a, m):
                np.dot(At[a].T, H[a, b], Y)
                np.dot(Y, At[b], H_out[a, b])
                if a == b:
                    Ho = H_out[a, a]
                    for i in range(n):
                        for k in range(i + 1, n):
                            Ho[i, k] = Ho[k, i]
    for a in range(m):
        for b in range(a, m):
            if gamma < 0.0:
                diag = lam_b + lam_W * _dot(s[a], s[b]) / n
            else:
                diag = gamma * gamma * (lam_b + lam_W * _dot(s[a], s[b]) / n)
            Ho = H_out[a, b]
            for i in range(n):
                Ho[i, i] += diag
            if b > a:                        # H[b, a] = H[a, b]^T, in 16 x 16 tiles
                Hba = H_out[b, a]
                for i0 in range(0, n, 16):
                    for k0 in range(0, n, 16):
                        for i in range(i0, min(i0 + 16, n)):
                            for k in range(k0, min(k0 + 16, n)):
                                Hba[k, i] = Ho[i, k]
        np.dot(Wt.T, s[a], z_out[a])
        zo = z_out[a]
        if gamma < 0.0:
            for i in range(n):
                zo[i] = bias[i] + sc * zo[i]
        else:
            za = z[a]
            for i in range(n):
                zo[i] = za[i] + gamma * (bias[i] + sc * zo[i])
    _stats_multi(z_out, H_out, pa, pb, stats_out)


@njit(**_JIT)
def propagate_multi(code, slope, scale, gamma, haar, lam_b, lam_W, z, H, s_given, sp_given, R, bias,
                    z_out, H_out, stats_out, pa, pb):
    """One layer l -> l+1 for a chunk of C networks with m inputs each.

    z (C, m, n), H (C, m, m, n, n); ``R``: the standardized weights as for
    :func:`._kernels.propagate_dense` (``haar`` False: (C, n n), rows of R[a]^T = W^T / scale)
    or :func:`._kernels.propagate_haar` (``haar`` True: (C, n(n+1)/2) normals,
    W = scale O^T); ``gamma < 0`` for a plain layer, else residual; ``s_given``,
    ``sp_given`` (C, m, n) for custom activations (code -1); outputs z_out, H_out,
    stats_out (C, NS) with pair index arrays ``pa``, ``pb`` (a <= b)."""
    C, m, n = z.shape
    h = n // 2
    s, sp = np.empty((m, n)), np.empty((m, n))
    M, Y = np.empty((n, n)), np.empty((n, n))
    Wl, T = np.empty((n, h)), np.empty((h, h))
    At = np.empty((m, n, n)) if gamma >= 0.0 else np.empty((0, n, n))
    O = np.empty((n, n))
    for a in range(C):
        if haar:
            haar_from_normals(R[a], O)
            Wt = O
        else:
            Wt = R[a].reshape(n, n)
        _step_multi(code, slope, scale, gamma, lam_b, lam_W, z[a], H[a], s_given[a], sp_given[a], Wt,
                    bias[a], z_out[a], H_out[a], stats_out[a], pa, pb, s, sp, M, Y, Wl, T, At)
