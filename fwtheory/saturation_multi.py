"""Several inputs: depth behaviour of the normalized multi-input 1/n coefficients.

``saturation(..., gram=G)`` and ``fwtheory saturation --gram ...`` land here.
The leading-order theory ``predict(network, gram=G)`` (docs/multi_input.md,
PDLT arXiv:2106.10165 Ch. 4, 8 with sample indices) is evaluated far beyond the
requested depth and every normalized coefficient is classified with the
single-input rule (:func:`fwtheory.depth_saturation.classify_depth_behaviour`).

The ratios
----------
Each sample index of a 1/n coefficient sits on a preactivation slot (z) or an
NTK slot (H); the coefficient is divided by sqrt(K_aa) for every z slot with
index a and by sqrt(Theta_aa) for every H slot with index a:

    G1_ab / sqrt(K_aa K_bb),                Theta1_ab / sqrt(Theta_aa Theta_bb),
    V_abcd / sqrt(K_aa K_bb K_cc K_dd),     A_abcd, B_abcd / sqrt(Theta_aa Theta_bb Theta_cc Theta_dd),
    D_abcd, F_abcd / sqrt(Theta_aa Theta_bb K_cc K_dd)

(H slots: a, b of D, F, A, B and c, d of A, B). With one input (or a = b = c = d)
these are the single-input ratios G1/K, Theta1/Theta, V/K^2, A/Theta^2,
B/Theta^2, D/(K Theta), F/(K Theta) of :mod:`fwtheory.quantities`; e.g.
V_abab / (K_aa K_bb) is the connected four-point vertex of the pair (a, b) in
units of the diagonal kernel. One ratio per canonical index tuple (the
symmetries of the definitions identify the other entries). Labels such as
"V_0101" name the ratio of the entry V_0101.

Kinked activations (ReLU, leaky ReLU, ...): the multi-input Gaussian
expectations of sigma's Dirac-delta derivatives go through the inverse of the
kernel block, and lose precision as the inputs' correlation
rho_ab = K_ab / sqrt(K_aa K_bb) approaches +-1 (measured for ReLU, cos 0.5:
G1_01 shows all 16 digits at l = 30, 1 - rho = 0.027; quantized to 2^-8 at l = 80,
1 - rho = 0.005; garbage beyond l ~ 150). For a kinked activation the
classification therefore uses only the layers with 1 - |rho_ab| >= 0.02 for
every pair (never fewer than the requested depth, with a note when the
requested depth goes beyond them), and the cosine scan leaves such points out
(NaN, with a note).

A ratio is "zero" when |r(l)| <= 1e-9 l at every layer (round-off of a
dimensionless O(1) quantity accumulated over l layers; e.g. ReLU's G1), the
multi-input recursions having no term-scale error bound.

Checks with known answers (tests/test_saturation.py): a deep linear network
(C_b = 0, C_W = 1, Gaussian weights) has K_ab = G_ab at every layer and
V_abab / (K_aa K_bb) = (l - 1)(1 + cos^2 theta) exactly (the Gaussian recursion
V' = C_W^2 V + C_W^2 (K_ac K_bd + K_ad K_bc), PDLT eq. (4.90) with sample
indices, linear sigma), "growing" with slope 1 + cos^2 theta; with Haar-orthogonal
weights tanh's ratios saturate (Day, Kahn, Roberts arXiv:2310.07765 for one input).

Finite-width correction against the input cosine: for the first two inputs with
norms G_00, G_11 and cosine c, :func:`cosine_scan` evaluates V_0101/(K_00 K_11),
G1_01/sqrt(K_00 K_11) (the relative 1/n correction of the kernel between the
two inputs) and A_0101/(Theta_00 Theta_11) at a few depths over a grid of c.
"""

__all__ = ["saturation_gram", "GramSaturationReport", "gram_ratios", "cosine_scan", "DEFAULT_COSINES"]

import time
from dataclasses import dataclass, field

import numpy as np

from .errors import FwtheoryError, NumericalError, ParameterError, PrecisionLoss

# preactivation (z) or NTK (H) slot of every index
SLOTS = {"G1": "zz", "Theta1": "HH", "V": "zzzz", "A": "HHHH", "B": "HHHH", "D": "HHzz", "F": "HHzz"}
ORDER = ("V", "G1", "Theta1", "A", "B", "D", "F")
DEFAULT_COSINES = (-0.9, -0.6, -0.3, 0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)
COSINE_RATIOS = (("V", (0, 1, 0, 1)), ("G1", (0, 1)), ("A", (0, 1, 0, 1)))
ZERO_PER_LAYER = 1e-9
RHO_GAP = 0.02        # kinked activations: layers with 1 - |rho_ab| < RHO_GAP lose precision
MIN_EXTENDED_GRAM = 1000


