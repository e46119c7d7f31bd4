r"""Kernel maps of one layer and of a deep stack: Q map, C map, NTK correlation map.

Notation of Deep Kernel Shaping (Martens, Ballard, Desjardins, Swirszcz, Dalibard,
Sohl-Dickstein, Schoenholz, arXiv:2110.01765, the local Q and C maps) written in PDLT conventions
(Roberts, Yaida, Hanin, arXiv:2106.10165, Sec. 4.3 and Ch. 5). One layer maps the
preactivation kernel of two inputs with equal norm, K_aa = K_bb = q and
K_ab = q c, to

.. math::

    Q(q) = C_b + C_W \langle\sigma^2\rangle_q, \qquad
    C(c; q) = \frac{C_b + C_W\, E[\sigma(u)\sigma(v)]}{Q(q)},\quad
    (u, v) \sim N\!\left(0, q\begin{pmatrix}1 & c\\ c & 1\end{pmatrix}\right),

so that ``Q`` is PDLT's kernel recursion K^(l+1) = C_b + C_W <sigma^2>_{K^(l)}
(PDLT Sec. 4.3) and ``C`` the recursion of the normalized off-diagonal kernel
(PDLT Sec. 5.1; DKS's local C map, where C_b = 0, C_W = 1 and q = 1). DKS's
"local" values at q = 1 are Q(1), Q'(1) = E[phi(x) phi'(x) x], C(0),
C'(1) and C''(1) (the quantities DKS and TAT, Zhang et al. arXiv:2203.08120, constrain).

Derivatives in c follow from Gaussian integration by parts (Price's theorem):
d^k/dc^k E[sigma(u) sigma(v)] = q^k E[sigma^(k)(u) sigma^(k)(v)], so

    C'(c; q) = C_W q E[sigma'(u) sigma'(v)] / Q(q),
    C''(c; q) = C_W q^2 E[sigma''(u) sigma''(v)] / Q(q).

For activations with kinks (ReLU, leaky ReLU) sigma'' is a delta function; then
C''(c) for |c| < 1 uses the score weight of the bivariate density instead
(dE[f]/dK_ab = E[f ((K^-1 z)_a (K^-1 z)_b - (K^-1)_ab)]), and C''(1) is +inf when
sigma' jumps at a kink. Q derivatives use the Hermite weights of
:mod:`fwtheory.gauss` (no sigma'' needed). All expectations come from
:mod:`fwtheory.gauss` (1-D: relative accuracy 1e-12; 2-D: 1e-12 requested;
kinks integrated exactly by splitting).

Composition over depth (:func:`compose`) follows a PDLT network of depth L:
layer 1 is linear in the inputs (K^(1) = C_b + C_W q0, PDLT eq. (4.8)), then
L - 1 nonlinear layers, each applying (Q, C); the composed C map of those L - 1
layers is c^(1) -> c^(L) and its derivatives follow from the chain rule

    dc^(l+1) = C'(c^(l)) dc^(l),   d2c^(l+1) = C''(c^(l)) (dc^(l))^2 + C'(c^(l)) d2c^(l).

The mean NTK of the two inputs follows PDLT Ch. 8 (with the
learning-rate convention of :mod:`fwtheory.network`):

    Theta^(l+1)_ab = lambda_b + lambda_W <sigma_a sigma_b> + C_W <sigma'_a sigma'_b> Theta^(l)_ab,

and the NTK's own correlation map is rho^(l) = Theta^(l)_ab / Theta^(l)_aa
(Jacot, Gabriel, Ged, Hongler, arXiv:1907.05715: rho -> 1 in the
ordered ("freeze") phase, rho -> 0 in the chaotic phase).
"""

__all__ = ["LocalValues", "Composition", "q_map", "c_map", "local_values", "compose", "ntk_step"]

import math
from dataclasses import dataclass, field

import numpy as np

from . import gauss
from .activations import get_activation
from .errors import NumericalError, ParameterError, check_int, check_real

_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")
_MULTI_RTOL = 1e-12


def _params(C_b, C_W):
    return check_real("C_b", C_b, lower=0.0), check_real("C_W", C_W, lower=0.0, lower_open=True)


def _check_q(q):
    return check_real("q", q, lower=0.0, lower_open=True)


def _check_c(c):
    return check_real("c", c, lower=-1.0, upper=1.0)


def _mono(act, q, powers, dk=0):
    return gauss.expect_monomials(act, float(q), powers, dk=dk)


