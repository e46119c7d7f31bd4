r"""Gaussian expectations <f(z)>_K, their K-derivatives, and m-input versions.

Notation of PDLT (arXiv:2106.10165) eq. (4.25); see docs/conventions.md, "Gaussian expectations":

.. math::

    \langle f \rangle_K = \int dz\, f(z)\, \frac{e^{-z^2/2K}}{\sqrt{2\pi K}}
                        = E[f(\sqrt{K} x)],\quad x \sim N(0, 1),

    \partial_K \langle f\rangle_K = \frac{\langle f\,(z^2-K)\rangle_K}{2K^2}
                                  = \frac{E[f\,(x^2-1)]}{2K},\qquad
    \partial_K^2 \langle f\rangle_K = \frac{\langle f\,(z^4-6Kz^2+3K^2)\rangle_K}{4K^4}
                                    = \frac{E[f\,(x^4-6x^2+3)]}{4K^2}.

The K-derivatives use these Hermite weights, never derivatives of f, so they
hold for piecewise activations (ReLU) as well.

Quadrature (float64 path)
-------------------------
Integrals are taken in the standardized variable x = z / sqrt(K) and split at
x = 0 and at every kink k / sqrt(K) of the integrand:

* the two outer pieces (-inf, b_min] and [b_max, inf) use *half-range*
  Gauss-Hermite rules (weight exp(-t^2/2) on [0, inf), shifted to the
  breakpoint). These are exact for polynomials on each side, so ReLU-type
  (piecewise-polynomial) integrands are integrated exactly, and splitting at 0
  also resolves the scale-1/sqrt(K) structure of smooth activations at large K;
* pieces between breakpoints use Gauss-Legendre rules (breakpoints clipped to
  |x| <= 10, beyond which the Gaussian weight is < 2e-22).

Every value comes with an error estimate, |I_hi - I_lo| for two rules of
different order; it is accepted when it is <= rtol * <|f w|> (the integral of
the absolute integrand times the Hermite weight w). Three rule levels
(half-range orders 32/48, 64/96, 128/192) are tried in turn for the K values
that have not converged; what is still left goes to an adaptive composite
Gauss-Legendre scheme, and failing that :class:`~fwtheory.errors.NumericalError`
is raised. Cost: one evaluation of the activation on a (len(K), 160) grid for
the first level; error decreases geometrically with the order for analytic
integrands, the rate set by the distance of the nearest complex singularity
of f(sqrt(K) x) to the real axis (~1/sqrt(K)), which is why larger K needs the
higher levels.

Large K arrays are processed in blocks of 64 values (small temporaries);
results of :func:`expect_monomials` are cached on (activation, K, powers, dk)
and node tables by order. :func:`expect_multi` handles m <= 4 correlated
inputs by nested conditional 1-D rules of the same kind. The high-precision
oracle :func:`expect_monomials_mp` integrates the same monomials with
``mpmath.quad`` (split at 0 and the kinks) in a local ``mpmath.workdps``
context.
"""

__all__ = [
    "expect",
    "expect_monomials",
    "expect_monomials_mp",
    "expect_multi",
    "expect_multi_relaxed",
    "pair_moments",
    "half_hermite_rule",
    "clear_cache",
]

import math
import numbers
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from .activations import get_activation
from .errors import NumericalError, ParameterError, check_real

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CLIP = 10.0  # breakpoints are clipped to |x| <= 10: phi(10)/phi(0) = 2e-22
_HALF_LEVELS = ((32, 48), (64, 96), (128, 192))  # half-range Gauss-Hermite (lo, hi)
_GL_LEVELS = ((24, 32), (40, 56), (64, 96))  # Gauss-Legendre (lo, hi) between breakpoints
_ADAPTIVE_GL = (12, 24)
_ADAPTIVE_MAX_PANELS = 4000
_ADAPTIVE_MAX_ITER = 60
DEFAULT_RTOL = 1e-12
_NUMPY_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")


# ------------------------------------------------------------------ rules
@lru_cache(maxsize=None)
def _half_hermite_recurrence(n):
    """Recurrence coefficients (alpha_k, beta_k), k < n, of the monic
    orthogonal polynomials for phi(t) = exp(-t^2/2)/sqrt(2 pi) on [0, inf).

    Discretized Stieltjes procedure (Gautschi, *Orthogonal Polynomials:
    Computation and Approximation*, Sec. 2.2.3) on a composite 30-point
    Gauss-Legendre discretization of [0, 45] with panels of width 1/4; this
    is accurate to rounding for n <= 200 (the largest node is ~31).
    """
    g, gw = np.polynomial.legendre.leggauss(30)
    edges = np.arange(0.0, 45.0 + 0.125, 0.25)
    a, b = edges[:-1, None], edges[1:, None]
    t = (a + b) / 2 + (b - a) / 2 * g
    w = ((b - a) / 2 * gw * np.exp(-0.5 * t * t) * _INV_SQRT_2PI).ravel()
    t = t.ravel()
    # propagate v_k = sqrt(w) p_k (p_k orthonormal): bounded, so no overflow
    sw = np.sqrt(w)
    alpha = np.zeros(n)
    beta = np.zeros(n)
    beta[0] = w.sum()
    v_prev = np.zeros_like(t)
    v = sw / math.sqrt(beta[0])
    for k in range(n):
        alpha[k] = np.dot(t, v * v)
        q = (t - alpha[k]) * v
        if k > 0:
            q -= math.sqrt(beta[k]) * v_prev
        if k + 1 < n:
            beta[k + 1] = np.dot(q, q)
            v_prev, v = v, q / math.sqrt(beta[k + 1])
    return alpha, beta


