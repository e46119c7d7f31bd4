"""Several inputs: theory against simulation per correlator, index tuple and layer.

:func:`compare_gram` (reached through :func:`fwtheory.comparison.compare` when
it is given a :class:`~fwtheory.prediction_multi.GramPrediction` and a
:class:`~fwtheory.mc.multi_input.GramSimulation`) puts ``predict(network,
gram=G)`` next to ``simulate(network, samples, seed, gram=G)`` of the same
network and Gram matrix. For every correlator K, G1, V, Theta, Theta1, D, F, A,
B (definitions and index order: docs/multi_input.md; PDLT arXiv:2106.10165
Ch. 4, 8 with sample indices), every canonical index tuple (one per distinct
entry, the symmetries of the definitions identify the others) and every layer it
gives the theory, the measurement with its standard error SE, the z-score
(measured - theory)/SE, the relative error and the verdict of the single-input
rule (:data:`fwtheory.comparison.TOLERANCE_RULE`),

    agree  <=>  |measured - theory| <= z SE + rel_tol |theory| + 1e-9 max(1, |theory|).

What is compared with what, as for one input:

* single width n: the measured E[z_{i;a} z_{i;b}] and E[H_{ii;ab}] ("K",
  "Theta") against K_ab + G1_ab/n and Theta_ab + Theta1_ab/n, n = n_{l-1}
  (n0 at layer 1); the 1/n coefficients G1, V, Theta1, D, F, A, B directly;
* several widths (``simulate(..., widths=[...])``): the width-extrapolated
  intercepts c0 (the fit the data support, :func:`fwtheory.mc.estimators.fit_widths`)
  against the leading-order theory, K and Theta included; ``per_width`` holds
  the single-width comparisons.

Theory entries that are zero up to round-off (|theory| <= 1e-12 times the
largest |entry| of that correlator at that layer, e.g. ReLU's G1 or the
first-layer V of a Gaussian first layer) are compared as exactly 0, and a
difference within the rounding floor 1e-9 max(1, |theory|) has z-score 0.
"""

__all__ = ["compare_gram", "GramComparison", "component_label"]

from dataclasses import dataclass, field

import numpy as np

from ._io import layer_ranges
from .comparison import ROUNDING_FLOOR, TOLERANCE_RULE, VerdictQueries, _round
from .errors import ParameterError

NAMES = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")
_FINITE_WIDTH_NAMES = {"K": "E[z_a z_b]", "Theta": "E[H_ii;ab]"}
_ZERO_RELATIVE = 1e-12


def component_label(idx):
    """(0, 1, 0, 1) -> "0101" (the sample indices of one entry)."""
    return "".join(str(int(a)) for a in idx)


