r"""Order-to-chaos phase diagram of an activation over (C_b, C_W), infinite width.

For each initialization the kernel K^(l+1) = C_b + C_W <sigma^2>_{K^(l)} flows from
K^(1) = C_b + C_W q0 (PDLT arXiv:2106.10165 eq. (4.8), Sec. 5.1) to a fixed
point q*; the susceptibilities there (PDLT Sec. 5.1, as in
:mod:`fwtheory.kernel`)

    chi_parallel = C_W d<sigma^2>_K/dK |_{q*},      chi_perp = C_W <sigma'^2>_{q*}

decide the phase: chi_perp < 1 ordered (nearby inputs' correlation flows to 1,
Jacot et al. arXiv:1907.05715 "freeze"), chi_perp > 1 chaotic (correlations
decorrelate), chi_perp = 1 the edge of chaos (Poole et al. 2016, Schoenholz et
al. 2017; PDLT Sec. 5.2-5.3). q* is the fixed point the recursion reaches from
K^(1) (the map is increasing for the usual activations: the nearest root of
C_b + C_W <sigma^2>_K - K in the direction of the flow), +inf when K grows
without bound (then chi_perp is its K -> inf limit, taken at K = 1e12) and 0
when it flows to zero (limit taken at K = 1e-12, as :func:`fwtheory.kernel.fixed_points`).

The edge of chaos at a given C_b is found by Brent's method in C_W on
chi_perp(q*(C_b, C_W)) - 1 (first sign change on a logarithmic scan of C_W in
[1e-3, 1e4]), each q* itself by Brent's method; ``None`` where no crossing
exists. The heat map itself uses interpolation of the moments on a K grid
(bracketing), refined by safeguarded Newton steps on exact expectations.

Jacot et al.'s coordinates (arXiv:1907.05715, standardized nonlinearity, beta and r): with the
nonlinearity standardized at the fixed point, sigma_s(x) = sigma(sqrt(q*) x) /
sqrt(<sigma^2>_{q*}) so that E[sigma_s(X)^2] = 1, the layer is
C_W' = 1 - beta^2, C_b' = beta^2 with beta^2 = C_b / q* and characteristic
value r = (1 - beta^2) E[sigma_s'(X)^2] = C_W <sigma'^2>_{q*} = chi_perp:
r < 1 freeze (order), r > 1 chaos. :func:`from_jacot` inverts the map.

:func:`ntk_profile` follows the normalized infinite-width NTK
Theta_ab / sqrt(Theta_aa Theta_bb) of a Gram matrix of inputs over depth
(:func:`fwtheory.kernel.kernel_matrix`): it tends to the all-ones matrix in
the ordered phase and to the identity in the chaotic phase (Jacot et al.); the approach of the mean off-diagonal entry is fitted by
x_l = x_inf + A exp(-l / xi).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .activations import Activation

__all__ = ["PhaseDiagram", "fixed_point", "chi_at", "edge_of_chaos", "jacot_coordinates",
           "from_jacot", "ntk_profile", "phase_diagram"]

import math
from dataclasses import dataclass, field

import numpy as np

from . import gauss
from .activations import get_activation
from .errors import NumericalError, ParameterError, check_int, check_real

_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")
_K_MAX, _K_MIN = 1e12, 1e-12
_S2, _T2 = (2, 0, 0, 0, 0), (0, 2, 0, 0, 0)
_CRIT_TOL = 1e-9


def _m(act, K, dk=0):
    return gauss.expect_monomials(act, float(K), [_S2, _T2], dk=dk)


def fixed_point(activation, C_b, C_W, input_norm=1.0):
    """q*: the fixed point the kernel reaches from K^(1) = C_b + C_W q0 (module docstring).

    Returns a float in [0, inf]; ``0.0`` if K flows to 0, ``math.inf`` if it grows
    beyond 1e12.
    """
    from scipy import optimize

    act = get_activation(activation)
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    q0 = check_real("input_norm", input_norm, lower=0.0)
    K1 = C_b + C_W * q0
    if K1 <= 0:
        raise ParameterError("input_norm", "must be > 0 when C_b = 0")

    def g(K):
        return C_b + C_W * _m(act, K)[0] - K

    g1 = g(K1)
    if g1 == 0.0:
        return K1
    a, ga = K1, g1
    while True:
        b = a * 4.0 if g1 > 0 else a * 0.25
        if b > _K_MAX:
            return math.inf
        if b < _K_MIN:
            return 0.0
        gb = g(b)
        if gb == 0.0:
            return b
        if (gb > 0) != (ga > 0):
            lo, hi = (a, b) if a < b else (b, a)
            return optimize.brentq(g, lo, hi, xtol=1e-14 * lo, rtol=1e-15, maxiter=200)
        a, ga = b, gb


def chi_at(activation, C_W, q):
    """(chi_parallel, chi_perp) = C_W (d<sigma^2>/dK, <sigma'^2>) at K = q (limits at 0 and inf)."""
    act = get_activation(activation)
    K = min(max(q, _K_MIN), _K_MAX)
    d = _m(act, K, dk=1)[0]
    t = _m(act, K)[1]
    return float(C_W * d), float(C_W * t)


def _regime(chi_perp, tol=_CRIT_TOL):
    if abs(chi_perp - 1.0) <= tol:
        return "critical"
    return "ordered" if chi_perp < 1.0 else "chaotic"


def edge_of_chaos(activation: str | Activation, C_b: float, input_norm: float = 1.0,
                  cw_range: tuple[float, float] = (1e-3, 1e4)) -> float | None:
    """C_W on the edge of chaos (chi_perp(q*) = 1) at bias variance ``C_b``, or None.

    Brent's method in C_W (module docstring); accurate to ~1e-10 relative.
    """
    from scipy import optimize

    act = get_activation(activation)
    C_b = check_real("C_b", C_b, lower=0.0)

    def f(C_W):
        q = fixed_point(act, C_b, C_W, input_norm)
        return chi_at(act, C_W, q)[1] - 1.0

    if C_b == 0.0 and not act.kinks:
        # K* = 0 class (PDLT Sec. 5.3.3): chi_perp(q*) - 1 has a double root at C_W = 1/sigma'(0)^2
        # (tangency), which Brent's method resolves only to ~sqrt(eps); return it exactly
        s0, s1 = act.derivatives(np.zeros(1), 1)[:, 0]
        if s0 == 0.0 and s1 != 0.0:
            w0 = 1.0 / (s1 * s1)
            if abs(f(w0)) <= 1e-9:
                return float(w0)
    # locate the first crossing on a dense C_W scan with interpolated moments, then
    # bracket it with the exact function and refine by Brent's method
    grid = np.logspace(math.log10(cw_range[0]), math.log10(cw_range[1]), 241)
    Kg, S, T, _ = _grid_moments_cached(act)
    qg = _grid_fixed_points(Kg, S, np.array([C_b]), grid, check_real("input_norm", input_norm, lower=0.0))[0]
    with np.errstate(**_QUIET):
        chi = grid * np.interp(np.log(np.clip(qg, Kg[0], Kg[-1])), np.log(Kg), T)
    cross = np.nonzero((chi[:-1] < 1.0) & (chi[1:] >= 1.0))[0]
    for i in cross[:4]:
        ws = np.logspace(math.log10(grid[max(i - 1, 0)]), math.log10(grid[min(i + 2, len(grid) - 1)]), 4)
        prev_w, prev_f = None, None
        for w in ws:
            try:
                fw = f(w)
            except NumericalError:
                prev_w = None
                continue
            if fw == 0.0:
                return float(w)
            if prev_w is not None and prev_f < 0 < fw:
                # a jump of q* between two fixed points (a saddle-node, e.g. GELU below its
                # half-stable C_b) changes the sign without chi_perp = 1: not an edge. A coarse
                # solve tells the two apart cheaply (|f| stays O(1) at a jump)
                r0, res = optimize.brentq(f, prev_w, w, xtol=1e-7 * w, maxiter=100, full_output=True)
                if abs(f(r0)) > 1e-3:
                    break
                lo, hi = max(prev_w, r0 * (1 - 1e-6)), min(w, r0 * (1 + 1e-6))
                if not (f(lo) < 0 < f(hi)):
                    lo, hi = prev_w, w
                root = optimize.brentq(f, lo, hi, xtol=1e-13, rtol=1e-14, maxiter=200)
                if abs(f(root)) <= 1e-8:
                    return float(root)
                break
            prev_w, prev_f = w, fw
    return None


_GRID_CACHE = {}


def _grid_moments_cached(act):
    if act not in _GRID_CACHE:
        if len(_GRID_CACHE) > 16:
            _GRID_CACHE.clear()
        _GRID_CACHE[act] = _grid_moments(act)
    return _GRID_CACHE[act]


def jacot_coordinates(activation, C_b, C_W, input_norm=1.0):
    """Jacot et al.'s (beta, r) for (C_b, C_W): beta = sqrt(C_b / q*), r = chi_perp(q*).

    Returns a dict with beta, r, q_star (beta is None when q* is 0 or inf).
    """
    q = fixed_point(activation, C_b, C_W, input_norm)
    r = chi_at(activation, C_W, q)[1]
    beta = math.sqrt(C_b / q) if 0.0 < q < math.inf else None
    return {"beta": beta, "r": r, "q_star": q}


def from_jacot(activation, beta, q_star=1.0):
    """(C_b, C_W) whose fixed point is ``q_star`` with Jacot parameter ``beta``.

    C_b = beta^2 q*, C_W = (1 - beta^2) q* / <sigma^2>_{q*}; r = C_W <sigma'^2>_{q*}.
    Returns a dict with C_b, C_W, r.
    """
    act = get_activation(activation)
    beta = check_real("beta", beta, lower=0.0, upper=1.0)
    q = check_real("q_star", q_star, lower=0.0, lower_open=True)
    s2, t2 = _m(act, q)
    C_W = (1.0 - beta * beta) * q / s2
    return {"C_b": beta * beta * q, "C_W": float(C_W), "r": float(C_W * t2)}


# ------------------------------------------------------------------ NTK over depth
_DEFAULT_GRAM = ((1.0, 0.6, 0.2), (0.6, 1.0, 0.4), (0.2, 0.4, 1.0))


def _fit_approach(x, limit=None):
    """Fit x_l = x_inf + A exp(-l/xi) to the tail (last 3/4) of x (layers 1..L).

    With a known ``limit`` (1 ordered, 0 chaotic) a straight line is fitted to
    log|x_l - limit|; otherwise x_inf is fitted too. Returns a dict (limit, xi,
    rate = exp(-1/xi), amplitude, limit_fitted) or None.
    """
    from scipy import optimize

    x = np.asarray(x, dtype=float)
    L = len(x)
    if L < 6 or not np.isfinite(x).all():
        return None
    layers = np.arange(1, L + 1, dtype=float)
    start = L // 4
    ll, xx = layers[start:], x[start:]
    if limit is not None:
        dev = np.abs(xx - limit)
        keep = dev > 1e-13
        if keep.sum() < 3:
            return {"limit": limit, "xi": 0.0, "rate": 0.0, "amplitude": 0.0, "limit_fitted": False}
        slope, icpt = np.polyfit(ll[keep], np.log(dev[keep]), 1)
        if slope >= 0:
            return None
        return {"limit": limit, "xi": float(-1.0 / slope), "rate": float(math.exp(slope)),
                "amplitude": float(math.copysign(math.exp(icpt), xx[-1] - limit)), "limit_fitted": False}
    d = np.diff(xx)
    if np.max(np.abs(d)) < 1e-14:
        return {"limit": float(xx[-1]), "xi": 0.0, "rate": 0.0, "amplitude": 0.0, "limit_fitted": True}
    with np.errstate(**_QUIET):
        ratios = d[1:] / d[:-1]
    ratios = ratios[np.isfinite(ratios) & (ratios > 0) & (ratios < 1)]
    lam0 = float(np.median(ratios)) if ratios.size else 0.9
    x_inf0 = xx[-1] + d[-1] * lam0 / (1 - lam0)
    inv0 = -math.log(lam0) if 0 < lam0 < 1 else 0.1

    def model(l, x_inf, A, inv_xi):
        return x_inf + A * np.exp(-(l - ll[0]) * inv_xi)

    import warnings

    try:
        with np.errstate(**_QUIET), warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)  # covariance unused
            p, _ = optimize.curve_fit(model, ll, xx, p0=(x_inf0, xx[0] - x_inf0, inv0), maxfev=4000)
    except (RuntimeError, ValueError, optimize.OptimizeWarning, FloatingPointError):
        return None
    x_inf, A, inv_xi = (float(v) for v in p)
    if not (math.isfinite(x_inf) and inv_xi > 0 and math.isfinite(A)) or 1.0 / inv_xi > 2 * L:
        return {"limit": None, "xi": None, "rate": None, "amplitude": None, "limit_fitted": True,
                "note": "no exponential approach within this depth (power law, as at criticality)"}
    return {"limit": x_inf, "xi": 1.0 / inv_xi, "rate": math.exp(-inv_xi),
            "amplitude": A * math.exp(ll[0] * inv_xi), "limit_fitted": True}