@lru_cache(maxsize=None)
def half_hermite_rule(n):
    """Nodes t and weights w of the n-point Gauss rule for
    ``integral_0^inf g(t) exp(-t^2/2) / sqrt(2 pi) dt`` (weights sum to 1/2).

    Exact for polynomials of degree <= 2n - 1. Golub-Welsch eigenvalues,
    refined by two Newton steps on the orthonormal recurrence; the weights
    are Christoffel numbers 1 / sum_k p_k(t)^2, which keeps the small weights
    of the outer nodes accurate to rounding (relative).
    """
    n = int(n)
    if n < 1:
        raise ParameterError("n", f"must be an integer >= 1, got {n}")
    alpha, beta = _half_hermite_recurrence(n + 1)
    sb = np.sqrt(beta[1:])
    jac = np.diag(alpha[:n]) + np.diag(sb[:n - 1], 1) + np.diag(sb[:n - 1], -1)
    x = np.linalg.eigvalsh(jac)
    for _ in range(2):
        p_prev, dp_prev = np.zeros(n), np.zeros(n)
        p, dp = np.full(n, 1.0 / math.sqrt(beta[0])), np.zeros(n)
        for k in range(n):
            bk = math.sqrt(beta[k]) if k > 0 else 0.0
            p_next = ((x - alpha[k]) * p - bk * p_prev) / sb[k]
            dp_next = (p + (x - alpha[k]) * dp - bk * dp_prev) / sb[k]
            p_prev, dp_prev, p, dp = p, dp, p_next, dp_next
        x = x - p / dp  # Newton step on the orthonormal p_n
    # weights from the final (refined) nodes
    p_prev = np.zeros(n)
    p = np.full(n, 1.0 / math.sqrt(beta[0]))
    total = p * p
    for k in range(n - 1):
        bk = math.sqrt(beta[k]) if k > 0 else 0.0
        p_prev, p = p, ((x - alpha[k]) * p - bk * p_prev) / sb[k]
        total = total + p * p
    w = 1.0 / total
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


@lru_cache(maxsize=None)
def _legendre(n):
    x, w = np.polynomial.legendre.leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def _hermite_weight(dk, x):
    """Standardized Hermite weight of d^dk/dK^dk (times K^dk); docs/conventions.md."""
    if dk == 0:
        return np.ones_like(x)
    x2 = x * x
    if dk == 1:
        return 0.5 * (x2 - 1.0)
    return 0.25 * ((x2 - 6.0) * x2 + 3.0)


def _segment_rule(bpts, n_half, n_gl):
    """Quadrature for E[g(x)], x ~ N(0,1), split at sorted breakpoints.

    ``bpts``: (R, q) rows of sorted breakpoints with bpts[:, 0] <= 0 <=
    bpts[:, -1] and |bpts| <= _CLIP. Returns nodes and weights of shape (R, N).
    """
    t, wt = half_hermite_rule(n_half)
    lo, hi = bpts[:, :1], bpts[:, -1:]
    # phi(b + t) = phi(t) exp(-b t - b^2/2): the outer pieces decay (b_lo <= 0 <= b_hi)
    xs = [lo - t, hi + t]
    ws = [wt * np.exp(lo * t - 0.5 * lo * lo), wt * np.exp(-hi * t - 0.5 * hi * hi)]
    if bpts.shape[1] > 1:
        g, gw = _legendre(n_gl)
        a, b = bpts[:, :-1, None], bpts[:, 1:, None]
        x = 0.5 * (a + b) + 0.5 * (b - a) * g
        w = 0.5 * (b - a) * gw * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
        xs.append(x.reshape(len(bpts), -1))
        ws.append(w.reshape(len(bpts), -1))
    w = np.concatenate(ws, axis=1)
    w[w < 1e-280] = 0.0  # flush subnormal weights (slow arithmetic; contribute < 1e-280)
    return np.concatenate(xs, axis=1), w


def _breakpoints(kinks, sqrt_k):
    """Sorted standardized breakpoints {0} U {k / sqrt(K)}, clipped to |x| <= _CLIP,
    as an array (len(sqrt_k), 1 + len(kinks))."""
    kk = np.asarray(kinks, dtype=float)
    b = np.concatenate([np.zeros((len(sqrt_k), 1)), kk[None, :] / sqrt_k[:, None]], axis=1)
    return np.clip(np.sort(b, axis=1), -_CLIP, _CLIP)


@lru_cache(maxsize=None)
def _symmetric_table(level, dks):
    """Node/weight tables for integrands whose only kink is at 0 (K-independent).

    Returns (x (N,), W (N, 2*len(dks)) with columns [lo_dk, hi_dk]..., |W_hi| (N, len(dks))).
    """
    n_lo, n_hi = _HALF_LEVELS[level]
    x_lo, w_lo = _segment_rule(np.zeros((1, 1)), n_lo, 1)
    x_hi, w_hi = _segment_rule(np.zeros((1, 1)), n_hi, 1)
    x = np.concatenate([x_lo[0], x_hi[0]])
    cols, abs_cols = [], []
    for dk in dks:
        h = _hermite_weight(dk, x)
        wl = np.concatenate([w_lo[0], np.zeros(x_hi.shape[1])]) * h
        wh = np.concatenate([np.zeros(x_lo.shape[1]), w_hi[0]]) * h
        cols += [wl, wh]
        abs_cols.append(np.abs(wh))
    tables = (x, np.stack(cols, axis=1), np.stack(abs_cols, axis=1))
    for a in tables:
        a.setflags(write=False)
    return tables


def _kinked_table(kinks, sqrt_k, level):
    """Per-K node/weight tables (K-dependent breakpoints): x (R, N), w_lo, w_hi (R, N)."""
    bpts = _breakpoints(kinks, sqrt_k)
    (h_lo, h_hi), (g_lo, g_hi) = _HALF_LEVELS[level], _GL_LEVELS[level]
    x_lo, w_lo = _segment_rule(bpts, h_lo, g_lo)
    x_hi, w_hi = _segment_rule(bpts, h_hi, g_hi)
    x = np.concatenate([x_lo, x_hi], axis=1)
    zl, zh = np.zeros_like(x_hi), np.zeros_like(x_lo)
    return x, np.concatenate([w_lo, zl], axis=1), np.concatenate([zh, w_hi], axis=1)


