r"""Several inputs: the O(1/n) recursions with sample indices (PDLT arXiv:2106.10165 Ch. 4, 8).

Every field carries a sample (input) label, z_{i;alpha}, Hhat_{ik;alpha beta}. The
derivation is the single-input one of :mod:`.derivation` with that label carried
along (docs/derivation.md, "Several inputs"):

1. the chain rule (:func:`.chain_rule.expand_field` with ``samples``) gives the
   forward equations; a layer-l site is now a product of sigma^(d)(z_{j;alpha})
   over several samples at one neuron j;
2. Wick / Weingarten averages and the neuron-coincidence split are unchanged
   (the weights do not see sample labels);
3. the layer-l effective theory is the cumulant expansion of
   :mod:`.cumulants` with one derivation per sample pair,

       E[prod_a f_a] = exp( sum_{mu nu} eps G1_{mu nu} D^{mu nu}
                            + (1/2) sum_{(mu nu)(rho lam)} eps V_{(mu nu)(rho lam)} D^{mu nu} D^{rho lam} )
                       prod_a <f_a>_K,

   sums over *ordered* sample pairs, D^{mu nu} = sum_a d/dK_{mu nu} on site a
   (K_{mu nu} and K_{nu mu} counted separately), and by Price's theorem
   d<f>_K/dK_{mu nu} = (1/2) <d_mu d_nu f>_K: every derivative is a Gaussian
   expectation of z-derivatives of a site functional (:class:`DerivMoment`; without
   derivatives :class:`SampleMoment`), written out by :func:`price` (derivatives of
   sigma) or :func:`hermite` (Hermite weights, valid at kinks);
4. the NTK rules of :mod:`.effective` with sample indices,

       E[Hhat_{ab;al be}]                 = delta_ab (Theta_{al be} + eps Theta1_{al be})
       kappa(dH_{ab;al be}, z_{c;ga}, z_{d;de}) = eps (delta_ab delta_cd D_{al be ga de}
                                             + delta_ac delta_bd F_{al be ga de} + delta_ad delta_bc F_{al be de ga})
       kappa(dH_{ab;al be}, dH_{cd;ga de})  = eps (delta_ab delta_cd A_{al be ga de}
                                             + delta_ac delta_bd B_{al be ga de} + delta_ad delta_bc B_{al be de ga})

   with E[dH prod f] = (1/2) sum_{x y} kappa(dH, z_x, z_y) <d_x d_y prod f> (x, y = (neuron, sample)).

A derivative d_a acts on the variable z_a, so a component with equal indices is
derived for its own coincidence pattern (:func:`index_pattern`: V_0011 from the
fields z_{i;0} z_{i;0} z_{k;1} z_{k;1}), and :meth:`MultiRecursion.entry` renames the
distinct labels of the pattern to the actual inputs (an injective renaming, hence
exact). Definitions (neurons i != k, docs/derivation.md):

    E[z_{i;a} z_{i;b}]                                   = K_{ab} + G1_{ab}/n
    Cov(z_{i;a} z_{i;b}, z_{k;c} z_{k;d})                = V_{abcd}/n
    E[Hhat_{ii;ab}]                                      = Theta_{ab} + Theta1_{ab}/n
    Cov(Hhat_{ii;ab}, z_{k;c} z_{k;d})                   = D_{abcd}/n
    E[Hhat_{ik;ab} z_{i;c} z_{k;d}]                      = F_{abcd}/n
    Cov(Hhat_{ii;ab}, Hhat_{kk;cd})                      = A_{abcd}/n
    E[Hhat_{ik;ab} Hhat_{ik;cd}]                         = B_{abcd}/n

For one input (all labels 0) these are the definitions of :mod:`fwtheory.quantities`.
"""

__all__ = ["MULTI_NAMES", "SYMMETRIES", "InputTensor", "SampleMoment", "DerivMoment", "tensor",
           "sample_moment", "deriv_moment", "price", "hermite", "lower_derivatives", "inverse_entry",
           "sample_moments_in", "derive_multi", "MultiRecursion", "expectation_multi",
           "single_moment_as_samples", "relabel", "canonical_index", "GRAM", "index_pattern"]

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import sympy

from ..errors import ParameterError
from .chain_rule import FieldTerm, expand_field
from .cumulants import EPS, PairCumulant, _leibniz, variance_operator_series
from .derivation import (_average_bias, _eps_series, _falling, _Fresh, _joint_cumulant, _set_partitions,
                         _UnionFind, exact_coefficient)
from .ensembles import get_ensemble, n
from .symbols import C_W

def _eps_power(term):
    for f in sympy.Mul.make_args(term):
        base, exp = f.as_base_exp()
        if base == EPS:
            return int(exp)
    return 0


