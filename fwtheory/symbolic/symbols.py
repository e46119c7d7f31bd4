"""sympy symbols of the symbolic layer.

* network parameters ``C_b, C_W, lambda_b, lambda_W`` and the input norm ``q0``;
* layer-l correlators ``K, G1, V, Theta, Theta1, D, F, A, B`` (single input,
  normalizations of :mod:`fwtheory.quantities`) and the single-neuron cumulants
  ``Vd, Dd, Ad`` of i.i.d. weights with a fourth cumulant (:mod:`.iid`);
* :class:`GaussianMoment`: the symbol for
  d^k/dK^k < sigma^a sigma'^b sigma''^c sigma'''^e z^d >_K, the Gaussian
  expectation at the layer-l kernel K (PDLT eq. (4.25); docs/conventions.md).
"""

__all__ = [
    "C_b", "C_W", "lambda_b", "lambda_W", "q0", "q4", "gamma", "CORRELATOR_SYMBOLS", "GaussianMoment",
    "moment", "moments_in", "correlator_latex",
]

import re

import sympy

C_b = sympy.Symbol("C_b", nonnegative=True)
C_W = sympy.Symbol("C_W", positive=True)
lambda_b = sympy.Symbol("lambda_b", nonnegative=True)
lambda_W = sympy.Symbol("lambda_W", nonnegative=True)
q0 = sympy.Symbol("q0", nonnegative=True)
#: (1/n0) sum_j x_j^4 of the input: the first layer of i.i.d. weights with a fourth
#: cumulant depends on it (q4 = q0^2 for the samplers' input x = sqrt(q0) (1, ..., 1))
q4 = sympy.Symbol("q4", nonnegative=True)
#: residual scale of the residual layer map z^(l+1) = z^(l) + gamma (b + W sigma(z^(l)))
gamma = sympy.Symbol("gamma", nonnegative=True)

CORRELATOR_SYMBOLS = {
    "K": sympy.Symbol("K", positive=True),
    "G1": sympy.Symbol("G1", real=True),
    "V": sympy.Symbol("V", real=True),
    "Theta": sympy.Symbol("Theta", positive=True),
    "Theta1": sympy.Symbol("Theta1", real=True),
    "D": sympy.Symbol("D", real=True),
    "F": sympy.Symbol("F", real=True),
    "A": sympy.Symbol("A", real=True),
    "B": sympy.Symbol("B", real=True),
    "P": sympy.Symbol("P", real=True),
    "Q": sympy.Symbol("Q", real=True),
    "R": sympy.Symbol("R", real=True),
    "S": sympy.Symbol("S", real=True),
    "T": sympy.Symbol("T", real=True),
    "U": sympy.Symbol("U", real=True),
    # order 1/n^2, single input (docs/derivation.md): E[z^2] = K + G1/n + G2/n^2,
    # Cov(z_i^2, z_k^2) = V/n + V1/n^2 (i != k), kappa(z_i^2, z_j^2, z_k^2) = U6/n^2 (distinct)
    "G2": sympy.Symbol("G2", real=True),
    "V1": sympy.Symbol("V1", real=True),
    "U6": sympy.Symbol("U6", real=True),
    # single-neuron (delta_{iiii}) cumulants of i.i.d. weights with a fourth cumulant,
    # order 1/n (docs/derivation.md): kappa_4(z_i) = (3V + Vd)/n,
    # kappa(Hhat_ii, z_i, z_i) = (D + 2F + Dd)/n, Var(Hhat_ii) = (A + 2B + Ad)/n
    "Vd": sympy.Symbol("Vd", real=True),
    "Dd": sympy.Symbol("Dd", real=True),
    "Ad": sympy.Symbol("Ad", real=True),
}

