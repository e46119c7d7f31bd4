"""Numba kernels of the several-input Monte Carlo: pure array functions.

Every network propagates m inputs (rows a = 0..m-1 of ``z``) and the NTK over
(neuron, input) pairs. The NTK is stored as its p = m(m+1)/2 blocks a <= b,
``H[P]`` (n x n) for the pair P = (pa[P], pb[P]) in the order
(0,0), (0,1), ..., (0,m-1), (1,1), ..., with H[P][i, k] = Hhat_{(i, a), (k, b)};
the blocks b > a are the transposes and are never formed
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
equals the single input gives bit-identical values.

Statistics per network and layer (:func:`stat_layout`), pairs P = (a <= b),
ordered pairs (c, d), U-statistics over neurons i != k:

    z2[P]      (1/n) sum_i z_{i;a} z_{i;b}
    h[P]       (1/n) sum_i H[a,b]_ii
    zz[P<=Q]   mean_{i != k} z_{i;a} z_{i;b} z_{k;c} z_{k;d}
    hz[P, Q]   mean_{i != k} H[a,b]_ii z_{k;c} z_{k;d}
    hh[P<=Q]   mean_{i != k} H[a,b]_ii H[c,d]_kk
    f[P, c, d] mean_{i != k} H[a,b]_ik z_{i;c} z_{k;d}
    b[P, c, d] mean_{i != k} H[a,b]_ik H[c,d]_ik

b needs the Frobenius products <H[a,b], H[c,d]>: for c <= d those of the
stored blocks (the p x p Gram matrix of the flattened blocks, one product); for
c > d, H[c,d] = H[d,c]^T, and <X, Y^T> = <X, Y> - <A_X, A_Y>/2 with the
antisymmetric parts A = H - H^T (zero on the diagonal blocks), whose
n(n-1)/2 upper entries of the off-diagonal blocks enter one more small product:
p(p+1)/2 + (p-m)(p-m+1)/2 inner products, of lengths n^2 and n(n-1)/2, per
network and layer, instead of p m^2 of length n^2. f uses z_c^T H[a,b] (one
n x n by n x m product per block) and the sum over i of H[a,b]_ii z_ic z_id
folded in before a last p m x n by n x m product.

:func:`propagate_multi` runs a block of k layers for each network of a chunk
before it moves on to the next network, so that the p blocks of one network
(and their successors) stay in the core's cache across the k layers; the
weights of the k layers are drawn beforehand (in the order of the layer-by-layer
loop, so the random numbers are the same).
"""

import numpy as np
from numba import njit

from ._kernels import _dot, haar_from_normals, layer_activations

__all__ = ["stat_layout", "propagate_multi", "stats_multi", "off_diagonal"]

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


def off_diagonal(pa, pb):
    """Indices P of the off-diagonal pairs (pa[P] < pb[P]), int64."""
    return np.array([P for P in range(len(pa)) if pa[P] != pb[P]], dtype=np.int64)