def truncate(expr, order):
    """Drop the terms of ``expr`` (expanded) with a power of EPS above ``order``
    (term by term: much faster than a polynomial in EPS for large expressions)."""
    return sympy.Add(*[t for t in sympy.Add.make_args(sympy.expand(expr)) if _eps_power(t) <= order])


def eps_coefficient(expr, order):
    """The coefficient of EPS**order in ``expr``."""
    return sympy.Add(*[t / EPS**order for t in sympy.Add.make_args(sympy.expand(expr))
                       if _eps_power(t) == order])


# ------------------------------------------------------------------ symmetries
def _pair(idx):
    return [tuple(sorted(idx))]


def _pair_of_pairs(idx):
    a, b, c, d = idx
    p, q = tuple(sorted((a, b))), tuple(sorted((c, d)))
    return [p + q, q + p]


def _two_pairs(idx):
    a, b, c, d = idx
    return [tuple(sorted((a, b))) + tuple(sorted((c, d)))]


def _f_sym(idx):
    a, b, c, d = idx
    return [(a, b, c, d), (b, a, d, c)]


def _b_sym(idx):
    a, b, c, d = idx
    return [(a, b, c, d), (c, d, a, b), (b, a, d, c), (d, c, b, a)]


#: name -> the images of an index tuple under the correlator's index symmetries
#: (from its definition: K, Theta symmetric; V, A symmetric within and between
#: the pairs; D within the pairs; F_{abcd} = F_{badc} (swap the neurons i, k);
#: B_{abcd} = B_{cdab} = B_{badc}). The canonical index is the smallest image.
SYMMETRIES = {
    "K": _pair, "G1": _pair, "Theta": _pair, "Theta1": _pair, "G": _pair,
    "V": _pair_of_pairs, "A": _pair_of_pairs, "D": _two_pairs, "F": _f_sym, "B": _b_sym,
}
RANK = {"K": 2, "G1": 2, "Theta": 2, "Theta1": 2, "G": 2, "V": 4, "A": 4, "D": 4, "F": 4, "B": 4}
MULTI_NAMES = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")


def canonical_index(name, idx):
    """Smallest image of ``idx`` under the index symmetries of ``name``."""
    return min(SYMMETRIES[name](tuple(int(i) for i in idx)))


class InputTensor(sympy.Symbol):
    """One component X_{a b ...} of a multi-input correlator (or of the Gram
    matrix ``G``) as a sympy symbol, indices in canonical order: name ``V[0,1,2,3]``."""

    def __new__(cls, name, **_assumptions):
        return super().__new__(cls, name, real=True)

    def __getnewargs__(self):
        return (self.name,)

    @property
    def base(self):
        return self.name.split("[")[0]

    @property
    def indices(self):
        return tuple(int(i) for i in self.name.split("[")[1][:-1].split(","))

    def _latex(self, printer):
        base = {"Theta": r"\Theta", "Theta1": r"\Theta^{\{1\}}", "G1": r"G^{\{1\}}"}.get(self.base, self.base)
        return r"%s_{%s}" % (base, "".join(str(i + 1) for i in self.indices))


def tensor(name, idx):
    """The canonical :class:`InputTensor` of correlator ``name`` at sample indices ``idx``."""
    idx = canonical_index(name, idx)
    return InputTensor("%s[%s]" % (name, ",".join(str(i) for i in idx)))


#: the input Gram matrix G_ab = x_a . x_b / n0 (first-layer values)
def GRAM(a, b):
    return tensor("G", (a, b))


_FACTOR_TEXT = {-1: "z", 0: "s", 1: "t", 2: "u", 3: "v"}
_FACTOR_LATEX = {-1: "z", 0: r"\sigma", 1: r"\sigma'", 2: r"\sigma''", 3: r"\sigma'''"}


