"""Run-time estimates before long runs, and the refusal beyond a limit.

Cost model of the Monte Carlo sampler (fwtheory.mc; figures from
benchmarks/README.md, measured on 2 idle cores): one network propagated
through one layer at width n costs, in CPU seconds,

    t_gauss(n) = 12e-6 (n/64)^2 + 24e-6 (n/64)^3
    t_orth(n)  = t_gauss(n) + 48e-6 (n/64)^3,

(n^2: the normals of W and the elementwise work; n^3: the products
Y = W M, H = Y W^T that propagate the NTK matrix, and the Householder QR of
a Haar-orthogonal W; at n = 64 the Gaussian total is the benchmark's 36 us,
the orthogonal one ~2.3x that, as timed in ``fwtheory saturation``). Check:
the default ``fwtheory saturation`` simulation (2000 networks, depth 50, both
ensembles) is 12 CPU-s by this model, 13 measured; its width scan 12.6 by the
model, ~10 measured. ``--descendants`` adds 5.3x (Gaussian) or
3.8x (orthogonal) the same cost (bench_descendants.py). The wall time is
samples x depth x sum over widths of t(n), divided by the number of sampler
workers, plus ~2 s of start-up. It is an order-of-magnitude figure
(a loaded machine is slower: 2-4x was seen with other jobs running).

:func:`announce` prints the estimate on stderr when it exceeds
:data:`ANNOUNCE_SECONDS` (30 s) and raises
:class:`~fwtheory.errors.ParameterError` (CLI exit code 2) beyond
:data:`LIMIT_SECONDS` (30 minutes) unless ``force``, naming the parameters
that make the run big.
"""

__all__ = ["ANNOUNCE_SECONDS", "LIMIT_SECONDS", "layer_seconds", "simulate_seconds", "validate_seconds",
           "announce", "format_seconds", "check_simulate", "check_validate", "validity_seconds"]

import sys

from .errors import ParameterError

ANNOUNCE_SECONDS = 30.0
LIMIT_SECONDS = 1800.0
STARTUP_SECONDS = 2.0
_N2, _N3, _HAAR = 12e-6, 24e-6, 48e-6
_DESCENDANTS = {"gaussian": 5.3, "orthogonal": 3.8}
# fwtheory validate: seconds per claim on 2 idle cores, rounded up (docs/validation.md: full about 60-66 s, --quick about 12 s)
VALIDATE_SECONDS = {"full": 14.0, "quick": 3.0}
VALIDATE_CLAIMS = 5


def _workers():
    try:
        from .mc._runner import worker_count

        return worker_count()
    except Exception:  # pragma: no cover - numba missing: the simulation would fail anyway
        return 1


def layer_seconds(width, ensemble="gaussian", descendants=False):
    """CPU seconds to propagate one network through one layer (module docstring)."""
    x = float(width) / 64.0
    t = _N2 * x * x + _N3 * x ** 3
    if ensemble == "orthogonal":
        t += _HAAR * x ** 3
    if descendants:
        t *= 1.0 + _DESCENDANTS.get(ensemble, 5.3)
    return t


def simulate_seconds(samples, depth, widths, ensembles=("gaussian",), descendants=False, workers=None):
    """Estimated wall seconds of ``samples`` networks of ``depth`` layers per
    width and ensemble. ``samples`` may be one number or one per width."""
    widths = list(widths)
    per_width = list(samples) if isinstance(samples, (list, tuple)) else [samples] * len(widths)
    cpu = sum(s * depth * layer_seconds(w, e, descendants)
              for e in ensembles for w, s in zip(widths, per_width))
    return STARTUP_SECONDS + cpu / max(1, workers or _workers())


def validate_seconds(quick, claims=VALIDATE_CLAIMS):
    """Documented wall seconds of ``fwtheory validate`` (fixed figure per claim)."""
    return VALIDATE_SECONDS["quick" if quick else "full"] * claims


