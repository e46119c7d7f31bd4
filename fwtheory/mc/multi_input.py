r"""Monte Carlo with several inputs: ``simulate(network, samples, seed, gram=G)``.

Inputs (G_ab = x_a . x_b / n0, m <= 4, symmetric positive semi-definite). With
the correlation matrix rho_ab = G_ab / sqrt(G_aa G_bb) and its lower-triangular
Cholesky factor R (R R^T = rho; a semi-definite rho gives zero columns), the
inputs are

    x_a = sqrt(G_aa) sum_j R_aj v_j,   v_0 = (1, ..., 1),

with v_1, v_2, v_3 the Walsh vectors of +-1 entries, constant on the halves
(v_1: +,-) and quarters (v_2: +,-,+,-; v_3: +,-,-,+) of the n0 coordinates
(orthogonal, |v_j|^2 = n0), so x_a . x_b / n0 = G_ab exactly and a single input
is the x = sqrt(q0) (1, ..., 1) of the single-input sampler. Every entry of every
input is O(1), so the non-rotation-invariant first layers (uniform, Rademacher)
keep their O(1/n) fourth-cumulant terms (docs/conventions.md). They need n0
divisible by 2 (m = 2) or 4 (m >= 3).

First layer, drawn in distribution as in the single-input sampler (the same
random numbers for input 0; the extra numbers for the other inputs come from a
second stream, ``SeedSequence(entropy, spawn_key=chunk key + (1,))``, so the
hidden-layer weights are those of the single-input run with the same seed):

* Gaussian W^(1): W v_j / sqrt(n0) are independent N(0, C_W I) vectors g_j;
  z_a = b + sqrt(C_W G_aa) sum_j R_aj g_j;
* orthogonal W^(1) (n0 = n): O v_j / sqrt(n) are the columns of a Haar frame,
  Gram-Schmidt of independent Gaussian vectors; z_a = b + sqrt(C_W G_aa n) sum_j R_aj f_j;
* uniform W^(1): the n x n0 uniforms are drawn as in the single-input sampler
  and summed over the halves/quarters;
* Rademacher W^(1): the number B of +1 signs among the n0 of a row is
  Binomial(n0, 1/2) (as in the single-input sampler) and its split over the
  halves and quarters hypergeometric (exact).

Every network propagates all m inputs and the NTK over (neuron, input) pairs
(:mod:`._kernels_multi`). Correlators (definitions in docs/multi_input.md;
PDLT arXiv:2106.10165 Ch. 4, 8 with sample indices), n = n_{l-1}, i != k:

    E[z_{i;a} z_{i;b}]                          = K_ab + G1_ab / n
    Cov(z_{i;a} z_{i;b}, z_{k;c} z_{k;d})       = V_abcd / n
    E[H_{ii;ab}]                                = Theta_ab + Theta1_ab / n
    Cov(H_{ii;ab}, z_{k;c} z_{k;d})             = D_abcd / n
    E[H_{ik;ab} z_{i;c} z_{k;d}]                = F_abcd / n
    Cov(H_{ii;ab}, H_{kk;cd})                   = A_abcd / n
    E[H_{ik;ab} H_{ik;cd}]                      = B_abcd / n

estimated per network by U-statistics over neuron pairs and, for products of
expectations, over pairs of different networks (unbiased), with the
delete-one-block jackknife of :mod:`.estimators`. With m = 1 they are the
single-input correlators.
"""

__all__ = ["simulate_gram", "GramSimulation", "check_gram", "input_vectors", "GRAM_NAMES"]

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import FwtheoryError, ParameterError
from ..network import Network
from . import _kernels_multi
from .ensembles import (chunk_generator, draw_biases, draw_weight_normals, standard_uniforms,
                        uniform_scratch_size, weight_normal_count)
from ._runner import run_chunks, usable_widths, worker_count
from ..gram import MAX_INPUTS
from ..gram import check_gram as check_gram_shared
from .estimators import BlockSums, fit_widths, jackknife

