r"""Gaussian expectations of products over several correlated inputs, vectorized over layers.

For a centered Gaussian vector z = (z_1, ..., z_m) with covariance K (m <= 4;
PDLT, arXiv:2106.10165, eq. (4.25): the multi-input average <F(z)>_K) this
module returns, for every monomial

.. math::

    \Big\langle \prod_{(a, d)} \sigma^{(d)}(z_a) \Big\rangle_K ,
    \qquad \sigma^{(-1)}(z) \equiv z,

and for a whole stack of kernels K^(1..L) at once (the layer-by-layer
recursions of PDLT Ch. 4, 8 need the same monomials at every layer).

Method
------
1. **Per-input reduction.** The factors of a monomial are grouped by input:
   each input a carries one product sigma^b0 sigma'^b1 sigma''^b2 sigma'''^b3 z^e
   of its own factors. A monomial whose factors all share one input is a 1-D
   expectation and goes to :func:`fwtheory.gauss.expect_monomials` (kinks
   split exactly, relative accuracy 1e-12).
2. **Whitening.** For a monomial on s >= 2 distinct inputs the s x s
   covariance block is factored by pivoted Cholesky, z_S = A u with
   u ~ N(0, I_r), r = rank (so singular blocks, e.g. two identical inputs,
   reduce to fewer integration dimensions; directions with residual variance
   <= 1e-14 max K_aa are dropped). A is lower-trapezoidal in pivot order:
   input a depends on u_1 .. u_{level(a)}.
3. **ReLU and leaky ReLU** with a non-singular block: exact truncated Gaussian
   moments (:mod:`fwtheory._orthant`); the steps below are the general path.
4. **Nested split quadrature**, vectorized over the layers. Level j integrates
   u_j ~ N(0, 1) given u_1..u_{j-1}, split at 0 and at the conditional kink
   locations u_j = (k - sum_{i<j} A_ai u_i) / A_aj of every input a whose last
   dependence is u_j; half-range Gauss-Hermite rules on the two outer pieces,
   Gauss-Legendre between breakpoints (the rules of :mod:`fwtheory.gauss`).
   A kinked integrand that is a polynomial on each piece (ReLU, leaky ReLU) is
   therefore integrated exactly at the innermost level; a kink of an input that
   still depends on later u's is smoothed by the inner integrals over a width
   rho (u_j units), and when rho < 1/2 the mesh is graded around it (as in
   :func:`fwtheory.gauss.expect_multi`). All monomials on the same set of
   inputs share one set of activation evaluations.
5. **Smooth activations** use a fixed tensor rule in the whitened coordinates,
   split at u_j = 0 (half-range Gauss-Hermite on both sides), shared by all
   layers (the points z = A u are one GEMM per level). For an odd or even
   sigma (probed numerically) a monomial odd under z -> -z is 0 exactly and an
   even one is integrated over u_1 > 0 only (doubled weights).
6. **Error control.** Each block of layers is integrated with two consecutive
   rungs of a ladder of rule orders; a layer is accepted when, for every
   monomial, |I_hi - I_lo| <= rtol * <|monomial|>_K; otherwise it climbs the
   ladder. When the next rung would exceed the point budget (1e5 points per
   layer for 2 inputs, 3e5 for 3, 1.1e6 for 4) the best (higher-rung) value is
   returned with an :class:`~fwtheory.errors.AccuracyWarning` stating the
   estimated error.

Accuracy reached (tests/test_gauss_multi.py; benchmark numbers measured on the
kernels K^(l) of depth-100 networks with the 4 x 4 Gram matrix of
tests/test_gauss_multi.py::K4):

* one input (all factors share z_a): the 1-D engine, 1e-12;
* two inputs, smooth: 1e-10 (erf arcsine closed forms, :mod:`fwtheory.maps`);
  two inputs, ReLU / leaky ReLU: 1e-11 (arc-cosine closed forms);
* polynomial integrands (linear activation): exact (Isserlis/Wick, 1e-12);
* three and four inputs, smooth: 1e-10 where the kernel is small (tanh at
  criticality, K^(l) <~ 0.5); at K ~ 1.5-3 the point budget gives estimated
  errors ~2e-7 (three inputs) and ~1e-5 (four inputs), with a warning;
  depth-100 tanh network at C_W = 1, m = 4, the 494 monomials of degree <= 4 in
  sigma, sigma': 2.1 s, warnings at <= 2 of 100 layers (estimated 4e-9 for three,
  4e-7 for four inputs, the first layers where K ~ 1);
* ReLU and leaky ReLU, two to four inputs, non-singular block: exact
  truncated-moment recursion (:mod:`fwtheory._orthant`: Stein's lemma down to
  orthant probabilities, closed forms up to three inputs, Plackett's 1-D
  reduction for four), exact to rounding (tested at 1e-11 .. 1e-14 against
  arc-cosine closed forms, Steck's 1/(d+1), the equicorrelated 1-D integral at
  correlation 0.999, and leaky = alpha z + (1 - alpha) relu); depth 100, m = 4,
  all 1819 monomials of degree <= 4 in sigma, sigma', z: 0.7 s;
* a singular block of a kinked activation (e.g. identical inputs) or another
  kinked activation: the split quadrature, which integrates kinks exactly at
  the innermost level only; for nearly collinear inputs at three or four
  inputs its estimated errors reach 1e-2 (warned).

Derivatives and kinks
---------------------
sigma^(d) is used as a function, so d must be a derivative the activation has
as a bounded function: for an activation whose sigma^(d-1) jumps at a kink
(ReLU: sigma' jumps, so sigma'' is a Dirac delta) a factor with that d raises
:class:`~fwtheory.errors.ParameterError` naming ``monomials`` (it is not
silently replaced by the almost-everywhere value 0). d <= 3 for all activations.
"""

