r"""Many Gaussian moments at one K, at mpmath precision, from one set of
activation evaluations (the mpmath path of :func:`fwtheory.predict`).

For every request ``(powers, dk)`` with powers = (a, b, c, e, d) this returns

.. math::

    \partial_K^{dk}\langle \sigma^a\sigma'^b\sigma''^c\sigma'''^e z^d\rangle_K
      = K^{-dk}\, E\big[f(\sqrt K x)\, h_{dk}(x)\big],\quad x \sim N(0, 1),

    h_0 = 1,\quad h_1 = \tfrac12 (x^2 - 1),\quad h_2 = \tfrac14 (x^4 - 6x^2 + 3),

the Gaussian expectation and its K-derivatives in the Hermite-weight form of
Roberts, Yaida, Hanin, *The Principles of Deep Learning Theory*,
arXiv:2106.10165, eq. (4.25); the K-derivatives differentiate the Gaussian
density, not sigma, so they hold for ReLU-type activations. These are the
formulas of the float64 engine :mod:`fwtheory.gauss`.

Quadrature: the standardized line is split at 0 and at every kink k/sqrt(K)
(kinks beyond |x| = sqrt(2 ln 10 (digits + 5)), where the Gaussian weight is
below 10^-(digits + 5), are dropped). The two outer pieces use half-range
Gauss-Hermite rules shifted to the outermost breakpoint,
:math:`\phi(b + t) = \phi(t) e^{-bt - b^2/2}`; pieces between breakpoints use
Gauss-Legendre rules. Each piece is then integrated exactly for polynomial
integrands, so piecewise-linear activations (ReLU, leaky ReLU) are integrated
exactly. Nodes and weights come from :mod:`fwtheory.gauss_rules_mp` and are
cached per (order, digits); for an activation whose only kink is 0 (or none)
the node table does not depend on K and is cached too.

Rules are applied in rungs of increasing order: first this plain split
(orders 12, 16, 24, ..., 192), then a graded split that adds z = +-1, +-2,
+-4, ... (x = z/sqrt(K), below |x| = 4) and x = +-4 (orders 24, ..., 128),
which resolves the complex singularities of e.g. tanh(sqrt(K) x) at distance
~1/sqrt(K) from the real axis that slow the plain rules down at large K. The
error estimate is the difference between two consecutive rungs of one
scheme, accepted when it is at most 10^-dps <|f h_dk|> for every request
(relative to the integral of the absolute integrand, like the float64
engine). The next call for the same activation starts at the rung where this
one was accepted, one lower when the error was already <= tol^1.15 (K changes
slowly from layer to layer; a wrong guess costs one extra rung, never
accuracy). One rung
costs one evaluation of sigma, ..., sigma''' per node (a single lambdified
function with common subexpressions shared) and, per request, a few products
and one dot product; all requests share the evaluations. Everything runs at
dps + 10 digits (guard digits). When the top rung does not converge, the
moments at that K are handed to :func:`fwtheory.gauss.expect_monomials_mp`
(adaptive ``mpmath.quad``), which raises :class:`~fwtheory.errors.NumericalError`
if it cannot reach its tolerance either; non-finite values raise it at once.

:func:`engine_stats` counts activation evaluations, rungs and fallbacks (used
by the tests to bound the work per layer without timing anything).
"""

__all__ = ["expect_moments_mp", "engine_stats"]

import math

from .activations import get_activation
from .errors import NumericalError, check_real
from .gauss_rules_mp import half_hermite_rule_mp, legendre_rule_mp

# rungs (scheme, order): first the plain split at 0 and the kinks, then the graded split
_RUNGS = tuple(("plain", n) for n in (12, 16, 24, 32, 48, 64, 96, 128, 192)) + tuple(
    ("graded", n) for n in (24, 32, 48, 64, 96, 128))
_FIRST_GRADED = next(i for i, r in enumerate(_RUNGS) if r[0] == "graded")
GUARD_DIGITS = 10
_STATS = {"calls": 0, "evaluations": 0, "rungs": 0, "fallbacks": 0}
_HINT = {}        # (activation, working digits) -> index into _RUNGS to start from
_EVALUATORS = {}  # (activation, order) -> f(z) -> [sigma, ..., sigma^(order)]
_SYMMETRIC = {}   # (order, working digits) -> K-independent node table


def engine_stats():
    """Counts since import (a copy): ``calls`` (values of K), ``evaluations``
    (nodes at which sigma..sigma''' were evaluated), ``rungs`` (rules applied),
    ``fallbacks`` (K values handed to mpmath.quad)."""
    return dict(_STATS)