class SampleMoment(sympy.Symbol):
    """E[prod_k sigma^(d_k)(z_{a_k})] over the centred Gaussian with covariance
    K_{ab} (d = -1 is the field z_a itself): the multi-input analogue of
    :class:`~fwtheory.symbolic.symbols.GaussianMoment`. ``factors`` is the sorted
    tuple of (sample a, derivative order d); name ``E[0:0,1:2]`` = <sigma(z_0) sigma''(z_1)>."""

    def __new__(cls, factors, **_assumptions):
        if isinstance(factors, str):
            name = factors
        else:
            name = "E[%s]" % ",".join("%d:%d" % f for f in sorted(factors))
        return super().__new__(cls, name, real=True)

    def __getnewargs__(self):
        return (self.name,)

    @property
    def factors(self):
        body = self.name[2:-1]
        return tuple(tuple(int(x) for x in f.split(":")) for f in body.split(",")) if body else ()

    def _text(self, table, latex):
        parts = []
        for (a, d), grp in itertools.groupby(self.factors):
            p = len(list(grp))
            base = table.get(d, r"\sigma^{(%d)}" % d if latex else "s(%d)" % d)
            sub = ("%s_{%d}" % (base, a + 1)) if latex else ("%s%d" % (base, a))
            parts.append(sub if p == 1 else (("%s^{%d}" if latex else "%s^%d") % (sub, p)))
        return " ".join(parts)

    def _sympystr(self, printer):
        return "<%s>" % self._text(_FACTOR_TEXT, False)

    def _latex(self, printer):
        return r"\langle %s \rangle_{K}" % self._text(_FACTOR_LATEX, True)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._sympystr(printer))


def sample_moment(factors):
    """SampleMoment of ``factors`` ((sample, d) pairs); 1 for the empty product."""
    factors = tuple(sorted(factors))
    return SampleMoment(factors) if factors else sympy.Integer(1)


def sample_moments_in(expr):
    """The SampleMoment and DerivMoment symbols of ``expr``, sorted by name."""
    return sorted(expr.atoms(SampleMoment) | expr.atoms(DerivMoment), key=lambda m: m.name)


class DerivMoment(sympy.Symbol):
    """E[d_{l1} ... d_{lk} prod_j sigma^(d_j)(z_{a_j})] over N(0, K): a Gaussian
    expectation of z-derivatives of a site functional (Price's theorem turns the
    K-entry derivatives into these: d<f>/dK_{mu nu} = (1/2) <d_mu d_nu f>).
    Kept unexpanded so that the numbers can use either Price's form (derivatives
    of sigma, :func:`price`) or the Hermite form (no derivatives of sigma, valid
    at kinks, :func:`hermite`). Name ``dE[0:0,1:0|0,1]`` = <d_0 d_1 (s0 s1)>."""

    def __new__(cls, factors, derivs=None, **_assumptions):
        if isinstance(factors, str):
            name = factors
        else:
            name = "dE[%s|%s]" % (",".join("%d:%d" % f for f in sorted(factors)),
                                  ",".join(str(int(a)) for a in sorted(derivs)))
        return super().__new__(cls, name, real=True)

    def __getnewargs__(self):
        return (self.name,)

    @property
    def factors(self):
        body = self.name[3:-1].split("|")[0]
        return tuple(tuple(int(x) for x in f.split(":")) for f in body.split(",")) if body else ()

    @property
    def derivs(self):
        body = self.name[3:-1].split("|")[1]
        return tuple(int(x) for x in body.split(",")) if body else ()

    def _sympystr(self, printer):
        d = " ".join("d%d" % a for a in self.derivs)
        return "<%s (%s)>" % (d, SampleMoment(self.factors)._text(_FACTOR_TEXT, False))

    def _latex(self, printer):
        d = " ".join(r"\partial_{%d}" % (a + 1) for a in self.derivs)
        return r"\langle %s \big(%s\big) \rangle_{K}" % (d, SampleMoment(self.factors)._text(_FACTOR_LATEX, True))

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._sympystr(printer))


def deriv_moment(factors, derivs):
    """<d_{derivs} prod factors>_K; a plain :class:`SampleMoment` without derivatives,
    0 when a derivative hits a sample the site does not depend on."""
    factors, derivs = tuple(sorted(factors)), tuple(sorted(derivs))
    if not derivs:
        return sample_moment(factors)
    labels = {a for a, _ in factors}
    if any(a not in labels for a in derivs):
        return sympy.Integer(0)
    return DerivMoment(factors, derivs)


# ------------------------------------------------------------------ Price's theorem
def _differentiate(poly, label):
    """d/dz_label of a polynomial {sorted factor tuple: coefficient} of factors
    sigma^(d)(z_a) (d >= 0) and z_a (d = -1)."""
    out = {}
    for factors, c in poly.items():
        for idx, (a, d) in enumerate(factors):
            if a != label:
                continue
            rest = factors[:idx] + factors[idx + 1:]
            new = rest if d == -1 else tuple(sorted(rest + ((a, d + 1),)))
            out[new] = out.get(new, 0) + c
    return {k: v for k, v in out.items() if v != 0}


@lru_cache(maxsize=None)
def site_moment(site, pairs):
    """prod_{(mu nu) in pairs} d/dK_{mu nu} <f>_K for the site functional f =
    prod of ``site`` factors, by Price's theorem: 2^{-r} <d_mu1 d_nu1 ... f>_K."""
    labels = tuple(a for p in pairs for a in p)
    return sympy.Rational(1, 2 ** len(pairs)) * deriv_moment(site, labels)