__all__ = ["expect_monomials", "max_regular_derivative"]

import math
import numbers
import warnings
from functools import lru_cache

import numpy as np

from . import gauss
from .activations import get_activation
from .errors import AccuracyWarning, NumericalError, ParameterError, check_real

DEFAULT_RTOL = 1e-10
_MAX_DERIV = 3
# (half-range Gauss-Hermite order, Gauss-Legendre order) per rung, per integration dimension r
_LADDER = {
    1: ((16, 12), (24, 16), (32, 24), (48, 32), (64, 48), (96, 64)),
    2: ((8, 6), (12, 8), (16, 12), (24, 16), (32, 24), (48, 32), (64, 48), (96, 64)),
    3: ((6, 4), (8, 6), (12, 8), (16, 12), (24, 16)),
    4: ((5, 4), (6, 5), (8, 6), (12, 8), (16, 12)),
}
# smooth activations: half-range Gauss-Hermite orders (per side) of the fixed tensor rule
_LADDER_SMOOTH = {
    1: ((8, 1), (12, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1)),
    2: ((4, 1), (6, 1), (8, 1), (10, 1), (12, 1), (16, 1), (20, 1), (24, 1), (32, 1), (48, 1)),
    3: ((3, 1), (4, 1), (6, 1), (8, 1), (10, 1), (12, 1), (16, 1), (20, 1), (24, 1)),
    4: ((3, 1), (4, 1), (6, 1), (8, 1), (10, 1), (12, 1), (16, 1)),
}
# points per layer of one rule: beyond, the best value is returned with an AccuracyWarning
_MAX_POINTS = {1: 1e5, 2: 1e5, 3: 3e5, 4: 1.1e6}
_BLOCK_POINTS = 1 << 20      # points evaluated per block of layers (bounds memory)
_GRADE = np.array([-6.0, -1.5, 0.0, 1.5, 6.0])
_CLIP = 10.0
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")


