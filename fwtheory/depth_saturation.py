"""Depth behaviour of the dimensionless 1/n correlators: growing, saturating or decaying.

For every ratio of :data:`fwtheory.quantities.ALL_RATIOS` (V/K^2, G1/K, ...,
and the dNTK/ddNTK ratios P/Theta^2, ..., U K/Theta^3; each the coefficient of
1/n, n = n_{l-1}) and every weight ensemble,
:func:`saturation` evaluates the leading-order theory far beyond the requested
depth (default: 40 x depth, at least 2000 layers; cheap) and classifies the
curve r(l) with :func:`classify_depth_behaviour`. Optionally a short Monte
Carlo run adds measured points with error bars and a verdict, and for every
ratio it misses a width scan (widths n/2, n, 2n; :mod:`fwtheory.width_scan`)
tells a next-order (1/n^2) effect from a theory that disagrees.

Expected for tanh at criticality (C_b = 0, C_W = 1; docs/references.md
items 5, 6, 11): Gaussian weights, V/K^2 -> (2/3) l (PDLT arXiv:2106.10165
Sec. 5.4.2); Haar-orthogonal weights, V/K^2 -> -2, depth-independent at
leading order, and the NTK correlators saturate or decay by a depth of ~20
(Day, Kahn, Roberts, arXiv:2310.07765). Found with the rule below: Gaussian
slope 0.6665 +- 0.0002 per layer; orthogonal asymptote -2.000, within 5% from
layer 19; Gaussian D/(K Theta) ~ -0.254 ln l (expected: -(1/4) ln l).

Classification rule
-------------------
Let L be the extended depth, S = max_l |r(l)| over l = 1..L, and x0, x1, x2 the
values at l = L/4, L/2, L (integer division), with increments d1 = x1 - x0,
d2 = x2 - x1. Over one doubling of depth, r ~ l^p gives d2/d1 = 2^p, r ~ ln l
gives d2/d1 = 1 and r -> a + b l^(-q) gives d2/d1 = 2^(-q). Hence, in order:

1. "undefined" if r(l) is not finite at some l <= max(depth, 8) (e.g. Theta = 0
   makes the NTK ratios 0/0); non-finite values deeper than that (e.g. Theta^3
   underflowing in an ordered phase) shorten L to the finite prefix;
2. "zero" if |r(l)| <= e(l) at every l <= L, where e(l) is the error bound of
   r(l) accumulated in the recursion from the magnitudes of the terms summed
   (:mod:`fwtheory._termscale`: each step adds 1e-12 times the term scale of
   its source and coupling terms, and carries the earlier error through
   |M_l|); the curve is then zero at this order, and what predict returns is
   round-off (ReLU's G1 and Theta1: |r|/e < 1e-4; tanh's G1: > 1e10). A
   curve given without error bounds is zero only when exactly 0;
3. settled: if |d2| <= 1e-9 S, the curve has converged (exponentially fast) to
   a = x2; go to 5;
4. growth exponent p = log2(d2/d1) when d1 d2 > 0:

   * |p - 1| <= 0.15: "growing" (linear). The slope per layer is
     the least-squares slope over l in [L/2, L]; its uncertainty is the change
     |slope[L/2, L] - slope[L/4, L/2]| (the curvature left, a systematic
     error: the theory has no noise). ``window_slope`` is the same fit over the
     second half of the requested depth, the slope seen at that depth.
   * p > 1.15: "growing (faster than linear)".
   * -0.15 < p < 0.85: "growing (slower than linear)"; for |p| < 0.15 the curve
     is logarithmic and ``log_coefficient`` c = d2 / ln 2 gives r ~ c ln l.
   * otherwise (p <= -0.15, or d1 d2 <= 0) the increments shrink: go to 5.
5. asymptote a: Aitken's delta-squared extrapolation of (x0, x1, x2),
   a = x2 - d2^2 / (d2 - d1) (exact for a + b l^(-q), any q > 0), or a = x2 when
   the increments change sign or vanish; its uncertainty is |a - x2|.
   "decaying" (-> 0) if |x2| < |x1| and (|a| <= 0.05 S or a x2 < 0, i.e. the
   extrapolation reaches zero); the decay depth is the first depth after which
   |r| stays <= 0.05 S. Otherwise "saturating" with asymptote a and saturation
   depth = the first depth after which r stays within 5% of a,
   |r(l) - a| <= 0.05 |a| for every l up to L (None if it never does by L).

The extended depth is lowered (halved until it works, never below the
requested depth) when the theory overflows, e.g. in a chaotic phase.

Several inputs (``gram=G``): the normalized multi-input coefficients, e.g.
V_abab/(K_aa K_bb), classified with the same rule, and the finite-width ratios
against the input cosine (:mod:`fwtheory.saturation_multi`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .activations import Activation
    from .saturation_multi import GramSaturationReport

__all__ = ["saturation", "SaturationReport", "DepthBehaviour", "MonteCarloCheck",
           "classify_depth_behaviour", "saturation_depth", "BAND"]

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._io import format_table
from .errors import FwtheoryError, NumericalError, ParameterError, check_int, check_real
from .network import DERIVED_ENSEMBLES as ENSEMBLES   # the ensembles predict() has recursions for
from .network import Network
from .quantities import RATIOS

BAND = 0.05                  # "within 5%" of the asymptote (or of the peak, for decay)
LINEAR_TOL = 0.15            # |p - 1| <= LINEAR_TOL: linear growth
CONVERGING = -0.15           # p <= CONVERGING: increments shrink, the curve converges
SETTLED = 1e-9               # |d2| <= SETTLED * S: converged
MIN_EXTENDED = 2000
EXTENDED_FACTOR = 40
MAX_EXTENDED = 20000
DEFAULT_SAMPLES = 2000
VALIDITY_RATIO = 0.25        # shaded on the plots: l/n beyond this, next-order terms are sizeable

GROWING = "growing"
GROWING_SLOWER = "growing (slower than linear)"
GROWING_FASTER = "growing (faster than linear)"
SATURATING = "saturating"
DECAYING = "decaying"
ZERO_KIND = "zero"
UNDEFINED = "undefined"


# ------------------------------------------------------------------ curves
def saturation_depth(layers, values, target, band=BAND, scale=None):
    """First layer after which ``values`` stay within ``band * scale`` of ``target``.

    ``scale`` defaults to |target|. Returns None when the last point is outside
    the band (the curve has not settled within the layers given).
    """
    layers = np.asarray(layers)
    values = np.asarray(values, dtype=float)
    scale = abs(target) if scale is None else scale
    outside = ~(np.abs(values - target) <= band * scale)
    if not outside.any():
        return int(layers[0])
    last = int(np.flatnonzero(outside)[-1])
    return None if last == len(values) - 1 else int(layers[last + 1])


def _slope(layers, values, lo, hi):
    """Least-squares slope of values over lo <= layer <= hi."""
    sel = (layers >= lo) & (layers <= hi)
    if sel.sum() < 2:
        return float("nan")
    return float(np.polyfit(layers[sel].astype(float), values[sel], 1)[0])


@dataclass(frozen=True)
class DepthBehaviour:
    """Classification of one ratio curve r(l) (see the module docstring for the rule).

    ``kind`` is one of "growing", "growing (slower than linear)",
    "growing (faster than linear)", "saturating", "decaying", "zero",
    "undefined". Fields that do not apply to a kind are None.
    """

    kind: str
    extended_depth: int
    growth_exponent: float = None      # p from the last two doublings
    slope: float = None                # per layer, over [L/2, L] (linear growth)
    slope_err: float = None
    window_slope: float = None         # over the second half of the requested depth
    log_coefficient: float = None      # r ~ c ln l (logarithmic growth)
    asymptote: float = None
    asymptote_err: float = None
    saturation_depth: int = None       # saturating: within 5% of a; decaying: |r| <= 5% of peak
    peak: float = None                 # S = max |r|
    peak_layer: int = None             # where |r| is largest
    value_at_depth: float = None
    depth: int = None

    @property
    def is_growing(self):
        return self.kind.startswith(GROWING)

    def describe(self):
        """One short line, e.g. "growing, 0.667 +- 0.001 per layer"."""
        k = self.kind
        if k == GROWING:
            return f"growing, {_g(self.slope)} +- {_g(self.slope_err, 1)} per layer"
        if k == GROWING_SLOWER:
            if self.log_coefficient is not None:
                return f"growing (slower than linear, ~ {_g(self.log_coefficient)} ln l)"
            return f"growing (slower than linear, ~ l^{self.growth_exponent:.2f})"
        if k == GROWING_FASTER:
            return (f"growing (faster than linear, ~ l^{self.growth_exponent:.2f} "
                    f"near l={self.extended_depth})")
        if k == SATURATING:
            where = (f"not within 5% by layer {self.extended_depth}" if self.saturation_depth is None
                     else f"within 5% from layer {self.saturation_depth}")
            return f"saturating -> {_g(self.asymptote)} ({where})"
        if k == DECAYING:
            where = (f"peak at layer {self.peak_layer}, still above 5% of it at layer {self.extended_depth}"
                     if self.saturation_depth is None
                     else f"below 5% of its peak from layer {self.saturation_depth}")
            return f"decaying -> 0 ({where})"
        if k == ZERO_KIND:
            return "identically 0 at this order"
        return "undefined (non-finite values)"

    def to_dict(self):
        from ._io import to_jsonable

        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["description"] = self.describe()
        return to_jsonable(d)


def _g(x, digits=4):
    if x is None or not np.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if digits > 1 else f"{x:.1g}"


def classify_depth_behaviour(layers, values, depth=None, band=BAND, noise=None):
    """Classify the curve ``values`` (layers 1..L, contiguous) as growing,
    saturating, decaying, zero or undefined; see the module docstring.

    ``depth`` (<= L) is the depth of interest: ``window_slope`` and
    ``value_at_depth`` refer to it. ``noise`` (optional, shape (L,)) is the
    per-layer error bound of ``values`` (rule 2); without it only an exactly
    zero curve is "zero". Needs L >= 8.
    """
    layers = np.asarray(layers)
    r = np.asarray(values, dtype=float)
    noise = None if noise is None else np.asarray(noise, dtype=float)
    L = int(layers[-1])
    if len(r) != len(layers) or len(r) < 8 or not np.array_equal(layers, np.arange(1, L + 1)):
        raise ParameterError("layers", "need the contiguous layers 1..L with L >= 8")
    depth = L if depth is None else int(depth)
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:         # e.g. Theta^3 underflowing to 0 deep in an ordered phase
        L = int(bad[0])  # classify the finite prefix when it covers the depth of interest
        if L < max(depth, 8):
            return DepthBehaviour(UNDEFINED, extended_depth=L, depth=depth)
        layers, r = layers[:L], r[:L]
        noise = None if noise is None else noise[:L]
    common = dict(extended_depth=L, depth=depth)
    S = float(np.max(np.abs(r)))
    common.update(peak=S, peak_layer=int(layers[np.argmax(np.abs(r))]), value_at_depth=float(r[depth - 1]))
    if noise is not None:
        from ._termscale import within_bound     # the shared zero test (imports the quadrature)

        zero = bool(np.all(within_bound(r, noise)))
    else:
        zero = False
    if S == 0.0 or zero:
        return DepthBehaviour(ZERO_KIND, asymptote=0.0, asymptote_err=0.0, saturation_depth=1, **common)
    x0, x1, x2 = r[L // 4 - 1], r[L // 2 - 1], r[L - 1]
    d1, d2 = x1 - x0, x2 - x1
    window = _slope(layers, r, max(1, math.ceil(depth / 2)), depth)
    p = None
    if abs(d2) > SETTLED * S and d1 * d2 > 0:
        p = math.log2(d2 / d1)
        if abs(p - 1.0) <= LINEAR_TOL:
            s_tail = _slope(layers, r, L // 2, L)
            s_prev = _slope(layers, r, L // 4, L // 2)
            return DepthBehaviour(GROWING, growth_exponent=p, slope=s_tail,
                                  slope_err=abs(s_tail - s_prev), window_slope=window, **common)
        if p > 1.0 + LINEAR_TOL:
            return DepthBehaviour(GROWING_FASTER, growth_exponent=p, window_slope=window, **common)
        if p > CONVERGING:
            log_c = d2 / math.log(2.0) if abs(p) < LINEAR_TOL else None
            return DepthBehaviour(GROWING_SLOWER, growth_exponent=p, log_coefficient=log_c,
                                  window_slope=window, **common)
    # converging: Aitken's delta-squared on the doubling sequence
    if abs(d2) <= SETTLED * S or d1 * d2 <= 0 or d2 == d1:
        a = float(x2)
    else:
        a = float(x2 - d2 * d2 / (d2 - d1))
    a_err = abs(a - float(x2))
    if abs(x2) < abs(x1) and (abs(a) <= band * S or a * x2 < 0):
        return DepthBehaviour(DECAYING, growth_exponent=p, asymptote=0.0, asymptote_err=a_err,
                              saturation_depth=saturation_depth(layers, r, 0.0, band, scale=S),
                              **common)
    return DepthBehaviour(SATURATING, growth_exponent=p, asymptote=a, asymptote_err=a_err,
                          saturation_depth=saturation_depth(layers, r, a, band), **common)


# ------------------------------------------------------------ Monte Carlo
@dataclass(frozen=True)
class MonteCarloCheck:
    """Monte Carlo points of one ratio against the theory curve.

    Per layer the rule of :func:`fwtheory.comparison.compare` (|MC - theory| <=
    z SE + rel_tol |theory|). For growing ratios also the least-squares slope
    over the second half of the simulated depth, measured (jackknife SE over
    networks, which keeps the correlation between layers) and theory.
    """

    layers_compared: int
    layers_agree: int
    failed_layers: tuple
    slope: float = None
    slope_err: float = None
    theory_slope: float = None
    slope_window: tuple = None
    slope_agrees: bool = None
    theory_zero: bool = False          # the theory value is 0 at this order (MC checked against 0)

    @property
    def verdict(self):
        if self.layers_compared == 0:
            return "n/a"
        ok = self.layers_agree == self.layers_compared and self.slope_agrees is not False
        return "agree" if ok else "disagree"

    def describe(self):
        """Compact summary, e.g. "50/50 ok; slope 0.84+-0.11 vs 0.66 ok"."""
        if self.layers_compared == 0:
            return "n/a"
        text = f"{self.layers_agree}/{self.layers_compared} ok"
        if self.theory_zero:
            text = f"{self.layers_agree}/{self.layers_compared} consistent with 0"
        if self.failed_layers:
            text += f" (1st miss l={self.failed_layers[0]})"
        if self.slope is not None and np.isfinite(self.slope):
            mark = "ok" if self.slope_agrees else "OFF"
            text += (f"; slope {_g(self.slope, 3)}+-{_g(self.slope_err, 2)} "
                     f"vs {_g(self.theory_slope, 3)} {mark}")
        return text

    def to_dict(self):
        from ._io import to_jsonable

        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(verdict=self.verdict, description=self.describe())
        return to_jsonable(d)


def _window(depth):
    return max(1, math.ceil(depth / 2)), depth


def _mc_slope(sim, prediction, name, lo, hi):
    """Least-squares slope of the measured ratio over layers lo..hi, with a
    jackknife SE over networks; falls back to independent per-layer errors."""
    layers = np.asarray(sim.layers)
    sel = (layers >= lo) & (layers <= hi)
    xc = layers[sel] - layers[sel].mean()
    weights = xc / np.sum(xc * xc)          # slope = sum(weights * y)
    try:
        from .mc.estimators import correlators
        from .quantities import ratio_values

        L = len(layers)
        n_prev = np.full(L, float(sim.network.width))
        n_prev[0] = sim.network.input_dim
        K_inf = np.asarray(prediction.values["K"], dtype=float)[:L]
        T_inf = np.asarray(prediction.values["Theta"], dtype=float)[:L]

        def slope_of(m):
            r = ratio_values(correlators(m, n_prev, K_inf, T_inf))[name]
            s = np.sum(r[..., sel] * weights, axis=-1)
            return np.broadcast_to(np.asarray(s)[..., None], r.shape)

        value, se = sim.jackknife(slope_of)
        i = int(np.flatnonzero(sel)[-1])
        return float(value[i]), float(se[i])
    except (ImportError, FwtheoryError, KeyError, AttributeError):
        y = np.asarray(sim.ratios[name], dtype=float)[sel]
        e = np.asarray(sim.ratio_errors[name], dtype=float)[sel]
        return float(np.sum(weights * y)), float(np.sqrt(np.sum((weights * e) ** 2)))


def _check_mc(comparison, sim, prediction, name, behaviour, z, rel_tol):
    verdicts = comparison.verdicts[name]
    if behaviour.kind == ZERO_KIND:      # against 0, not against the round-off predict returns
        m = np.asarray(comparison.measured[name], dtype=float)
        se = np.asarray(comparison.errors[name], dtype=float)
        with np.errstate(invalid="ignore"):
            verdicts = np.where(~(np.isfinite(m) & np.isfinite(se)), "n/a",
                                np.where(np.abs(m) <= z * se, "agree", "disagree"))
        failed = tuple(int(l) for l, v in zip(comparison.layers, verdicts) if v == "disagree")
        return MonteCarloCheck(layers_compared=int(np.sum(verdicts != "n/a")),
                               layers_agree=int(np.sum(verdicts == "agree")), failed_layers=failed,
                               theory_zero=True)
    compared = verdicts != "n/a"
    failed = tuple(int(l) for l, v in zip(comparison.layers, verdicts) if v == "disagree")
    kw = {}
    depth = int(comparison.layers[-1])
    lo, hi = _window(depth)
    if behaviour.is_growing and hi - lo >= 2:
        slope, se = _mc_slope(sim, prediction, name, lo, hi)
        th = _slope(np.asarray(prediction.layers), np.asarray(prediction.ratios[name], dtype=float), lo, hi)
        ok = bool(np.isfinite(slope) and abs(slope - th) <= z * se + rel_tol * abs(th))
        kw = dict(slope=slope, slope_err=se, theory_slope=th, slope_window=(lo, hi), slope_agrees=ok)
    return MonteCarloCheck(layers_compared=int(compared.sum()),
                           layers_agree=int(np.sum(verdicts == "agree")), failed_layers=failed, **kw)


# ------------------------------------------------------------------ report
@dataclass(frozen=True, eq=False)
class SaturationReport:
    """Result of :func:`saturation`.

    Attributes
    ----------
    parameters : dict
        activation, C_b, C_W, lambda_b, lambda_W, width, depth, input_norm.
    ensembles : tuple of str
    names : tuple of str
        The ratios, in :data:`fwtheory.quantities.ALL_RATIOS` order.
    theory : dict[ensemble, Prediction]
        Leading-order theory to the extended depth.
    behaviour : dict[ensemble, dict[name, DepthBehaviour]]
    simulations : dict[ensemble, Simulation or None]
    checks : dict[ensemble, dict[name, MonteCarloCheck]]
        Empty without simulation, and for ratios the simulation does not measure.
    z, rel_tol : float
        Tolerance of the Monte Carlo checks.
    samples, seed : int
    elapsed : float
        Seconds spent.
    notes : tuple of str
    scans : dict[ensemble, dict[name, WidthScan]]
        Width scans of the ratios whose check missed (:mod:`fwtheory.width_scan`).
    """

    parameters: dict
    ensembles: tuple
    names: tuple
    theory: dict
    behaviour: dict
    simulations: dict
    checks: dict
    z: float
    rel_tol: float
    samples: int
    seed: int
    elapsed: float = 0.0
    notes: tuple = field(default_factory=tuple)
    scans: dict = field(default_factory=dict)

    @property
    def depth(self):
        return int(self.parameters["depth"])

    @property
    def simulated(self):
        return any(s is not None for s in self.simulations.values())

    def title(self):
        p = self.parameters
        return (f"{p['activation']}, C_b={p['C_b']:g}, C_W={p['C_W']:g}, lambda_b={p['lambda_b']:g}, "
                f"lambda_W={p['lambda_W']:g}, width {p['width']}, depth {p['depth']}")

    def table(self):
        """Side-by-side text table: one row per ratio, one column group per ensemble."""
        head = ["ratio (x 1/n)"]
        for ens in self.ensembles:
            head.append(ens)
            if self.simulations.get(ens) is not None:
                head.append(f"{ens} MC")
        rows = []
        for name in self.names:
            row = [name]
            for ens in self.ensembles:
                row.append(_short(self.behaviour[ens][name]))
                if self.simulations.get(ens) is not None:
                    check = self.checks[ens].get(name)
                    cell = check.describe() if check is not None else "-"
                    scan = self.scans.get(ens, {}).get(name)
                    if scan is not None:
                        cell += f" -> width scan: {scan.verdict}"
                    elif check is not None and check.verdict == "disagree":
                        cell += " -> not width-scanned"
                    row.append(cell)
            rows.append(row)
        ext = ", ".join(f"{e} {self.theory[e].network.depth}" for e in self.ensembles)
        lines = [f"# {self.title()}",
                 f"# classified from the leading-order theory to depth {ext} "
                 "(rule: fwtheory.depth_saturation docstring; 5% band)"]
        lines.append(format_table(head, rows, align="left"))
        if self.simulated:
            lo, hi = _window(self.depth)
            lines.append(f"# MC: {self.samples} networks per ensemble, seed {self.seed}, "
                         f"width {self.parameters['width']}; "
                         f"a layer is ok when |MC - theory| <= {self.z:g} SE + {self.rel_tol:g} |theory|; "
                         f"slope: least squares over layers {lo}-{hi} (jackknife SE) vs the theory's; "
                         "'-': not measured")
            lines += self._scan_lines()
        lines += [f"# note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _theory_curve(self, ens, name):
        """Theory ratio over the requested depth; exactly 0 for the "zero" class."""
        r = np.asarray(self.theory[ens].ratios[name][:self.depth], dtype=float)
        return np.zeros_like(r) if self.behaviour[ens][name].kind == ZERO_KIND else r

    def _scan_lines(self):
        """Comment lines with the width-scan evidence beside each missed check."""
        missed = [(e, n) for e in self.ensembles for n, c in self.checks.get(e, {}).items()
                  if c.verdict == "disagree"]
        if not missed:
            return []
        scanned = [(e, n) for e, n in missed if n in self.scans.get(e, {})]
        lines = []
        if scanned:
            sc = self.scans[scanned[0][0]][scanned[0][1]]
            lines.append(f"# width scan of the missed ratios: widths {'/'.join(map(str, sc.widths))}, "
                         f"{'/'.join(map(str, sc.samples))} networks; per layer c0 (n -> inf) of "
                         "r(n) = c0 + c1/n + c2/n^2 against the theory with the rule above, c1 from a straight line in 1/n "
                         "(fwtheory.width_scan); depth/width at the last layer: "
                         + ", ".join(f"{self.depth / w:.2g}" for w in sc.widths))
            for e, n in scanned:
                scan = self.scans[e][n]
                hint = ("; more networks per width would resolve it (fwtheory compare --widths ...)"
                        if scan.verdict == "inconclusive" else "")
                lines.append(f"#   {e} {n}: {scan.verdict} ({scan.evidence()}){hint}")
        rest = [f"{e} {n}" for e, n in missed if (e, n) not in scanned]
        if rest:
            lines.append("# not width-scanned (--no-width-scan or interrupted): " + ", ".join(rest)
                         + "; misses grow with depth/width (O(1/n^2) terms beyond this order); "
                         "fwtheory compare --widths ... separates them")
        return lines

    def to_dict(self):
        """Plain-JSON dictionary (parameters, rule, per ensemble and ratio the
        classification, the theory curve over the requested depth and the MC points)."""
        from . import __version__
        from ._io import to_jsonable

        depth = self.depth
        out = {
            "fwtheory_version": __version__,
            "parameters": dict(self.parameters),
            "ensembles": list(self.ensembles),
            "ratios": list(self.names),
            "rule": {"band": BAND, "linear_exponent_tol": LINEAR_TOL, "converging_exponent": CONVERGING,
                     "text": _rule_text()},
            "extended_depth": {e: self.theory[e].network.depth for e in self.ensembles},
            "layers": list(range(1, depth + 1)),
            "simulation": ({"samples": self.samples, "seed": self.seed, "z": self.z, "rel_tol": self.rel_tol}
                           if self.simulated else None),
            "width_scan": {e: sorted(s) for e, s in self.scans.items() if s},
            "results": {},
            "simulations": {},
            "elapsed_seconds": self.elapsed,
            "notes": list(self.notes),
        }
        for ens in self.ensembles:
            sim = self.simulations.get(ens)
            ratios = self.theory[ens].ratios
            res = {}
            for name in self.names:
                b = self.behaviour[ens][name]
                entry = {"behaviour": b.to_dict(), "theory": self._theory_curve(ens, name)}
                if b.kind == ZERO_KIND:   # what predict returned: round-off within the bound
                    entry["theory_roundoff"] = np.asarray(ratios[name][:depth], dtype=float)
                if sim is not None and name in sim.ratios:
                    entry["mc"] = {"values": sim.ratios[name], "se": sim.ratio_errors[name],
                                   "check": self.checks[ens][name].to_dict()}
                    scan = self.scans.get(ens, {}).get(name)
                    if scan is not None:
                        entry["width_scan"] = scan.to_dict()
                res[name] = entry
            out["results"][ens] = res
            if sim is not None:
                out["simulations"][ens] = {"samples": sim.samples, "seed": sim.seed,
                                           "interrupted": sim.interrupted, "overflow": sim.overflow,
                                           "notes": list(sim.notes)}
        return to_jsonable(out)

    def plot(self, path):
        """Write the PNG (atomically): one panel per ratio, both ensembles,
        theory lines and MC points with 1-SE error bars against layer."""
        from .plotting import ENSEMBLE_COLORS, Panel, Series, write_panels

        depth = self.depth
        layers = np.arange(1, depth + 1)
        panels = []
        for name in self.names:
            series = []
            for ens in self.ensembles:
                color = ENSEMBLE_COLORS.get(ens)
                b = self.behaviour[ens][name]
                series.append(Series(f"{ens}: {_short(b)}", layers, self._theory_curve(ens, name),
                                     color=color))
                sim = self.simulations.get(ens)
                if sim is not None and name in sim.ratios:
                    series.append(Series(f"{ens} MC", sim.layers, sim.ratios[name], sim.ratio_errors[name],
                                         style="points", color=color))
                scan = self.scans.get(ens, {}).get(name)
                if scan is not None:
                    idx = np.asarray(scan.layers, dtype=int)
                    series.append(Series(f"{ens} n->inf (widths {'/'.join(map(str, scan.widths))}): "
                                         f"{scan.verdict}", idx, scan.fit["c0"][idx - 1],
                                         scan.fit["c0_se"][idx - 1], style="points", color=color,
                                         marker="s", filled=False))
                if b.kind == SATURATING:
                    series.append(Series(None, [1], [b.asymptote], style="hline", color=color))
                    if b.saturation_depth is not None and b.saturation_depth <= depth:
                        series.append(Series(None, [b.saturation_depth], [0.0], style="vline", color=color))
            width = self.parameters["width"]
            if self.simulated and VALIDITY_RATIO * width < depth:
                series.append(Series(f"l/n > {VALIDITY_RATIO:g} (n = {width}): next order sizeable",
                                     [VALIDITY_RATIO * width, depth], [0.0, 0.0], style="band"))
            panels.append(Panel(title=name, ylabel=f"{name}  (coefficient of 1/n)", series=series))
        title = (self.title() + "; lines: theory, dots: MC (1 SE), open squares: width-extrapolated n -> inf"
                 if self.simulated else self.title() + "; leading-order theory")
        return write_panels(path, panels, title=title)

    def write(self, out_dir=".", stem="saturation"):
        """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir`` (atomically);
        return the two paths."""
        import os

        from ._io import atomic_write_text, dumps_json

        png = os.path.join(out_dir, f"{stem}.png")
        js = os.path.join(out_dir, f"{stem}.json")
        self.plot(png)
        atomic_write_text(js, dumps_json(self.to_dict()) + "\n")
        return png, js


def _short(b):
    """Compact table cell for a DepthBehaviour."""
    k = b.kind
    if k == GROWING:
        return f"growing {_g(b.slope)}+-{_g(b.slope_err, 1)}/layer"
    if k == GROWING_SLOWER:
        if b.log_coefficient is not None:
            return f"growing, sublinear ~{_g(b.log_coefficient, 3)} ln l"
        return f"growing, sublinear ~l^{b.growth_exponent:.2f}"
    if k == GROWING_FASTER:
        return f"growing, superlinear ~l^{b.growth_exponent:.2f}"
    if k == SATURATING:
        at = f"5% by l={b.saturation_depth}" if b.saturation_depth is not None else "not yet within 5%"
        return f"saturating -> {_g(b.asymptote)} ({at})"
    if k == DECAYING:
        at = (f"5% of peak by l={b.saturation_depth}" if b.saturation_depth is not None
              else f"slowly, peak at l={b.peak_layer}")
        return f"decaying -> 0 ({at})"
    if k == ZERO_KIND:
        return "0 (identically, at this order)"
    return "undefined"


# ------------------------------------------------------------------ driver
def _extended_prediction(network, depth, extended, input_norm, notes):
    """predict() to ``extended`` layers, halving on overflow (never below depth)."""
    from .prediction import predict

    L = extended
    while True:
        try:
            return predict(network.replace(depth=L), input_norm=input_norm)
        except NumericalError as exc:
            smaller = max(L // 2, depth)
            if smaller == L or smaller < 8:
                raise
            reason = str(exc) if len(str(exc)) <= 100 else str(exc)[:97] + "..."
            notes.append(f"{network.ensemble}: theory failed at depth {L} ({reason}); "
                         f"classified from depth {smaller}")
            L = smaller


def _progress(progress, total, label="saturation: simulate"):
    """(callback for simulate, object to close)."""
    if progress is None or progress is False:
        return None, None
    if progress is True:
        from ._io import ProgressBar

        bar = ProgressBar(total, label=label)
        return bar, bar
    return progress, None


def check_scan(depth, width, ensembles, extended_depth, *, min_width, min_extended):
    """The checked (depth, width, ensembles, extended depth) of a saturation run, or
    ParameterError. Without ``extended_depth`` the theory runs to
    max(depth, min(max(EXTENDED_FACTOR depth, min_extended), MAX_EXTENDED)), never
    below 8 layers."""
    depth = check_int("depth", depth, lower=1)
    width = check_int("width", width, lower=min_width)
    if isinstance(ensembles, str):
        ensembles = (ensembles,)
    ensembles = tuple(dict.fromkeys(str(e).lower() for e in ensembles))
    if not ensembles or any(e not in ENSEMBLES for e in ensembles):
        raise ParameterError("ensembles", f"must be a non-empty subset of {', '.join(ENSEMBLES)}, "
                                          f"got {ensembles!r}")
    if extended_depth is None:
        extended = max(depth, min(max(EXTENDED_FACTOR * depth, min_extended), MAX_EXTENDED))
    else:
        extended = check_int("extended_depth", extended_depth, lower=max(depth, 8),
                             allowed=f"an integer >= max(depth, 8) = {max(depth, 8)}")
    return depth, width, ensembles, max(extended, 8)


def saturation(activation: str | Activation = "tanh", C_b: float = 0.0, C_W: float = 1.0, width: int = 64,
               depth: int = 50, ensembles: Sequence[str] = ("gaussian", "orthogonal"), lambda_b: float = 0.0,
               lambda_W: float = 1.0, simulate: bool = False, samples: int = DEFAULT_SAMPLES, seed: int = 0,
               progress: Any = None, input_norm: float = 1.0, extended_depth: int | None = None, z: float = 3.0,
               rel_tol: float = 0.05, width_scan: bool = True,
               gram: ArrayLike | None = None) -> SaturationReport | GramSaturationReport:
    """Classify how each 1/n ratio behaves with depth, for each weight ensemble.

    Parameters
    ----------
    activation, C_b, C_W, lambda_b, lambda_W, width, depth :
        The network (:class:`~fwtheory.network.Network`; hidden width ``width``,
        input dimension = width, first layer of the same ensemble).
    ensembles : sequence of {"gaussian", "orthogonal"}
    simulate : bool
        Add Monte Carlo points (``samples`` networks per ensemble at ``width``
        and ``depth``, ``seed`` for each ensemble) and check them against the
        theory.
    progress : None, True, callable(k) or object with ``update(k)``
        Progress of the simulation (``True``: a progress bar on stderr).
    input_norm : float
        q0 = |x|^2 / n0.
    extended_depth : int, optional
        Depth to which the theory is evaluated for the classification; default
        min(max(40 depth, 2000), 20000), never below ``depth``.
    z, rel_tol : float
        Tolerance of the Monte Carlo checks (see :func:`fwtheory.comparison.compare`).
    width_scan : bool
        With ``simulate``: for every ratio whose check misses, simulate widths
        n/2 and 2n as well and tell a next-order (1/n^2) effect from a wrong
        theory (:mod:`fwtheory.width_scan`).

    gram : (m, m) array or "1,0.5;0.5,1", optional
        Several inputs: classify every normalized multi-input coefficient instead
        (theory only; :func:`fwtheory.saturation_multi.saturation_gram`, which also
        scans the input cosine); ``simulate`` and ``input_norm`` are then refused.

    Returns
    -------
    SaturationReport
        ``.table()``, ``.to_dict()``, ``.plot(path)``, ``.write(out_dir)``
        (a :class:`fwtheory.saturation_multi.GramSaturationReport` with ``gram``).

    Notes
    -----
    The classification rule is given in the module docstring. With tanh at
    C_b = 0, C_W = 1 it reports Gaussian V/K^2 growing with slope 2/3 per
    layer (PDLT arXiv:2106.10165 Sec. 5.4.2) and orthogonal V/K^2 saturating
    at -2 within 5% from layer 19 (Day, Kahn, Roberts arXiv:2310.07765).
    """
    if gram is not None:
        if simulate:
            raise ParameterError("simulate", "not available with gram (several inputs): the "
                                             "classification is theory only; check the theory against "
                                             "Monte Carlo with compare(predict(net, gram=G), simulate(net, ..., gram=G))")
        if input_norm != 1.0:
            raise ParameterError("input_norm", "give either input_norm (one input) or gram (its diagonal "
                                               "holds the input norms)")
        from .saturation_multi import saturation_gram

        return saturation_gram(activation=activation, C_b=C_b, C_W=C_W, width=width, depth=depth, gram=gram,
                               ensembles=ensembles, lambda_b=lambda_b, lambda_W=lambda_W,
                               extended_depth=extended_depth)
    start = time.monotonic()
    depth, width, ensembles, extended = check_scan(depth, width, ensembles, extended_depth,
                                                   min_width=2 if simulate else 1, min_extended=MIN_EXTENDED)
    if simulate:
        samples = check_int("samples", samples, lower=2)
        seed = check_int("seed", seed, lower=0)
    z = check_real("z", z, lower=0.0, lower_open=True)
    rel_tol = check_real("rel_tol", rel_tol, lower=0.0)
    notes = []
    base = {e: Network(activation, depth=depth, width=width, C_b=C_b, C_W=C_W, lambda_b=lambda_b,
                       lambda_W=lambda_W, ensemble=e) for e in ensembles}
    theory = {e: _extended_prediction(net, depth, extended, input_norm, notes) for e, net in base.items()}
    ratios = {e: p.ratios for e, p in theory.items()}
    names = tuple(k for k in _ratio_names() if all(k in r for r in ratios.values()))
    noise = {e: _ratio_noise(p) for e, p in theory.items()}
    behaviour = {e: {k: classify_depth_behaviour(theory[e].layers, ratios[e][k], depth=depth,
                                                 noise=noise[e].get(k)) for k in names}
                 for e in ensembles}
    simulations = {e: None for e in ensembles}
    checks = {e: {} for e in ensembles}
    scans = {e: {} for e in ensembles}
    if simulate:
        from .comparison import compare
        from .mc import simulate as run_simulation

        callback, bar = _progress(progress, samples * len(ensembles))
        try:
            for ens, net in base.items():
                sim = run_simulation(net, samples=samples, seed=seed, input_norm=input_norm,
                                     progress=callback)
                simulations[ens] = sim
                comp = compare(theory[ens], sim, z=z, rel_tol=rel_tol)
                for name in names:
                    if name in comp.verdicts:
                        checks[ens][name] = _check_mc(comp, sim, theory[ens], name,
                                                      behaviour[ens][name], z, rel_tol)
                if sim.interrupted:
                    notes.append(f"{ens}: simulation interrupted after {sim.samples} networks")
                    break
        finally:
            if bar is not None:
                bar.close()
        if width_scan and not any(s is not None and s.interrupted for s in simulations.values()):
            scans = _run_width_scans(base, simulations, theory, checks, samples, seed, input_norm,
                                     progress, z, rel_tol, notes)
    parameters = dict(activation=base[ensembles[0]].activation.name, C_b=float(C_b), C_W=float(C_W),
                      lambda_b=float(lambda_b), lambda_W=float(lambda_W), width=width, depth=depth,
                      input_norm=float(input_norm))
    return SaturationReport(parameters=parameters, ensembles=ensembles, names=names, theory=theory,
                            behaviour=behaviour, simulations=simulations, checks=checks, z=z,
                            rel_tol=rel_tol, samples=int(samples), seed=int(seed),
                            elapsed=time.monotonic() - start, notes=tuple(notes), scans=scans)


def _run_width_scans(base, simulations, theory, checks, samples, seed, input_norm, progress, z, rel_tol,
                     notes):
    """{ensemble: {ratio: WidthScan}} for the ensembles with a missed check."""
    from .mc import simulate as run_simulation
    from .width_scan import scan_samples, scan_widths, width_scan

    scans = {e: {} for e in base}
    todo = [e for e in base if simulations[e] is not None
            and any(c.verdict == "disagree" for c in checks[e].values())]
    if not todo:
        return scans
    width = base[todo[0]].width
    widths, counts = scan_widths(width), scan_samples(samples)
    extra = [(w, s) for w, s in zip(widths, counts) if w != width]
    callback, bar = _progress(progress, sum(s for _, s in extra) * len(todo), "saturation: width scan")
    try:
        for ens in todo:
            sims = {width: simulations[ens]}
            for w, s in extra:
                sim = run_simulation(base[ens].replace(width=w), samples=s, seed=seed, input_norm=input_norm,
                                     progress=callback)
                if sim.interrupted:
                    notes.append(f"{ens}: width scan interrupted at width {w}")
                    return scans
                sims[w] = sim
            pred = theory[ens]

            def slope_fn(sim, name, lo, hi, pred=pred):
                return _mc_slope(sim, pred, name, lo, hi)

            scans[ens] = width_scan(sims, pred.ratios, checks[ens], pred, z=z, rel_tol=rel_tol,
                                    slope_fn=slope_fn)
    finally:
        if bar is not None:
            bar.close()
    return scans


def _ratio_noise(prediction):
    """{ratio: per-layer error bound} (:func:`fwtheory._termscale.ratio_bounds`)."""
    from ._termscale import ratio_bounds

    return ratio_bounds(prediction)


def _rule_text():
    """The "Classification rule" section of this module's docstring."""
    doc = __doc__ or ""
    marker = "Classification rule\n-------------------\n"
    return doc.split(marker, 1)[1].strip() if marker in doc else "see fwtheory.depth_saturation"


def _ratio_names():
    from . import quantities

    return tuple(getattr(quantities, "ALL_RATIOS", RATIOS))