def _ntk_matrix(net, G):
    """Mean NTK Theta^(l)_ab (L, m, m): the recursion of :func:`fwtheory.kernel.kernel_matrix`
    (PDLT eq. (4.8), Ch. 8), with the 2-D expectations retried at a looser tolerance
    (1e-9, then 1e-7) where 1e-11 is out of reach (large K)."""
    act, L, m = net.activation, net.depth, G.shape[0]
    C_b, C_W, lam_b, lam_W = net.C_b, net.C_W, net.lambda_b, net.lambda_W
    K = C_b + C_W * G
    Th = np.empty((L, m, m))
    Th[0] = lam_b + lam_W * G

    for i in range(L - 1):
        if not (np.isfinite(K).all() and (np.diag(K) > 0).all()):
            raise NumericalError(f"kernel overflow at layer {i + 1}")
        ss, tt = gauss.pair_moments(act, K)
        Th[i + 1] = lam_b + lam_W * ss + C_W * tt * Th[i]
        K = C_b + C_W * ss
    if not np.isfinite(Th).all():
        raise NumericalError("NTK overflow")
    return Th


def ntk_profile(activation, C_b, C_W, gram=None, depth=40, normalization="none"):
    """Normalized infinite-width NTK Theta_ab / sqrt(Theta_aa Theta_bb) over depth.

    ``gram``: (m, m) input Gram matrix x_a.x_b / n0, m <= 4 (default: three unit
    inputs with overlaps 0.6, 0.2, 0.4). Returns a dict: layers, normalized
    (L, m, m) list, offdiag (mean off-diagonal per layer), fit (module
    docstring), regime and chi_perp at q* of the first input.
    ``normalization="layernorm"``: LayerNorm after every nonlinearity
    (:mod:`fwtheory.normalization`); then q* = C_b + C_W (the fixed diagonal) and
    chi_perp = C_W <sigma'^2>_{q*} / Var_{q*}(sigma), the slope of the normalized
    network's correlation map at c = 1.
    """
    from .network import Network

    depth = check_int("depth", depth, lower=2)
    if normalization not in ("none", "layernorm"):
        raise ParameterError("normalization", f"must be 'none' or 'layernorm', got {normalization!r}")
    G = gauss._check_cov(_DEFAULT_GRAM if gram is None else gram, name="gram")
    # the width does not enter the infinite-width kernel matrix; 2 is the smallest valid one
    net = Network(activation, depth=depth, width=2, C_b=C_b, C_W=C_W)
    if normalization == "layernorm":
        from .normalization import normalized_kernels

        Th = normalized_kernels(net.activation, G, depth, C_b, C_W, net.lambda_b, net.lambda_W,
                                normalization="layernorm").Theta
        out = _profile_dict(net, G, Th, depth, C_b, C_W)
        q = C_b + C_W
        s1, s2, t2 = gauss.expect_monomials(net.activation, q, [(1, 0, 0, 0, 0), _S2, _T2])
        chi = float(C_W * t2 / (s2 - s1 * s1))
        regime = _regime(chi)
        off = np.asarray(out["offdiag"])
        limit = 1.0 if regime == "ordered" else (0.0 if regime == "chaotic" and off[-1] < 0.05 else None)
        out.update(q_star=q, chi_perp=chi, chi_parallel=None, regime=regime, fit=_fit_approach(off, limit),
                   normalization="layernorm")
        return out
    Th = _ntk_matrix(net, G)
    return _profile_dict(net, G, Th, depth, C_b, C_W, plain=True)


