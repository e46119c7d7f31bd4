"""Round-off bound of the leading-order 1/n coefficients, from the size of their terms.

A coefficient X that is exactly zero in the theory (ReLU's G1 and Theta1:
the kernel map of a scale-invariant activation is linear, so the K-derivative
moments d^2<sigma^2>/dK^2 that source them vanish; Roberts, Yaida, Hanin,
arXiv:2106.10165, Ch. 5, scale-invariant universality class; ``fwtheory
asymptotics --activation relu``) is not returned as 0 by
:func:`fwtheory.prediction.predict`: it is built from terms of size O(1)
(moments, and the linearly growing V they multiply) that cancel up to the
quadrature and floating-point error, e.g. 1e-14..1e-9 for ReLU's G1/K over
2000 layers. An
absolute threshold cannot tell that from a genuinely small coefficient. This
module bounds the error of each X^(l) from the magnitudes of the terms it is
built from, so that "zero" means "zero within the theory's own error".

The recursion of the 1/n coefficients is affine (docs/derivation.md):
X^(l+1) = c_l + M_l X^(l), with c_l and M_l polynomials in the Gaussian
moments m = d^j/dK^j <f>_K, K, Theta and the hyperparameters. Each moment is
computed with an error <= eps * s(m), eps = :data:`fwtheory.gauss.DEFAULT_RTOL`
(1e-12), s(m) the integral of |f times its Hermite weight| (fwtheory.gauss,
"Quadrature"); here s(m) is bounded by Cauchy-Schwarz,

    s(m) <= sqrt(<f^2>_K) * h_j / K^j,   h_0 = 1, h_1 = sqrt(6)/2, h_2 = sqrt(456)/4,

(h_j^2 = E[(sum of |coefficients| |x|^k of the Hermite weight)^2], x ~ N(0, 1):
E[(x^2 + 1)^2] / 4 and E[(x^4 + 6x^2 + 3)^2] / 16, PDLT eq. (4.25) for the
weights). Writing |e| for the term scale of a polynomial e (the sum over its
expanded terms of |coefficient| x product of the scales of the factors; |K|,
|Theta|, |C_W|, ... and s(m)), the error E^(l) of X^(l) obeys

    E^(l+1) = |M_l| E^(l) + eps (|c_l| + |M_l|_terms |X^(l)|),
    E^(1)   = eps |X^(1)|,

(|M_l| the entrywise absolute value of the computed matrix, which propagates
errors already made; the second term is the new error of one step, which
also covers float64 rounding, ~1e-16 per term). X is zero at this order
when |X^(l)| <= E^(l) at every layer: nothing is left above the error of its
own terms. For ReLU's G1 the ratio |X|/E stays below 1e-4; for tanh's G1 it
is above 1e10.
"""

__all__ = ["EPS", "roundoff_bounds", "within_bound", "ratio_bounds", "zero_values"]

import math
from functools import lru_cache

import numpy as np

from .gauss import DEFAULT_RTOL

EPS = DEFAULT_RTOL
_HERMITE_ABS = (1.0, math.sqrt(6.0) / 2.0, math.sqrt(456.0) / 4.0)


@lru_cache(maxsize=None)
def _scale_functions(ensemble, diagonal=False, layer="mlp"):
    """Lambdified term scales |c| (vector) and |M|_terms (matrix) of one ensemble."""
    import sympy

    from .prediction import _compile, _param_symbols
    from .symbolic import CORRELATOR_SYMBOLS as S

    comp = _compile(ensemble, "numpy", diagonal, layer)

    def term_scale(expr):
        total = sympy.Integer(0)
        for term in sympy.Add.make_args(sympy.expand(expr)):
            coeff, rest = term.as_coeff_Mul()
            total += abs(coeff) * rest
        return total

    c = [term_scale(e) for e in comp.sympy_pieces["c"]]
    M = [[term_scale(e) for e in row] for row in comp.sympy_pieces["M"]]
    args = (S["K"], S["Theta"]) + comp.moments + _param_symbols()
    f = sympy.lambdify(args, [c, M], modules="numpy", dummify=True)
    return comp, f


def _moment_scales(activation, moments, K):
    """Cauchy-Schwarz bound of the integral of |f w_j| for every moment, at every K."""
    squares = tuple(dict.fromkeys(tuple(2 * p for p in m.powers) for m in moments))
    second = dict(zip(squares, _second_moments(activation, K, squares)))
    out = []
    for m in moments:
        root = np.sqrt(np.abs(second[tuple(2 * p for p in m.powers)]))
        out.append(root * _HERMITE_ABS[m.dk] / K ** m.dk)
    return out


