"""Theory against simulation, correlator by correlator and layer by layer.

:func:`compare` puts a :class:`~fwtheory.prediction.Prediction` next to a
:class:`~fwtheory.mc.Simulation` of the same network and gives, for every
correlator of :data:`fwtheory.quantities.ALL_CORRELATORS` and every ratio of
:data:`fwtheory.quantities.ALL_RATIOS` that both sides provide, at every
layer: the theory value, the measured value with its standard error SE, the z-score
(measured - theory) / SE, the relative error (measured - theory) / |theory|
and a verdict,

    agree  <=>  |measured - theory| <= z SE + rel_tol |theory| + 1e-9 max(1, |theory|).

Theory values within the round-off bound of their own recursion are 0 at
this order (e.g. ReLU's G1 and Theta1) and are compared as exactly 0
(:mod:`fwtheory._termscale`).

The relative allowance ``rel_tol`` stands for the O(1/n) corrections that the
leading-order theory omits; the last term only absorbs floating-point
rounding of exact values (e.g. the deterministic first-layer NTK).

What is compared with what (normalizations: :mod:`fwtheory.quantities`,
PDLT arXiv:2106.10165, docs/conventions.md):

* single width n: the simulation's "K" and "Theta" are the measured E[z^2] and
  E[H_ii], so they are compared with K + G1/n and Theta + Theta1/n at the
  simulated width (:meth:`Prediction.finite_width`, n = n_{l-1}); the 1/n
  coefficients G1, V, Theta1, D, F, A, B and the ratios are compared directly
  with their leading-order theory values (the measured ratios divide by the
  measured E[z^2] and E[H_ii]; the difference is O(1/n), inside ``rel_tol``
  only while depth/width is small).
* several widths (``simulate(..., widths=[...])``): the simulation's values are
  the width-extrapolated intercepts c0 of X(n) = c0 + c1/n, compared with the
  leading-order theory (K and Theta included); :attr:`Comparison.per_width`
  holds the single-width comparisons.
"""

__all__ = ["compare", "Comparison", "TOLERANCE_RULE"]

from dataclasses import dataclass, field

import numpy as np

from ._io import layer_ranges
from .errors import ParameterError, check_real
from .quantities import ALL_CORRELATORS, ALL_RATIOS

ROUNDING_FLOOR = 1e-9
TOLERANCE_RULE = ("agree if |measured - theory| <= z*SE + rel_tol*|theory| "
                  "+ 1e-9*max(1, |theory|) (rounding floor)")
_FINITE_WIDTH_NAMES = {"K": "E[z^2]", "Theta": "E[H_ii]"}
_NETWORK_KEYS_THAT_MAY_DIFFER = ("width", "input_dim", "depth")