def _profile_dict(net, G, Th, depth, C_b, C_W, plain=False):
    d = np.sqrt(np.einsum("lii->li", Th))
    norm = Th / (d[:, :, None] * d[:, None, :])
    m = G.shape[0]
    iu = np.triu_indices(m, 1)
    off = norm[:, iu[0], iu[1]].mean(axis=1) if m > 1 else np.ones(depth)
    if not plain:
        return {"C_b": C_b, "C_W": C_W, "gram": G.tolist(), "layers": list(range(1, depth + 1)),
                "normalized": norm.tolist(), "offdiag": off.tolist()}
    q = fixed_point(net.activation, C_b, C_W, float(G[0, 0]))
    chi_par, chi_perp = chi_at(net.activation, C_W, q)
    regime = _regime(chi_perp)
    limit = 1.0 if regime == "ordered" else (0.0 if regime == "chaotic" and off[-1] < 0.05 else None)
    return {"C_b": C_b, "C_W": C_W, "gram": G.tolist(), "layers": list(range(1, depth + 1)),
            "normalized": norm.tolist(), "offdiag": off.tolist(), "fit": _fit_approach(off, limit),
            "q_star": q, "chi_perp": chi_perp, "chi_parallel": chi_par, "regime": regime,
            "normalization": "none"}