# ------------------------------------------------------------------ validation
@lru_cache(maxsize=64)
def max_regular_derivative(activation):
    """Largest d <= 3 such that sigma^(d) is a bounded function (no Dirac delta).

    For each kink k, sigma^(j) is probed on both sides; the first j whose
    value jumps makes sigma^(j+1) contain a delta, so the answer is that j.
    Smooth activations: 3.
    """
    act = get_activation(activation)
    if not act.kinks:
        return _MAX_DERIV
    with np.errstate(**_QUIET):
        for j in range(_MAX_DERIV + 1):
            for k in act.kinks:
                h = 1e-7 * max(1.0, abs(k))
                v = act.derivatives(np.array([k - h, k + h]), j)[j]
                if abs(v[1] - v[0]) > 1e-5 * (abs(v[0]) + abs(v[1])) + 1e-6:
                    return j
    return _MAX_DERIV


def _check_K(K):
    try:
        arr = np.asarray(K, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("K", f"must be a real (m, m) or (L, m, m) array, got {K!r}") from None
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or not 1 <= arr.shape[1] <= 4 or arr.shape[0] == 0:
        raise ParameterError("K", f"must have shape (m, m) or (L, m, m) with 1 <= m <= 4, got {np.shape(K)}")
    if not np.isfinite(arr).all():
        raise ParameterError("K", "must be finite (got NaN or inf)")
    scale = np.maximum(np.abs(arr).max(axis=(1, 2)), 1e-300)
    if (np.abs(arr - arr.transpose(0, 2, 1)).max(axis=(1, 2)) > 1e-12 * scale).any():
        raise ParameterError("K", "must be symmetric")
    arr = 0.5 * (arr + arr.transpose(0, 2, 1))
    if (np.linalg.eigvalsh(arr)[:, 0] < -1e-12 * scale).any():
        raise ParameterError("K", "must be positive semi-definite")
    return arr, single


def _check_monomials(monomials, m, act):
    """Return a tuple of monomials, each a dict {input: 5-tuple of powers} (gauss convention:
    sigma^p0 sigma'^p1 sigma''^p2 sigma'''^p3 z^p4)."""
    dmax = max_regular_derivative(act)
    msg = ("must be a sequence of monomials, each a sequence of factors (a, d) with input index "
           f"0 <= a < m = {m} and -1 <= d <= {dmax} (d = -1: the field z_a; d >= 0: sigma^(d)(z_a))")
    if isinstance(monomials, (str, bytes)):
        raise ParameterError("monomials", msg + f", got {monomials!r}")
    out = []
    try:
        for mono in monomials:
            powers = {}
            for fac in mono:
                a, d = fac
                if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (a, d)):
                    raise ValueError
                a, d = int(a), int(d)
                if not (0 <= a < m and -1 <= d <= _MAX_DERIV):
                    raise ValueError
                if d > dmax:
                    raise ParameterError(
                        "monomials", f"sigma^({d}) of {act.name} contains a Dirac delta at a kink "
                        f"(sigma^({dmax}) jumps there); allowed derivative orders are -1 .. {dmax}")
                p = powers.setdefault(a, [0, 0, 0, 0, 0])
                p[4 if d < 0 else d] += 1
            out.append({a: tuple(p) for a, p in sorted(powers.items())})
    except ParameterError:
        raise
    except (TypeError, ValueError):
        raise ParameterError("monomials", msg + f", got {monomials!r}") from None
    if not out:
        raise ParameterError("monomials", "must contain at least one monomial")
    return tuple(out)


# ------------------------------------------------------------------ evaluation
def _atom_values(act, z, atoms):
    """Values of the per-input atoms (5-tuples) at z: array (len(atoms),) + z.shape."""
    order = max((k for p in atoms for k in range(4) if p[k]), default=-1)
    d = act.derivatives(z, order) if order >= 0 else None
    out = np.empty((len(atoms),) + z.shape)
    for i, p in enumerate(atoms):
        v = None
        for k, e in enumerate(p):
            if not e:
                continue
            base = z if k == 4 else d[k]
            t = base if e == 1 else base ** e
            v = t if v is None else v * t
        out[i] = 1.0 if v is None else v
    return out


