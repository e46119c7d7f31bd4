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
    "get_ensemble",
    "register_ensemble",
]

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


_ENSEMBLES = {"gaussian": GaussianEnsemble(), "orthogonal": OrthogonalEnsemble()}


def register_ensemble(rule):
    """Register a weight-ensemble moment rule under ``rule.name``.

    ``rule`` has ``name``, ``pairings(rows, fan_in, C_W)`` (as
    :class:`GaussianEnsemble`) and ``rotation_invariant``: True only when the
    law of W is invariant under O(n) rotations, so that every cumulant of the
    next layer is a sum of pair-delta products. The layer-l effective theory
    (:mod:`.cumulants`) carries only such cumulants, so :func:`get_ensemble`
    refuses a rule without it, e.g. i.i.d. non-Gaussian weights, whose fourth
    cumulant adds a single-neuron delta_{iiii} term (docs/derivation.md).
    """
    from ..errors import ParameterError

    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(rule, "pairings", None)):
        raise ParameterError("rule", "must have a non-empty str name and a pairings(rows, fan_in, C_W) method")
    _ENSEMBLES[name] = rule
    return rule


def get_ensemble(name):
    from ..errors import ParameterError

    try:
        rule = _ENSEMBLES[name]
    except (KeyError, TypeError):
        raise ParameterError("ensemble", f"must be one of {', '.join(_ENSEMBLES)}, got {name!r}") from None
    if not getattr(rule, "rotation_invariant", False):
        raise ParameterError(
            "ensemble", f"{name!r} is not rotation invariant: its single-neuron cumulants "
                        "(delta_iiii terms, e.g. a fourth cumulant of i.i.d. weights) are not carried "
                        "by the layer-l effective theory yet, so derive() refuses it rather than "
                        "drop them (simulate() samples 'uniform' and 'rademacher' weights)")
    return rule
