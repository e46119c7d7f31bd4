r"""Gauss quadrature rules at mpmath precision, computed once per (order, digits).

Two rules, both for the standardized Gaussian variable of :mod:`fwtheory.gauss`:

* half-range Gauss-Hermite, :math:`\int_0^\infty g(t)\,\phi(t)\,dt` with
  :math:`\phi(t) = e^{-t^2/2}/\sqrt{2\pi}` (weights sum to 1/2);
* Gauss-Legendre on [-1, 1] (weights sum to 2).

Recurrence coefficients of the monic orthogonal polynomials,
:math:`p_{k+1}(t) = (t - \alpha_k) p_k(t) - \beta_k p_{k-1}(t)`: for Legendre
in closed form, :math:`\alpha_k = 0`, :math:`\beta_k = k^2/(4k^2 - 1)`; for the
half-range Hermite weight from the exact moments
:math:`\mu_k = \int_0^\infty t^k \phi(t)\,dt`, :math:`\mu_0 = 1/2`,
:math:`\mu_1 = 1/\sqrt{2\pi}`, :math:`\mu_{k+2} = (k+1)\mu_k`, by Chebyshev's
algorithm (Gautschi, *Orthogonal Polynomials: Computation and Approximation*,
Oxford 2004, Sec. 2.1.7). That map is ill-conditioned (about 1.1 n decimal
digits are lost for n coefficients, measured), so it runs at
``digits + 1.2 n + 20`` digits.

Nodes: the float64 rules (:func:`fwtheory.gauss.half_hermite_rule`,
``numpy.polynomial.legendre.leggauss``) refined by Newton's method on the
orthonormal three-term recurrence (quadratic convergence: 16 -> 32 -> 64 ...
digits); weights are the Christoffel numbers :math:`1/\sum_{k<n} p_k(t)^2`
(Golub and Welsch, Math. Comp. 23 (1969) 221). Results are cached for the life
of the process; :func:`rule_stats` counts builds and cache hits.
"""

__all__ = ["half_hermite_rule_mp", "legendre_rule_mp", "rule_stats"]

import numpy as np

from .errors import NumericalError

_STATS = {"builds": 0, "hits": 0}
_CACHE = {}


def rule_stats():
    """Counts of rule builds and cache hits since import (a copy)."""
    return dict(_STATS)


def _cached(kind, n, dps, build):
    key = (kind, int(n), int(dps))
    rule = _CACHE.get(key)
    if rule is None:
        _STATS["builds"] += 1
        rule = _CACHE[key] = build()
    else:
        _STATS["hits"] += 1
    return rule


_RECURRENCE = {}  # dps -> (alpha, beta) of the longest recurrence computed so far


def _half_hermite_recurrence_mp(n, dps):
    """(alpha_k, beta_k), k < n, at ``dps`` digits: the prefix of the longest
    recurrence computed so far at dps, else a new one of length max(n, 97)."""
    have = _RECURRENCE.get(dps)
    if have is None or len(have[0]) < n:
        have = _RECURRENCE[dps] = _chebyshev_half_hermite(max(n, 97), dps)
    return have[0][:n], have[1][:n]


def _chebyshev_half_hermite(n, dps):
    import mpmath

    with mpmath.workdps(dps + int(1.2 * n) + 20):
        mu = [mpmath.mpf(1) / 2, 1 / mpmath.sqrt(2 * mpmath.pi)]
        for k in range(2 * n - 2):
            mu.append((k + 1) * mu[k])
        alpha, beta = [mu[1] / mu[0]], [mu[0]]
        prev, cur = None, mu  # sigma_{k-1, l}, sigma_{k, l}
        for k in range(1, n):
            new = [None] * (2 * n)
            for l in range(k, 2 * n - k):
                v = cur[l + 1] - alpha[k - 1] * cur[l]
                if k > 1:
                    v -= beta[k - 1] * prev[l]
                new[l] = v
            alpha.append(new[k + 1] / new[k] - cur[k] / cur[k - 1])
            beta.append(new[k] / cur[k - 1])
            prev, cur = cur, new
    with mpmath.workdps(dps):
        return tuple(+a for a in alpha), tuple(+b for b in beta)


def _refine(alpha, beta, x0, dps):
    """Newton-refined nodes and Christoffel weights of the n-point Gauss rule of
    the recurrence (alpha, beta) (n = len(x0)), at ``dps`` digits.

    Runs in binary fixed point (Python integers scaled by 2^B, B ~ 3.32 (dps +
    10) bits): the same arithmetic as mpf at a tenth of the cost. Newton steps
    stop when the correction is below 2^-(B - 8)."""
    import mpmath

    n = len(x0)
    B = int(3.33 * (dps + 10)) + 16
    one = 1 << B
    with mpmath.workdps(dps + 20):
        A = [int(mpmath.ldexp(a, B)) for a in alpha[:n]]
        S = [int(mpmath.ldexp(mpmath.sqrt(b), B)) for b in beta[:n + 1]]
    P0 = (one << B) // S[0]
    nodes, weights = [], []
    for x in x0:
        X = int(mpmath.ldexp(mpmath.mpf(float(x)), B))
        for _ in range(12):
            p_prev, dp_prev, p, dp = 0, 0, P0, 0
            for k in range(n):
                a = X - A[k]
                bk = S[k] if k else 0
                p_next = (a * p - bk * p_prev) // S[k + 1]
                dp_next = ((p << B) + a * dp - bk * dp_prev) // S[k + 1]
                p_prev, dp_prev, p, dp = p, dp, p_next, dp_next
            step = (p << B) // dp
            X -= step
            if abs(step) <= 256:
                break
        else:
            raise NumericalError(f"Gauss rule of order {n}: Newton refinement of a node did "
                                 f"not converge at {dps} digits")
        p_prev, p, total = 0, P0, P0 * P0
        for k in range(n - 1):
            bk = S[k] if k else 0
            p_prev, p = p, ((X - A[k]) * p - bk * p_prev) // S[k + 1]
            total += p * p
        nodes.append(X)
        weights.append(total)  # sum p_k^2 scaled by 2^(2B); small weights need floating point
    with mpmath.workdps(dps):
        return (tuple(mpmath.mpf((v, -B)) for v in nodes),
                tuple(1 / mpmath.mpf((v, -2 * B)) for v in weights))


def half_hermite_rule_mp(n, dps):
    """Nodes t_i > 0 and weights w_i (tuples of mpf at ``dps`` digits) of the
    n-point Gauss rule for :math:`\\int_0^\\infty g(t) e^{-t^2/2}/\\sqrt{2\\pi} dt`;
    exact for polynomials of degree <= 2n - 1. Cached per (n, dps)."""
    def build():
        from .gauss import half_hermite_rule

        alpha, beta = _half_hermite_recurrence_mp(n + 1, dps + 10)
        return _refine(alpha, beta, half_hermite_rule(n)[0], dps)

    return _cached("half-hermite", n, dps, build)


def legendre_rule_mp(n, dps):
    """Nodes and weights (tuples of mpf at ``dps`` digits) of the n-point
    Gauss-Legendre rule on [-1, 1]. Cached per (n, dps)."""
    def build():
        import mpmath

        with mpmath.workdps(dps + 10):
            alpha = [mpmath.mpf(0)] * (n + 1)
            beta = [mpmath.mpf(2)] + [mpmath.mpf(k * k) / (4 * k * k - 1) for k in range(1, n + 1)]
        return _refine(alpha, beta, np.polynomial.legendre.leggauss(n)[0], dps)

    return _cached("legendre", n, dps, build)

