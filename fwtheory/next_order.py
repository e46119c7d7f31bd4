"""Order 1/n^2: evaluate the derived G2, V1, U6 recursions across depth.

Single input, layer l, n = n_{l-1}, neurons i, j, k distinct
(:data:`fwtheory.symbolic.TARGETS`; docs/order2.md):

    E[z_i^2]                                   = K + G1/n + G2/n^2 + O(1/n^3)
    E[z_i^2 z_k^2] - E[z_i^2] E[z_k^2]          = V/n + V1/n^2 + O(1/n^3)
    kappa(z_i^2, z_j^2, z_k^2)                 = U6/n^2 + O(1/n^3)

where kappa(a, b, c) = E[abc] - E[ab]E[c] - E[ac]E[b] - E[bc]E[a] + 2E[a]E[b]E[c]
is the joint cumulant; by exchangeability of the neurons
kappa(z_i^2, z_j^2, z_k^2) = E[z_i^2 z_j^2 z_k^2] - 3 E[z_i^2 z_j^2] E[z_k^2] + 2 E[z^2]^3.
U6 is the leading coefficient of this connected six-point function (the
six-point vertex of the layer-l effective theory, PDLT arXiv:2106.10165
Sec. 4.4 for its Gaussian-ensemble counterpart at O(1/n^2)).

The recursions come from :func:`fwtheory.symbolic.derive` (``order=2``; nothing
is re-typed here). Given the order-1 solution (K, G1, V) they are affine in
(G2, V1, U6):

    X^(l+1) = c_l + M_l X^(l),   X = (G2, V1, U6),

with c_l, M_l lambdified and evaluated at every layer at once. They contain
K-derivatives of Gaussian expectations up to the fourth; the third and fourth
are evaluated through the Hermite identity

    d^m/dK^m <f>_K = (2K)^(-m) E[f(sqrt(K) x) He_2m(x)],  x ~ N(0, 1),

(the heat equation d/dK = (1/2) d^2/dz^2 on the Gaussian density; m = 1, 2 are
the weights of :mod:`fwtheory.gauss`), i.e. as sums of monomials
<f z^j>_K K^(-j/2) with the coefficients of the probabilists' Hermite
polynomial He_2m.
"""

__all__ = ["ORDER2", "evaluate_order2", "check_order2_supported", "moment_values"]

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._affine import affine_parts
from .errors import FwtheoryError, ParameterError

#: the order-1/n^2 correlators predict(order=2) adds
ORDER2 = ("G2", "V1", "U6")
_NATIVE_DK = 2          # K-derivatives the Gaussian-moment routines evaluate directly


def check_order2_supported(network):
    """ParameterError("order", ...) unless derive() provides G2, V1, U6 for this
    network's ensemble (the symbolic layer decides; today gaussian and orthogonal,
    plain MLP, single input)."""
    from .symbolic import derive

    for ens in dict.fromkeys((network.ensemble, network.first_layer)):
        try:
            for name in ORDER2:
                derive(name, ens)
        except FwtheoryError as exc:
            raise ParameterError("order", f"order=2 (G2, V1, U6) is not derived for ensemble {ens!r}: "
                                          f"{exc}") from None
    if getattr(network, "residual", None) is not None:
        raise ParameterError("order", "order=2 is not derived for residual networks")


@dataclass(frozen=True)
class _Compiled2:
    moments: tuple            # GaussianMoment symbols in argument order
    affine: object            # f(K, G1, V, moments..., params) -> (c[3], M[3][3])
    initial: dict             # first-layer ensemble -> f(q0, params) -> [G2, V1, U6]
    sympy_pieces: dict = field(repr=False)


@lru_cache(maxsize=None)
def _compile2(ensemble, backend):
    import sympy

    from .symbolic import CORRELATOR_SYMBOLS as S
    from .symbolic import C_W, C_b, derive, lambda_W, lambda_b, moments_in, q0

    params = (C_b, C_W, lambda_b, lambda_W)
    recs = {k: derive(k, ensemble) for k in ORDER2}
    xs = [S[k] for k in ORDER2]
    moments = tuple(sorted({m for r in recs.values() for m in moments_in(r.expr)},
                           key=lambda m: (m.dk, m.name)))
    c_vec, m_mat = affine_parts([(k, recs[k].expr) for k in ORDER2], xs, "G2, V1, U6")
    allowed = {S["K"], S["G1"], S["V"]} | set(moments) | set(params)
    extra = set().union(*(e.free_symbols for e in c_vec + sum(m_mat, []))) - allowed
    if extra:
        raise AssertionError(f"order-2 recursions depend on {sorted(map(str, extra))}")
    modules = "mpmath" if backend == "mpmath" else "numpy"

    def lam(args, expr):
        return sympy.lambdify(args, expr, modules=modules, dummify=True, cse=True)

    args = (S["K"], S["G1"], S["V"]) + moments + params
    initial = {first: lam((q0,) + params, [recs[k].initial[first] for k in ORDER2])
               for first in ("gaussian", "orthogonal")}
    return _Compiled2(moments=moments, affine=lam(args, [c_vec, m_mat]), initial=initial,
                      sympy_pieces={"c": c_vec, "M": m_mat})


