"""Derive the single-input 1/n recursions from the layer map and the ensemble.

The derivation follows PDLT (arXiv:2106.10165) Ch. 4 and 8, step by step:

1. **Layer map** (PDLT eqs. (4.2)-(4.4) and the NTK forward equation of Ch. 8;
   docs/conventions.md):

       z_i      = b_i + sum_j W_ij s_j                                 (s = sigma(z^(l)))
       Hhat_ik  = delta_ik [lambda_b + (lambda_W/n) sum_j s_j^2]
                  + sum_{j1 j2} W_{i j1} W_{k j2} t_{j1} t_{j2} Hhat^(l)_{j1 j2}   (t = sigma'(z^(l)))

   The NTK line is the chain rule: d z_i / d b_m = delta_im, d z_i / d W_mj =
   delta_im s_j, and d z_i / d theta = sum_j W_ij t_j d z^(l)_j / d theta for the
   parameters theta below, contracted with lambda_b, lambda_W/n_l.
2. **Ensemble average** over W and b given layer l (:mod:`.ensembles`: Wick
   pairings, or the orthogonal Weingarten function exact in n).
3. **Index coincidences**: every remaining sum over neurons j1..jm of layer l is
   split into set partitions (which indices coincide), with exact counts
   n (n-1) ... (n-p+1).
4. **Layer-l effective theory** for each pattern: the cumulant expansion of
   :mod:`.cumulants` for preactivation functionals (to 1/n^2), the O(1/n)
   NTK rules of :mod:`.effective` for NTK objects.
5. **Expansion** in eps = 1/n up to the requested order (1/n^2 at most), and
   the joint cumulant of the field groups that defines each correlator
   (:data:`TARGETS`; :mod:`fwtheory.quantities`).

Only equal hidden widths are treated (n_l = n_{l-1} = n), the setting of the
issue and of Day, Kahn, Roberts (arXiv:2310.07765) for orthogonal weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .multi_input import MultiRecursion

__all__ = ["derive", "Recursion", "expectation", "TARGETS", "NAMES", "ORDER2_NAMES", "ALL_NAMES",
           "dependency_graph"]

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import sympy

from ..errors import ParameterError
from .chain_rule import FieldTerm, expand_field
from .cumulants import EPS, MAX_ORDER, DerivationError
from .effective import add_powers, layer_expectation, truncate
from .ensembles import IIDEnsemble, get_ensemble, n
from .layers import LAYER_MAPS, reduce_pure_z
from .iid import DIAGONAL_NAMES, DIAGONAL_TARGETS, UNCARRIED
from .symbols import C_W, C_b, CORRELATOR_SYMBOLS, GaussianMoment, correlator_latex, gamma, q0, q4

NAMES = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B", "P", "Q", "R", "S", "T", "U")
#: correlators of order 1/n^2 (single input, preactivations only)
ORDER2_NAMES = ("G2", "V1", "U6")
ALL_NAMES = NAMES + ORDER2_NAMES


# --------------------------------------------------------------------- fields
class _Fresh:
    def __init__(self):
        self.count = itertools.count()

    def __call__(self):
        return next(self.count)


def _expand_fields(fields, first_layer, residual=False):
    """Multiply out a product of fields, e.g. [("z", "i"), ("H", "i", "k")], each
    expanded into its forward equation by :func:`.chain_rule.expand_field`."""
    fresh = _Fresh()
    products = [FieldTerm(sympy.Integer(1))]
    for kind, *labels in fields:
        options = expand_field(kind, labels, fresh, first_layer=first_layer, n=n,
                               residual=gamma if residual else None)
        products = [a * b for a in products for b in options]
    return products


# ----------------------------------------------------------------- averaging
def _double_factorial(k):
    return sympy.factorial2(k - 1) if k > 0 else sympy.Integer(1)


def _average_bias(term):
    """E over the Gaussian biases: prod_labels (m-1)!! C_b^(m/2)."""
    coeff = sympy.Integer(1)
    for label in set(term.b):
        m = term.b.count(label)
        if m % 2:
            return None
        coeff *= _double_factorial(m) * C_b ** (m // 2)
    return coeff


class _UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, a):
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


def _average_weights(term, ensemble):
    """Yield (coeff, site, H) after averaging over W and b: the column pairing
    identifies dummy indices."""
    bias = _average_bias(term)
    if bias is None:
        return
    rows = [r for r, _ in term.W]
    cols = [c for _, c in term.W]
    for coeff, _row_pairs, col_pairs in ensemble.pairings(rows, n, C_W):
        uf = _UnionFind()
        for d in term.site:
            uf.find(d)
        for block in col_pairs:         # pairs; blocks of 4, ... for i.i.d. weights with cumulants
            for b in block[1:]:
                uf.union(cols[block[0]], cols[b])
        site = {}
        for d, p in term.site.items():
            r = uf.find(d)
            site[r] = add_powers(site.get(r, (0,) * 5), p)
        objects = tuple((kind, tuple(uf.find(d) for d in dums)) for kind, dums in term.objects)
        for _, dums in objects:
            for d in dums:
                site.setdefault(d, (0,) * 5)
        yield term.coeff * bias * coeff, site, objects


def _set_partitions(items):
    items = list(items)
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for idx in range(len(part)):
            yield part[:idx] + [[first] + part[idx]] + part[idx + 1:]
        yield [[first]] + part


def _falling(p, start=0):
    """(n - start)(n - start - 1)...(n - start - p + 1): the number of ways to give p
    blocks distinct neurons among n, avoiding ``start`` fixed ones."""
    out = sympy.Integer(1)
    for k in range(start, start + p):
        out *= n - k
    return out


@lru_cache(maxsize=4096)
def _eps_series(rational_in_n, order):
    """Series in eps = 1/n of a rational function of n, up to eps**order."""
    expr = sympy.cancel(rational_in_n.subs(n, 1 / EPS))
    ser = sympy.series(expr, EPS, 0, order + 1).removeO()
    lowest = min((t.as_coeff_exponent(EPS)[1] for t in sympy.Add.make_args(sympy.expand(ser))),
                 default=0)
    if lowest < 0:
        # every pattern count times its Wick/Weingarten weight is O(1) for a correlator
        # of a fixed number of neurons; a growing one would need the layer-l
        # expectation beyond the requested order
        raise DerivationError(f"the coefficient {rational_in_n} of a neuron-coincidence pattern grows "
                              "with the width n; the 1/n expansion of this expectation is not "
                              "supported")
    return sympy.expand(ser)


def _input_sum(power):
    """sum_j x_j^power over the input (first layer): n q0 for power 2."""
    if power == (0,) * 5:
        return n
    if power == (0, 0, 0, 0, 2):
        return n * q0
    if power == (0, 0, 0, 0, 4):    # a fourth-cumulant block of i.i.d. weights
        return n * q4
    # any other input moment would make the first layer depend on more than |x|:
    # the symbol makes such a dependence visible in the result (none arises).
    return sympy.Symbol("S_%d" % power[4])


def _carries_diagonal(rule):
    """i.i.d. weights with a fourth cumulant: the layer-l theory carries Vd, Dd, Ad."""
    return isinstance(rule, IIDEnsemble)


def expectation(fields, ensemble, first_layer=False, order=1, diagonal=None, layer="mlp"):
    """E[prod fields] at layer l+1 as a polynomial in EPS (= 1/n) up to ``order``.

    ``fields``: tuple like (("z", "i"), ("z", "i"), ("z", "k"), ("z", "k"));
    distinct labels are distinct neurons. ``first_layer=True`` averages the
    first layer over its weights with the input x fixed; the result is then
    returned exactly, as a rational function of n = n0, not expanded.

    ``order`` is 0, 1 or 2. Order 2 uses the layer-l correlators G2, V1, U6
    (:mod:`.cumulants`) and is available for preactivation fields ``z`` only;
    NTK fields at order 2 raise :class:`~fwtheory.errors.ParameterError`.

    ``diagonal``: carry the single-neuron cumulants Vd, Dd, Ad of the layer
    below (:mod:`.iid`); default: exactly for i.i.d. ensembles with a fourth
    cumulant. ``diagonal=True`` with a rotation-invariant ensemble is the
    recursion from a non-rotation-invariant layer l (e.g. a uniform first layer
    under Gaussian hidden layers). ``layer="residual"``: the hidden layer map
    z^(l+1) = z^(l) + gamma (b + W sigma(z^(l))) (symbol ``gamma``); the first
    layer is plain in both.
    """
    fields = tuple(tuple(f) for f in fields)
    _check_order(order, () if first_layer else fields)  # the first layer is exact in n
    rule = get_ensemble(ensemble)
    diagonal = _carries_diagonal(rule) if diagonal is None else bool(diagonal)
    _check_supported(1, layer)
    return _expectation(fields, rule.name, first_layer, order, diagonal and not first_layer,
                        layer == "residual")


def _check_order(order, fields=()):
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
        raise ParameterError("order", f"must be an integer between 0 and {MAX_ORDER}, got {order!r}: "
                             "higher orders need the eight-point cumulant and the 1/n^3 corrections "
                             "of the layer-l effective theory, which are not derived")
    if order > 1:
        ntk = sorted({f[0] for f in fields if f[0] != "z"})
        if ntk:
            raise ParameterError("order", f"order {order} is available for preactivation fields z "
                                 f"only; the fields {', '.join(ntk)} would need the 1/n^2 NTK "
                                 "cumulants (Theta2, the 1/n^2 parts of D, F, A, B and the "
                                 "NTK-preactivation six-point functions), which are not derived")


@lru_cache(maxsize=None)
def _expectation(fields, ensemble_name, first_layer, order, diagonal=False, residual=False):
    ensemble = get_ensemble(ensemble_name)
    total = sympy.Integer(0)
    for term in _expand_fields(fields, first_layer, residual and not first_layer):
        for coeff, site, objects in _average_weights(term, ensemble):
            sym, nfac = coeff.as_independent(n, as_Add=False)
            if first_layer:
                value = nfac
                for p in site.values():
                    value *= _input_sum(p)
                total += sym * sympy.cancel(value)
                continue
            # residual maps: the external neurons (labels, str) are layer-l sites too; they
            # are fixed, distinct neurons, and the summed dummies (int) range over the others
            dummies = sorted(site, key=lambda d: (isinstance(d, str), str(d)))
            external = sum(isinstance(d, str) for d in dummies)
            for blocks in _set_partitions(dummies):
                if any(sum(isinstance(d, str) for d in blk) > 1 for blk in blocks):
                    continue
                free = sum(not any(isinstance(d, str) for d in blk) for blk in blocks)
                block_of = {d: idx for idx, blk in enumerate(blocks) for d in blk}
                sites = [(0,) * 5 for _ in blocks]
                for d, p in site.items():
                    sites[block_of[d]] = add_powers(sites[block_of[d]], p)
                objs = [(kind, tuple(block_of[d] for d in dums)) for kind, dums in objects]
                scalar = _eps_series(sympy.cancel(nfac * _falling(free, external)), order)
                total += sym * scalar * layer_expectation(sites, objs, order, diagonal)
    if first_layer:
        return sympy.factor(sympy.together(total))  # exact in n = n0
    if residual:    # the shortcut brings moments of z alone: closed forms
        total = reduce_pure_z(total)
    return truncate(sympy.expand(total), order)


# ------------------------------------------------------------------- targets
Z_I, Z_J, Z_K = ("z", "i"), ("z", "j"), ("z", "k")
H_II, H_KK, H_IK = ("H", "i", "i"), ("H", "k", "k"), ("H", "i", "k")

#: name -> (groups of fields, order in 1/n): the correlator is the eps^order
#: coefficient of the joint cumulant of the groups (one group: its expectation;
#: two: E[ab] - E[a]E[b]; three: the third joint cumulant). Distinct labels are
#: distinct neurons. A new correlator is a new entry here.
TARGETS = {
    "K": (((Z_I, Z_I),), 0),
    "G1": (((Z_I, Z_I),), 1),
    "V": (((Z_I, Z_I), (Z_K, Z_K)), 1),
    "Theta": (((H_II,),), 0),
    "Theta1": (((H_II,),), 1),
    "D": (((H_II,), (Z_K, Z_K)), 1),
    "F": (((H_IK, Z_I, Z_K),), 1),
    "A": (((H_II,), (H_KK,)), 1),
    "B": (((H_IK, H_IK),), 1),
    # NTK descendants (PDLT Ch. 11 and infinity); their means vanish or are O(1/n) themselves
    "P": (((("dH", "i", "k", "k"), Z_I),), 1),
    "Q": (((("dH", "i", "i", "k"), Z_K),), 1),
    "R": (((("ddI", "i", "i", "k", "k"),),), 1),
    "S": (((("ddII", "i", "i", "k", "k"),),), 1),
    "T": (((("ddII", "i", "k", "i", "k"),),), 1),
    "U": (((("ddII", "i", "k", "k", "i"),),), 1),
    # order 1/n^2, preactivations (normalizations in docs/derivation.md):
    # E[z^2] = K + G1/n + G2/n^2;  Cov(z_i^2, z_k^2) = V/n + V1/n^2;
    # kappa(z_i^2, z_j^2, z_k^2) = U6/n^2 (+ O(1/n^3)), i, j, k distinct
    "G2": (((Z_I, Z_I),), 2),
    "V1": (((Z_I, Z_I), (Z_K, Z_K)), 2),
    "U6": (((Z_I, Z_I), (Z_J, Z_J), (Z_K, Z_K)), 2),
}


def _joint_cumulant(groups, moment_of):
    """kappa(g_1, ..., g_m) = sum over set partitions pi of the groups of
    (-1)^(|pi|-1) (|pi|-1)! prod_{B in pi} E[prod_{g in B} g]."""
    total = sympy.Integer(0)
    for blocks in _set_partitions(range(len(groups))):
        b = len(blocks)
        term = sympy.Integer((-1) ** (b - 1)) * sympy.factorial(b - 1)
        for blk in blocks:
            term *= moment_of(tuple(f for g in sorted(blk) for f in groups[g]))
        total += term
    return total


def _coefficient(groups, order, ensemble, diagonal=False, layer="mlp"):
    joint = _joint_cumulant(groups, lambda fields: expectation(fields, ensemble, order=order,
                                                               diagonal=diagonal, layer=layer))
    joint = truncate(sympy.expand(joint), order)
    # a joint cumulant of m groups of fields at distinct neurons is O(eps^(m-1))
    for lower in range(min(order, len(groups) - 1)):
        if sympy.expand(joint.coeff(EPS, lower)) != 0:
            raise DerivationError(f"the joint cumulant of {groups} has a nonzero eps^{lower} "
                                  f"term; connected correlators of {len(groups)} groups start "
                                  f"at eps^{len(groups) - 1}")
    return sympy.expand(joint).coeff(EPS, order)


def _first_layer_value(groups, order, ensemble):
    """Exact layer-1 value of a correlator (fixed input, n = n0 = fan-in):
    order 0 gives the (joint cumulant) E itself; order k gives
    n^k (E - sum_{j<k} c_j / n^j), c_j its 1/n^j coefficients."""
    joint = _joint_cumulant(groups, lambda fields: expectation(fields, ensemble, first_layer=True))
    return exact_coefficient(joint, order)


def exact_coefficient(exact, order):
    """n^order (E - sum_{j<order} c_j / n^j) for an exact rational function E of n
    with 1/n^j coefficients c_j (the layer-1 value of an order-``order`` correlator)."""
    exact = sympy.factor(sympy.together(exact))
    for _ in range(order):
        exact = sympy.factor(sympy.together(n * (exact - sympy.limit(exact, n, sympy.oo))))
    return exact


def _tidy(expr):
    syms = [CORRELATOR_SYMBOLS[k] for k in ALL_NAMES + DIAGONAL_NAMES]
    return sympy.collect(sympy.expand(expr), syms)


@dataclass(frozen=True)
class Recursion:
    """The derived layer-to-layer recursion of one correlator.

    ``expr`` gives the layer-(l+1) value in terms of layer-l correlator symbols
    (:data:`~fwtheory.symbolic.symbols.CORRELATOR_SYMBOLS`), the parameters
    ``C_b, C_W, lambda_b, lambda_W`` and Gaussian-moment symbols at K^(l).
    ``initial`` maps the first-layer ensemble to the layer-1 value (in q0 and
    the parameters); ``initial_exact`` keeps its exact n dependence.
    ``order`` is the power of 1/n of which the correlator is the coefficient;
    ``layer`` the hidden layer map ("mlp" or "residual", whose recursions
    contain the symbol ``gamma``; the first layer is plain in both).
    """

    name: str
    ensemble: str
    expr: sympy.Expr
    initial: Mapping
    initial_exact: Mapping
    order: int = 1
    layer: str = "mlp"

    def __post_init__(self):
        # derive() caches its results: hand out read-only views so that a caller
        # cannot change what the next call returns
        for field in ("initial", "initial_exact"):
            object.__setattr__(self, field, MappingProxyType(dict(getattr(self, field))))

    @property
    def dependencies(self):
        """Correlators of layer l that the layer-(l+1) value depends on (K
        whenever a Gaussian moment at K^(l) occurs)."""
        free = self.expr.free_symbols
        uses_k = bool(self.expr.atoms(GaussianMoment))
        return tuple(k for k in ALL_NAMES + DIAGONAL_NAMES
                     if CORRELATOR_SYMBOLS[k] in free or (k == "K" and uses_k))

    def __str__(self):
        return f"{self.name}^(l+1) = {sympy.sstr(self.expr)}"

    def latex(self):
        r"""LaTeX in PDLT's notation: the layer superscript (\ell+1) on the left,
        (\ell) on every layer-l correlator on the right, and the Gaussian
        expectations taken at K^{(\ell)}, e.g.
        ``V^{(\ell+1)} = ... + (\partial_K \langle \sigma^{2} \rangle_{K^{(\ell)}})^{2} C_{W}^{2} V^{(\ell)} + ...``."""
        return r"%s = %s" % (correlator_latex(self.name, r"\ell+1"), self.latex_rhs())

    def latex_rhs(self):
        """LaTeX of the right-hand side alone (see :meth:`latex`)."""
        from sympy.printing.latex import LatexPrinter

        names = {sym: correlator_latex(k) for k, sym in CORRELATOR_SYMBOLS.items()}
        printer = LatexPrinter({"symbol_names": names})
        printer.gaussian_moment_kernel = r"K^{(\ell)}"
        return printer.doprint(self.expr)


def derive(name: str, ensemble: str | IIDEnsemble = "gaussian", inputs: int = 1, order: int | None = None,
           layer: Literal["mlp", "residual"] = "mlp") -> Recursion | MultiRecursion:
    """Derive the single-input recursion of correlator ``name`` for ``ensemble``.

    ``name`` is one of K, G1, V, Theta, Theta1, D, F, A, B, P, Q, R, S, T, U
    (normalizations: :mod:`fwtheory.quantities`), one of the order-1/n^2
    correlators G2, V1, U6 (docs/derivation.md), or one of the single-neuron
    cumulants Vd, Dd, Ad of i.i.d. weights with a fourth cumulant
    (:mod:`.iid`). ``order`` is the power of 1/n the correlator multiplies (0
    for K and Theta, 2 for G2, V1, U6, 1 for the others); it defaults to that
    value, and any other value raises (e.g. the 1/n^2 correction of V is the
    separate correlator V1). Returns a :class:`Recursion`.

    ``ensemble``: "gaussian", "orthogonal", the i.i.d. "uniform" and
    "rademacher", or any rule registered with
    :func:`~fwtheory.symbolic.ensembles.register_ensemble` (an
    :class:`~fwtheory.symbolic.ensembles.IIDEnsemble` with a given kappa_4,
    which may be a sympy symbol). For the i.i.d. ensembles the layer-l theory
    carries the single-neuron cumulants Vd, Dd, Ad and the recursions contain
    them; for the rotation-invariant ones they vanish at every layer and do
    not appear (Vd, Dd, Ad derive to 0).

    ``inputs`` = m > 1 (several inputs) returns a
    :class:`~fwtheory.symbolic.multi_input.MultiRecursion` holding the
    recursion at generic sample indices (K, G1, V, Theta, Theta1, D, F, A, B;
    docs/derivation.md, "Several inputs"; plain MLP, Gaussian and orthogonal
    weights). ``layer`` names the layer map: "mlp" or "residual" (z^(l+1) =
    z^(l) + gamma (b + W sigma(z^(l))), :mod:`.layers`; one input, order 1/n,
    the NTK descendants refused). Whatever is not derived raises a
    :class:`~fwtheory.errors.ParameterError` naming the missing piece, never a
    silently truncated result.
    """
    if _check_supported(inputs, layer) > 1:
        from .multi_input import MULTI_TARGETS, derive_multi

        if layer != "mlp":
            raise ParameterError("layer", f"several inputs are derived for the plain MLP only, got "
                                          f"layer={layer!r} (the residual map is derived for one input)")
        if get_ensemble(ensemble).name not in ("gaussian", "orthogonal"):
            raise ParameterError("ensemble", "several inputs are derived for the 'gaussian' and "
                                             f"'orthogonal' ensembles only, got {ensemble!r} (the kappa_4 "
                                             "single-neuron cumulants are carried for one input)")
        own = MULTI_TARGETS[name][1] if name in MULTI_TARGETS else None
        if order is not None and own is not None and order != own:
            raise ParameterError("order", f"{name} is the coefficient of 1/n^{own}, got order={order!r} "
                                          "(several inputs are derived to order 1/n)")
        return derive_multi(name, ensemble, inputs)
    if name not in TARGETS and name not in DIAGONAL_TARGETS:
        raise ParameterError("name", f"must be one of {', '.join(ALL_NAMES + DIAGONAL_NAMES)}, got {name!r}")
    own = TARGETS[name][1] if name in TARGETS else 1
    if order is not None and order != own:
        raise ParameterError("order", f"{name} is the coefficient of 1/n^{own}, got order={order!r}"
                             " (the 1/n^2 corrections are the correlators G2 of K+G1/n, V1 of V, "
                             "U6 the six-point vertex)")
    _check_residual_name(name, layer)
    rule = get_ensemble(ensemble)
    if _carries_diagonal(rule) and own > 1:
        from .iid import check_diagonal_order

        check_diagonal_order(own)
    return _derive(name, rule.name, _carries_diagonal(rule), layer)


def derive_carrying_diagonal(name, ensemble="gaussian", layer="mlp"):
    """The recursion of ``name`` for ``ensemble`` with the layer-l theory
    carrying the single-neuron cumulants Vd, Dd, Ad (:mod:`.iid`), also for a
    rotation-invariant ensemble: the step from a layer l whose law is not
    rotation invariant (an i.i.d. first layer with a fourth cumulant under
    Gaussian or orthogonal hidden layers). Equal to :func:`derive` for the
    i.i.d. ensembles; order-1 correlators only."""
    if name not in TARGETS and name not in DIAGONAL_TARGETS:
        raise ParameterError("name", f"must be one of {', '.join(ALL_NAMES + DIAGONAL_NAMES)}, got {name!r}")
    if name in ORDER2_NAMES:
        from .iid import check_diagonal_order

        check_diagonal_order(2)
    _check_supported(1, layer)
    _check_residual_name(name, layer)
    return _derive(name, get_ensemble(ensemble).name, True, layer)




def _check_supported(inputs, layer):
    from ..errors import check_int

    m = check_int("inputs", inputs, lower=1)
    if not isinstance(layer, str) or layer not in LAYER_MAPS:
        raise ParameterError("layer", f"must be one of {', '.join(LAYER_MAPS)}, got {layer!r}")
    return m


def _check_residual_name(name, layer):
    if layer == "residual" and name in ("P", "Q", "R", "S", "T", "U"):
        raise ParameterError("layer", f"{name} is not derived for the residual map: the shortcut keeps the "
                                      "external neurons' NTK entries, and their joint cumulants with the "
                                      "dNTK/ddNTKs (e.g. E[Hhat_ik dHhat_kik]) are not in the layer-l theory "
                                      "(docs/derivation.md)")
    if layer == "residual" and name in ORDER2_NAMES:
        raise ParameterError("order", f"{name} (order 1/n^2) is not derived for the residual map")


#: first-layer ensembles whose layer-1 values every recursion carries; a recursion
#: carrying the single-neuron cumulants also has the i.i.d. first layers
_FIRST_LAYERS = ("gaussian", "orthogonal")
_IID_FIRST_LAYERS = ("uniform", "rademacher")


@lru_cache(maxsize=None)
def _derive(name, ens, diagonal=False, layer="mlp"):
    if name in DIAGONAL_TARGETS:
        return _derive_diagonal(name, ens, layer)
    groups, order = TARGETS[name]
    expr = _tidy(_coefficient(groups, order, ens, diagonal, layer))
    _check_carried(name, expr)
    initial, exact = {}, {}
    for first in _first_layers(ens, diagonal):
        exact[first] = _first_layer_value(groups, order, first)
        initial[first] = sympy.factor(sympy.limit(exact[first], n, sympy.oo))
    return Recursion(name, ens, expr, initial, exact, order, layer)


def _first_layers(ens, diagonal):
    if not diagonal:
        return _FIRST_LAYERS
    extra = () if ens in _FIRST_LAYERS + _IID_FIRST_LAYERS else (ens,)
    return _FIRST_LAYERS + _IID_FIRST_LAYERS + extra


def _check_carried(name, expr):
    if UNCARRIED in expr.free_symbols:
        raise DerivationError(f"the recursion of {name} needs a single-neuron cumulant of an NTK "
                              "descendant, which the layer-l theory of i.i.d. weights does not carry")


def _derive_diagonal(name, ens, layer="mlp"):
    """Vd, Dd, Ad: the 1/n part of a single-neuron joint cumulant minus its pair part
    (:data:`.iid.DIAGONAL_TARGETS`), from the recursions of the pair parts."""
    groups, pair_part = DIAGONAL_TARGETS[name]
    joint = _coefficient(groups, 1, ens, True, layer)
    pairs = sum((c * _derive(k, ens, True, layer).expr for k, c in pair_part.items()), sympy.Integer(0))
    expr = _tidy(joint - pairs)
    _check_carried(name, expr)
    initial, exact = {}, {}
    for first in _first_layers(ens, True):
        value = _first_layer_value(groups, 1, first)
        for k, c in pair_part.items():
            value -= c * _derive(k, ens, True, layer).initial_exact[first]
        exact[first] = sympy.factor(sympy.together(value))
        initial[first] = sympy.factor(sympy.limit(exact[first], n, sympy.oo))
    return Recursion(name, ens, expr, initial, exact, 1, layer)


def dependency_graph(ensemble="gaussian", order=1):
    """{name: dependencies} for the correlators of ``ensemble`` up to ``order``
    (1: the correlators of order <= 1/n, 2: also G2, V1, U6)."""
    names = NAMES if order <= 1 else ALL_NAMES
    return {k: derive(k, ensemble).dependencies for k in names}
