"""Several inputs: evaluate the derived multi-input recursions across depth.

``predict(network, gram=G)`` lands here. The recursions come from
:func:`fwtheory.symbolic.derive` with ``inputs=m`` (one component per
canonical sample-index tuple, :mod:`fwtheory.symbolic.multi_input`); nothing is
re-typed. Every component recursion is a polynomial; it is compiled once into
term arrays (coefficient, Gaussian-expectation factors, Theta factors, and at
most one layer-l 1/n coefficient, the derivation being affine in those) and
evaluated for all layers at once:

1. K^(l) from the derived K recursion, layer by layer (nonlinear);
2. all Gaussian expectations E[prod sigma^(d)(z_a)] over N(0, K^(l)) at every
   layer in one call of :func:`fwtheory.gauss_multi.expect_monomials`;
3. Theta^(l) (affine in Theta);
4. X = (G1, V, Theta1, D, F, A, B), X^(l+1) = c_l + M_l X^(l) with sparse M_l.

Definitions and index order (PDLT arXiv:2106.10165 Ch. 4, 8; docs/derivation.md,
"Several inputs"): [layer][a][b] for K, G1, Theta, Theta1 and [layer][a][b][c][d]
for V, D, F, A, B, e.g. Cov(z_{i;a} z_{i;b}, z_{k;c} z_{k;d}) = V[l][a][b][c][d]/n.
"""

__all__ = ["predict_gram", "GramPrediction", "check_gram"]

import itertools
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .errors import NumericalError, ParameterError, PrecisionLoss
from .gram import MAX_INPUTS, check_gram

NAMES = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")
FLUCT = ("G1", "V", "Theta1", "D", "F", "A", "B")
PARAMS = ("C_b", "C_W", "lambda_b", "lambda_W")


# ------------------------------------------------------------------ compile
@dataclass
class _Terms:
    """sum_t coef_t prod params^pexp_t prod var[vidx_t] prod state[sidx_t] x[col_t] -> row_t
    (col = -1: no x factor; padded indices point at a trailing constant 1)."""

    row: np.ndarray
    col: np.ndarray
    coef: np.ndarray
    pexp: np.ndarray
    vidx: np.ndarray
    sidx: np.ndarray

    def scalars(self, params):
        return self.coef * np.prod(np.asarray(params, dtype=float) ** self.pexp, axis=1)

    def values(self, params, var, state=None):
        """Term values for all layers: var (L, nv), state (L, ns) -> (L, T)."""
        L = var.shape[0]
        v = np.concatenate([var, np.ones((L, 1))], axis=1)
        out = self.scalars(params)[None, :] * np.prod(v[:, self.vidx], axis=2)
        if self.sidx.shape[1]:
            s = np.concatenate([state, np.ones((L, 1))], axis=1)
            out = out * np.prod(s[:, self.sidx], axis=2)
        return out


def _compile_terms(exprs, var_index, state_index, x_index):
    """Split polynomials into :class:`_Terms`. Raise if a term is not affine in x."""
    import sympy

    from .symbolic import C_W, C_b, lambda_W, lambda_b

    psyms = (C_b, C_W, lambda_b, lambda_W)
    rows, cols, coefs, pexps, vids, sids = [], [], [], [], [], []
    for r, expr in enumerate(exprs):
        for term in sympy.Add.make_args(sympy.expand(expr)):
            if term == 0:
                continue
            c, factors = term.as_coeff_mul()
            pe, vi, si, col = [0, 0, 0, 0], [], [], -1
            for f in factors:
                base, exp = f.as_base_exp()
                exp = int(exp)
                if base in psyms:
                    pe[psyms.index(base)] += exp
                elif base in var_index:
                    vi += [var_index[base]] * exp
                elif base in state_index:
                    si += [state_index[base]] * exp
                elif base in x_index and exp == 1 and col < 0:
                    col = x_index[base]
                else:
                    raise AssertionError(f"unexpected factor {f} in a derived multi-input recursion")
            rows.append(r)
            cols.append(col)
            coefs.append(float(c))
            pexps.append(pe)
            vids.append(vi)
            sids.append(si)
    nv, ns = len(var_index), len(state_index)

    def pad(lists, fill):
        width = max([len(x) for x in lists] + [0])
        return np.array([x + [fill] * (width - len(x)) for x in lists], dtype=np.int64).reshape(len(lists), width)

    return _Terms(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(coefs),
                  np.array(pexps, dtype=float).reshape(-1, 4), pad(vids, nv), pad(sids, ns))


