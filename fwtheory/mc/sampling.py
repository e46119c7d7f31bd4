"""Public Monte Carlo entry point: :func:`simulate` and its :class:`Simulation` result.

What is simulated (docs/conventions.md; PDLT Ch. 4 and 8): N independent
networks of the given :class:`~fwtheory.network.Network`, one input
x = sqrt(q0) (1, ..., 1) in R^{n0}, every layer l = 1..L:

    z^(1) = b + W x,   z^(l+1) = b + W sigma(z^(l))
    H^(1) = (lambda_b + lambda_W q0) I
    H^(l+1)_{i1 i2} = delta_{i1 i2} [lambda_b + lambda_W (1/n_l) sum_j sigma_j^2]
                      + sum_{j1 j2} W_{i1 j1} W_{i2 j2} sigma'_{j1} sigma'_{j2} H^(l)_{j1 j2}

(the full n x n NTK matrix). Weight ensembles: Gaussian, Haar-orthogonal,
i.i.d. uniform and i.i.d. Rademacher (:mod:`fwtheory.mc.ensembles`); the NTK
equation does not depend on the weight law. Residual networks
(``Network(residual=gamma)``, PDLT appendix B) use, for l >= 1,

    z^(l+1) = z^(l) + gamma (b + W sigma(z^(l)))
    H^(l+1) = A H^(l) A^T + gamma^2 delta_{i1 i2} [lambda_b + lambda_W (1/n_l) sum_j sigma_j^2],
    A = I + gamma W diag(sigma'(z^(l)))

and G1, Theta1 are measured against the residual infinite-width recursions
(:func:`residual_infinite_width`). From each network's neuron means and pair means
(i != k) the estimators of :mod:`fwtheory.mc.estimators` give the correlators
of :mod:`fwtheory.quantities` (same names and normalizations as ``predict``)
with delete-one-block jackknife errors over networks.

Execution: the networks are split into chunks of a size that depends only on
the width; chunk c draws all its randomness from its own SFC64 stream seeded
by ``SeedSequence(seed, spawn_key=(width, c))``, runs the numba kernels
layer by layer, and the chunks are reduced in chunk order. Chunks run
concurrently on ``numba.get_num_threads()`` Python threads (the kernels and
numpy's bulk random fills release the GIL), so the random-number generation
is parallel too and the numbers are bit-identical for any thread count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from .multi_input import GramSimulation

__all__ = ["simulate", "Simulation", "Extrapolation", "estimate_memory"]

import math
import threading
from dataclasses import dataclass

import numpy as np

from .. import quantities
from ..errors import FwtheoryError, ParameterError, check_int, check_real
from ..network import Network, check_input_norm
from . import _blas, _kernels
from .ensembles import (chunk_generator, draw_biases, draw_weight_normals, first_layer_preactivations,
                        uniform_scratch_size, weight_normal_count)
from ._runner import (SamplerResult, combine_widths, refuse_if_too_big, result_dict, run_chunks, run_widths,
                      summarize_sums, worker_count)
from .estimators import BlockSums, correlators, jackknife, moments

TARGET_BLOCKS = 200          # jackknife blocks (fewer when there are fewer networks)


# ----------------------------------------------------------------- results
@dataclass
class Simulation(SamplerResult):
    """Result of :func:`simulate` (fields: :class:`._runner.SamplerResult`).

    ``values``/``errors`` hold every key of ``quantities.CORRELATORS``,
    ``ratios``/``ratio_errors`` the ``quantities.RATIOS``.
    """

    def jackknife(self, function):
        """Estimate ``function(m)`` of the moment estimates ``m`` with a jackknife
        error; ``m`` maps "z2", "z4", "h", "h2", "z2z2", "hz2", "hh", "hzz",
        "hik2" (network means of neuron/pair means, see ``_kernels.STAT_NAMES``)
        and "Ez2^2", "Eh^2", "EhEz2" (cross-network products) to (L,) arrays.
        Returns ``(value, se)`` (bias-corrected value). Example: the deep-linear
        ratio E[z^4] / (3 E[z^2]^2) is ``sim.jackknife(lambda m: m["z4"] / (3 * m["Ez2^2"]))``.
        """
        if self._sums is None:
            raise FwtheoryError("jackknife needs a single-width simulation (see .extrapolation.per_width)")
        _, corr, se = jackknife(lambda S, N: {"x": function(moments(S, N))}, self._sums, self._counts)
        return corr["x"], se["x"]

    def to_dict(self):
        """Plain-JSON dictionary (keys: network, layers, the correlators and
        "<key>_se", ratios, ratios_se, samples, seed, overflow, ...)."""
        return result_dict(self, quantities.CORRELATORS)


@dataclass
class Extrapolation:
    """Width extrapolation per layer, for every correlator and ratio: weighted
    least squares with the jackknife errors (n = n_{l-1}) of two models,

        "linear":    X(n) = c0 + c1/n
        "quadratic": X(n) = c0 + c1/n + c2/n^2      (three or more widths)

    and a choice between them (:func:`fwtheory.mc.estimators.fit_widths`): the
    linear model unless its chi^2 p-value is below 0.05
    (``estimators.MODEL_P_VALUE``) while the quadratic one is not rejected
    (p >= 0.05, or no degrees of freedom left with exactly three widths).

    ``values``/``errors`` hold c0 and its standard error of the chosen model
    (the measured leading-order coefficient), ``slopes``/``slope_errors`` its
    c1, ``chi2``/``dof``/``pvalues`` its goodness of fit (the p-value is NaN, null
    in JSON, where it is undefined: no degrees of freedom left, or exact values
    such as K at layer 1), ``model`` the number of
    coefficients chosen (2 or 3) per layer; ``fits[key]`` has both models'
    coefficients, errors, chi2, dof and p ("quadratic" None with two widths);
    ``per_width`` the single-width results.
    """

    widths: list
    per_width: list
    values: dict
    errors: dict
    slopes: dict
    slope_errors: dict
    chi2: dict
    dof: dict
    pvalues: dict = None
    model: dict = None
    fits: dict = None

    def to_dict(self):
        def plain(fit):
            return None if fit is None else {k: v for k, v in fit.items()}

        out = {
            "model": "X(n) = c0 + c1/n [+ c2/n^2], n = n_{l-1}; weighted least squares with the "
                     "jackknife errors; the 3-term model where the 2-term one has chi^2 p < 0.05 and "
                     "the 3-term one does not",
            "widths": list(self.widths),
            "c0": dict(self.values), "c0_se": dict(self.errors),
            "c1": dict(self.slopes), "c1_se": dict(self.slope_errors),
            "chi2": dict(self.chi2), "dof": dict(self.dof),
        }
        if self.model is not None:
            out["p"] = dict(self.pvalues)
            out["terms"] = dict(self.model)
            out["fits"] = {k: {"linear": plain(f["linear"]), "quadratic": plain(f["quadratic"])}
                           for k, f in self.fits.items()}
        out["per_width"] = [s.to_dict() for s in self.per_width]
        return out


BLAS_PARALLEL_WIDTH = 128

# ------------------------------------------------------------- validation
def _chunk_size(n):
    """Networks per chunk: ~2^17 NTK entries per chunk (a function of the width only)."""
    return int(min(256, max(1, (1 << 17) // (n * n))))




def estimate_memory(network, workers=None):
    """Peak bytes of a run of ``network``: chunks in flight (2 per worker thread)
    each holding z, H (twice), the random normals and the per-layer statistics,
    plus the jackknife block sums."""
    n, L = network.width, network.depth
    workers = workers or worker_count()
    C = _chunk_size(n)
    per_chunk = 8 * (C * (3 * n * n + 6 * n) + 4 * n * n + C * L * (_kernels.NSTAT + 4))
    return 2 * workers * per_chunk + 8 * TARGET_BLOCKS * L * 14




def _check_memory(network):
    need = estimate_memory(network)
    n, L = network.width, network.depth
    # name the parameter that dominates the estimate
    depth_part = 2 * worker_count() * 8 * _chunk_size(n) * L * (_kernels.NSTAT + 4) + 8 * TARGET_BLOCKS * L * 14
    refuse_if_too_big(network, need, "depth" if depth_part > need / 2 else "width")




# --------------------------------------------------------------- sampling
@dataclass(frozen=True)
class _Plan:
    network: Network
    input_norm: float
    chunk: int
    n_chunks: int
    samples: int
    seeds: tuple


_buffers = threading.local()


def _buffer(name, shape):
    """A per-thread work array reused across chunks (fresh allocations of
    megabytes cost page faults on every layer)."""
    store = getattr(_buffers, "arrays", None)
    if store is None:
        store = _buffers.arrays = {}
    size = int(np.prod(shape))
    arr = store.get(name)
    if arr is None or arr.size < size:
        arr = store[name] = np.empty(size)
    return arr[:size].reshape(shape)


def _simulate_chunk(plan, c):
    """All layers of the networks of chunk ``c``: statistics (C, L, NSTAT).

    Random draws, in this order: z^(1) (biases, then W x), then per layer
    l = 2..L the biases (when C_b > 0) and the weight normals.
    """
    net, q0 = plan.network, plan.input_norm
    n, L = net.width, net.depth
    C = min(plan.chunk, plan.samples - c * plan.chunk)
    rng = chunk_generator(plan.seeds[c])
    act = net.activation
    stats = np.empty((L, C, _kernels.NSTAT))
    z = _buffer("z", (C, n))
    z[:] = first_layer_preactivations(rng, net, C, q0)
    H = _buffer("H", (C, n, n))
    H[:] = 0.0
    idx = np.arange(n)
    H[:, idx, idx] = net.lambda_b + net.lambda_W * q0
    _kernels.layer_stats(z, H, stats[0])
    z_next, H_next = _buffer("z_next", (C, n)), _buffer("H_next", (C, n, n))
    count = weight_normal_count(net.ensemble, n)
    normals = _buffer("normals", (C, count))
    gaussian_draws = net.ensemble in ("gaussian", "orthogonal")   # the ziggurat's uniform scratch
    scratch = _buffer("uniforms", (uniform_scratch_size(C, count),)) if gaussian_draws else None
    none = np.empty((C, 0))
    if net.ensemble != "orthogonal":      # i.i.d. ensembles: standardized entries, scaled here
        kernel, scale = _kernels.propagate_dense, math.sqrt(net.C_W / n)
    else:
        kernel, scale = _kernels.propagate_haar, math.sqrt(net.C_W)
    if net.residual is not None:
        residual = (_kernels.propagate_residual_haar if net.ensemble == "orthogonal"
                    else _kernels.propagate_residual_dense)

        def kernel(code, slope, scale, *rest):
            residual(code, slope, scale, net.residual, *rest)
    for l in range(1, L):
        bias = draw_biases(rng, net.C_b, (C, n))
        R = draw_weight_normals(rng, net.ensemble, C, n, out=normals, scratch=scratch)
        if act.code >= 0:
            s = sp = none
        else:  # custom activation: sigma, sigma' from its numpy derivatives
            with np.errstate(all="ignore"):
                d = act.derivatives(z, 1)
            s, sp = np.ascontiguousarray(d[0]), np.ascontiguousarray(d[1])
        kernel(act.code, act.slope, scale, net.lambda_b, net.lambda_W, z, H, s, sp, R, bias,
               z_next, H_next, stats[l])
        z, z_next = z_next, z
        H, H_next = H_next, H
    return stats.transpose(1, 0, 2)


def _run(network, samples, seed, input_norm, progress):
    """Sample ``samples`` networks in chunks; returns (BlockSums, interrupted)."""
    n = network.width
    chunk = _chunk_size(n)
    n_chunks = -(-samples // chunk)
    root = np.random.SeedSequence(seed, spawn_key=(n,))
    plan = _Plan(network, input_norm, chunk, n_chunks, samples, tuple(root.spawn(n_chunks)))
    block = max(1, -(-samples // TARGET_BLOCKS))
    sums = BlockSums(network.depth, block, -(-samples // block))
    if network.activation.code < 0:      # build the lambdified derivatives once, up front
        network.activation.derivatives(np.zeros(1), 1)
    # BLAS is single-threaded while the workers run (_blas). Where that cannot be set, from
    # n = BLAS_PARALLEL_WIDTH on OpenBLAS runs each n x n product on all cores itself and
    # worker threads on top of it oversubscribe the cores (measured: 2 workers 2x slower
    # than 1 at n = 128 and 192 on 2 cores), so one worker. Chunk order, hence the numbers,
    # are unchanged.
    workers = 1 if n >= BLAS_PARALLEL_WIDTH and not _blas.available() else None
    interrupted = run_chunks(_simulate_chunk, plan, n_chunks, sums, progress, "fwtheory-mc", workers)
    return sums, interrupted


def _infinite_width(network, input_norm, notes):
    """K_inf, Theta_inf per layer from ``fwtheory.kernel`` (NaN with a note on failure).

    The i.i.d. uniform and Rademacher ensembles have the Gaussian infinite-width
    limit (only the variance C_W / n enters at leading order), so their K_inf and
    Theta_inf are the Gaussian ones. Residual networks: :func:`residual_infinite_width`."""
    from ..kernel import infinite_width

    try:
        if network.residual is not None:
            return residual_infinite_width(network, input_norm)
        plain = network.replace(ensemble="gaussian", first_layer="gaussian", input_dim=network.input_dim)
        res = infinite_width(plain, input_norm)
        K, T = np.asarray(res.K, float), np.asarray(res.Theta, float)
    except FwtheoryError as exc:
        notes.append(f"G1 and Theta1 unavailable: infinite-width kernel failed ({exc})")
        K = T = np.full(network.depth, np.nan)
    return K, T


def residual_infinite_width(network, input_norm=1.0):
    """(K, Theta), arrays (L,), of a residual network at infinite width.

    With z^(l+1) = z^(l) + gamma (b + W sigma(z^(l))) the cross terms between
    z^(l) and the new block vanish in expectation (W is independent of layer l
    and has mean zero), so (cf. PDLT appendix B; shortcut weight 1, block weight gamma)

        K^(l+1)     = K^(l) + gamma^2 (C_b + C_W <sigma^2>_K)
        Theta^(l+1) = (1 + gamma^2 C_W <sigma'^2>_K) Theta^(l)
                      + gamma^2 (lambda_b + lambda_W <sigma^2>_K)

    from K^(1) = C_b + C_W q0, Theta^(1) = lambda_b + lambda_W q0 (Gaussian
    expectations by :func:`fwtheory.gauss.expect_monomials`). For sigma(z) = z
    and C_b = 0 these are K^(l+1) = (1 + gamma^2 C_W) K^(l) and
    Theta^(l+1) = (1 + gamma^2 C_W) Theta^(l) + gamma^2 (lambda_b + lambda_W K^(l)).
    """
    from ..gauss import expect_monomials
    from ..errors import NumericalError

    g2 = network.residual ** 2
    L, act = network.depth, network.activation
    K, T = np.empty(L), np.empty(L)
    K[0] = network.C_b + network.C_W * input_norm
    T[0] = network.lambda_b + network.lambda_W * input_norm
    for i in range(L - 1):
        if not (np.isfinite(K[i]) and K[i] > 0):
            raise NumericalError(f"residual kernel K^({i + 1}) = {K[i]:g} is not finite and > 0")
        s2, sp2 = expect_monomials(act, K[i], [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
        K[i + 1] = K[i] + g2 * (network.C_b + network.C_W * s2)
        T[i + 1] = (1.0 + g2 * network.C_W * sp2) * T[i] + g2 * (network.lambda_b + network.lambda_W * s2)
    return K, T


def _estimator(n_prev, K_inf, Theta_inf):
    def estimate(S, N):
        vals = correlators(moments(S, N), n_prev, K_inf, Theta_inf)
        out = {("c", k): v for k, v in vals.items()}
        out.update({("r", k): v for k, v in quantities.ratio_values(vals).items()})
        return out
    return estimate


def _summarize(network, seed, input_norm, sums, requested, interrupted):
    L = network.depth
    notes = []
    K_inf, Theta_inf = _infinite_width(network, input_norm, notes)
    n_prev = np.full(L, float(network.width))
    n_prev[0] = network.input_dim
    fields = summarize_sums(sums, _estimator(n_prev, K_inf, Theta_inf), quantities.CORRELATORS,
                            quantities.RATIOS, requested, interrupted, notes)
    return Simulation(network=network, seed=seed, input_norm=input_norm, **fields)




def simulate(network: Network, samples: int, seed: int, widths: Sequence[int] | None = None,
             input_norm: float = 1.0, progress: Any = None,
             gram: ArrayLike | None = None) -> Simulation | GramSimulation:
    """Monte Carlo estimates of the single-input correlators, layer by layer.

    Parameters
    ----------
    network : Network
        Architecture, initialization and ensemble ("gaussian", "orthogonal",
        "uniform", "rademacher"; hidden layers square; an orthogonal first layer
        needs ``input_dim == width``), optionally residual (``residual=gamma``).
        The uniform and Rademacher first layers draw the weights explicitly
        (their law is not rotation invariant); the Gaussian and orthogonal
        random streams are those of earlier versions.
    samples : int >= 2
        Independent networks (per width).
    seed : int >= 0
        Seed; width ``n``, chunk ``c`` use ``SeedSequence(seed, spawn_key=(n, c))``,
        so the result is bit-identical for any thread count, and the width-``n``
        run inside an extrapolation equals ``simulate`` at that width.
    widths : list of int >= 2, optional
        Run every width (``input_dim`` follows the width when it equals it in
        ``network``) and fit X(n) = c0 + c1/n per layer (with three or more
        widths also c0 + c1/n + c2/n^2, chosen where the 2-term fit is rejected);
        the result's values are then the intercepts c0 (see :class:`Extrapolation`).
    input_norm : float >= 0
        q0 = |x|^2 / n0 of the input x = sqrt(q0) (1, ..., 1).
    progress : None, True, callable(k) or object with ``update(k)``
        Progress reporting, called with the number of networks just finished;
        ``True`` shows :class:`fwtheory._io.ProgressBar` on stderr.
    gram : (m, m) array or "1,0.5;0.5,1", optional
        Several inputs (m <= 4) with Gram matrix G_ab = x_a . x_b / n0 (symmetric
        positive semi-definite; the input norms are its diagonal, so ``input_norm``
        must stay 1). Every network then propagates all m inputs and the NTK over
        (neuron, input) pairs; the result is a
        :class:`fwtheory.mc.multi_input.GramSimulation` with tensors
        [layer][a][b] (K, G1, Theta, Theta1) and [layer][a][b][c][d]
        (V, D, F, A, B); inputs and definitions in :mod:`fwtheory.mc.multi_input`
        and docs/multi_input.md. Without ``gram`` the single-input results are
        unchanged (bit-identical for a given seed).

    Returns
    -------
    Simulation (GramSimulation with ``gram``)

    Raises
    ------
    ParameterError
        samples < 2, width < 2, widths with entries < 2 or fewer than two
        distinct widths, a non-square orthogonal layer, or an estimated memory
        need above half the machine's RAM (the message gives the estimate).

    Notes
    -----
    A KeyboardInterrupt stops the run cleanly: the networks that finished are
    summarized (``interrupted=True`` and a note).

    Parallelism is over networks, on ``numba.get_num_threads()`` threads; while
    they run, OpenBLAS is set to one thread (process-wide, restored afterwards;
    see :mod:`fwtheory.mc._blas`), because threaded n x n products on top of the
    worker threads oversubscribe the cores.

    Custom (sympy) activations are supported: sigma and sigma' are then
    evaluated by ``Activation.derivatives`` (lambdified numpy code, built when
    the activation was created) between kernel calls; built-in activations are
    evaluated inside the kernels and never touch sympy.
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    samples = check_int("samples", samples, lower=2)
    seed = check_int("seed", seed, lower=0)
    if gram is not None:
        if input_norm != 1.0:
            raise ParameterError("input_norm", "must stay 1 with gram: the input norms are the diagonal "
                                               "of the Gram matrix")
        from .multi_input import simulate_gram

        return simulate_gram(network, samples, seed, gram, widths=widths, progress=progress)
    input_norm = check_input_norm(network, input_norm)   # > 0 when C_b = 0, as in kernel/predict

    def run_one(net, step):
        sums, interrupted = _run(net, samples, seed, input_norm, step)
        return _summarize(net, seed, input_norm, sums, samples, interrupted)

    results, planned = run_widths(network, widths, samples, progress, "simulate", _check_memory, run_one)
    if widths is None:
        return results[0]
    return _combine(network, seed, input_norm, samples, results, planned)


def _combine(network, seed, input_norm, samples, results, planned):
    """Top-level result of a width scan: fits X(n) = c0 + c1/n per layer."""
    fields = combine_widths(results, planned, samples, quantities.CORRELATORS, quantities.RATIOS)
    return Simulation(network=network, seed=seed, input_norm=input_norm, **fields)