GRAM_NAMES = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")
RANK = {"K": 2, "G1": 2, "Theta": 2, "Theta1": 2, "V": 4, "D": 4, "F": 4, "A": 4, "B": 4}
TARGET_BLOCKS = 200
_FIRST_LAYER_BLOCK = 1 << 20
_WEIGHT_BUFFER = 8 << 20      # bytes of weights drawn ahead for a block of layers (per worker)


# ----------------------------------------------------------------- inputs
def check_gram(gram, network):
    """:func:`fwtheory.gram.check_gram` plus what the sampler needs: input_dim >= m
    (the inputs span up to m directions of R^n0) and, for a uniform or Rademacher
    first layer, input_dim divisible by 2 (m = 2) or 4 (m >= 3) (the +-1 Walsh
    input vectors of the module docstring)."""
    G = check_gram_shared(gram, network)
    m = G.shape[0]
    if network.input_dim < m:
        raise ParameterError("input_dim", f"must be >= the number of inputs m = {m} (the inputs span up "
                                          f"to m directions of R^n0), got {network.input_dim}")
    if m >= 2 and network.first_layer in ("uniform", "rademacher"):
        need = 2 if m == 2 else 4
        if network.input_dim % need:
            raise ParameterError("input_dim", f"must be divisible by {need} for {m} inputs with a "
                                              f"{network.first_layer} first layer (the inputs use +-1 "
                                              f"Walsh vectors), got {network.input_dim}")
    return G


def _correlation_cholesky(G):
    """(sqrt(G_aa), R) with R lower-triangular, R R^T = rho (module docstring).
    Identical inputs give identical rows of R exactly (rho_ab = 1.0)."""
    m = G.shape[0]
    sd = np.sqrt(np.diag(G))
    rho = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            if sd[a] > 0 and sd[b] > 0:
                rho[a, b] = 1.0 if a == b else G[a, b] / math.sqrt(G[a, a] * G[b, b])
    R = np.zeros((m, m))
    for j in range(m):
        d = rho[j, j] - sum(R[j, k] ** 2 for k in range(j))
        if d > 1e-12:
            R[j, j] = math.sqrt(d)
            for i in range(j + 1, m):
                R[i, j] = (rho[i, j] - sum(R[i, k] * R[j, k] for k in range(j))) / R[j, j]
    return sd, R


def _walsh(n0, m):
    """(groups, signs): the coordinate slices of the halves/quarters and the
    +-1 value of v_j on each (rows j = 0..m-1)."""
    if m == 1:
        return [slice(0, n0)], np.ones((1, 1))
    if m == 2:
        h = n0 // 2
        return [slice(0, h), slice(h, n0)], np.array([[1.0, 1.0], [1.0, -1.0]])
    q = n0 // 4
    groups = [slice(0, q), slice(q, 2 * q), slice(2 * q, 3 * q), slice(3 * q, n0)]
    signs = np.array([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], float)[:m]
    return groups, signs


def input_vectors(gram, n0):
    """The inputs x_a (m, n0) the sampler uses for ``gram`` (module docstring);
    x_a . x_b / n0 = G_ab. (The Gaussian and orthogonal first layers never form
    them: only the Gram matrix enters their law.)"""
    G = np.asarray(gram, float)
    m = G.shape[0]
    sd, R = _correlation_cholesky(G)
    if m == 1:
        return sd[0] * np.ones((1, n0))
    groups, signs = _walsh(n0, m)
    v = np.zeros((m, n0))
    for j in range(m):
        for g, sl in enumerate(groups):
            v[j, sl] = signs[j, g] if j < signs.shape[0] else 0.0
    return sd[:, None] * (R @ v)


def _aux_generator(seq):
    """Second random stream of a chunk (extra first-layer numbers for inputs 1..m-1)."""
    return np.random.Generator(np.random.SFC64(
        np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (1,))))


