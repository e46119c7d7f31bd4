"""Numba kernels of the Monte Carlo sampler: pure array functions.

No randomness, validation or allocation policy lives here (as in the numba
kernels of QuantEcon and iminuit): the wrapper in :mod:`fwtheory.mc.sampling` draws the random
numbers with numpy, allocates the outputs and calls these kernels one layer at
a time for a chunk of independent networks. Every kernel is
``@njit(cache=True, nogil=True, error_model="numpy")`` so that several Python
threads can run kernels on different chunks at the same time; the arithmetic
of one network never depends on which thread ran it (bit-reproducible).

Conventions (PDLT arXiv:2106.10165 eqs. (4.2)-(4.4) and Ch. 8; docs/conventions.md):

    z^(l+1)_i = b_i + sum_j W_ij sigma(z^(l)_j)
    H^(l+1)_{i1 i2} = delta_{i1 i2} [lambda_b + lambda_W (1/n_l) sum_j sigma_j^2]
                      + sum_{j1 j2} W_{i1 j1} W_{i2 j2} sigma'_{j1} sigma'_{j2} H^(l)_{j1 j2}

Residual layers (``Network(residual=gamma)``, PDLT appendix B), l >= 1:

    z^(l+1) = z^(l) + gamma (b + W sigma(z^(l)))
    H^(l+1) = A H^(l) A^T + gamma^2 diag[lambda_b + lambda_W (1/n_l) sum_j sigma_j^2],
    A = I + gamma W diag(sigma'(z^(l)))

(chain rule: dz^(l+1)/dtheta = A dz^(l)/dtheta for the parameters of layers
<= l, and gamma times the plain-MLP derivatives for those of layer l+1).

Activation codes are those of :data:`fwtheory.activations.CODES`; code -1 means
"sigma and sigma' are given by the caller" (custom sympy activations, whose
values the wrapper computes with numpy).
"""

import math

import numpy as np
from numba import njit

__all__ = [
    "NSTAT", "STAT_NAMES", "ZIGGURAT_X", "ZIGGURAT_RATIO", "normals_from_uniforms",
    "activation_values", "haar_from_normals", "haar_batch", "layer_stats", "propagate_dense",
    "propagate_haar", "propagate_residual_dense", "propagate_residual_haar",
]

_JIT = dict(cache=True, nogil=True, error_model="numpy")

# Per-network, per-layer sufficient statistics (neuron means / U-statistics over i != k):
STAT_NAMES = (
    "z2",     # (1/n) sum_i z_i^2
    "z4",     # (1/n) sum_i z_i^4
    "h",      # (1/n) sum_i H_ii
    "h2",     # (1/n) sum_i H_ii^2
    "z2z2",   # mean_{i != k} z_i^2 z_k^2
    "hz2",    # mean_{i != k} H_ii z_k^2
    "hh",     # mean_{i != k} H_ii H_kk
    "hzz",    # mean_{i != k} H_ik z_i z_k
    "hik2",   # mean_{i != k} H_ik^2
)
NSTAT = len(STAT_NAMES)

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# ------------------------------------------------------------ normal variates
# Ziggurat of Marsaglia & Tsang (J. Stat. Softw. 5(8), 2000), 256 layers, in the
# form of J. A. Doornik, "An improved ziggurat method to generate normal random
# samples" (2005): an independent uniform decides the wedges, Marsaglia's
# (1964) method samples the tail beyond R. Its input is the stream of 53-bit
# uniforms k 2^-53 that numpy's ``Generator.random(out=...)`` writes into a
# reused buffer (no allocation, no page faults); each word gives the layer (its
# low 8 bits) and a signed uniform with 45-bit resolution (its high 45 bits).
# The common case (inside a rectangle) runs as one branch-free pass over the
# row; the rare rest is finished from spare uniforms at the end of the row.
# Uniforms (SFC64) plus this deterministic map cost ~3x less here than numpy's
# ``standard_normal`` into fresh arrays (13 vs 39 us per 4096 variates).
ZIGGURAT_R = 3.6541528853610088          # start of the tail
_ZIGGURAT_V = 0.00492867323399           # area of every layer


