"""Width scan of the ratios a finite-width simulation puts off the leading order.

The ratios r = V/K^2, ... are the coefficients of 1/n of the leading-order
theory (Roberts, Yaida, Hanin, arXiv:2106.10165; normalizations in
docs/conventions.md).
A simulation at width n measures

    r(n) = r_0 + c_1 / n + c_2 / n^2 + ...,

r_0 the leading-order value, c_1 the next order (O(1/n^2) in the correlator),
which grows like a power of the depth: the expansion parameter is the
depth-to-width ratio l/n (arXiv:2106.10165 Ch. 3, deep linear networks, and
Sec. 5.4 for tanh). When the single-width check of
:func:`fwtheory.depth_saturation.saturation` misses, this module tells the two
readings apart:

* next-order effect: the width-extrapolated intercept c0 of a fit over widths
  n/2, n, 2n agrees with r_0, sharply enough to be told from the width-n
  value, and the 1/n slope c1 is measured (|c1| > z SE);
* consistent with theory: the same, but no 1/n slope is resolved (the misses
  at width n are within the statistics after all);
* theory disagrees: the intercept does not converge to r_0;
* inconclusive: neither; in particular when c0 agrees with r_0 only because
  its error is too large to tell r_0 from the width-n value.

Fit: per layer, c0 and its SE from c0 + c1/n + c2/n^2 through the three
widths (weighted; at width n/2 the depth-to-width ratio is twice the main
run's, so the 1/n^2 term of r(n) is not negligible and a straight line in 1/n
would bias c0 by ~c2/(n_1 n_2)); whether a width dependence is resolved from
the weighted straight line c0 + c1/n (|c1| > z SE(c1); its chi2 is kept).
The intercept agrees at a layer when
|c0 - r_0| <= z SE(c0) + rel_tol |r_0| (the rule of
:func:`fwtheory.comparison.compare`). Verdict over the layers the
width-n check missed (for a slope miss, over the slope window, and the
slope itself is extrapolated the same way): "theory disagrees" if c0 agrees
at < 50% of them; if it agrees at >= 90% and, at one layer at least (or for
the slope), z SE(c0) < |r(n) - r_0| (the scan resolves the miss),
"next-order effect" when c1 is measured at the majority and "consistent with
theory" when it is not; otherwise "inconclusive".

Cost: width n/2 with the main run's samples (1/4-1/8 of its cost), width 2n
with 1/8 of them (~0.5-1x its cost: n^2 Gaussian, n^3 Haar per layer).
"""

__all__ = ["WidthScan", "scan_widths", "scan_samples", "fit_widths", "width_scan", "NEXT_ORDER",
           "CONSISTENT", "DISAGREES", "INCONCLUSIVE"]

from dataclasses import dataclass

import numpy as np

NEXT_ORDER = "next-order effect"
CONSISTENT = "consistent with theory"
DISAGREES = "theory disagrees"
INCONCLUSIVE = "inconclusive"
AGREE_FRACTION = 0.9
DISAGREE_FRACTION = 0.5
WIDE_SAMPLES_DIVISOR = 8
MIN_WIDE_SAMPLES = 100