def _first_derivative(site, labels):
    """<d_{l1} d_{l2} ... f>_K (plain z-derivatives)."""
    return deriv_moment(site, labels)


@lru_cache(maxsize=None)
def _price(dm):
    poly = {dm.factors: sympy.Integer(1)}
    for lab in dm.derivs:
        poly = _differentiate(poly, lab)
    return sum((c * sample_moment(f) for f, c in poly.items()), sympy.Integer(0))


def price(expr):
    """Every :class:`DerivMoment` of ``expr`` written out by the product rule as
    :class:`SampleMoment` symbols (derivatives of sigma); the canonical form in
    which the m = 1 reduction is checked."""
    rep = {dm: _price(dm) for dm in expr.atoms(DerivMoment)}
    return sympy.expand(expr.xreplace(rep)) if rep else expr


def inverse_entry(subset, a, b):
    """The symbol (K_S^{-1})_{ab} of the sub-block of K on the samples ``subset``."""
    a, b = sorted((a, b))
    return sympy.Symbol("Kinv{%s}[%d,%d]" % ("".join(map(str, subset)), a, b), real=True)


@lru_cache(maxsize=None)
def hermite(dm):
    r"""Hermite form of a :class:`DerivMoment`: <d_{l1}..d_{lk} f>_K = <f He_{l1..lk}(z)>_K,
    He = (-1)^k (d^k p)/p for the Gaussian density p on the samples S of the moment,
    He_{L l} = w_l He_L - d He_L / dz_l, w = K_S^{-1} z (integration by parts; no
    derivative of sigma, so it holds at kinks; needs K_S invertible)."""
    subset = tuple(sorted({a for a, _ in dm.factors} | set(dm.derivs)))
    z = {a: sympy.Symbol("zz%d" % a) for a in subset}
    w = {a: sum(inverse_entry(subset, a, b) * z[b] for b in subset) for a in subset}
    he = sympy.Integer(1)
    for lab in dm.derivs:
        he = sympy.expand(w[lab] * he - sympy.diff(he, z[lab]))
    out = sympy.Integer(0)
    for term in sympy.Add.make_args(he):
        coef, zs = sympy.Integer(1), []
        for f in sympy.Mul.make_args(term):
            base, exp = f.as_base_exp()
            if base in z.values():
                zs += [(int(str(base)[2:]), -1)] * int(exp)
            else:
                coef *= f
        out += coef * sample_moment(dm.factors + tuple(zs))
    return sympy.expand(out)


def single_moment_as_samples(moment, label=0):
    """A single-input :class:`GaussianMoment` d^k/dK^k <s^a t^b u^c v^e z^d>_K as
    :class:`SampleMoment` symbols at one sample: Price's theorem d/dK <f> = (1/2) <f''>,
    then every z removed by Stein's lemma <z h>_K = K <h'>_K. The single-input
    recursions map to the m = 1 entries of the multi-input ones under this map."""
    from .symbols import CORRELATOR_SYMBOLS

    a, b, c, e, d = moment.powers
    factors = (((label, 0),) * a + ((label, 1),) * b + ((label, 2),) * c + ((label, 3),) * e
               + ((label, -1),) * d)
    poly = {tuple(sorted(factors)): sympy.Rational(1, 2 ** moment.dk)}
    for _ in range(2 * moment.dk):
        poly = _differentiate(poly, label)
    K = CORRELATOR_SYMBOLS["K"]
    out = sympy.Integer(0)
    while poly:
        nxt = {}
        for f, coef in poly.items():
            z = [i for i, (_, dd) in enumerate(f) if dd == -1]
            if not z:
                out += coef * sample_moment(f)
                continue
            rest = f[:z[0]] + f[z[0] + 1:]
            for g, c2 in _differentiate({rest: sympy.Integer(1)}, label).items():
                nxt[g] = nxt.get(g, 0) + coef * c2 * K
        poly = {k: v for k, v in nxt.items() if v != 0}
    return sympy.expand(out)


# ------------------------------------------------------------------ cumulant expansion
def _ordered_weight(p):
    return 1 if p[0] == p[1] else 2


@lru_cache(maxsize=None)
def _cumulant_table(labels):
    """The layer-l cumulants as :class:`PairCumulant` tensors over the sample
    pairs of ``labels`` (eps^1 terms only: G1 and V; rank 1 without K)."""
    pairs = [p for p in itertools.combinations_with_replacement(labels, 2)]
    g1 = tuple((((p,), _ordered_weight(p) * tensor("G1", p))) for p in pairs)
    v = []
    for p, q in itertools.combinations_with_replacement(pairs, 2):
        w = _ordered_weight(p) * _ordered_weight(q) * (1 if p == q else 2)
        v.append(((p, q), w * tensor("V", p + q)))
    return (PairCumulant(1, ((1, g1),)), PairCumulant(2, ((1, tuple(v)),)))


