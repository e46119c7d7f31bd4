"""Random draws of the weight and bias ensembles (numpy; no numba, no sympy).

Ensembles (PDLT arXiv:2106.10165 eqs. (4.2)-(4.4); Day, Kahn, Roberts
arXiv:2310.07765 for orthogonal weights; docs/conventions.md):

* Gaussian: W_ij ~ N(0, C_W / n_{l-1}) independent;
* orthogonal: W = sqrt(C_W) O with O Haar on O(n) (square layers only);
* uniform: W_ij i.i.d. uniform on [-a, a], a = sqrt(3 C_W / n_{l-1});
* rademacher: W_ij i.i.d. +-sqrt(C_W / n_{l-1}) with probability 1/2 each;
* biases: b_i ~ N(0, C_b) independent, in every ensemble.

The three i.i.d. ensembles share the variance C_W / n_{l-1}; their relative
fourth cumulants E[w^4] / E[w^2]^2 - 3 are 0, -6/5 and -2.

All randomness of a Monte Carlo chunk comes from one ``numpy.random.Generator``
(one ``SeedSequence.spawn`` child per chunk) and is consumed in a fixed order,
so results do not depend on how chunks are scheduled over threads.

The kernels receive *standardized* weights (unit variance: standard normals,
uniforms on [-sqrt 3, sqrt 3) or signs +-1) and scale them themselves; a Haar
matrix is passed as the n(n+1)/2 normals from which
:func:`fwtheory.mc._kernels.haar_from_normals` builds it (Stewart's product of
Householder reflections with Mezzadri's sign convention).
"""

__all__ = ["chunk_generator", "haar_orthogonal", "haar_normal_count", "first_layer_preactivations",
           "draw_biases", "draw_weight_normals", "standard_normals", "uniform_scratch_size",
           "weight_normal_count", "standard_uniforms", "standard_signs", "IID_ENSEMBLES"]

import math

import numpy as np

from ..errors import ParameterError, check_int

IID_ENSEMBLES = ("gaussian", "uniform", "rademacher")   # i.i.d. weights, drawn as dense matrices
_SQRT3 = math.sqrt(3.0)
_FIRST_LAYER_BLOCK = 1 << 20      # standardized weights per draw in a non-Gaussian first layer


def chunk_generator(seed_sequence):
    """The ``numpy.random.Generator`` of one Monte Carlo chunk.

    Bit generator SFC64 (C. Doty-Humphrey's Small Fast Chaotic PRNG; numpy's
    fastest, passes PractRand and TestU01 BigCrush), seeded by the chunk's
    ``SeedSequence`` child. It fills the buffer of uniforms that the ziggurat
    consumes ~1.3x faster than PCG64 (7.6 vs 9.8 us per 4400 doubles here).
    """
    return np.random.Generator(np.random.SFC64(seed_sequence))


def haar_normal_count(n):
    """Number of standard normals that define one Haar O(n) matrix: n(n+1)/2."""
    return n * (n + 1) // 2


def haar_orthogonal(size, n, rng, method="householder"):
    """Draw ``size`` independent Haar-distributed matrices on O(n), shape (size, n, n).

    ``method="householder"``: Stewart's product of reflections built by the numba
    kernel from n(n+1)/2 normals per matrix (the one the sampler uses);
    ``method="qr"``: numpy QR of an n x n Gaussian matrix with Mezzadri's sign
    correction Q diag(sign R_ii) (F. Mezzadri, Notices AMS 54 (2007) 592),
    batched. Both give exactly Haar measure; the test suite checks the degree-4
    Weingarten moments of both (Collins, Sniady, CMP 264 (2006) 773).
    """
    size = check_int("size", size, lower=0)
    n = check_int("n", n, lower=1)
    if method == "householder":
        from ._kernels import haar_batch

        g = standard_normals(rng, size, haar_normal_count(n))
        out = np.empty((size, n, n))
        haar_batch(g, out)
        return out
    if method == "qr":
        z = rng.standard_normal((size, n, n))
        q, r = np.linalg.qr(z)
        d = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
        d[d == 0] = 1.0
        return q * d[..., None, :]
    raise ParameterError("method", f"must be 'householder' or 'qr', got {method!r}")


def draw_biases(rng, C_b, shape):
    """Biases b ~ N(0, C_b) of one layer for a chunk; no draw when C_b == 0."""
    if C_b == 0.0:
        return np.zeros(shape)
    return math.sqrt(C_b) * rng.standard_normal(shape)


