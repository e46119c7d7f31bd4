"""Leading-order finite-width theory across depth: evaluate the derived recursions.

:func:`predict` compiles the single-input recursions produced by
:func:`fwtheory.symbolic.derive` (the single source of truth; nothing is
re-typed here) and iterates them layer by layer:

1. K^(l) from the derived K recursion (nonlinear, sequential quadrature);
2. all Gaussian moments the recursions need, at every K^(l) at once;
3. Theta^(l) (affine in Theta given K);
4. the 1/n coefficients X = (G1, V, Theta1, D, F, A, B), which the derivation
   makes affine: X^(l+1) = c_l + M_l X^(l), with c_l, M_l lambdified from the
   sympy expressions and evaluated for all layers in one vectorized call.

Normalizations: :mod:`fwtheory.quantities` (PDLT arXiv:2106.10165; the 1/n at
layer l is 1/n_{l-1}). ``precision="mpmath"`` runs the same compiled
recursions with mpmath moments and arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .prediction_multi import GramPrediction

__all__ = ["predict", "Prediction"]

import numbers
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._affine import affine_parts
from .errors import NumericalError, ParameterError, check_int, check_real
from .network import DERIVED_ENSEMBLES, Network, check_input_norm
from .next_order import ORDER2
from .quantities import ALL_CORRELATORS, DESCENDANTS, FLUCTUATIONS, ratio_values


# ------------------------------------------------------------------ compile
@dataclass(frozen=True)
class _Compiled:
    """Lambdified pieces of the derived recursions of one ensemble."""

    moments: tuple            # GaussianMoment symbols, in argument order
    kernel_step: object       # f(K, moments..., params) -> K^(l+1)
    ntk_affine: object        # f(K, moments..., params) -> (a, b): Theta' = a + b Theta
    fluct_affine: object      # f(K, Theta, moments..., params) -> (c[7], M[7][7])
    initial: dict             # first-layer ensemble -> f(q0, params) -> values dict
    sympy_pieces: dict = field(repr=False)
    fluctuations: tuple = FLUCTUATIONS   # the affine vector X (+ Vd, Dd, Ad for i.i.d. weights)
    names: tuple = ALL_CORRELATORS       # the correlators evaluated (no P..U for residual networks)


def _param_symbols():
    from .symbolic import C_W, C_b, lambda_W, lambda_b
    from .symbolic.symbols import gamma

    return (C_b, C_W, lambda_b, lambda_W, gamma)


def _carries_diagonal(network):
    """A uniform or Rademacher layer anywhere: the recursions carry the single-neuron
    cumulants Vd, Dd, Ad (fwtheory.symbolic.iid), also between rotation-invariant layers."""
    from .symbolic.ensembles import IIDEnsemble, get_ensemble

    return any(isinstance(get_ensemble(e), IIDEnsemble) for e in (network.ensemble, network.first_layer))


@lru_cache(maxsize=None)
def _compile(ensemble, backend, diagonal=False, layer="mlp"):
    import sympy

    from .symbolic import CORRELATOR_SYMBOLS as S
    from .symbolic import derive, moments_in, q0
    from .symbolic.derivation import derive_carrying_diagonal
    from .symbolic.iid import DIAGONAL_NAMES
    from .symbolic.symbols import q4

    # residual networks: the NTK descendants are not derived (derive() refuses them)
    skip = DESCENDANTS if layer == "residual" else ()
    fluctuations = tuple(k for k in FLUCTUATIONS if k not in skip) + (DIAGONAL_NAMES if diagonal else ())
    names = tuple(k for k in ALL_CORRELATORS if k not in skip) + (DIAGONAL_NAMES if diagonal else ())
    if diagonal:
        recs = {k: derive_carrying_diagonal(k, ensemble, layer=layer) for k in names}
    else:
        recs = {k: derive(k, ensemble, layer=layer) for k in names}
    params = _param_symbols()
    moments = tuple(sorted({m for r in recs.values() for m in moments_in(r.expr)},
                           key=lambda m: (m.dk, m.name)))
    K, Th = S["K"], S["Theta"]
    fl = [S[k] for k in fluctuations]
    modules = "mpmath" if backend == "mpmath" else "numpy"

    def lam(args, expr):
        return sympy.lambdify(args, expr, modules=modules, dummify=True, cse=True)

    kernel_expr = recs["K"].expr
    theta_expr = sympy.expand(recs["Theta"].expr)
    theta_b = theta_expr.coeff(Th, 1)
    theta_a = sympy.expand(theta_expr - theta_b * Th)
    if Th in theta_a.free_symbols or Th in theta_b.free_symbols:
        raise AssertionError("derived Theta recursion is not affine in Theta")
    c_vec, m_mat = affine_parts([(k, recs[k].expr) for k in fluctuations], fl, "the 1/n coefficients")
    args = (K, Th) + moments + params
    initial = {}
    for first in recs["K"].initial:
        # the samplers' input x = sqrt(q0) (1, ..., 1): (1/n0) sum_j x_j^4 = q0^2
        exprs = [sympy.sympify(recs[k].initial[first]).subs(q4, q0 ** 2) for k in names]
        initial[first] = lam((q0,) + params, exprs)
    return _Compiled(
        moments=moments,
        kernel_step=lam((K,) + moments + params, kernel_expr),
        ntk_affine=lam((K,) + moments + params, [theta_a, theta_b]),
        fluct_affine=lam(args, [c_vec, m_mat]),
        initial=initial,
        sympy_pieces={"K": kernel_expr, "Theta": (theta_a, theta_b), "c": c_vec, "M": m_mat},
        fluctuations=fluctuations,
        names=names,
    )


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class Prediction:
    """Per-layer leading-order correlators of one network (layers 1..L).

    ``values[name]`` for name in K, G1, V, Theta, Theta1, D, F, A, B and the NTK
    descendants P, Q, R, S, T, U (not for residual networks, whose descendant
    recursions are not derived; Vd, Dd, Ad for i.i.d. uniform/Rademacher
    weights: docs/derivation.md) (arrays of
    shape (L,), or lists of mpf for ``precision="mpmath"``), ``ratios`` the
    dimensionless ratios of :data:`fwtheory.quantities.RATIOS`. With
    ``order=2`` also G2, V1, U6 (:mod:`fwtheory.next_order`).
    """

    network: Network
    input_norm: float
    layers: np.ndarray
    values: dict
    precision: str = "float64"
    order: int = 1

    def __getitem__(self, name):
        return self.values[name]

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def ratios(self):
        return ratio_values({k: np.asarray(v, dtype=float) for k, v in self.values.items()})

    def finite_width(self, width=None, order=1):
        """Finite-width moments implied at width n (default: the network's),
        with n_{l-1} = input_dim for layer 1 (quantities.py conventions), the
        series truncated after 1/n^order (``order=2`` needs ``predict(order=2)``:
        E[z^2] = K + G1/n + G2/n^2, Cov(z_i^2, z_k^2) = V/n + V1/n^2,
        kappa(z_i^2, z_j^2, z_k^2) = U6/n^2; the NTK entries stay at 1/n)."""
        if isinstance(order, bool) or order not in (1, 2) or (order == 2 and "G2" not in self.values):
            raise ParameterError("order", f"must be 1 or 2 (2 needs predict(..., order=2)), got {order!r}")
        n = np.full(len(self.layers), float(width or self.network.width))
        if width is None:
            n[0] = self.network.input_dim
        v = {k: np.asarray(x, dtype=float) for k, x in self.values.items()}
        ez2 = v["K"] + v["G1"] / n
        cov = v["V"] / n
        if order == 2:
            ez2 = ez2 + v["G2"] / n**2
            cov = cov + v["V1"] / n**2
        out = {
            "E[z^2]": ez2,
            "E[z^4]": 3 * ez2**2 + 3 * cov + v.get("Vd", 0.0) / n,   # Vd: i.i.d. weights' single-neuron cumulant
            "Cov(z_i^2, z_k^2)": cov,
            "E[H_ii]": v["Theta"] + v["Theta1"] / n,
            "Var(H_ii)": (v["A"] + 2 * v["B"] + v.get("Ad", 0.0)) / n,
            "Cov(H_ii, H_kk)": v["A"] / n,
            "E[H_ik^2]": v["B"] / n,
            "Cov(H_ii, z_k^2)": v["D"] / n,
            "E[H_ik z_i z_k]": v["F"] / n,
        }
        if order == 2:
            out["kappa(z_i^2, z_j^2, z_k^2)"] = v["U6"] / n**2
        return out

    def to_dict(self):
        out = {"network": dict(self.network.to_dict(), input_norm=self.input_norm),
               "precision": self.precision,
               "layers": [int(x) for x in self.layers]}
        for k in ALL_CORRELATORS:
            if k in self.values:    # residual networks: no NTK descendants
                out[k] = [float(x) for x in self.values[k]]
        out["ratios"] = {k: v.tolist() for k, v in self.ratios.items()}
        out["finite_width"] = {k: v.tolist() for k, v in self.finite_width().items()}
        if self.order == 2:
            out["order"] = 2
            for k in ORDER2:
                out[k] = [float(x) for x in self.values[k]]
            out["ratios"].update({k: v.tolist() for k, v in self.order2_ratios.items()})
            out["finite_width_order2"] = {k: v.tolist() for k, v in self.finite_width(order=2).items()}
        return out

    @property
    def order2_ratios(self):
        """{"G2/K", "V1/K^2", "U6/K^3"} (order=2 only; coefficients of 1/n^2)."""
        if "G2" not in self.values:
            return {}
        v = {k: np.asarray(self.values[k], dtype=float) for k in ("K",) + ORDER2}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return {"G2/K": v["G2"] / v["K"], "V1/K^2": v["V1"] / v["K"] ** 2,
                    "U6/K^3": v["U6"] / v["K"] ** 3}


# ------------------------------------------------------------------ evaluate
def predict(network: Network, input_norm: float = 1.0, precision: Literal["float64", "mpmath"] = "float64",
            dps: int = 30, progress: Any = None, order: Literal[1, 2] = 1,
            gram: ArrayLike | None = None) -> Prediction | GramPrediction:
    """Leading-order correlators of ``network`` at every layer.

    Parameters
    ----------
    network : Network
    input_norm : float
        q0 = |x|^2 / n0 >= 0, so K^(1) = C_b + C_W q0 and Theta^(1) = lambda_b + lambda_W q0.
    precision : {"float64", "mpmath"}
        ``"mpmath"`` evaluates the same compiled recursions with mpmath moments at
        ``dps`` digits (an oracle for the float64 path): every moment to an
        estimated error <= 10^-dps relative to <|integrand|> (fixed Gauss rules,
        :mod:`fwtheory.gauss_mp`), arithmetic at ``dps`` digits. Tanh, depth 50:
        ~2-3 s (benchmarks/README.md).
    dps : int >= 15
    progress : ProgressBar, optional
        mpmath path only: an object with ``update()`` and the context-manager
        protocol, ticked once per layer. Default: a
        :class:`fwtheory._io.ProgressBar` on stderr, drawn only on a terminal and
        only for runs longer than 2 s.
    order : {1, 2}
        2 adds the 1/n^2 preactivation correlators G2, V1, U6 (single input;
        :mod:`fwtheory.next_order`, docs/order2.md) for the ensembles whose order-2
        recursions ``derive`` provides (others raise ParameterError naming
        ``order``). The NTK correlators stay at order 1/n.

    gram : (m, m) array, optional
        Several inputs: the Gram matrix G_ab = x_a.x_b / n0 (m <= 4, symmetric
        positive semidefinite) replaces ``input_norm``; returns a
        :class:`~fwtheory.prediction_multi.GramPrediction` with tensors indexed
        [layer][a][b] (K, G1, Theta, Theta1) and [layer][a][b][c][d] (V, D, F, A, B),
        from the derived multi-input recursions (docs/derivation.md, "Several inputs").

    Returns
    -------
    Prediction (GramPrediction with ``gram``)
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    if gram is not None:
        if precision != "float64":
            raise ParameterError("precision", "with gram (several inputs) only 'float64' is available")
        if order != 1:
            raise ParameterError("order", "with gram (several inputs) only order 1 is derived; "
                                          "order 2 is single-input (G2, V1, U6)")
        if input_norm != 1.0:
            raise ParameterError("input_norm", "give either input_norm (one input) or gram (several "
                                               "inputs; its diagonal holds the input norms), not both")
        from .prediction_multi import predict_gram

        return predict_gram(network, gram)
    _refuse_underived(network)
    q0 = check_input_norm(network, input_norm)   # > 0 when C_b = 0 (K^(1) would vanish)
    if precision not in ("float64", "mpmath"):
        raise ParameterError("precision", f"must be 'float64' or 'mpmath', got {precision!r}")
    dps = check_int("dps", dps, lower=15)
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order not in (1, 2):
        raise ParameterError("order", f"must be 1 or 2, got {order!r}: order 3 would need the 1/n^3 "
                                      "corrections and the eight-point cumulant, which are not derived")
    if order == 2:
        from .next_order import check_order2_supported

        check_order2_supported(network)
    if precision == "mpmath":
        pred = _predict_mpmath(network, q0, dps, progress)
    else:
        pred = _predict_float(network, q0)
    return pred if order == 1 else _with_order2(pred, dps)


def _with_order2(pred, dps):
    """``pred`` with G2, V1, U6 added (:func:`fwtheory.next_order.evaluate_order2`)."""
    from dataclasses import replace

    from .next_order import evaluate_order2

    v = pred.values
    extra = evaluate_order2(pred.network, pred.input_norm, v["K"], v["G1"], v["V"],
                            precision=pred.precision, dps=dps)
    return replace(pred, values=dict(v, **extra), order=2)


def _refuse_underived(network):
    """ParameterError for networks whose recursions are not derived (an ensemble
    outside DERIVED_ENSEMBLES); simulate() runs them."""
    for name in ("ensemble", "first_layer"):
        value = getattr(network, name)
        if value not in DERIVED_ENSEMBLES:
            raise ParameterError(name, f"derive() does not yet provide recursions for ensemble {value!r}; "
                                       "simulate() supports it")
    if network.residual is not None and not _is_odd(network.activation):
        # z + gamma W sigma(z) with sigma not odd: the shared block variance
        # C_W (1/n) sum_j sigma_j^2 correlates with each z_i at odd order, which gives
        # O(1/n) three-point cumulants such as kappa(z_i, z_i, z_k) = gamma^2 C_W <z sigma^2>/n
        # that the layer-l effective theory does not carry (docs/derivation.md)
        raise ParameterError("residual", f"the derived residual recursions need an odd activation "
                                         f"(sigma(-z) = -sigma(z)); {network.activation.name} is not: "
                                         "its odd O(1/n) three-point cumulants are not carried by the "
                                         "effective theory (simulate() runs it)")
    if network.first_layer == "rademacher" and network.C_b == 0 and network.activation.kinks:
        # z^(1) = sqrt(C_W q0 / n0) (2 Binomial(n0, 1/2) - n0) lives on a lattice, with an atom
        # of mass ~ (2 / (pi n0))^(1/2) at 0 for even n0: at a kink of sigma this is an
        # O(n0^-1/2) effect, outside the 1/n expansion (docs/derivation.md)
        raise ParameterError("first_layer", f"a Rademacher first layer with C_b = 0 puts z^(1) on a lattice "
                                            f"(atoms of mass ~ n0^-1/2) and {network.activation.name} has "
                                            "kinks: the 1/n theory does not apply; use C_b > 0 or another "
                                            "first_layer")


def _first_step_scale(network):
    """n_1 / n_0: the layer-1 coefficients are per 1/n0 (their normalization), the
    recursions take them per 1/n of the hidden width (nonzero ones only arise for an
    orthogonal first layer, where n0 = n, and for the i.i.d. first layers' Vd)."""
    return network.width / network.input_dim


def _layer(network):
    return "mlp" if network.residual is None else "residual"


def _is_odd(act):
    """sigma(-z) = -sigma(z) on a grid of |z| <= 8 (to round-off)."""
    x = np.linspace(1e-3, 8.0, 257)
    with np.errstate(all="ignore"):
        plus, minus = np.asarray(act(x), dtype=float), np.asarray(act(-x), dtype=float)
    scale = 1.0 + np.max(np.abs(plus))
    return bool(np.all(np.isfinite(plus)) and np.max(np.abs(plus + minus)) <= 1e-12 * scale)


def _params(network):
    gamma = 0.0 if network.residual is None else network.residual     # unused by the plain MLP
    return (network.C_b, network.C_W, network.lambda_b, network.lambda_W, gamma)


def _moment_table(compiled, act, K, expect):
    """Evaluate every moment of ``compiled`` at the kernel values K (grouped by dk)."""
    out = [None] * len(compiled.moments)
    for dk in (0, 1, 2):
        idx = [i for i, m in enumerate(compiled.moments) if m.dk == dk]
        if not idx:
            continue
        vals = expect(act, K, [compiled.moments[i].powers for i in idx], dk)
        for j, i in enumerate(idx):
            out[i] = vals[j]
    return out


def _check(name, values, layers):
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(layers[np.argmax(bad)])
        raise NumericalError(f"{name} overflowed (non-finite) at layer {first}; the network is "
                             "too deep or too chaotic, or its parameters too large, for float64")


def _predict_float(network, q0):
    # numpy overflow becomes inf (not a warning or FloatingPointError); _check
    # turns every non-finite correlator into a NumericalError naming it and its layer
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = _predict_float_unchecked(network, q0)
        _check_derived(pred)
    return pred


def _check_derived(pred):
    """The finite-width moments and ratios derived from finite correlators can
    still overflow (E[z^4] ~ 3 K^2): report it instead of a silent inf/NaN.
    A ratio 0/0 (e.g. the NTK ratios where Theta = 0 because lambda_b =
    lambda_W = 0) is undefined and stays NaN (null in JSON)."""
    for name, arr in pred.finite_width().items():
        _check(name, arr, pred.layers)
    for name, arr in pred.ratios.items():
        _check(name, np.where(np.isnan(arr), 0.0, arr), pred.layers)


def _predict_float_unchecked(network, q0):
    from .gauss import expect_monomials

    comp = _compile(network.ensemble, "numpy", _carries_diagonal(network), _layer(network))
    act, L, params = network.activation, network.depth, _params(network)
    layers = np.arange(1, L + 1)
    params = tuple(np.float64(p) for p in params)    # overflow -> inf, not a Python OverflowError
    init = [float(x) for x in comp.initial[network.first_layer](np.float64(q0), *params)]
    names = comp.names
    for k, v in zip(names, init):
        _check(k, np.array([v]), layers)
    init = dict(zip(names, init))
    # 1. kernel: sequential
    K = np.empty(L)
    K[0] = init["K"]
    kernel_moments = [(i, m) for i, m in enumerate(comp.moments)]
    need = {m for m in comp.moments if m in comp.sympy_pieces["K"].free_symbols}
    for layer in range(L - 1):
        if not (np.isfinite(K[layer]) and K[layer] > 0):
            _check("K", K[: layer + 1], layers)
            raise NumericalError(f"K collapsed to {K[layer]:g} at layer {layer + 1}; "
                                 "Gaussian expectations need K > 0")
        args = []
        try:
            for _, m in kernel_moments:
                args.append(expect_monomials(act, K[layer], [m.powers], m.dk)[0] if m in need else 0.0)
        except NumericalError as exc:
            raise NumericalError(f"layer {layer + 1}: {exc}") from exc
        K[layer + 1] = comp.kernel_step(K[layer], *args, *params)
    _check("K", K, layers)
    if np.any(K <= 0):
        raise NumericalError(f"K reached {K.min():g} <= 0; Gaussian expectations need K > 0")
    # 2. all moments at all layers
    try:
        moms = _moment_table(comp, act, K, expect_monomials)
    except NumericalError as exc:
        raise NumericalError(f"Gaussian moments at layers 1..{L}: {exc}") from exc
    # 3. NTK mean
    a, b = (np.broadcast_to(np.asarray(x, dtype=float), (L,))
            for x in comp.ntk_affine(K, *moms, *params))
    Theta = np.empty(L)
    Theta[0] = init["Theta"]
    for layer in range(L - 1):
        Theta[layer + 1] = a[layer] + b[layer] * Theta[layer]
    _check("Theta", Theta, layers)
    # 4. fluctuations
    c, M = comp.fluct_affine(K, Theta, *moms, *params)
    c = np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in c], axis=-1)
    M = np.stack([np.stack([np.broadcast_to(np.asarray(x, dtype=float), (L,)) for x in row], -1)
                  for row in M], axis=-2)
    fluct = comp.fluctuations
    X = np.empty((L, len(fluct)))
    X[0] = [init[k] for k in fluct]
    first = _first_step_scale(network)
    for layer in range(L - 1):
        X[layer + 1] = c[layer] + M[layer] @ (X[layer] * first if layer == 0 else X[layer])
    values = {"K": K, "Theta": Theta}
    for j, k in enumerate(fluct):
        values[k] = X[:, j].copy()
    bad = ~np.isfinite(X)
    if bad.any():   # name the earliest overflow (later NaNs are 0 * inf in the affine step)
        first = bad.any(axis=1).argmax()
        j = int(np.argmax(np.where(bad[first], np.isinf(X[first]) * 2 + 1, 0)))
        _check(fluct[j], values[fluct[j]], layers)
    values = {k: values[k] for k in names}
    return Prediction(network, q0, layers, values, "float64")


