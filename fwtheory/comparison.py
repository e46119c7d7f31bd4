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
  the width-extrapolated intercepts c0 of the fit the data support (X(n) =
  c0 + c1/n, or c0 + c1/n + c2/n^2 with three or more widths where the 2-term
  fit is rejected, :func:`fwtheory.mc.estimators.fit_widths`), compared with the
  leading-order theory (K and Theta included); :attr:`Comparison.fits` gives,
  per quantity and layer, the chosen model and both fits' chi^2 and p-values;
  :attr:`Comparison.per_width` holds the single-width comparisons.
* order 2 (``predict(..., order=2)``, single width): E[z^2] and the connected
  four-point coefficient V are compared with the series truncated after 1/n
  (the columns above) *and* after 1/n^2 (K + G1/n + G2/n^2, V + V1/n;
  :attr:`Comparison.series`), and :attr:`Comparison.chi2` gives
  chi^2 = sum over layers of ((measured - theory)/SE)^2 for both truncations.
  The six-point coefficient U6 (n^2 kappa(z_i^2, z_j^2, z_k^2), measured by
  :func:`fwtheory.mc.simulate_preactivations`) is compared with its leading value.
* several inputs (``predict(network, gram=G)``, ``simulate(..., gram=G)``): per
  correlator, sample-index tuple and layer, :mod:`fwtheory.comparison_multi`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .comparison_multi import GramComparison
    from .mc.multi_input import GramSimulation
    from .mc.sampling import Simulation
    from .prediction import Prediction
    from .prediction_multi import GramPrediction

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
_ORDER2_MEASURED = ("U6",)                 # order-2 correlators a simulation can measure directly
_ORDER2_RATIOS = ("U6/K^3",)


class VerdictQueries:
    """Queries shared by :class:`Comparison` and
    :class:`fwtheory.comparison_multi.GramComparison`: they read ``layers``,
    ``verdicts``, ``zscores`` and the class's own ``resolve_names``/``failures``."""

    def agrees(self, names=None, layers=None):
        """True when nothing compared disagrees ("n/a" is not a failure)."""
        return not self.failures(names, layers)

    def summary(self, names=None):
        """{name: {"agree": k, "disagree": m, "n/a": j, "max_abs_z": z_max}} over
        everything compared for each name (layers, and index tuples with several inputs)."""
        out = {}
        for name in self.resolve_names(names):
            v = self.verdicts[name]
            zs = np.abs(self.zscores[name][v != "n/a"])
            out[name] = {"agree": int(np.sum(v == "agree")), "disagree": int(np.sum(v == "disagree")),
                         "n/a": int(np.sum(v == "n/a")),
                         "max_abs_z": float(np.max(zs)) if zs.size else None}
        return out

    def _layer_index(self, layers):
        if layers is None:
            return range(len(self.layers))
        layers = [layers] if np.isscalar(layers) else list(layers)
        index = {int(l): i for i, l in enumerate(self.layers)}
        bad = [l for l in layers if int(l) not in index]
        if bad:
            raise ParameterError("layers", f"{bad} not in 1..{int(self.layers[-1])}")
        return [index[int(l)] for l in layers]