def format_seconds(s):
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def announce(verb, seconds, big, force=False, stream=None, detail=""):
    """Print the estimate (stderr) above 30 s; refuse beyond 30 min unless ``force``.

    ``big``: [(parameter, value, default)]: the parameters the cost grows
    with; those above their default are named in the refusal (all when none is).
    """
    stream = sys.stderr if stream is None else stream
    if seconds > LIMIT_SECONDS and not force:
        named = [(p, v) for p, v, d in big if d is not None and v > d] or [(p, v) for p, v, _ in big]
        params = ", ".join(p for p, _ in named)
        values = ", ".join(f"{p}={v}" for p, v in named)
        raise ParameterError(params, f"{verb} would take ~{format_seconds(seconds)} ({values}{detail}), "
                                     f"more than the {format_seconds(LIMIT_SECONDS)} limit; "
                                     f"make {params} smaller, or pass --force")
    if seconds > ANNOUNCE_SECONDS:
        print(f"fwtheory {verb}: estimated run time ~{format_seconds(seconds)}{detail}", file=stream)
    return seconds


def check_simulate(network, samples, widths=None, descendants=False, force=False, defaults=None):
    """Announce or refuse a ``fwtheory simulate`` run (``defaults``: the CLI
    defaults of depth, width and samples, to name what makes it big)."""
    ws = sorted(set(widths)) if widths else [network.width]
    try:
        samples = int(samples)
    except (TypeError, ValueError):
        return None
    if samples < 1 or min(ws) < 1:
        return None     # simulate() names the bad parameter
    seconds = simulate_seconds(samples, network.depth, ws, (network.ensemble,), descendants)
    d = {"depth": 10, "width": 64, "samples": 4000}
    d.update(defaults or {})
    big = [("depth", network.depth, d["depth"]), ("samples", samples, d["samples"]),
           ("widths" if widths else "width", max(ws), d["width"])]
    if descendants:
        big.append(("descendants", 1, 0))
    return announce("simulate", seconds, big, force=force)


def check_validate(quick, only=None, force=False):
    """Announce ``fwtheory validate`` above 30 s (fixed figure per claim,
    :data:`VALIDATE_SECONDS`; the suite's sizes are fixed, so it never
    exceeds the limit)."""
    claims = VALIDATE_CLAIMS
    if only:
        claims = min(VALIDATE_CLAIMS, sum(len([x for x in str(o).split(",") if x.strip()]) for o in only))
    return announce("validate", validate_seconds(quick, claims), [("quick", int(not quick), 0)], force=force,
                    detail=" (full run; --quick: ~15 s)" if not quick else "")


# fwtheory validity (fwtheory.validity): one full-batch step of m inputs through one layer of
# width n costs ~ 20e-6 + 5.5e-10 m n^2 CPU seconds (numpy; timed with the trainer, m = 11:
# 30-60 us at n = 100, 425 us at n = 256); each network also pays ~4 step-equivalents
# (initialization and two NTKs). The theory costs one two-input kernel_matrix per pair of
# the 11 probe inputs and layer (2.4 ms measured with ReLU's kink; 3 ms assumed) per C_W,
# plus a few seconds (Gaussian) or ~20 s (orthogonal) to compile predict's recursions once.
# Check: the default run (ReLU, n = 100, depths 5, 20, two C_W, 30 inits, 50 steps) is
# 19 s by this model, 12 CPU-s measured.
_VALIDITY_LAYER_STEP = (20e-6, 5.5e-10)
_VALIDITY_PAIR_LAYER = 3e-3
_VALIDITY_COMPILE = {"gaussian": 4.0, "orthogonal": 20.0}


def validity_seconds(depths, n_cw, inits, steps, width, ensemble="gaussian", m=11):
    """Estimated wall seconds of ``fwtheory validity`` (comment above)."""
    a, b = _VALIDITY_LAYER_STEP
    per_layer_step = a + b * m * float(width) ** 2
    train = n_cw * inits * (steps + 4) * per_layer_step * sum(depths)
    theory = n_cw * (m * (m - 1) / 2) * max(depths) * _VALIDITY_PAIR_LAYER
    return STARTUP_SECONDS + _VALIDITY_COMPILE.get(ensemble, 8.0) + train + theory
