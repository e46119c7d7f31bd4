r"""Kernel shaping: DKS and TAT activation transformations and their finite-width cost.

Deep Kernel Shaping (Martens et al., arXiv:2110.01765) replaces an
activation phi by

.. math::  \hat\phi(x) = \gamma\,(\phi(\alpha x + \beta) + \delta)

in a network with C_W = 1, C_b = 0 (weights of variance 1/fan-in, no bias), and
inputs normalized to q = |x|^2/n0 = 1, chosen so that the local maps of
:mod:`fwtheory.maps` at q = 1 satisfy

* Q(1) = 1 (the kernel diagonal stays at 1 through all layers),
* Q'(1) = E[phi_hat(x) phi_hat'(x) x] = 1 (the Q map is stable at q = 1),
* C(0) = E[phi_hat(x)]^2 = 0 (orthogonal inputs stay orthogonal),
* C_f'(1) = C'(1)^D = zeta (the slope of the network's C map over D
  nonlinear layers; per layer C'(1) = zeta^(1/D), with C'(1) = alpha^2 gamma^2
  E[phi'(alpha x + beta)^2]).

Given (alpha, beta), delta = -E[phi(alpha x + beta)] and gamma = 1 / std(phi(alpha x + beta))
fix Q(1) = 1 and C(0) = 0; the remaining two equations are solved for
(log alpha, beta) by Powell's hybrid method from a few starting points.

Tailored Activation Transformation (Zhang, Botev, Martens, arXiv:2203.08120):

* leaky ReLU: phi_hat(x) = sqrt(2/(1+s^2)) LReLU_s(x) has Q(q) = q
  and C(c) = c + (1-s)^2 (sqrt(1-c^2) - c arccos c) / (pi (1+s^2)); the negative
  slope s is chosen so that the network's C_f(0) = C^{oD}(0) = eta (default 0.9)
  (Brent's method; C_f(0) decreases from the ReLU value at s = 0 to 0 at s = 1);
* smooth activations: Q(1) = 1,
  Q'(1) = 1, C'(1) = 1 and the network's C_f''(1) = D C''(1) = tau (default 0.3),
  unknowns (alpha, beta, delta) with gamma from Q(1) = 1; C(0) is then not 0
  (with C'(1) = 1 and C(0) = 0 the C map would be the identity, i.e. phi_hat linear).
  Following the DKS authors' reference implementation, solutions with
  alpha * gamma >= 2 are rejected.

A network of D nonlinear layers is a PDLT network of depth L = D + 1 (layer 1 is
linear in the input, PDLT eq. (4.8)); :func:`finite_width_cost` evaluates the
leading 1/n ratios V/K^2, A/Theta^2, B/Theta^2 at its output layer with
:func:`fwtheory.predict` for the shaped network (C_W = 1, C_b = 0) and for the
edge-of-chaos initialization of the untransformed activation (PDLT criticality,
:func:`fwtheory.kernel.criticality`, when it exists; otherwise the edge of chaos
at C_b = 0 from :func:`fwtheory.phase.edge_of_chaos`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .activations import Activation

__all__ = ["ShapedActivation", "shape_activation", "finite_width_cost", "METHODS"]

import math
from dataclasses import dataclass, field

import numpy as np

from . import gauss
from .activations import get_activation
from .errors import NumericalError, ParameterError, check_int, check_real

METHODS = ("dks", "tat")
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore", under="ignore")
_SOLVE_TOL = 1e-13


@dataclass(frozen=True)
class ShapedActivation:
    """A transformed activation phi_hat(x) = gamma (phi(alpha x + beta) + delta).

    ``expression`` is phi_hat as a sympy expression string in z (accepted by
    :func:`fwtheory.get_activation`, hence by ``predict``, ``simulate``,
    ``saturation``). ``targets`` holds the requested values, ``achieved`` the
    values recomputed from ``expression`` with :mod:`fwtheory.maps`:
    Q(1), Q'(1), C(0), C'(1), C''(1) of one layer and C_f(0), C_f'(1), C_f''(1)
    of the D-layer network. For TAT on leaky ReLU, ``negative_slope`` is s and
    alpha = 1, beta = delta = 0, gamma = sqrt(2 / (1 + s^2)).
    """

    method: str
    activation: str
    depth: int
    alpha: float
    beta: float
    gamma: float
    delta: float
    expression: str
    targets: dict = field(default_factory=dict)
    achieved: dict = field(default_factory=dict)
    negative_slope: float = None

    def to_dict(self):
        return dict(self.__dict__)


# ------------------------------------------------------------------ expectations
def _moments(act, alpha, beta, delta=None):
    """E over x ~ N(0,1) of g = phi(alpha x + beta) and its derivatives, for the conditions.

    Returns m1 = E[g], m2 = E[g^2], a = E[g phi'(u) x], b = E[g' phi'(u) x] (unused),
    p1 = E[phi'(u)^2], p2 = E[phi''(u)^2] with u = alpha x + beta.
    """
    kinks = tuple((k - beta) / alpha for k in act.kinks)

    memo = {}

    def f(x):
        # gauss.expect integrates one function at a time on the same nodes: evaluate once
        key = (x.shape, x.tobytes())
        if key not in memo:
            with np.errstate(**_QUIET):
                d = act.derivatives(alpha * x + beta, 2)
            memo.clear()
            memo[key] = np.stack([d[0], d[0] ** 2, d[0] * d[1] * x, d[1] * x, d[1] ** 2, d[2] ** 2])
        return memo[key]

    vals = []
    for k in range(6):
        vals.append(gauss.expect(lambda x, k=k: f(x)[k], 1.0, kinks=kinks, rtol=1e-13 if k < 2 else 1e-12))
    return vals


def _local(act, alpha, beta, delta, gamma):
    m1, m2, gpx, px, p1, p2 = _moments(act, alpha, beta)
    Q = gamma ** 2 * (m2 + 2 * delta * m1 + delta ** 2)
    dQ = gamma ** 2 * alpha * (gpx + delta * px)
    C0 = gamma ** 2 * (m1 + delta) ** 2
    dC1 = gamma ** 2 * alpha ** 2 * p1
    d2C1 = gamma ** 2 * alpha ** 4 * p2
    return Q, dQ, C0, dC1, d2C1, (m1, m2)


def _dks_residual(act, D, zeta):
    target = zeta ** (1.0 / D)

    def res(p):
        alpha, beta = math.exp(p[0]), p[1]
        m1, m2, gpx, px, p1, _ = _moments(act, alpha, beta)
        var = m2 - m1 * m1
        if not var > 0:
            return np.array([1e3, 1e3])
        g2 = 1.0 / var
        dQ = g2 * alpha * (gpx - m1 * px)
        dC1 = g2 * alpha * alpha * p1
        return np.array([dQ - 1.0, dC1 - target])
    return res


def _tat_residual(act, D, tau):
    target = tau / D

    def res(p):
        alpha, beta, delta = math.exp(p[0]), p[1], p[2]
        m1, m2, gpx, px, p1, p2 = _moments(act, alpha, beta)
        s2 = m2 + 2 * delta * m1 + delta ** 2
        if not s2 > 0:
            return np.array([1e3, 1e3, 1e3])
        g2 = 1.0 / s2
        return np.array([g2 * alpha * (gpx + delta * px) - 1.0, g2 * alpha ** 2 * p1 - 1.0,
                         g2 * alpha ** 4 * p2 - target])
    return res


def _solve(res, starts, accept=lambda p: True):
    from scipy import optimize

    best = None
    for p0 in starts:
        try:
            with np.errstate(**_QUIET):
                sol = optimize.root(res, np.asarray(p0, dtype=float), method="hybr",
                                    options={"xtol": 1e-14, "maxfev": 2000})
        except (NumericalError, FloatingPointError, ValueError):
            continue
        if not np.isfinite(sol.x).all():
            continue
        err = float(np.max(np.abs(res(sol.x))))
        if err <= 1e-11 and accept(sol.x):
            return sol.x
        if best is None or err < best[0]:
            best = (err, sol.x)
    return None


# ------------------------------------------------------------------ expressions
def _fmt(v):
    return repr(float(v))


def _expression(act, alpha, beta, gamma, delta):
    import sympy

    from .activations import _z

    Z = _z()
    u = sympy.Float(_fmt(alpha), 17) * Z + sympy.Float(_fmt(beta), 17)
    inner = act.expr.subs(Z, u) if beta != 0.0 or alpha != 1.0 else act.expr
    e = sympy.Float(_fmt(gamma), 17) * (inner + sympy.Float(_fmt(delta), 17))
    return sympy.sstr(e, full_prec=True)


def _leaky_c(c, s):
    return ((1 - s) ** 2 * (math.sqrt(max(1 - c * c, 0.0)) + (math.pi - math.acos(min(max(c, -1.0), 1.0))) * c)
            / math.pi + 2 * s * c) / (1 + s * s)


def _leaky_network_c0(s, D):
    c = 0.0
    for _ in range(D):
        c = _leaky_c(c, s)
    return c


def _achieved(expression, D):
    from .maps import compose, local_values

    lv = local_values(expression, q=1.0)
    one = compose(expression, D + 1, input_norm=1.0, input_corr=1.0)
    zero = compose(expression, D + 1, input_norm=1.0, input_corr=0.0)
    return {"Q(1)": lv.Q, "Q'(1)": lv.dQ, "C(0)": lv.C0, "C'(1)": lv.dC1, "C''(1)": lv.d2C1,
            "network C(0)": float(zero.c[-1]), "network C'(1)": float(one.dc[-1]),
            "network C''(1)": float(one.d2c[-1])}


# ------------------------------------------------------------------ public API
def _is_leaky(act):
    return act.code in (1, 2) or (act.kinks == (0.0,) and _scale_free(act))


def _scale_free(act):
    from .kernel import _scale_invariant_slopes

    return _scale_invariant_slopes(act) is not None


def shape_activation(activation: str | Activation, depth: int, zeta: float = 1.5,
                     method: Literal["dks", "tat"] = "dks", eta: float = 0.9, tau: float = 0.3) -> ShapedActivation:
    """Solve the DKS or TAT transformation of ``activation`` for D = ``depth`` nonlinear layers.

    Parameters
    ----------
    activation : str or Activation
        DKS: any activation with a nonzero derivative (smooth or kinked). TAT: "relu" or
        "leaky_relu(a)" (the slope is then solved for) or a smooth activation.
    depth : int
        Number D >= 1 of nonlinear layers (a PDLT network of depth D + 1).
    zeta : float > 1
        DKS target for the network's C_f'(1) (default 1.5, as in DKS).
    method : {"dks", "tat"}
    eta : float in (0, 1)
        TAT target for the leaky-ReLU network's C_f(0) (default 0.9).
    tau : float > 0
        TAT target for a smooth network's C_f''(1) (default 0.3).

    Returns
    -------
    ShapedActivation

    Raises
    ------
    ParameterError
        Bad arguments, or a transformation that cannot exist (e.g. TAT's C''
        condition for a kinked activation).
    NumericalError
        The equations could not be solved from any starting point.
    """
    act = get_activation(activation)
    D = check_int("depth", depth, lower=1)
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ParameterError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    method = method.lower()
    if method == "dks":
        zeta = check_real("zeta", zeta, lower=1.0, lower_open=True)
        if _is_leaky(act):
            raise ParameterError(
                "activation", f"DKS for the positively homogeneous {act.name!r} is not supported (alpha and "
                "beta are redundant, DKS drops the Q'(1) condition and shifts the input); use method='tat', "
                "which solves the leaky-ReLU slope")
        return _shape_dks(act, D, zeta)
    if _is_leaky(act):
        eta = check_real("eta", eta, lower=0.0, upper=1.0, lower_open=True)
        if eta >= 1.0:
            raise ParameterError("eta", f"must be in (0, 1), got {eta}")
        return _shape_tat_leaky(act, D, eta)
    if act.kinks:
        raise ParameterError("method", f"TAT for a kinked activation other than (leaky) ReLU is not "
                                       f"defined (C''(1) is infinite for {act.name!r}); use method='dks'")
    tau = check_real("tau", tau, lower=0.0, lower_open=True)
    return _shape_tat_smooth(act, D, tau)


def _starts2():
    return [(math.log(a), b) for a in (0.5, 1.0, 0.2, 1.5, 0.1) for b in (0.0, 0.5, -0.5, 1.0, -1.0)]


def _shape_dks(act, D, zeta):
    p = _solve(_dks_residual(act, D, zeta), _starts2())
    if p is None:
        raise NumericalError(f"DKS: no (alpha, beta) found for {act.name!r} with zeta = {zeta}, D = {D}")
    alpha, beta = math.exp(p[0]), float(p[1])
    m1, m2, *_ = _moments(act, alpha, beta)
    delta = -m1
    gamma = 1.0 / math.sqrt(m2 - m1 * m1)
    expr = _expression(act, alpha, beta, gamma, delta)
    return ShapedActivation("dks", act.name, D, alpha, beta, gamma, delta, expr,
                            {"Q(1)": 1.0, "Q'(1)": 1.0, "C(0)": 0.0, "C'(1)": zeta ** (1.0 / D),
                             "network C'(1)": zeta}, _achieved(expr, D))


def _shape_tat_smooth(act, D, tau):
    starts = [(math.log(a), b, d) for a in (0.5, 1.0, 0.2, 0.1) for b in (0.0, 0.5, -0.5)
              for d in (0.0, 1.0, -1.0)]

    def accept(p):  # reject alpha * gamma >= 2 (see module docstring)
        alpha, beta, delta = math.exp(p[0]), p[1], p[2]
        m1, m2, *_ = _moments(act, alpha, beta)
        gamma = 1.0 / math.sqrt(m2 + 2 * delta * m1 + delta ** 2)
        return alpha * gamma < 2.0

    p = _solve(_tat_residual(act, D, tau), starts, accept)
    if p is None:
        raise NumericalError(f"TAT: no (alpha, beta, delta) found for {act.name!r} with tau = {tau}, D = {D}")
    alpha, beta, delta = math.exp(p[0]), float(p[1]), float(p[2])
    m1, m2, *_ = _moments(act, alpha, beta)
    gamma = 1.0 / math.sqrt(m2 + 2 * delta * m1 + delta ** 2)
    expr = _expression(act, alpha, beta, gamma, delta)
    return ShapedActivation("tat", act.name, D, alpha, beta, gamma, delta, expr,
                            {"Q(1)": 1.0, "Q'(1)": 1.0, "C'(1)": 1.0, "C''(1)": tau / D,
                             "network C''(1)": tau}, _achieved(expr, D))


def _shape_tat_leaky(act, D, eta):
    from scipy import optimize

    f = lambda s: _leaky_network_c0(s, D) - eta  # noqa: E731 - decreasing in s
    if f(0.0) <= 0.0:
        raise ParameterError("eta", f"must be below the ReLU network's C_f(0) = {f(0.0) + eta:.6g} "
                                    f"at depth {D}")
    s = optimize.brentq(f, 0.0, 1.0, xtol=1e-15, rtol=1e-15, maxiter=200)
    gamma = math.sqrt(2.0 / (1.0 + s * s))
    expr = f"{_fmt(gamma)}*Max(z, {_fmt(s)}*z)"
    return ShapedActivation("tat", act.name, D, 1.0, 0.0, gamma, 0.0, expr,
                            {"Q(1)": 1.0, "Q'(1)": 1.0, "network C(0)": eta}, _achieved(expr, D),
                            negative_slope=s)


def _edge_init(act):
    """(C_b, C_W, how) of the edge-of-chaos initialization of ``act``."""
    from .kernel import criticality
    from .phase import edge_of_chaos

    c = criticality(act)
    if c.universality_class != "none":
        return c.C_b, c.C_W, f"PDLT criticality ({c.universality_class})"
    w = edge_of_chaos(act, 0.0)
    if w is None:
        return None, None, "no edge of chaos at C_b = 0"
    return 0.0, w, "edge of chaos at C_b = 0 (chi_perp(q*) = 1)"


_COST_RATIOS = ("V/K^2", "A/Theta^2", "B/Theta^2")


def finite_width_cost(shaped, width=64):
    """Leading 1/n ratios at the output of the D-layer network: shaped vs edge of chaos.

    Returns a dict with ``layer`` (L = D + 1), ``width`` and, for "shaped" and
    "edge_of_chaos", the network parameters, the ratios V/K^2, A/Theta^2,
    B/Theta^2 at layer L and the same divided by the width (the relative
    finite-width corrections at width n; ratios as in :data:`fwtheory.quantities.RATIOS`).
    """
    from .network import Network
    from .prediction import predict

    if not isinstance(shaped, ShapedActivation):
        raise ParameterError("shaped", f"must be a ShapedActivation, got {type(shaped).__name__}")
    n = check_int("width", width, lower=1)
    L = shaped.depth + 1
    out = {"layer": L, "width": n}
    nets = {"shaped": (shaped.expression, 0.0, 1.0, "shaped activation, C_W = 1, C_b = 0")}
    act = get_activation(shaped.activation)
    if shaped.negative_slope is not None:
        act = get_activation(f"leaky_relu({shaped.negative_slope!r})")
    cb, cw, how = _edge_init(act)
    if cw is not None:
        nets["edge_of_chaos"] = (act, cb, cw, how)
    for key, (a, cb, cw, how) in nets.items():
        p = predict(Network(a, depth=L, width=n, C_b=cb, C_W=cw), input_norm=1.0)
        r = p.ratios
        out[key] = {"activation": get_activation(a).name, "C_b": cb, "C_W": cw, "initialization": how,
                    "ratios": {k: float(r[k][-1]) for k in _COST_RATIOS},
                    "over_width": {k: float(r[k][-1]) / n for k in _COST_RATIOS},
                    "K": float(np.asarray(p["K"], dtype=float)[-1]),
                    "Theta": float(np.asarray(p["Theta"], dtype=float)[-1])}
    if "edge_of_chaos" not in out:
        out["edge_of_chaos"] = None
    return out
