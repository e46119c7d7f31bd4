"""Weight-ensemble moment rules: Wick pairings (Gaussian) and the orthogonal
Weingarten calculus (Haar O(n)).

Both rules answer the same question: for weight entries
``W[r_1, c_1] ... W[r_2k, c_2k]`` with row labels ``r`` and column indices
``c``, what is ``E[prod W]`` as a sum of terms ``coeff * Delta_p(r) Delta_q(c)``
over pair partitions p (rows) and q (columns)?

* Gaussian, ``E[W_ij W_kl] = delta_ik delta_jl C_W / n``: Wick's theorem, p = q,
  coefficient ``(C_W/n)^k`` (PDLT arXiv:2106.10165 Sec. 1.2, eq. (1.45)).
* Haar orthogonal, ``W = sqrt(C_W) O``: Collins & Sniady, CMP 264 (2006) 773,
  arXiv:math-ph/0402073,

      E[O_{i1 j1} ... O_{i2k j2k}] = sum_{p,q} Delta_p(i) Delta_q(j) Wg(p, q),

  where Wg depends only on the coset type of (p, q) (the half-lengths of the
  loops of the graph p u q). Wg is computed here, exactly in n, as the inverse
  of the Gram matrix G(p, q) = n^{#loops(p, q)} restricted to class functions
  (the tests check the degree-4, -6 and -8 values against Collins and Sniady,
  CMP 264 (2006) 773, and the test table of the haarpy package).
"""

__all__ = [
    "pair_partitions",
    "coset_type",
    "weingarten_orthogonal",
    "weingarten_table",
    "GaussianEnsemble",
    "OrthogonalEnsemble",
    "IIDEnsemble",
    "even_block_partitions",
    "get_ensemble",
    "register_ensemble",
]

import itertools
from functools import lru_cache

import sympy

n = sympy.Symbol("n", positive=True)


def pair_partitions(points):
    """All perfect matchings of the tuple ``points`` as tuples of pairs."""
    points = tuple(points)
    if not points:
        return [()]
    first, rest = points[0], points[1:]
    out = []
    for idx, partner in enumerate(rest):
        remaining = rest[:idx] + rest[idx + 1:]
        for sub in pair_partitions(remaining):
            out.append(((first, partner),) + sub)
    return out