def _evaluator(act, order):
    """One mpmath callable z -> [sigma^(0..order)(z)] (sympy cse across the derivatives)."""
    key = (act, order)
    fn = _EVALUATORS.get(key)
    if fn is None:
        import mpmath
        import sympy

        from .activations import Z

        heaviside = {"Heaviside": lambda x, h0=0.5: mpmath.mpf(1) if x > 0 else (
            mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))}
        exprs = list(act.sympy_derivatives[:order + 1])
        fn = sympy.lambdify(Z, exprs, modules=[heaviside, "mpmath"], cse=True)
        _EVALUATORS[key] = fn
    return fn


def _hermite(x):
    x2 = x * x
    return (x2 - 1) / 2, ((x2 - 6) * x2 + 3) / 4


def _table(nodes, weights):
    """(x, [w h_0, w h_1, w h_2], [|w h_0|, |w h_1|, |w h_2|]) for the given nodes."""
    w1, w2 = [], []
    for x, w in zip(nodes, weights):
        h1, h2 = _hermite(x)
        w1.append(w * h1)
        w2.append(w * h2)
    ws = [list(weights), w1, w2]
    return list(nodes), ws, [[abs(v) for v in col] for col in ws]


def _rule(n, wp, bpts):
    """Node table of order n at wp digits for the sorted breakpoints ``bpts``
    (standardized, containing 0)."""
    import mpmath

    t, wt = half_hermite_rule_mp(n, wp)
    if len(bpts) == 1:
        key = (n, wp)
        tab = _SYMMETRIC.get(key)
        if tab is None:
            nodes = [-v for v in reversed(t)] + list(t)
            tab = _SYMMETRIC[key] = _table(nodes, list(reversed(wt)) + list(wt))
        return tab
    lo, hi = bpts[0], bpts[-1]
    nodes = [lo - v for v in reversed(t)]
    weights = [w * mpmath.exp(lo * v - lo * lo / 2) for v, w in zip(reversed(t), reversed(wt))]
    g, gw = legendre_rule_mp(n, wp)
    norm = 1 / mpmath.sqrt(2 * mpmath.pi)
    for a, b in zip(bpts[:-1], bpts[1:]):
        c, h = (a + b) / 2, (b - a) / 2
        for v, w in zip(g, gw):
            x = c + h * v
            nodes.append(x)
            weights.append(h * w * norm * mpmath.exp(-x * x / 2))
    nodes += [hi + v for v in t]
    weights += [w * mpmath.exp(-hi * v - hi * hi / 2) for v, w in zip(t, wt)]
    return _table(nodes, weights)


def _breakpoints(scheme, kinks, s):
    """Sorted standardized breakpoints: 0 and the kinks ("plain"), plus z = +-1, +-2,
    +-4, ... (x = z / sqrt(K)) below |x| = 4 and x = +-4 ("graded")."""
    import mpmath

    pts = {mpmath.mpf(0)} | set(kinks)
    if scheme == "graded":
        four = mpmath.mpf(4)
        pts |= {four, -four}
        z = mpmath.mpf(1)
        while z / s < four:
            pts |= {z / s, -z / s}
            z *= 2
    return sorted(pts)


def _rung(fn, s, tab, plan, requests):
    """Apply one node table: (values, scales) per request (before the K^-dk factor)."""
    import mpmath

    nodes, ws, abs_ws = tab
    z = [s * x for x in nodes]
    d = [fn(v) for v in z]
    _STATS["evaluations"] += len(z)
    _STATS["rungs"] += 1
    factors, products = plan
    cols = {}
    for k, e in factors:
        base = z if k == 4 else [row[k] for row in d]
        if e == 1:
            cols[k, e] = base
        elif e == 2:
            cols[k, e] = [v * v for v in base]
        else:
            cols[k, e] = [v ** e for v in base]
    prods = {}
    for powers, keys in products.items():
        if not keys:
            col = [mpmath.mpf(1)] * len(z)
        else:
            col = cols[keys[0]]
            for key in keys[1:]:
                col = [a * b for a, b in zip(col, cols[key])]
        prods[powers] = (col, [abs(v) for v in col])
    out = []
    for powers, dk in requests:
        col, acol = prods[powers]
        out.append((mpmath.fdot(ws[dk], col), mpmath.fdot(abs_ws[dk], acol)))
    return out