def components(m):
    """Canonical index tuples per correlator (as the multi-input sampler stores them)."""
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    out = {k: pairs for k in ("G1", "Theta1")}
    out["V"] = out["A"] = [P + Q for i, P in enumerate(pairs) for Q in pairs[i:]]
    out["D"] = [P + Q for P in pairs for Q in pairs]
    out["F"] = out["B"] = [P + (c, d) for P in pairs for c in range(m) for d in range(m)]
    return out


def ratio_label(name, idx):
    """("V", (0, 1, 0, 1)) -> "V_0101"."""
    return f"{name}_{''.join(str(a) for a in idx)}"


def ratio_definition(name, idx):
    """Human-readable definition, e.g. "V_0101 / (K_00 K_11)"."""
    count = {}
    for slot, a in zip(SLOTS[name], idx):
        key = ("K" if slot == "z" else "Theta", a)
        count[key] = count.get(key, 0) + 1
    factors = []
    for (sym, a), k in sorted(count.items()):
        base = f"{sym}_{a}{a}"
        factors.append(base if k == 2 else f"{base}^{k // 2}" if k % 2 == 0 else f"{base}^({k}/2)")
    if len(factors) == 1:
        return f"{ratio_label(name, idx)} / {factors[0]}"
    return f"{ratio_label(name, idx)} / ({' '.join(factors)})"


def gram_ratios(prediction):
    """{label: (L,) array} of every normalized coefficient (module docstring) of a
    :class:`~fwtheory.prediction_multi.GramPrediction`."""
    K, T = np.asarray(prediction.values["K"], float), np.asarray(prediction.values["Theta"], float)
    m = K.shape[1]
    dk = np.sqrt(np.einsum("laa->la", K))
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = np.sqrt(np.einsum("laa->la", T))
        out = {}
        comps = components(m)
        for name in ORDER:
            X = np.asarray(prediction.values[name], float)
            for idx in comps[name]:
                norm = np.ones(K.shape[0])
                for slot, a in zip(SLOTS[name], idx):
                    norm = norm * (dk[:, a] if slot == "z" else dt[:, a])
                out[ratio_label(name, idx)] = X[(slice(None),) + idx] / norm
    return out


def _names(m):
    comps = components(m)
    return tuple(ratio_label(n, i) for n in ORDER for i in comps[n])


def _definitions(m):
    comps = components(m)
    return {ratio_label(n, i): ratio_definition(n, i) for n in ORDER for i in comps[n]}


