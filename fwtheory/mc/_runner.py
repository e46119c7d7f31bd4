"""Driver pieces shared by the Monte Carlo samplers (:mod:`.sampling`,
:mod:`.descendants`): worker count, memory guard, width lists, progress
adapters, and the threaded chunk runner.

Chunks of networks are simulated on ``numba.get_num_threads()`` Python threads
(the kernels and numpy's random fills release the GIL); results are consumed in
chunk order and summed in a fixed order, so a run is bit-identical at any thread
count.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .._io import layer_ranges
from ..errors import ParameterError, check_int
from ._blas import single_threaded as single_threaded_blas

if TYPE_CHECKING:  # annotations only
    from ..network import Network
    from .sampling import Extrapolation


@dataclass
class SamplerResult:
    """Fields shared by the samplers' results (:class:`.sampling.Simulation`,
    :class:`.descendants.DescendantSimulation`).

    Attributes
    ----------
    network : Network
    samples : int
        Networks simulated (fewer than requested if interrupted).
    seed : int
    input_norm : float
        q0 = |x|^2 / n0.
    layers : ndarray (L,)
        1..L.
    values, errors : dict[str, ndarray (L,)]
        The sampler's quantities and their jackknife standard errors. With
        ``widths``: the n -> infinity intercepts c0 of the fits X(n) = c0 + c1/n.
    ratios, ratio_errors : dict[str, ndarray (L,)]
        Dimensionless ratios (jackknife bias-corrected) and their errors.
    overflow : ndarray (L,)
        Fraction of networks with non-finite values at (or below) each layer;
        they are excluded from that layer's statistics.
    valid : ndarray (L,) int
        Networks used per layer.
    extrapolation : Extrapolation or None
    interrupted : bool
    notes : list[str]
    """

    network: "Network"
    samples: int
    seed: int
    input_norm: float
    layers: np.ndarray
    values: dict
    errors: dict
    ratios: dict
    ratio_errors: dict
    overflow: np.ndarray
    valid: np.ndarray
    extrapolation: "Extrapolation" = None
    interrupted: bool = False
    notes: list = field(default_factory=list)
    samples_requested: int = None
    _sums: np.ndarray = field(default=None, repr=False)
    _counts: np.ndarray = field(default=None, repr=False)


def worker_count():
    try:
        import numba

        return max(1, int(numba.get_num_threads()))
    except Exception:  # pragma: no cover
        return 1


def machine_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30


def refuse_if_too_big(network, need, parameter="depth"):
    """Raise ParameterError (naming ``parameter``) when ``need`` bytes exceed half the RAM."""
    limit = machine_memory() // 2
    if need > limit:
        raise ParameterError(
            parameter, f"the simulation would need about {need / 2**30:.1f} GiB (width "
                       f"{network.width}, depth {network.depth}), more than half of this machine's "
                       f"memory ({limit / 2**30:.1f} GiB); use a smaller {parameter}")


def check_widths(widths):
    """Sorted distinct widths (integers >= 2, at least two) from a list or "32,64"."""
    if isinstance(widths, str):
        widths = widths.replace(",", " ").split()
    try:
        ws = [check_int("widths", w, lower=2, allowed="integers >= 2") for w in widths]
    except TypeError:
        raise ParameterError("widths", f"must be a list of integers >= 2, got {widths!r}") from None
    ws = sorted(set(ws))
    if len(ws) < 2:
        raise ParameterError("widths", f"need at least two distinct widths (integers >= 2) for the "
                                       f"1/n fit, got {list(widths)!r}")
    return ws


def networks_for_widths(network, widths):
    """[network] or one copy per width (a square input dimension follows the width)."""
    if widths is None:
        return [network]
    return [network.replace(width=w) for w in check_widths(widths)]


def progress_callback(progress, total, label):
    """(step, bar): ``progress`` may be None/False, True (a progress bar), a callable
    taking the number of finished networks, or an object with ``.update(k)``."""
    if progress is None or progress is False:
        return None, None
    if progress is True:
        from .._io import ProgressBar

        bar = ProgressBar(total, label=label)
        return bar.update, bar
    if hasattr(progress, "update"):
        return progress.update, None
    if callable(progress):
        return progress, None
    raise ParameterError("progress", f"must be None, True, a callable or have .update(k), got {progress!r}")


def run_chunks(simulate_chunk, plan, n_chunks, sums, progress, thread_prefix, workers=None):
    """Run ``simulate_chunk(plan, c)`` for c = 0..n_chunks-1 on ``workers`` threads
    (default :func:`worker_count`) and add each (C, L, NSTAT) result to ``sums`` in
    chunk order (networks with non-finite values at or below a layer are marked
    invalid there). Returns ``interrupted`` (True after Ctrl-C: what finished is kept)."""
    workers = worker_count() if workers is None else workers
    interrupted = False
    with single_threaded_blas():      # the workers are the parallelism (see ._blas)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_prefix)
        futures = {}
        try:
            submitted = 0
            for c in range(n_chunks):
                while submitted < n_chunks and submitted < c + 2 * workers:
                    futures[submitted] = pool.submit(simulate_chunk, plan, submitted)
                    submitted += 1
                stats = futures.pop(c).result()
                finite = np.isfinite(stats).all(axis=-1)
                valid = np.logical_and.accumulate(finite, axis=1)
                sums.add(stats, valid)
                if progress is not None:
                    progress(stats.shape[0])
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for f in futures.values():
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
    return interrupted


def run_widths(network, widths, samples, progress, label, check_memory, run_one):
    """Validate and run one simulation per width: ``run_one(net, step)`` returns a
    result with ``.interrupted``; a Ctrl-C stops after the current width."""
    nets = networks_for_widths(network, widths)
    for net in nets:
        if net.width < 2:
            raise ParameterError("width", f"must be an integer >= 2 (pairs of neurons i != k), got {net.width}")
        check_memory(net)
    step, bar = progress_callback(progress, samples * len(nets), label)
    results = []
    try:
        for net in nets:
            results.append(run_one(net, step))
            if results[-1].interrupted:
                break
    finally:
        if bar is not None:
            bar.close()
    return results, len(nets)



def summarize_sums(sums, estimator, keys, ratio_keys, requested, interrupted, notes):
    """Jackknife estimates from block sums plus the per-layer overflow accounting.

    ``estimator(S, N)`` returns {("c", key): values, ("r", ratio): values}. Returns the
    result fields shared by the samplers' result objects (``notes`` is extended)."""
    from .estimators import jackknife

    S, N = sums.used()
    L = S.shape[1] if S.ndim == 3 else sums.sums.shape[1]
    done = sums.networks
    full, corrected, se = jackknife(estimator, S, N)
    valid = N.sum(axis=0) if len(N) else np.zeros(L, dtype=np.int64)
    overflow = 1.0 - valid / done if done else np.zeros(L)
    hit = np.flatnonzero(overflow > 0)
    if hit.size:
        first = hit[0]
        notes.append(f"overflow: from layer {first + 1} on, networks with non-finite values at or below "
                     f"a layer are excluded from it ({overflow[first]:.1%} at layer {first + 1}, "
                     f"{overflow[-1]:.1%} at layer {L}; see 'overflow')")
    bad = np.flatnonzero(valid < 2)
    if bad.size and done:
        import warnings

        from ..errors import AccuracyWarning

        msg = f"layers {layer_ranges(bad + 1)}: fewer than 2 finite networks; values there are NaN"
        notes.append(msg)
        warnings.warn(msg, AccuracyWarning, stacklevel=4)
    if interrupted:
        notes.append(f"interrupted: {done} of {requested} networks finished")
    return dict(samples=done, layers=np.arange(1, L + 1),
                values={k: full[("c", k)] for k in keys}, errors={k: se[("c", k)] for k in keys},
                ratios={k: corrected[("r", k)] for k in ratio_keys},
                ratio_errors={k: se[("r", k)] for k in ratio_keys},
                overflow=overflow, valid=valid, interrupted=interrupted, notes=notes,
                samples_requested=requested, _sums=S, _counts=N)


