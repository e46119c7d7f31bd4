"""Expectations at layer l by the cumulant expansion around the Gaussian, to any tabulated order in 1/n.

The joint law of the layer-l preactivations z_{j;alpha} is invariant under O(n)
rotations of the neuron index (Gaussian or Haar-orthogonal weights, Gaussian
biases), so every connected correlator is a sum over *pairings* of the neuron
indices, each a product of Kronecker deltas, times a tensor in the sample
indices (PDLT arXiv:2106.10165 Ch. 4; the 2r-point function is O(1/n^(r-1)),
Sec. 4.3 and the subleading corrections of Sec. 4.5). With eps = 1/n:

    kappa_2(z_a, z_b)            = delta_ab (K + eps G1 + eps^2 G2 + ...)
    kappa_4(z_a, z_b, z_c, z_d)  = eps (V + eps V1 + ...) (delta_ab delta_cd + 2 perms)
    kappa_6(z_a1, ..., z_a6)     = eps^2 (U6 + ...) (sum of the 15 pairings)
    kappa_8                      = O(eps^3)

These tables (:data:`Z_CUMULANTS`) are data, not code: a new order or a new
cumulant is a new entry. For a single input the sample tensors are scalars; for
m inputs the entry of rank r becomes a tensor with r pairs of sample indices,
K_{ab}, V_{(ab)(cd)}, U6_{(ab)(cd)(ef)} (docs/derivation.md).

**The expansion.** For an observable O depending on finitely many neurons,

    E[O] = exp( sum_{r >= 2} (1/(2r)!) kappa_{2r} . d^{2r} ) E_G[O],

E_G the Gaussian expectation with the full two-point function. Because every
cumulant is a sum of pairings, each pairing contributes the same operator, and
a pair of derivatives on neuron a acting inside a Gaussian expectation is a
variance derivative, E_G[d_a^2 f] = 2 d/dK_a <f>_{K_a}. With
D = sum_a d/dK_a (over the neurons of O) the whole series collapses to

    E[prod_a f_a(z_a)] = exp( sum_{r >= 1} (c_r / r!) D^r ) prod_a <f_a>_K        (*)

where c_r is the coefficient of the 2r-point pairing sum (minus K for r = 1:
the variance shift is the Taylor operator exp(dG D)). The c_r are the
cumulants of a random variance shared by all neurons (for Gaussian weights
literally: z^(l+1) given layer l is Gaussian with variance
G^ = C_b + C_W (1/n) sum_j sigma_j^2). Expanding (*) in eps to the requested
order and distributing D^m over the sites by the Leibniz rule gives a
polynomial in :class:`~fwtheory.symbolic.symbols.GaussianMoment` symbols and
their K-derivatives. At order 1 this is the finite-width expansion of Bahri,
Hanin et al. (Les Houches lectures, arXiv:2309.01592, Thm 4.2).

Keeping order eps^k needs the cumulants up to 2k + 2 points, with all their
corrections up to eps^k; the table below is complete through k = 2.
"""

__all__ = ["EPS", "PairCumulant", "Z_CUMULANTS", "MAX_ORDER", "DerivationError",
           "product_expectation", "variance_operator_series"]

from dataclasses import dataclass
from functools import lru_cache
from math import factorial

import sympy

from ..errors import FwtheoryError, ParameterError
from .symbols import CORRELATOR_SYMBOLS as S
from .symbols import moment

EPS = sympy.Symbol("epsilon", positive=True)  # 1/n of the layer below


class DerivationError(FwtheoryError, ArithmeticError):
    """The symbolic derivation met a term it cannot expand consistently in 1/n
    (e.g. a coefficient that grows with the width)."""


@dataclass(frozen=True)
class PairCumulant:
    """The connected 2r-point function of the preactivations at layer l,

        kappa(z_{a1;s1}, ..., z_{a2r;s2r}) = sum_{pairings P} prod_{(x,y) in P} delta_{a_x a_y}
                                             * T_P(s),    T = sum_k eps^k terms[k],

    ``rank`` = r (number of neuron pairs). ``terms`` = ((power of eps, coefficient), ...).
    ``samples`` = number of sample (input) indices per pair; a single input has
    the scalar tensor T (the only case implemented); for m inputs each term is
    a tensor T_{(s1 s2)(s3 s4)...} symmetric within and across pairs.
    """

    rank: int
    terms: tuple
    samples: int = 1

    def coefficient(self, power):
        return sum((c for k, c in self.terms if k == power), sympy.Integer(0))

    @property
    def leading_power(self):
        return min(k for k, _ in self.terms)


