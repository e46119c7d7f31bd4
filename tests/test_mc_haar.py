"""Haar O(n) sampler: orthogonality and degree-4 Weingarten moments (Collins and Sniady, CMP 264 (2006) 773)."""

import numpy as np
import pytest

from fwtheory.mc import haar_orthogonal


def _check(x, exact, z=4.0):
    mean, se = x.mean(), x.std(ddof=1) / np.sqrt(x.size)
    assert abs(mean - exact) < z * se, (mean, se, exact)


@pytest.mark.parametrize("method", ["householder", "qr"])
@pytest.mark.parametrize("n", [4, 8])
def test_haar_weingarten_moments(n, method):
    rng = np.random.default_rng(1000 + n)
    O = haar_orthogonal(100_000, n, rng, method=method)
    wg_same = (n + 1) / (n * (n - 1) * (n + 2))
    wg_diff = -1.0 / (n * (n - 1) * (n + 2))
    _check(O[:, 0, 0] ** 4, 3.0 / (n * (n + 2)))
    _check(O[:, 0, 0] ** 2 * O[:, 1, 1] ** 2, wg_same)
    _check(O[:, 0, 0] * O[:, 0, 1] * O[:, 1, 0] * O[:, 1, 1], wg_diff)
    # the last reflector and the final sign are exercised by the far corner
    _check(O[:, -1, -1] ** 4, 3.0 / (n * (n + 2)))
    _check(O[:, 0, -1] ** 2 * O[:, -1, 0] ** 2, wg_same)
    _check(O[:, 0, 0] ** 2 * O[:, 0, 1] ** 2, 1.0 / (n * (n + 2)))


@pytest.mark.parametrize("n", [1, 2, 5, 33, 48, 130])
def test_haar_is_orthogonal_with_both_determinants(n):
    O = haar_orthogonal(400, n, np.random.default_rng(n))
    eye = np.einsum("aij,aik->ajk", O, O)
    assert np.abs(eye - np.eye(n)).max() < 1e-12
    det = np.linalg.det(O)
    assert np.allclose(np.abs(det), 1.0)
    assert (det > 0).any() and (det < 0).any()


def test_ziggurat_normals_are_standard_normal():
    from scipy import stats

    from fwtheory.mc.ensembles import standard_normals

    x = standard_normals(np.random.default_rng(5), 50, 40_000).ravel()
    N = x.size
    assert stats.kstest(x, "norm").pvalue > 1e-3
    for k, exact in ((1, 0.0), (2, 1.0), (3, 0.0), (4, 3.0), (6, 15.0)):
        m = x ** k
        assert abs(m.mean() - exact) < 4 * m.std() / np.sqrt(N), k
    for t in (0.5, 2.0, 3.0, 3.6541528853610088, 4.0):     # rectangles, wedges and the tail
        p = 2 * stats.norm.sf(t)
        assert abs((np.abs(x) > t).mean() - p) < 4 * np.sqrt(p * (1 - p) / N), t


def test_ziggurat_reports_running_out_of_uniforms():
    from fwtheory.mc import _kernels

    out = np.empty((2, 100))
    u = np.random.default_rng(0).random((2, 50))
    assert _kernels.normals_from_uniforms(u, out, _kernels.ZIGGURAT_X, _kernels.ZIGGURAT_RATIO) == 2


@pytest.mark.parametrize("n", [2, 3, 9, 16, 17, 40, 64, 100, 130])
@pytest.mark.parametrize("block", [1, 8, 16])
def test_blocked_haar_equals_reflector_product(n, block):
    from fwtheory.mc import _kernels

    g = np.random.default_rng(n).standard_normal(n * (n + 1) // 2)
    a, b = np.empty((n, n)), np.empty((n, n))
    _kernels._haar_unblocked(g, a)
    _kernels._haar_blocked(g, b, block)
    assert np.abs(a - b).max() < 1e-13