def cosine_scan(network, gram, cosines=DEFAULT_COSINES, depths=None):
    """{"cosines", "depths", "values": {label: ndarray (len(depths), len(cosines))}, "notes"}:
    the ratios of :data:`COSINE_RATIOS` for two inputs with the norms G_00, G_11 of
    ``gram`` and cosine c, at the given depths (default: ~L/8, L/4, L/2, L).
    Cosines whose prediction fails (NaN entries) are named in "notes"."""
    from .prediction import predict

    G = np.asarray(gram, float)
    L = network.depth
    if depths is None:
        depths = sorted({max(2, round(L / 8)), max(2, L // 4), max(2, L // 2), L} & set(range(1, L + 1)))
    depths = [int(d) for d in depths]
    cosines = [float(c) for c in cosines]
    if any(not -1.0 <= c <= 1.0 for c in cosines):
        raise ParameterError("cosines", "must lie in [-1, 1]")
    q0, q1 = float(G[0, 0]), float(G[1, 1]) if G.shape[0] > 1 else float(G[0, 0])
    values = {ratio_label(n, i): np.full((len(depths), len(cosines)), np.nan) for n, i in COSINE_RATIOS}
    notes = []
    for j, c in enumerate(cosines):
        g = [[q0, c * np.sqrt(q0 * q1)], [c * np.sqrt(q0 * q1), q1]]
        try:
            pred = predict(network, gram=g)
            r = gram_ratios(pred)
        except FwtheoryError as exc:
            notes.append(f"cosine {c:g}: {exc}")
            continue
        for key in values:
            values[key][:, j] = [r[key][d - 1] for d in depths]
        if _kinked(network.activation):
            gap = _correlation_gap(pred)
            lost = [d for d in depths if gap[d - 1] < RHO_GAP]
            for key in values:
                values[key][[depths.index(d) for d in lost], j] = np.nan
            if lost:
                notes.append(f"cosine {c:g}: left out at layers {', '.join(map(str, lost))} "
                             f"(1 - |rho| < {RHO_GAP:g}: kinked activation, precision lost)")
    return {"cosines": cosines, "depths": depths, "values": values, "norms": (q0, q1), "notes": notes}


@dataclass(frozen=True)
class GramSaturationReport:
    """Result of :func:`saturation_gram`.

    Attributes
    ----------
    parameters : dict
    gram : ndarray (m, m)
    ensembles : tuple of str
    names : tuple of str
        Ratio labels ("V_0101", ...), definitions in ``definitions``.
    definitions : dict[str, str]
    theory : dict[ensemble, GramPrediction]
        To the extended depth.
    ratios : dict[ensemble, dict[label, ndarray]]
    behaviour : dict[ensemble, dict[label, DepthBehaviour]]
    cosine : dict[ensemble, dict]
        :func:`cosine_scan` per ensemble (two or more inputs).
    elapsed : float
    notes : tuple of str
    """

    parameters: dict
    gram: np.ndarray
    ensembles: tuple
    names: tuple
    definitions: dict
    theory: dict
    ratios: dict
    behaviour: dict
    cosine: dict
    elapsed: float = 0.0
    notes: tuple = field(default_factory=tuple)

    @property
    def depth(self):
        return int(self.parameters["depth"])

    def __repr__(self):
        return (f"GramSaturationReport({self.title()}; {len(self.names)} ratios, "
                f"{', '.join(self.ensembles)})")

    def title(self):
        p = self.parameters
        gram = ";".join(",".join(f"{v:g}" for v in row) for row in self.gram)
        return (f"{p['activation']}, C_b={p['C_b']:g}, C_W={p['C_W']:g}, lambda_b={p['lambda_b']:g}, "
                f"lambda_W={p['lambda_W']:g}, depth {p['depth']}, gram {gram}")

    def table(self):
        """One row per ratio, one column per ensemble; then the cosine scan."""
        from ._io import format_table
        from .depth_saturation import _short

        rows = [[self.definitions[n]] + [_short(self.behaviour[e][n]) for e in self.ensembles]
                for n in self.names]
        ext = ", ".join(f"{e} {len(self.ratios[e][self.names[0]])}" for e in self.ensembles)
        lines = [f"# {self.title()}",
                 f"# several inputs: classified from the leading-order theory to depth {ext} "
                 "(rule: fwtheory.depth_saturation docstring; ratios: fwtheory.saturation_multi)",
                 format_table(["ratio (x 1/n)"] + list(self.ensembles), rows, align="left")]
        for ens in self.ensembles:
            scan = self.cosine.get(ens)
            if not scan:
                continue
            lines.append(f"# {ens}: finite-width ratios of two inputs (norms {scan['norms'][0]:g}, "
                         f"{scan['norms'][1]:g}) against their cosine")
            head = ["ratio", "layer"] + [f"c={c:g}" for c in scan["cosines"]]
            body = [[_cos_label(k), d] + [float(f"{v:.4g}") for v in vals[i]]
                    for k, vals in scan["values"].items() for i, d in enumerate(scan["depths"])]
            lines.append(format_table(head, body))
        lines += [f"# note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self):
        """Plain JSON: parameters, rule, per ensemble and ratio the definition,
        classification and theory curve over the requested depth; the cosine scan."""
        from . import __version__
        from ._io import to_jsonable
        from .depth_saturation import BAND, CONVERGING, LINEAR_TOL, _rule_text

        out = {"fwtheory_version": __version__, "parameters": dict(self.parameters), "gram": self.gram.tolist(),
               "ensembles": list(self.ensembles), "ratios": list(self.names),
               "definitions": dict(self.definitions),
               "rule": {"band": BAND, "linear_exponent_tol": LINEAR_TOL, "converging_exponent": CONVERGING,
                        "zero": f"|r(l)| <= {ZERO_PER_LAYER:g} l at every layer", "text": _rule_text()},
               "extended_depth": {e: int(len(self.ratios[e][self.names[0]])) for e in self.ensembles},
               "layers": list(range(1, self.depth + 1)), "results": {}, "cosine_scan": {},
               "elapsed_seconds": self.elapsed, "notes": list(self.notes)}
        for ens in self.ensembles:
            out["results"][ens] = {n: {"definition": self.definitions[n],
                                       "behaviour": self.behaviour[ens][n].to_dict(),
                                       "theory": self.ratios[ens][n][:self.depth]} for n in self.names}
            if self.cosine.get(ens):
                scan = self.cosine[ens]
                out["cosine_scan"][ens] = {"cosines": scan["cosines"], "depths": scan["depths"],
                                           "norms": list(scan["norms"]),
                                           "values": {_cos_label(k): v for k, v in scan["values"].items()},
                                           "notes": scan["notes"]}
        return to_jsonable(out)

    def plot(self, path):
        """PNG (atomically): one panel per correlator and ensemble, the normalized
        ratios of every index tuple against layer (requested depth)."""
        from .plotting import Panel, Series, write_panels

        layers = np.arange(1, self.depth + 1)
        panels = []
        for name in ORDER:
            for ens in self.ensembles:
                labels = [n for n in self.names if n.split("_")[0] == name]
                series = [Series(f"{n}: {_kind(self.behaviour[ens][n])}", layers, self.ratios[ens][n][:self.depth],
                                 color=_COLORS[i % len(_COLORS)]) for i, n in enumerate(labels)]
                panels.append(Panel(title=f"{name} ({ens}), normalized", ylabel=f"{name} ratio (x 1/n)",
                                    series=series))
        return write_panels(path, panels, title=self.title() + "; leading-order theory",
                            ncols=2 * len(self.ensembles) if len(self.ensembles) < 3 else len(self.ensembles))

    def plot_cosine(self, path):
        """PNG (atomically): the ratios of :data:`COSINE_RATIOS` against the input
        cosine, one line per depth; one panel per ratio and ensemble."""
        from .plotting import Panel, Series, write_panels

        panels = []
        for ens in self.ensembles:
            scan = self.cosine.get(ens)
            if not scan:
                continue
            for key, vals in scan["values"].items():
                series = [Series(f"layer {d}", scan["cosines"], vals[i], color=_COLORS[i % len(_COLORS)])
                          for i, d in enumerate(scan["depths"])]
                series += [Series(None, scan["cosines"], vals[i], style="points", color=_COLORS[i % len(_COLORS)])
                           for i in range(len(scan["depths"]))]
                panels.append(Panel(title=f"{_cos_label(key)} ({ens})", ylabel=f"{_cos_label(key)} (x 1/n)",
                                    series=series))
        return write_panels(path, panels, title=self.title() + "; finite-width ratios against input cosine",
                            xlabel="cosine of the two inputs", ncols=len(COSINE_RATIOS))

    def write(self, out_dir=".", stem="saturation_gram"):
        """Write ``<stem>.png`` (ratios against layer), ``<stem>_cosine.png`` (against
        the input cosine, two or more inputs) and ``<stem>.json`` into ``out_dir``
        (atomically); return the paths written."""
        import os

        from ._io import atomic_write_text, dumps_json

        paths = [self.plot(os.path.join(out_dir, f"{stem}.png"))]
        if any(self.cosine.get(e) for e in self.ensembles):
            paths.append(self.plot_cosine(os.path.join(out_dir, f"{stem}_cosine.png")))
        js = os.path.join(out_dir, f"{stem}.json")
        atomic_write_text(js, dumps_json(self.to_dict()) + "\n")
        return tuple(paths) + (js,)


_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
           "tab:gray", "tab:olive", "tab:cyan", "black", "gold"]


def _kind(b):
    from .depth_saturation import _short

    return _short(b)


def _cos_label(key):
    name, idx = key.split("_")
    return ratio_definition(name, tuple(int(c) for c in idx))


def _kinked(activation):
    from .gauss_multi import max_regular_derivative

    return max_regular_derivative(activation) < 3


def _correlation_gap(prediction):
    """min over pairs a < b of 1 - |K_ab| / sqrt(K_aa K_bb), per layer (inf for one input)."""
    K = np.asarray(prediction.values["K"], float)
    m = K.shape[1]
    gap = np.full(K.shape[0], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(m):
            for b in range(a + 1, m):
                gap = np.minimum(gap, 1.0 - np.abs(K[:, a, b]) / np.sqrt(K[:, a, a] * K[:, b, b]))
    return gap


def _precise_layers(prediction, depth, notes):
    """Number of leading layers to classify from (module docstring, kinked activations)."""
    L = len(prediction.layers)
    if not _kinked(prediction.network.activation):
        return L
    bad = np.flatnonzero(~(_correlation_gap(prediction) >= RHO_GAP))
    if not bad.size:
        return L
    good = int(bad[0])
    cut = max(good, depth, 8)
    if cut < L:
        ens = prediction.network.ensemble
        notes.append(f"{ens}: 1 - |rho_ab| < {RHO_GAP:g} from layer {good + 1} (kinked activation: the "
                     f"multi-input expectations lose precision); classified from layers 1..{cut}"
                     + (f"; the values beyond layer {good} are imprecise" if cut > good else ""))
    return min(cut, L)


def _extended(network, gram, depth, extended, notes):
    """predict(gram) to ``extended`` layers, halving on overflow (never below depth)."""
    from .prediction import predict

    L = extended
    while True:
        try:
            return predict(network.replace(depth=L), gram=gram)
        except PrecisionLoss as exc:      # kinked activations, inputs correlating with depth
            if exc.valid_layers < 8:
                raise
            notes.append(f"{network.ensemble}: the theory loses precision beyond layer {exc.valid_layers} "
                         f"(prediction_multi round-off estimate); classified from layers 1..{exc.valid_layers}")
            L = exc.valid_layers
            continue
        except NumericalError as exc:
            smaller = max(L // 2, depth)
            if smaller == L or smaller < 8:
                raise
            reason = str(exc) if len(str(exc)) <= 100 else str(exc)[:97] + "..."
            notes.append(f"{network.ensemble}: theory failed at depth {L} ({reason}); classified from "
                         f"depth {smaller}")
            L = smaller


def saturation_gram(activation="tanh", C_b=0.0, C_W=1.0, width=64, depth=50, gram=((1.0, 0.5), (0.5, 1.0)),
                    ensembles=("gaussian", "orthogonal"), lambda_b=0.0, lambda_W=1.0, extended_depth=None,
                    cosines=DEFAULT_COSINES, cosine_depths=None):
    """Classify the depth behaviour of every normalized multi-input 1/n coefficient.

    Parameters as in :func:`fwtheory.depth_saturation.saturation` (theory only);
    ``gram`` the m x m input Gram matrix (m <= 4); ``extended_depth`` defaults to
    min(max(40 depth, 1000), 20000); ``cosines`` and ``cosine_depths`` the grid of
    :func:`cosine_scan` (two or more inputs; ``cosines=()`` skips it).

    Returns
    -------
    GramSaturationReport
        ``.table()``, ``.to_dict()``, ``.plot(path)``, ``.plot_cosine(path)``, ``.write(out_dir)``.
    """
    from .depth_saturation import check_scan, classify_depth_behaviour
    from .gram import check_gram
    from .network import Network

    start = time.monotonic()
    depth, width, ensembles, extended = check_scan(depth, width, ensembles, extended_depth,
                                                   min_width=1, min_extended=MIN_EXTENDED_GRAM)
    base = {e: Network(activation, depth=depth, width=width, C_b=C_b, C_W=C_W, lambda_b=lambda_b,
                       lambda_W=lambda_W, ensemble=e) for e in ensembles}
    G = check_gram(gram, base[ensembles[0]])
    m = G.shape[0]
    notes = []
    theory = {e: _extended(net, G, depth, extended, notes) for e, net in base.items()}
    ratios = {}
    for e, p in theory.items():
        keep = _precise_layers(p, depth, notes)
        ratios[e] = {k: v[:keep] for k, v in gram_ratios(p).items()}
    names = _names(m)
    behaviour = {}
    for e in ensembles:
        layers = np.arange(1, len(ratios[e][names[0]]) + 1)
        noise = ZERO_PER_LAYER * layers.astype(float)
        behaviour[e] = {n: classify_depth_behaviour(layers, ratios[e][n], depth=depth, noise=noise) for n in names}
    cosine = {}
    if m >= 2 and len(cosines):
        for e, net in base.items():
            cosine[e] = cosine_scan(net, G, cosines, cosine_depths)
            notes += [f"{e}: {n}" for n in cosine[e]["notes"]]
    parameters = dict(activation=base[ensembles[0]].activation.name, C_b=float(C_b), C_W=float(C_W),
                      lambda_b=float(lambda_b), lambda_W=float(lambda_W), width=width, depth=depth)
    return GramSaturationReport(parameters=parameters, gram=G, ensembles=ensembles, names=names,
                                definitions=_definitions(m), theory=theory, ratios=ratios, behaviour=behaviour,
                                cosine=cosine, elapsed=time.monotonic() - start, notes=tuple(notes))