#: The layer-l effective theory of the preactivations, single input, through eps^2.
#: Rank 1 is the two-point function (its eps^0 term K is the base point of the
#: Gaussian expectations); rank r >= 2 starts at eps^(r-1).
Z_CUMULANTS = (
    PairCumulant(1, ((0, S["K"]), (1, S["G1"]), (2, S["G2"]))),
    PairCumulant(2, ((1, S["V"]), (2, S["V1"]))),
    PairCumulant(3, ((2, S["U6"]),)),
)

#: The highest order in eps = 1/n for which :data:`Z_CUMULANTS` is complete
#: (order k needs the cumulants up to 2k + 2 points and their eps^k terms).
MAX_ORDER = 2


def _check_order(order, cumulants=Z_CUMULANTS):
    if order > MAX_ORDER or order < 0:
        ranks = {c.rank for c in cumulants}
        missing = [f"the {2 * r}-point cumulant" for r in range(2, order + 2) if r not in ranks]
        missing.append(f"the eps^{order} corrections of the lower cumulants (e.g. G{order}, V{order - 1})")
        raise ParameterError("order", f"must be between 0 and {MAX_ORDER}, got {order!r}: order "
                             f"{order} would need {', '.join(missing)}, which are not in the "
                             "layer-l effective theory")


@lru_cache(maxsize=None)
def variance_operator_series(order, cumulants=Z_CUMULANTS):
    """exp( sum_r (c_r/r!) D^r ) truncated at eps^order, as {(eps power, D power): coefficient}
    (rank 1 without its eps^0 term K). See (*) in the module docstring."""
    _check_order(order, cumulants)
    exponent = {}
    for cum in cumulants:
        for k, c in cum.terms:
            if cum.rank == 1 and k == 0:
                continue
            if k <= order:
                key = (k, cum.rank)
                exponent[key] = exponent.get(key, 0) + c / factorial(cum.rank)
    for (k, _), _c in exponent.items():
        if k == 0:  # pragma: no cover - a cumulant without a 1/n suppression
            raise DerivationError("a connected cumulant of order eps^0 beyond the two-point function")
    # exp(X) = sum_m X^m / m!; every term of X carries at least one power of eps
    result = {(0, 0): sympy.Integer(1)}
    power = {(0, 0): sympy.Integer(1)}
    for m in range(1, order + 1):
        new = {}
        for (k1, d1), c1 in power.items():
            for (k2, d2), c2 in exponent.items():
                if k1 + k2 <= order:
                    key = (k1 + k2, d1 + d2)
                    new[key] = new.get(key, 0) + c1 * c2
        power = new
        for key, c in power.items():
            result[key] = result.get(key, 0) + c / factorial(m)
    return {key: sympy.expand(c) for key, c in result.items() if c != 0}


def _compositions(total, parts):
    """All tuples of ``parts`` nonnegative integers summing to ``total``."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first,) + rest


@lru_cache(maxsize=None)
def _leibniz(sites, m):
    """D^m prod_a <f_a>_K = sum over m_1 + ... + m_p = m of m!/prod m_a! prod d^{m_a}<f_a>."""
    if not sites:
        return sympy.Integer(1) if m == 0 else sympy.Integer(0)
    total = sympy.Integer(0)
    for comp in _compositions(m, len(sites)):
        term = sympy.Integer(factorial(m))
        for p, ma in zip(sites, comp):
            term = term / factorial(ma) * moment(*p, dk=ma)
            if term == 0:
                break
        total += term
    return total


@lru_cache(maxsize=None)
def _product_expectation(sites, order):
    series = variance_operator_series(order)
    total = sympy.Integer(0)
    for (k, m), c in series.items():
        total += EPS**k * c * _leibniz(sites, m)
    return sympy.expand(total)


def product_expectation(sites, order=1):
    """E[prod_a f_a(z_a)] at *distinct* neurons a of layer l, to eps^order.

    ``sites``: power tuples (sigma, sigma', sigma'', sigma''', z), one per
    neuron. Returns a polynomial in :data:`EPS` whose coefficients are
    polynomials in the layer-l correlator symbols and Gaussian moments at K.
    """
    return _product_expectation(tuple(sorted(tuple(p) for p in sites)), order)
