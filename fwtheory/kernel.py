r"""Infinite-width (leading-order) theory: kernel, mean NTK, susceptibilities, criticality.

Conventions of PDLT (arXiv:2106.10165; docs/conventions.md): with
q0 = |x|^2 / n0 (``input_norm``) and <.>_K the Gaussian expectation (PDLT eq. (4.25)),

* kernel (PDLT Sec. 4.3; first layer eq. (4.8))::

      K^(1) = C_b + C_W q0,          K^(l+1) = C_b + C_W <sigma^2>_{K^(l)}

* mean NTK (PDLT Ch. 8, lambda_W / n_{l-1} per weight)::

      Theta^(1) = lambda_b + lambda_W q0,
      Theta^(l+1) = lambda_b + lambda_W <sigma^2>_{K^(l)} + chi_perp^(l) Theta^(l)

* susceptibilities (PDLT Sec. 5.1), evaluated at K^(l)::

      chi_par^(l)  = C_W d<sigma^2>_K/dK = C_W <sigma^2 (z^2 - K)>_K / (2 K^2)
      chi_perp^(l) = C_W <sigma'^2>_K

  (Hermite-weight form of the K-derivative, so ReLU needs no sigma'').

The leading-order K and Theta are the same for Gaussian and Haar-orthogonal
weights (the second moments of the two ensembles coincide), so ``network.ensemble`` and
``network.first_layer`` do not enter here; neither does the width.

The fixed-point and criticality analysis follows PDLT Ch. 5 (docs/conventions.md,
"Criticality").
This module imports no sympy (the Monte Carlo package uses it); built-in
activations never load it, custom (sympy-expression) activations bring it
with them wherever they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .activations import Activation

__all__ = [
    "UNIVERSALITY_CLASSES",
    "InfiniteWidth",
    "KernelMatrix",
    "FixedPoints",
    "Criticality",
    "infinite_width",
    "kernel_matrix",
    "fixed_points",
    "criticality",
]

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special

from . import gauss
from .activations import get_activation
from .errors import NumericalError, ParameterError, check_real
from .network import Network

UNIVERSALITY_CLASSES = ("scale-invariant", "K*=0", "half-stable", "none")

_SIGMA2 = (2, 0, 0, 0, 0)  # sigma^2
_DSIGMA2 = (0, 2, 0, 0, 0)  # sigma'^2
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _readonly(a, dtype=float):
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


# ------------------------------------------------------------------ single input
@dataclass(frozen=True)
class InfiniteWidth:
    """Leading-order single-input statistics per layer (arrays of shape (L,), index l-1).

    Attributes
    ----------
    network : Network
    input_norm : float
        q0 = |x|^2 / n0.
    layers : ndarray of int, 1..L
    K : kernel K^(l) (PDLT Sec. 4.3)
    Theta : mean NTK Theta^(l) (PDLT Ch. 8)
    chi_parallel, chi_perp : susceptibilities at K^(l) (PDLT Sec. 5.1)
    """

    network: Network
    input_norm: float
    layers: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)
    chi_parallel: np.ndarray = field(repr=False)
    chi_perp: np.ndarray = field(repr=False)

    def to_dict(self):
        """Plain-JSON dictionary (network parameters, input norm, per-layer lists)."""
        return {
            "network": self.network.to_dict(),
            "input_norm": self.input_norm,
            "layers": [int(v) for v in self.layers],
            "K": self.K.tolist(),
            "Theta": self.Theta.tolist(),
            "chi_parallel": self.chi_parallel.tolist(),
            "chi_perp": self.chi_perp.tolist(),
        }


def _sigma_only(activation):
    """Vectorized sigma alone for the per-layer loop (the built-ins' closed forms
    of :mod:`fwtheory.activations`, without computing unused derivatives; tests
    check equality with ``activation.derivatives(x, 0)[0]``)."""
    code, a = activation.code, activation.slope
    table = {
        0: lambda x: x,
        1: lambda x: np.maximum(x, 0.0),
        2: lambda x: np.where(x >= 0, x, a * x),
        3: np.tanh,
        4: np.sin,
        5: special.erf,
        6: special.expit,
        7: lambda x: np.logaddexp(0.0, x),
        8: lambda x: x * special.ndtr(x),
        9: lambda x: x * special.expit(x),
    }
    if code in table:
        return table[code]
    return lambda x: activation.derivatives(x, 0)[0]


@lru_cache(maxsize=None)
def _sigma2_rules():
    """Per quadrature level of :mod:`fwtheory.gauss` (kink at most at 0): nodes x
    of the lo and hi half-range rules on both half lines, and the (N, 2) weight
    matrix whose columns give the lo and hi estimates of <sigma^2>."""
    rules = []
    for n_lo, n_hi in gauss._HALF_LEVELS:
        (t_lo, w_lo), (t_hi, w_hi) = gauss.half_hermite_rule(n_lo), gauss.half_hermite_rule(n_hi)
        x = np.concatenate([t_lo, -t_lo, t_hi, -t_hi])
        W = np.zeros((x.size, 2))
        W[:2 * n_lo, 0] = np.concatenate([w_lo, w_lo])
        W[2 * n_lo:, 1] = np.concatenate([w_hi, w_hi])
        rules.append((x, W))
    return tuple(rules)


# ------------------------------------------------------------------
# The leading-order layer maps, written once. Plain arithmetic, so that the
# same functions evaluate floats here and sympy symbols in the test that holds
# them equal to the derived recursions, derive("K") and derive("Theta")
# (tests/test_kernel.py::test_layer_maps_are_the_derived_recursions).

def kernel_first_layer(C_b, C_W, q0):
    """K^(1) = C_b + C_W q0 (PDLT eq. (4.8))."""
    return C_b + C_W * q0


def kernel_step(C_b, C_W, s2):
    """K^(l+1) = C_b + C_W <sigma^2>_{K^(l)} (PDLT Sec. 4.3); ``s2`` = <sigma^2>."""
    return C_b + C_W * s2


def ntk_first_layer(lambda_b, lambda_W, q0):
    """Theta^(1) = lambda_b + lambda_W q0 (PDLT Ch. 8)."""
    return lambda_b + lambda_W * q0


def ntk_step(lambda_b, lambda_W, C_W, s2, t2, theta):
    """Theta^(l+1) = lambda_b + lambda_W <sigma^2> + C_W <sigma'^2> Theta^(l)
    (PDLT Ch. 8; C_W <sigma'^2> = chi_perp); ``t2`` = <sigma'^2>."""
    return lambda_b + lambda_W * s2 + C_W * t2 * theta


def _kernel_recursion(act, C_b, C_W, K, S, rtol=gauss.DEFAULT_RTOL):
    """Fill K[1:] and S[:-1] = <sigma^2>_{K[:-1]} by K^(l+1) = C_b + C_W S^(l) (PDLT Sec. 4.3).

    Lean per-layer loop (this is the sequential part of the depth recursion):
    sigma alone on the nodes of the lo and hi rules of one quadrature level of
    :mod:`fwtheory.gauss`, accepted when |hi - lo| <= rtol * hi (sigma^2 >= 0,
    so hi is also the scale <|sigma^2|>); otherwise the next level, and after
    the last level the error-controlled (adaptive) engine. Each layer starts at
    the level of the previous one; every 64 layers the loop tries level 0
    again. Activations with kinks away from 0 use the engine for every layer.
    """
    L = len(K)
    sigma = _sigma_only(act)
    rules = _sigma2_rules() if gauss._only_zero_kink(act.kinks) else ()
    lev = 0
    with np.errstate(**_QUIET):
        for i in range(L - 1):
            if i % 64 == 0:
                lev = 0
            sk = math.sqrt(K[i])
            while lev < len(rules):
                x, W = rules[lev]
                s = sigma(sk * x)
                lo, hi = (s * s) @ W
                if abs(hi - lo) <= rtol * hi:
                    v = float(hi)
                    break
                lev += 1
            else:
                try:
                    v = float(gauss._monomials(act, K[i:i + 1], (_SIGMA2,), (0,))[0][0, 0, 0])
                except NumericalError as exc:
                    raise NumericalError(f"layer {i + 1} (K = {K[i]:.6g}): {exc}") from None
                lev = 0
            k = kernel_step(C_b, C_W, v)
            if not 0.0 < k < math.inf:
                _raise_bad_kernel(k, i + 2, K[i])
            S[i] = v
            K[i + 1] = k


def _chi_moments(act, K):
    """<sigma^2>, <sigma'^2> and their K-derivatives at every K: shape (2, L, 2)."""
    try:
        return gauss._monomials(act, K, (_SIGMA2, _DSIGMA2), (0, 1))[0]
    except NumericalError:
        for i in range(len(K)):  # locate the layer for the message
            try:
                gauss._monomials(act, K[i:i + 1], (_SIGMA2, _DSIGMA2), (0, 1))
            except NumericalError as inner:
                raise NumericalError(f"layer {i + 1} (K = {K[i]:.6g}): {inner}") from None
        raise


def _raise_bad_kernel(k, layer, k_prev):
    if math.isnan(k) or k == math.inf:
        raise NumericalError(
            f"kernel overflow at layer {layer}: K^({layer}) = {k} (K^({layer - 1}) = {k_prev:.6g}); "
            "C_W is far above criticality for this depth")
    raise NumericalError(
        f"kernel underflow at layer {layer}: K^({layer}) = {k} (K^({layer - 1}) = {k_prev:.6g}); "
        "C_W is far below criticality for this depth")


def infinite_width(network: Network, input_norm: float = 1.0) -> InfiniteWidth:
    r"""Per-layer kernel, mean NTK and susceptibilities of ``network`` for one input.

    Recursions of the kernel (PDLT Sec. 4.3 and eq. (4.8)), the mean NTK
    (PDLT Ch. 8) and the chi's (PDLT Sec. 5.1);
    see the module docstring. Expectations to relative accuracy ~1e-12 with
    kinks integrated exactly (:mod:`fwtheory.gauss`).

    Parameters
    ----------
    network : Network
    input_norm : float
        q0 = |x|^2 / n0 >= 0 (finite). With C_b = 0 it must be > 0.

    Returns
    -------
    InfiniteWidth

    Raises
    ------
    ParameterError
        Bad ``network`` or ``input_norm``.
    NumericalError
        K or Theta overflows/underflows (the message names the layer), or a
        Gaussian expectation does not reach its accuracy.
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    if getattr(network, "residual", None) is not None:
        raise ParameterError("residual", "infinite_width() does not yet provide the residual recursions; "
                                         "simulate() supports residual networks")
    q0 = check_real("input_norm", input_norm, lower=0.0)
    L, act = network.depth, network.activation
    C_b, C_W, lam_b, lam_W = network.C_b, network.C_W, network.lambda_b, network.lambda_W
    K = np.empty(L)
    S = np.empty(L)  # S[i] = <sigma^2>_{K[i]}
    K[0] = kernel_first_layer(C_b, C_W, q0)
    if K[0] == 0.0:
        raise ParameterError(
            "input_norm", "must be > 0 when C_b = 0: K^(1) = C_b + C_W * input_norm would vanish "
            "(a zero input has no Gaussian statistics)")
    if not math.isfinite(K[0]):
        raise NumericalError(f"kernel overflow at layer 1: K^(1) = C_b + C_W * input_norm = {K[0]}")
    with np.errstate(**_QUIET):   # non-finite quadrature is reported as a NumericalError,
        _kernel_recursion(act, C_b, C_W, K, S)     # not also as numpy RuntimeWarnings
        moments = _chi_moments(act, K)
    chi_par = C_W * moments[0, :, 1]  # PDLT Sec. 5.1: C_W d<sigma^2>/dK
    chi_perp = C_W * moments[1, :, 0]  # PDLT Sec. 5.1: C_W <sigma'^2>
    Theta = np.empty(L)
    Theta[0] = ntk_first_layer(lam_b, lam_W, q0)
    t2 = moments[1, :, 0]
    with np.errstate(**_QUIET):
        for i in range(L - 1):
            Theta[i + 1] = ntk_step(lam_b, lam_W, C_W, S[i], t2[i], Theta[i])
    if not np.isfinite(Theta).all():
        bad = int(np.nonzero(~np.isfinite(Theta))[0][0])
        raise NumericalError(f"mean NTK overflow at layer {bad + 1}: Theta^({bad + 1}) = {Theta[bad]}")
    return InfiniteWidth(network, q0, _readonly(np.arange(1, L + 1), int), _readonly(K),
                         _readonly(Theta), _readonly(chi_par), _readonly(chi_perp))


# ------------------------------------------------------------------ several inputs
@dataclass(frozen=True)
class KernelMatrix:
    """Leading-order kernel and mean NTK for m inputs.

    ``K`` and ``Theta`` have shape (L, m, m); index [l-1, a, b] is layer l,
    inputs a, b. ``gram`` is the input Gram matrix x_a.x_b / n0.
    """

    network: Network
    gram: np.ndarray = field(repr=False)
    layers: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)

    def to_dict(self):
        return {
            "network": self.network.to_dict(),
            "gram": self.gram.tolist(),
            "layers": [int(v) for v in self.layers],
            "K": self.K.tolist(),
            "Theta": self.Theta.tolist(),
        }


def kernel_matrix(network: Network, gram: ArrayLike) -> KernelMatrix:
    r"""Kernel K^(l)_{ab} and mean NTK Theta^(l)_{ab} for m <= 4 inputs.

    PDLT eq. (4.8), Sec. 4.3 and Ch. 8 (multi-input forms)::

        K^(1)_ab = C_b + C_W G_ab,   Theta^(1)_ab = lambda_b + lambda_W G_ab,
        K^(l+1)_ab = C_b + C_W <sigma_a sigma_b>_{K^(l)},
        Theta^(l+1)_ab = lambda_b + lambda_W <sigma_a sigma_b>_{K^(l)}
                         + C_W <sigma'_a sigma'_b>_{K^(l)} Theta^(l)_ab,

    with G_ab = x_a.x_b / n0 (``gram``). Diagonal entries use the 1-D engine,
    off-diagonal ones the 2-D Gaussian expectation over the 2x2 sub-kernel
    (:func:`fwtheory.gauss.expect_multi`, kinks integrated exactly, relative
    accuracy 1e-11).

    Returns
    -------
    KernelMatrix
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    if getattr(network, "residual", None) is not None:
        raise ParameterError("residual", "kernel_matrix() does not yet provide the residual recursions; "
                                         "simulate() supports residual networks")
    G = gauss._check_cov(gram, name="gram")
    m, L, act = G.shape[0], network.depth, network.activation
    C_b, C_W, lam_b, lam_W = network.C_b, network.C_W, network.lambda_b, network.lambda_W
    K = np.empty((L, m, m))
    Theta = np.empty((L, m, m))
    K[0] = kernel_first_layer(C_b, C_W, G)      # entrywise on the Gram matrix
    Theta[0] = ntk_first_layer(lam_b, lam_W, G)
    if not (np.diag(K[0]) > 0).all():
        a = int(np.nonzero(~(np.diag(K[0]) > 0))[0][0])
        raise ParameterError("gram", f"input {a} has K^(1)_aa = C_b + C_W gram[a, a] = 0 "
                                     "(a zero input needs C_b > 0)")

    def pair(Z):
        d = act.derivatives(Z, 1)  # (2, m=2, N)
        return np.stack([d[0, 0] * d[0, 1], d[1, 0] * d[1, 1]])

    for i in range(L - 1):
        k = K[i]
        if not np.isfinite(k).all():
            raise NumericalError(f"kernel overflow at layer {i + 1}")
        diag, _, _ = gauss._monomials(act, np.diag(k).copy(), (_SIGMA2, _DSIGMA2), (0,))
        ss = np.diag(diag[0, :, 0]).astype(float)
        tt = np.diag(diag[1, :, 0]).astype(float)
        for a in range(m):
            for b in range(a + 1, m):
                sub = k[np.ix_((a, b), (a, b))]
                try:
                    v = gauss.expect_multi(pair, sub, kinks=act.kinks, rtol=1e-11)
                except NumericalError as exc:
                    raise NumericalError(f"layer {i + 1}, inputs ({a}, {b}): {exc}") from None
                ss[a, b] = ss[b, a] = v[0]
                tt[a, b] = tt[b, a] = v[1]
        K[i + 1] = kernel_step(C_b, C_W, ss)
        Theta[i + 1] = ntk_step(lam_b, lam_W, C_W, ss, tt, Theta[i])
    if not (np.isfinite(K).all() and np.isfinite(Theta).all()):
        bad = int(np.nonzero(~(np.isfinite(K).all(axis=(1, 2)) & np.isfinite(Theta).all(axis=(1, 2))))[0][0])
        raise NumericalError(f"kernel or NTK overflow at layer {bad + 1}")
    return KernelMatrix(network, _readonly(G), _readonly(np.arange(1, L + 1), int),
                        _readonly(K), _readonly(Theta))


# ------------------------------------------------------------------ fixed points
_K_GRID = np.logspace(-6, 6, 601)  # search grid (50 points per decade) for fixed points and K*


def _moments(act, K, dks=(0, 1)):
    """<sigma^2>, <sigma'^2> (and K-derivatives) on an array of K: shape (2, len(K), len(dks))."""
    return gauss._monomials(act, np.atleast_1d(np.asarray(K, dtype=float)), (_SIGMA2, _DSIGMA2), dks)[0]


def _grid_moments(act):
    """Moments on the search grid, truncated before the first K where the
    Gaussian expectations fail (e.g. overflow for exponentially growing sigma)."""
    try:
        return _K_GRID, _moments(act, _K_GRID)
    except NumericalError:
        for i, k in enumerate(_K_GRID):
            try:
                _moments(act, k)
            except NumericalError:
                if i < 2:
                    raise
                return _K_GRID[:i], _moments(act, _K_GRID[:i])
        raise


def _scale_invariant_slopes(act):
    """(a_plus, a_minus) if sigma = a_+ z theta(z) + a_- z theta(-z) (PDLT Sec. 5.2), else None."""
    if not gauss._only_zero_kink(act.kinks):
        return None
    z = np.array([0.3, 0.7, 1.1, 1.9, 3.7, 9.0])
    z = np.concatenate([z, -z])
    with np.errstate(**_QUIET):
        d = act.derivatives(z, 2)
    if not np.isfinite(d).all():
        return None
    s, s1, s2 = d
    tol = 1e-12 * (np.abs(s) + np.abs(z * s1) + 1e-300)
    if not (np.abs(s - z * s1) <= tol).all() or not (np.abs(s2) <= 1e-12 * (np.abs(s1) + 1e-300)).all():
        return None
    pos, neg = s1[:6], s1[6:]
    if np.ptp(pos) > 1e-12 * abs(pos[0]) or np.ptp(neg) > 1e-12 * abs(neg[0]):
        return None
    return float(pos[0]), float(neg[0])


@dataclass(frozen=True)
class FixedPoints:
    """Fixed points K* = C_b + C_W <sigma^2>_{K*} of the kernel recursion (PDLT Sec. 5.1).

    ``K_star`` lists the isolated fixed points found in [0, 1e6] (ascending),
    with ``chi_parallel``/``chi_perp`` there and ``stability`` ("stable" if
    chi_par < 1, "unstable" if > 1, "marginal" if = 1 to 1e-9).
    ``line_of_fixed_points`` is True when every K is a fixed point
    (scale-invariant activation at C_b = 0, C_W = 1/A_2); K_star is then empty.
    """

    activation: str
    C_b: float
    C_W: float
    K_star: tuple
    chi_parallel: tuple
    chi_perp: tuple
    stability: tuple
    line_of_fixed_points: bool = False

    def to_dict(self):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def fixed_points(activation: str | Activation, C_b: float, C_W: float) -> FixedPoints:
    r"""Fixed points of K -> C_b + C_W <sigma^2>_K (PDLT Sec. 5.1).

    Sign changes of g(K) = C_b + C_W <sigma^2>_K - K on a logarithmic grid of
    [1e-6, 1e6] are refined with Brent's method; double roots (g touching 0,
    as at a half-stable critical point) are found as zeros of g at the
    extrema of g (chi_par = 1). K = 0 is a fixed point when C_b = 0 and
    sigma(0) = 0; its susceptibilities are the K -> 0+ limits (taken at K = 1e-12).
    """
    from scipy import optimize

    act = get_activation(activation)
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    slopes = _scale_invariant_slopes(act)
    if slopes is not None and C_b == 0.0:
        A2 = 0.5 * (slopes[0] ** 2 + slopes[1] ** 2)
        if abs(C_W * A2 - 1.0) <= 1e-12:
            return FixedPoints(act.name, C_b, C_W, (), (), (), (), line_of_fixed_points=True)

    def g(K):
        return C_b + C_W * _moments(act, K, (0,))[0, 0, 0] - K

    def chi_minus_one(K):
        return C_W * _moments(act, K, (1,))[0, 0, 0] - 1.0

    grid, mom = _grid_moments(act)
    gv = C_b + C_W * mom[0, :, 0] - grid
    cv = C_W * mom[0, :, 1] - 1.0
    roots = []
    if C_b == 0.0 and act.derivatives(np.zeros(1), 0)[0, 0] == 0.0:
        roots.append(0.0)
    for i in np.nonzero(np.sign(gv[:-1]) * np.sign(gv[1:]) < 0)[0]:
        roots.append(optimize.brentq(g, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15))
    for i in np.nonzero(np.sign(cv[:-1]) * np.sign(cv[1:]) < 0)[0]:
        ke = optimize.brentq(chi_minus_one, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15)
        if abs(g(ke)) <= 1e-9 * max(ke, 1e-300) and not any(abs(ke - r) <= 1e-6 * ke for r in roots):
            roots.append(ke)
    for i in np.nonzero(gv == 0.0)[0]:
        if not any(abs(grid[i] - r) <= 1e-9 * grid[i] for r in roots):
            roots.append(float(grid[i]))
    roots = sorted(roots)
    at = np.array([max(r, 1e-12) for r in roots])
    if roots:
        mm = _moments(act, at)
        chi_par = tuple(float(v) for v in C_W * mm[0, :, 1])
        chi_perp = tuple(float(v) for v in C_W * mm[1, :, 0])
    else:
        chi_par = chi_perp = ()
    stab = tuple("marginal" if abs(c - 1) <= 1e-9 else ("stable" if c < 1 else "unstable") for c in chi_par)
    return FixedPoints(act.name, C_b, C_W, tuple(float(r) for r in roots), chi_par, chi_perp, stab)


# ------------------------------------------------------------------ criticality
@dataclass(frozen=True)
class Criticality:
    """Critical initialization of an activation (PDLT Ch. 5; docs/conventions.md).

    ``universality_class`` is one of :data:`UNIVERSALITY_CLASSES`. ``C_b``,
    ``C_W`` are None for "none"; ``K_star`` is None for "scale-invariant"
    (every K is a fixed point) and "none". ``details`` holds the class
    constants (A_2, A_4, nu for scale-invariant; sigma_1, a_1 for K*=0; the
    susceptibilities at K* for half-stable).
    """

    activation: str
    universality_class: str
    C_b: float = None
    C_W: float = None
    K_star: float = None
    details: dict = field(default_factory=dict)

    def to_dict(self):
        return {"activation": self.activation, "universality_class": self.universality_class,
                "C_b": self.C_b, "C_W": self.C_W, "K_star": self.K_star, "details": dict(self.details)}


def criticality(activation: str | Activation) -> Criticality:
    r"""Classify an activation and return its critical (C_b, C_W, K*).

    Recipe of docs/conventions.md, "Criticality" (PDLT Ch. 5), tried in this order:

    1. **scale-invariant** (PDLT Sec. 5.2): sigma = a_+ z theta(z) + a_- z theta(-z)
       (checked numerically: kinks only at 0, sigma = z sigma', sigma'' = 0).
       A_2 = (a_+^2 + a_-^2)/2; C_b = 0, C_W = 1/A_2; every K is a fixed point
       (K_star None). details: A_2, A_4, nu = 3 A_4/A_2^2 - 1 (V/K^2 = nu (l-1)).
    2. **K*=0** (PDLT Sec. 5.3.3): smooth at 0 with sigma_0 = 0, sigma_1 != 0 and
       a_1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2 < 0 (the kernel flows to 0
       as 1/(-a_1 l)); C_b = 0, C_W = 1/sigma_1^2, K* = 0. If a_1 = 0 the flow is
       checked numerically.
    3. **half-stable** (PDLT Sec. 5.3.4): a K* > 0 with chi_par(K*) = chi_perp(K*),
       i.e. <sigma^2 (z^2 - K*)>_{K*} = 2 K*^2 <sigma'^2>_{K*} (roots on [1e-6, 1e6],
       refined by Brent's method), then C_W = 1/<sigma'^2>_{K*},
       C_b = K* - C_W <sigma^2>_{K*}, which must be >= 0. The smallest valid K*
       is returned (others in details["other_K_star"]).
    4. **none** otherwise (e.g. sigmoid, softplus; PDLT Sec. 5.3.2).
    """
    act = get_activation(activation)
    slopes = _scale_invariant_slopes(act)
    if slopes is not None:
        ap, am = slopes
        A2, A4 = 0.5 * (ap ** 2 + am ** 2), 0.5 * (ap ** 4 + am ** 4)
        if A2 > 0:
            return Criticality(act.name, "scale-invariant", 0.0, 1.0 / A2, None,
                               {"a_plus": ap, "a_minus": am, "A_2": A2, "A_4": A4,
                                "nu": 3.0 * A4 / A2 ** 2 - 1.0})
        return Criticality(act.name, "none", details={"reason": "sigma vanishes identically"})
    k0 = _k_star_zero(act)
    if k0 is not None:
        return k0
    return _half_stable(act)


def _k_star_zero(act):
    if any(k == 0.0 for k in act.kinks):
        return None
    s0, s1, s2, s3 = (float(v) + 0.0 for v in act.derivatives(np.zeros(1), 3)[:, 0])  # no -0.0
    if abs(s0) > 1e-14 or abs(s1) < 1e-12:
        return None
    a1 = s3 / s1 + 0.75 * (s2 / s1) ** 2  # docs/conventions.md, K* = 0 class
    C_W = 1.0 / (s1 * s1)
    if abs(a1) <= 1e-10:  # next order decides: does the kernel flow to 0 at (0, C_W)?
        ks = np.array([1e-2, 3e-2, 1e-1])
        flows_down = (C_W * _moments(act, ks, (0,))[0, :, 0] < ks).all()
        if not flows_down:
            return None
    elif a1 > 0:
        return None
    return Criticality(act.name, "K*=0", 0.0, C_W, 0.0,
                       {"sigma_1": s1, "sigma_2": s2, "sigma_3": s3, "a_1": a1})


def _half_stable(act):
    from scipy import optimize

    def ratio(K):  # chi_par/C_W - chi_perp/C_W
        m = _moments(act, K)
        return m[0, 0, 1] - m[1, 0, 0]

    grid, mom = _grid_moments(act)
    rv = mom[0, :, 1] - mom[1, :, 0]
    candidates = []
    for i in np.nonzero(np.sign(rv[:-1]) * np.sign(rv[1:]) < 0)[0]:
        ks = optimize.brentq(ratio, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15, maxiter=200)
        m = _moments(act, ks)
        C_W = 1.0 / m[1, 0, 0]
        C_b = ks - C_W * m[0, 0, 0]
        if C_b >= -1e-12 * ks:
            candidates.append((float(ks), max(float(C_b), 0.0), float(C_W), float(C_W * m[0, 0, 1]),
                               float(C_W * m[1, 0, 0])))
    if not candidates:
        return Criticality(act.name, "none", details={
            "reason": f"no K* > 0 in [1e-6, {grid[-1]:.3g}] with chi_par = chi_perp = 1 and C_b >= 0"})
    ks, C_b, C_W, cpar, cperp = candidates[0]
    details = {"chi_parallel": cpar, "chi_perp": cperp}
    if len(candidates) > 1:
        details["other_K_star"] = [c[0] for c in candidates[1:]]
    return Criticality(act.name, "half-stable", C_b, C_W, ks, details)
