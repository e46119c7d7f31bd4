"""The layer-l effective theory: joint expectations of neurons of layer l to O(1/n).

At layer l the preactivations z_j and the NTK entries Hhat_{jk} are, to
O(1/n), a nearly-Gaussian family fixed by its first cumulants
(PDLT arXiv:2106.10165 Ch. 4 and 8; normalizations in docs/conventions.md):

    kappa(z_a, z_b)            = delta_ab (K + G1/n)
    kappa(z_a, z_b, z_c, z_d)  = (V/n) (delta_ab delta_cd + delta_ac delta_bd + delta_ad delta_bc)
    E[Hhat_ab]                 = delta_ab (Theta + Theta1/n)
    kappa(dH_ab, z_c, z_d)     = (1/n) (delta_ab delta_cd D + delta_ac delta_bd F + delta_ad delta_bc F)
    kappa(dH_ab, dH_cd)        = (1/n) (delta_ab delta_cd A + delta_ac delta_bd B + delta_ad delta_bc B)

with dH = Hhat - E[Hhat]; all other connected correlators are O(1/n^2).
Expectations of products of single-neuron functions f_a(z_a) at *distinct*
neurons a then follow by Gaussian integration by parts, with the identities
(docs/conventions.md, "Gaussian expectations") <f''>_K = 2 d<f>/dK, <f''''>_K = 4 d^2<f>/dK^2 and
<f'>_K = <z f>_K / K:

    E[prod_a f_a]        = prod <f_a> + (1/n) [ sum_a (G1 d<f_a> + (V/2) d^2<f_a>) prod_{b!=a} <f_b>
                                               + V sum_{a<b} d<f_a> d<f_b> prod_{c!=a,b} <f_c> ]
    E[dH_aa prod f]      = (1/n) [ (D + 2F) d<f_a> prod_{b!=a} + D sum_{c!=a} d<f_c> prod_{b!=c} ]
    E[dH_ab prod f]      = (1/n) F <z f_a><z f_b> / K^2 prod_{c!=a,b} <f_c>        (a != b)
    E[dH dH prod f]      = kappa(dH, dH) prod <f>

(the first line is the finite-width expansion of Bahri, Hanin et al., Les
Houches lectures arXiv:2309.01592, Thm 4.2). Single-neuron functions are monomials in sigma,
sigma', sigma'', sigma''' and z at the neuron, so every expectation is a
polynomial in :class:`~fwtheory.symbolic.symbols.GaussianMoment` symbols.
"""

__all__ = ["EPS", "layer_expectation", "add_powers"]

from itertools import combinations

import sympy

from ..errors import ParameterError
from .cumulants import EPS, product_expectation
from .symbols import CORRELATOR_SYMBOLS as S
from .symbols import moment

_ZERO = (0, 0, 0, 0, 0)


def add_powers(p, q):
    return tuple(a + b for a, b in zip(p, q))


def _m(powers, dk=0):
    return moment(*powers, dk=dk)


def _zm(powers):
    """<f'>_K = <z f>_K / K for the monomial f of ``powers``."""
    return moment(*add_powers(powers, (0, 0, 0, 0, 1))) / S["K"]


def _prod_except(values, skip):
    out = sympy.Integer(1)
    for idx, v in enumerate(values):
        if idx not in skip:
            out *= v
    return out


def _one_fluctuation(sites, a, b):
    """E[dH_ab prod f] / eps."""
    mean = [_m(p) for p in sites]
    if a == b:
        out = (S["D"] + 2 * S["F"]) * _m(sites[a], 1) * _prod_except(mean, {a})
        for c in range(len(sites)):
            if c != a:
                out += S["D"] * _m(sites[c], 1) * _prod_except(mean, {c})
        return out
    return S["F"] * _zm(sites[a]) * _zm(sites[b]) * _prod_except(mean, {a, b})


def _two_fluctuations(sites, h1, h2):
    """E[dH_h1 dH_h2 prod f] / eps."""
    (a, b), (c, d) = h1, h2
    kappa = (S["A"] * int(a == b and c == d) + S["B"] * int(a == c and b == d)
             + S["B"] * int(a == d and b == c))
    return kappa * _prod_except([_m(p) for p in sites], ())