# LaTeX of a correlator: (base, start of the superscript); PDLT writes the 1/n
# corrections of K and Theta as G^{\{1\}(l)} and Theta^{\{1\}(l)}
_CORRELATOR_LATEX = {"G1": ("G", r"\{1\}"), "Theta": (r"\Theta", ""), "Theta1": (r"\Theta", r"\{1\}"),
                     "G2": ("G", r"\{2\}"), "V1": ("V", r"\{1\}"), "U6": ("U", r"\{6\}"),
                     "Vd": ("V", r"\{\delta\}"), "Dd": ("D", r"\{\delta\}"), "Ad": ("A", r"\{\delta\}")}


def correlator_latex(name, layer=r"\ell"):
    r"""LaTeX of correlator ``name`` at ``layer`` with PDLT's layer superscript,
    e.g. ``V^{(\ell)}``, ``G^{\{1\}(\ell+1)}``."""
    base, start = _CORRELATOR_LATEX.get(name, (name, ""))
    return "%s^{%s(%s)}" % (base, start, layer)


_FACTORS = ("s", "t", "u", "v", "z")  # sigma, sigma', sigma'', sigma''', z
_LATEX = (r"\sigma", r"\sigma'", r"\sigma''", r"\sigma'''", "z")
_NAME_RE = re.compile(r"^M\[(\d+),(\d+),(\d+),(\d+),(\d+)\|(\d+)\]$")


class GaussianMoment(sympy.Symbol):
    """d^dk/dK^dk <sigma^a sigma'^b sigma''^c sigma'''^e z^d>_K as a sympy symbol.

    ``powers = (a, b, c, e, d)``. The name encodes the powers, so the symbol
    survives pickling and sympy's caching. Printed as ``<s^2 t^2>`` (s = sigma,
    t = sigma', u = sigma'', v = sigma''') and ``dK[<...>]``, ``dK2[<...>]`` for the
    first and second K-derivatives.
    """

    def __new__(cls, powers, dk=0, **_assumptions):
        if isinstance(powers, str):
            name = powers
        else:
            powers = tuple(int(p) for p in powers)
            name = "M[%d,%d,%d,%d,%d|%d]" % (powers + (int(dk),))
        if not _NAME_RE.match(name):
            raise ValueError(f"bad GaussianMoment name {name!r}")
        return super().__new__(cls, name, real=True)

    def __getnewargs__(self):
        return (self.name,)

    @property
    def powers(self):
        return tuple(int(g) for g in _NAME_RE.match(self.name).groups()[:5])

    @property
    def dk(self):
        return int(_NAME_RE.match(self.name).group(6))

    def _monomial(self, names, latex):
        parts = []
        for sym, p in zip(names, self.powers):
            if p == 1:
                parts.append(sym)
            elif p > 1:
                parts.append(f"{sym}^{{{p}}}" if latex else f"{sym}^{p}")
        return " ".join(parts) or "1"

    def _sympystr(self, printer):
        body = f"<{self._monomial(_FACTORS, False)}>"
        if self.dk == 0:
            return body
        return f"dK[{body}]" if self.dk == 1 else f"dK{self.dk}[{body}]"

    def _latex(self, printer):
        # the kernel of the expectation: "K", or "K^{(\ell)}" when printed by
        # fwtheory.symbolic.Recursion.latex (the printer carries the attribute)
        kernel = getattr(printer, "gaussian_moment_kernel", "K")
        body = r"\langle %s \rangle_{%s}" % (self._monomial(_LATEX, True), kernel)
        if self.dk == 0:
            return body
        if self.dk == 1:
            return r"\partial_K %s" % body
        return r"\partial_K^{%d} %s" % (self.dk, body)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._sympystr(printer))


def moment(s=0, t=0, u=0, v=0, z=0, dk=0):
    """GaussianMoment for sigma^s sigma'^t sigma''^u sigma'''^v z^z; ``1`` for
    the empty monomial (and ``0`` for its K-derivatives)."""
    if s == t == u == v == z == 0:
        return sympy.Integer(1) if dk == 0 else sympy.Integer(0)
    return GaussianMoment((s, t, u, v, z), dk)


def moments_in(expr):
    """The GaussianMoment symbols that occur in ``expr``, sorted by name."""
    return sorted((a for a in expr.atoms(GaussianMoment)), key=lambda m: m.name)