# ------------------------------------------------------------------ 1-D engine
_EMPTY_INDEX = np.zeros(0, dtype=np.int64)
_CHUNK_K = 64  # K values per block of the vectorized engine


def _only_zero_kink(kinks):
    return all(k == 0.0 for k in kinks)


def _integrate_1d(evaluate, K, kinks, dks, rtol, label):
    """Core 1-D engine (inputs already validated; kept lean for the per-layer loop).

    ``evaluate(z)`` maps a 2-D array z to an array (M,) + z.shape. ``K``: 1-D
    float array (> 0); ``dks``: tuple of K-derivative orders; ``label()``
    returns the description used in error messages. Returns ``value, error``
    of shape (M, len(K), len(dks)) and ``level`` (len(K),): index of the rule
    level used (len(_HALF_LEVELS) for the adaptive scheme).
    """
    nK = K.shape[0]
    if nK > _CHUNK_K:
        # Blocks of K keep the (K x nodes) temporaries small (~100 kB): they stay in
        # cache and are recycled by the allocator instead of being mapped afresh
        # (page faults made a 1000-K call 3-10x slower than 16 blocks of 64).
        parts = [_integrate_1d(evaluate, K[a:a + _CHUNK_K], kinks, dks, rtol, label)
                 for a in range(0, nK, _CHUNK_K)]
        return tuple(np.concatenate([p[i] for p in parts], axis=1 if i < 2 else 0) for i in range(3))
    sqrt_k = np.sqrt(K)
    symmetric = _only_zero_kink(kinks)
    value = err = level = None
    todo = None  # indices into K still to do (None: all)
    for lev in range(len(_HALF_LEVELS)):
        s = sqrt_k if todo is None else sqrt_k[todo]
        with np.errstate(**_NUMPY_QUIET):
            if symmetric:
                x, wmat, wabs = _symmetric_table(lev, dks)
                f = evaluate(s[:, None] * x)  # (M, R, N)
                ints = f @ wmat  # (M, R, 2 ndk): lo, hi per dk
                lo, hi = ints[..., 0::2], ints[..., 1::2]
                scale = np.abs(f) @ wabs  # (M, R, ndk)
            else:
                x, w_lo, w_hi = _kinked_table(kinks, s, lev)
                f = evaluate(s[:, None] * x)
                los, his, scs = [], [], []
                for dk in dks:
                    h = _hermite_weight(dk, x)
                    los.append(np.sum(f * (w_lo * h), axis=-1))
                    fh = f * (w_hi * h)
                    his.append(np.sum(fh, axis=-1))
                    scs.append(np.sum(np.abs(fh), axis=-1))
                lo, hi, scale = (np.stack(v, axis=-1) for v in (los, his, scs))
            e = np.abs(hi - lo)
            excess = e - rtol * scale  # NaN (never <= 0) on overflow: inf - inf, 0 * inf
            converged = excess.max() <= 0.0
        if converged and todo is None:  # the common case: everything converged at once
            value, err = hi, e
            level = np.full(nK, lev, dtype=np.int64)
            todo = _EMPTY_INDEX
            break
        ok = (excess <= 0.0).all(axis=(0, 2))
        if not converged:
            bad = ~(np.isfinite(e) & np.isfinite(scale)).all(axis=(0, 2))
            if bad.any():
                kbad = K[np.nonzero(bad)[0][0] if todo is None else todo[np.nonzero(bad)[0][0]]]
                raise NumericalError(
                    f"{label()}: non-finite integrand (overflow or NaN) at K = {kbad:.6g}")
        if value is None:
            value = np.empty((f.shape[0], nK, len(dks)))
            err = np.empty_like(value)
            level = np.full(nK, -1, dtype=np.int64)
            todo = np.arange(nK)
        idx = todo[ok]
        value[:, idx] = hi[:, ok]
        err[:, idx] = e[:, ok]
        level[idx] = lev
        todo = todo[~ok]
        if todo.size == 0:
            break
    for i in todo:
        v, ee = _adaptive_1d(evaluate, float(K[i]), kinks, dks, rtol, label)
        value[:, i] = v
        err[:, i] = ee
        level[i] = len(_HALF_LEVELS)
    if any(dks):
        value = value.copy() if value is hi else value
        err = err.copy() if err is e else err
        with np.errstate(**_NUMPY_QUIET):
            for d, dk in enumerate(dks):
                if dk:
                    factor = K ** (-dk)
                    value[:, :, d] *= factor
                    err[:, :, d] *= factor
        if not math.isfinite(float(value.sum() + err.sum())):
            raise NumericalError(f"{label()}: overflow in the K-derivative factor K^-dk (K too small?)")
    return value, err, level