def _factor(C):
    """Pivoted Cholesky of one s x s block: A (s, r) and level (s,) (see gauss._pivoted_factor)."""
    return gauss._pivoted_factor(C)


def _structure(A, level, nk, smooth):
    """Hashable description of the quadrature tree of one layer, and the smoothing widths.

    Kinked activations: a later input whose kink, smoothed by the inner integrals, has
    width rho < 1/2 (u_j units) gets a graded mesh (_GRADE) around it. Smooth
    activations (pseudo-kink at 0) are split only at the conditional zeros of the
    inputs ending at each level (splitting at the smoothed zeros of later inputs
    as well was measured to converge more slowly per point)."""
    r = A.shape[1]
    sig, rhos = [], []
    for j in range(r):
        rows = tuple(int(v) for v in np.nonzero(level == j)[0]) if nk else ()
        later = np.nonzero((level > j) & (A[:, j] != 0.0))[0]
        sharp, rho = (), np.zeros(0)
        if nk and later.size:
            rr = np.sqrt(np.sum(A[later, j + 1:] ** 2, axis=1)) / np.abs(A[later, j])
            pick = np.zeros(later.size, dtype=bool) if smooth else rr < 0.5
            sharp, rho = tuple(int(v) for v in later[pick]), rr[pick]
        sig.append((rows, sharp))
        rhos.append(rho)
    return (r, tuple(int(v) for v in level), tuple(sig), () if smooth else tuple(_GRADE)), rhos


def _nodes_per_level(sig, nk, order):
    """Nodes per level of the tree rule ``sig`` at rung ``order`` = (n_half, n_gl)."""
    n_half, n_gl = order
    out = []
    for rows, sharp in sig[2]:
        nb = 1 + nk * (len(rows) + len(sharp) * len(sig[3]))
        out.append(2 * n_half + (nb - 1) * n_gl)
    if len(sig) > 4 and sig[4]:      # symmetric integrand: half of the first coordinate
        out[0] = n_half
    return out


@lru_cache(maxsize=64)
def _fixed_tree(r, order, half=False):
    """Tensor rule split at u_j = 0 in every coordinate (half-range Gauss-Hermite on both
    sides), the same for every layer: per level, points (1, P_j, j + 1), weights (1, P_j).
    ``half``: the integrand is even under u -> -u, so only u_1 > 0 is kept, with
    doubled weights."""
    x0, w0 = gauss._segment_rule(np.zeros((1, 1)), order[0], order[1])
    x0, w0 = x0[0], w0[0]
    pts = np.zeros((1, 0))
    level_pts, level_w = [], []
    for j in range(r):
        x, w = (x0[order[0]:], 2.0 * w0[order[0]:]) if (half and j == 0) else (x0, w0)
        n = x.size
        P = pts.shape[0]
        pts = np.concatenate([np.repeat(pts, n, axis=0), np.tile(x, P)[:, None]], axis=1)
        lw = np.tile(w, P)[None]
        lp = pts[None]
        lp.setflags(write=False)
        lw.setflags(write=False)
        level_pts.append(lp)
        level_w.append(lw)
    return level_pts, level_w