def _sigma_prime_jumps(act):
    """True if sigma' is discontinuous at one of the kinks (then C''(1) = +inf)."""
    if not act.kinks:
        return False
    with np.errstate(**_QUIET):
        for k in act.kinks:
            h = 1e-7 * max(1.0, abs(k))
            d = act.derivatives(np.array([k - h, k + h]), 1)[1]
            if abs(d[1] - d[0]) > 1e-6 * (abs(d[0]) + abs(d[1]) + 1e-300):
                return True
    return False


def q_map(activation, q, C_b=0.0, C_W=1.0, derivative=0):
    r"""Q(q) = C_b + C_W <sigma^2>_q or its q-derivative (``derivative`` in 0, 1, 2).

    Q'(q) = C_W <sigma^2 (z^2 - q)>_q / (2 q^2) (Hermite weight, PDLT Sec. 5.1
    chi_parallel = Q'(K)); at q = 1, C_b = 0, C_W = 1 this is DKS's
    Q'(1) = E[phi(x) phi'(x) x]. ``q`` may be an array.
    """
    act = get_activation(activation)
    C_b, C_W = _params(C_b, C_W)
    if derivative not in (0, 1, 2):
        raise ParameterError("derivative", f"must be 0, 1 or 2, got {derivative!r}")
    scalar = np.ndim(q) == 0
    qa = np.atleast_1d(np.asarray(q, dtype=float))
    if not (np.isfinite(qa).all() and (qa > 0).all()):
        raise ParameterError("q", "must be finite and > 0")
    v = C_W * gauss.expect_monomials(act, qa, [(2, 0, 0, 0, 0)], dk=derivative)[0]
    if derivative == 0:
        v = C_b + v
    return float(v[0]) if scalar else v


def _pair(act, order):
    def f(Z):
        d = act.derivatives(Z, order)[order]
        return d[0] * d[1]
    return f


def _score_pair(act, q, c):
    """E[sigma'(u) sigma'(v) (a_u a_v - Kinv_uv)] = dE[sigma' sigma']/dK_uv for |c| < 1."""
    det = q * q * (1.0 - c * c)
    Kinv = np.array([[q, -q * c], [-q * c, q]]) / det

    def f(Z):
        d = act.derivatives(Z, 1)[1]
        a = Kinv @ Z
        return d[0] * d[1] * (a[0] * a[1] - Kinv[0, 1])
    return f


def _expect2(f, q, c, kinks):
    cov = q * np.array([[1.0, c], [c, 1.0]])
    return float(gauss.expect_multi_relaxed(f, cov, kinks=kinks, rtols=(_MULTI_RTOL, 1e-10)))


def c_map(activation, c, q=1.0, C_b=0.0, C_W=1.0, derivative=0):
    r"""The correlation map C(c; q) (module docstring) or its c-derivative (0, 1, 2).

    C(c; q) = (C_b + C_W E[sigma(u) sigma(v)]) / Q(q) for (u, v) with variances q
    and correlation c (DKS's local C map; PDLT Sec. 5.1).
    c = 1 and c = 0 use one-dimensional expectations: C(1) = 1,
    C'(1) = C_W q <sigma'^2>_q / Q(q), C''(1) = C_W q^2 <sigma''^2>_q / Q(q)
    (+inf if sigma' jumps), C(0) = (C_b + C_W <sigma>_q^2) / Q(q),
    C'(0) = C_W q <sigma'>_q^2 / Q(q), C''(0) = C_W q^2 <sigma''>_q^2 / Q(q)
    with <sigma''>_q = <sigma (z^2 - q)>_q / q^2 (Stein; valid with kinks).
    """
    act = get_activation(activation)
    C_b, C_W = _params(C_b, C_W)
    q, c = _check_q(q), _check_c(c)
    if derivative not in (0, 1, 2):
        raise ParameterError("derivative", f"must be 0, 1 or 2, got {derivative!r}")
    Q = C_b + C_W * _mono(act, q, [(2, 0, 0, 0, 0)])[0]
    if c == 1.0:
        if derivative == 0:
            return 1.0
        if derivative == 1:
            return C_W * q * _mono(act, q, [(0, 2, 0, 0, 0)])[0] / Q
        if _sigma_prime_jumps(act):
            return math.inf
        return C_W * q * q * _mono(act, q, [(0, 0, 2, 0, 0)])[0] / Q
    if c == 0.0:
        if derivative == 0:
            return (C_b + C_W * _mono(act, q, [(1, 0, 0, 0, 0)])[0] ** 2) / Q
        if derivative == 1:
            return C_W * q * _mono(act, q, [(0, 1, 0, 0, 0)])[0] ** 2 / Q
        s, sz2 = _mono(act, q, [(1, 0, 0, 0, 0), (1, 0, 0, 0, 2)])
        return C_W * q * q * ((sz2 - q * s) / (q * q)) ** 2 / Q
    if derivative == 0:
        return (C_b + C_W * _expect2(_pair(act, 0), q, c, act.kinks)) / Q
    if derivative == 1:
        return C_W * q * _expect2(_pair(act, 1), q, c, act.kinks) / Q
    if act.kinks:
        if abs(c) == 1.0:
            return math.inf if _sigma_prime_jumps(act) else \
                C_W * q * q * _expect2(_pair(act, 2), q, c, act.kinks) / Q
        # d/dc E[s's'] = q dE/dK_ab (score weight), times C_W q / Q
        return C_W * q * q * _expect2(_score_pair(act, q, c), q, c, act.kinks) / Q
    return C_W * q * q * _expect2(_pair(act, 2), q, c, ()) / Q


