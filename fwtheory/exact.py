"""Exact depth profiles of the leading-order correlators, derived with sympy.

Scale-invariant activations sigma(z) = a_+ z theta(z) + a_- z theta(-z) (ReLU,
leaky ReLU, linear) have Gaussian moments that are monomials in K:

    < sigma^a sigma'^b z^d >_K = K^{m/2} [a_+^{a+b} + (-1)^m a_-^{a+b}] E[x^m theta(x)],   m = a + d,

with E[x^m theta(x)] = 2^{m/2} Gamma((m+1)/2) / (2 sqrt(pi)) (x standard normal).
With C_b = 0 the kernel is K^(l) = (C_W A_2)^{l-1} K^(1), A_2 = (a_+^2 + a_-^2)/2,
and every derived recursion (:func:`fwtheory.symbolic.derive`) becomes a linear
recurrence with coefficients that are constant or geometric in l; sympy's
``rsolve`` solves them in dependency order. At criticality (C_W = 1/A_2;
PDLT arXiv:2106.10165 Sec. 5.2, 5.4.1; docs/conventions.md, "Criticality") this
gives e.g. V/K^2 = nu (l - 1), nu = 3 A_4/A_2^2 - 1 (Gaussian weights), and
the ReLU NTK closed forms of docs/references.md (item 7). Deep linear networks are the case
a_+ = a_- = 1 (any C_W).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .activations import Activation

__all__ = ["scale_invariant_solution", "scale_invariant_slopes", "ExactSolution"]

from dataclasses import dataclass
from functools import lru_cache

import sympy

from .errors import ParameterError
from .quantities import CORRELATORS

ell = sympy.Symbol("l", integer=True, positive=True)

_ORDER = ("K", "Theta", "V", "G1", "F", "B", "D", "A", "Theta1")


def _half_line_moment(m):
    """E[x^m theta(x)] for a standard normal x."""
    return 2 ** sympy.Rational(m, 2) * sympy.gamma(sympy.Rational(m + 1, 2)) / (2 * sympy.sqrt(sympy.pi))


def _moment_value(moment, a_plus, a_minus, K):
    a, b, c, e, d = moment.powers
    if c or e:
        raise ParameterError("activation", "sigma'' terms are distributions for scale-invariant "
                             "activations; no exact solution")
    m = a + d
    kk = sympy.Symbol("kk", positive=True)
    val = kk ** sympy.Rational(m, 2) * (a_plus ** (a + b) + (-1) ** m * a_minus ** (a + b)) * _half_line_moment(m)
    return sympy.diff(val, kk, moment.dk).subs(kk, K)


def _slopes_of(activation):
    """(a_+, a_-) of a scale-invariant activation, or raise."""
    name = activation.name
    if activation.code == 0:
        return sympy.Integer(1), sympy.Integer(1)
    if activation.code == 1:
        return sympy.Integer(1), sympy.Integer(0)
    if activation.code == 2:
        return sympy.Integer(1), sympy.nsimplify(activation.slope)
    z = sympy.Symbol("z", real=True)
    expr = activation.expr.xreplace({s: z for s in activation.expr.free_symbols})
    plus, minus = expr.subs(z, 1), -expr.subs(z, -1)
    t = sympy.Symbol("t", positive=True)
    for probe in (sympy.Rational(3, 7), sympy.Rational(5, 2)):
        if sympy.simplify(expr.subs(z, probe) - plus * probe) != 0 or \
                sympy.simplify(expr.subs(z, -probe) + minus * probe) != 0:
            raise ParameterError("activation", f"{name} is not scale-invariant "
                                 "(a_+ z theta(z) + a_- z theta(-z)); no exact solution")
    del t
    return sympy.nsimplify(plus), sympy.nsimplify(minus)


def scale_invariant_slopes(activation):
    """A_2 = (a_+^2 + a_-^2)/2, A_4 = (a_+^4 + a_-^4)/2 and nu = 3 A_4/A_2^2 - 1."""
    from .activations import get_activation

    ap, am = _slopes_of(get_activation(activation))
    A2, A4 = (ap**2 + am**2) / 2, (ap**4 + am**4) / 2
    return {"a_plus": ap, "a_minus": am, "A2": A2, "A4": A4, "nu": sympy.simplify(3 * A4 / A2**2 - 1)}


@dataclass(frozen=True)
class ExactSolution:
    """Closed forms in the layer index ``l`` (sympy symbol ``ell``) of every
    correlator; ``evaluate(L)`` gives floats for layers 1..L."""

    activation: str
    ensemble: str
    first_layer: str
    expressions: dict

    def evaluate(self, depth):
        return {k: [float(self.expressions[k].subs(ell, l)) for l in range(1, depth + 1)]
                for k in CORRELATORS}

    def ratio(self, num, *den):
        out = self.expressions[num]
        for d in den:
            out = out / self.expressions[d]
        return sympy.simplify(out)

    def __str__(self):
        lines = [f"# exact leading-order depth profiles: {self.activation}, {self.ensemble} weights "
                 f"(first layer {self.first_layer}); l = layer"]
        lines += [f"{k}(l) = {sympy.sstr(self.expressions[k])}" for k in CORRELATORS]
        return "\n".join(lines)


def scale_invariant_solution(activation: str | Activation, ensemble: str = "gaussian", first_layer: str | None = None,
                             C_W: Any = None, lambda_b: Any = 0, lambda_W: Any = 1,
                             input_norm: Any = 1) -> ExactSolution:
    """Exact depth profiles of all correlators for a scale-invariant activation with C_b = 0.

    ``C_W`` defaults to the critical value 1/A_2. Parameters may be numbers or sympy
    symbols (``lambda_b``, ``lambda_W``, ``input_norm``). Returns :class:`ExactSolution`.
    """
    from .activations import get_activation

    act = get_activation(activation)
    first = ensemble if first_layer is None else first_layer
    cw = None if C_W is None else sympy.nsimplify(C_W)
    return _solve(act, ensemble, first, cw, sympy.sympify(lambda_b), sympy.sympify(lambda_W),
                  sympy.sympify(input_norm))


def _solve_affine(a, s, x1):
    """Solve X(l+1) = a(l) X(l) + s(l), X(1) = x1:
    X(l) = P(l) [x1 + sum_{j=1}^{l-1} s(j) / P(j+1)],  P(l) = prod_{j=1}^{l-1} a(j)."""
    j, i = sympy.Symbol("j", integer=True, positive=True), sympy.Symbol("i", integer=True, positive=True)
    if a == 0:
        raise ParameterError("C_W", "degenerate recursion (zero susceptibility)")
    P = sympy.simplify(sympy.product(a.subs(ell, i), (i, 1, ell - 1)))
    Pj1 = P.subs(ell, j + 1)
    total = sympy.summation(sympy.simplify(s.subs(ell, j) / Pj1), (j, 1, ell - 1))
    return sympy.simplify(P * (x1 + total))


@lru_cache(maxsize=64)
def _solve(act, ensemble, first, cw, lam_b, lam_W, q):
    from .symbolic import CORRELATOR_SYMBOLS as S
    from .symbolic import C_W, C_b, derive, lambda_W, lambda_b, moments_in, q0

    info = scale_invariant_slopes(act)
    ap, am = info["a_plus"], info["a_minus"]
    if cw is None:
        cw = 1 / info["A2"]
    params = {C_b: 0, C_W: cw, lambda_b: lam_b, lambda_W: lam_W, q0: q}
    K1 = derive("K").initial[first].subs(params)
    K_l = sympy.simplify(K1 * (cw * info["A2"]) ** (ell - 1))
    solved = {"K": K_l}
    for name in _ORDER[1:]:
        rec = derive(name, ensemble)
        expr = rec.expr.subs(params)
        expr = expr.xreplace({m: _moment_value(m, ap, am, S["K"]) for m in moments_in(expr)})
        expr = expr.subs(S["K"], K_l)
        sub = {S[k]: v for k, v in solved.items() if k != "K"}
        expr = sympy.expand(expr.xreplace(sub))
        coeff = expr.coeff(S[name], 1)
        const = sympy.expand(expr - coeff * S[name])
        init = rec.initial[first].subs(params)
        solved[name] = _solve_affine(coeff, const, init)
    return ExactSolution(act.name, ensemble, first, {k: solved[k] for k in CORRELATORS})