def _tree(As, rhos, sig, kk, order):
    """Nested rule for a block of layers with the same structure.

    As: (R, s, r); rhos: list over levels of (R, n_sharp) widths. Returns, per level j,
    the points (u_1..u_j) of the tree nodes at depth j, (R, P_j, j + 1), and the level-j
    weights (R, P_j) (P_j = n_1 ... n_j; node p of depth j is child p // n_j ... of depth j-1)."""
    R, s, r = As.shape
    if not any(rows or sharp for rows, sharp in sig[2]):
        return _fixed_tree(r, order, len(sig) > 4 and sig[4])
    pts = np.zeros((R, 1, 0))
    level_pts, level_w = [], []
    for j in range(r):
        P = pts.shape[1]
        rows, sharp = sig[2][j]
        b = [np.zeros((R, P, 1))]
        if rows:
            rows = list(rows)
            c = np.einsum("rpi,rqi->rpq", pts, As[:, rows, :j])          # (R, P, q)
            b.append(((kk[None, None, None, :] - c[..., None]) / As[:, rows, j][:, None, :, None])
                     .reshape(R, P, -1))
        if sharp:
            sharp = list(sharp)
            c = np.einsum("rpi,rqi->rpq", pts, As[:, sharp, :j])
            center = (kk[None, None, None, :] - c[..., None]) / As[:, sharp, j][:, None, :, None]
            g = center[..., None] + rhos[j][:, None, :, None, None] * np.array(sig[3])
            b.append(g.reshape(R, P, -1))
        bpts = np.clip(np.sort(np.concatenate(b, axis=2), axis=2), -_CLIP, _CLIP)
        x, w = gauss._segment_rule(bpts.reshape(R * P, -1), *order)
        n = x.shape[1]
        x = x.reshape(R, P, n)
        w = w.reshape(R, P * n)
        pts = np.concatenate([np.repeat(pts, n, axis=1), x.reshape(R, P * n, 1)], axis=2)
        level_pts.append(pts)
        level_w.append(w)
    return level_pts, level_w