@dataclass(frozen=True)
class LocalValues:
    """The local map values constrained by DKS / TAT, at input scale ``q``.

    Q = Q(q), dQ = Q'(q), C0 = C(0), dC0 = C'(0), dC1 = C'(1), d2C1 = C''(1)
    (+inf when sigma' jumps at a kink).
    """

    activation: str
    q: float
    C_b: float
    C_W: float
    Q: float
    dQ: float
    C0: float
    dC0: float
    dC1: float
    d2C1: float

    def to_dict(self):
        return dict(self.__dict__)


def local_values(activation, q=1.0, C_b=0.0, C_W=1.0):
    """Q(q), Q'(q), C(0), C'(0), C'(1), C''(1) of one layer (one batch of 1-D expectations)."""
    act = get_activation(activation)
    C_b, C_W = _params(C_b, C_W)
    q = _check_q(q)
    s2, s1, ds1, dd1 = _mono(act, q, [(2, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 1, 0, 0, 0),
                                      (0, 2, 0, 0, 0)])
    dq = _mono(act, q, [(2, 0, 0, 0, 0)], dk=1)[0]
    Q = C_b + C_W * s2
    if _sigma_prime_jumps(act):
        d2 = math.inf
    else:
        d2 = C_W * q * q * _mono(act, q, [(0, 0, 2, 0, 0)])[0] / Q
    return LocalValues(act.name, q, C_b, C_W, float(Q), float(C_W * dq), float((C_b + C_W * s1 * s1) / Q),
                       float(C_W * q * ds1 ** 2 / Q), float(C_W * q * dd1 / Q), float(d2))


def ntk_step(activation, q, c, theta, rho, C_b=0.0, C_W=1.0, lambda_b=0.0, lambda_W=1.0):
    """One layer of the mean-NTK recursion for two inputs of equal norm (module docstring).

    Returns (theta_next, rho_next): the diagonal Theta^(l+1)_aa and the NTK
    correlation rho^(l+1) = Theta^(l+1)_ab / Theta^(l+1)_aa, given the layer-l
    kernel (q, c) and NTK (theta, rho).
    """
    act = get_activation(activation)
    C_b, C_W = _params(C_b, C_W)
    q, c = _check_q(q), _check_c(c)
    s2, t2 = _mono(act, q, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    ss, tt = _pair_moments(act, q, c, s2, t2)
    th_d = lambda_b + lambda_W * s2 + C_W * t2 * theta
    th_o = lambda_b + lambda_W * ss + C_W * tt * theta * rho
    return float(th_d), float(th_o / th_d)


def _pair_moments(act, q, c, s2, t2):
    """E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)] at correlation c (1-D forms at c = 0, 1)."""
    if c == 1.0:
        return s2, t2
    if c == 0.0:
        s, t = _mono(act, q, [(1, 0, 0, 0, 0), (0, 1, 0, 0, 0)])
        return s * s, t * t
    cov = q * np.array([[1.0, c], [c, 1.0]])

    def f(Z):
        d = act.derivatives(Z, 1)
        return np.stack([d[0, 0] * d[0, 1], d[1, 0] * d[1, 1]])
    v = gauss.expect_multi_relaxed(f, cov, kinks=act.kinks, rtols=(_MULTI_RTOL, 1e-10))
    return float(v[0]), float(v[1])


@dataclass(frozen=True)
class Composition:
    """Layer-by-layer maps of a depth-L network for two inputs of equal norm.

    Arrays of shape (L,), index l - 1:

    K : K^(l) (the Q map composed l - 1 times on K^(1))
    dK : dK^(l)/dK^(1) (product of Q'(K^(k)), k < l)
    c : c^(l), the kernel correlation (C maps composed)
    dc, d2c : first and second derivatives of c^(l) with respect to c^(1)
    Theta, rho : mean NTK diagonal Theta^(l)_aa and NTK correlation
        Theta^(l)_ab / Theta^(l)_aa
    """

    activation: str
    C_b: float
    C_W: float
    input_norm: float
    input_corr: float
    layers: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    dK: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)
    dc: np.ndarray = field(repr=False)
    d2c: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)
    rho: np.ndarray = field(repr=False)

    def to_dict(self):
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, np.ndarray)}
        for k in ("layers", "K", "dK", "c", "dc", "d2c", "Theta", "rho"):
            out[k] = getattr(self, k).tolist()
        return out