def _predict_mpmath(network, q0, dps, progress=None):
    """The compiled recursions in mpmath arithmetic at ``dps`` digits; per layer, all
    moments come from one call of :func:`fwtheory.gauss_mp.expect_moments_mp`
    (one set of activation evaluations). One progress tick per layer."""
    import mpmath

    from ._io import ProgressBar
    from .gauss_mp import expect_moments_mp

    comp = _compile(network.ensemble, "mpmath", _carries_diagonal(network), _layer(network))
    act, L = network.activation, network.depth
    requests = [(m.powers, m.dk) for m in comp.moments]
    bar = progress if progress is not None else ProgressBar(L, label="predict (mpmath)", delay=2.0)
    with bar, mpmath.workdps(dps):
        params = tuple(mpmath.mpf(p) for p in _params(network))
        names = comp.names
        init = dict(zip(names, comp.initial[network.first_layer](mpmath.mpf(q0), *params)))
        state = {k: init[k] for k in names}
        values = {k: [] for k in names}
        for layer in range(L):
            for k in names:
                values[k].append(state[k])
            if layer == L - 1:
                bar.update()
                break
            K, Th = state["K"], state["Theta"]
            try:
                moms = expect_moments_mp(act, K, requests, dps=dps)
            except NumericalError as exc:
                raise NumericalError(f"layer {layer + 1}: {exc}") from exc
            a, b = comp.ntk_affine(K, *moms, *params)
            c, M = comp.fluct_affine(K, Th, *moms, *params)
            X = [state[k] for k in comp.fluctuations]
            if layer == 0:
                X = [x * mpmath.mpf(network.width) / network.input_dim for x in X]
            newX = [c[i] + sum(M[i][j] * X[j] for j in range(len(X))) for i in range(len(X))]
            state = dict(zip(comp.fluctuations, newX))
            state["K"] = comp.kernel_step(K, *moms, *params)
            state["Theta"] = a + b * Th
            if not all(mpmath.isfinite(v) for v in state.values()):
                raise NumericalError(f"non-finite value at layer {layer + 2} (mpmath)")
            if not state["K"] > 0:
                raise NumericalError(f"K collapsed to {mpmath.nstr(state['K'], 6)} at layer "
                                     f"{layer + 2}; Gaussian expectations need K > 0")
            bar.update()
    return Prediction(network, q0, np.arange(1, L + 1), values, "mpmath")