@dataclass(frozen=True)
class _Compiled:
    m: int
    components: dict        # name -> list of canonical index tuples
    monomials: tuple        # Gaussian expectations, as gauss_multi monomials
    kernel: _Terms          # K' from the moments
    kernel_monomials: tuple  # indices into monomials used by the K step
    theta: _Terms           # Theta' = ... (x = Theta)
    fluct: _Terms           # X' = ... (state = Theta, x = X)
    initial: dict = field(repr=False)   # first-layer ensemble -> _Terms over G entries
    gram_entries: tuple = ()
    monomials_extra: tuple = ()     # names of the K-entry symbols (K[a,b], Kinv...) after the moments


def _entry_exprs(name, ens, m):
    """The derived recursion of ``name`` and its canonical components for m inputs."""
    from .symbolic import derive

    rec = derive(name, ens, inputs=max(m, 2))     # the generic recursion does not depend on m
    comps = rec.components() if m > 1 else [(0,) * len(rec.indices)]
    return rec, comps


def _max_regular_derivative(act):
    """Largest d <= 3 with sigma^(d) a bounded function (no Dirac delta at a kink)."""
    from .gauss_multi import max_regular_derivative

    return max_regular_derivative(act)


def _singular_subsets(G):
    """Sets of inputs whose Gram sub-block is singular (linearly dependent inputs);
    the kernel K^(l) on them stays singular at every layer."""
    m = G.shape[0]
    out = []
    for r in range(2, m + 1):
        for S in itertools.combinations(range(m), r):
            block = G[np.ix_(S, S)]
            if np.linalg.eigvalsh(block)[0] <= 1e-10 * max(np.max(np.diag(block)), 1e-300):
                out.append(S)
    return tuple(out)


def _moment_rule(mo, dmax, singular):
    """A derivative moment as regular Gaussian expectations (every sigma^(d), d <= dmax):
    Price's form when it is regular; else, for a smooth activation, derivative
    orders > 3 lowered by conditional integration by parts (valid for singular K);
    for a kinked one the Hermite form (needs the inputs of the moment linearly independent)."""
    from .symbolic.multi_input import DerivMoment, hermite, lower_derivatives, price

    def regular(e):
        return all(d <= dmax for x in e.atoms(DerivMoment) | _samples(e) for _, d in x.factors)

    pe = price(mo)
    if regular(pe):
        return pe
    if dmax == 3:
        return pe.xreplace({x: lower_derivatives(x, 3) for x in _samples(pe)})
    labels = tuple(sorted({a for a, _ in mo.factors} | set(getattr(mo, "derivs", ()))))
    if len(labels) == 1 or labels not in singular:
        out = hermite(mo)
        if regular(out):
            return out
    try:
        out = pe.xreplace({x: lower_derivatives(x, dmax) for x in _samples(pe)})
    except ArithmeticError:
        out = None
    if out is not None and regular(out):
        return out
    raise NumericalError(f"the Gaussian expectation {mo} needs a derivative of the activation that is "
                         f"a Dirac delta at its kink, on the linearly dependent inputs {labels}; with a "
                         "kinked activation the inputs must be linearly independent (or identical "
                         "inputs replaced by one)")


def _samples(e):
    from .symbolic.multi_input import SampleMoment

    return e.atoms(SampleMoment)


def _extra_values(names, Kmat):
    """Numeric values (L, len(names)) of the K-entry symbols K[a,b], Kinv[a], Kinv{S}[a,b]."""
    L = Kmat.shape[0]
    out = np.empty((L, len(names)))
    inverses = {}
    for j, name in enumerate(names):
        if name.startswith("K["):
            a, b = (int(x) for x in name[2:-1].split(","))
            out[:, j] = Kmat[:, a, b]
        elif name.startswith("Kinv["):
            a = int(name[5:-1])
            out[:, j] = 1.0 / Kmat[:, a, a]
        else:  # Kinv{S}[a,b]
            S = tuple(int(c) for c in name[name.index("{") + 1:name.index("}")])
            a, b = (int(x) for x in name[name.index("[") + 1:-1].split(","))
            if S not in inverses:
                inverses[S] = np.linalg.inv(Kmat[:, S][:, :, S])
            out[:, j] = inverses[S][:, S.index(a), S.index(b)]
    return out


@lru_cache(maxsize=None)
def _compile(ens, m, dmax=3, singular=()):
    from .symbolic._disk_cache import cached

    return cached(("predict-gram", ens, str(m), str(dmax), "".join("_".join(map(str, S)) for S in singular)),
                  lambda: _compile_now(ens, m, dmax, singular), sources=(__file__,))


