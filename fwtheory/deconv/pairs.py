r"""Bivariate Gaussian expectations E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)], vectorized over pairs.

For many covariances (K_11, K_22, K_12) at once (the kernel of every pair of
locations of a deconvolutional layer), with (u, v) centered Gaussian. In the
standardized variables

.. math::

    u = \sqrt{K_{11}}\, x, \qquad v = \sqrt{K_{22}}\,(c\, x + \bar c\, y), \qquad
    c = K_{12} / \sqrt{K_{11} K_{22}},\ \bar c = \sqrt{1 - c^2},

with x, y independent standard normals, the expectation is a nested pair of 1-D
integrals: the outer one over x, split at 0 and at the kinks of sigma(u)
(x = kappa / sqrt(K_11)), with a graded mesh around the smoothed kink of the
inner function (x = kappa / (sqrt(K_22) c), width cbar / |c|), the inner one over
y split at the conditional kink y = (kappa / sqrt(K_22) - c x) / cbar. This is the
scheme of :func:`fwtheory.gauss.expect_multi` (same half-range Gauss-Hermite
and Gauss-Legendre rules, :func:`fwtheory.gauss._segment_rule`) with a node
structure that is the same for every pair, so that all pairs are integrated in
one array operation; kinks (ReLU) are breakpoints, hence integrated exactly up
to the rule's convergence. Two rule orders give an error estimate per pair;
pairs whose estimate exceeds ``rtol`` times E[|f|] are redone by
:func:`fwtheory.gauss.expect_multi` one by one.

Piecewise-linear activations (linear, ReLU, leaky ReLU) use the exact
arc-cosine forms instead (:func:`_piecewise_linear`); the tests check them
against :func:`fwtheory.gauss.expect_multi`.

Special cases use 1-D expectations (:func:`fwtheory.gauss.expect_monomials`):
K_12 = 0 gives <sigma>_{K11} <sigma>_{K22}; K_11 = K_22 = K_12 gives
<sigma^2>_K and <sigma'^2>_K. Identical covariances are integrated once.
"""

__all__ = ["pair_moments", "pair_matrix"]

import numpy as np

from .. import gauss
from ..activations import get_activation
from ..errors import NumericalError