def usable_widths(results, planned):
    """(interrupted, the results with >= 2 networks, notes, 1/n per usable width and
    layer) of a width scan; layer 1's fan-in is input_dim, the others' the width."""
    L = results[0].network.depth
    interrupted = any(r.interrupted for r in results)
    usable = [r for r in results if r.samples >= 2]
    notes = [f"width {r.network.width}: {note}" for r in results for note in r.notes]
    if interrupted:
        notes.append(f"interrupted: {len(usable)} of {planned} widths have results")
    inv_n = np.array([[1.0 / r.network.input_dim] + [1.0 / r.network.width] * (L - 1) for r in usable])
    return interrupted, usable, notes, inv_n


def combine_widths(results, planned, samples, keys, ratio_keys):
    """Width scan: weighted fits X(n) = c0 + c1/n (and, with three or more widths,
    c0 + c1/n + c2/n^2, chosen by :func:`.estimators.fit_widths`) per layer and
    quantity; returns the shared result fields, the
    top-level values being the intercepts c0, with an :class:`.sampling.Extrapolation`."""
    from .estimators import fit_widths
    from .sampling import Extrapolation

    L = results[0].network.depth
    interrupted, usable, notes, inv_n = usable_widths(results, planned)
    vals, errs, slopes, slope_errs, chi2, dof, pvals, model, fits = ({} for _ in range(9))
    sources = [(k, "values", "errors") for k in keys]
    sources += [(k, "ratios", "ratio_errors") for k in ratio_keys]
    for key, vattr, eattr in sources:
        if len({r.network.width for r in usable}) >= 2:
            fit = fit_widths(inv_n, [getattr(r, vattr)[key] for r in usable],
                             [getattr(r, eattr)[key] for r in usable])
        else:
            fit = {k: np.full(L, np.nan) for k in ("c0", "c0_se", "c1", "c1_se", "chi2", "p")}
            fit.update(dof=np.zeros(L, dtype=int), model=np.full(L, 2, dtype=int), linear=None,
                       quadratic=None)
        vals[key], errs[key] = fit["c0"], fit["c0_se"]
        slopes[key], slope_errs[key], chi2[key], dof[key] = fit["c1"], fit["c1_se"], fit["chi2"], fit["dof"]
        pvals[key], model[key] = fit["p"], fit["model"]
        fits[key] = {"linear": fit["linear"], "quadratic": fit["quadratic"]}
    ex = Extrapolation(widths=[r.network.width for r in results], per_width=results, values=vals,
                       errors=errs, slopes=slopes, slope_errors=slope_errs, chi2=chi2, dof=dof,
                       pvalues=pvals, model=model, fits=fits)
    return dict(
        samples=samples if not interrupted else min(r.samples for r in results),
        layers=np.arange(1, L + 1),
        values={k: vals[k] for k in keys}, errors={k: errs[k] for k in keys},
        ratios={k: vals[k] for k in ratio_keys}, ratio_errors={k: errs[k] for k in ratio_keys},
        overflow=np.max([r.overflow for r in results], axis=0),
        valid=np.min([r.valid for r in results], axis=0),
        extrapolation=ex, interrupted=interrupted, notes=notes, samples_requested=samples)


def result_dict(result, keys, **extra):
    """Plain-JSON layout shared by the samplers' results: network (with input_norm),
    layers, one list per key and "<key>_se", ratios, ratios_se, samples, seed, the
    ``extra`` entries, overflow accounting, notes and the width extrapolation."""
    out = {"network": dict(result.network.to_dict(), input_norm=result.input_norm),
           "layers": result.layers.tolist()}
    out.update({key: result.values[key] for key in keys})
    out.update({key + "_se": result.errors[key] for key in keys})
    out.update(ratios=dict(result.ratios), ratios_se=dict(result.ratio_errors),
               samples=result.samples, seed=result.seed, **extra,
               overflow=result.overflow, valid_samples=result.valid,
               interrupted=result.interrupted, notes=list(result.notes))
    if result.samples_requested is not None and result.samples_requested != result.samples:
        out["samples_requested"] = result.samples_requested
    if result.extrapolation is not None:
        out["extrapolation"] = result.extrapolation.to_dict()
    return out