@dataclass(frozen=True, eq=False)
class GramComparison(VerdictQueries):
    """Result of :func:`compare_gram`.

    Attributes
    ----------
    network : Network
    gram : ndarray (m, m)
    basis : {"finite-width", "width-extrapolated"}
    widths : tuple of int
    samples, seed : int
    z, rel_tol : float
    layers : ndarray (L,)
    names : tuple of str
        Compared correlators.
    components : dict[str, list of tuple]
        Canonical index tuples per correlator (docs/multi_input.md).
    theory, measured, errors, zscores, rel_errors : dict[str, ndarray (L, ncomp)]
    verdicts : dict[str, ndarray (L, ncomp) of str]
        "agree", "disagree" or "n/a".
    per_width : tuple of GramComparison
    notes : tuple of str
    fits : dict[str, ndarray (L, ncomp) of int]
        Width-extrapolated basis: the number of fit terms used (2 or 3).
    """

    network: object
    gram: np.ndarray
    basis: str
    widths: tuple
    samples: int
    seed: int
    z: float
    rel_tol: float
    layers: np.ndarray
    names: tuple
    components: dict
    theory: dict
    measured: dict
    errors: dict
    zscores: dict
    rel_errors: dict
    verdicts: dict
    per_width: tuple = ()
    notes: tuple = field(default_factory=tuple)
    fits: dict = field(default_factory=dict)

    @property
    def inputs(self):
        return int(self.gram.shape[0])

    def __repr__(self):
        fails = len(self.failures())
        return (f"GramComparison({self.network.activation.name}, {self.network.ensemble}, m={self.inputs} "
                f"inputs, {self.basis} n={'/'.join(map(str, self.widths))}, layers 1..{len(self.layers)}: "
                f"{'all agree' if not fails else f'{fails} disagree'})")

    # ------------------------------------------------------------ queries
    def resolve_names(self, names=None):
        """The compared correlators selected by ``names`` (None: all)."""
        if names is None:
            return self.names
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ParameterError("quantities", f"unknown {unknown}; with several inputs choose from "
                                               f"{', '.join(self.names)}")
        return tuple(names)

    def entries(self, names=None, layers=None):
        """(name, index tuple, layer, verdict) for the selected correlators and layers."""
        idx = self._layer_index(layers)
        return [(name, comp, int(self.layers[i]), self.verdicts[name][i, j])
                for name in self.resolve_names(names) for j, comp in enumerate(self.components[name])
                for i in idx]

    def failures(self, names=None, layers=None):
        """List of (name, index tuple, layer) whose verdict is "disagree"."""
        return [(n, c, l) for n, c, l, v in self.entries(names, layers) if v == "disagree"]

    # ------------------------------------------------------------ output
    def header(self):
        net = self.network
        gram = ";".join(",".join(f"{v:g}" for v in row) for row in self.gram)
        lines = [f"# {net.activation.name}, {net.ensemble} weights (first layer {net.first_layer}), "
                 f"C_b={net.C_b:g}, C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, lambda_W={net.lambda_W:g}, "
                 f"depth {net.depth}; {self.inputs} inputs, gram {gram}; {self.samples} networks per "
                 f"width, seed {self.seed}"]
        if self.basis == "finite-width":
            lines.append(f"# width n={self.widths[0]}: K, Theta compared as E[z_a z_b] = K_ab + G1_ab/n and "
                         "E[H_ii;ab] = Theta_ab + Theta1_ab/n; 1/n coefficients directly; 'index': sample "
                         "indices of the entry (docs/multi_input.md)")
        else:
            lines.append(f"# widths {', '.join(map(str, self.widths))}: width-extrapolated c0 (fit "
                         "c0 + c1/n, or c0 + c1/n + c2/n^2 where the data reject the 2-term fit; "
                         "'fit' column) against the leading-order theory")
        lines.append(f"# tolerance: {TOLERANCE_RULE}, z={self.z:g}, rel_tol={self.rel_tol:g}")
        return lines

    def table(self, names=None, layers=None):
        """Plain-text table, one row per (correlator, index tuple, layer), and a summary line."""
        from ._io import format_table

        fitted = bool(self.fits)
        rows = []
        for name in self.resolve_names(names):
            label = name
            if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                label = f"{name} ({_FINITE_WIDTH_NAMES[name]})"
            for j, comp in enumerate(self.components[name]):
                for i in self._layer_index(layers):
                    th = self.theory[name][i, j]
                    row = [label, component_label(comp), int(self.layers[i]), th, self.measured[name][i, j],
                           self.errors[name][i, j], _round(self.zscores[name][i, j], 2),
                           "-" if th == 0 else _round(self.rel_errors[name][i, j], 4)]
                    if fitted:
                        row.append(f"{int(self.fits[name][i, j])}-term" if name in self.fits else "")
                    rows.append(row + [self.verdicts[name][i, j]])
        head = ["quantity", "index", "layer", "theory", "measured", "SE", "z", "rel.err"]
        head += ["fit"] if fitted else []
        head.append("verdict")
        fails = self.failures(names, layers)
        total = sum(1 for r in rows if r[-1] != "n/a")
        tail = f"# {total - len(fails)} of {total} agree"
        if fails:
            by = {}
            for name, comp, layer in fails:
                by.setdefault(f"{name}_{component_label(comp)}", []).append(layer)
            tail += "; disagree: " + "; ".join(f"{k} at layers {layer_ranges(v)}" for k, v in by.items())
        notes = [f"# note: {n}" for n in self.notes]
        if any(r[3] == 0 for r in rows):
            notes.append("# theory 0: zero at this order (round-off compared as 0); rel.err undefined ('-')")
        return "\n".join(self.header() + [format_table(head, rows), tail] + notes)

    def to_dict(self):
        """Plain JSON: parameters, tolerance, and per correlator and index string
        ("0101") the arrays over layers (theory, measured, se, z, rel_error, verdict)."""
        from ._io import to_jsonable
        out = {"network": self.network.to_dict(), "gram": self.gram.tolist(), "inputs": self.inputs,
               "basis": self.basis, "widths": list(self.widths), "samples": self.samples, "seed": self.seed,
               "tolerance": {"rule": TOLERANCE_RULE, "z": self.z, "rel_tol": self.rel_tol},
               "layers": [int(x) for x in self.layers], "quantities": {}, "summary": self.summary(),
               "notes": list(self.notes)}
        for name in self.names:
            entry = {}
            for j, comp in enumerate(self.components[name]):
                e = {"index": list(comp), "theory": self.theory[name][:, j],
                     "measured": self.measured[name][:, j], "se": self.errors[name][:, j],
                     "z": self.zscores[name][:, j], "rel_error": self.rel_errors[name][:, j],
                     "verdict": self.verdicts[name][:, j].tolist()}
                if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                    e["compared_as"] = _FINITE_WIDTH_NAMES[name]
                if name in self.fits:
                    e["fit_terms"] = self.fits[name][:, j]
                entry[component_label(comp)] = e
            out["quantities"][name] = entry
        if self.per_width:
            out["per_width"] = [c.to_dict() for c in self.per_width]
        return to_jsonable(out)

    def plot(self, path, names=None):
        """PNG (atomically): one panel per correlator; theory lines and measured
        points (1 SE) against layer, one colour per index tuple."""
        from .plotting import Panel, Series, write_panels

        colors = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown",
                  "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
        panels = []
        for name in self.resolve_names(names):
            series = []
            for j, comp in enumerate(self.components[name]):
                c = colors[j % len(colors)]
                lab = component_label(comp)
                series.append(Series(f"theory {lab}", self.layers, self.theory[name][:, j], color=c))
                series.append(Series(None, self.layers, self.measured[name][:, j], self.errors[name][:, j],
                                     style="points", color=c))
            label = _FINITE_WIDTH_NAMES.get(name, name) if self.basis == "finite-width" else name
            panels.append(Panel(title=label, ylabel=label, series=series))
        title = (f"{self.network.activation.name}, {self.network.ensemble}, m={self.inputs} inputs, "
                 f"n={'/'.join(map(str, self.widths))}, {self.samples} networks; lines theory, dots MC")
        return write_panels(path, panels, title=title)