@dataclass(frozen=True, eq=False)
class Comparison(VerdictQueries):
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
    order : int
        The prediction's order (1 or 2).
    series : dict[str, dict]
        Order 2, finite width: for "K" (E[z^2]) and "V", the theory through 1/n^2
        ("theory"), its z-scores ("z") and verdicts ("verdict"), arrays (L,).
    chi2 : dict[str, dict]
        Per quantity {"1/n": chi^2 of the columns above, "1/n^2": chi^2 through
        1/n^2 (order 2, K and V only), "layers": number of layers summed} over
        the layers with a finite, positive SE.
    fits : dict[str, dict]
        Width-extrapolated basis: per quantity arrays (L,) "terms" (2 or 3, the
        chosen model), "chi2_linear", "dof_linear", "p_linear", "chi2_quadratic",
        "dof_quadratic", "p_quadratic" (NaN where a fit is undefined; chi^2 = 0
        where a fit has no degrees of freedom left).
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
    order: int = 1
    series: dict = field(default_factory=dict)
    chi2: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)

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

    def failures(self, names=None, layers=None):
        """List of (name, layer) pairs whose verdict is "disagree"."""
        return [(n, l) for n, l, v in self.entries(names, layers) if v == "disagree"]

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
            if self.series:
                lines.append("# order 2: E[z^2] and V also against the series through 1/n^2 "
                             "(K + G1/n + G2/n^2, V + V1/n): columns 'theory 1/n^2', 'z 1/n^2'")
        else:
            lines.append(f"# widths {', '.join(map(str, self.widths))}: width-extrapolated c0 of "
                         "X(n) = c0 + c1/n, or c0 + c1/n + c2/n^2 where the 2-term fit has chi^2 "
                         "p < 0.05 and the 3-term one does not ('fit' column: terms used; "
                         "chi2 of both fits) against the leading-order theory")
        lines.append(f"# input q0 = |x|^2/n0 = {self.input_norm:g}; tolerance: {TOLERANCE_RULE}, "
                     f"z={self.z:g}, rel_tol={self.rel_tol:g}")
        return lines

    def table(self, names=None, layers=None):
        """Plain-text table, one row per (quantity, layer), with a summary line
        (order 2: the theory through 1/n^2 and its z-score; width-extrapolated:
        the fit model and both fits' chi^2; chi^2 over layers per quantity)."""
        from ._io import format_table

        rows = []
        sel = self.resolve_names(names)
        extra = bool(self.series) and any(k in self.series for k in sel)
        fitted = bool(self.fits)
        for name in sel:
            label = name
            if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                label = f"{name} ({_FINITE_WIDTH_NAMES[name]})"
            for i in self._layer_index(layers):
                row = [label, int(self.layers[i]), self.theory[name][i], self.measured[name][i],
                       self.errors[name][i], _round(self.zscores[name][i], 2),
                       "-" if self.theory[name][i] == 0 else _round(self.rel_errors[name][i], 4)]
                if extra:
                    ser = self.series.get(name)
                    row += ([ser["theory"][i], _round(ser["z"][i], 2)] if ser else ["", ""])
                if fitted:
                    f = self.fits.get(name)
                    row += ([f"{int(f['terms'][i])}-term", _round(f["chi2_linear"][i], 2),
                             _round(f["chi2_quadratic"][i], 2)] if f else ["", "", ""])
                rows.append(row + [self.verdicts[name][i]])
        head = ["quantity", "layer", "theory", "measured", "SE", "z", "rel.err"]
        if extra:
            head += ["theory 1/n^2", "z 1/n^2"]
        if fitted:
            head += ["fit", "chi2 2-term", "chi2 3-term"]
        head.append("verdict")
        fails = self.failures(names, layers)
        total = sum(1 for r in rows if r[-1] != "n/a")
        tail = f"# {total - len(fails)} of {total} agree"
        if fails:
            by_name = {}
            for name, layer in fails:
                by_name.setdefault(name, []).append(layer)
            tail += "; disagree: " + "; ".join(f"{k} at layers {layer_ranges(v)}" for k, v in by_name.items())
        chi = [f"# chi^2 over {c['layers']} layers of {k}: {c['1/n']:.4g} through 1/n, "
               f"{c['1/n^2']:.4g} through 1/n^2" for k, c in self.chi2.items() if k in sel and "1/n^2" in c]
        notes = [f"# note: {n}" for n in self.notes]
        if any(r[2] == 0 for r in rows):
            notes.append("# theory 0: zero at this order (within the round-off bound of its recursion, "
                         "fwtheory._termscale); its rel.err is undefined ('-')")
        return "\n".join(self.header() + [format_table(head, rows), tail] + chi + notes)

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
            "order": self.order,
            "chi2": self.chi2,
        }
        for name in self.names:
            out["quantities"][name] = {
                "theory": self.theory[name], "measured": self.measured[name],
                "se": self.errors[name], "z": self.zscores[name],
                "rel_error": self.rel_errors[name], "verdict": self.verdicts[name].tolist(),
            }
            if self.basis == "finite-width" and name in _FINITE_WIDTH_NAMES:
                out["quantities"][name]["compared_as"] = _FINITE_WIDTH_NAMES[name]
            if name in self.series:
                ser = self.series[name]
                out["quantities"][name]["order2"] = {"theory": ser["theory"], "z": ser["z"],
                                                     "verdict": ser["verdict"].tolist()}
            if name in self.fits:
                out["quantities"][name]["fit"] = {k: v for k, v in self.fits[name].items()}
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