@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    network : Network
        The simulated network.
    basis : {"finite-width", "width-extrapolated"}
    widths : tuple of int
        Simulated width(s).
    samples, seed : int
    z, rel_tol : float
        Tolerance parameters (see :data:`TOLERANCE_RULE`).
    layers : ndarray (L,)
    names : tuple of str
        Compared quantities: the correlators, then the ratios.
    theory, measured, errors, zscores, rel_errors : dict[str, ndarray (L,)]
    verdicts : dict[str, ndarray (L,) of str]
        "agree", "disagree" or "n/a" (measurement or theory not finite).
    per_width : tuple of Comparison
        For a width-extrapolated simulation, the comparison at every width.
    notes : tuple of str
    input_norm : float
        q0 = |x|^2 / n0 of the input.
    """

    network: object
    basis: str
    widths: tuple
    samples: int
    seed: int
    z: float
    rel_tol: float
    layers: np.ndarray
    names: tuple
    theory: dict
    measured: dict
    errors: dict
    zscores: dict
    rel_errors: dict
    verdicts: dict
    per_width: tuple = ()
    notes: tuple = field(default_factory=tuple)
    input_norm: float = 1.0

    # ------------------------------------------------------------ queries
    def resolve_names(self, names=None):
        """The compared quantity names selected by ``names`` (None: all);
        raises ParameterError for unknown names."""
        if names is None:
            return self.names
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ParameterError("quantities", f"unknown {unknown}; choose from {', '.join(self.names)}")
        return tuple(names)

    def entries(self, names=None, layers=None):
        """(name, layer, verdict) for the selected quantities and layers."""
        idx = self._layer_index(layers)
        return [(name, int(self.layers[i]), self.verdicts[name][i])
                for name in self.resolve_names(names) for i in idx]

    def agrees(self, names=None, layers=None):
        """True when no compared (quantity, layer) disagrees ("n/a" is not a failure)."""
        return not self.failures(names, layers)

    def failures(self, names=None, layers=None):
        """List of (name, layer) pairs whose verdict is "disagree"."""
        return [(n, l) for n, l, v in self.entries(names, layers) if v == "disagree"]

    def summary(self, names=None):
        """{name: {"agree": k, "disagree": m, "n/a": j, "max_abs_z": z_max}}."""
        out = {}
        for name in self.resolve_names(names):
            v = self.verdicts[name]
            zs = np.abs(self.zscores[name][v != "n/a"])
            out[name] = {"agree": int(np.sum(v == "agree")), "disagree": int(np.sum(v == "disagree")),
                         "n/a": int(np.sum(v == "n/a")),
                         "max_abs_z": float(np.max(zs)) if zs.size else None}
        return out

    # ------------------------------------------------------------ output
    def header(self):
        """The lines that state what was compared and at which tolerance."""
        net = self.network
        lines = [f"# {net.activation.name}, {net.ensemble} weights (first layer {net.first_layer}), "
                 f"C_b={net.C_b:g}, C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, "
                 f"lambda_W={net.lambda_W:g}, depth {net.depth}; {self.samples} networks per width, "
                 f"seed {self.seed}"]
        if self.basis == "finite-width":
            lines.append(f"# width n={self.widths[0]}: K, Theta compared as E[z^2] = K + G1/n and "
                         "E[H_ii] = Theta + Theta1/n; 1/n coefficients and ratios directly")
        else:
            lines.append(f"# widths {', '.join(map(str, self.widths))}: width-extrapolated c0 of "
                         "X(n) = c0 + c1/n against the leading-order theory")
        lines.append(f"# input q0 = |x|^2/n0 = {self.input_norm:g}; tolerance: {TOLERANCE_RULE}, "
                     f"z={self.z:g}, rel_tol={self.rel_tol:g}")
        return lines

    def table(self, names=None, layers=None):
        """Plain-text table, one row per (quantity, layer), with a summary line."""
        from ._io import format_table

        rows = []
        for name in self.resolve_names(names):
            label = name
            if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                label = f"{name} ({_FINITE_WIDTH_NAMES[name]})"
            for i in self._layer_index(layers):
                rows.append([label, int(self.layers[i]), self.theory[name][i], self.measured[name][i],
                             self.errors[name][i], _round(self.zscores[name][i], 2),
                             "-" if self.theory[name][i] == 0 else _round(self.rel_errors[name][i], 4),
                             self.verdicts[name][i]])
        head = ["quantity", "layer", "theory", "measured", "SE", "z", "rel.err", "verdict"]
        fails = self.failures(names, layers)
        total = sum(1 for r in rows if r[-1] != "n/a")
        tail = f"# {total - len(fails)} of {total} agree"
        if fails:
            by_name = {}
            for name, layer in fails:
                by_name.setdefault(name, []).append(layer)
            tail += "; disagree: " + "; ".join(f"{k} at layers {layer_ranges(v)}" for k, v in by_name.items())
        notes = [f"# note: {n}" for n in self.notes]
        if any(r[2] == 0 for r in rows):
            notes.append("# theory 0: zero at this order (within the round-off bound of its recursion, "
                         "fwtheory._termscale); its rel.err is undefined ('-')")
        return "\n".join(self.header() + [format_table(head, rows), tail] + notes)

    def to_dict(self):
        """Plain-JSON dictionary: parameters, tolerance and, per quantity, the arrays
        (non-finite numbers become None)."""
        from ._io import to_jsonable

        out = {
            "network": dict(self.network.to_dict(), input_norm=self.input_norm),
            "basis": self.basis,
            "widths": list(self.widths),
            "samples": self.samples,
            "seed": self.seed,
            "tolerance": {"rule": TOLERANCE_RULE, "z": self.z, "rel_tol": self.rel_tol},
            "layers": [int(x) for x in self.layers],
            "quantities": {},
            "summary": self.summary(),
            "notes": list(self.notes),
        }
        for name in self.names:
            out["quantities"][name] = {
                "theory": self.theory[name], "measured": self.measured[name],
                "se": self.errors[name], "z": self.zscores[name],
                "rel_error": self.rel_errors[name], "verdict": self.verdicts[name].tolist(),
            }
            if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                out["quantities"][name]["compared_as"] = _FINITE_WIDTH_NAMES[name]
        if self.per_width:
            out["per_width"] = [c.to_dict() for c in self.per_width]
        return to_jsonable(out)

    def plot(self, path, names=None):
        """Write a PNG (atomically): one panel per quantity, theory line and
        measured points with 1-SE error bars against layer."""
        from .plotting import Panel, Series, write_panels

        color = "tab:blue" if self.network.ensemble == "gaussian" else "tab:red"
        panels = []
        for name in self.resolve_names(names):
            label = _FINITE_WIDTH_NAMES.get(name, name) if self.basis == "finite-width" else name
            what = "measured" if self.basis == "finite-width" else "extrapolated c0"
            panels.append(Panel(
                title=label,
                ylabel=label + ("" if name in _FINITE_WIDTH_NAMES else "  (coefficient of 1/n)"),
                series=[Series("theory", self.layers, self.theory[name], color="black"),
                        Series(f"MC {what} (1 SE)", self.layers, self.measured[name],
                               self.errors[name], style="points", color=color)]))
        title = (f"{self.network.activation.name}, {self.network.ensemble}, "
                 f"C_b={self.network.C_b:g}, C_W={self.network.C_W:g}, "
                 f"n={'/'.join(map(str, self.widths))}, {self.samples} networks")
        return write_panels(path, panels, title=title)

    # ------------------------------------------------------------ helpers
    def _layer_index(self, layers):
        if layers is None:
            return range(len(self.layers))
        layers = [layers] if np.isscalar(layers) else list(layers)
        index = {int(l): i for i, l in enumerate(self.layers)}
        bad = [l for l in layers if int(l) not in index]
        if bad:
            raise ParameterError("layers", f"{bad} not in 1..{int(self.layers[-1])}")
        return [index[int(l)] for l in layers]


def _round(x, digits):
    x = float(x)
    return round(x, digits) if np.isfinite(x) else x



# ---------------------------------------------------------------- compare
def _zero_roundoff(prediction, L, th, ratios):
    """Set to exactly 0 the theory values that are 0 at this order: within the
    round-off bound of their recursion (:func:`fwtheory._termscale.zero_values`;
    e.g. ReLU's G1, which predict returns as ~1e-16). In place."""
    from .errors import FwtheoryError

    try:
        from ._termscale import zero_values

        zero = zero_values(prediction)
    except (FwtheoryError, ImportError, KeyError):     # no bound: keep the values as they are
        return
    for table in (th, ratios):
        for name, values in table.items():
            if name in zero and name not in _FINITE_WIDTH_NAMES:
                table[name] = np.where(zero[name][:L], 0.0, values)


def verdicts(theory, measured, se, z, rel_tol):
    """(zscore, rel_error, verdict) arrays for the rule of :data:`TOLERANCE_RULE`."""
    theory, measured, se = (np.asarray(a, dtype=float) for a in (theory, measured, se))
    diff = measured - theory
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
        rel = np.where(theory != 0, diff / np.abs(theory), np.nan)
        allowed = z * se + rel_tol * np.abs(theory) + ROUNDING_FLOOR * np.maximum(1.0, np.abs(theory))
        ok = np.abs(diff) <= allowed
    valid = np.isfinite(theory) & np.isfinite(measured) & np.isfinite(se)
    verdict = np.where(~valid, "n/a", np.where(ok, "agree", "disagree")).astype(object)
    return zscore, rel, verdict


def _check_same_network(pred_net, sim_net):
    a, b = pred_net.to_dict(), sim_net.to_dict()
    diff = [k for k in a if k not in _NETWORK_KEYS_THAT_MAY_DIFFER and a[k] != b[k]]
    if diff:
        raise ParameterError("simulation", "the prediction and the simulation are of different networks ("
                             + ", ".join(f"{k}: {a[k]!r} vs {b[k]!r}" for k in diff) + ")")
    if pred_net.depth < sim_net.depth:
        raise ParameterError("prediction", f"depth {pred_net.depth} is smaller than the simulated "
                                           f"depth {sim_net.depth}")


def compare(prediction, simulation, z=3.0, rel_tol=0.05):
    """Compare a prediction with a simulation of the same network.

    Parameters
    ----------
    prediction : Prediction
        From :func:`fwtheory.predict`; its depth may exceed the simulated one
        (only the simulated layers are compared), its width may differ (the
        1/n coefficients do not depend on n).
    simulation : Simulation
        From :func:`fwtheory.mc.simulate`, single-width or width-extrapolated.
    z : float > 0
        Allowed number of standard errors, per compared number. ``agrees()``
        asks it of every correlator and ratio at every layer (9 correlators +
        7 ratios per layer), so for an overall check pick z for that many
        comparisons: z = 4 keeps the chance of a false alarm below ~1% for
        a hundred independent ones, z = 3 does not (the tutorial's 80-number
        comparison flagged one in 5 of 40 seeds at z = 3).
    rel_tol : float >= 0
        Allowed relative deviation from the theory (unresolved O(1/n) terms).

    Returns
    -------
    Comparison
        See the module docstring for what is compared with what.
    """
    z = check_real("z", z, lower=0.0, lower_open=True)
    rel_tol = check_real("rel_tol", rel_tol, lower=0.0)
    sim_net = simulation.network
    _check_same_network(prediction.network, sim_net)
    q_theory, q_sim = float(prediction.input_norm), float(simulation.input_norm)
    if abs(q_theory - q_sim) > 1e-12 * max(1.0, abs(q_theory)):
        raise ParameterError("input_norm", f"prediction has {prediction.input_norm:g}, simulation "
                                           f"{simulation.input_norm:g}")
    L = sim_net.depth
    extrapolated = getattr(simulation, "extrapolation", None) is not None
    th = {k: np.asarray(v, dtype=float)[:L] for k, v in prediction.values.items()}
    ratios = {k: np.asarray(v, dtype=float)[:L] for k, v in prediction.ratios.items()}
    notes = list(getattr(simulation, "notes", ()))
    if extrapolated:
        basis, widths = "width-extrapolated", tuple(simulation.extrapolation.widths)
    else:
        basis, widths = "finite-width", (sim_net.width,)
        same = (prediction.network.width, prediction.network.input_dim) == (sim_net.width, sim_net.input_dim)
        fw = prediction.finite_width(None if same else sim_net.width)
        th["K"] = np.asarray(fw["E[z^2]"], dtype=float)[:L]
        th["Theta"] = np.asarray(fw["E[H_ii]"], dtype=float)[:L]
    _zero_roundoff(prediction, L, th, ratios)
    names = tuple(k for k in ALL_CORRELATORS if k in simulation.values and k in th)
    names += tuple(k for k in ALL_RATIOS if k in simulation.ratios and k in ratios)
    theory, measured, errors, zs, rels, verdict = {}, {}, {}, {}, {}, {}
    for name in names:
        if name in ALL_RATIOS:
            theory[name] = ratios[name]
            measured[name] = np.asarray(simulation.ratios[name], dtype=float)
            errors[name] = np.asarray(simulation.ratio_errors[name], dtype=float)
        else:
            theory[name] = th[name]
            measured[name] = np.asarray(simulation.values[name], dtype=float)
            errors[name] = np.asarray(simulation.errors[name], dtype=float)
        zs[name], rels[name], verdict[name] = verdicts(theory[name], measured[name], errors[name], z, rel_tol)
    per_width = ()
    if extrapolated:
        per_width = tuple(compare(prediction, s, z=z, rel_tol=rel_tol)
                          for s in simulation.extrapolation.per_width)
    return Comparison(network=sim_net, basis=basis, widths=widths, samples=int(simulation.samples),
                      seed=int(simulation.seed), z=z, rel_tol=rel_tol,
                      layers=np.asarray(simulation.layers), names=names, theory=theory,
                      measured=measured, errors=errors, zscores=zs, rel_errors=rels,
                      verdicts=verdict, per_width=per_width, notes=tuple(notes), input_norm=q_sim)