def _compile_now(ens, m, dmax, singular):
    import sympy

    from .symbolic.multi_input import DerivMoment, SampleMoment, tensor

    comps, exprs, inits = {}, {}, {}
    for name in NAMES:
        rec, cs = _entry_exprs(name, ens, m)
        comps[name] = cs
        exprs[name] = [rec.entry(*c) for c in cs]
        inits[name] = {first: [rec.initial_entry(first, *c) for c in cs] for first in ("gaussian", "orthogonal")}
    raw = {mo for name in NAMES for e in exprs[name] for mo in e.atoms(DerivMoment) | e.atoms(SampleMoment)}
    rule = {mo: _moment_rule(mo, dmax, singular) for mo in raw}
    for name in NAMES:
        exprs[name] = [sympy.expand(e.xreplace(rule)) for e in exprs[name]]
    moments = sorted({mo for name in NAMES for e in exprs[name] for mo in e.atoms(SampleMoment)},
                     key=lambda x: x.name)
    extra = sorted({x for name in NAMES for e in exprs[name] for x in e.free_symbols
                    if x.name.startswith("K[") or x.name.startswith("Kinv")}, key=lambda x: x.name)
    var_index = {mo: i for i, mo in enumerate(list(moments) + extra)}
    theta_index = {tensor("Theta", c): i for i, c in enumerate(comps["Theta"])}
    x_syms = [tensor(name, c) for name in FLUCT for c in comps[name]]
    x_index = {x: i for i, x in enumerate(x_syms)}
    kernel = _compile_terms(exprs["K"], var_index, {}, {})
    theta = _compile_terms(exprs["Theta"], var_index, {}, theta_index)
    fluct = _compile_terms([e for name in FLUCT for e in exprs[name]], var_index, theta_index, x_index)
    gram = sorted({(a, b) for a in range(m) for b in range(a, m)})
    g_index = {tensor("G", ab): i for i, ab in enumerate(gram)}
    initial = {}
    for first in ("gaussian", "orthogonal"):
        initial[first] = _compile_terms([e for name in NAMES for e in inits[name][first]], g_index, {}, {})
    kmon = tuple(sorted(set(int(i) for i in kernel.vidx.ravel() if i < len(moments))))
    monos = tuple(tuple((a, d) for a, d in mo.factors) for mo in moments)
    return _Compiled(m, comps, monos, kernel, kmon, theta, fluct, initial, tuple(gram),
                     tuple(x.name for x in extra))


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class GramPrediction:
    """Per-layer multi-input correlators of one network (layers 1..L).

    ``values[name]`` has shape (L, m, m) for K, G1, Theta, Theta1 and
    (L, m, m, m, m) for V, D, F, A, B; index [l-1, a, b, ...] is layer l, sample
    indices a, b, ... in the order of the definitions (docs/derivation.md,
    "Several inputs"). ``gram`` is the input Gram matrix G_ab = x_a.x_b/n0.
    """

    network: object
    gram: np.ndarray = field(repr=False)
    layers: np.ndarray = field(repr=False)
    values: dict = field(repr=False)

    def __getitem__(self, name):
        return self.values[name]

    def __repr__(self):
        m, L = self.gram.shape[0], len(self.layers)
        return (f"GramPrediction({self.network.activation.name}, {self.network.ensemble} weights, "
                f"m={m} inputs, layers 1..{L}, correlators {', '.join(NAMES)})")

    def to_dict(self):
        out = {"network": self.network.to_dict(), "gram": self.gram.tolist(),
               "layers": [int(x) for x in self.layers]}
        for k in NAMES:
            out[k] = self.values[k].tolist()
        return out

    def table_rows(self):
        """(layer, name, index string, value) for every canonical component."""
        from .symbolic.multi_input import canonical_index

        m = self.gram.shape[0]
        rows = []
        for i, layer in enumerate(self.layers):
            for name in NAMES:
                rank = self.values[name].ndim - 1
                idxs = sorted({canonical_index(name, c) for c in itertools.product(range(m), repeat=rank)})
                for c in idxs:
                    rows.append((int(layer), name, "".join(str(x) for x in c), float(self.values[name][(i,) + c])))
        return rows


# ------------------------------------------------------------------ evaluate
def _expect(act, K, monomials):
    from .gauss_multi import expect_monomials

    return np.asarray(expect_monomials(act, K, list(monomials)), dtype=float)