def compare(prediction: Prediction | GramPrediction, simulation: Simulation | GramSimulation, z: float = 3.0,
            rel_tol: float = 0.05) -> Comparison | GramComparison:
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
        See the module docstring for what is compared with what. Given
        ``predict(network, gram=G)`` and ``simulate(network, ..., gram=G)``
        (several inputs), a :class:`fwtheory.comparison_multi.GramComparison`
        per correlator, index tuple and layer (:func:`fwtheory.comparison_multi.compare_gram`).
    """
    from .mc.multi_input import GramSimulation
    from .prediction_multi import GramPrediction

    gram_p, gram_s = isinstance(prediction, GramPrediction), isinstance(simulation, GramSimulation)
    if gram_p or gram_s:
        if not (gram_p and gram_s):
            raise ParameterError("gram", "compare a prediction and a simulation that both have the "
                                         "Gram matrix (predict(..., gram=G) with simulate(..., gram=G)), "
                                         "or neither")
        from .comparison_multi import compare_gram

        return compare_gram(prediction, simulation, z=z, rel_tol=rel_tol)
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
    order = int(getattr(prediction, "order", 1))
    if order == 2:
        ratios.update({k: np.asarray(v, dtype=float)[:L] for k, v in prediction.order2_ratios.items()})
    names = tuple(k for k in ALL_CORRELATORS + _ORDER2_MEASURED if k in simulation.values and k in th)
    names += tuple(k for k in tuple(ALL_RATIOS) + _ORDER2_RATIOS if k in simulation.ratios and k in ratios)
    theory, measured, errors, zs, rels, verdict = {}, {}, {}, {}, {}, {}
    for name in names:
        if name in ALL_RATIOS or name in _ORDER2_RATIOS:
            theory[name] = ratios[name]
            measured[name] = np.asarray(simulation.ratios[name], dtype=float)
            errors[name] = np.asarray(simulation.ratio_errors[name], dtype=float)
        else:
            theory[name] = th[name]
            measured[name] = np.asarray(simulation.values[name], dtype=float)
            errors[name] = np.asarray(simulation.errors[name], dtype=float)
        zs[name], rels[name], verdict[name] = verdicts(theory[name], measured[name], errors[name], z, rel_tol)
    chi2 = {name: _chi2(measured[name], theory[name], errors[name]) for name in names}
    series = {}
    if order == 2 and not extrapolated:
        fw2 = prediction.finite_width(None if same else sim_net.width, order=2)
        n = np.full(L, float(sim_net.width))
        n[0] = sim_net.input_dim
        v = {k: np.asarray(prediction.values[k], dtype=float)[:L] for k in ("V", "V1")}
        second = {"K": np.asarray(fw2["E[z^2]"], dtype=float)[:L], "V": v["V"] + v["V1"] / n}
        for name, th2 in second.items():
            if name not in names:
                continue
            z2, _, verdict2 = verdicts(th2, measured[name], errors[name], z, rel_tol)
            series[name] = {"theory": th2, "z": z2, "verdict": verdict2}
            chi2[name]["1/n^2"] = _chi2(measured[name], th2, errors[name])["1/n"]
    fits = _fit_table(simulation.extrapolation, names) if extrapolated else {}
    per_width = ()
    if extrapolated:
        per_width = tuple(compare(prediction, s, z=z, rel_tol=rel_tol)
                          for s in simulation.extrapolation.per_width)
    return Comparison(network=sim_net, basis=basis, widths=widths, samples=int(simulation.samples),
                      seed=int(simulation.seed), z=z, rel_tol=rel_tol,
                      layers=np.asarray(simulation.layers), names=names, theory=theory,
                      measured=measured, errors=errors, zscores=zs, rel_errors=rels,
                      verdicts=verdict, per_width=per_width, notes=tuple(notes), input_norm=q_sim,
                      order=order, series=series, chi2=chi2, fits=fits)


def _chi2(measured, theory, se):
    """{"1/n": sum ((measured - theory)/SE)^2, "layers": k} over the layers with a finite,
    positive SE and finite values."""
    measured, theory, se = (np.asarray(a, dtype=float) for a in (measured, theory, se))
    ok = np.isfinite(measured) & np.isfinite(theory) & np.isfinite(se) & (se > 0)
    return {"1/n": float(np.sum(((measured[ok] - theory[ok]) / se[ok]) ** 2)), "layers": int(ok.sum())}


def _exact_zero(chi2, dof):
    """chi^2 with the round-off of fits without degrees of freedom (through every point) set to 0."""
    return np.where(np.asarray(dof) == 0, 0.0, np.asarray(chi2, dtype=float))


def _fit_table(extrapolation, names):
    """{name: {"terms", "chi2_linear", "p_linear", "chi2_quadratic", "p_quadratic"}} from an
    :class:`fwtheory.mc.Extrapolation` (NaN where a fit is missing)."""
    fits = getattr(extrapolation, "fits", None) or {}
    models = getattr(extrapolation, "model", None) or {}
    out = {}
    for name in names:
        f = fits.get(name)
        if not f or f.get("linear") is None:
            continue
        lin, quad = f["linear"], f.get("quadratic")
        L = len(lin["c0"])
        nan = np.full(L, np.nan)
        out[name] = {"terms": np.asarray(models.get(name, np.full(L, 2)), dtype=int),
                     "chi2_linear": _exact_zero(lin["chi2"], lin["dof"]),
                     "dof_linear": np.asarray(lin["dof"], dtype=int),
                     "p_linear": np.asarray(lin["p"], dtype=float),
                     "chi2_quadratic": nan if quad is None else _exact_zero(quad["chi2"], quad["dof"]),
                     "dof_quadratic": np.zeros(L, dtype=int) if quad is None else np.asarray(quad["dof"], dtype=int),
                     "p_quadratic": nan if quad is None else np.asarray(quad["p"], dtype=float)}
    return out
