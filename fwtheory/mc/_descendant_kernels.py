"""Numba kernels for the NTK-descendant Monte Carlo: pure array functions.

The algorithm, the formulas and the references are in the docstring of
:mod:`fwtheory.mc.descendants`, whose :func:`~fwtheory.mc.descendants.network_stats_numpy`
is the tested numpy reference of :func:`descendant_stats` (same operations,
batched over the neuron pairs; agreement to ~1e-13 is tested). As in
:mod:`fwtheory.mc._kernels`: no
randomness, validation or allocation policy here; the wrapper draws the
networks and the neuron pairs with numpy, runs the base forward pass and
passes everything in. ``@njit(cache=True, nogil=True, error_model="numpy")``
so that several Python threads can run chunks at once; the arithmetic of a
network never depends on the thread that ran it.

Array layout of one network (L layers, width n, P pairs per layer):

    W      (L-1, n, n)   weights of layers 2..L (already scaled)
    z      (L, n)        preactivations z^(1..L)
    D      (L, 4, n)     sigma^(k)(z^(l)), k = 0..3
    pairs  (L, P, 2)     ordered neuron pairs (i, k), i != k, per target layer
    out    (L, NSTAT)    :data:`STAT_NAMES`, pair means without the factor n
"""

import numpy as np
from numba import njit

__all__ = ["STAT_NAMES", "NSTAT", "descendant_stats", "network_descendant_stats"]

_JIT = dict(cache=True, nogil=True, error_model="numpy")

# Per-network, per-layer statistics (means over the network's sampled pairs; n not applied):
STAT_NAMES = (
    "z2",   # (1/n) sum_m z_m^2                                     -> K
    "h",    # mean over pairs of (H_ii + H_kk) / 2                   -> Theta
    "P",    # mean over pairs of mean_{m != k} dH_{mkk} z_m          -> P / n
    "Q",    # mean over pairs of (dH_{iik} z_k + dH_{kki} z_i) / 2   -> Q / n
    "R",    # mean over pairs of ddI_{iikk}                          -> R / n
    "S",    # mean over pairs of (<h_ik, h_ik> + <h_ki, h_ki>) / 2   -> S / n
    "T",    # mean over pairs of <h_ii, h_kk>                        -> T / n
    "U",    # mean over pairs of <h_ik, h_ki>                        -> U / n
)
NSTAT = len(STAT_NAMES)

# blocks of P rows in the Taylor coefficient arrays
_A, _B, _AB, _BB, _ABB = 0, 1, 2, 3, 4
# tangent combos (a, c): dd_a along g_c; blocks of P rows
_II, _IK, _KI, _KK = 0, 1, 2, 3


@njit(inline="always", **_JIT)
def _dot(a, b):
    s = 0.0
    for j in range(a.shape[0]):
        s += a[j] * b[j]
    return s


@njit(fastmath={"contract"}, **_JIT)
def _matmul(X, M, out):
    """out = X @ M for C-contiguous X (R, K), M (K, m), out (R, m), summed over K
    in a fixed order (row-axpy form, vectorized over m, zero entries of X
    skipped). Plain loops instead of BLAS: bit-reproducible on any machine and
    never oversubscribes the cores when several worker threads run kernels."""
    R, K = X.shape
    m = M.shape[1]
    out[:, :] = 0.0
    for i in range(K):
        row = M[i]
        r = 0
        while r + 1 < R:
            x0 = X[r, i]
            x1 = X[r + 1, i]
            if x0 != 0.0 or x1 != 0.0:
                o0 = out[r]
                o1 = out[r + 1]
                for j in range(m):
                    mj = row[j]
                    o0[j] += x0 * mj
                    o1[j] += x1 * mj
            r += 2
        if r < R:
            x0 = X[r, i]
            if x0 != 0.0:
                o0 = out[r]
                for j in range(m):
                    o0[j] += x0 * row[j]


@njit(**_JIT)
def _inner(lam_b, kap, ss, u, v, da, db, s0, dsc, dsd, first):
    """<h_{a,c}, h_{b,d}> restricted to one layer's weights and biases:
    lam_b u.v + kap [(u.v)(s.s) + (u.delta_b)(s.ds_d) + (delta_a.v)(ds_c.s)
    + (delta_a.delta_b)(ds_c.ds_d)]; u = dd_a along g_c, v = dd_b along g_d.
    ``first``: layer 1, where s = x is fixed (ds = 0) and s.s = ``ss`` = n0 q0."""
    uv = _dot(u, v)
    val = lam_b * uv + kap * uv * ss
    if not first:
        val += kap * (_dot(u, db) * _dot(s0, dsd) + _dot(da, v) * _dot(dsc, s0)
                      + _dot(da, db) * _dot(dsc, dsd))
    return val