def _full(name, comps, values, m, L):
    """Expand canonical components (L, ncomp) to the full tensor (L, m, ..., m)."""
    from .symbolic.multi_input import canonical_index

    rank = len(comps[0])
    pos = {c: j for j, c in enumerate(comps)}
    idx = np.empty((m,) * rank, dtype=np.int64)
    for t in itertools.product(range(m), repeat=rank):
        idx[t] = pos[canonical_index(name, t)]
    return values[:, idx]


def _check(name, arr, layers):
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        raise NumericalError(f"{name} overflowed (non-finite) at layer {int(layers[np.argmax(bad)])} "
                             "(several inputs)")


#: largest estimated round-off error of a 1/n coefficient, relative to the largest
#: entry of its correlator at that layer, that predict accepts
ROUNDOFF_TOLERANCE = 1e-4


def _affine_layers(comp, params, moms, theta0, x0, L):
    """Theta^(l) and X^(l) = (G1, V, Theta1, D, F, A, B) at every layer from the
    Gaussian expectations ``moms`` (L, n_moments): both recursions are affine."""
    Theta = _iterate(comp.theta, comp.theta.values(params, moms), theta0, L)
    return Theta, _iterate(comp.fluct, comp.fluct.values(params, moms, Theta), x0, L)


def _iterate(terms, term_values, x0, L):
    """X^(l+1) = sum_t term_values[l, t] X^(l)[col_t] (1 where col_t < 0), summed into
    row_t: the affine layer map of :class:`_Terms`, from X^(1) = x0."""
    X = np.empty((L, len(x0)))
    X[0] = x0
    const = terms.col < 0
    for layer in range(L - 1):
        w = term_values[layer] * np.where(const, 1.0, X[layer][terms.col])
        X[layer + 1] = np.bincount(terms.row, weights=w, minlength=len(x0))
    return X


#: factor applied to the perturbation estimate of the round-off (one random draw)
ROUNDOFF_SAFETY = 10.0


def _moment_relative_error(act):
    """Relative error of the Gaussian expectations: ~float64 rounding for the exact
    piecewise-linear path of :mod:`fwtheory.gauss_multi`, its quadrature rtol otherwise."""
    return 8 * np.finfo(float).eps if act.kinks else 1e-10


#: each 1/n coefficient's natural unit K^p Theta^q (PDLT normalizations: G1 ~ K, V ~ K^2, ...)
_UNITS = {"G1": (1, 0), "V": (2, 0), "Theta1": (0, 1), "D": (1, 1), "F": (1, 1), "A": (0, 2), "B": (0, 2)}


def _check_roundoff(comp, X, err, layers, units):
    """NumericalError where the estimated round-off ``err`` of a 1/n coefficient exceeds
    ROUNDOFF_TOLERANCE of its correlator's scale at that layer: its largest entry, or
    its natural unit K^p Theta^q (``units`` = the largest |K| and |Theta| entries per
    layer) if that is larger, so that a correlator which vanishes (ReLU's G1 on one
    input, deep-linear D) is judged against the size it would have.

    ``err`` is ROUNDOFF_SAFETY times the change of X when every Gaussian expectation
    is multiplied by (1 + r xi), xi standard normal (seed 0) and r the expectations'
    relative error (:func:`_moment_relative_error`): a stochastic estimate of how the
    recursion amplifies their errors. A worst-case bound (sum of |terms| carried
    through |M_l|) is useless here: it grows geometrically although the terms'
    errors largely cancel. Amplification happens for kinked activations, whose
    derivative moments use the inverse of the kernel between the inputs (the Hermite
    form): as the inputs' correlation goes to 1 with depth, the terms grow like a power
    of K's condition number and cancel (ReLU, cos 0.5, C_W = 2: terms ~1e10 at layer
    30, ~3e13 at layer 80, where G1_01 ~ -13 keeps only ~2 digits)."""
    pos, first = 0, None
    for k in FLUCT:
        nk = len(comp.components[k])
        x, e = X[:, pos:pos + nk], err[:, pos:pos + nk]
        pos += nk
        p, q = _UNITS[k]
        scale = np.maximum(np.max(np.abs(x), axis=1), units[0] ** p * units[1] ** q)
        bad = (e.max(axis=1) > ROUNDOFF_TOLERANCE * scale) & (e.max(axis=1) > 0)
        if bad.any() and (first is None or int(np.argmax(bad)) < first[1]):
            first = (k, int(np.argmax(bad)), e, scale)
    if first is not None:
        k, i, e, scale = first
        raise PrecisionLoss(
            f"{k} (several inputs) loses its precision at layer {int(layers[i])}: estimated "
            f"round-off {e[i].max():.2g} against entries of size {scale[i]:.2g} (the kernel "
            f"between the inputs is nearly singular, condition number growing with depth); "
            f"use depth <= {int(layers[i]) - 1} for these inputs", valid_layers=int(layers[i]) - 1)