def coset_type(p, q):
    """Coset type of two perfect matchings: the sorted half-lengths of the
    cycles of the graph p u q (a partition of k = len(p))."""
    adj_p, adj_q = {}, {}
    for a, b in p:
        adj_p[a], adj_p[b] = b, a
    for a, b in q:
        adj_q[a], adj_q[b] = b, a
    seen, lengths = set(), []
    for start in adj_p:
        if start in seen:
            continue
        length, node, use_p = 0, start, True
        while True:
            seen.add(node)
            node = adj_p[node] if use_p else adj_q[node]
            seen.add(node)
            use_p = not use_p
            length += 1
            if node == start and use_p:
                break
        lengths.append(length // 2)
    return tuple(sorted(lengths, reverse=True))


@lru_cache(maxsize=None)
def weingarten_table(k):
    """Orthogonal Weingarten function of degree 2k: {coset type: Wg(n)}.

    Solves sum_q n^{loops(p0, q)} Wg(type(q, r)) = delta(p0, r) for one
    representative r of every coset type, p0 the identity matching
    ((0,1),(2,3),...). Valid for n >= k (the Gram matrix is then invertible).
    """
    pts = tuple(range(2 * k))
    matchings = pair_partitions(pts)
    p0 = tuple((2 * a, 2 * a + 1) for a in range(k))
    types = sorted({coset_type(p0, q) for q in matchings}, reverse=True)
    unknown = {t: sympy.Symbol(f"w{idx}") for idx, t in enumerate(types)}
    reps = {}
    for q in matchings:
        reps.setdefault(coset_type(p0, q), q)
    equations = []
    for t_r, r in reps.items():
        lhs = sum(n ** len(coset_type(p0, q)) * unknown[coset_type(q, r)] for q in matchings)
        equations.append(sympy.Eq(lhs, 1 if t_r == (1,) * k else 0))
    sol = sympy.solve(equations, list(unknown.values()), dict=True)[0]
    return {t: sympy.factor(sol[unknown[t]]) for t in types}


def weingarten_orthogonal(p, q):
    """Wg^{O(n)}(p, q) as a rational function of the symbol n."""
    return weingarten_table(len(p))[coset_type(p, q)]


class GaussianEnsemble:
    """i.i.d. Gaussian weights, E[W_ij W_kl] = delta_ik delta_jl C_W / fan_in."""

    name = "gaussian"
    #: the law of W is invariant under rotations of either index (O(n)), so every
    #: cumulant of the next layer is built from pair deltas (PDLT Ch. 4)
    rotation_invariant = True

    def pairings(self, rows, fan_in, C_W):
        """Yield (coefficient, row_pairs, col_pairs) for E[prod_a W[rows[a], c_a]].

        Pairs are index pairs into the factor list. Pairings whose row labels
        disagree are skipped (their delta vanishes for distinct labels).
        """
        k2 = len(rows)
        if k2 % 2:
            return
        coeff = (C_W / fan_in) ** (k2 // 2)
        for m in pair_partitions(range(k2)):
            if all(rows[a] == rows[b] for a, b in m):
                yield coeff, m, m


class OrthogonalEnsemble:
    """Haar-orthogonal weights scaled by sqrt(C_W): W = sqrt(C_W) O, O ~ Haar(O(n)).

    Needs square layers (fan_in equal to the layer width)."""

    name = "orthogonal"
    rotation_invariant = True

    def pairings(self, rows, fan_in, C_W):
        k2 = len(rows)
        if k2 % 2:
            return
        k = k2 // 2
        table = weingarten_table(k)
        scale = C_W ** k
        matchings = pair_partitions(range(k2))
        for p in matchings:
            if not all(rows[a] == rows[b] for a, b in p):
                continue
            for q in matchings:
                yield scale * table[coset_type(p, q)].subs(n, fan_in), p, q


def even_block_partitions(points, max_block):
    """All set partitions of the tuple ``points`` into blocks of even size <= ``max_block``."""
    points = tuple(points)
    if not points:
        return [()]
    first, rest = points[0], points[1:]
    out = []
    for size in range(1, max_block, 2):          # the block of ``first`` takes ``size`` others
        for others in itertools.combinations(range(len(rest)), size):
            block = (first,) + tuple(rest[i] for i in others)
            remaining = tuple(x for i, x in enumerate(rest) if i not in others)
            for sub in even_block_partitions(remaining, max_block):
                out.append((block,) + sub)
    return out


class IIDEnsemble:
    """i.i.d. weights of variance C_W / fan_in with higher cumulants.

    The entries are independent, so a joint cumulant of weight entries vanishes
    unless all of them are the same entry, and the moment-cumulant formula gives

        E[W_{r1 c1} ... W_{r2k c2k}] = sum_{set partitions pi into even blocks}
                                       prod_{B in pi} delta(rows of B) delta(columns of B) kappa_{|B|},
        kappa_2 = C_W / n,   kappa_{2r} = c_{2r} (C_W / n)^r,

    with c_{2r} the relative cumulants of the unit-variance law (uniform on
    [-sqrt 3, sqrt 3]: c_4 = -6/5, c_6 = 48/7; signs +-1: c_4 = -2, c_6 = 16;
    Gaussian: all zero). ``cumulants`` = {2r: c_2r} for r >= 2; blocks whose
    cumulant is not given are omitted. A block of 2r >= 4 entries shares one
    column sum where r pairs have r, so it is O(1/n^(r-1)) relative to them:
    at order 1/n only c_4 enters (docs/derivation.md, "i.i.d. weights with a
    fourth cumulant"). The law is not rotation invariant: the fourth cumulant
    gives the next layer single-neuron (delta_{iiii}) cumulants, which the
    layer-l effective theory carries as Vd, Dd, Ad (:mod:`.iid`).
    """

    rotation_invariant = False

    def __init__(self, name, kappa4, cumulants=None):
        self.name = name
        self.kappa4 = sympy.sympify(kappa4)
        c = {4: self.kappa4}
        c.update({int(k): sympy.sympify(v) for k, v in (cumulants or {}).items()})
        if any(k < 4 or k % 2 for k in c):
            raise ValueError("cumulants are keyed by even orders >= 4")
        self.cumulants = c
        self.max_block = max(k for k, v in c.items() if v != 0) if any(v != 0 for v in c.values()) else 2

    def __repr__(self):
        return f"IIDEnsemble({self.name!r}, kappa4={self.kappa4})"

    def pairings(self, rows, fan_in, C_W):
        """Yield (coefficient, row_blocks, col_blocks): blocks of equal rows and
        (after the average) equal columns; pairs and, where the law has them,
        blocks of 4, 6, ... entries with their cumulants."""
        k2 = len(rows)
        if k2 % 2:
            return
        var = C_W / fan_in
        for blocks in even_block_partitions(range(k2), self.max_block):
            if not all(rows[a] == rows[blk[0]] for blk in blocks for a in blk):
                continue
            coeff = var ** (k2 // 2)
            for blk in blocks:
                if len(blk) > 2:
                    coeff = coeff * self.cumulants.get(len(blk), 0)
            if coeff != 0:
                yield coeff, blocks, blocks


_ENSEMBLES = {"gaussian": GaussianEnsemble(), "orthogonal": OrthogonalEnsemble(),
              # unit-variance laws: uniform on [-sqrt 3, sqrt 3] (m4 = 9/5, m6 = 27/7) and
              # signs +-1 (m4 = m6 = 1); c4 = m4 - 3, c6 = m6 - 15 m4 + 30
              "uniform": IIDEnsemble("uniform", sympy.Rational(-6, 5), {6: sympy.Rational(48, 7)}),
              "rademacher": IIDEnsemble("rademacher", -2, {6: 16})}


def register_ensemble(rule):
    """Register a weight-ensemble moment rule under ``rule.name``.

    ``rule`` has ``name``, ``pairings(rows, fan_in, C_W)`` (as
    :class:`GaussianEnsemble`) and ``rotation_invariant``: True only when the
    law of W is invariant under O(n) rotations, so that every cumulant of the
    next layer is a sum of pair-delta products. The layer-l effective theory
    (:mod:`.cumulants`) carries such cumulants, plus the single-neuron
    (delta_{iiii}) cumulants of i.i.d. weights with a fourth cumulant
    (:class:`IIDEnsemble`, e.g. ``register_ensemble(IIDEnsemble("mine",
    kappa4=-1))``; :mod:`.iid`). :func:`get_ensemble` refuses any other rule
    that is not rotation invariant rather than drop the cumulants it would
    generate (docs/derivation.md).
    """
    from ..errors import ParameterError

    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(rule, "pairings", None)):
        raise ParameterError("rule", "must have a non-empty str name and a pairings(rows, fan_in, C_W) method")
    if _ENSEMBLES.get(name, rule) is not rule:
        # a new rule under a known name: forget what was derived with the old one
        from . import derivation

        derivation._expectation.cache_clear()
        derivation._derive.cache_clear()
    _ENSEMBLES[name] = rule
    return rule


def get_ensemble(name):
    from ..errors import ParameterError

    try:
        rule = _ENSEMBLES[name]
    except (KeyError, TypeError):
        raise ParameterError("ensemble", f"must be one of {', '.join(_ENSEMBLES)}, got {name!r}") from None
    if not getattr(rule, "rotation_invariant", False) and not isinstance(rule, IIDEnsemble):
        raise ParameterError(
            "ensemble", f"{name!r} is not rotation invariant: its single-neuron cumulants "
                        "(delta_iiii terms) are carried by the layer-l effective theory only for i.i.d. "
                        "weights declared as fwtheory.symbolic.ensembles.IIDEnsemble(name, kappa4), so "
                        "derive() refuses it rather than drop them")
    return rule