def _second_moments(activation, K, squares, block=64):
    """<f^2>_K for each monomial f^2 in ``squares``; inf where it overflows
    (huge K, e.g. C_W = 3 ReLU deep down: the bound is then void there)."""
    from .errors import NumericalError
    from .gauss import expect_monomials

    try:
        return expect_monomials(activation, K, squares, 0)
    except NumericalError:
        pass
    out = np.full((len(squares), len(K)), np.inf)
    for a in range(0, len(K), block):
        try:
            out[:, a:a + block] = expect_monomials(activation, K[a:a + block], squares, 0)
        except NumericalError:
            for i in range(a, min(a + block, len(K))):
                try:
                    out[:, i] = expect_monomials(activation, K[i:i + 1], squares, 0)[:, 0]
                except NumericalError:
                    pass
    return out


def _matrix(rows, L):
    return np.stack([np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in row], -1)
                     for row in rows], axis=-2)


def roundoff_bounds(prediction, eps=EPS):
    """Per-layer error bounds E^(l) of the 1/n coefficients of ``prediction``
    (module docstring); returns {name: ndarray (L,)} for the names of
    :data:`fwtheory.quantities.FLUCTUATIONS` (and Vd, Dd, Ad for i.i.d. weights)."""
    from .gauss import expect_monomials
    from .prediction import _carries_diagonal, _layer, _moment_table, _params

    net = prediction.network
    comp, scales = _scale_functions(net.ensemble, _carries_diagonal(net), _layer(net))
    FLUCTUATIONS = comp.fluctuations
    values = {k: np.asarray(v, dtype=float) for k, v in prediction.values.items()}
    K, Theta = values["K"], values["Theta"]
    L = len(K)
    params = _params(net)
    moms = _moment_table(comp, net.activation, K, expect_monomials)
    try:
        with np.errstate(over="ignore", invalid="ignore"):   # huge parameters: the bound is void (inf)
            c, M = comp.fluct_affine(K, Theta, *moms, *params)
            M = np.abs(_matrix(M, L))
            sc, sM = scales(np.abs(K), np.abs(Theta), *_moment_scales(net.activation, comp.moments, K),
                            *(abs(p) for p in params))
    except OverflowError:       # Python-float powers of huge parameters (e.g. lambda_W = 1e200)
        return {k: np.full(L, np.inf) for k in FLUCTUATIONS}
    sc = np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in sc], axis=-1)
    sM = _matrix(sM, L)
    X = np.abs(np.stack([values[k] for k in FLUCTUATIONS], axis=-1))
    E = np.empty_like(X)
    E[0] = eps * X[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(L - 1):
            E[layer + 1] = M[layer] @ E[layer] + eps * (sc[layer] + sM[layer] @ X[layer])
    return {k: E[:, j] for j, k in enumerate(FLUCTUATIONS)}


def ratio_bounds(prediction, bounds=None):
    """{ratio: per-layer error bound}: the numerator's bound from
    :func:`roundoff_bounds` times |extra factors / denominator|."""
    from .quantities import ALL_RATIOS

    bounds = roundoff_bounds(prediction) if bounds is None else bounds
    values = {k: np.abs(np.asarray(v, dtype=float)) for k, v in prediction.values.items()}
    out = {}
    for name, spec in ALL_RATIOS.items():
        num, den, extra = spec[0], spec[1], (spec[2] if len(spec) > 2 else ())
        if num not in bounds:
            continue
        e = bounds[num].copy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for f in extra:
                e = e * values[f]
            for f in den:
                e = e / values[f]
        out[name] = e
    return out


def within_bound(values, bound):
    """True where |value| <= bound, i.e. the value is 0 within its round-off
    bound; never where the bound is void (not finite: an overflowing term),
    which claims nothing. The one zero test of :func:`zero_values` and of
    :mod:`fwtheory.depth_saturation`."""
    bound = np.asarray(bound, dtype=float)
    with np.errstate(invalid="ignore"):
        return (np.abs(np.asarray(values, dtype=float)) <= bound) & np.isfinite(bound)


def zero_values(prediction):
    """{correlator or ratio: bool (L,)}: True where the value is 0 at this
    order (:func:`within_bound` of its round-off bound E^(l))."""
    bounds = roundoff_bounds(prediction)
    out = {k: within_bound(prediction.values[k], e) for k, e in bounds.items()}
    ratios = prediction.ratios
    for name, e in ratio_bounds(prediction, bounds).items():
        out[name] = within_bound(ratios[name], e)
    return out