def _descendant_expectation(sites, kind, idx):
    """E[X prod f] / eps for one dNTK-type object X at layer l (all its other
    fluctuations are O(1/n^2)). Definitions (fwtheory.quantities, PDLT Ch. 11, infinity):

        kappa(dH_abc, z_d) = (1/n) (delta_ad delta_bc P + delta_ab delta_cd Q + delta_ac delta_bd Q)
        E[ddIH_abcd]       = (1/n) R (delta_ab delta_cd + delta_ac delta_bd + delta_ad delta_bc)
        E[ddIIH_abcd]      = (1/n) (delta_ab delta_cd S + delta_ac delta_bd T + delta_ad delta_bc U)

    and E[dH_abc prod f] = sum_d kappa(dH_abc, z_d) <f_d'> prod_{e != d} <f_e>.
    """
    mean = [_m(p) for p in sites]
    if kind == "dH":
        a, b, c = idx
        out = sympy.Integer(0)
        for d, coef in ((a, S["P"] * int(b == c)), (c, S["Q"] * int(a == b)), (b, S["Q"] * int(a == c))):
            if coef != 0:
                out += coef * _zm(sites[d]) * _prod_except(mean, {d})
        return out
    a, b, c, d = idx
    if kind == "ddI":
        coef = S["R"] * (int(a == b and c == d) + int(a == c and b == d) + int(a == d and b == c))
    elif kind == "ddII":
        coef = (S["S"] * int(a == b and c == d) + S["T"] * int(a == c and b == d)
                + S["U"] * int(a == d and b == c))
    else:  # pragma: no cover
        raise NotImplementedError(kind)
    return coef * _prod_except(mean, ())


def layer_expectation(sites, objects, order=1, diagonal=False):
    """E[prod_a f_a(z_a) prod objects] at layer l, to O(eps^order).

    ``sites``: list of power tuples, one per distinct neuron (block);
    ``objects``: list of (kind, block indices) with kind H (NTK entry), dH, ddI, ddII.
    Returns a sympy expression polynomial in EPS, truncated after EPS**order.
    Products of single-neuron functions alone go through the general cumulant
    expansion (:func:`.cumulants.product_expectation`, any tabulated order);
    the NTK objects are known to O(eps) only, and asking for more raises.

    ``diagonal=True`` adds the single-neuron cumulants Vd, Dd, Ad of i.i.d.
    weights with a fourth cumulant (:mod:`.iid`; order 1 only).
    """
    if diagonal:
        from .iid import check_diagonal_order, diagonal_sites, diagonal_two_fluctuations

        check_diagonal_order(order)
    if not objects:
        if diagonal:
            return sympy.expand(product_expectation(sites, order) + EPS * diagonal_sites(sites))
        return product_expectation(sites, order)
    if order > 1:
        kinds = sorted({kind for kind, _ in objects})
        raise ParameterError("order", f"the NTK objects ({', '.join(kinds)}) are known to O(1/n) only; "
                             f"order {order} would need their 1/n^2 cumulants (Theta2, the 1/n^2 parts "
                             "of D, F, A, B and the NTK-preactivation six-point functions), which are "
                             "not derived. order=2 is available for preactivation fields z only")
    ntk_pairs = [idx for kind, idx in objects if kind == "H"]
    others = [(kind, idx) for kind, idx in objects if kind != "H"]
    if len(others) > 1:
        return sympy.Integer(0)  # two NTK descendants: O(1/n^2)
    if others:
        # the descendant is already O(1/n): every NTK entry takes its leading mean
        if not all(a == b for a, b in ntk_pairs):
            return sympy.Integer(0)
        value = _descendant_expectation(sites, *others[0])
        if diagonal and len(set(others[0][1])) == 1:
            # a descendant with all its indices at one neuron would have a single-neuron
            # part that is not carried: mark it (derive() refuses if it survives the expansion)
            from .iid import UNCARRIED

            value += UNCARRIED
        return sympy.expand(EPS * S["Theta"] ** len(ntk_pairs) * value)
    mean_ntk = S["Theta"] + EPS * S["Theta1"]
    total = sympy.Integer(0)
    m = len(ntk_pairs)
    on_diagonal = [a == b for a, b in ntk_pairs]
    for r in range(0, min(m, 2) + 1):
        for fluct in combinations(range(m), r):
            rest = [h for h in range(m) if h not in fluct]
            if not all(on_diagonal[h] for h in rest):
                continue  # an off-diagonal entry has zero mean
            prefactor = mean_ntk ** len(rest)
            if r == 0:
                value = product_expectation(sites, 1)
                if diagonal:
                    value += EPS * diagonal_sites(sites)
            elif r == 1:
                value = EPS * _one_fluctuation(sites, *ntk_pairs[fluct[0]])
                a, b = ntk_pairs[fluct[0]]
                if diagonal and a == b:
                    value += EPS * S["Dd"] * _m(sites[a], 1) * _prod_except([_m(p) for p in sites], {a})
            else:
                value = EPS * _two_fluctuations(sites, ntk_pairs[fluct[0]], ntk_pairs[fluct[1]])
                if diagonal:
                    value += EPS * diagonal_two_fluctuations(sites, ntk_pairs[fluct[0]], ntk_pairs[fluct[1]])
            total += prefactor * value
    return truncate(sympy.expand(total), 1)


def truncate(expr, order):
    """Drop powers of EPS above ``order`` from a polynomial in EPS."""
    poly = sympy.Poly(expr, EPS)
    return sum((c * EPS ** k for (k,), c in poly.terms() if k <= order), sympy.Integer(0))