# ------------------------------------------------------------------ the diagram
@dataclass(frozen=True)
class PhaseDiagram:
    """Phase diagram of one activation (module docstring).

    Grids have shape (len(C_b), len(C_W)): q_star, chi_perp, chi_parallel, beta
    (Jacot), regime (-1 ordered, 0 critical, +1 chaotic, 2 undetermined: the
    moments overflow at q*). ``edge_of_chaos`` is a
    list of [C_b, C_W or None]; ``criticality`` the PDLT critical point
    (:func:`fwtheory.kernel.criticality`); ``ntk_profiles`` the normalized-NTK
    depth profiles in an ordered, critical and chaotic setting;
    ``ntk_profiles_layernorm`` the same three (C_b, C_W) with LayerNorm after
    every nonlinearity (:mod:`fwtheory.normalization`).
    """

    activation: str
    input_norm: float
    C_b: np.ndarray = field(repr=False)
    C_W: np.ndarray = field(repr=False)
    q_star: np.ndarray = field(repr=False)
    chi_perp: np.ndarray = field(repr=False)
    chi_parallel: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)
    regime: np.ndarray = field(repr=False)
    edge_of_chaos: list = field(default_factory=list)
    criticality: dict = field(default_factory=dict)
    ntk_profiles: list = field(default_factory=list)
    ntk_profiles_layernorm: list = field(default_factory=list)

    def to_dict(self):
        def clean(a):
            a = np.asarray(a, dtype=float)
            return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]

        return {
            "activation": self.activation,
            "input_norm": self.input_norm,
            "C_b": self.C_b.tolist(),
            "C_W": self.C_W.tolist(),
            "q_star": clean(self.q_star),
            "chi_perp": clean(self.chi_perp),
            "chi_parallel": clean(self.chi_parallel),
            "beta": clean(self.beta),
            "regime": self.regime.astype(int).tolist(),
            "regime_codes": {"-1": "ordered", "0": "critical", "1": "chaotic", "2": "undetermined"},
            "edge_of_chaos": [list(p) for p in self.edge_of_chaos],
            "criticality": self.criticality,
            "ntk_profiles": [{k: v for k, v in p.items() if k != "normalized"} | {"normalized_last":
                             p["normalized"][-1]} for p in self.ntk_profiles],
            "ntk_profiles_layernorm": [{k: v for k, v in p.items() if k != "normalized"} | {
                "normalized_last": p["normalized"][-1]} for p in self.ntk_profiles_layernorm],
        }