def _ziggurat_tables():
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.empty(257)
    x[0] = _ZIGGURAT_V / f(ZIGGURAT_R)   # base strip: rectangle of this width plus the tail
    x[1] = ZIGGURAT_R
    for i in range(1, 255):
        x[i + 1] = math.sqrt(-2.0 * math.log(_ZIGGURAT_V / x[i] + f(x[i])))
    x[256] = 0.0
    return x, x[1:] / x[:-1]


ZIGGURAT_X, ZIGGURAT_RATIO = _ziggurat_tables()
_TWO53 = 9007199254740992.0              # 2^53
_TWO_M44 = 2.0 ** -44


@njit(**_JIT)
def _first_candidates(uniforms, out, bad, x, ratio):
    """Ziggurat step 1 for every output k from uniform k: layer i (low 8 bits),
    u in [-1, 1) (high 45 bits), out[k] = u x_i. The k whose u is outside the
    layer's rectangle |u| < x_{i+1}/x_i (~1.5%) are listed in bad[:count]
    (branch-free compaction; ``bad`` needs m + 1 entries). Returns count."""
    nbad = 0
    for k in range(out.shape[0]):
        w = np.int64(uniforms[k] * _TWO53)
        i = w & 255
        u = (w >> 8) * _TWO_M44 - 1.0
        out[k] = u * x[i]
        bad[nbad] = k
        nbad += np.int64(abs(u) >= ratio[i])
    return nbad


@njit(**_JIT)
def _normals_row(uniforms, out, bad, x, ratio):
    m = out.shape[0]
    nb = uniforms.shape[0]
    if nb < m:
        return -1
    nbad = _first_candidates(uniforms, out, bad, x, ratio)
    p = m                                                            # spare uniforms start here
    for j in range(nbad):
        k = bad[j]
        w = np.int64(uniforms[k] * _TWO53)
        while True:
            i = w & 255
            u = (w >> 8) * _TWO_M44 - 1.0
            if abs(u) < ratio[i]:                                    # inside the rectangle
                out[k] = u * x[i]
                break
            if i == 0:                                               # tail |z| > R
                a = 0.0
                found = False
                while p + 1 < nb:
                    a = -math.log(1.0 - uniforms[p]) / ZIGGURAT_R
                    c = -math.log(1.0 - uniforms[p + 1])
                    p += 2
                    if c + c > a * a:
                        found = True
                        break
                if not found:
                    return -1
                out[k] = ZIGGURAT_R + a if u > 0.0 else -(ZIGGURAT_R + a)
                break
            if p + 1 >= nb:
                return -1
            xx = u * x[i]                                            # wedge: accept under the density
            f0 = math.exp(-0.5 * (x[i] * x[i] - xx * xx))
            f1 = math.exp(-0.5 * (x[i + 1] * x[i + 1] - xx * xx))
            uu = uniforms[p]
            p += 1
            if f1 + uu * (f0 - f1) < 1.0:
                out[k] = xx
                break
            w = np.int64(uniforms[p] * _TWO53)                       # rejected: a fresh candidate
            p += 1
    return p


@njit(**_JIT)
def normals_from_uniforms(uniforms, out, x, ratio):
    """Fill each row of ``out`` (R, m) with N(0, 1) variates made by the
    ziggurat from the 53-bit uniforms (k 2^-53, k integer, as numpy's
    ``Generator.random`` makes them) of the same row of ``uniforms``
    (R, m + slack); tables ``x = ZIGGURAT_X``, ``ratio = ZIGGURAT_RATIO``.

    Variate k starts from uniform k (a branch-free first pass that ~98.5% of
    variates leave accepted); the others (wedges, tail, rejections) draw what
    they need, in order of k, from the spare uniforms m, m + 1, ... of the row.
    About 1.02 uniforms are used per variate. Returns the number of rows whose
    uniforms ran out (the caller must then retry with more)."""
    failed = 0
    bad = np.empty(out.shape[1] + 1, np.int64)
    for r in range(out.shape[0]):
        if _normals_row(uniforms[r], out[r], bad, x, ratio) < 0:
            failed += 1
    return failed


