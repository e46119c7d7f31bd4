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

__all__ = ["EPS", "SINGLE", "PairCumulant", "Z_CUMULANTS", "MAX_ORDER", "DerivationError",
           "product_expectation", "variance_operator_series", "single_input_moment"]

import itertools
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


#: The sample-index pair of a single input: every derivation D below is D^{(SINGLE)}.
SINGLE = (0, 0)


@dataclass(frozen=True)
class PairCumulant:
    """The connected 2r-point function of the preactivations at layer l,

        kappa(z_{a1;s1}, ..., z_{a2r;s2r}) = sum_{pairings P} prod_{(x,y) in P} delta_{a_x a_y}
                                             * T_{(s_x s_y) for (x,y) in P},   T = sum_k eps^k T_k,

    ``rank`` = r (number of neuron pairs); ``terms`` = ((power k of eps, T_k), ...).
    T_k is a sympy scalar for a single input (sample pair :data:`SINGLE`), or,
    for several inputs, a tuple of (sample-pair monomial, coefficient) giving
    the components of the tensor T_{(a1 b1)...(ar br)} on sorted tuples of
    sample pairs (a <= b), symmetric under exchanging pairs
    (K_{ab}; V_{(ab)(cd)}; U6_{(ab)(cd)(ef)}).
    """

    rank: int
    terms: tuple

    def components(self, tensor):
        """(monomial, coefficient) pairs of one term; a monomial is a sorted
        tuple of ``rank`` sample pairs."""
        if isinstance(tensor, tuple):
            return tensor
        return (((SINGLE,) * self.rank, tensor),)


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


def _check_order(order):
    if order > MAX_ORDER or order < 0:
        raise ParameterError("order", f"must be between 0 and {MAX_ORDER}, got {order!r}: order "
                             f"{order} would need the {2 * order + 2}-point cumulant and the "
                             f"eps^{order} corrections of the lower cumulants, which are not in "
                             "the layer-l effective theory")


def _merge(m1, m2):
    return tuple(sorted(m1 + m2))


@lru_cache(maxsize=None)
def variance_operator_series(order, cumulants=Z_CUMULANTS):
    """exp( sum_r (1/r!) T_r . D^r ) truncated at eps^order (rank 1 without its
    eps^0 term K), as {(eps power, monomial): coefficient}. A monomial is a
    sorted tuple of sample pairs, one commuting derivation D^{ab} per factor;
    for a single input it is (SINGLE,) * m, i.e. D^m. See (*) in the module
    docstring."""
    _check_order(order)
    exponent = {}
    for cum in cumulants:
        for k, tensor in cum.terms:
            if (cum.rank == 1 and k == 0) or k > order:
                continue
            if k == 0:  # pragma: no cover - a table error, not user input
                raise DerivationError(f"the {2 * cum.rank}-point cumulant has an eps^0 term")
            for mono, c in cum.components(tensor):
                key = (k, tuple(sorted(mono)))
                exponent[key] = exponent.get(key, 0) + c / factorial(cum.rank)
    # exp(X) = sum_m X^m / m!; every term of X carries at least one power of eps
    result = {(0, ()): sympy.Integer(1)}
    power = {(0, ()): sympy.Integer(1)}
    for m in range(1, order + 1):
        new = {}
        for (k1, m1), c1 in power.items():
            for (k2, m2), c2 in exponent.items():
                if k1 + k2 <= order:
                    key = (k1 + k2, _merge(m1, m2))
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


def single_input_moment(powers, derivatives):
    """Site moment for one input: d^m/dK^m <f>_K, m = len(derivatives)."""
    return moment(*powers, dk=len(derivatives))


@lru_cache(maxsize=None)
def _leibniz(sites, monomial, site_moment=single_input_moment):
    """(prod_{D in monomial} D) prod_a <f_a>, each D = sum_a d/dK at site a
    (Leibniz rule): every factor goes to one of the sites; a site receiving
    the sub-monomial mu contributes ``site_moment(powers, mu)``."""
    if not sites:
        return sympy.Integer(1) if not monomial else sympy.Integer(0)
    labels = sorted(set(monomial))
    counts = [monomial.count(lab) for lab in labels]
    total = sympy.Integer(0)
    for split in itertools.product(*(list(_compositions(c, len(sites))) for c in counts)):
        weight = 1
        for c, comp in zip(counts, split):
            weight *= factorial(c)
            for part in comp:
                weight //= factorial(part)
        term = sympy.Integer(weight)
        for a, p in enumerate(sites):
            sub = tuple(lab for lab, comp in zip(labels, split) for _ in range(comp[a]))
            term *= site_moment(p, sub)
            if term == 0:
                break
        total += term
    return total


@lru_cache(maxsize=None)
def _product_expectation(sites, order):
    series = variance_operator_series(order)
    total = sympy.Integer(0)
    for (k, mono), c in series.items():
        total += EPS**k * c * _leibniz(sites, mono)
    return sympy.expand(total)


def product_expectation(sites, order=1):
    """E[prod_a f_a(z_a)] at *distinct* neurons a of layer l, to eps^order.

    ``sites``: power tuples (sigma, sigma', sigma'', sigma''', z), one per
    neuron. Returns a polynomial in :data:`EPS` whose coefficients are
    polynomials in the layer-l correlator symbols and Gaussian moments at K.
    """
    return _product_expectation(tuple(sorted(tuple(p) for p in sites)), order)