def _combine(coef, basis):
    """sum_j coef[a, j] basis[j] for every a (coef (m, r), basis (r, C, n)) -> (C, m, n),
    term j = 0 first (coefficients 1, 0, ... reproduce basis[0] exactly)."""
    m = coef.shape[0]
    out = np.empty((basis.shape[1], m, basis.shape[2]))
    for a in range(m):
        acc = coef[a, 0] * basis[0]
        for j in range(1, basis.shape[0]):
            acc = acc + coef[a, j] * basis[j]
        out[:, a] = acc
    return out


def first_layer_multi(rng, aux, network, chunk, G):
    """z^(1) (chunk, m, n) for the inputs of ``G`` (module docstring). The draws from
    ``rng`` are those of :func:`.ensembles.first_layer_preactivations`."""
    n, m = network.width, G.shape[0]
    C_W = network.C_W
    sd, R = _correlation_cholesky(G)
    b = draw_biases(rng, network.C_b, (chunk, n))
    kind = network.first_layer
    if kind == "gaussian":
        g = [rng.standard_normal((chunk, n))] + [aux.standard_normal((chunk, n)) for _ in range(m - 1)]
        coef = np.array([[math.sqrt(C_W * G[a, a]) * R[a, j] for j in range(m)] for a in range(m)])
        # single input: b + sqrt(C_W q0) g
        wx = _combine(coef, np.stack(g))
    elif kind == "orthogonal":
        g = [rng.standard_normal((chunk, n))] + [aux.standard_normal((chunk, n)) for _ in range(m - 1)]
        h, nu = [], []
        for j in range(m):                          # Gram-Schmidt: a Haar frame f_j = h_j / nu_j
            v = g[j]
            for hl, nl in zip(h, nu):
                v = v - (np.einsum("ai,ai->a", v, hl) / (nl * nl))[:, None] * hl
            h.append(v)
            nu.append(np.sqrt(np.einsum("ai,ai->a", v, v)))
        wx = np.empty((chunk, m, n))
        for a in range(m):                          # single input: sqrt(C_W q0 n) g / |g|
            acc = math.sqrt(C_W * G[a, a] * n) * R[a, 0] * h[0] / nu[0][:, None]
            for j in range(1, m):
                acc = acc + math.sqrt(C_W * G[a, a] * n) * R[a, j] * h[j] / nu[j][:, None]
            wx[:, a] = acc
    else:
        n0 = network.input_dim
        groups, signs = _walsh(n0, m)
        if kind == "rademacher":
            B = rng.binomial(n0, 0.5, size=(chunk, n))             # +1 signs among the n0 of a row
            total = 2.0 * B - n0
            counts = [B]
            if m >= 2:                                             # split over halves, then quarters
                h = n0 // 2
                B1 = aux.hypergeometric(B, n0 - B, h) if h > 0 else np.zeros_like(B)
                counts = [B1, B - B1]
                if m >= 3:
                    q = n0 // 4
                    B11 = aux.hypergeometric(B1, h - B1, q)
                    B21 = aux.hypergeometric(B - B1, (n0 - h) - (B - B1), q)
                    counts = [B11, B1 - B11, B21, (B - B1) - B21]
            sums = [2.0 * c - (sl.stop - sl.start) for c, sl in zip(counts, groups)]
        else:  # uniform: the draws of the single-input sampler, summed per group too
            rows = max(1, _FIRST_LAYER_BLOCK // n0)
            total = np.empty(chunk * n)
            part = np.empty((len(groups), chunk * n))
            buf = np.empty((min(rows, chunk * n), n0))
            for start in range(0, chunk * n, rows):
                stop = min(start + rows, chunk * n)
                u = standard_uniforms(rng, (stop - start, n0), out=buf[:stop - start])
                np.sum(u, axis=1, out=total[start:stop])
                if m >= 2:
                    for gi, sl in enumerate(groups):
                        part[gi, start:stop] = u[:, sl].sum(axis=1)
            total = total.reshape(chunk, n)
            sums = [p.reshape(chunk, n) for p in part]
        basis = [total] + [sum(signs[j, gi] * sums[gi] for gi in range(len(groups))) for j in range(1, m)]
        coef = np.array([[math.sqrt(C_W * G[a, a] / n0) * R[a, j] for j in range(m)] for a in range(m)])
        wx = _combine(coef, np.stack(basis))
    return b[:, None, :] + wx


# ----------------------------------------------------------------- sampling
def _chunk_size(n):
    """As the single-input sampler (a function of the width only: same chunks, same streams)."""
    return int(min(256, max(1, (1 << 17) // (n * n))))


@dataclass(frozen=True)
class _Plan:
    network: Network
    gram: np.ndarray
    chunk: int
    n_chunks: int
    samples: int
    seeds: tuple
    pa: np.ndarray
    pb: np.ndarray
    po: np.ndarray
    nstat: int


def _layer_block(network, chunk, count):
    """Layers per call of :func:`._kernels_multi.propagate_multi`: as many as keep the
    pre-drawn weights of the chunk within ``_WEIGHT_BUFFER`` bytes (at least one; one
    for custom activations, whose sigma and sigma' are evaluated outside the kernel)."""
    if network.activation.code < 0:
        return 1
    return int(max(1, min(network.depth - 1, _WEIGHT_BUFFER // (8 * chunk * count))))


def _simulate_chunk(plan, c):
    """All layers of the networks of chunk ``c``: statistics (C, L, NS).

    Random draws, in this order: z^(1) (biases, then W x; the extra inputs from the
    second stream), then per layer l = 2..L the biases (when C_b > 0) and the weight
    normals, drawn for a block of layers before the kernel runs the block network by
    network."""
    net, G = plan.network, plan.gram
    n, L, m = net.width, net.depth, G.shape[0]
    p = plan.pa.shape[0]
    C = min(plan.chunk, plan.samples - c * plan.chunk)
    rng = chunk_generator(plan.seeds[c])
    aux = _aux_generator(plan.seeds[c])
    act = net.activation
    stats = np.empty((L, C, plan.nstat))
    from .sampling import _buffer   # per-thread work arrays (no page faults per chunk)

    z = _buffer("gram_z", (C, m, n))
    z[:] = first_layer_multi(rng, aux, net, C, G)
    H = _buffer("gram_H", (C, p, n, n))      # blocks a <= b (pairs plan.pa, plan.pb)
    H[:] = 0.0
    idx = np.arange(n)
    for P in range(p):
        H[:, P, idx, idx] = net.lambda_b + net.lambda_W * G[plan.pa[P], plan.pb[P]]
    _kernels_multi.stats_multi(z, H, plan.pa, plan.pb, plan.po, stats[0])
    count = weight_normal_count(net.ensemble, n)
    k = _layer_block(net, C, count)
    normals = _buffer("gram_normals", (k, C, count))
    biases = _buffer("gram_biases", (k, C, n))
    gaussian_draws = net.ensemble in ("gaussian", "orthogonal")
    scratch = _buffer("uniforms", (uniform_scratch_size(C, count),)) if gaussian_draws else None
    haar = net.ensemble == "orthogonal"
    scale = math.sqrt(net.C_W) if haar else math.sqrt(net.C_W / n)
    gamma = -1.0 if net.residual is None else float(net.residual)
    none = np.empty((C, m, 0))
    for l0 in range(1, L, k):
        nl = min(k, L - l0)
        for j in range(nl):
            biases[j] = draw_biases(rng, net.C_b, (C, n))
            draw_weight_normals(rng, net.ensemble, C, n, out=normals[j], scratch=scratch)
        if act.code >= 0:
            s = sp = none
        else:
            with np.errstate(all="ignore"):
                d = act.derivatives(z, 1)
            s, sp = np.ascontiguousarray(d[0]), np.ascontiguousarray(d[1])
        _kernels_multi.propagate_multi(act.code, act.slope, scale, gamma, haar, net.lambda_b, net.lambda_W,
                                       z, H, s, sp, normals[:nl], biases[:nl], stats[l0:l0 + nl],
                                       plan.pa, plan.pb, plan.po)
    return stats.transpose(1, 0, 2)


def _pairs(m):
    pa, pb = zip(*[(a, b) for a in range(m) for b in range(a, m)])
    return np.array(pa, dtype=np.int64), np.array(pb, dtype=np.int64)


def _extend_factory(m):
    lay, _ = _kernels_multi.stat_layout(m)
    p = m * (m + 1) // 2
    iu = np.triu_indices(p)

    def extend(stats):
        z2 = stats[..., lay["z2"][0]:lay["z2"][0] + p]
        h = stats[..., lay["h"][0]:lay["h"][0] + p]
        zz = (z2[..., :, None] * z2[..., None, :])[..., iu[0], iu[1]]
        hh = (h[..., :, None] * h[..., None, :])[..., iu[0], iu[1]]
        hz = (h[..., :, None] * z2[..., None, :]).reshape(stats.shape[:-1] + (p * p,))
        return np.concatenate([stats, zz, hz, hh], axis=-1)
    return extend


def estimate_memory(network, m, workers=None):
    """Peak bytes: chunks in flight (2 per worker) with z, the p NTK blocks, the
    kernel's work arrays, the random numbers of a block of layers and the
    statistics, plus the jackknife block sums."""
    n, L = network.width, network.depth
    workers = workers or worker_count()
    C = _chunk_size(n)
    _, ns = _kernels_multi.stat_layout(m)
    p = m * (m + 1) // 2
    nsum = ns + p * (p + 1) + p * p
    count = n * n
    k = max(1, min(L - 1, _WEIGHT_BUFFER // (8 * C * count)))
    work = (2 * p + m + 5) * n * n                       # H, its successor, A_a, M, Y, packed A, ...
    per_chunk = 8 * (C * (p * n * n + 3 * m * n) + work + (k + 2) * C * count + C * L * ns)
    return 2 * workers * per_chunk + 8 * TARGET_BLOCKS * L * nsum


def _run(network, G, samples, seed, progress):
    n, m = network.width, G.shape[0]
    chunk = _chunk_size(n)
    n_chunks = -(-samples // chunk)
    root = np.random.SeedSequence(seed, spawn_key=(n,))
    pa, pb = _pairs(m)
    _, ns = _kernels_multi.stat_layout(m)
    plan = _Plan(network, G, chunk, n_chunks, samples, tuple(root.spawn(n_chunks)), pa, pb,
                 _kernels_multi.off_diagonal(pa, pb), ns)
    block = max(1, -(-samples // TARGET_BLOCKS))
    p = m * (m + 1) // 2
    sums = BlockSums(network.depth, block, -(-samples // block), n_sums=ns + p * (p + 1) + p * p,
                     extend=_extend_factory(m))
    if network.activation.code < 0:
        network.activation.derivatives(np.zeros(1), 1)
    from ._blas import available
    from .sampling import BLAS_PARALLEL_WIDTH

    workers = 1 if n >= BLAS_PARALLEL_WIDTH and not available() else None
    interrupted = run_chunks(_simulate_chunk, plan, n_chunks, sums, progress, "fwtheory-mc-gram", workers)
    return sums, interrupted


# ----------------------------------------------------------------- estimators
def _components(m):
    """Canonical components per correlator: name -> list of index tuples (a <= b pairs
    first; see _fill for the symmetries)."""
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    out = {k: pairs for k in ("K", "G1", "Theta", "Theta1")}
    out["V"] = out["A"] = [P + Q for i, P in enumerate(pairs) for Q in pairs[i:]]
    out["D"] = [P + Q for P in pairs for Q in pairs]
    out["F"] = out["B"] = [P + (c, d) for P in pairs for c in range(m) for d in range(m)]
    return out


def _estimator(m, n_prev, K_inf, Theta_inf):
    """estimate(S, N) -> {(name, idx): (..., L)} from block sums (module docstring)."""
    lay, ns = _kernels_multi.stat_layout(m)
    p = m * (m + 1) // 2
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    P_of = {pr: i for i, pr in enumerate(pairs)}
    tri = {}
    q = 0
    for i in range(p):
        for j in range(i, p):
            tri[i, j] = q
            q += 1
    o_zz, o_hz, o_hh = ns, ns + p * (p + 1) // 2, ns + p * (p + 1) // 2 + p * p
    comps = _components(m)

    def estimate(S, N):
        Nf = np.asarray(N, dtype=float)
        with np.errstate(all="ignore"):
            mean = lambda j: S[..., j] / Nf               # noqa: E731
            out = {}
            for (a, b) in comps["K"]:
                P = P_of[a, b]
                k = mean(lay["z2"][0] + P)
                t = mean(lay["h"][0] + P)
                out["K", (a, b)] = k
                out["G1", (a, b)] = n_prev * (k - K_inf[:, a, b])
                out["Theta", (a, b)] = t
                out["Theta1", (a, b)] = n_prev * (t - Theta_inf[:, a, b])
            for idx in comps["V"]:
                P, Q = P_of[idx[:2]], P_of[idx[2:]]
                ez = (S[..., lay["z2"][0] + P] * S[..., lay["z2"][0] + Q] - S[..., o_zz + tri[P, Q]]) \
                    / (Nf * (Nf - 1.0))
                eh = (S[..., lay["h"][0] + P] * S[..., lay["h"][0] + Q] - S[..., o_hh + tri[P, Q]]) \
                    / (Nf * (Nf - 1.0))
                out["V", idx] = n_prev * (mean(lay["zz"][0] + tri[P, Q]) - ez)
                out["A", idx] = n_prev * (mean(lay["hh"][0] + tri[P, Q]) - eh)
            for idx in comps["D"]:
                P, Q = P_of[idx[:2]], P_of[idx[2:]]
                e = (S[..., lay["h"][0] + P] * S[..., lay["z2"][0] + Q] - S[..., o_hz + P * p + Q]) \
                    / (Nf * (Nf - 1.0))
                out["D", idx] = n_prev * (mean(lay["hz"][0] + P * p + Q) - e)
            for idx in comps["F"]:
                P, c, d = P_of[idx[:2]], idx[2], idx[3]
                j = (P * m + c) * m + d
                out["F", idx] = n_prev * mean(lay["f"][0] + j)
                out["B", idx] = n_prev * mean(lay["b"][0] + j)
        return out
    return estimate


def _fill(m, L, comp_values):
    """Full tensors (L, m, m) / (L, m, m, m, m) from canonical components, by the
    symmetries of the definitions: K, G1, Theta, Theta1 symmetric; V, A symmetric within
    and between the pairs; D within the pairs; F_abcd = F_badc; B_abcd = B_badc."""
    out = {}
    for name in GRAM_NAMES:
        shape = (L,) + (m,) * RANK[name]
        out[name] = np.full(shape, np.nan)
    for (name, idx), v in comp_values.items():
        if RANK[name] == 2:
            a, b = idx
            out[name][:, a, b] = out[name][:, b, a] = v
            continue
        a, b, c, d = idx
        if name in ("V", "A"):
            for (p1, p2) in (((a, b), (c, d)), ((c, d), (a, b))):
                for x in (p1, p1[::-1]):
                    for y in (p2, p2[::-1]):
                        out[name][(slice(None),) + x + y] = v
        elif name == "D":
            for x in ((a, b), (b, a)):
                for y in ((c, d), (d, c)):
                    out[name][(slice(None),) + x + y] = v
        else:  # F, B: stored for a <= b and every (c, d); (b, a, d, c) is the same entry
            out[name][:, a, b, c, d] = v
            out[name][:, b, a, d, c] = v
    return out


def gram_infinite_width(network, G, notes):
    """K_inf, Theta_inf (L, m, m): :func:`fwtheory.kernel.kernel_matrix` (the Gaussian
    limit also for the uniform/Rademacher/orthogonal ensembles), or for residual
    networks the recursions K' = K + gamma^2 (C_b + C_W <sigma_a sigma_b>),
    Theta' = (1 + gamma^2 C_W <sigma'_a sigma'_b>) Theta + gamma^2 (lambda_b +
    lambda_W <sigma_a sigma_b>) with :func:`fwtheory.gauss_multi.expect_monomials`."""
    L, m = network.depth, G.shape[0]
    try:
        if network.residual is None:
            from ..kernel import kernel_matrix

            plain = network.replace(ensemble="gaussian", first_layer="gaussian", input_dim=network.input_dim)
            km = kernel_matrix(plain, G)
            return np.asarray(km.K, float), np.asarray(km.Theta, float)
        from ..gauss_multi import expect_monomials

        g2 = network.residual ** 2
        K, T = np.empty((L, m, m)), np.empty((L, m, m))
        K[0] = network.C_b + network.C_W * G
        T[0] = network.lambda_b + network.lambda_W * G
        pairs = [(a, b) for a in range(m) for b in range(a, m)]
        mons = [((a, 0), (b, 0)) for a, b in pairs] + [((a, 1), (b, 1)) for a, b in pairs]
        for i in range(L - 1):
            v = expect_monomials(network.activation, K[i], mons)
            for j, (a, b) in enumerate(pairs):
                ss, tt = v[j], v[len(pairs) + j]
                K[i + 1, a, b] = K[i + 1, b, a] = K[i, a, b] + g2 * (network.C_b + network.C_W * ss)
                T[i + 1, a, b] = T[i + 1, b, a] = ((1.0 + g2 * network.C_W * tt) * T[i, a, b]
                                                   + g2 * (network.lambda_b + network.lambda_W * ss))
        return K, T
    except FwtheoryError as exc:
        notes.append(f"G1 and Theta1 unavailable: infinite-width kernel matrix failed ({exc})")
        nan = np.full((L, m, m), np.nan)
        return nan, nan.copy()


# ----------------------------------------------------------------- results
@dataclass
class GramSimulation:
    """Result of ``simulate(..., gram=G)``.

    ``values[name]`` / ``errors[name]``: arrays (L, m, m) for K, G1, Theta, Theta1
    and (L, m, m, m, m) for V, D, F, A, B (index order of the definitions in the
    module docstring), jackknife standard errors; with ``widths`` the intercepts
    c0 of the width fits (``extrapolation``). ``overflow``/``valid`` as in
    :class:`.sampling.Simulation`.
    """

    network: Network
    gram: np.ndarray
    samples: int
    seed: int
    layers: np.ndarray
    values: dict
    errors: dict
    overflow: np.ndarray
    valid: np.ndarray
    extrapolation: dict = None
    interrupted: bool = False
    notes: list = field(default_factory=list)
    samples_requested: int = None

    @property
    def inputs(self):
        return self.gram.shape[0]

    def __repr__(self):
        net = self.network
        what = (f"widths {self.extrapolation['widths']}" if self.extrapolation is not None
                else f"width {net.width}")
        return (f"GramSimulation({net.activation.name}, {net.ensemble}, depth {net.depth}, {what}, "
                f"m={self.inputs} inputs, {self.samples} networks, seed {self.seed})")

    def to_dict(self):
        """Plain-JSON layout: network, gram, layers, one nested list per correlator
        ([layer][a][b] or [layer][a][b][c][d]) and "<name>_se", samples, seed, ..."""
        out = {"network": self.network.to_dict(), "gram": self.gram.tolist(),
               "layers": self.layers.tolist()}
        out.update({k: self.values[k].tolist() for k in GRAM_NAMES})
        out.update({k + "_se": self.errors[k].tolist() for k in GRAM_NAMES})
        out.update(samples=self.samples, seed=self.seed, overflow=self.overflow.tolist(),
                   valid_samples=self.valid.tolist(), interrupted=self.interrupted, notes=list(self.notes))
        if self.samples_requested is not None and self.samples_requested != self.samples:
            out["samples_requested"] = self.samples_requested
        if self.extrapolation is not None:
            ex = self.extrapolation
            out["extrapolation"] = {
                "model": "X(n) = c0 + c1/n [+ c2/n^2] per component, n = n_{l-1}; the 3-term model "
                         "where the 2-term one has chi^2 p < 0.05 and the 3-term one does not",
                "widths": list(ex["widths"]),
                **{key: {k: v.tolist() for k, v in ex[key].items()}
                   for key in ("c0", "c0_se", "c1", "c1_se", "chi2", "dof", "p", "terms")},
                "per_width": [r.to_dict() for r in ex["per_width"]],
            }
        return out


def _summarize(network, G, seed, sums, requested, interrupted):
    from ._runner import summarize_sums

    L, m = network.depth, G.shape[0]
    notes = []
    K_inf, Theta_inf = gram_infinite_width(network, G, notes)
    n_prev = np.full(L, float(network.width))
    n_prev[0] = network.input_dim
    est = _estimator(m, n_prev, K_inf, Theta_inf)

    def estimator(S, N):
        return {("c", k): v for k, v in est(S, N).items()}

    keys = [(name, idx) for name, comps in _components(m).items() for idx in comps]
    fields = summarize_sums(sums, estimator, keys, (), requested, interrupted, notes)
    values = _fill(m, L, fields["values"])
    errors = _fill(m, L, fields["errors"])
    return GramSimulation(network=network, gram=G, samples=fields["samples"], seed=seed,
                          layers=fields["layers"], values=values, errors=errors,
                          overflow=fields["overflow"], valid=fields["valid"],
                          interrupted=fields["interrupted"], notes=fields["notes"],
                          samples_requested=fields["samples_requested"])


def _combine_widths(network, G, seed, samples, results, planned):
    """Width scan: per component, the fits of :func:`.estimators.fit_widths`."""
    L, m = network.depth, G.shape[0]
    interrupted, usable, notes, inv_n = usable_widths(results, planned)
    fitted = {k: {} for k in ("c0", "c0_se", "c1", "c1_se", "chi2", "dof", "p", "terms")}
    for name in GRAM_NAMES:
        shape = (L,) + (m,) * RANK[name]
        for k in fitted:
            fitted[k][name] = np.full(shape, np.nan if k not in ("dof", "terms") else 0.0)
        if len({r.network.width for r in usable}) < 2:
            continue
        vals = np.stack([r.values[name].reshape(L, -1) for r in usable])     # (W, L, comps)
        errs = np.stack([r.errors[name].reshape(L, -1) for r in usable])
        for j in range(vals.shape[2]):
            fit = fit_widths(inv_n, vals[:, :, j], errs[:, :, j])
            for k, src in (("c0", "c0"), ("c0_se", "c0_se"), ("c1", "c1"), ("c1_se", "c1_se"),
                           ("chi2", "chi2"), ("dof", "dof"), ("p", "p"), ("terms", "model")):
                fitted[k][name].reshape(L, -1)[:, j] = fit[src]
    ex = dict(widths=[r.network.width for r in results], per_width=results, **fitted)
    return GramSimulation(network=network, gram=G, seed=seed,
                          samples=samples if not interrupted else min(r.samples for r in results),
                          layers=np.arange(1, L + 1), values=fitted["c0"], errors=fitted["c0_se"],
                          overflow=np.max([r.overflow for r in results], axis=0),
                          valid=np.min([r.valid for r in results], axis=0), extrapolation=ex,
                          interrupted=interrupted, notes=notes, samples_requested=samples)


def simulate_gram(network, samples, seed, gram, widths=None, progress=None):
    """Several-input Monte Carlo (module docstring); called by
    :func:`fwtheory.mc.simulate` with ``gram``."""
    from ._runner import refuse_if_too_big, run_widths

    G = check_gram(gram, network)
    m = G.shape[0]

    def check_memory(net):
        check_gram(G, net)
        refuse_if_too_big(net, estimate_memory(net, m), "width")

    def run_one(net, step):
        sums, interrupted = _run(net, G, samples, seed, step)
        return _summarize(net, G, seed, sums, samples, interrupted)

    results, planned = run_widths(network, widths, samples, progress, "simulate", check_memory, run_one)
    if widths is None:
        return results[0]
    return _combine_widths(network, G, seed, samples, results, planned)