def _labels_of(sites):
    return tuple(sorted({a for s in sites for a, _ in s}))


@lru_cache(maxsize=None)
def product_expectation_multi(sites, order=1):
    """E[prod_a f_a(z_{a;.})] at distinct neurons a of layer l, to eps^order
    (order 0 or 1); ``sites`` a tuple of factor tuples ((sample, d), ...)."""
    series = variance_operator_series(order, _cumulant_table(_labels_of(sites)))
    total = sympy.Integer(0)
    for (k, mono), c in series.items():
        total += EPS**k * c * _leibniz(sites, mono, site_moment)
    return sympy.expand(total)


def _mean(sites, skip=()):
    out = sympy.Integer(1)
    for idx, s in enumerate(sites):
        if idx not in skip:
            out *= site_moment(s, ())
    return out


def _one_fluctuation(sites, blocks, samples):
    """E[dH_{ab;al be} prod f] / eps."""
    (a, b), (al, be) = blocks, samples
    out = sympy.Integer(0)
    if a == b:
        for c, site in enumerate(sites):
            labs = _labels_of((site,))
            rest = _mean(sites, {c})
            for ga in labs:
                for de in labs:
                    coef = tensor("D", (al, be, ga, de))
                    if c == a:
                        coef += tensor("F", (al, be, ga, de)) + tensor("F", (al, be, de, ga))
                    out += coef * site_moment(site, ((ga, de),)) * rest
        return out
    rest = _mean(sites, {a, b})
    for ga in _labels_of((sites[a],)):
        for de in _labels_of((sites[b],)):
            out += (tensor("F", (al, be, ga, de)) * _first_derivative(sites[a], (ga,))
                    * _first_derivative(sites[b], (de,)) * rest)
    return out


def _two_fluctuations(sites, h1, h2):
    (a, b), (al, be) = h1
    (c, d), (ga, de) = h2
    kappa = sympy.Integer(0)
    if a == b and c == d:
        kappa += tensor("A", (al, be, ga, de))
    if a == c and b == d:
        kappa += tensor("B", (al, be, ga, de))
    if a == d and b == c:
        kappa += tensor("B", (al, be, de, ga))
    return kappa * _mean(sites)


def layer_expectation_multi(sites, objects, order):
    """E[prod_a f_a prod_h Hhat_h] at layer l to eps^order; ``objects`` a list of
    ("H", (block a, block b), (sample al, sample be))."""
    if not objects:
        return product_expectation_multi(tuple(sorted(sites)), order)
    kinds = sorted({kind for kind, _, _ in objects if kind != "H"})
    if kinds:
        raise ParameterError("name", f"the NTK descendants ({', '.join(kinds)}) are not derived for "
                                     "several inputs; only K, G1, V, Theta, Theta1, D, F, A, B")
    hs = [(blk, smp) for _, blk, smp in objects]
    total = sympy.Integer(0)
    for r in range(0, min(len(hs), 2 if order >= 1 else 0) + 1):
        for fluct in itertools.combinations(range(len(hs)), r):
            rest = [hs[h] for h in range(len(hs)) if h not in fluct]
            if not all(blk[0] == blk[1] for blk, _ in rest):
                continue  # an off-diagonal NTK entry has zero mean
            prefactor = sympy.Integer(1)
            for _, smp in rest:
                prefactor *= tensor("Theta", smp) + (EPS * tensor("Theta1", smp) if order >= 1 else 0)
            if r == 0:
                value = product_expectation_multi(tuple(sites), order)
            elif r == 1:
                value = EPS * _one_fluctuation(sites, *hs[fluct[0]])
            else:
                value = EPS * _two_fluctuations(sites, hs[fluct[0]], hs[fluct[1]])
            total += prefactor * value
    return truncate(sympy.expand(total), order)


# ------------------------------------------------------------------ averaging
def _average_weights(term, ensemble):
    """As :func:`.derivation._average_weights`, for site keys (dummy, sample)."""
    bias = _average_bias(term)
    if bias is None:
        return
    rows = [r for r, _ in term.W]
    cols = [c for _, c in term.W]
    for coeff, _rows, col_pairs in ensemble.pairings(rows, n, C_W):
        uf = _UnionFind()
        for d, _s in term.site:
            uf.find(d)
        for a, b in col_pairs:
            uf.union(cols[a], cols[b])
        site = {}
        for (d, s), p in term.site.items():
            key = (uf.find(d), s)
            site[key] = tuple(x + y for x, y in zip(site.get(key, (0,) * 5), p))
        objects = tuple((kind, tuple((uf.find(d), s) for d, s in dums)) for kind, dums in term.objects)
        yield term.coeff * bias * coeff, site, objects