@njit(**_JIT)
def _stats_scratch(m, n, p, no):
    """Work arrays of :func:`_stats_multi`: Sz, Th (p,), zp, hd (p, n), Dg (p, p),
    U (p m, n), Fm (p m, m), Ap (no, n(n-1)/2), pidx (m, m), oidx (p,)."""
    return (np.empty(p), np.empty(p), np.empty((p, n)), np.empty((p, n)), np.empty((p, p)),
            np.empty((p * m, n)), np.empty((p * m, m)), np.empty((no, n * (n - 1) // 2)),
            np.empty((m, m), np.int64), np.empty(p, np.int64))


@njit(**_JIT)
def _pack_antisymmetric(Hb, out):
    """out = the n(n-1)/2 entries i < k of Hb - Hb^T, in 8 x 8 tiles of the upper
    triangle when 8 divides n, else row by row (any fixed order serves the inner
    products they enter)."""
    n = Hb.shape[0]
    q = 0
    if n % 8:
        for i in range(n):
            for k in range(i + 1, n):
                out[q] = Hb[i, k] - Hb[k, i]
                q += 1
        return
    for i0 in range(0, n, 8):
        for i in range(i0, i0 + 8):          # diagonal tile
            for k in range(i + 1, i0 + 8):
                out[q] = Hb[i, k] - Hb[k, i]
                q += 1
        for k0 in range(i0 + 8, n, 8):       # full tiles right of it
            for i in range(i0, i0 + 8):
                for k in range(k0, k0 + 8):
                    out[q + k - k0] = Hb[i, k] - Hb[k, i]
                q += 8


@njit(**_JIT)
def _stats_multi(z, H, pa, pb, po, out, Sz, Th, zp, hd, Dg, U, Fm, Ap, pidx, oidx):
    """Statistics (module docstring) of one network: z (m, n), H (p, n, n) -> out (NS,)."""
    m, n = z.shape
    p = pa.shape[0]
    no = po.shape[0]
    pairs = n * (n - 1.0)
    for P in range(p):
        a, b = pa[P], pb[P]
        pidx[a, b] = P
        pidx[b, a] = P
        oidx[P] = -1
        s = 0.0
        t = 0.0
        HP = H[P]
        for i in range(n):
            v = z[a, i] * z[b, i]
            zp[P, i] = v
            s += v
            h = HP[i, i]
            hd[P, i] = h
            t += h
        Sz[P] = s
        Th[P] = t
        out[P] = s / n
        out[p + P] = t / n
    for j in range(no):
        oidx[po[j]] = j
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
            Dg[P, Q] = Dg[Q, P] = c2
            out[ozz + q] = (Sz[P] * Sz[Q] - c1) / pairs
            out[ohh + q] = (Th[P] * Th[Q] - c2) / pairs
            q += 1
        for Q in range(p):
            out[ohz + P * p + Q] = (Th[P] * Sz[Q] - _dot(hd[P], zp[Q])) / pairs
    # f[P, c, d] = (z_c^T H[P] z_d - sum_i H[P]_ii z_ic z_id) / pairs: rows P m + c of
    # U = z_c^T H[P] - (H[P]_ii z_ic)_i (one product per block), then U z^T (one product)
    for P in range(p):
        UP = U[P * m:(P + 1) * m]
        np.dot(z, H[P], UP)
        for c in range(m):
            Uc = UP[c]
            for i in range(n):
                Uc[i] -= hd[P, i] * z[c, i]
    np.dot(U, z.T, Fm)
    for P in range(p):
        for c in range(m):
            for d in range(m):
                out[of + (P * m + c) * m + d] = Fm[P * m + c, d] / pairs
    # b[P, c, d] = (<H[a,b], H[c,d]>_F - sum_i H[a,b]_ii H[c,d]_ii) / pairs. c <= d: the
    # Gram matrix Gd of the stored blocks (one product). c > d: H[c,d] = H[Q]^T for the
    # off-diagonal Q = (d, c), and <H[P], H[Q]^T> = <H[P], H[Q]> - <A_P, A_Q>/2 with the
    # antisymmetric parts A = H - H^T; for P diagonal <H[P], H[Q]^T> = <H[P], H[Q]>.
    X = H.reshape(p, n * n)
    Gd = np.dot(X, X.T)
    if no > 0:
        for j in range(no):
            _pack_antisymmetric(H[po[j]], Ap[j])
        Ga = np.dot(Ap, Ap.T)                    # sum_{i<k} A_P[i,k] A_Q[i,k] = <A_P, A_Q>/2
    else:
        Ga = np.zeros((0, 0))
    for P in range(p):
        for c in range(m):
            for d in range(m):
                Q = pidx[c, d]
                g = Gd[P, Q]
                if c > d and oidx[P] >= 0:
                    g -= Ga[oidx[P], oidx[Q]]
                out[ob + (P * m + c) * m + d] = (g - Dg[P, Q]) / pairs


@njit(**_JIT)
def stats_multi(z, H, pa, pb, po, out):
    """Statistics (module docstring) of each network of a chunk: z (C, m, n),
    H (C, p, n, n) -> out (C, NS); ``po`` = :func:`off_diagonal` (pa, pb)."""
    C, m, n = z.shape
    ws = _stats_scratch(m, n, pa.shape[0], po.shape[0])
    for a in range(C):
        _stats_multi(z[a], H[a], pa, pb, po, out[a], *ws)


@njit(**_JIT)
def _block_plain(sc2, spa, spb, Hab, Wt, M, Y, out, symmetric, Wl, T):
    """out = W (spa spb^T o Hab) W^T with W = sc Wt^T (sc2 = sc^2). ``symmetric``
    (a diagonal block): the single-input kernel's arithmetic (lower rows by one
    product, the top-left block by another with ``Wl`` = the columns :n/2 of Wt,
    the top-right mirrored)."""
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
                pa, pb, s, sp, M, Y, Wl, T, At):
    """One network, one layer, all m inputs (module docstring); W = sc * Wt^T.
    ``gamma < 0``: plain layer; otherwise residual of strength gamma. H, H_out (p, n, n)."""
    m, n = z.shape
    p = pa.shape[0]
    for a in range(m):
        layer_activations(code, slope, z[a], s_given[a], sp_given[a], s[a], sp[a])
    if gamma < 0.0:
        sc2 = sc * sc
        for i in range(n):   # columns :n/2 of Wt, contiguous, for the diagonal blocks
            for k in range(n // 2):
                Wl[i, k] = Wt[i, k]
        for P in range(p):   # diagonal blocks: the single-input arithmetic
            a, b = pa[P], pb[P]
            _block_plain(sc2, sp[a], sp[b], H[P], Wt, M, Y, H_out[P], a == b, Wl, T)
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
        for P in range(p):
            a, b = pa[P], pb[P]
            np.dot(At[a].T, H[P], Y)
            np.dot(Y, At[b], H_out[P])
            if a == b:
                Ho = H_out[P]
                for i in range(n):
                    for k in range(i + 1, n):
                        Ho[i, k] = Ho[k, i]
    for P in range(p):
        a, b = pa[P], pb[P]
        if gamma < 0.0:
            diag = lam_b + lam_W * _dot(s[a], s[b]) / n
        else:
            diag = gamma * gamma * (lam_b + lam_W * _dot(s[a], s[b]) / n)
        Ho = H_out[P]
        for i in range(n):
            Ho[i, i] += diag
    for a in range(m):
        np.dot(Wt.T, s[a], z_out[a])
        zo = z_out[a]
        if gamma < 0.0:
            for i in range(n):
                zo[i] = bias[i] + sc * zo[i]
        else:
            za = z[a]
            for i in range(n):
                zo[i] = za[i] + gamma * (bias[i] + sc * zo[i])


@njit(**_JIT)
def propagate_multi(code, slope, scale, gamma, haar, lam_b, lam_W, z, H, s_given, sp_given, R, bias,
                    stats_out, pa, pb, po):
    """Layers l -> l+1 -> ... -> l+k for a chunk of C networks with m inputs each,
    network by network (module docstring); ``z`` (C, m, n) and ``H`` (C, p, n, n)
    are replaced by the values at layer l+k.

    ``R`` (k, C, count): the standardized weights of the k layers as for
    :func:`._kernels.propagate_dense` (``haar`` False: count = n n, rows of
    R[j, a]^T = W^T / scale) or :func:`._kernels.propagate_haar` (``haar`` True:
    count = n(n+1)/2 normals, W = scale O^T); ``bias`` (k, C, n); ``gamma < 0``
    for plain layers, else residual; ``s_given``, ``sp_given`` (C, m, n) for
    custom activations (code -1, then k = 1); statistics of layers l+1..l+k to
    ``stats_out`` (k, C, NS); pair index arrays ``pa``, ``pb`` (a <= b) and
    ``po`` = :func:`off_diagonal` (pa, pb)."""
    k = R.shape[0]
    C, m, n = z.shape
    p = pa.shape[0]
    h = n // 2
    s, sp = np.empty((m, n)), np.empty((m, n))
    M, Y = np.empty((n, n)), np.empty((n, n))
    Wl, T = np.empty((n, h)), np.empty((h, h))
    At = np.empty((m, n, n)) if gamma >= 0.0 else np.empty((0, n, n))
    O = np.empty((n, n))
    zw, Hw = np.empty((m, n)), np.empty((p, n, n))
    ws = _stats_scratch(m, n, p, po.shape[0])
    for a in range(C):
        zc, Hc = z[a], H[a]
        zn, Hn = zw, Hw
        for j in range(k):
            if haar:
                haar_from_normals(R[j, a], O)
                Wt = O
            else:
                Wt = R[j, a].reshape(n, n)
            _step_multi(code, slope, scale, gamma, lam_b, lam_W, zc, Hc, s_given[a], sp_given[a], Wt,
                        bias[j, a], zn, Hn, pa, pb, s, sp, M, Y, Wl, T, At)
            _stats_multi(zn, Hn, pa, pb, po, stats_out[j, a], *ws)
            zc, zn = zn, zc
            Hc, Hn = Hn, Hc
        if k % 2 == 1:                 # the result is in the work arrays
            z[a][:, :] = zc
            H[a][:, :, :] = Hc