def compose(activation, depth, input_norm=1.0, input_corr=1.0, C_b=0.0, C_W=1.0,
            lambda_b=0.0, lambda_W=1.0):
    r"""Compose the layer maps over a PDLT network of depth L (module docstring).

    K^(1) = C_b + C_W q0, c^(1) = (C_b + C_W q0 c0) / K^(1) (PDLT eq. (4.8)),
    Theta^(1) = lambda_b + lambda_W q0 (c0 for the off-diagonal); then L - 1
    nonlinear layers. With ``input_corr = 1`` the derivatives ``dc[-1]``,
    ``d2c[-1]`` are the composed network's C'(1), C''(1) (DKS, TAT);
    with ``input_corr = 0`` and C_b = 0, ``c[-1]`` is the composed C(0).
    """
    act = get_activation(activation)
    C_b, C_W = _params(C_b, C_W)
    L = check_int("depth", depth, lower=1)
    q0 = check_real("input_norm", input_norm, lower=0.0, lower_open=True)
    c0 = _check_c(input_corr)
    lam_b = check_real("lambda_b", lambda_b, lower=0.0)
    lam_W = check_real("lambda_W", lambda_W, lower=0.0)
    K, dK, c, dc, d2c, Th, rho = (np.empty(L) for _ in range(7))
    K[0] = C_b + C_W * q0
    c[0] = (C_b + C_W * q0 * c0) / K[0]
    dK[0], dc[0], d2c[0] = 1.0, 1.0, 0.0
    Th[0] = lam_b + lam_W * q0
    rho[0] = (lam_b + lam_W * q0 * c0) / Th[0] if Th[0] > 0 else 1.0
    smooth = not act.kinks
    jump = _sigma_prime_jumps(act)
    for i in range(L - 1):
        q, cc = float(K[i]), float(min(max(c[i], -1.0), 1.0))
        s2, t2, u2 = _mono(act, q, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0), (0, 0, 2, 0, 0)])
        ds2 = _mono(act, q, [(2, 0, 0, 0, 0)], dk=1)[0]
        Q = C_b + C_W * s2
        ss, tt = _pair_moments(act, q, cc, s2, t2)
        C1 = C_W * q * tt / Q
        if cc == 1.0:
            C2 = math.inf if jump else C_W * q * q * u2 / Q
        else:
            C2 = c_map(act, cc, q=q, C_b=C_b, C_W=C_W, derivative=2) if (not smooth or cc == 0.0) \
                else C_W * q * q * _expect2(_pair(act, 2), q, cc, ()) / Q
        K[i + 1] = Q
        dK[i + 1] = C_W * ds2 * dK[i]
        c[i + 1] = 1.0 if cc == 1.0 else (C_b + C_W * ss) / Q
        with np.errstate(**_QUIET):
            d2c[i + 1] = C2 * dc[i] ** 2 + C1 * d2c[i] if d2c[i] != 0.0 or C2 != 0.0 else 0.0
        dc[i + 1] = C1 * dc[i]
        Th[i + 1] = lam_b + lam_W * s2 + C_W * t2 * Th[i]
        rho[i + 1] = (lam_b + lam_W * ss + C_W * tt * Th[i] * rho[i]) / Th[i + 1]
        if not (math.isfinite(K[i + 1]) and K[i + 1] > 0 and math.isfinite(Th[i + 1])):
            raise NumericalError(f"kernel or NTK overflow/underflow at layer {i + 2}: K = {K[i + 1]}")
    return Composition(act.name, C_b, C_W, q0, c0, np.arange(1, L + 1), K, dK, c, dc, d2c, Th, rho)