def first_layer_preactivations(rng, network, chunk, input_norm):
    """z^(1) for ``chunk`` networks, shape (chunk, n), for the input
    x = sqrt(q0) (1, ..., 1) in R^{n0}, q0 = ``input_norm``.

    For the rotation-invariant ensembles only |x|^2 = n0 q0 matters, so the
    first layer is drawn in distribution without forming W^(1):

    * Gaussian W^(1): (W x)_i ~ N(0, C_W q0) independent (PDLT eq. (4.8),
      G^(1) = C_b + C_W q0);
    * orthogonal W^(1) (n0 = n): W x = sqrt(C_W) O x is uniform on the sphere of
      radius sqrt(C_W q0 n) (O x is uniform on the sphere), i.e. sqrt(C_W q0 n) g/|g|.

    The uniform and Rademacher ensembles are not rotation invariant, and
    (W x)_i = sqrt(q0) sum_j W_ij depends on the direction of x:

    * uniform W^(1): the n x n0 standardized uniforms are drawn (in blocks of
      whole rows, ~2^20 numbers each) and summed over j;
    * Rademacher W^(1): sum_j of n0 signs is 2 B - n0 with B ~ Binomial(n0, 1/2),
      drawn directly (same distribution, n draws instead of n n0).

    The bias draw comes first, then the draws of W x.
    """
    n = network.width
    b = draw_biases(rng, network.C_b, (chunk, n))
    kind = network.first_layer
    if kind == "gaussian":
        g = rng.standard_normal((chunk, n))
        wx = math.sqrt(network.C_W * input_norm) * g
    elif kind == "orthogonal":
        g = rng.standard_normal((chunk, n))
        norm = np.sqrt(np.einsum("ai,ai->a", g, g))[:, None]
        wx = math.sqrt(network.C_W * input_norm * n) * g / norm
    elif kind == "rademacher":
        n0 = network.input_dim
        sums = 2.0 * rng.binomial(n0, 0.5, size=(chunk, n)) - n0
        wx = math.sqrt(network.C_W * input_norm / n0) * sums
    elif kind == "uniform":
        n0 = network.input_dim
        sums = np.empty(chunk * n)
        rows = max(1, _FIRST_LAYER_BLOCK // n0)
        buf = np.empty((min(rows, chunk * n), n0))
        for start in range(0, chunk * n, rows):
            stop = min(start + rows, chunk * n)
            u = standard_uniforms(rng, (stop - start, n0), out=buf[:stop - start])
            np.sum(u, axis=1, out=sums[start:stop])
        wx = math.sqrt(network.C_W * input_norm / n0) * sums.reshape(chunk, n)
    else:  # pragma: no cover - Network validates the name
        raise ParameterError("first_layer", f"unknown ensemble {kind!r}")
    return b + wx


def standard_uniforms(rng, shape, out=None):
    """I.i.d. uniforms on [-sqrt 3, sqrt 3) (mean 0, variance 1), written to ``out``:
    ``rng.random`` fills the array in place (53-bit uniforms on [0, 1)), which is
    then mapped affinely in place (no temporaries)."""
    out = np.empty(shape) if out is None else out
    rng.random(out=out)
    out *= 2.0 * _SQRT3
    out -= _SQRT3
    return out


def standard_signs(rng, shape, out=None):
    """I.i.d. signs +-1 with probability 1/2 each, as floats, written to ``out``:
    one random bit per sign (``rng.bytes``, unpacked with ``np.unpackbits``)."""
    out = np.empty(shape) if out is None else out
    m = out.size
    bits = np.unpackbits(np.frombuffer(rng.bytes(-(-m // 8)), dtype=np.uint8), count=m)
    flat = out.reshape(-1)
    np.multiply(bits, -2.0, out=flat)
    flat += 1.0
    return out


def standard_normals(rng, rows, m, out=None, scratch=None):
    """(rows, m) independent N(0, 1) variates (written to ``out`` if given).

    ``rng.random`` fills a (reusable) ``scratch`` buffer of 53-bit uniforms,
    m + m/32 + 64 per row, which the ziggurat kernel
    :func:`fwtheory.mc._kernels.normals_from_uniforms` turns into normals
    (measured at m = 4096: m + 90 +- 12 are used; running out is a > 8 sigma
    event, handled by redrawing all rows with twice the slack). A deterministic
    function of the generator state.
    """
    from ._kernels import ZIGGURAT_RATIO, ZIGGURAT_X, normals_from_uniforms

    out = np.empty((rows, m)) if out is None else out
    slack = m // 32 + 64
    while True:
        width = m + slack
        if scratch is None or scratch.size < rows * width:
            scratch = np.empty(rows * width)
        u = scratch[:rows * width].reshape(rows, width)
        rng.random(out=u)
        if normals_from_uniforms(u, out, ZIGGURAT_X, ZIGGURAT_RATIO) == 0:
            return out
        slack *= 2  # pragma: no cover - astronomically rare
        scratch = None


def uniform_scratch_size(rows, m):
    """Size of the ``scratch`` buffer :func:`standard_normals` uses for (rows, m)."""
    return rows * (m + m // 32 + 64)


def weight_normal_count(ensemble, n):
    """Standardized numbers per network that define one hidden layer's weights:
    n^2 for the i.i.d. ensembles, n(n+1)/2 normals for a Haar layer."""
    return n * n if ensemble in IID_ENSEMBLES else haar_normal_count(n)


def draw_weight_normals(rng, ensemble, chunk, n, out=None, scratch=None):
    """Standardized numbers defining the weights of one hidden layer for a chunk:
    (chunk, n, n) unit-variance entries for the i.i.d. ensembles (standard
    normals, uniforms on [-sqrt 3, sqrt 3), or signs), (chunk, n(n+1)/2) standard
    normals for Haar layers (``out``: a reusable (chunk, count) buffer; ``scratch``
    only serves the Gaussian draws)."""
    if ensemble == "uniform":
        out = np.empty((chunk, n * n)) if out is None else out
        return standard_uniforms(rng, out.shape, out=out).reshape(chunk, n, n)
    if ensemble == "rademacher":
        out = np.empty((chunk, n * n)) if out is None else out
        return standard_signs(rng, out.shape, out=out).reshape(chunk, n, n)
    normals = standard_normals(rng, chunk, weight_normal_count(ensemble, n), out=out, scratch=scratch)
    return normals.reshape(chunk, n, n) if ensemble == "gaussian" else normals