def _factors(sample, powers):
    s, t, u, v, z = powers
    return ((sample, 0),) * s + ((sample, 1),) * t + ((sample, 2),) * u + ((sample, 3),) * v + ((sample, -1),) * z


def _input_sum(samples):
    """sum_j prod_{a in samples} x_{j;a} over the input: n, or n G_ab."""
    if not samples:
        return n
    if len(samples) == 2:
        return n * GRAM(*samples)
    return sympy.Symbol("S[%s]" % ",".join(map(str, sorted(samples))))  # never arises (visible if it did)


def _split_fields(fields):
    for kind, *rest in fields:
        k = {"z": 1, "H": 2}.get(kind)
        if k is None:
            raise ParameterError("name", f"field {kind!r} is not derived for several inputs")
        yield kind, tuple(rest[:k]), tuple(rest[k:])


def expectation_multi(fields, ensemble, first_layer=False, order=1):
    """E[prod fields] at layer l+1 with sample labels, a polynomial in EPS up
    to ``order`` (0 or 1); fields like ("z", "i", 0), ("H", "i", "k", 0, 1)."""
    fields = tuple(tuple(f) for f in fields)
    return _expectation(fields, get_ensemble(ensemble).name, first_layer, order)


@lru_cache(maxsize=None)
def _expectation(fields, ensemble_name, first_layer, order):
    ensemble = get_ensemble(ensemble_name)
    fresh = _Fresh()
    products = [FieldTerm(sympy.Integer(1))]
    for kind, labels, samples in _split_fields(fields):
        options = expand_field(kind, labels, fresh, first_layer=first_layer, n=n, samples=samples)
        products = [a * b for a in products for b in options]
    total = []
    for term in products:
        for coeff, site, objects in _average_weights(term, ensemble):
            sym, nfac = coeff.as_independent(n, as_Add=False)
            neurons = sorted({d for d, _ in site} | {d for _, dums in objects for d, _ in dums})
            if first_layer:
                value = nfac
                for j in neurons:
                    samples = [s for (d, s), p in site.items() if d == j for _ in range(p[4])]
                    value *= _input_sum(samples)
                total.append(sym * sympy.cancel(value))
                continue
            for blocks in _set_partitions(neurons):
                block_of = {d: idx for idx, blk in enumerate(blocks) for d in blk}
                sites = [() for _ in blocks]
                for (d, s), p in site.items():
                    sites[block_of[d]] = sites[block_of[d]] + _factors(s, p)
                sites = [tuple(sorted(x)) for x in sites]
                objs = [(kind, tuple(block_of[d] for d, _ in dums), tuple(s for _, s in dums))
                        for kind, dums in objects]
                scalar = _eps_series(sympy.cancel(nfac * _falling(len(blocks))), order)
                total.append(sympy.expand(sym * scalar * layer_expectation_multi(sites, objs, order)))
    if first_layer:
        return sympy.factor(sympy.together(sympy.Add(*total)))
    return truncate(sympy.Add(*total), order)


# ------------------------------------------------------------------ targets
def _z(neuron, a):
    return ("z", neuron, a)


def _h(i, k, a, b):
    return ("H", i, k, a, b)


#: name -> (groups of fields with generic sample labels 0..r-1, order in 1/n);
#: the correlator is the eps^order coefficient of the joint cumulant of the
#: groups (as :data:`.derivation.TARGETS`). A new correlator is a new entry.
MULTI_TARGETS = {
    "K": (((_z("i", 0), _z("i", 1)),), 0),
    "G1": (((_z("i", 0), _z("i", 1)),), 1),
    "V": (((_z("i", 0), _z("i", 1)), (_z("k", 2), _z("k", 3))), 1),
    "Theta": (((_h("i", "i", 0, 1),),), 0),
    "Theta1": (((_h("i", "i", 0, 1),),), 1),
    "D": (((_h("i", "i", 0, 1),), (_z("k", 2), _z("k", 3))), 1),
    "F": (((_h("i", "k", 0, 1), _z("i", 2), _z("k", 3)),), 1),
    "A": (((_h("i", "i", 0, 1),), (_h("k", "k", 2, 3))), 1),
    "B": (((_h("i", "k", 0, 1), _h("i", "k", 2, 3)),), 1),
}
MULTI_TARGETS["A"] = (((_h("i", "i", 0, 1),), (_h("k", "k", 2, 3),)), 1)


