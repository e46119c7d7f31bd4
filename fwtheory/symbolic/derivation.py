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
from .ensembles import get_ensemble, n
from .symbols import C_W, C_b, CORRELATOR_SYMBOLS, GaussianMoment, correlator_latex, q0

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


def _expand_fields(fields, first_layer):
    """Multiply out a product of fields, e.g. [("z", "i"), ("H", "i", "k")], each
    expanded into its forward equation by :func:`.chain_rule.expand_field`."""
    fresh = _Fresh()
    products = [FieldTerm(sympy.Integer(1))]
    for kind, *labels in fields:
        options = expand_field(kind, labels, fresh, first_layer=first_layer, n=n)
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
        for a, b in col_pairs:
            uf.union(cols[a], cols[b])
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


def _falling(p):
    out = sympy.Integer(1)
    for k in range(p):
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
    # any other input moment would make the first layer depend on more than |x|:
    # the symbol makes such a dependence visible in the result (none arises).
    return sympy.Symbol("S_%d" % power[4])


def expectation(fields, ensemble, first_layer=False, order=1):
    """E[prod fields] at layer l+1 as a polynomial in EPS (= 1/n) up to ``order``.

    ``fields``: tuple like (("z", "i"), ("z", "i"), ("z", "k"), ("z", "k"));
    distinct labels are distinct neurons. ``first_layer=True`` averages the
    first layer over its weights with the input x fixed; the result is then
    returned exactly, as a rational function of n = n0, not expanded.

    ``order`` is 0, 1 or 2. Order 2 uses the layer-l correlators G2, V1, U6
    (:mod:`.cumulants`) and is available for preactivation fields ``z`` only;
    NTK fields at order 2 raise :class:`~fwtheory.errors.ParameterError`.
    """
    fields = tuple(tuple(f) for f in fields)
    _check_order(order, () if first_layer else fields)  # the first layer is exact in n
    return _expectation(fields, get_ensemble(ensemble).name, first_layer, order)


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
def _expectation(fields, ensemble_name, first_layer, order):
    ensemble = get_ensemble(ensemble_name)
    total = sympy.Integer(0)
    for term in _expand_fields(fields, first_layer):
        for coeff, site, objects in _average_weights(term, ensemble):
            sym, nfac = coeff.as_independent(n, as_Add=False)
            if first_layer:
                value = nfac
                for p in site.values():
                    value *= _input_sum(p)
                total += sym * sympy.cancel(value)
                continue
            dummies = sorted(site)
            for blocks in _set_partitions(dummies):
                block_of = {d: idx for idx, blk in enumerate(blocks) for d in blk}
                sites = [(0,) * 5 for _ in blocks]
                for d, p in site.items():
                    sites[block_of[d]] = add_powers(sites[block_of[d]], p)
                objs = [(kind, tuple(block_of[d] for d in dums)) for kind, dums in objects]
                scalar = _eps_series(sympy.cancel(nfac * _falling(len(blocks))), order)
                total += sym * scalar * layer_expectation(sites, objs, order)
    if first_layer:
        return sympy.factor(sympy.together(total))  # exact in n = n0
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


def _coefficient(groups, order, ensemble):
    joint = _joint_cumulant(groups, lambda fields: expectation(fields, ensemble, order=order))
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
    joint = sympy.factor(sympy.together(joint))
    for _ in range(order):
        joint = sympy.factor(sympy.together(n * (joint - sympy.limit(joint, n, sympy.oo))))
    return joint


def _tidy(expr):
    syms = [CORRELATOR_SYMBOLS[k] for k in ALL_NAMES]
    return sympy.collect(sympy.expand(expr), syms)