_CLIP = 10.0
_GRADE = np.array([-6.0, -1.5, 0.0, 1.5, 6.0])
_ORDERS = ((16, 10), (24, 14), (40, 20), (64, 32))
_CHUNK_NODES = 1 << 21
_S1, _T1 = (1, 0, 0, 0, 0), (0, 1, 0, 0, 0)
_S2, _T2 = (2, 0, 0, 0, 0), (0, 2, 0, 0, 0)
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _rule(act, s1, s2, c, sc, order):
    """Nested rule for a chunk of pairs: returns (E[s s], E[s' s'], E|s s|, E|s' s'|)."""
    n_half, n_gl = order
    kk = np.asarray(act.kinks, dtype=float)
    P = s1.size
    with np.errstate(**_QUIET):
        b = [np.zeros((P, 1))]
        if kk.size:
            b.append(kk[None, :] / s1[:, None])
            rho = np.where(c != 0.0, sc / np.abs(c), np.inf)
            sharp = rho < 0.5     # graded mesh only around sharp smoothed kinks, as in gauss
            cen = np.where(sharp[:, None], kk[None, :] / (s2 * c)[:, None], 0.0)
            rho = np.where(sharp, rho, 0.0)
            b.append((cen[:, :, None] + rho[:, None, None] * _GRADE).reshape(P, -1))
        bx = np.clip(np.nan_to_num(np.concatenate(b, axis=1), nan=0.0), -_CLIP, _CLIP)
    bx.sort(axis=1)
    X, WX = gauss._segment_rule(bx, n_half, n_gl)          # (P, N1)
    N1 = X.shape[1]
    with np.errstate(**_QUIET):
        by = [np.zeros((P * N1, 1))]
        if kk.size:
            num = kk[None, :] / np.repeat(s2, N1)[:, None] - (np.repeat(c, N1) * X.ravel())[:, None]
            by.append(num / np.repeat(sc, N1)[:, None])
        by = np.clip(np.nan_to_num(np.concatenate(by, axis=1), nan=0.0), -_CLIP, _CLIP)
    by.sort(axis=1)
    Y, WY = gauss._segment_rule(by, n_half, n_gl)          # (P N1, N2)
    N2 = Y.shape[1]
    Y = Y.reshape(P, N1, N2)
    WY = WY.reshape(P, N1, N2)
    du = act.derivatives(s1[:, None] * X, 1)                 # (2, P, N1)
    v = s2[:, None, None] * (c[:, None, None] * X[:, :, None] + sc[:, None, None] * Y)
    dv = act.derivatives(v, 1)                               # (2, P, N1, N2)
    out = []
    for d in (0, 1):
        inner = np.einsum("pij,pij->pi", dv[d], WY)
        inner_abs = np.einsum("pij,pij->pi", np.abs(dv[d]), WY)
        out.append((np.einsum("pi,pi->p", du[d] * inner, WX), np.einsum("pi,pi->p", np.abs(du[d]) * inner_abs, WX)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _generic(act, K11, K22, K12, rtol):
    """Nested rules on a ladder of orders; each pair climbs until two consecutive rungs agree."""
    s1, s2 = np.sqrt(K11), np.sqrt(K22)
    c = np.clip(K12 / (s1 * s2), -1.0, 1.0)
    sc = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    P = K11.size
    ss, tt = np.full(P, np.nan), np.full(P, np.nan)
    nk = len(act.kinks)
    todo = np.arange(P)
    prev = None
    for level, order in enumerate(_ORDERS):
        n1 = 2 * order[0] + 6 * nk * order[1]
        n2 = 2 * order[0] + nk * order[1]
        step = max(1, _CHUNK_NODES // (n1 * n2))
        cur = [np.empty(todo.size) for _ in range(4)]
        for a in range(0, todo.size, step):
            idx = todo[a:a + step]
            r = _rule(act, s1[idx], s2[idx], c[idx], sc[idx], order)
            for j in range(4):
                cur[j][a:a + step] = r[j]
        if prev is not None:
            # on the last rung the difference bounds the error of the previous rung; with the
            # geometric convergence of the rules the last rung is then accurate to ~ tol^(3/2)
            tol = rtol if level + 1 < len(_ORDERS) else np.sqrt(rtol)
            with np.errstate(**_QUIET):
                ok = (np.abs(cur[0] - prev[0]) <= tol * cur[2] + 1e-300) & \
                     (np.abs(cur[1] - prev[1]) <= tol * cur[3] + 1e-300) & np.isfinite(cur[0]) & np.isfinite(cur[1])
            ss[todo[ok]], tt[todo[ok]] = cur[0][ok], cur[1][ok]
            todo = todo[~ok]
            cur = [v[~ok] for v in cur]
            if todo.size == 0:
                break
        prev = cur
    if todo.size:
        def f(Z):
            d = act.derivatives(Z, 1)
            return np.stack([d[0, 0] * d[0, 1], d[1, 0] * d[1, 1]])
        for i in todo:
            cov = np.array([[K11[i], K12[i]], [K12[i], K22[i]]])
            v = gauss.expect_multi_relaxed(f, cov, kinks=act.kinks, rtols=(max(rtol, 1e-10), 1e-8, 1e-7))
            ss[i], tt[i] = v[0], v[1]
    return ss, tt


def _piecewise_linear(act, K11, K22, K12):
    """Exact forms for sigma(z) = a_+ z theta(z) + a_- z theta(-z) (linear, ReLU, leaky ReLU).

    With sigma = a_- z + (a_+ - a_-) relu(z), E[u relu(v)] = K_12 / 2 and the arc-cosine
    kernels of Cho and Saul (NIPS 2009), theta = arccos c:
    E[relu(u) relu(v)] = sqrt(K_11 K_22) (sin theta + (pi - theta) cos theta) / (2 pi),
    E[theta(u) theta(v)] = (pi - theta) / (2 pi).
    """
    am = 1.0 if act.code == 0 else (act.slope if act.code == 2 else 0.0)
    d = 1.0 - am
    s = np.sqrt(K11 * K22)
    c = np.clip(K12 / s, -1.0, 1.0)
    th = np.arccos(c)
    j1 = s * (np.sqrt(np.maximum(1.0 - c * c, 0.0)) + (np.pi - th) * c) / (2.0 * np.pi)
    j0 = (np.pi - th) / (2.0 * np.pi)
    return am * am * K12 + am * d * K12 + d * d * j1, am * am + am * d + d * d * j0


def pair_moments(activation, K11, K22, K12, rtol=1e-9):
    """E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)] for arrays of covariances (module docstring).

    Returns two arrays of the broadcast shape. Raises NumericalError when an
    expectation cannot be computed (overflow).
    """
    act = get_activation(activation)
    K11, K22, K12 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (K11, K22, K12)))
    shape = K11.shape
    K11, K22, K12 = K11.ravel(), K22.ravel(), K12.ravel()
    if not (np.isfinite(K11).all() and np.isfinite(K22).all() and np.isfinite(K12).all()):
        raise NumericalError("pair_moments: non-finite kernel (overflow in the kernel recursion)")
    if (K11 <= 0).any() or (K22 <= 0).any():
        raise NumericalError("pair_moments: a location has zero kernel variance")
    ss, tt = np.empty(K11.size), np.empty(K11.size)
    diag = (K11 == K22) & (K12 == K11)
    zero = (K12 == 0.0) & ~diag
    rest = ~(diag | zero)
    if diag.any():
        qs, inv = np.unique(K11[diag], return_inverse=True)
        m = gauss.expect_monomials(act, qs, [_S2, _T2])
        ss[diag], tt[diag] = m[0][inv], m[1][inv]
    if zero.any():
        qs, inv = np.unique(np.concatenate([K11[zero], K22[zero]]), return_inverse=True)
        m = gauss.expect_monomials(act, qs, [_S1, _T1])
        n = zero.sum()
        i1, i2 = inv[:n], inv[n:]
        ss[zero], tt[zero] = m[0][i1] * m[0][i2], m[1][i1] * m[1][i2]
    if rest.any():
        trip = np.stack([K11[rest], K22[rest], K12[rest]], axis=1)
        uq, inv = np.unique(trip, axis=0, return_inverse=True)
        if act.code in (0, 1, 2):
            a, b = _piecewise_linear(act, uq[:, 0], uq[:, 1], uq[:, 2])
        else:
            a, b = _generic(act, uq[:, 0], uq[:, 1], uq[:, 2], rtol)
        inv = inv.ravel()
        ss[rest], tt[rest] = a[inv], b[inv]
    if not (np.isfinite(ss).all() and np.isfinite(tt).all()):
        raise NumericalError("pair_moments: non-finite expectation (overflow)")
    return ss.reshape(shape), tt.reshape(shape)


def pair_matrix(activation, K, rtol=1e-9):
    """The matrices E[sigma(z_i) sigma(z_j)] and E[sigma'(z_i) sigma'(z_j)] for a kernel matrix K.

    Only the upper triangle is integrated (symmetry), with identical
    covariance triples integrated once (:func:`pair_moments`).
    """
    K = np.asarray(K, dtype=float)
    n = K.shape[0]
    iu, ju = np.triu_indices(n)
    d = np.diag(K)
    a, b = d[iu], d[ju]
    # order the two variances so that the pair (i, j) and (j, i) share a triple
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ss, tt = pair_moments(activation, lo, hi, K[iu, ju], rtol=rtol)
    S, T = np.empty((n, n)), np.empty((n, n))
    S[iu, ju], T[iu, ju] = ss, tt
    S[ju, iu], T[ju, iu] = ss, tt
    return S, T