def relabel(expr, mapping):
    """Substitute sample labels (``mapping``: generic label -> input) in every
    :class:`InputTensor` and :class:`SampleMoment` of ``expr``, canonicalizing."""
    rep = {}
    for t in expr.atoms(InputTensor):
        rep[t] = tensor(t.base, tuple(mapping[i] for i in t.indices))
    for m in expr.atoms(SampleMoment):
        rep[m] = sample_moment(tuple((mapping[a], d) for a, d in m.factors))
    for m in expr.atoms(DerivMoment):
        rep[m] = deriv_moment(tuple((mapping[a], d) for a, d in m.factors), tuple(mapping[a] for a in m.derivs))
    return expr.xreplace(rep)


def _tidy(expr):
    return sympy.expand(expr)


@dataclass(frozen=True)
class MultiRecursion:
    """The derived layer-to-layer recursion of one multi-input correlator.

    ``expr`` is the layer-(l+1) component at the generic sample indices
    ``indices`` (0, 1 for K; 0, 1, 2, 3 for V, ...) in terms of layer-l
    components (:class:`InputTensor`, e.g. ``V[0,1,2,3]``), the parameters and
    Gaussian expectations over N(0, K^(l)) (:class:`DerivMoment`,
    :class:`SampleMoment`). ``initial``:
    first-layer ensemble -> layer-1 value in the Gram matrix ``G[a,b]``.
    :meth:`entry` gives the recursion of one component for actual inputs.
    """

    name: str
    ensemble: str
    inputs: int
    indices: tuple
    initial: Mapping
    initial_exact: Mapping
    order: int = 1

    @property
    def expr(self):
        """The recursion at distinct generic indices (derived on first use)."""
        return _cached(self.name, self.ensemble, tuple(range(len(self.indices))))

    def __post_init__(self):
        for f in ("initial", "initial_exact"):
            object.__setattr__(self, f, MappingProxyType(dict(getattr(self, f))))

    def _check_index(self, idx):
        idx = tuple(idx)
        if len(idx) != len(self.indices) or not all(isinstance(i, int) and 0 <= i < self.inputs for i in idx):
            raise ParameterError("indices", f"{self.name} takes {len(self.indices)} sample indices in "
                                            f"0..{self.inputs - 1}, got {idx!r}")
        return idx

    def entry(self, *idx):
        """The recursion of component ``name[idx]`` (inputs 0..m-1): derived for the
        coincidence pattern of ``idx`` (which indices are equal; :func:`index_pattern`),
        then its distinct labels renamed to the inputs (an injective renaming, so a
        derivative d_a inside a Gaussian expectation stays the derivative in z_a)."""
        idx = self._check_index(idx)
        pattern = index_pattern(idx)
        return relabel(_cached(self.name, self.ensemble, pattern), {p: i for p, i in zip(pattern, idx)})

    def initial_entry(self, first, *idx):
        idx = self._check_index(idx)
        return relabel(self.initial[first], dict(zip(self.indices, idx)))

    def components(self):
        """The canonical index tuples of this correlator for ``inputs`` inputs."""
        all_idx = itertools.product(range(self.inputs), repeat=len(self.indices))
        return sorted({canonical_index(self.name, i) for i in all_idx})

    def __str__(self):
        idx = ",".join(str(i) for i in self.indices)
        return f"{self.name}[{idx}]^(l+1) = {sympy.sstr(self.expr)}"

    def __repr__(self):
        return (f"MultiRecursion(name={self.name!r}, ensemble={self.ensemble!r}, inputs={self.inputs}, "
                f"indices={self.indices}, terms={len(sympy.Add.make_args(self.expr))})")

    @property
    def dependencies(self):
        """Layer-l correlators the recursion uses (K whenever a Gaussian expectation occurs)."""
        bases = {t.base for t in self.expr.atoms(InputTensor)}
        if self.expr.atoms(SampleMoment) or self.expr.atoms(DerivMoment):
            bases.add("K")
        return tuple(k for k in MULTI_NAMES if k in bases)

    def latex(self):
        r"""LaTeX: ``X_{12..}^{(\ell+1)} = ...`` (sample indices printed from 1)."""
        return r"%s^{(\ell+1)} = %s" % (sympy.latex(tensor(self.name, self.indices)), self.latex_rhs())

    def latex_rhs(self):
        return sympy.latex(self.expr)


def _coefficient(groups, order, ensemble):
    joint = _joint_cumulant(groups, lambda fields: expectation_multi(fields, ensemble, order=order))
    return sympy.expand(eps_coefficient(joint, order))