@lru_cache(maxsize=None)
def _hermite_even(m):
    """Coefficients (j, c_j) of He_2m(x) = sum_j c_j x^j (nonzero, j even)."""
    from numpy.polynomial import hermite_e

    coef = hermite_e.herme2poly([0] * (2 * m) + [1])
    return tuple((j, int(round(c))) for j, c in enumerate(coef) if round(c) != 0)


def _requests(moments):
    """Expand every moment into (powers, dk) requests with dk <= 2; returns the
    request list and, per moment, [(request index, coefficient c_j, j)] (empty
    j = None: the request is the moment itself)."""
    requests, index, plan = [], {}, []

    def want(powers, dk):
        key = (tuple(powers), dk)
        if key not in index:
            index[key] = len(requests)
            requests.append(key)
        return index[key]

    for mom in moments:
        if mom.dk <= _NATIVE_DK:
            plan.append((mom.dk, [(want(mom.powers, mom.dk), 1, None)]))
        else:
            a, b, c, e, d = mom.powers
            plan.append((mom.dk, [(want((a, b, c, e, d + j), 0), cj, j) for j, cj in _hermite_even(mom.dk)]))
    return requests, plan


def _assemble(plan, values, K, sqrt):
    """Moment values from the request values: d^m/dK^m <f> = (2K)^-m sum_j c_j K^(-j/2) <f z^j>."""
    out = []
    for dk, terms in plan:
        if terms[0][2] is None:
            out.append(values[terms[0][0]])
            continue
        total = 0
        for idx, cj, j in terms:
            total = total + cj * values[idx] / sqrt(K) ** j
        out.append(total / (2 * K) ** dk)
    return out


def moment_values(activation, K, moments):
    """float64 values of GaussianMoment symbols at the kernel values K (array):
    K-derivatives up to 2 by :func:`fwtheory.gauss.expect_monomials`, higher ones by
    the Hermite identity of the module docstring. Returns a list of arrays."""
    from .gauss import expect_monomials

    K = np.asarray(K, dtype=float)
    requests, plan = _requests(moments)
    vals = [None] * len(requests)
    for dk in range(_NATIVE_DK + 1):
        idx = [i for i, r in enumerate(requests) if r[1] == dk]
        if idx:
            got = expect_monomials(activation, K, [requests[i][0] for i in idx], dk)
            for j, i in enumerate(idx):
                vals[i] = np.asarray(got[j], dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _assemble(plan, vals, K, np.sqrt)


def evaluate_order2(network, q0, K, G1, V, precision="float64", dps=30):
    """(G2, V1, U6) at layers 1..L from the order-1 arrays K, G1, V (length L).

    float64: arrays; mpmath: lists of mpf (moments by
    :func:`fwtheory.gauss_mp.expect_moments_mp` at ``dps`` digits). Raises
    NumericalError on non-finite values (naming the correlator and layer)."""
    from .errors import NumericalError

    comp = _compile2(network.ensemble, "mpmath" if precision == "mpmath" else "numpy")
    act, L = network.activation, len(K)
    raw = (network.C_b, network.C_W, network.lambda_b, network.lambda_W)
    if precision == "mpmath":
        import mpmath

        from .gauss_mp import expect_moments_mp

        requests, plan = _requests(comp.moments)
        with mpmath.workdps(dps):
            params = tuple(mpmath.mpf(p) for p in raw)
            X = [list(comp.initial[network.first_layer](mpmath.mpf(q0), *params))]
            for layer in range(L - 1):
                vals = expect_moments_mp(act, K[layer], requests, dps=dps)
                moms = _assemble(plan, vals, K[layer], mpmath.sqrt)
                c, M = comp.affine(K[layer], G1[layer], V[layer], *moms, *params)
                X.append([c[i] + sum(M[i][j] * X[-1][j] for j in range(3)) for i in range(3)])
                if not all(mpmath.isfinite(v) for v in X[-1]):
                    raise NumericalError(f"order-2 correlators non-finite at layer {layer + 2} (mpmath)")
        return {k: [row[i] for row in X] for i, k in enumerate(ORDER2)}
    K, G1, V = (np.asarray(a, dtype=float) for a in (K, G1, V))
    params = tuple(np.float64(p) for p in raw)
    try:
        moms = moment_values(act, K, comp.moments)
    except NumericalError as exc:
        raise NumericalError(f"order-2 Gaussian moments at layers 1..{L}: {exc}") from exc
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c, M = comp.affine(K, G1, V, *moms, *params)
        c = np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in c], axis=-1)
        M = np.stack([np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in row], -1)
                      for row in M], axis=-2)
        X = np.empty((L, 3))
        X[0] = [float(x) for x in comp.initial[network.first_layer](np.float64(q0), *params)]
        for layer in range(L - 1):
            X[layer + 1] = c[layer] + M[layer] @ X[layer]
    bad = ~np.isfinite(X)
    if bad.any():
        first = int(bad.any(axis=1).argmax())
        name = ORDER2[int(np.argmax(bad[first]))]
        raise NumericalError(f"{name} overflowed (non-finite) at layer {first + 1}; the network is too "
                             "deep or too chaotic for float64")
    return {k: X[:, i].copy() for i, k in enumerate(ORDER2)}