def predict_gram(network, gram):
    """Multi-input correlators of ``network`` for the input Gram matrix ``gram``
    (m x m, m <= 4): a :class:`GramPrediction`. See the module docstring."""
    from .prediction import _refuse_underived

    _refuse_underived(network)
    G = check_gram(gram, network)
    m, L, act = G.shape[0], network.depth, network.activation
    comp = _compile(network.ensemble, m, _max_regular_derivative(act), _singular_subsets(G))
    params = (network.C_b, network.C_W, network.lambda_b, network.lambda_W)
    layers = np.arange(1, L + 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        gvec = np.array([[G[a, b] for a, b in comp.gram_entries]])
        init_terms = comp.initial[network.first_layer]
        init = np.bincount(init_terms.row, weights=init_terms.values(params, gvec)[0],
                           minlength=sum(len(comp.components[k]) for k in NAMES))
        offsets, pos = {}, 0
        for k in NAMES:
            offsets[k] = (pos, pos + len(comp.components[k]))
            pos += len(comp.components[k])
        kcomps = comp.components["K"]
        # 1. kernel, sequential
        Kmat = np.empty((L, m, m))
        kvec = init[slice(*offsets["K"])]
        nmon = len(comp.monomials)
        for layer in range(L):
            for j, (a, b) in enumerate(kcomps):
                Kmat[layer, a, b] = Kmat[layer, b, a] = kvec[j]
            _check("K", Kmat[: layer + 1], layers)
            if layer == L - 1:
                break
            if not (np.diag(Kmat[layer]) > 0).all():
                raise NumericalError(f"K collapsed at layer {layer + 1}; Gaussian expectations need K_aa > 0")
            var = np.zeros((1, nmon + len(comp.monomials_extra)))
            if comp.kernel_monomials:
                try:
                    vals = _expect(act, Kmat[layer], [comp.monomials[i] for i in comp.kernel_monomials])
                except NumericalError as exc:
                    raise NumericalError(f"layer {layer + 1}: {exc}") from exc
                var[0, list(comp.kernel_monomials)] = vals
            kvec = np.bincount(comp.kernel.row, weights=comp.kernel.values(params, var)[0], minlength=len(kcomps))
        # 2. every Gaussian expectation at every layer
        try:
            moms = _expect(act, Kmat, comp.monomials).reshape(L, nmon) if nmon else np.zeros((L, 0))
        except NumericalError as exc:
            raise NumericalError(f"Gaussian expectations at layers 1..{L}: {exc}") from exc
        moms = np.concatenate([moms, _extra_values(comp.monomials_extra, Kmat)], axis=1)
        # 3.-4. NTK mean (affine in Theta) and the 1/n coefficients; then again with every
        # Gaussian expectation perturbed by its own relative error, which estimates the
        # round-off of the result (_check_roundoff)
        x0 = np.concatenate([init[slice(*offsets[k])] for k in FLUCT])
        theta0 = init[slice(*offsets["Theta"])]
        Theta, X = _affine_layers(comp, params, moms, theta0, x0, L)
        _check("Theta", Theta, layers)
        noise = np.random.default_rng(0).standard_normal(moms.shape)
        moms_perturbed = moms * (1.0 + _moment_relative_error(act) * noise)
        _, X_perturbed = _affine_layers(comp, params, moms_perturbed, theta0, x0, L)
        units = (np.max(np.abs(Kmat.reshape(L, -1)), axis=1), np.max(np.abs(Theta), axis=1))
        _check_roundoff(comp, X, ROUNDOFF_SAFETY * np.abs(X_perturbed - X), layers, units)
        flat = {"K": np.stack([Kmat[:, a, b] for a, b in kcomps], axis=1), "Theta": Theta}
        pos = 0
        for k in FLUCT:
            nk = len(comp.components[k])
            flat[k] = X[:, pos:pos + nk]
            pos += nk
        values = {}
        for k in NAMES:
            _check(k, flat[k], layers)
            values[k] = _full(k, comp.components[k], flat[k], m, L)
            values[k].setflags(write=False)
    G.setflags(write=False)
    return GramPrediction(network, G, layers, values)