def _first_layer_value(groups, order, ensemble):
    joint = _joint_cumulant(groups, lambda f: expectation_multi(f, ensemble, first_layer=True))
    return exact_coefficient(joint, order)


def index_pattern(idx):
    """Coincidence pattern of a sample-index tuple: labels by first occurrence,
    e.g. (3, 3, 1, 2) -> (0, 0, 1, 2)."""
    first = {}
    return tuple(first.setdefault(i, len(first)) for i in idx)


def _pattern_groups(groups, pattern):
    def field(f):
        kind, *rest = f
        k = {"z": 1, "H": 2}[kind]
        return (kind, *rest[:k], *(pattern[a] for a in rest[k:]))

    return tuple(tuple(field(f) for f in g) for g in groups)


def _derive_pattern(name, ens, pattern):
    """The recursion of ``name`` at sample labels ``pattern`` (equal labels = one input)."""
    groups, order = MULTI_TARGETS[name]
    return _tidy(_coefficient(_pattern_groups(groups, pattern), order, ens))


@lru_cache(maxsize=None)
def _initial(name):
    """First-layer values at distinct labels, for both first-layer ensembles (they carry
    no derivatives, so renaming them to any index pattern is exact)."""
    groups, order = MULTI_TARGETS[name]
    initial, exact = {}, {}
    for first in ("gaussian", "orthogonal"):
        exact[first] = _first_layer_value(groups, order, first)
        initial[first] = sympy.factor(sympy.limit(exact[first], n, sympy.oo))
    return initial, exact


def derive_multi(name, ensemble="gaussian", inputs=2):
    """The multi-input recursion of ``name`` (one of :data:`MULTI_NAMES`) for
    ``inputs`` >= 1 inputs: a :class:`MultiRecursion`."""
    if name not in MULTI_TARGETS:
        raise ParameterError("name", f"for inputs > 1 must be one of {', '.join(MULTI_NAMES)}, got "
                                     f"{name!r} (the NTK descendants P..U and the order-1/n^2 "
                                     "correlators are derived for one input only)")
    ens = get_ensemble(ensemble).name
    initial, exact = _initial(name)
    return MultiRecursion(name, ens, int(inputs), tuple(range(RANK[name])), initial, exact,
                          MULTI_TARGETS[name][1])


@lru_cache(maxsize=None)
def _cached(name, ens, pattern):
    from ._disk_cache import cached

    key = ("multi", name, ens, "".join(map(str, pattern)))
    return cached(key, lambda: _derive_pattern(name, ens, pattern))


# ------------------------------------------------------------------ lowering derivative orders
def inverse_diagonal(a):
    """The symbol 1/K_aa (used by :func:`lower_derivatives`)."""
    return sympy.Symbol("Kinv[%d]" % a, positive=True)


def lower_derivatives(moment, max_order=3):
    r"""Rewrite a :class:`SampleMoment` with a factor sigma^(d)(z_al), d > ``max_order``,
    as moments whose derivative orders are all <= ``max_order``.

    Gaussian integration by parts along z_al: with z_be = (K_{al be}/K_{al al}) z_al + w_be,
    w independent of z_al,

        E[h'(z_al) F] = E[h(z_al) z_al F] / K_{al al} - sum_be (K_{al be}/K_{al al}) E[h(z_al) d_be F],

    which needs only 1/K_{al al} (so it holds for singular K, e.g. identical inputs).
    Activations provide sigma^(d) up to d = 3; the multi-input G1 and Theta1 need up to d = 5.
    Returns a polynomial in SampleMoments, K-entry symbols ``K[a,b]`` and ``Kinv[a]``.
    """
    return _lower(moment.factors, max_order)


@lru_cache(maxsize=None)
def _lower(factors, max_order, _stack=()):
    from .cumulants import DerivationError

    high = [i for i, (_, d) in enumerate(factors) if d > max_order]
    if not high:
        return sample_moment(factors)
    if factors in _stack:
        raise DerivationError(f"cannot lower the derivative orders of {sample_moment(factors)} below "
                              f"{max_order + 1}")
    i = max(high, key=lambda j: factors[j][1])
    al, d = factors[i]
    rest = factors[:i] + factors[i + 1:]
    h = ((al, d - 1),)
    out = inverse_diagonal(al) * _lower(tuple(sorted(h + ((al, -1),) + rest)), max_order, _stack + (factors,))
    for be in sorted({b for b, _ in rest}):
        coef = sympy.Integer(1) if be == al else inverse_diagonal(al) * tensor("K", (al, be))
        for g, c in _differentiate({tuple(rest): sympy.Integer(1)}, be).items():
            out -= coef * c * _lower(tuple(sorted(h + g)), max_order, _stack + (factors,))
    return sympy.expand(out)