@dataclass(frozen=True)
class Recursion:
    """The derived layer-to-layer recursion of one correlator.

    ``expr`` gives the layer-(l+1) value in terms of layer-l correlator symbols
    (:data:`~fwtheory.symbolic.symbols.CORRELATOR_SYMBOLS`), the parameters
    ``C_b, C_W, lambda_b, lambda_W`` and Gaussian-moment symbols at K^(l).
    ``initial`` maps the first-layer ensemble to the layer-1 value (in q0 and
    the parameters); ``initial_exact`` keeps its exact n dependence.
    ``order`` is the power of 1/n of which the correlator is the coefficient.
    """

    name: str
    ensemble: str
    expr: sympy.Expr
    initial: Mapping
    initial_exact: Mapping
    order: int = 1

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
        return tuple(k for k in ALL_NAMES
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


def derive(name, ensemble="gaussian", inputs=1, order=None, layer="mlp"):
    """Derive the single-input recursion of correlator ``name`` for ``ensemble``.

    ``name`` is one of K, G1, V, Theta, Theta1, D, F, A, B, P, Q, R, S, T, U
    (normalizations: :mod:`fwtheory.quantities`) or one of the order-1/n^2
    correlators G2, V1, U6 (docs/derivation.md). ``order`` is the power of 1/n
    the correlator multiplies (0 for K and Theta, 2 for G2, V1, U6, 1 for the
    others); it defaults to that value, and any other value raises (e.g. the
    1/n^2 correction of V is the separate correlator V1). Returns a
    :class:`Recursion`.

    ``inputs`` = m > 1 (several inputs) returns a
    :class:`~fwtheory.symbolic.multi_input.MultiRecursion` holding the
    recursion at generic sample indices (K, G1, V, Theta, Theta1, D, F, A, B;
    docs/derivation.md, "Several inputs"). ``layer`` names the layer map: the
    residual one raises a :class:`~fwtheory.errors.ParameterError` saying so,
    never a silently wrong MLP result.
    """
    if _check_supported(inputs, layer) > 1:
        from .multi_input import MULTI_TARGETS, derive_multi

        own = MULTI_TARGETS[name][1] if name in MULTI_TARGETS else None
        if order is not None and own is not None and order != own:
            raise ParameterError("order", f"{name} is the coefficient of 1/n^{own}, got order={order!r} "
                                          "(several inputs are derived to order 1/n)")
        return derive_multi(name, ensemble, inputs)
    if name not in TARGETS:
        raise ParameterError("name", f"must be one of {', '.join(ALL_NAMES)}, got {name!r}")
    own = TARGETS[name][1]
    if order is not None and order != own:
        raise ParameterError("order", f"{name} is the coefficient of 1/n^{own}, got order={order!r}"
                             " (the 1/n^2 corrections are the correlators G2 of K+G1/n, V1 of V, "
                             "U6 the six-point vertex)")
    return _derive(name, get_ensemble(ensemble).name)


LAYER_MAPS = ("mlp", "residual")


def _check_supported(inputs, layer):
    from ..errors import check_int

    m = check_int("inputs", inputs, lower=1)
    if not isinstance(layer, str) or layer not in LAYER_MAPS:
        raise ParameterError("layer", f"must be one of {', '.join(LAYER_MAPS)}, got {layer!r}")
    if layer == "residual":
        raise ParameterError("layer", "the residual layer map is not derived yet; only layer='mlp' "
                                      "(simulate() samples residual networks: Network(residual=gamma))")
    return m


@lru_cache(maxsize=None)
def _derive(name, ens):
    groups, order = TARGETS[name]
    expr = _tidy(_coefficient(groups, order, ens))
    initial, exact = {}, {}
    for first in ("gaussian", "orthogonal"):
        exact[first] = _first_layer_value(groups, order, first)
        initial[first] = sympy.factor(sympy.limit(exact[first], n, sympy.oo))
    return Recursion(name, ens, expr, initial, exact, order)


def dependency_graph(ensemble="gaussian", order=1):
    """{name: dependencies} for the correlators of ``ensemble`` up to ``order``
    (1: the correlators of order <= 1/n, 2: also G2, V1, U6)."""
    names = NAMES if order <= 1 else ALL_NAMES
    return {k: derive(k, ensemble).dependencies for k in names}