def _grid_moments(act):
    Kg = np.logspace(-12, 12, 24 * 16 + 1)
    try:
        S = gauss.expect_monomials(act, Kg, [_S2, _T2])
        dS = gauss.expect_monomials(act, Kg, [_S2], dk=1)[0]
        return Kg, S[0], S[1], dS
    except NumericalError:
        keep = []
        for i, k in enumerate(Kg):
            try:
                gauss.expect_monomials(act, k, [_S2, _T2])
                gauss.expect_monomials(act, k, [_S2], dk=1)
            except NumericalError:
                break
            keep.append(i)
        if len(keep) < 10:
            raise
        Kg = Kg[:len(keep)]
        S = gauss.expect_monomials(act, Kg, [_S2, _T2])
        return Kg, S[0], S[1], gauss.expect_monomials(act, Kg, [_S2], dk=1)[0]


def _grid_fixed_points(Kg, S, C_b, C_W, q0, act=None):
    """Vectorized q* on the (C_b, C_W) grid by the basin rule (module docstring): the
    crossing is bracketed on the K grid and located by linear interpolation in log K;
    with ``act`` it is then refined by safeguarded Newton steps on exact expectations."""
    B, W = np.meshgrid(C_b, C_W, indexing="ij")
    K1 = B + W * q0
    logK = np.log(Kg)
    with np.errstate(**_QUIET):
        g = B[..., None] + W[..., None] * S - Kg
        g1 = B + W * np.interp(np.log(K1), logK, S) - K1
        q = np.full(B.shape, np.nan)
        lo = np.full(B.shape, np.nan)
        hi = np.full(B.shape, np.nan)
        above = (Kg > K1[..., None]) & (g <= 0)
        below = (Kg < K1[..., None]) & (g >= 0)
        for (i, j), up in np.ndenumerate(g1 > 0):
            hits = np.nonzero((above if up else below)[i, j])[0]
            if hits.size == 0:
                q[i, j] = math.inf if up else 0.0
                continue
            k = hits[0] if up else hits[-1]
            kp = k - 1 if up else k + 1
            inside = (Kg[kp] < K1[i, j]) if up else (Kg[kp] > K1[i, j])
            x0, y0 = (math.log(K1[i, j]), g1[i, j]) if inside else (logK[kp], g[i, j, kp])
            x1, y1 = logK[k], g[i, j, k]
            t = y0 / (y0 - y1) if y0 != y1 else 0.0
            q[i, j] = math.exp(x0 + t * (x1 - x0))
            lo[i, j], hi[i, j] = math.exp(min(x0, x1)), math.exp(max(x0, x1))
    if act is None:
        return q
    sel = np.isfinite(lo)
    if not sel.any():
        return q
    b, w, x, a, c = B[sel], W[sel], q[sel], lo[sel], hi[sel]
    ga = b + w * gauss.expect_monomials(act, a, [_S2])[0] - a
    for _ in range(40):
        s = gauss.expect_monomials(act, x, [_S2])[0]
        ds = gauss.expect_monomials(act, x, [_S2], dk=1)[0]
        gx = b + w * s - x
        same = np.sign(gx) == np.sign(ga)
        a, ga = np.where(same, x, a), np.where(same, gx, ga)
        c = np.where(same, c, x)
        with np.errstate(**_QUIET):
            xn = x - gx / (w * ds - 1.0)
        bad = ~np.isfinite(xn) | (xn <= np.minimum(a, c)) | (xn >= np.maximum(a, c))
        xn = np.where(bad, 0.5 * (a + c), xn)
        done = np.abs(xn - x) <= 1e-14 * x
        x = xn
        if done.all():
            break
    q[sel] = x
    return q