def _integrate_block(act, As, rhos, sig, kk, order, level_atoms, level_inputs, want_scale):
    """Integrals (and <|.|> if ``want_scale``) of all combinations of level atoms.

    Nested contraction from the innermost level outwards: the activation is
    evaluated once per tree node for the inputs that end at that level, and the
    monomials on those inputs share the evaluations. level_inputs[j]: input
    positions ending at level j; level_atoms[j]: tuple of level atoms, each a tuple
    of per-input 5-tuples (aligned with level_inputs[j]). Returns arrays (R, C) with C
    the product of the numbers of level atoms (row-major in the levels)."""
    pts, wts = _tree(As, rhos, sig, kk, order)
    R, r = As.shape[0], As.shape[2]
    T = Ta = None
    for j in range(r - 1, -1, -1):
        if pts[j].shape[0] == 1:   # fixed tensor rule shared by the layers: one GEMM
            z = np.einsum("pj,rij->irp", pts[j][0], As[:, level_inputs[j], :j + 1])
        else:
            z = np.einsum("rpj,rij->irp", pts[j], As[:, level_inputs[j], :j + 1])   # (q, R, P_j)
        F = np.ones((len(level_atoms[j]),) + z.shape[1:])
        for t in range(len(level_inputs[j])):
            atoms = sorted({la[t] for la in level_atoms[j]})
            vals = _atom_values(act, z[t], atoms)
            F *= vals[[atoms.index(la[t]) for la in level_atoms[j]]]
        w = wts[j]
        P = w.shape[1]
        n = P if j == 0 else P // pts[j - 1].shape[1]
        F *= w
        Fw = F.reshape(F.shape[0], R, P // n, n)
        if T is None:
            T = Fw.sum(axis=-1)[:, None]                                            # (D, 1, R, P')
            if want_scale:
                Ta = np.abs(Fw).sum(axis=-1)[:, None]
        else:
            C = T.shape[0] * T.shape[1]
            Tn = T.reshape(C, R, P // n, n)
            T = np.einsum("drpn,crpn->dcrp", Fw, Tn)
            if want_scale:
                Ta = np.einsum("drpn,crpn->dcrp", np.abs(Fw), Ta.reshape(C, R, P // n, n))
        T = T.reshape(-1, 1, R, P // n)
        if want_scale:
            Ta = Ta.reshape(-1, 1, R, P // n)
    value = T.reshape(-1, R).T
    scale = Ta.reshape(-1, R).T if want_scale else None
    return value, scale


def _points(sig, nk, order):
    return math.prod(_nodes_per_level(sig, nk, order))


def _integrate_subset(act, Cs, atoms, rtol):
    """All monomials on one set of s >= 2 inputs, for every layer.

    Cs: (L, s, s) covariance blocks; atoms: per monomial, a tuple of per-input
    5-tuples (aligned with the s inputs). Returns (L, len(atoms))."""
    L, s = Cs.shape[0], Cs.shape[1]
    # smooth activations are split at the conditional zero of each input (pseudo-kink at 0):
    # the half-range rules then resolve the scale-1 structure of sigma around z = 0
    kk = np.asarray(act.kinks if act.kinks else (0.0,), dtype=float)
    par = None if act.kinks else _parity(act)
    if par is None:
        return _integrate_subset_parts(act, Cs, atoms, rtol, kk, False)
    # sigma odd or even: each monomial is odd (expectation exactly 0) or even under z -> -z
    out = np.zeros((L, len(atoms)))
    even = [i for i, mono in enumerate(atoms) if math.prod(_atom_parity(par, p) for p in mono) > 0]
    if even:
        out[:, even] = _integrate_subset_parts(act, Cs, [atoms[i] for i in even], rtol, kk, True)
    return out


def _integrate_subset_parts(act, Cs, atoms, rtol, kk, half):
    L, s = Cs.shape[0], Cs.shape[1]
    nk = kk.size
    out = np.empty((L, len(atoms)))
    groups = {}
    for ell in range(L):
        A, level = _factor(Cs[ell])
        sig, rhos = _structure(A, level, nk, smooth=not act.kinks)
        if not act.kinks:   # smooth: the fixed tensor rule (split at u_j = 0 only)
            sig = (sig[0], sig[1], tuple(((), ()) for _ in sig[2]), (), half)
        groups.setdefault(sig, []).append((ell, A, rhos))
    for sig, items in groups.items():
        r = sig[0]
        layers = np.array([it[0] for it in items])
        if r == 0:  # zero covariance: point mass at z = 0
            for mi, mono in enumerate(atoms):
                out[layers, mi] = math.prod(float(_atom_values(act, np.zeros(1), [p])[0, 0]) for p in mono)
            continue
        level = [max(v, 0) for v in sig[1]]
        level_inputs = [[i for i in range(s) if level[i] == j] for j in range(r)]
        per_level = [[tuple(mono[i] for i in level_inputs[j]) for mono in atoms] for j in range(r)]
        level_atoms = [tuple(sorted(set(p))) for p in per_level]
        sizes = [len(la) for la in level_atoms]
        combo = np.zeros(len(atoms), dtype=np.int64)
        for j in range(r):
            combo = combo * sizes[j] + np.array([level_atoms[j].index(p) for p in per_level[j]])
        As = np.stack([it[1] for it in items])
        rhos = [np.stack([it[2][j] for it in items]) for j in range(r)]
        ladder = _LADDER[r] if act.kinks else _LADDER_SMOOTH[r]
        todo = np.arange(len(items))
        k = 1

        def run(sel, order, want_scale):
            per = max(1, _BLOCK_POINTS // _points(sig, nk, order))
            v, sc = [], []
            for a in range(0, len(sel), per):
                b = sel[a:a + per]
                vv, ss = _integrate_block(act, As[b], [rh[b] for rh in rhos], sig, kk, order,
                                          level_atoms, level_inputs, want_scale)
                v.append(vv[:, combo])
                if want_scale:
                    sc.append(ss[:, combo])
            return np.concatenate(v), (np.concatenate(sc) if want_scale else None)

        with np.errstate(**_QUIET):
            prev, scale = run(todo, ladder[k - 1], True)
            while True:
                value, _ = run(todo, ladder[k], False)
                e = np.abs(value - prev)
                if not (np.isfinite(e).all() and np.isfinite(scale).all()):
                    raise NumericalError(f"gauss_multi: non-finite integrand (overflow or NaN) for "
                                         f"activation {act.name}")
                ok = (e <= rtol * scale).all(axis=1)
                out[layers[todo[ok]]] = value[ok]
                todo, prev, scale = todo[~ok], value[~ok], scale[~ok]
                if todo.size == 0:
                    break
                k += 1
                if k == len(ladder) or _points(sig, nk, ladder[k]) > _MAX_POINTS[r]:
                    bad = e[~ok] / np.where(scale > 0, scale, 1.0)
                    out[layers[todo]] = value[~ok]
                    warnings.warn(
                        f"gauss_multi: {act.name} on {s} inputs (rank {r}): estimated relative error "
                        f"{float(bad.max()):.2g} > rtol = {rtol:.2g} at {todo.size} of {L} layers "
                        f"(point budget {_MAX_POINTS[r]:.3g} per layer reached); returning the best value",
                        AccuracyWarning, stacklevel=4)
                    break
    return out


@lru_cache(maxsize=64)
def _parity(act):
    """+1 (even), -1 (odd) or None: the symmetry of sigma under z -> -z (probed to 1e-14)."""
    x = np.array([0.05, 0.3, 1.1, 2.7, 6.5])
    with np.errstate(**_QUIET):
        a, b = act.derivatives(x, 0)[0], act.derivatives(-x, 0)[0]
    tol = 1e-14 * (np.abs(a) + 1e-300)
    if np.all(np.abs(b + a) <= tol):
        return -1
    if np.all(np.abs(b - a) <= tol):
        return 1
    return None


def _atom_parity(par, p):
    """Parity of sigma^p0 sigma'^p1 sigma''^p2 sigma'''^p3 z^p4 for sigma of parity
    ``par`` (sigma^(d) has parity par (-1)^d)."""
    out = 1
    for d in range(4):
        out *= (par * (-1) ** d) ** p[d]
    return out * (-1) ** p[4]


# ------------------------------------------------------------------ ReLU, leaky ReLU: exact
_ORTHANT_RCOND = 1e-10


def _orthant_layers(act, Cs):
    """Layers whose block is handled exactly by :mod:`fwtheory._orthant`: ReLU and
    leaky ReLU (built-in codes 1, 2) with a well-conditioned correlation matrix
    (reciprocal condition number > 1e-10); the rest (e.g. identical inputs) go to
    the quadrature, which reduces the dimension by the rank."""
    if act.code not in (1, 2):
        return np.zeros(Cs.shape[0], dtype=bool)
    d = np.sqrt(np.einsum("lii->li", Cs))
    with np.errstate(all="ignore"):
        R = Cs / (d[:, :, None] * d[:, None, :])
        ev = np.linalg.eigvalsh(np.where(np.isfinite(R), R, 0.0))
    return (d > 0).all(axis=1) & (ev[:, 0] > _ORTHANT_RCOND * ev[:, -1])


def _piecewise_linear_subset(act, Cs, atoms):
    """Exact moments for ReLU / leaky ReLU (slope alpha): each input's factor
    sigma^p0 sigma'^p1 z^p4 = z^(p0 + p4) (alpha^k + (1 - alpha^k) theta(z)), k = p0 + p1
    (theta^2 = theta), so a monomial is a sum of truncated moments
    E[z^e prod_{a in T} theta(z_a)] (:func:`fwtheory._orthant.truncated_moment`)."""
    from ._orthant import truncated_moment

    alpha = act.slope if act.code == 2 else 0.0
    L = Cs.shape[0]
    out = np.zeros((L, len(atoms)))
    cache = {}
    for mi, mono in enumerate(atoms):
        terms = [(1.0, ())]
        e = []
        for a, p in enumerate(mono):
            if p[2] or p[3]:           # sigma'' = sigma''' = 0 where allowed (no jump: alpha = 1)
                terms = []
                break
            e.append(p[0] + p[4])
            k = p[0] + p[1]
            opts = [(1.0, ())] if k == 0 else [(alpha ** k, ()), (1.0 - alpha ** k, (a,))]
            terms = [(c1 * c2, t1 + t2) for c1, t1 in terms for c2, t2 in opts if c1 * c2 != 0.0]
        for coef, T in terms:
            key = (tuple(e), T)
            if key not in cache:
                cache[key] = truncated_moment(Cs, tuple(e), T)
            out[:, mi] += coef * cache[key]
    return out


# ------------------------------------------------------------------ public
def expect_monomials(activation, K, monomials, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    r"""E over z ~ N(0, K) of products of sigma^(d)(z_a) and z_a, for one or L kernels.

    Parameters
    ----------
    activation : Activation or str
    K : array (m, m) or (L, m, m), m <= 4
        Symmetric positive semi-definite (checked; singular allowed, e.g. two
        identical inputs).
    monomials : sequence of monomials
        Each a sequence of factors ``(a, d)``: ``d >= 0`` is sigma^(d)(z_a)
        (0 the activation, 1 its derivative, ... up to 3), ``d = -1`` the field
        z_a itself. The empty monomial is 1.
    rtol : float
        Target error relative to <|monomial|>_K (default 1e-10; one-input
        monomials always get the 1-D engine's 1e-12).

    Returns
    -------
    ndarray of shape (len(monomials),) for one K, (L, len(monomials)) for a stack.

    Raises ParameterError for a bad K or monomial (including a derivative that
    is a Dirac delta at a kink, e.g. sigma'' of ReLU), NumericalError when the
    quadrature does not converge within its point budget. Method and measured
    accuracy: module docstring.
    """
    act = get_activation(activation)
    Ks, single = _check_K(K)
    rtol = check_real("rtol", rtol, lower=1e-14, upper=0.1, allowed="in [1e-14, 0.1]")
    L, m = Ks.shape[0], Ks.shape[1]
    mons = _check_monomials(monomials, m, act)
    out = np.empty((L, len(mons)))
    one_d = {}    # input -> {powers: [monomial indices]}
    multi = {}    # tuple of inputs -> list of monomial indices
    for i, mono in enumerate(mons):
        if not mono:
            out[:, i] = 1.0
        elif len(mono) == 1:
            (a, p), = mono.items()
            one_d.setdefault(a, {}).setdefault(p, []).append(i)
        else:
            multi.setdefault(tuple(mono), []).append(i)
    for a, by_power in one_d.items():
        powers = list(by_power)
        kaa = Ks[:, a, a]
        tiny = kaa <= 1e-300
        vals = np.empty((len(powers), L))
        if (~tiny).any():
            vals[:, ~tiny] = gauss.expect_monomials(act, kaa[~tiny], powers)
        if tiny.any():
            vals[:, tiny] = _atom_values(act, np.zeros(1), powers)[:, :1]
        for j, p in enumerate(powers):
            for i in by_power[p]:
                out[:, i] = vals[j]
    for inputs, idxs in multi.items():
        S = list(inputs)
        atoms = [tuple(mons[i][a] for a in S) for i in idxs]
        Cs = Ks[:, S][:, :, S]
        exact = _orthant_layers(act, Cs)
        if exact.any():
            out[np.ix_(np.nonzero(exact)[0], idxs)] = _piecewise_linear_subset(act, Cs[exact], atoms)
        if (~exact).any():
            out[np.ix_(np.nonzero(~exact)[0], idxs)] = _integrate_subset(act, Cs[~exact], atoms, rtol)
    if not np.isfinite(out).all():
        raise NumericalError(f"gauss_multi: non-finite expectation for activation {act.name}")
    return out[0] if single else out