def _adaptive_1d(evaluate, K, kinks, dks, rtol, label):
    """Adaptive composite Gauss-Legendre on [-10, 10] (standardized x), split
    at 0 and the kinks, with half-range Gauss-Hermite tails beyond +-10.
    Panels are bisected until the summed |I_24 - I_12| is <= rtol * <|f w|>."""
    s = math.sqrt(K)
    ndk = len(dks)
    bk = [k / s for k in kinks if abs(k / s) < _CLIP]
    edges = np.unique(np.concatenate([np.linspace(-_CLIP, _CLIP, 41), [0.0], bk]))
    panels = np.stack([edges[:-1], edges[1:]], axis=1)
    (n_lo, n_hi) = _ADAPTIVE_GL
    g_lo, w_lo = _legendre(n_lo)
    g_hi, w_hi = _legendre(n_hi)
    g_all = np.concatenate([g_lo, g_hi])

    def panel_integrals(p):
        a, b = p[:, :1], p[:, 1:]
        x = 0.5 * (a + b) + 0.5 * (b - a) * g_all  # (P, n_lo + n_hi)
        phi = np.exp(-0.5 * x * x) * _INV_SQRT_2PI * (0.5 * (b - a))
        f = evaluate(s * x)  # (M, P, N)
        lo, hi, sc = [], [], []
        for dk in dks:
            fw = f * (phi * _hermite_weight(dk, x))
            lo.append(fw[..., :n_lo] @ w_lo)
            hi.append(fw[..., n_lo:] @ w_hi)
            sc.append(np.abs(fw[..., n_lo:]) @ w_hi)
        return np.stack(lo), np.stack(hi), np.stack(sc)  # (ndk, M, P)

    with np.errstate(**_NUMPY_QUIET):
        # tails |x| > _CLIP: shifted half-range rules (32 vs 48 nodes), weight
        # phi(_CLIP + t) = phi(t) exp(-_CLIP t - _CLIP^2/2)
        tails = []
        for n in (32, 48):
            t, wt = half_hermite_rule(n)
            x = np.concatenate([-_CLIP - t, _CLIP + t])
            w = np.concatenate([wt, wt]) * np.exp(-_CLIP * np.concatenate([t, t]) - 0.5 * _CLIP ** 2)
            tails.append((x, w, evaluate(s * x)))
        (x_l, w_l, f_l), (x_h, w_h, f_h) = tails
        t_val, t_err, t_sc = (np.empty((ndk, f_h.shape[0])) for _ in range(3))
        for d, dk in enumerate(dks):
            wh = w_h * _hermite_weight(dk, x_h)
            t_val[d] = f_h @ wh
            t_err[d] = np.abs(t_val[d] - f_l @ (w_l * _hermite_weight(dk, x_l)))
            t_sc[d] = np.abs(f_h) @ np.abs(wh)
        lo, hi, sc = panel_integrals(panels)
        for _ in range(_ADAPTIVE_MAX_ITER):
            if not (np.isfinite(hi).all() and np.isfinite(lo).all() and np.isfinite(t_val).all()):
                raise NumericalError(f"{label()}: non-finite integrand (overflow or NaN) at K = {K:.6g}")
            e = np.abs(hi - lo)
            scale = sc.sum(axis=-1) + t_sc  # (ndk, M)
            tol = rtol * scale
            total = e.sum(axis=-1) + t_err
            if (total <= tol).all():
                return (hi.sum(axis=-1) + t_val).T, total.T  # (M, ndk)
            npan = panels.shape[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(tol[..., None] > 0, e / tol[..., None], np.where(e > 0, np.inf, 0.0))
            mark = ratio.max(axis=(0, 1)) > 1.0 / npan
            if not mark.any() or npan + mark.sum() > _ADAPTIVE_MAX_PANELS:
                break
            p = panels[mark]
            mid = 0.5 * (p[:, 0] + p[:, 1])
            new = np.concatenate([np.stack([p[:, 0], mid], 1), np.stack([mid, p[:, 1]], 1)])
            nlo, nhi, nsc = panel_integrals(new)
            keep = ~mark
            panels = np.concatenate([panels[keep], new])
            lo = np.concatenate([lo[..., keep], nlo], axis=-1)
            hi = np.concatenate([hi[..., keep], nhi], axis=-1)
            sc = np.concatenate([sc[..., keep], nsc], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        achieved = float(np.max(total / np.where(scale > 0, scale, 1.0)))
    raise NumericalError(
        f"{label()}: quadrature did not converge at K = {K:.6g} (estimated relative error "
        f"{achieved:.2g} > rtol = {rtol:.2g} after {panels.shape[0]} adaptive panels)")


# ------------------------------------------------------------------ validation
def _check_k(K):
    """Return (1-D float array, was_scalar); K must be finite and > 0."""
    if type(K) is float or type(K) is int:  # fast path for plain scalars
        if math.isfinite(K) and K > 0:
            return np.array([float(K)]), True
        raise ParameterError("K", f"must be finite and > 0, got {K}")
    try:
        arr = np.asarray(K, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("K", f"must be a positive finite number or 1-D array, got {K!r}") from None
    if arr.ndim > 1:
        raise ParameterError("K", f"must be a scalar or a 1-D array, got shape {arr.shape}")
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ParameterError("K", "must not be empty")
    good = (arr > 0) & np.isfinite(arr)
    if not good.all():
        raise ParameterError("K", f"must be finite and > 0, got {arr[~good][0]}")
    return arr, scalar


_VALID_POWERS = {}


def _check_powers(powers):
    """Validate a sequence of 5-tuples of integers >= 0; return a tuple of tuples."""
    try:
        key = tuple(map(tuple, powers))
        hit = _VALID_POWERS.get(key)
    except TypeError:
        key = hit = None
    if hit is not None:
        return hit
    out = []
    try:
        for p in powers:
            t = tuple(p)
            if len(t) != 5 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                      and v >= 0 for v in t):
                raise ValueError
            out.append(tuple(int(v) for v in t))
    except (TypeError, ValueError):
        raise ParameterError(
            "powers", "must be a sequence of 5-tuples (a, b, c, e, d) of integers >= 0 for "
            f"sigma^a sigma'^b sigma''^c sigma'''^e z^d, got {powers!r}") from None
    if not out:
        raise ParameterError("powers", "must contain at least one 5-tuple")
    out = tuple(out)
    if key is not None and len(_VALID_POWERS) < 4096:
        _VALID_POWERS[key] = out
    return out


def _check_dk(dk):
    if type(dk) is int and 0 <= dk <= 2:
        return dk
    if isinstance(dk, bool) or not isinstance(dk, numbers.Integral) or dk not in (0, 1, 2):
        raise ParameterError("dk", f"must be 0, 1 or 2 (order of the K-derivative), got {dk!r}")
    return int(dk)


def _check_kinks(kinks):
    try:
        ks = tuple(sorted(float(k) for k in kinks))
    except (TypeError, ValueError):
        raise ParameterError("kinks", f"must be a sequence of finite numbers, got {kinks!r}") from None
    if not all(math.isfinite(k) for k in ks):
        raise ParameterError("kinks", f"must be finite, got {kinks!r}")
    return ks


def _check_rtol(rtol):
    return check_real("rtol", rtol, lower=1e-15, upper=0.1, allowed="in [1e-15, 0.1]")


# ------------------------------------------------------------------ monomials
@lru_cache(maxsize=256)
def _monomial_evaluator(activation, powers):
    """evaluate(z) -> (M,) + z.shape array of sigma^a sigma'^b sigma''^c sigma'''^e z^d
    (cached per (activation, powers))."""
    order = max((k for p in powers for k in range(4) if p[k]), default=-1)
    needed = sorted({(k, e) for p in powers for k, e in enumerate(p) if e})
    plan = [tuple((k, e) for k, e in enumerate(p) if e) for p in powers]
    derivatives = activation.derivatives
    M = len(plan)

    def evaluate(z):
        d = derivatives(z, order) if order >= 0 else None
        pw = {}
        for k, e in needed:
            base = z if k == 4 else d[k]
            pw[k, e] = base if e == 1 else (base * base if e == 2 else base ** e)
        out = np.empty((M,) + z.shape)
        for i, factors in enumerate(plan):
            if not factors:
                out[i] = 1.0
            elif len(factors) == 1:
                out[i] = pw[factors[0]]
            else:
                np.multiply(pw[factors[0]], pw[factors[1]], out=out[i])
                for key in factors[2:]:
                    out[i] *= pw[key]
        return out

    return evaluate


def _label(activation, powers, dk):
    names = ("sigma", "sigma'", "sigma''", "sigma'''", "z")
    mono = [" ".join(f"{n}^{e}" if e > 1 else n for n, e in zip(names, p) if e) or "1"
            for p in powers]
    pre = {0: "", 1: "d/dK ", 2: "d^2/dK^2 "}[dk]
    return f"{pre}<{' | '.join(mono)}>_K for activation {activation.name}"


class _LRU(OrderedDict):
    def __init__(self, maxsize):
        super().__init__()
        self.maxsize = maxsize

    def get_item(self, key):
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            return None

    def put(self, key, value):
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)


_RESULTS = _LRU(2048)


def clear_cache():
    """Drop the cached expectation results (quadrature node tables are kept)."""
    _RESULTS.clear()


def _monomials(activation, K, powers, dks, rtol=DEFAULT_RTOL):
    """Internal fast path: validated Activation, 1-D float K (> 0), tuple of
    5-tuples, tuple of dks. Returns value, error (len(dks), M, len(K)) and the
    rule level per K (see :func:`_integrate_1d`). Not cached."""
    return _integrate_1d(_monomial_evaluator(activation, powers), K, activation.kinks, dks, rtol,
                         lambda: _label(activation, powers, dks[0] if len(dks) == 1 else 0))


def expect_monomials(activation, K, powers, dk=0, full_output=False):
    r"""Gaussian expectations of monomials in sigma, its derivatives and z.

    Returns :math:`\partial_K^{dk}\langle \sigma^a\sigma'^b\sigma''^c\sigma'''^e z^d\rangle_K`
    (docs/conventions.md, "Gaussian expectations") for every 5-tuple ``(a, b, c, e, d)`` in
    ``powers`` and every K. The K-derivatives use the Hermite weights
    (z^2-K)/(2K^2) and (z^4-6Kz^2+3K^2)/(4K^4), not derivatives of sigma,
    so they are valid for ReLU-type activations.

    Parameters
    ----------
    activation : Activation or str
    K : float or 1-D array of floats, each finite and > 0
    powers : sequence of 5-tuples of non-negative integers
    dk : {0, 1, 2}
        Order of the K-derivative.
    full_output : bool
        Also return the error estimates (same shape as the values).

    Returns
    -------
    ndarray, float64, shape ``(len(powers), len(K))`` (``(len(powers),)`` for scalar K);
    with ``full_output``, the tuple ``(values, errors)``.

    Relative accuracy 1e-12 with respect to <|monomial * weight|>; kinks
    integrated exactly (module docstring). Results are cached on
    (activation, K, powers, dk).

    Raises
    ------
    ParameterError
        K not finite or <= 0, malformed powers or dk.
    NumericalError
        Overflow, or the requested accuracy was not reached.
    """
    act = get_activation(activation)
    Karr, scalar = _check_k(K)
    powers = _check_powers(powers)
    dk = _check_dk(dk)
    key = (act, dk, powers, Karr.tobytes())
    hit = _RESULTS.get_item(key)
    if hit is None:
        value, err, _ = _integrate_1d(_monomial_evaluator(act, powers), Karr, act.kinks, (dk,),
                                      DEFAULT_RTOL, lambda: _label(act, powers, dk))
        hit = (value[..., 0], err[..., 0])
        _RESULTS.put(key, hit)
    value, err = hit[0].copy(), hit[1].copy()
    if scalar:
        value, err = value[:, 0], err[:, 0]
    return (value, err) if full_output else value


def expect(f, K, kinks=(), rtol=DEFAULT_RTOL, full_output=False):
    r"""<f(z)>_K for a vectorized callable f (PDLT eq. (4.25), single input).

    Parameters
    ----------
    f : callable
        ``f(z)`` for a float array z returns an array broadcastable to z.shape.
    K : float or 1-D array, finite and > 0
    kinks : sequence of float
        Points where f or a derivative jumps; integrals are split there (0 is
        always a split point).
    rtol : float
        Target relative error with respect to <|f|>_K.
    full_output : bool
        Return ``(value, error_estimate)``.

    Returns a float (scalar K) or an array of shape (len(K),). Not cached.
    """
    if not callable(f):
        raise ParameterError("f", f"must be a callable f(z), got {f!r}")
    Karr, scalar = _check_k(K)
    ks = _check_kinks(kinks)
    rtol = _check_rtol(rtol)

    def evaluate(z):
        return np.broadcast_to(np.asarray(f(z), dtype=float), z.shape)[None]

    value, err, _ = _integrate_1d(evaluate, Karr, ks, (0,), rtol, lambda: f"<f>_K for f = {f!r}")
    value, err = value[0, :, 0], err[0, :, 0]
    if scalar:
        value, err = float(value[0]), float(err[0])
    return (value, err) if full_output else value


# ------------------------------------------------------------------ mpmath oracle
def _check_k_mp(K):
    """K (number, mpf, or 1-D sequence of them) as a list of mpf at the current
    precision (no rounding through float64), and whether K was a scalar."""
    import mpmath

    scalar = not isinstance(K, (list, tuple, np.ndarray))
    if isinstance(K, np.ndarray) and K.ndim > 1:
        raise ParameterError("K", f"must be a scalar or a 1-D array, got shape {K.shape}")
    items = [K] if scalar else list(np.ravel(np.asarray(K, dtype=object)))
    if not items:
        raise ParameterError("K", "must not be empty")
    out = []
    for k in items:
        try:
            km = mpmath.mpf(k)
        except (TypeError, ValueError):
            raise ParameterError("K", f"must be a positive finite number, got {k!r}") from None
        if not (mpmath.isfinite(km) and km > 0):
            raise ParameterError("K", f"must be finite and > 0, got {k}")
        out.append(km)
    return out, scalar


def _abs_scale(act, K, power, dk):
    """<|monomial * Hermite weight|>_K in float64 (the oracle's error yardstick)."""
    ev = _monomial_evaluator(act, (power,))

    def f(z):
        return np.abs(ev(z)[0] * _hermite_weight(dk, z / math.sqrt(K))) / K ** dk

    try:
        return float(expect(f, K, kinks=act.kinks, rtol=1e-6))
    except NumericalError:
        return 0.0


def expect_monomials_mp(activation, K, powers, dk=0, dps=30):
    """High-precision oracle for :func:`expect_monomials` (mpmath).

    ``mpmath.quad`` (tanh-sinh) over the real line split at 0, the kinks and
    +-sqrt(K) * (1, 4), inside ``mpmath.workdps(dps + 15)`` (the
    global precision is never changed). K may be given as mpf (kept at full
    precision) or floats. K-derivatives use the same Hermite
    weights as the float64 path. Returns a nested list ``[power][K]`` of
    ``mpmath.mpf`` (``[power]`` for scalar K). Raises NumericalError when
    the quadrature error estimate exceeds 10^(5 - dps) relative to
    <|integrand|> (a float64 estimate, used only as the yardstick) and
    100 eps of the working precision.
    """
    import mpmath

    act = get_activation(activation)
    powers = _check_powers(powers)
    dk = _check_dk(dk)
    dps = int(check_real("dps", dps, lower=15, upper=1000))
    with mpmath.workdps(dps + 15):
        Kmp, scalar = _check_k_mp(K)
        out = [[None] * len(Kmp) for _ in powers]
        funcs = [act.mp_derivative(k) for k in range(4)]
        for j, Km in enumerate(Kmp):
            kval = float(Km)
            s = mpmath.sqrt(Km)
            norm = 1 / mpmath.sqrt(2 * mpmath.pi * Km)
            pts = {mpmath.mpf(0)} | {mpmath.mpf(k) for k in act.kinks}
            for c in (1, 4):
                pts |= {c * s, -c * s}
            for k in act.kinks:  # far kinks: the Gaussian tail beyond decays on the scale K/|k|
                if k != 0:
                    h = min(s, Km / abs(mpmath.mpf(k)))
                    pts |= {k + c * h for c in (-4, -1, 1, 4)}
            pts = [-mpmath.inf] + sorted(pts) + [mpmath.inf]

            def hermite(z):
                if dk == 0:
                    return 1
                if dk == 1:
                    return (z * z - Km) / (2 * Km ** 2)
                return (z ** 4 - 6 * Km * z * z + 3 * Km ** 2) / (4 * Km ** 4)

            for i, p in enumerate(powers):
                def integrand(z, p=p):
                    v = mpmath.mpf(1)
                    for k in range(4):
                        if p[k]:
                            v *= funcs[k](z) ** p[k]
                    if p[4]:
                        v *= z ** p[4]
                    return v * hermite(z) * mpmath.exp(-z * z / (2 * Km)) * norm

                val, e = mpmath.quad(integrand, pts, error=True, maxdegree=10)
                scale = _abs_scale(act, kval, p, dk)  # <|f w|>, float64: only sets the tolerance
                # relative to <|f w|>, with mpmath's absolute error floor (~eps) allowed for
                # integrals that are tiny in absolute terms
                if not e <= max(mpmath.mpf(10) ** (5 - dps) * (scale + abs(val)), 100 * mpmath.eps):
                    raise NumericalError(
                        f"expect_monomials_mp: mpmath.quad error {mpmath.nstr(e, 3)} too large for "
                        f"{_label(act, (p,), dk)} at K = {float(kval):.6g}")
                out[i][j] = val
    if scalar:
        return [row[0] for row in out]
    return out


# ------------------------------------------------------------------ m inputs
# Ladder of (half-range Gauss-Hermite, Gauss-Legendre) orders per level; each
# estimate compares two consecutive rungs, and the ladder is climbed (reusing
# the previous rung) until the difference is below rtol or the point budget
# would be exceeded.
_MULTI_ORDERS = ((8, 8), (12, 10), (16, 14), (24, 20), (32, 28), (48, 40), (64, 56), (96, 80))
_MULTI_START = {1: 4, 2: 3, 3: 2, 4: 1}  # first "hi" rung per input count
_MULTI_MAX_POINTS = 2.5e7  # tensor-rule size limit (~ seconds of work)
_MULTI_CHUNK = 1 << 16  # points evaluated per call of f (bounds memory)
_GRADE = np.array([-6.0, -1.5, 0.0, 1.5, 6.0])  # mesh around a sharp smoothed kink, units of rho
MULTI_RTOL = 1e-10


def _pivoted_factor(cov):
    """cov = A A^T with A (m, r) from pivoted Cholesky; rank r drops directions
    whose residual variance is <= 1e-14 * max(diag) (degenerate inputs).

    Column j of A is the j-th independent standard normal u_j; ``level[i]`` is
    the last column on which coordinate i depends (its kinks move with u_level
    once u_1..u_{level-1} are fixed; later u's are integrated inside)."""
    m = cov.shape[0]
    resid = cov.astype(float).copy()
    A = np.zeros((m, m))
    tiny = 1e-14 * max(float(np.max(np.diag(cov))), 0.0)
    cols = 0
    used = []
    for _ in range(m):
        d = np.diag(resid).copy()
        d[used] = -np.inf
        piv = int(np.argmax(d))
        if not d[piv] > tiny:
            break
        col = resid[:, piv] / math.sqrt(resid[piv, piv])
        col[used] = 0.0
        A[:, cols] = col
        resid = resid - np.outer(col, col)
        used.append(piv)
        cols += 1
    A = A[:, :cols]
    level = np.array([max((j for j in range(cols) if A[i, j] != 0.0), default=-1) for i in range(m)])
    return A, level


def _level_structure(A, level, n_kinks, j):
    """Rows whose kinks split level j, and the 'sharp' later rows (smoothed kink
    width rho < 1/2 in u_j units) around which the mesh is graded."""
    rows = np.nonzero(level == j)[0] if n_kinks else np.zeros(0, dtype=int)
    sharp, rho = np.zeros(0, dtype=int), np.zeros(0)
    later = np.nonzero((level > j) & (A[:, j] != 0.0))[0]
    if n_kinks and later.size:
        r = np.sqrt(np.sum(A[later, j + 1:] ** 2, axis=1)) / np.abs(A[later, j])
        sharp, rho = later[r < 0.5], r[r < 0.5]
    return rows, sharp, rho


def _level_nodes(A, level, n_kinks, j, n_half, n_gl):
    """Number of nodes of level j (fixed by the structure)."""
    rows, sharp, _ = _level_structure(A, level, n_kinks, j)
    n_bpts = 1 + n_kinks * (rows.size + sharp.size * _GRADE.size)
    return 2 * n_half + (n_bpts - 1) * n_gl


def _extend(pts, wts, A, level, kk, j, n_half, n_gl):
    """Add level j to a tensor rule: u_j integrated against N(0, 1), split at 0
    and at the conditional kink locations u_j = (k - sum_{i<j} A_ci u_i) / A_cj
    of the coordinates c that end at level j. Coordinates that still depend on
    later u's have their kinks smoothed by the inner integrals over a width rho
    (u_j units); when rho < 1/2 the mesh is graded around the smoothed kink."""
    rows, sharp, rho = _level_structure(A, level, kk.size, j)
    b = [np.zeros((len(pts), 1))]
    if rows.size:
        c = pts @ A[rows, :j].T  # (P, q)
        b.append(((kk[None, None, :] - c[:, :, None]) / A[rows, j][None, :, None])
                 .reshape(len(pts), -1))
    if sharp.size:
        c = pts @ A[sharp, :j].T
        center = (kk[None, None, :] - c[:, :, None]) / A[sharp, j][None, :, None]
        b.append((center[..., None] + rho[None, :, None, None] * _GRADE).reshape(len(pts), -1))
    bpts = np.clip(np.sort(np.concatenate(b, axis=1), axis=1), -_CLIP, _CLIP)
    x, w = _segment_rule(bpts, n_half, n_gl)  # (P, N)
    n = x.shape[1]
    pts = np.concatenate([np.repeat(pts, n, axis=0), x.reshape(-1, 1)], axis=1)
    wts = (wts[:, None] * w).ravel()
    wts[wts < 1e-280] = 0.0  # no subnormals (slow arithmetic)
    return pts, wts


def _multi_integrate(f, A, level, kk, n_half, n_gl, m):
    """Tensor-rule integral of f(A u), chunked over the outer nodes; returns
    (integral, integral of |f|) with the leading shape of f's output."""
    r = A.shape[1]
    if r == 0:  # zero covariance: a point mass at z = 0
        F = np.asarray(f(np.zeros((m, 1))), dtype=float)
        F = F[..., 0] if F.ndim else F
        return F, np.abs(F)
    pts, wts = _extend(np.zeros((1, 0)), np.ones(1), A, level, kk, 0, n_half, n_gl)
    inner = 1
    for j in range(1, r):
        inner *= _level_nodes(A, level, kk.size, j, n_half, n_gl)
    step = max(1, _MULTI_CHUNK // inner)
    total = scale = 0.0
    for start in range(0, len(pts), step):
        p, w = pts[start:start + step], wts[start:start + step]
        for j in range(1, r):
            p, w = _extend(p, w, A, level, kk, j, n_half, n_gl)
        F = np.asarray(f(A @ p.T), dtype=float)
        if F.shape[-1:] != w.shape:
            F = np.broadcast_to(F[..., None] if F.ndim == 0 else F, F.shape[:-1] + w.shape)
        # einsum, not BLAS: a threaded ddot on long vectors stalls on a loaded machine
        total = total + np.einsum("...n,n->...", F, w)
        scale = scale + np.einsum("...n,n->...", np.abs(F), w)
    return total, scale


def expect_multi(f, cov, kinks=(), rtol=MULTI_RTOL, full_output=False):
    r"""E[f(z)] for a centered Gaussian vector z in R^m, m <= 4, covariance ``cov``.

    Nested conditional 1-D integration: z = A u with u ~ N(0, I_r) from a
    pivoted Cholesky factorization (r = rank, so singular covariances such as
    identical inputs work). The integral over u_j, with u_1..u_{j-1} fixed, is
    split at 0 and at the conditional kink locations u_j = (k - sum_{i<j}
    A_{ci} u_i) / A_{cj} of every coordinate c whose last dependence is on u_j
    (half-range Gauss-Hermite on the outer pieces, Gauss-Legendre between), so
    kinks are integrated exactly; kinks smoothed by inner integrals over a
    narrow width (nearly degenerate inputs) get a graded mesh. Error estimate:
    the difference between two consecutive rungs of a ladder of rule orders,
    climbed until it is <= rtol * E[|f|]. Cost grows like (nodes per level)^r:
    ~10^4 points for m = 2, 10^6-10^7 for m = 4; NumericalError is raised when
    the next rung would exceed 2.5e7 points.

    Parameters
    ----------
    f : callable
        ``f(Z)`` with Z of shape (m, N) returns shape (N,) or (M, N).
    cov : (m, m) array, symmetric positive semi-definite, m <= 4
    kinks : sequence of float
        Kink points of f in each coordinate (e.g. ``activation.kinks``).
    rtol : float
        Target error relative to E[|f|].
    full_output : bool
        Also return the error estimate.

    Returns a float (or an (M,) array).
    """
    if not callable(f):
        raise ParameterError("f", f"must be a callable f(Z), got {f!r}")
    cov = _check_cov(cov)
    kk = np.asarray(_check_kinks(kinks), dtype=float)
    rtol = _check_rtol(rtol)
    m = cov.shape[0]
    A, level = _pivoted_factor(cov)

    def points(order):
        n = 1
        for j in range(A.shape[1]):
            n *= _level_nodes(A, level, kk.size, j, *order)
        return n

    k = _MULTI_START[m]
    with np.errstate(**_NUMPY_QUIET):
        prev, _ = _multi_integrate(f, A, level, kk, *_MULTI_ORDERS[k - 1], m)
        while True:
            value, scale = _multi_integrate(f, A, level, kk, *_MULTI_ORDERS[k], m)
            e = np.abs(value - prev)
            if not (np.all(np.isfinite(e)) and np.all(np.isfinite(scale))):
                raise NumericalError("expect_multi: non-finite integrand (overflow or NaN)")
            if np.all(e <= rtol * scale) or A.shape[1] == 0:
                break
            k += 1
            if k == len(_MULTI_ORDERS) or points(_MULTI_ORDERS[k]) > _MULTI_MAX_POINTS:
                achieved = float(np.max(e / np.where(scale > 0, scale, 1.0)))
                raise NumericalError(
                    f"expect_multi: quadrature did not converge for m = {m} (estimated relative "
                    f"error {achieved:.2g} > rtol = {rtol:.2g} within {_MULTI_MAX_POINTS:.3g} points); "
                    "declare the kinks of f, or ask for a larger rtol")
            prev = value
    if np.ndim(value) == 0:
        value, e = float(value), float(e)
    return (value, e) if full_output else value


def _check_cov(cov, name="cov"):
    """Validate a finite symmetric PSD (m, m) matrix, 1 <= m <= 4 (errors name ``name``)."""
    try:
        c = np.asarray(cov, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(name, f"must be a real (m, m) matrix, got {cov!r}") from None
    if c.ndim == 0:
        c = c.reshape(1, 1)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or not 1 <= c.shape[0] <= 4:
        raise ParameterError(name, f"must be a square (m, m) matrix with 1 <= m <= 4, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ParameterError(name, "must be finite (got NaN or inf)")
    scale = max(float(np.max(np.abs(c))), 1e-300)
    if np.max(np.abs(c - c.T)) > 1e-12 * scale:
        raise ParameterError(name, "must be symmetric")
    c = 0.5 * (c + c.T)
    if np.min(np.linalg.eigvalsh(c)) < -1e-12 * scale:
        raise ParameterError(name, "must be positive semi-definite")
    return c


def expect_multi_relaxed(f, cov, kinks=(), rtols=(MULTI_RTOL,), full_output=False):
    """:func:`expect_multi` at the first of the increasing tolerances ``rtols`` that it
    reaches (large K, where the tightest is out of reach); the NumericalError of the
    last one otherwise."""
    for rtol in rtols[:-1]:
        try:
            return expect_multi(f, cov, kinks=kinks, rtol=rtol, full_output=full_output)
        except NumericalError:
            pass
    return expect_multi(f, cov, kinks=kinks, rtol=rtols[-1], full_output=full_output)


#: the tolerances of :func:`pair_moments`: 1e-11, relaxed to 1e-9 and 1e-7 where out of reach
PAIR_RTOLS = (1e-11, 1e-9, 1e-7)


def pair_moments(activation, K, rtols=PAIR_RTOLS):
    """(E[sigma(z_a) sigma(z_b)], E[sigma'(z_a) sigma'(z_b)]) as (m, m) arrays for
    z ~ N(0, K): the moments of the leading-order kernel and NTK recursions of several
    inputs (PDLT arXiv:2106.10165 eq. (4.8), Ch. 8). Diagonal by the 1-D engine,
    each pair a < b by :func:`expect_multi_relaxed` on its 2 x 2 block."""
    act = get_activation(activation)
    K = np.asarray(K, dtype=float)
    m = K.shape[0]
    diag = expect_monomials(act, np.diag(K).copy(), [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    ss, tt = np.diag(diag[0]).astype(float), np.diag(diag[1]).astype(float)

    def pair(Z):
        d = act.derivatives(Z, 1)
        return np.stack([d[0, 0] * d[0, 1], d[1, 0] * d[1, 1]])

    for a in range(m):
        for b in range(a + 1, m):
            v = expect_multi_relaxed(pair, K[np.ix_((a, b), (a, b))], kinks=act.kinks, rtols=rtols)
            ss[a, b] = ss[b, a] = v[0]
            tt[a, b] = tt[b, a] = v[1]
    return ss, tt