def _safe_moment(act, K, power, dk):
    """A moment on an array of K; NaN where the expectation fails (e.g. overflow at K = 1e12)."""
    try:
        return gauss.expect_monomials(act, K, [power], dk=dk)[0]
    except NumericalError:
        out = np.full(K.shape, np.nan)
        for i, k in enumerate(K):
            try:
                out[i] = gauss.expect_monomials(act, float(k), [power], dk=dk)[0]
            except NumericalError:
                pass
        return out


def phase_diagram(activation: str | Activation, cb_values: Sequence[float] | None = None,
                  cw_values: Sequence[float] | None = None, input_norm: float = 1.0,
                  edge_cb: Sequence[float] | None = None, ntk_depth: int = 40, gram: ArrayLike | None = None,
                  ntk_cb: Sequence[float] | None = None) -> PhaseDiagram:
    """Compute the phase diagram of ``activation`` (module docstring).

    Parameters
    ----------
    cb_values, cw_values : 1-D grids of C_b >= 0 and C_W > 0 for the heat map
        (defaults: C_b in [0, 0.5] step 0.02; C_W linear up to 1.6 times the largest
        edge-of-chaos C_W, or 4).
    edge_cb : C_b values at which the edge of chaos is solved (default: 21 values in [0, 0.5]).
    ntk_depth, gram, ntk_cb : settings of the normalized-NTK depth profiles (an ordered,
        the critical and a chaotic C_W at bias variance ``ntk_cb``, default 0.1 or the
        first C_b where the edge exists).
    """
    from .kernel import criticality

    act = get_activation(activation)
    q0 = check_real("input_norm", input_norm, lower=0.0, lower_open=True)
    edge_cb = np.linspace(0.0, 0.5, 21) if edge_cb is None else np.asarray(edge_cb, dtype=float)
    if edge_cb.ndim != 1 or not np.isfinite(edge_cb).all() or (edge_cb < 0).any():
        raise ParameterError("cb_values", "must be finite numbers >= 0")
    edge = [[float(b), edge_of_chaos(act, float(b), q0)] for b in edge_cb]
    cws = [w for _, w in edge if w is not None]
    Cb = np.linspace(0.0, 0.5, 26) if cb_values is None else np.asarray(cb_values, dtype=float)
    if cw_values is None:
        top = 1.6 * max(cws) if cws else 4.0
        Cw = np.linspace(top / 80, top, 80)
    else:
        Cw = np.asarray(cw_values, dtype=float)
    if (Cb < 0).any() or (Cw <= 0).any() or not (np.isfinite(Cb).all() and np.isfinite(Cw).all()):
        raise ParameterError("cw_values", "C_b must be >= 0 and C_W > 0 (finite)")
    Kg, S, T, dS = _grid_moments_cached(act)
    q = _grid_fixed_points(Kg, S, Cb, Cw, q0, act)
    W = np.broadcast_to(Cw[None, :], q.shape)
    qc = np.clip(q, _K_MIN, _K_MAX).ravel()
    chi_perp = W * _safe_moment(act, qc, _T2, 0).reshape(q.shape)
    chi_par = W * _safe_moment(act, qc, _S2, 1).reshape(q.shape)
    with np.errstate(**_QUIET):
        beta = np.where((q > 0) & np.isfinite(q), np.sqrt(Cb[:, None] / q), np.nan)
    with np.errstate(**_QUIET):
        regime = np.where(np.isfinite(chi_perp), np.sign(np.nan_to_num(chi_perp) - 1.0), 2).astype(int)
    try:
        crit = criticality(act).to_dict()
    except NumericalError as exc:  # the classification needs moments up to K = 1e6
        crit = {"activation": act.name, "universality_class": "unknown", "C_b": None, "C_W": None,
                "K_star": None, "details": {"reason": str(exc)}}
    profiles, profiles_ln = [], []
    if ntk_cb is None:
        ok = [b for b, w in edge if w is not None]
        ntk_cb = 0.1 if any(abs(b - 0.1) < 1e-12 for b in ok) else (ok[0] if ok else None)
    if ntk_cb is not None:
        w_c = edge_of_chaos(act, ntk_cb, q0)
        if w_c is not None:
            for factors in ((0.6,), (1.0,), (1.6, 1.3, 1.1)):
                for fac in factors:  # the chaotic kernel may overflow: try closer to the edge
                    try:
                        profiles.append(ntk_profile(act, ntk_cb, fac * w_c, gram, ntk_depth))
                    except NumericalError:
                        continue
                    try:
                        profiles_ln.append(ntk_profile(act, ntk_cb, fac * w_c, gram, ntk_depth,
                                                       normalization="layernorm"))
                    except NumericalError:
                        pass
                    break
    return PhaseDiagram(act.name, q0, Cb, Cw, q, chi_perp, chi_par, beta, regime, edge, crit, profiles,
                        profiles_ln)