def _check_pair(prediction, simulation):
    from .comparison import _check_same_network

    _check_same_network(prediction.network, simulation.network)
    Gp, Gs = np.asarray(prediction.gram, float), np.asarray(simulation.gram, float)
    if Gp.shape != Gs.shape or np.max(np.abs(Gp - Gs)) > 1e-12 * max(1.0, float(np.max(np.abs(Gp)))):
        raise ParameterError("gram", f"prediction has {Gp.tolist()}, simulation {Gs.tolist()}")


def compare_gram(prediction, simulation, z=3.0, rel_tol=0.05):
    """Compare ``predict(network, gram=G)`` with ``simulate(network, ..., gram=G)``.

    Parameters as in :func:`fwtheory.comparison.compare`; the prediction's depth
    may exceed the simulated one and its width may differ. Returns a
    :class:`GramComparison` (module docstring: what is compared with what).
    """
    from .comparison import verdicts as rule
    from .errors import check_real
    from .mc.multi_input import _components

    z = check_real("z", z, lower=0.0, lower_open=True)
    rel_tol = check_real("rel_tol", rel_tol, lower=0.0)
    _check_pair(prediction, simulation)
    net = simulation.network
    L, m = net.depth, int(simulation.gram.shape[0])
    comps = _components(m)
    extrapolated = simulation.extrapolation is not None
    th = {k: np.asarray(prediction.values[k], dtype=float)[:L] for k in NAMES}
    if extrapolated:
        basis, widths = "width-extrapolated", tuple(int(w) for w in simulation.extrapolation["widths"])
    else:
        basis, widths = "finite-width", (int(net.width),)
        n = np.full(L, float(net.width))
        n[0] = float(net.input_dim)
        th["K"] = th["K"] + th["G1"] / n[:, None, None]
        th["Theta"] = th["Theta"] + th["Theta1"] / n[:, None, None]
    theory, measured, errors, zs, rels, verdict, fits = {}, {}, {}, {}, {}, {}, {}
    for name in NAMES:
        cols = comps[name]
        t = np.stack([th[name][(slice(None),) + c] for c in cols], axis=1)
        scale = np.max(np.abs(th[name].reshape(L, -1)), axis=1, keepdims=True)
        if name not in _FINITE_WIDTH_NAMES:
            t = np.where(np.abs(t) <= _ZERO_RELATIVE * scale, 0.0, t)
        meas = np.stack([np.asarray(simulation.values[name], float)[(slice(None),) + c] for c in cols], axis=1)
        se = np.stack([np.asarray(simulation.errors[name], float)[(slice(None),) + c] for c in cols], axis=1)
        theory[name], measured[name], errors[name] = t, meas, se
        zs[name], rels[name], verdict[name] = rule(t, meas, se, z, rel_tol)
        # differences within the rounding floor (e.g. a first-layer entry measured as 1e-16 with a
        # jackknife SE of 1e-29) are no evidence: z = 0
        zs[name] = np.where(np.abs(meas - t) <= ROUNDING_FLOOR * np.maximum(1.0, np.abs(t)), 0.0, zs[name])
        if extrapolated:
            terms = simulation.extrapolation["terms"][name]
            fits[name] = np.stack([np.asarray(terms)[(slice(None),) + c] for c in cols], axis=1).astype(int)
    per_width = ()
    if extrapolated:
        per_width = tuple(compare_gram(prediction, s, z=z, rel_tol=rel_tol)
                          for s in simulation.extrapolation["per_width"])
    return GramComparison(network=net, gram=np.asarray(simulation.gram, float), basis=basis, widths=widths,
                          samples=int(simulation.samples), seed=int(simulation.seed), z=z, rel_tol=rel_tol,
                          layers=np.asarray(simulation.layers), names=NAMES,
                          components={k: list(comps[k]) for k in NAMES}, theory=theory, measured=measured,
                          errors=errors, zscores=zs, rel_errors=rels, verdicts=verdict, per_width=per_width,
                          notes=tuple(simulation.notes), fits=fits)
