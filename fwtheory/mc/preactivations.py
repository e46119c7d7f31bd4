"""Monte Carlo of the preactivation statistics through order 1/n^2 (no NTK).

What the order-2 theory (:mod:`fwtheory.next_order`) predicts, single input,
layer l, n = n_{l-1}, distinct neurons i, j, k:

    K_meas  = E[z_i^2]                                  (= K + G1/n + G2/n^2 + ...)
    V_meas  = n (E[z_i^2 z_k^2] - E[z_i^2] E[z_k^2])     (= V + V1/n + ...)
    U6_meas = n^2 kappa(z_i^2, z_j^2, z_k^2)            (= U6 + O(1/n))
            = n^2 (E[z_i^2 z_j^2 z_k^2] - 3 E[z_i^2 z_j^2] E[z_k^2] + 2 E[z^2]^3)

plus G1_meas = n (E[z_i^2] - K_inf) and E[z^4] (key "z4"). Networks as in
:func:`fwtheory.mc.simulate` (Gaussian, Haar-orthogonal, uniform, Rademacher
weights, optionally residual), but only z is propagated, and for the
rotation-invariant ensembles (Gaussian, orthogonal) the hidden layers are drawn
in distribution from n numbers each (:func:`_simulate_chunk`), so a network costs
O(L n) (O(L n^2) for uniform and Rademacher weights) instead of the O(L n^3) of
the NTK: the ~10^6 networks that resolve 1/n^2 terms are affordable.

Estimators: per network and layer the neuron means, from the power sums
S_p = sum_i z_i^(2p),

    a = S_1 / n,   b = (S_1^2 - S_2) / (n (n-1)),   c = (S_1^3 - 3 S_1 S_2 + 2 S_3) / (n (n-1) (n-2))

(means over ordered pairs and triples of distinct neurons), and over N
independent networks U-statistics, products of expectations always taken over
*different* networks:

    E[a]^2   ~ (sum a)^2 - sum a^2                          / (N (N-1))
    E[b]E[a] ~ (sum b)(sum a) - sum ab                      / (N (N-1))
    E[a]^3   ~ (sum a)^3 - 3 (sum a)(sum a^2) + 2 sum a^3   / (N (N-1) (N-2))

so every estimate is unbiased; standard errors by the delete-one-block
jackknife over networks (:func:`fwtheory.mc.estimators.jackknife`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["simulate_preactivations", "PreactivationSimulation", "KEYS", "estimate_memory"]

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_int
from ..network import Network, check_input_norm
from ._runner import (SamplerResult, combine_widths, refuse_if_too_big, result_dict, run_chunks, run_widths,
                      summarize_sums, worker_count)
from .ensembles import chunk_generator, draw_biases, draw_weight_normals, first_layer_preactivations
from .estimators import BlockSums

#: measured quantities (values/errors keys)
KEYS = ("K", "G1", "V", "U6", "z4")
RATIO_KEYS = ("V/K^2", "G1/K", "U6/K^3")
STATS = ("a", "b", "c", "z4")                       # per network and layer
_SUMS = STATS + ("aa", "ab", "aaa")                 # summed over networks
TARGET_BLOCKS = 200
_STREAM = 0x5A325A32                                # spawn-key prefix: streams of their own


@dataclass
class PreactivationSimulation(SamplerResult):
    """Result of :func:`simulate_preactivations` (fields:
    :class:`._runner.SamplerResult`): ``values``/``errors`` hold "K" (the
    measured E[z_i^2]), "G1", "V", "U6" (normalizations in the module docstring)
    and "z4" (E[z_i^4]); ``ratios`` "V/K^2", "G1/K", "U6/K^3" (K the measured
    E[z^2])."""

    def to_dict(self):
        return result_dict(self, KEYS)


def _extend(stats):
    a, b = stats[..., 0], stats[..., 1]
    return np.concatenate([stats, np.stack([a * a, a * b, a * a * a], axis=-1)], axis=-1)


def _estimator(n_prev, K_inf):
    def estimate(S, N):
        with np.errstate(all="ignore"):
            N = np.asarray(N, dtype=float)
            A, B, Cc, Z4, AA, AB, AAA = (S[..., j] for j in range(len(_SUMS)))
            Ea, Eb, Ec = A / N, B / N, Cc / N
            pairs = N * (N - 1.0)
            Ea2 = (A * A - AA) / pairs
            EbEa = (B * A - AB) / pairs
            Ea3 = (A ** 3 - 3.0 * A * AA + 2.0 * AAA) / (pairs * (N - 2.0))
            vals = {"K": Ea, "G1": n_prev * (Ea - K_inf), "V": n_prev * (Eb - Ea2),
                    "U6": n_prev ** 2 * (Ec - 3.0 * EbEa + 2.0 * Ea3), "z4": Z4 / N}
            ratios = {"V/K^2": vals["V"] / Ea ** 2, "G1/K": vals["G1"] / Ea, "U6/K^3": vals["U6"] / Ea ** 3}
        out = {("c", k): v for k, v in vals.items()}
        out.update({("r", k): v for k, v in ratios.items()})
        return out
    return estimate


def layer_statistics(z):
    """(C, n) preactivations -> (C, 4) per-network statistics a, b, c, mean z^4
    (module docstring). Needs n >= 3 for c (NaN otherwise)."""
    n = z.shape[-1]
    z2 = z * z
    s1 = z2.sum(axis=-1)
    z4 = z2 * z2
    s2 = z4.sum(axis=-1)
    s3 = (z4 * z2).sum(axis=-1)
    with np.errstate(all="ignore"):
        b = (s1 * s1 - s2) / (n * (n - 1.0))
        c = (s1 ** 3 - 3.0 * s1 * s2 + 2.0 * s3) / (n * (n - 1.0) * (n - 2.0)) if n > 2 else np.nan * s1
    return np.stack([s1 / n, b, c, s2 / n], axis=-1)


def _chunk_size(network):
    """Networks per chunk (a function of the width and the ensemble only)."""
    n = network.width
    if network.ensemble in ROTATION_INVARIANT:
        return int(min(4096, max(1, (1 << 17) // n)))
    return int(min(1024, max(1, (1 << 18) // (n * n))))


#: ensembles for which W s is drawn in distribution from n numbers (module docstring)
ROTATION_INVARIANT = ("gaussian", "orthogonal")


def _simulate_chunk(plan, c):
    """Statistics (C, L, 4) of the networks of chunk ``c``. Draw order: z^(1), then per
    layer l = 2..L its biases and the weight numbers.

    Gaussian and orthogonal hidden layers are drawn in distribution: W is
    independent of the layers below, so given s = sigma(z^(l)), W s is
    N(0, (C_W/n) |s|^2 I) for Gaussian W and sqrt(C_W) |s| times a uniform unit
    vector g/|g| (g standard normal) for W = sqrt(C_W) O, O Haar (O s is uniform on
    the sphere of radius |s|); n normals per layer instead of n^2 (the first layer
    of :func:`fwtheory.mc.ensembles.first_layer_preactivations` uses the same fact).
    The uniform and Rademacher ensembles are not rotation invariant: their weight
    matrices are drawn."""
    from .ensembles import standard_normals

    net, q0 = plan["network"], plan["input_norm"]
    n, L = net.width, net.depth
    C = min(plan["chunk"], plan["samples"] - c * plan["chunk"])
    rng = chunk_generator(plan["seeds"][c])
    out = np.empty((C, L, len(STATS)))
    z = first_layer_preactivations(rng, net, C, q0)
    out[:, 0] = layer_statistics(z)
    kind = net.ensemble
    scale = math.sqrt(net.C_W / n)
    g = np.empty((C, n)) if kind in ROTATION_INVARIANT else None
    with np.errstate(all="ignore"):          # overflowed networks are excluded afterwards
        for l in range(1, L):
            bias = draw_biases(rng, net.C_b, (C, n))
            s = net.activation.derivatives(z, 0)[0]
            if kind == "gaussian":
                standard_normals(rng, C, n, out=g)
                ws = np.sqrt(np.einsum("ci,ci->c", s, s) / n * net.C_W)[:, None] * g
            elif kind == "orthogonal":
                standard_normals(rng, C, n, out=g)
                ratio = np.sqrt(net.C_W * np.einsum("ci,ci->c", s, s) / np.einsum("ci,ci->c", g, g))
                ws = ratio[:, None] * g
            else:
                R = draw_weight_normals(rng, kind, C, n)
                ws = scale * np.matmul(R, s[:, :, None])[:, :, 0]
            block = bias + ws
            z = block if net.residual is None else z + net.residual * block
            out[:, l] = layer_statistics(z)
    return out


def estimate_memory(network, workers=None):
    """Peak bytes: chunks in flight (2 per worker) with their weights and statistics."""
    n, L = network.width, network.depth
    workers = workers or worker_count()
    C = _chunk_size(network)
    return 2 * workers * 8 * C * (3 * n * n + 6 * n + 4 * L) + 8 * TARGET_BLOCKS * L * len(_SUMS)


def _check_memory(network):
    refuse_if_too_big(network, estimate_memory(network), "width")


def _run(network, samples, seed, input_norm, progress):
    n = network.width
    chunk = _chunk_size(network)
    n_chunks = -(-samples // chunk)
    root = np.random.SeedSequence(seed, spawn_key=(_STREAM, n))
    plan = dict(network=network, input_norm=input_norm, chunk=chunk, samples=samples,
                seeds=tuple(root.spawn(n_chunks)))
    block = max(1, -(-samples // TARGET_BLOCKS))
    sums = BlockSums(network.depth, block, -(-samples // block), n_sums=len(_SUMS), extend=_extend)
    network.activation.derivatives(np.zeros(1), 0)     # build lambdified functions up front
    interrupted = run_chunks(_simulate_chunk, plan, n_chunks, sums, progress, "fwtheory-mc-preact")
    return sums, interrupted


def _summarize(network, seed, input_norm, sums, requested, interrupted):
    from .sampling import _infinite_width

    L = network.depth
    notes = []
    K_inf, _ = _infinite_width(network, input_norm, notes)
    n_prev = np.full(L, float(network.width))
    n_prev[0] = network.input_dim
    fields = summarize_sums(sums, _estimator(n_prev, K_inf), KEYS, RATIO_KEYS, requested, interrupted, notes)
    return PreactivationSimulation(network=network, seed=seed, input_norm=input_norm, **fields)


def simulate_preactivations(network: Network, samples: int, seed: int, widths: Sequence[int] | None = None,
                            input_norm: float = 1.0, progress: Any = None) -> PreactivationSimulation:
    """Monte Carlo estimates of E[z^2], V, U6 (and G1, E[z^4]) without the NTK.

    Parameters
    ----------
    network : Network
        As for :func:`fwtheory.mc.simulate` (all four ensembles, ``residual``);
        width >= 3 (the six-point function needs three distinct neurons).
    samples : int >= 3
        Independent networks per width.
    seed : int >= 0
        Width ``n``, chunk ``c`` draw from ``SeedSequence(seed, spawn_key=(0x5A325A32, n, c))``:
        bit-identical at any thread count.
    widths : list of int >= 3, optional
        Run every width and fit X(n) = c0 + c1/n [+ c2/n^2] per layer
        (:class:`fwtheory.mc.Extrapolation`).
    input_norm : float
        q0 = |x|^2 / n0 of the input x = sqrt(q0) (1, ..., 1).
    progress : None, True, callable(k) or object with ``update(k)``

    Returns
    -------
    PreactivationSimulation
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    samples = check_int("samples", samples, lower=3)
    seed = check_int("seed", seed, lower=0)
    input_norm = check_input_norm(network, input_norm)

    def check(net):
        if net.width < 3:
            raise ParameterError("width", f"must be >= 3 (the six-point function needs three distinct "
                                          f"neurons), got {net.width}")
        _check_memory(net)

    def run_one(net, step):
        sums, interrupted = _run(net, samples, seed, input_norm, step)
        return _summarize(net, seed, input_norm, sums, samples, interrupted)

    results, planned = run_widths(network, widths, samples, progress, "preactivations", check, run_one)
    if widths is None:
        return results[0]
    fields = combine_widths(results, planned, samples, KEYS, RATIO_KEYS)
    return PreactivationSimulation(network=network, seed=seed, input_norm=input_norm, **fields)
