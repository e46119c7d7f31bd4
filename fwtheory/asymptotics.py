"""Large-depth asymptotics of the K* = 0 universality class (tanh, sin, ...).

At criticality (C_b = 0, C_W = 1/sigma_1^2) the kernel flows to zero,
K^(l+1) = K + a_1 K^2 + O(K^3), a_1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2,
so K^(l) ~ 1/(-a_1 l) when a_1 < 0 (PDLT arXiv:2106.10165 Sec. 5.3.3;
docs/conventions.md, "Criticality"). Every other correlator X obeys a derived
recursion X' = s + m X (:func:`fwtheory.symbolic.derive`); expanding the
Gaussian moments in small K from the Taylor series of sigma, with
K = 1/(-a_1 l) and the power laws already found for the quantities X depends on,
the leading balance of s ~ c_s l^(-g) and m = 1 + mu/l gives

    X ~ c_s / (1 - g - mu) * l^(1-g)          (or c_s l^(1-g) ln l when 1 - g - mu = 0).

Results (Gaussian weights): V/K^2 -> (2/3) l, G1 -> 1/(3 a_1); orthogonal
weights: V/K^2 -> -2 (Day, Kahn, Roberts arXiv:2310.07765; docs/references.md item 6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .activations import Activation

__all__ = ["kstar0_asymptotics", "Asymptotics"]

from dataclasses import dataclass
from functools import lru_cache

import sympy

from .errors import ParameterError
from .quantities import CORRELATORS

ell = sympy.Symbol("l", positive=True)
_LOG = sympy.log(ell)
_ORDER = ("Theta", "V", "G1", "F", "B", "D", "A", "Theta1")
_TAYLOR_ORDER = 9
_K_ORDER = 4


@dataclass(frozen=True)
class Asymptotics:
    """Leading large-depth forms ``leading[name]`` (sympy expressions in ``l``).

    ``None`` marks a correlator whose leading source cancels (e.g. D for tanh with
    Gaussian weights, which grows like log l): the power-law balance cannot fix it,
    and it is reported as undetermined rather than guessed.
    """

    activation: str
    ensemble: str
    a1: sympy.Expr
    leading: dict

    def ratio(self, num, *den):
        """Leading form of num/den..., or None when a factor is undetermined."""
        parts = [self.leading[num]] + [self.leading[d] for d in den]
        if any(p is None for p in parts):
            return None
        out = parts[0]
        for d in parts[1:]:
            out = out / d
        return sympy.simplify(out)

    @property
    def ratios(self):
        return {
            "V/K^2": self.ratio("V", "K", "K"), "G1/K": self.ratio("G1", "K"),
            "Theta1/Theta": self.ratio("Theta1", "Theta"),
            "A/Theta^2": self.ratio("A", "Theta", "Theta"), "B/Theta^2": self.ratio("B", "Theta", "Theta"),
            "D/(K Theta)": self.ratio("D", "K", "Theta"), "F/(K Theta)": self.ratio("F", "K", "Theta"),
        }

    def __str__(self):
        lines = [f"# K*=0 class, {self.activation}, {self.ensemble} weights, critical C_b = 0, "
                 f"C_W = 1/sigma_1^2; a_1 = {sympy.sstr(self.a1)}; leading large-l forms"]
        def show(v):
            return "undetermined at this order (leading terms cancel)" if v is None else sympy.sstr(v)

        lines += [f"{k} ~ {show(self.leading[k])}" for k in CORRELATORS]
        lines += [f"{k} ~ {show(v)}" for k, v in self.ratios.items()]
        return "\n".join(lines)


def _taylor(activation):
    z = sympy.Symbol("z", real=True)
    expr = activation.expr.xreplace({s: z for s in activation.expr.free_symbols})
    poly = sympy.series(expr, z, 0, _TAYLOR_ORDER + 1).removeO()
    return z, sympy.expand(poly)


def _moment_series(poly_derivs, z, powers, dk, K):
    a, b, c, e, d = powers
    f = sympy.expand(poly_derivs[0] ** a * poly_derivs[1] ** b * poly_derivs[2] ** c
                     * poly_derivs[3] ** e * z ** d)
    total = sympy.Integer(0)
    for (p,), coeff in sympy.Poly(f, z).terms():
        if p % 2 == 0 and p // 2 <= _K_ORDER + 2:
            total += coeff * sympy.factorial2(p - 1) * K ** (p // 2)
    total = sympy.diff(total, K, dk)
    return total


def _leading(expr, t):
    """Leading term c t^p of an expression in t -> 0 (t = 1/l), with log kept as a symbol."""
    ser = sympy.expand(sympy.series(expr, t, 0, 6).removeO())
    if ser == 0:
        return sympy.Integer(0), None
    terms = sympy.Add.make_args(ser)
    powers = [term.as_coeff_exponent(t)[1] for term in terms]
    p = min(powers)
    c = sum(term.as_coeff_exponent(t)[0] for term, q in zip(terms, powers) if q == p)
    return sympy.simplify(c), p


def kstar0_asymptotics(activation: str | Activation, ensemble: Literal["gaussian", "orthogonal"] = "gaussian",
                       lambda_b: Any = 0, lambda_W: Any = 1) -> Asymptotics:
    """Leading large-depth behaviour of all correlators for a K*=0-class activation."""
    from .activations import get_activation

    act = get_activation(activation)
    if ensemble not in ("gaussian", "orthogonal"):
        raise ParameterError("ensemble", f"must be 'gaussian' or 'orthogonal', got {ensemble!r}")
    return _asymptotics(act, ensemble, sympy.nsimplify(lambda_b), sympy.nsimplify(lambda_W))


@lru_cache(maxsize=64)
def _asymptotics(act, ensemble, lam_b, lam_W):
    from .symbolic import CORRELATOR_SYMBOLS as S
    from .symbolic import C_W, C_b, derive, lambda_W, lambda_b, moments_in

    if act.kinks:
        raise ParameterError("activation", f"{act.name} has kinks; the K*=0 expansion needs a smooth activation")
    z, poly = _taylor(act)
    sig = [poly.coeff(z, k) * sympy.factorial(k) for k in range(4)]
    if sig[0] != 0 or sig[1] == 0:
        raise ParameterError("activation", f"{act.name} is not in the K*=0 class (needs sigma(0) = 0 "
                             "and sigma'(0) != 0)")
    a1 = sympy.simplify(sig[3] / sig[1] + sympy.Rational(3, 4) * (sig[2] / sig[1]) ** 2)
    if not a1.is_negative:
        raise ParameterError("activation", f"{act.name} has a_1 = {a1} >= 0: the kernel does not flow "
                             "to K* = 0 as a power law")
    derivs = [poly, sympy.diff(poly, z), sympy.diff(poly, z, 2), sympy.diff(poly, z, 3)]
    K = S["K"]
    t = sympy.Symbol("t", positive=True)  # t = 1/l
    params = {C_b: 0, C_W: 1 / sig[1] ** 2, lambda_b: lam_b, lambda_W: lam_W}
    kappa = -1 / a1
    leading = {"K": kappa * t}
    undetermined = set()
    for name in _ORDER:
        expr = derive(name, ensemble).expr.subs(params)
        expr = expr.xreplace({m: _moment_series(derivs, z, m.powers, m.dk, K) for m in moments_in(expr)})
        expr = sympy.expand(expr)
        m_coef = expr.coeff(S[name], 1)
        source = sympy.expand(expr - m_coef * S[name])
        known = {S[k]: v for k, v in leading.items()}
        m_t = sympy.expand(m_coef.xreplace(known))
        s_t = sympy.expand(source.xreplace(known))
        m0, pm = _leading(m_t, t)
        if pm != 0 or m0 != 1:
            raise ParameterError("activation", f"{name}: susceptibility does not tend to 1; not critical")
        mu, _ = _leading(sympy.expand(m_t - 1), t) if sympy.expand(m_t - 1) != 0 else (0, 1)
        mu_p = _leading(sympy.expand(m_t - 1), t)[1] if sympy.expand(m_t - 1) != 0 else 2
        mu = mu if mu_p == 1 else 0
        inputs = {k for k in CORRELATORS if k != name and S[k] in expr.free_symbols}
        cs, g = _leading(s_t, t)
        # Each monomial in the input correlators is exact as a series in K, but carries
        # relative corrections O(log l / l) from the subleading parts of K and the inputs;
        # a cancellation *between* monomials therefore leaves the balance undetermined.
        syms = sorted((S[k] for k in inputs if k != "K"), key=str)
        if syms:
            monomials = [c * sympy.Mul(*(x ** e for x, e in zip(syms, mon)))
                         for mon, c in sympy.Poly(source, *syms).terms()]
        else:
            monomials = [source]
        term_powers = [_leading(sympy.expand(term.xreplace(known)), t)[1] for term in monomials]
        term_powers = [p for p in term_powers if p is not None]
        cancels = g is None or (bool(term_powers) and min(term_powers) < g)
        if cancels or inputs & undetermined:
            # the leading source cancels (or rests on an undetermined input): its value
            # depends on subleading corrections that this balance does not track
            undetermined.add(name)
            continue
        denom = sympy.simplify(1 - g - mu)
        if denom == 0:
            leading[name] = cs * t ** (g - 1) * sympy.log(1 / t)
        else:
            leading[name] = sympy.simplify(cs / denom) * t ** (g - 1)
    out = {k: sympy.simplify(leading[k].subs(t, 1 / ell)) if k in leading else None
           for k in CORRELATORS}
    return Asymptotics(act.name, ensemble, a1, out)