def scan_widths(width):
    """(n/2, n, 2n) for the main width n (n/2 >= 2)."""
    return (max(2, width // 2), width, 2 * width)


def scan_samples(samples):
    """Networks per width of the scan (n/2, n, 2n) for ``samples`` at the main width."""
    return (samples, samples, max(MIN_WIDE_SAMPLES, samples // WIDE_SAMPLES_DIVISOR))


def fit_widths(widths, values, errors):
    """Per-layer weighted fits of values (W, L) with SEs over x = 1/width.

    Returns a dict of (L,) arrays: c0, c0_se (from c0 + c1 x + c2 x^2 when
    there are three widths, else from c0 + c1 x), c1, c1_se, chi2 (of the
    linear fit c0 + c1 x, whose c1 tells whether a width dependence is
    resolved) and c0_linear, c0_linear_se.
    """
    x = 1.0 / np.asarray(widths, dtype=float)
    y = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    L = y.shape[1]
    keys = ("c0", "c0_se", "c1", "c1_se", "chi2", "c0_linear", "c0_linear_se")
    out = {k: np.full(L, np.nan) for k in keys}
    for l in range(L):
        ok = np.isfinite(y[:, l]) & np.isfinite(e[:, l]) & (e[:, l] > 0)
        if ok.sum() < 2:
            continue
        w, xx, yy = 1.0 / e[ok, l] ** 2, x[ok], y[ok, l]
        c, cov = _wls(np.stack([np.ones_like(xx), xx], axis=1), w, yy)
        out["chi2"][l] = float(np.sum(w * (yy - c[0] - c[1] * xx) ** 2))
        out["c1"][l], out["c1_se"][l] = c[1], np.sqrt(cov[1, 1])
        out["c0_linear"][l], out["c0_linear_se"][l] = c[0], np.sqrt(cov[0, 0])
        if ok.sum() >= 3:
            c, cov = _wls(np.stack([np.ones_like(xx), xx, xx * xx], axis=1), w, yy)
        out["c0"][l], out["c0_se"][l] = c[0], np.sqrt(cov[0, 0])
    return out


def _wls(X, w, y):
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    return cov @ (X.T @ (w * y)), cov


@dataclass(frozen=True)
class WidthScan:
    """Width scan of one ratio of one ensemble (module docstring).

    ``layers``: the layers judged (those the width-n check missed); ``values``,
    ``errors``: (W, L) measured ratio per width over all layers; ``fit``: the
    per-layer fit (:func:`fit_widths`); ``theory``: r_0 per layer; ``slope``:
    None, or a dict with the per-width slopes, their fit and the theory slope.
    """

    name: str
    widths: tuple
    samples: tuple
    layers: tuple
    theory: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    fit: dict
    agree: np.ndarray          # per judged layer
    slope_measured: np.ndarray  # per judged layer: |c1| > z SE(c1)
    verdict: str
    slope: dict = None
    resolved: np.ndarray = None  # per judged layer: z SE(c0) < |r(n) - r_0| at the main width n
    z: float = 3.0

    def evidence(self):
        """Short text: where c0 agrees, the last judged layer's numbers."""
        parts = []
        if self.layers:
            k = len(self.layers)
            i = self.layers[-1] - 1
            c0, se, c1, c1se = (self.fit[f][i] for f in ("c0", "c0_se", "c1", "c1_se"))
            sharp = 0 if self.resolved is None else int(np.sum(self.resolved & self.agree))
            parts.append(f"n->inf value agrees with theory at {int(np.sum(self.agree))}/{k} missed layers, "
                         f"told apart from the width-{self.widths[len(self.widths) // 2]} value "
                         f"(miss > {self.z:g} SE(c0)) at {sharp}/{k}; "
                         f"1/n slope measured at {int(np.sum(self.slope_measured))}/{k}; "
                         f"l={i + 1}: c0 = {c0:.3g}+-{se:.2g} vs theory {self.theory[i]:.3g}, "
                         f"c1 = {c1:.3g}+-{c1se:.2g}")
        if self.slope is not None:
            s = self.slope
            parts.append(f"slope n->inf {s['c0']:.3g}+-{s['c0_se']:.2g} vs theory {s['theory']:.3g} "
                         f"({'agrees' if s['agrees'] else 'differs'}"
                         f"{'' if s['resolved'] else ', not resolved from the width-n slope'})")
        return "; ".join(parts)

    def to_dict(self):
        from ._io import to_jsonable

        return to_jsonable({"ratio": self.name, "widths": list(self.widths), "samples": list(self.samples),
                            "judged_layers": list(self.layers), "theory": self.theory,
                            "values": self.values, "errors": self.errors, "fit": self.fit,
                            "agree": self.agree, "slope_measured": self.slope_measured,
                            "resolved": self.resolved,
                            "slope": self.slope, "verdict": self.verdict, "evidence": self.evidence()})


def _judge(agree, measured, resolved, slope=None):
    checks = list(agree) + ([slope["agrees"]] if slope is not None else [])
    if not checks:
        return INCONCLUSIVE
    frac = float(np.mean(checks))
    if frac < DISAGREE_FRACTION:
        return DISAGREES
    shown = bool(np.any(np.asarray(agree) & np.asarray(resolved)))
    shown |= slope is not None and slope["agrees"] and slope["resolved"]
    if frac < AGREE_FRACTION or not shown:
        return INCONCLUSIVE
    width_dependence = list(measured) + ([slope["c1_measured"]] if slope is not None else [])
    return NEXT_ORDER if np.mean(width_dependence) > 0.5 else CONSISTENT


def width_scan(sims, theory_ratios, checks, prediction, z=3.0, rel_tol=0.05, slope_fn=None,
               main_width=None):
    """Scan every ratio whose check disagrees.

    ``sims``: {width: Simulation} (all widths of :func:`scan_widths`);
    ``theory_ratios``: {ratio: (L,) leading-order values};
    ``checks``: {ratio: MonteCarloCheck} at the main width; ``slope_fn(sim, name,
    lo, hi)`` -> (slope, se) of one simulation. Returns {ratio: WidthScan}.
    """
    widths = tuple(sorted(sims))
    main = widths[len(widths) // 2] if main_width is None else main_width
    out = {}
    for name, check in checks.items():
        if check.verdict != "disagree":
            continue
        vals = np.array([np.asarray(sims[w].ratios[name], dtype=float) for w in widths])
        errs = np.array([np.asarray(sims[w].ratio_errors[name], dtype=float) for w in widths])
        L = vals.shape[1]
        th = np.asarray(theory_ratios[name], dtype=float)[:L]
        if check.theory_zero:
            th = np.zeros(L)
        fit = fit_widths(widths, vals, errs)
        judged = tuple(int(l) for l in check.failed_layers)
        idx = np.array(judged, dtype=int) - 1
        with np.errstate(invalid="ignore"):
            agree = np.abs(fit["c0"][idx] - th[idx]) <= z * fit["c0_se"][idx] + rel_tol * np.abs(th[idx])
            measured = np.abs(fit["c1"][idx]) > z * fit["c1_se"][idx]
            miss = np.abs(vals[widths.index(main)][idx] - th[idx])
            resolved = z * fit["c0_se"][idx] < miss
        slope = None
        if check.slope_agrees is False and slope_fn is not None:
            lo, hi = check.slope_window
            sl = [slope_fn(sims[w], name, lo, hi) for w in widths]
            f = fit_widths(widths, [[s[0]] for s in sl], [[s[1]] for s in sl])
            c0, se = float(f["c0"][0]), float(f["c0_se"][0])
            t = float(check.theory_slope)
            slope = {"window": [lo, hi], "values": [s[0] for s in sl], "errors": [s[1] for s in sl],
                     "c0": c0, "c0_se": se, "c1": float(f["c1"][0]), "c1_se": float(f["c1_se"][0]),
                     "theory": t, "agrees": bool(abs(c0 - t) <= z * se + rel_tol * abs(t)),
                     "c1_measured": bool(abs(f["c1"][0]) > z * f["c1_se"][0]),
                     "resolved": bool(z * se < abs(sl[widths.index(main)][0] - t))}
        out[name] = WidthScan(name=name, widths=widths, samples=tuple(int(sims[w].samples) for w in widths),
                              layers=judged, theory=th, values=vals, errors=errs, fit=fit,
                              agree=np.asarray(agree, dtype=bool),
                              slope_measured=np.asarray(measured, dtype=bool),
                              resolved=np.asarray(resolved, dtype=bool),
                              verdict=_judge(agree, measured, resolved, slope), slope=slope, z=z)
    return out