# ------------------------------------------------------------------ output
def _render(diagram, dpi=110):
    """PNG bytes: chi_perp heat map with the edge of chaos, and the NTK depth profiles."""
    from matplotlib import colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.5, 4.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    Cb, Cw = diagram.C_b, diagram.C_W
    chi = np.clip(np.nan_to_num(diagram.chi_perp, nan=1.0, posinf=10.0), 1e-3, 10.0)
    norm = colors.TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, min(float(chi.max()), 3.0)))
    with np.errstate(all="ignore"):
        if len(Cb) > 1 and len(Cw) > 1:
            mesh = ax.pcolormesh(Cb, Cw, chi.T, cmap="coolwarm", norm=norm, shading="auto")
            fig.colorbar(mesh, ax=ax, label=r"$\chi_\perp$ at $q^*$")
        edge = [(b, w) for b, w in diagram.edge_of_chaos if w is not None]
        if edge:
            e = np.array(edge)
            ax.plot(e[:, 0], e[:, 1], "k-o", ms=3, lw=1.5, label=r"edge of chaos $\chi_\perp = 1$")
        crit = diagram.criticality
        if crit.get("C_W") is not None:
            ax.plot([crit["C_b"]], [crit["C_W"]], "y*", ms=14, mec="k",
                    label=f"PDLT criticality ({crit['universality_class']})")
        for p in diagram.ntk_profiles:
            ax.plot([p["C_b"]], [p["C_W"]], "s", ms=6, mfc="none", mec="k")
        if len(Cb) and len(Cw):
            ax.set_xlim(Cb.min(), Cb.max() if Cb.max() > Cb.min() else Cb.min() + 1)
            ax.set_ylim(Cw.min(), Cw.max())
            ax.text(0.03, 0.05, "ordered", transform=ax.transAxes, fontsize=10, color="navy")
            ax.text(0.03, 0.92, "chaotic", transform=ax.transAxes, fontsize=10, color="darkred")
    ax.set_xlabel("$C_b$")
    ax.set_ylabel("$C_W$")
    ax.set_title(f"{diagram.activation}: order-to-chaos phase diagram (q0 = {diagram.input_norm:g})",
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    style = {"ordered": "tab:blue", "critical": "k", "chaotic": "tab:red"}
    for p in diagram.ntk_profiles:
        fit = p.get("fit") or {}
        lab = f"{p['regime']}: C_W = {p['C_W']:.4g}"
        if fit.get("xi"):
            lab += f", xi = {fit['xi']:.3g}"
        bx.plot(p["layers"], p["offdiag"], "-", color=style.get(p["regime"]), lw=1.6, label=lab)
    for p, base in zip(diagram.ntk_profiles_layernorm, diagram.ntk_profiles):
        lab = f"+ LayerNorm (chi = {p['chi_perp']:.3g}, {p['regime']})"
        bx.plot(p["layers"], p["offdiag"], "--", color=style.get(base["regime"]), lw=1.4, label=lab)
    if diagram.ntk_profiles:
        bx.set_title(f"normalized NTK off-diagonal, C_b = {diagram.ntk_profiles[0]['C_b']:g}", fontsize=10)
        bx.legend(fontsize=7, loc="best")
    else:
        bx.set_title("normalized NTK: no edge of chaos for the profiles", fontsize=10)
    bx.set_xlabel(r"layer $\ell$")
    bx.set_ylabel(r"$\Theta_{ab}/\sqrt{\Theta_{aa}\Theta_{bb}}$ (mean over pairs)")
    bx.set_ylim(-0.05, 1.05)
    if diagram.ntk_profiles_layernorm:
        bx.text(0.02, 0.02, "solid: plain; dashed: LayerNorm after each nonlinearity",
                transform=bx.transAxes, fontsize=7)
    bx.grid(True, alpha=0.3)
    from .plotting import figure_png

    return figure_png(fig)


def write_diagram(diagram, out_dir=".", stem="phase"):
    """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir`` atomically; return both paths."""
    from ._io import write_png_and_json

    return write_png_and_json(out_dir, stem, _render(diagram), diagram.to_dict())
