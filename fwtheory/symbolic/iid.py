"""Single-neuron cumulants of i.i.d. weights with a fourth cumulant (order 1/n).

For i.i.d. weights of variance C_W/n and relative fourth cumulant kappa_4
(uniform on [-a, a]: -6/5; signs +-1: -2; Gaussian: 0),
E[W^4] = (3 + kappa_4) (C_W/n)^2. Given layer l, the preactivations
z_i = b_i + sum_j W_ij s_j of layer l+1 are independent across i (independent
rows), each with conditional variance G^ = C_b + C_W (1/n) sum_j s_j^2 and
conditional fourth cumulant kappa_4 (C_W/n)^2 sum_j s_j^4 = O(1/n). The
variance is shared by all neurons (this gives V); the fourth cumulant is not:
it is a *single-neuron* cumulant, a delta_{i1 i2 i3 i4} structure that the
rotation-invariant effective theory (:mod:`.cumulants`, pairings only) has no
room for. At order 1/n the layer-l effective theory gains three entries
(docs/derivation.md, "i.i.d. weights with a fourth cumulant"):

    kappa(z_a, z_b, z_c, z_d)  = (1/n) [V (d_ab d_cd + d_ac d_bd + d_ad d_bc) + Vd d_abcd]
    kappa(dH_ab, z_c, z_d)     = (1/n) [D d_ab d_cd + F (d_ac d_bd + d_ad d_bc) + Dd d_abcd]
    kappa(dH_ab, dH_cd)        = (1/n) [A d_ab d_cd + B (d_ac d_bd + d_ad d_bc) + Ad d_abcd]

(d_abcd = 1 when all four neuron indices agree). In an expectation of
functions of distinct neurons they act on one neuron at a time (Gaussian
integration by parts, <f''''>_K = 4 d^2<f>/dK^2, <f''>_K = 2 d<f>/dK):

    E[prod_a f_a]        += (1/n) (Vd/6) sum_a d^2<f_a> prod_{b != a} <f_b>
    E[dH_aa prod f]      += (1/n) Dd d<f_a> prod_{b != a} <f_b>
    E[dH_aa dH_aa prod f] += (1/n) Ad prod <f>

They are read off as the 1/n parts of single-neuron joint cumulants minus
their pair parts (:data:`DIAGONAL_TARGETS`) and derived like every other
correlator; the engine finds Vd' = kappa_4 C_W^2 <s^4>, Dd' = kappa_4 C_W^2
Theta <s^2 s'^2>, Ad' = kappa_4 C_W^2 Theta^2 <s'^4> (no dependence on the
layer-l Vd, Dd, Ad at this order), and in the other recursions Vd enters G1
and Theta1, Dd enters Theta1, Ad enters none: correlators of distinct
neurons (V, D, F, A, B and the NTK descendants) see single-neuron cumulants
only through covariances, in which they cancel at order 1/n.
"""

__all__ = ["DIAGONAL_NAMES", "DIAGONAL_TARGETS", "UNCARRIED", "check_diagonal_order", "diagonal_sites",
           "diagonal_two_fluctuations"]

import sympy

from ..errors import ParameterError
from .symbols import CORRELATOR_SYMBOLS as S
from .symbols import moment

DIAGONAL_NAMES = ("Vd", "Dd", "Ad")

_Z_I, _H_II = ("z", "i"), ("H", "i", "i")

#: name -> (groups of fields at ONE neuron whose joint cumulant is (pair part + X)/n,
#: the pair part as {correlator: coefficient})
DIAGONAL_TARGETS = {
    "Vd": (((_Z_I,), (_Z_I,), (_Z_I,), (_Z_I,)), {"V": 3}),
    "Dd": (((_H_II,), (_Z_I,), (_Z_I,)), {"D": 1, "F": 2}),
    "Ad": (((_H_II,), (_H_II,)), {"A": 1, "B": 2}),
}

#: marks an expectation term the diagonal theory does not carry (a single-neuron
#: part of an NTK descendant); derive() raises if it survives the 1/n expansion
UNCARRIED = sympy.Symbol("UNCARRIED_single_neuron_descendant_cumulant")


def check_diagonal_order(order):
    if order > 1:
        raise ParameterError("order", f"order {order} with i.i.d. weights with a fourth cumulant would "
                                      "need the 1/n^2 single-neuron cumulants (the sixth cumulant of the "
                                      "weights, the 1/n corrections of Vd and their mixed pair-diagonal "
                                      "terms), which are not derived; order <= 1 only")


def diagonal_sites(sites):
    """(Vd/6) sum_a d^2<f_a> prod_{b != a} <f_b> for the sites' power tuples."""
    mean = [moment(*p) for p in sites]
    total = sympy.Integer(0)
    for a, p in enumerate(sites):
        term = S["Vd"] / 6 * moment(*p, dk=2)
        for b, m in enumerate(mean):
            if b != a:
                term *= m
        total += term
    return total


def diagonal_two_fluctuations(sites, h1, h2):
    """Ad prod <f> when both NTK fluctuations sit at one neuron (d_abcd)."""
    if len({*h1, *h2}) != 1:
        return sympy.Integer(0)
    out = S["Ad"]
    for p in sites:
        out *= moment(*p)
    return out
