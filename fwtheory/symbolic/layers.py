"""Layer maps of the symbolic engine: the plain MLP and the residual MLP.

* ``"mlp"``:      z^(l+1)_i = b_i + sum_j W_ij sigma(z^(l)_j)
* ``"residual"``: z^(l+1)_i = z^(l)_i + gamma (b_i + sum_j W_ij sigma(z^(l)_j)),  l >= 1

(the first layer is plain in both; PDLT arXiv:2106.10165 appendix B,
"residual learning", with shortcut weight 1 and block weight gamma;
fwtheory.network). The residual map is differentiated by the same chain rule
(:mod:`.chain_rule`, ``residual=gamma``): d z^(l+1)_i / d theta =
d z^(l)_i / d theta + gamma sum_j W_ij sigma'_j d z^(l)_j / d theta below,
gamma delta_im and gamma delta_im sigma_j for the biases and weights of layer
l+1. The layer-l neuron i of the shortcut is the *same* neuron as the external
neuron i of layer l+1, so the neuron sums of :mod:`.derivation` treat the
external labels as fixed, distinct layer-l sites (a summed index either is one
of them or ranges over the n - e others). Expectations then contain Gaussian
moments of z alone, which are closed forms (:func:`reduce_pure_z`):
<z^(2m)>_K = (2m-1)!! K^m and its K-derivatives.
"""

__all__ = ["LAYER_MAPS", "reduce_pure_z"]

import sympy

from .symbols import CORRELATOR_SYMBOLS, GaussianMoment

LAYER_MAPS = ("mlp", "residual")


def _pure_z(powers, dk):
    d = powers[4]
    if d % 2:
        return sympy.Integer(0)
    K = CORRELATOR_SYMBOLS["K"]
    return sympy.diff(sympy.factorial2(d - 1) * K ** (d // 2), K, dk) if dk else \
        sympy.factorial2(d - 1) * K ** (d // 2)


def reduce_pure_z(expr):
    """Replace every Gaussian moment of z alone, d^k/dK^k <z^d>_K, by its closed form."""
    subs = {m: _pure_z(m.powers, m.dk) for m in expr.atoms(GaussianMoment) if m.powers[:4] == (0, 0, 0, 0)}
    return sympy.expand(expr.xreplace(subs)) if subs else expr