@njit(inline="always", **_JIT)
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(**_JIT)
def activation_values(code, slope, z, s, sp):
    """sigma(z) -> ``s`` and sigma'(z) -> ``sp`` elementwise (1-d arrays) for a
    built-in activation ``code`` (see ``fwtheory.activations.CODES``).

    Matches :meth:`fwtheory.activations.Activation.derivatives` (e.g. relu'(0) = 1,
    gelu = z Phi(z)).
    """
    for i in range(z.shape[0]):
        x = z[i]
        if code == 0:          # linear
            s[i] = x
            sp[i] = 1.0
        elif code == 1:        # relu
            if x >= 0.0:
                s[i] = x
                sp[i] = 1.0
            else:
                s[i] = 0.0
                sp[i] = 0.0
        elif code == 2:        # leaky relu
            if x >= 0.0:
                s[i] = x
                sp[i] = 1.0
            else:
                s[i] = slope * x
                sp[i] = slope
        elif code == 3:        # tanh
            t = math.tanh(x)
            s[i] = t
            sp[i] = 1.0 - t * t
        elif code == 4:        # sin
            s[i] = math.sin(x)
            sp[i] = math.cos(x)
        elif code == 5:        # erf
            s[i] = math.erf(x)
            sp[i] = _TWO_OVER_SQRT_PI * math.exp(-x * x)
        elif code == 6:        # sigmoid
            u = _sigmoid(x)
            s[i] = u
            sp[i] = u * (1.0 - u)
        elif code == 7:        # softplus
            s[i] = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
            sp[i] = _sigmoid(x)
        elif code == 8:        # gelu = z Phi(z)
            cdf = 0.5 * math.erfc(-x * _INV_SQRT2)
            s[i] = x * cdf
            sp[i] = cdf + x * _INV_SQRT_2PI * math.exp(-0.5 * x * x)
        elif code == 9:        # swish = z sigmoid(z)
            u = _sigmoid(x)
            s[i] = x * u
            sp[i] = u + x * u * (1.0 - u)
        else:
            s[i] = np.nan
            sp[i] = np.nan