@njit(**_JIT)
def network_descendant_stats(W, z, D, pairs, lam_b, lam_W, n0, q0, out,
                             WT, delta, tvec, Z, ds, Sser, WS, dd, ddW, gamma=-1.0):
    """Descendant statistics of one network at every target layer.

    Scratch arrays (any content on entry): ``WT`` (L-1, n, n) for the transposed
    weights, ``delta``, ``tvec``, ``ds`` (L, 2P, n),
    ``Z`` (L, 5P, n), ``Sser``, ``WS`` (5P, n), ``dd``, ``ddW`` (4P, n).
    Rows of ``delta``/``tvec``/``ds``: first P for neuron i of each pair, then
    P for k. Rows of ``Z``/``Sser``/``WS``: blocks of P for the monomials
    a, b, ab, b^2, ab^2. Rows of ``dd``: blocks for (a, c) = (i,i), (i,k), (k,i), (k,k).

    ``gamma`` >= 0: residual network z^(l+1) = z^(l) + gamma (b + W sigma(z^(l))) for
    l >= 1 (the changes are listed in :func:`fwtheory.mc.descendants.network_stats_numpy`);
    negative (default): plain MLP.
    """
    L, n = z.shape
    P = pairs.shape[1]
    c1 = lam_b + lam_W * q0
    xx = n0 * q0
    kap_hidden = lam_W / n
    res = gamma >= 0.0
    rg = gamma if res else 1.0
    for l in range(L - 1):
        WT[l] = W[l].T
    for t in range(L):
        # ---- backprop vectors: delta^(l') for l' = t+1 .. 1 (0-based index lp)
        delta[t, :, :] = 0.0
        for p in range(P):
            delta[t, p, pairs[t, p, 0]] = 1.0
            delta[t, P + p, pairs[t, p, 1]] = 1.0
        for lp in range(t, 0, -1):
            _matmul(delta[lp], W[lp - 1], tvec[lp])          # rows: W^T delta
            d1 = D[lp - 1, 1]
            if res:
                for r in range(2 * P):
                    for j in range(n):
                        delta[lp - 1, r, j] = delta[lp, r, j] + rg * d1[j] * tvec[lp, r, j]
            else:
                for r in range(2 * P):
                    for j in range(n):
                        delta[lp - 1, r, j] = d1[j] * tvec[lp, r, j]
        # ---- Taylor mode: layer 1
        for p in range(P):
            for j in range(n):
                Z[0, _A * P + p, j] = c1 * delta[0, p, j]
                Z[0, _B * P + p, j] = c1 * delta[0, P + p, j]
                Z[0, _AB * P + p, j] = 0.0
                Z[0, _BB * P + p, j] = 0.0
                Z[0, _ABB * P + p, j] = 0.0
        # ---- Taylor mode: layers 2..t+1
        for lp in range(1, t + 1):
            s0 = D[lp - 1, 0]
            d1 = D[lp - 1, 1]
            d2 = D[lp - 1, 2]
            d3 = D[lp - 1, 3]
            e = Z[lp - 1]
            for p in range(P):
                for j in range(n):
                    ea = e[_A * P + p, j]
                    eb = e[_B * P + p, j]
                    eab = e[_AB * P + p, j]
                    ebb = e[_BB * P + p, j]
                    eabb = e[_ABB * P + p, j]
                    sa = d1[j] * ea
                    sb = d1[j] * eb
                    Sser[_A * P + p, j] = sa
                    Sser[_B * P + p, j] = sb
                    Sser[_AB * P + p, j] = d1[j] * eab + d2[j] * ea * eb
                    Sser[_BB * P + p, j] = d1[j] * ebb + 0.5 * d2[j] * eb * eb
                    Sser[_ABB * P + p, j] = (d1[j] * eabb + d2[j] * (ea * ebb + eb * eab)
                                             + 0.5 * d3[j] * ea * eb * eb)
                    ds[lp, p, j] = sa
                    ds[lp, P + p, j] = sb
            _matmul(Sser, WT[lp - 1], WS)
            ss = _dot(s0, s0)
            lin = lam_b + kap_hidden * ss
            Zl = Z[lp]
            for p in range(P):
                sa_ = _dot(Sser[_A * P + p], s0)
                sb_ = _dot(Sser[_B * P + p], s0)
                sab_ = _dot(Sser[_AB * P + p], s0)
                sbb_ = _dot(Sser[_BB * P + p], s0)
                di = delta[lp, p]
                dk = delta[lp, P + p]
                if res:     # z = z_prev + rg (b + W s): block scaled by rg, its parameter directions too
                    rl = rg * rg * lin
                    rk = rg * rg * kap_hidden
                    for j in range(n):
                        Zl[_A * P + p, j] = e[_A * P + p, j] + rg * WS[_A * P + p, j] + rl * di[j]
                        Zl[_B * P + p, j] = e[_B * P + p, j] + rg * WS[_B * P + p, j] + rl * dk[j]
                        Zl[_AB * P + p, j] = (e[_AB * P + p, j] + rg * WS[_AB * P + p, j]
                                              + rk * (sb_ * di[j] + sa_ * dk[j]))
                        Zl[_BB * P + p, j] = e[_BB * P + p, j] + rg * WS[_BB * P + p, j] + rk * sb_ * dk[j]
                        Zl[_ABB * P + p, j] = (e[_ABB * P + p, j] + rg * WS[_ABB * P + p, j]
                                               + rk * (sbb_ * di[j] + sab_ * dk[j]))
                    continue
                for j in range(n):
                    Zl[_A * P + p, j] = WS[_A * P + p, j] + lin * di[j]
                    Zl[_B * P + p, j] = WS[_B * P + p, j] + lin * dk[j]
                    Zl[_AB * P + p, j] = WS[_AB * P + p, j] + kap_hidden * (sb_ * di[j] + sa_ * dk[j])
                    Zl[_BB * P + p, j] = WS[_BB * P + p, j] + kap_hidden * sb_ * dk[j]
                    Zl[_ABB * P + p, j] = WS[_ABB * P + p, j] + kap_hidden * (sbb_ * di[j] + sab_ * dk[j])
        # ---- dNTK / ddI samples at the target layer
        zt = z[t]
        Zt = Z[t]
        h_acc = 0.0
        P_acc = 0.0
        Q_acc = 0.0
        R_acc = 0.0
        for p in range(P):
            i = pairs[t, p, 0]
            k = pairs[t, p, 1]
            h_acc += 0.5 * (Zt[_A * P + p, i] + Zt[_B * P + p, k])
            P_acc += 2.0 * (_dot(Zt[_BB * P + p], zt) - Zt[_BB * P + p, k] * zt[k]) / (n - 1)
            Q_acc += 0.5 * (Zt[_AB * P + p, i] * zt[k] + Zt[_AB * P + p, k] * zt[i])
            R_acc += 2.0 * Zt[_ABB * P + p, i]
        # ---- ddII: forward over reverse, top layer down
        dd[:, :] = 0.0
        S_acc = 0.0
        T_acc = 0.0
        U_acc = 0.0
        for lp in range(t, -1, -1):
            first = lp == 0
            if first:
                kap = lam_W / n0
                ss = xx
                s0 = D[0, 0]          # unused on layer 1 (ds = 0)
                dsl = ds[0]
            else:
                kap = kap_hidden
                s0 = D[lp - 1, 0]
                ss = _dot(s0, s0)
                dsl = ds[lp]
            fac = rg * rg if (res and not first) else 1.0     # layer-l' directions scaled by rg
            for p in range(P):
                di = delta[lp, p]
                dk = delta[lp, P + p]
                dsi = dsl[p]
                dsk = dsl[P + p]
                u_ii = dd[_II * P + p]
                u_ik = dd[_IK * P + p]
                u_ki = dd[_KI * P + p]
                u_kk = dd[_KK * P + p]
                S_acc += fac * (0.5 * (_inner(lam_b, kap, ss, u_ik, u_ik, di, di, s0, dsk, dsk, first)
                                       + _inner(lam_b, kap, ss, u_ki, u_ki, dk, dk, s0, dsi, dsi, first)))
                T_acc += fac * _inner(lam_b, kap, ss, u_ii, u_kk, di, dk, s0, dsi, dsk, first)
                U_acc += fac * _inner(lam_b, kap, ss, u_ik, u_ki, di, dk, s0, dsk, dsi, first)
            if first:
                break
            # dd^(l'-1)_a = sigma'' o dz_c o t_a + sigma' o (kap (delta_c . delta_a) s + W^T dd_a)
            _matmul(dd, W[lp - 1], ddW)
            d1 = D[lp - 1, 1]
            d2 = D[lp - 1, 2]
            ze = Z[lp - 1]
            for p in range(P):
                di = delta[lp, p]
                dk = delta[lp, P + p]
                c_ii = kap * _dot(di, di)
                c_ik = kap * _dot(di, dk)
                c_kk = kap * _dot(dk, dk)
                if res:     # dd_prev = dd + rg [sigma'' dz_c t_a + sigma' (rg c s + W^T dd)]
                    for j in range(n):
                        za = ze[_A * P + p, j]
                        zb = ze[_B * P + p, j]
                        ti = tvec[lp, p, j]
                        tk = tvec[lp, P + p, j]
                        sj = rg * s0[j]
                        dd[_II * P + p, j] += rg * (d2[j] * za * ti
                                                     + d1[j] * (c_ii * sj + ddW[_II * P + p, j]))
                        dd[_IK * P + p, j] += rg * (d2[j] * zb * ti
                                                     + d1[j] * (c_ik * sj + ddW[_IK * P + p, j]))
                        dd[_KI * P + p, j] += rg * (d2[j] * za * tk
                                                     + d1[j] * (c_ik * sj + ddW[_KI * P + p, j]))
                        dd[_KK * P + p, j] += rg * (d2[j] * zb * tk
                                                     + d1[j] * (c_kk * sj + ddW[_KK * P + p, j]))
                    continue
                for j in range(n):
                    za = ze[_A * P + p, j]
                    zb = ze[_B * P + p, j]
                    ti = tvec[lp, p, j]
                    tk = tvec[lp, P + p, j]
                    sj = s0[j]
                    dd[_II * P + p, j] = d2[j] * za * ti + d1[j] * (c_ii * sj + ddW[_II * P + p, j])
                    dd[_IK * P + p, j] = d2[j] * zb * ti + d1[j] * (c_ik * sj + ddW[_IK * P + p, j])
                    dd[_KI * P + p, j] = d2[j] * za * tk + d1[j] * (c_ik * sj + ddW[_KI * P + p, j])
                    dd[_KK * P + p, j] = d2[j] * zb * tk + d1[j] * (c_kk * sj + ddW[_KK * P + p, j])
        out[t, 0] = _dot(zt, zt) / n
        out[t, 1] = h_acc / P
        out[t, 2] = P_acc / P
        out[t, 3] = Q_acc / P
        out[t, 4] = R_acc / P
        out[t, 5] = S_acc / P
        out[t, 6] = T_acc / P
        out[t, 7] = U_acc / P