def _plan(requests):
    products = {}
    for powers, _ in requests:
        products.setdefault(powers, tuple((k, e) for k, e in enumerate(powers) if e))
    factors = sorted({f for keys in products.values() for f in keys})
    return factors, products


def expect_moments_mp(activation, K, requests, dps=30, full_output=False):
    r"""All requested moments at one K, at ``dps`` digits (module docstring).

    Parameters
    ----------
    activation : Activation or str
    K : mpf or number, finite and > 0 (kept at full precision)
    requests : sequence of ``(powers, dk)``
        ``powers`` a 5-tuple (a, b, c, e, d) for sigma^a sigma'^b sigma''^c
        sigma'''^e z^d, ``dk`` in {0, 1, 2}.
    dps : int >= 15
        Target: error <= 10^-dps <|f h_dk|>_K per request (estimated).
    full_output : bool
        Also return the error estimates.

    Returns a list of mpf (one per request), computed at dps + 10 digits;
    with ``full_output`` the tuple ``(values, errors)``.

    Raises NumericalError for non-finite integrands, or when neither the
    fixed rules nor the mpmath.quad fallback reach the tolerance.
    """
    import mpmath

    from .gauss import _check_dk, _check_k_mp, _check_powers

    act = get_activation(activation)
    dps = int(check_real("dps", dps, lower=15, upper=1000))
    requests = [(p, _check_dk(dk)) for p, dk in zip(_check_powers([r[0] for r in requests]),
                                                      [r[1] for r in requests])]
    wp = dps + GUARD_DIGITS
    _STATS["calls"] += 1
    with mpmath.workdps(wp):
        (Km,), _ = _check_k_mp([K])
        s = mpmath.sqrt(Km)
        clip = math.sqrt(2 * math.log(10) * (wp + 5))
        kinks = {k / s for k in (mpmath.mpf(k) for k in act.kinks) if abs(k / s) < clip}
        order = max((k for p, _ in requests for k in range(4) if p[k]), default=0)
        fn = _evaluator(act, order)
        plan = _plan(requests)
        tol = mpmath.mpf(10) ** (-dps)
        hint_key = (act, wp)
        start = _HINT.get(hint_key, 0)
        prev = None
        for j in range(start, len(_RUNGS)):
            scheme, n = _RUNGS[j]
            cur = _rung(fn, s, _rule(n, wp, _breakpoints(scheme, kinks, s)), plan, requests)
            if prev is None or prev[0] != scheme:
                prev = (scheme, cur)
                continue
            errs = [abs(c[0] - p[0]) for c, p in zip(cur, prev[1])]
            if not all(mpmath.isfinite(e) and mpmath.isfinite(c[1]) for e, c in zip(errs, cur)):
                raise NumericalError(f"Gaussian moments of {act.name} (mpmath): non-finite "
                                     f"integrand (overflow or NaN) at K = {mpmath.nstr(Km, 8)}")
            if all(e <= tol * c[1] for e, c in zip(errs, cur)):
                # error ~ exp(-c sqrt(n)) or faster: the rung below would likely have passed
                # too when this one is <= tol^1.15; start there next time (no accuracy risk)
                fine = all(e <= tol ** 1.15 * c[1] for e, c in zip(errs, cur))
                low = j - 1
                if fine and low == start and low > 0 and _RUNGS[low - 1][0] == scheme:
                    low -= 1
                _HINT[hint_key] = low
                values = [c[0] for c in cur]
                break
            prev = (scheme, cur)
        else:
            _STATS["fallbacks"] += 1
            _HINT[hint_key] = _FIRST_GRADED
            return _fallback(act, Km, requests, dps, full_output)
        for i, (_, dk) in enumerate(requests):
            if dk:
                f = Km ** (-dk)
                values[i] *= f
                errs[i] *= f
    return (values, errs) if full_output else values


def _fallback(act, Km, requests, dps, full_output):
    """Adaptive mpmath.quad for every request at this K (raises NumericalError on failure);
    its error bound is 10^(5 - dps) (<|f h_dk|> + |value|), see expect_monomials_mp."""
    import mpmath

    from .gauss import _abs_scale, expect_monomials_mp

    values = [expect_monomials_mp(act, Km, [p], dk, dps=dps)[0] for p, dk in requests]
    if not full_output:
        return values
    errs = [mpmath.mpf(10) ** (5 - dps) * (_abs_scale(act, float(Km), p, dk) + abs(v))
            for (p, dk), v in zip(requests, values)]
    return values, errs