@njit(**_JIT)
def _haar_unblocked(g, out):
    """Haar-distributed O in O(n) from n(n+1)/2 standard normals ``g`` (packed
    columns of a lower-triangular Gaussian matrix), written to ``out`` (n, n).

    Stewart's product of Householder reflections (G. W. Stewart, SIAM J. Numer.
    Anal. 17 (1980) 403) with Mezzadri's sign convention (F. Mezzadri, Notices
    AMS 54 (2007) 592): O = M_1 diag(1, M_2) ...
    diag(I_{n-2}, M_{n-1}) diag(I_{n-1}, sign g_last), where M_k is the
    reflection H(v_k), v_k = x_k + sign(x_k1)|x_k| e_1, followed (on the right)
    by the sign flip -sign(x_k1) of the first coordinate, so that M_k e_1 =
    x_k / |x_k| with x_k ~ N(0, I_{n-k+1}). This is the same product that
    Householder QR of an n x n Gaussian matrix produces with the sign fix
    Q diag(sign R_ii) (Mezzadri's recipe), but it needs only the normals that
    QR would turn into reflectors and it never forms R: (4/3) n^3 flops.

    Column k of the packed input (0-based) holds the m = n - k entries of x_{k+1}
    starting at offset k n - k(k - 1)/2.
    """
    n = out.shape[0]
    out[:, :] = 0.0
    for i in range(n):
        out[i, i] = 1.0
    last = g[n * (n + 1) // 2 - 1]
    out[n - 1, n - 1] = 1.0 if last >= 0.0 else -1.0
    w = np.empty(n)
    for k in range(n - 2, -1, -1):
        m = n - k
        off = k * n - (k * (k - 1)) // 2
        v = g[off:off + m]                      # x_{k+1} ~ N(0, I_m)
        nrm2 = 0.0
        for i in range(m):
            nrm2 += v[i] * v[i]
        x0 = v[0]
        sgn = 1.0 if x0 >= 0.0 else -1.0
        v0 = x0 + sgn * math.sqrt(nrm2)         # v = x + sign(x_0)|x| e_1
        vv = nrm2 - x0 * x0 + v0 * v0
        out[k, k] = -sgn                        # sign flip of row k (there e_1) of the block
        if vv == 0.0:                           # x = 0 (probability zero): identity reflection
            continue
        c = 2.0 / vv
        # w = v^T A over the active block A = out[k:, k:]; row k of A is (-sgn, 0, ..., 0)
        # and column k below it is zero, so w_0 = -sgn v_0 and rows i >= 1 start at column 1
        ww = w[:m]
        ww[:] = 0.0
        ww[0] = -sgn * v0
        for i in range(1, m):
            vi = v[i]
            row = out[k + i, k:]
            for j in range(1, m):
                ww[j] += vi * row[j]
        # A -= c v w^T
        r0 = out[k, k:]
        cv0 = c * v0
        for j in range(m):
            r0[j] -= cv0 * ww[j]
        for i in range(1, m):
            cvi = c * v[i]
            row = out[k + i, k:]
            for j in range(m):
                row[j] -= cvi * ww[j]


@njit(**_JIT)
def _haar_blocked(g, out, nb):
    """Same matrix as :func:`_haar_unblocked` (to rounding), with the reflectors
    applied nb at a time in compact-WY form I - V T V^T (Schreiber & Van Loan,
    SIAM J. Sci. Stat. Comput. 10 (1989) 53; LAPACK dlarft/dorgqr), so that
    the O(n^3) work runs in BLAS-3 products. Faster from n ~ 40 on."""
    n = out.shape[0]
    if n == 1:
        out[0, 0] = 1.0 if g[0] >= 0.0 else -1.0
        return
    nref = n - 1
    sgnv = np.empty(n)
    buf1 = np.empty(n * n)
    buf2 = np.empty(n * n)
    Vbuf = np.empty(n * nb)
    T = np.empty((nb, nb))
    W1buf = np.empty(nb * n)
    W2buf = np.empty(nb * n)
    Pbuf = np.empty(n * n)
    # C: current product for rows/cols >= k + bb, start with [1] at the bottom right
    cur = buf1[:1].reshape(1, 1)
    cur[0, 0] = 1.0
    other = buf2
    nblocks = (nref + nb - 1) // nb
    for blk in range(nblocks - 1, -1, -1):
        k = blk * nb
        bb = min(nb, nref - k)
        m = n - k
        mp = m - bb
        V = Vbuf[:m * bb].reshape(m, bb)
        tau = np.empty(bb)
        for j in range(bb):
            kk = k + j
            off = kk * n - (kk * (kk - 1)) // 2
            mm = n - kk
            for i in range(j):
                V[i, j] = 0.0
            nrm2 = 0.0
            for i in range(mm):
                nrm2 += g[off + i] * g[off + i]
            x0 = g[off]
            sgn = 1.0 if x0 >= 0.0 else -1.0
            sgnv[kk] = -sgn
            v0 = x0 + sgn * math.sqrt(nrm2)
            V[j, j] = v0
            for i in range(1, mm):
                V[j + i, j] = g[off + i]
            vv = nrm2 - x0 * x0 + v0 * v0
            tau[j] = 2.0 / vv if vv > 0.0 else 0.0
        # T (forward, columnwise): T[j,j] = tau_j, T[:j,j] = -tau_j T[:j,:j] V[:,:j]^T v_j
        for j in range(bb):
            for i in range(bb):
                T[i, j] = 0.0
        zt = np.empty(bb)
        for j in range(bb):
            T[j, j] = tau[j]
            for p in range(j):
                acc = 0.0
                for i in range(j, m):
                    acc += V[i, p] * V[i, j]
                zt[p] = acc
            for i in range(j):
                acc = 0.0
                for p in range(i, j):
                    acc += T[i, p] * zt[p]
                T[i, j] = -tau[j] * acc
        Tc = T[:bb, :bb].copy()
        A = other[:m * m].reshape(m, m)
        if mp > 0:
            Vb = V[bb:]
            W1 = W1buf[:bb * mp].reshape(bb, mp)
            np.dot(Vb.T, cur, W1)
            W2 = W2buf[:bb * mp].reshape(bb, mp)
            np.dot(Tc, W1, W2)
            P = Pbuf[:m * mp].reshape(m, mp)
            np.dot(V, W2, P)
            for i in range(bb):
                for j in range(mp):
                    A[i, bb + j] = -P[i, j]
            for i in range(mp):
                for j in range(mp):
                    A[bb + i, bb + j] = cur[i, j] - P[bb + i, j]
        # first bb columns: E - V (T V[:bb]^T)
        TVt = np.dot(Tc, V[:bb].T.copy())
        Q = np.dot(V, TVt)
        for i in range(m):
            for j in range(bb):
                A[i, j] = (1.0 if i == j else 0.0) - Q[i, j]
        other = buf1 if other is buf2 else buf2
        cur = A
    last = g[n * (n + 1) // 2 - 1]
    sgnv[n - 1] = 1.0 if last >= 0.0 else -1.0
    for i in range(n):
        for j in range(n):
            out[i, j] = cur[i, j] * sgnv[j]

@njit(**_JIT)
def haar_from_normals(g, out):
    """Haar-distributed O in O(n) from n(n+1)/2 standard normals ``g``, written
    to ``out`` (n, n): see :func:`_haar_unblocked` for the construction; n >= 40
    uses the blocked (BLAS-3) evaluation of the same product."""
    n = out.shape[0]
    if n >= 40:
        _haar_blocked(g, out, 8 if n < 128 else 16)
    else:
        _haar_unblocked(g, out)


@njit(**_JIT)
def haar_batch(g, out):
    """:func:`haar_from_normals` for a stack: ``g`` (N, n(n+1)/2) -> ``out`` (N, n, n)."""
    for a in range(out.shape[0]):
        haar_from_normals(g[a], out[a])


@njit(inline="always", **_JIT)
def _dot(a, b):
    """sum_j a_j b_j in a fixed order with 8 lanes (vectorizable, deterministic)."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    m = n - n % 8
    for j in range(0, m, 8):
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        s4 += a[j + 4] * b[j + 4]
        s5 += a[j + 5] * b[j + 5]
        s6 += a[j + 6] * b[j + 6]
        s7 += a[j + 7] * b[j + 7]
    r = 0.0
    for j in range(m, n):
        r += a[j] * b[j]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + r


@njit(**_JIT)
def _stats_one(z, H, out):
    """One pass over the strict lower triangle of the symmetric H: row i gives
    sum_{k<i} H_ik z_k and sum_{k<i} H_ik^2 (4 lanes each); the upper triangle is
    not read."""
    n = z.shape[0]
    s2 = 0.0
    s4 = 0.0
    t1 = 0.0
    t2 = 0.0
    tz = 0.0
    q = 0.0     # sum_{i != k} z_i H_ik z_k, half of it
    fr = 0.0    # sum_{i != k} H_ik^2, half of it
    for i in range(n):
        row = H[i]
        m = i - i % 4
        a0 = a1 = a2 = a3 = 0.0
        b0 = b1 = b2 = b3 = 0.0
        for j in range(0, m, 4):
            r0 = row[j]
            r1 = row[j + 1]
            r2 = row[j + 2]
            r3 = row[j + 3]
            a0 += r0 * z[j]
            a1 += r1 * z[j + 1]
            a2 += r2 * z[j + 2]
            a3 += r3 * z[j + 3]
            b0 += r0 * r0
            b1 += r1 * r1
            b2 += r2 * r2
            b3 += r3 * r3
        a = (a0 + a1) + (a2 + a3)
        b = (b0 + b1) + (b2 + b3)
        for j in range(m, i):
            a += row[j] * z[j]
            b += row[j] * row[j]
        zi2 = z[i] * z[i]
        hii = row[i]
        s2 += zi2
        s4 += zi2 * zi2
        t1 += hii
        t2 += hii * hii
        tz += hii * zi2
        q += z[i] * a
        fr += b
    pairs = n * (n - 1.0)
    out[0] = s2 / n
    out[1] = s4 / n
    out[2] = t1 / n
    out[3] = t2 / n
    if n > 1:
        out[4] = (s2 * s2 - s4) / pairs
        out[5] = (t1 * s2 - tz) / pairs
        out[6] = (t1 * t1 - t2) / pairs
        out[7] = 2.0 * q / pairs
        out[8] = 2.0 * fr / pairs
    else:
        for j in range(4, 9):
            out[j] = np.nan


@njit(**_JIT)
def layer_stats(z, H, out):
    """Sufficient statistics :data:`STAT_NAMES` of each network of a chunk:
    ``z`` (C, n), ``H`` (C, n, n) symmetric (its lower triangle is read) ->
    ``out`` (C, NSTAT).

    Pair means use all ordered pairs i != k (U-statistics), e.g.
    mean_{i != k} H_ik^2 = (||H||_F^2 - sum_i H_ii^2) / (n (n - 1)).
    """
    for a in range(z.shape[0]):
        _stats_one(z[a], H[a], out[a])


@njit(**_JIT)
def layer_activations(code, slope, z, s_given, sp_given, s, sp):
    """sigma(z) -> ``s``, sigma'(z) -> ``sp`` for a layer step: computed for a
    built-in activation (``code >= 0``, :func:`activation_values`), copied from
    ``s_given``/``sp_given`` (evaluated outside the kernel) for a custom one."""
    if code >= 0:
        activation_values(code, slope, z, s, sp)
    else:
        s[:] = s_given
        sp[:] = sp_given


@njit(**_JIT)
def _step(code, slope, sc, lam_b, lam_W, z, H, s_given, sp_given, Wt, bias, z_out, H_out,
          stats_out, s, sp, M, Y, Wl, T):
    """One network, one layer, W = sc * Wt^T (``Wt`` holds the transpose, C order):
    z_out = bias + W sigma(z);  H_out = diag(lam_b + lam_W |sigma|^2/n) + W (sp sp^T o H) W^T.

    The transpose is stored because OpenBLAS multiplies A B and A^T B of 64 x 64
    matrices ~1.4x faster than A B^T; the products used are Y = Wt^T M (A^T B)
    and H_out = Y Wt (A B)."""
    n = z.shape[0]
    layer_activations(code, slope, z, s_given, sp_given, s, sp)
    sc2 = sc * sc
    for i in range(n):
        spi = sc2 * sp[i]
        Mi = M[i]
        Hi = H[i]
        for k in range(n):
            Mi[k] = spi * sp[k] * Hi[k]
    np.dot(Wt.T, M, Y)
    # H_out = Y Wt is symmetric: rows h.. in one product, the top-left block in
    # another (columns :h of Wt copied to the contiguous Wl, product in T), the
    # top-right block mirrored from the bottom-left (3/4 of the flops)
    h = n // 2
    if h > 0:
        np.dot(Y[h:], Wt, H_out[h:])
        for i in range(n):
            for k in range(h):
                Wl[i, k] = Wt[i, k]
        np.dot(Y[:h], Wl, T)
        for i in range(h):
            Hi = H_out[i]
            Ti = T[i]
            for k in range(h):
                Hi[k] = Ti[k]
            for k in range(h, n):
                Hi[k] = H_out[k, i]
    else:
        np.dot(Y, Wt, H_out)
    diag = lam_b + lam_W * _dot(s, s) / n
    np.dot(Wt.T, s, z_out)
    for i in range(n):
        z_out[i] = bias[i] + sc * z_out[i]
        H_out[i, i] += diag
    _stats_one(z_out, H_out, stats_out)


@njit(**_JIT)
def _step_scratch(n):
    """Work arrays of :func:`_step`: s, sp (n,), M, Y (n, n), Wl (n, n/2), T (n/2, n/2)."""
    h = n // 2
    return (np.empty(n), np.empty(n), np.empty((n, n)), np.empty((n, n)), np.empty((n, h)),
            np.empty((h, h)))


@njit(**_JIT)
def propagate_dense(code, slope, scale, lam_b, lam_W, z, H, s_given, sp_given, Rt, bias,
                    z_out, H_out, stats_out):
    """One layer l -> l+1 for a chunk of C independent networks, W = scale * Rt[a]^T.

    Gaussian ensemble: Rt[a] standard normal (n, n), scale = sqrt(C_W / n_l)
    (the transpose of an i.i.d. Gaussian matrix is one, so reading the draws
    as W^T is the same ensemble); explicit weights (tests): Rt[a] = W^T, scale = 1.

    Parameters
    ----------
    code, slope : int, float
        Activation code (-1: use ``s_given``/``sp_given``, arrays (C, n), which
        then hold sigma(z) and sigma'(z)).
    z, H : (C, n), (C, n, n)
        Preactivations and NTK of layer l.
    Rt : (C, n, n)
        W^T / scale, C order.
    bias : (C, n)
        Biases of layer l+1 (already scaled by sqrt(C_b)).
    z_out, H_out, stats_out : (C, n), (C, n, n), (C, NSTAT)
        Outputs: z^(l+1), H^(l+1) from the forward equation (PDLT Ch. 8)
        and the statistics :data:`STAT_NAMES` of layer l+1.
    """
    C, n = z.shape
    s, sp, M, Y, Wl, T = _step_scratch(n)
    for a in range(C):
        _step(code, slope, scale, lam_b, lam_W, z[a], H[a], s_given[a], sp_given[a], Rt[a],
              bias[a], z_out[a], H_out[a], stats_out[a], s, sp, M, Y, Wl, T)


@njit(**_JIT)
def propagate_haar(code, slope, scale, lam_b, lam_W, z, H, s_given, sp_given, G, bias,
                   z_out, H_out, stats_out):
    """As :func:`propagate_dense` with W = scale * O^T, O = haar_from_normals(G[a])
    Haar on O(n) (G: (C, n(n+1)/2) standard normals), scale = sqrt(C_W). O^T is
    Haar too (the measure is invariant under inversion), so W is sqrt(C_W) times
    a Haar matrix."""
    C, n = z.shape
    s, sp, M, Y, Wl, T = _step_scratch(n)
    O = np.empty((n, n))
    for a in range(C):
        haar_from_normals(G[a], O)
        _step(code, slope, scale, lam_b, lam_W, z[a], H[a], s_given[a], sp_given[a], O,
              bias[a], z_out[a], H_out[a], stats_out[a], s, sp, M, Y, Wl, T)


@njit(**_JIT)
def _step_residual(code, slope, sc, gamma, lam_b, lam_W, z, H, s_given, sp_given, Wt, bias, z_out,
                   H_out, stats_out, s, sp, At, Y):
    """One network, one residual layer, W = sc * Wt^T:
    z_out = z + gamma (bias + W sigma(z));
    H_out = A H A^T + gamma^2 diag(lam_b + lam_W |sigma|^2/n),  A = I + gamma W diag(sigma').

    A^T (``At``) is formed row by row, At[k, i] = delta_ki + gamma sc sigma'_k Wt[k, i];
    Y = At^T H (A^T B) and H_out = Y At (A B). The product is symmetric up to
    rounding; its lower triangle is mirrored to the upper one (as in :func:`_step`)."""
    n = z.shape[0]
    layer_activations(code, slope, z, s_given, sp_given, s, sp)
    g = gamma * sc
    for k in range(n):
        f = g * sp[k]
        Ak = At[k]
        Wk = Wt[k]
        for i in range(n):
            Ak[i] = f * Wk[i]
        Ak[k] += 1.0
    np.dot(At.T, H, Y)
    np.dot(Y, At, H_out)
    for i in range(n):
        for k in range(i + 1, n):
            H_out[i, k] = H_out[k, i]
    diag = gamma * gamma * (lam_b + lam_W * _dot(s, s) / n)
    np.dot(Wt.T, s, z_out)
    for i in range(n):
        z_out[i] = z[i] + gamma * (bias[i] + sc * z_out[i])
        H_out[i, i] += diag
    _stats_one(z_out, H_out, stats_out)


@njit(**_JIT)
def propagate_residual_dense(code, slope, scale, gamma, lam_b, lam_W, z, H, s_given, sp_given, Rt,
                             bias, z_out, H_out, stats_out):
    """As :func:`propagate_dense` for a residual layer of strength ``gamma``
    (module docstring): W = scale * Rt[a]^T, z_out = z + gamma (bias + W sigma(z))."""
    C, n = z.shape
    s, sp = np.empty(n), np.empty(n)
    At, Y = np.empty((n, n)), np.empty((n, n))
    for a in range(C):
        _step_residual(code, slope, scale, gamma, lam_b, lam_W, z[a], H[a], s_given[a], sp_given[a],
                       Rt[a], bias[a], z_out[a], H_out[a], stats_out[a], s, sp, At, Y)


@njit(**_JIT)
def propagate_residual_haar(code, slope, scale, gamma, lam_b, lam_W, z, H, s_given, sp_given, G,
                            bias, z_out, H_out, stats_out):
    """As :func:`propagate_haar` for a residual layer of strength ``gamma``."""
    C, n = z.shape
    s, sp = np.empty(n), np.empty(n)
    At, Y = np.empty((n, n)), np.empty((n, n))
    O = np.empty((n, n))
    for a in range(C):
        haar_from_normals(G[a], O)
        _step_residual(code, slope, scale, gamma, lam_b, lam_W, z[a], H[a], s_given[a], sp_given[a],
                       O, bias[a], z_out[a], H_out[a], stats_out[a], s, sp, At, Y)