@njit(**_JIT)
def descendant_stats(W, z, D, pairs, lam_b, lam_W, n0, q0, out, gamma=-1.0):
    """:func:`network_descendant_stats` for a chunk of C independent networks:
    ``W`` (C, L-1, n, n), ``z`` (C, L, n), ``D`` (C, L, 4, n), ``pairs``
    (C, L, P, 2) -> ``out`` (C, L, NSTAT). ``n0`` is the input dimension and
    ``q0`` = |x|^2 / n0; ``lam_b``, ``lam_W`` the NTK learning rates; ``gamma`` >= 0
    the residual strength (negative: plain MLP)."""
    C, L, n = z.shape
    P = pairs.shape[2]
    WT = np.empty((max(L - 1, 0), n, n))
    delta = np.empty((L, 2 * P, n))
    tvec = np.empty((L, 2 * P, n))
    ds = np.zeros((L, 2 * P, n))
    Z = np.empty((L, 5 * P, n))
    Sser = np.empty((5 * P, n))
    WS = np.empty((5 * P, n))
    dd = np.empty((4 * P, n))
    ddW = np.empty((4 * P, n))
    for a in range(C):
        network_descendant_stats(W[a], z[a], D[a], pairs[a], lam_b, lam_W, n0, q0, out[a],
                                 WT, delta, tvec, Z, ds, Sser, WS, dd, ddW, gamma)
