"""The several-input kernel (fwtheory.mc._kernels_multi) against its definitions.

The statistics come from the stored blocks a <= b only (B for c > d through the
antisymmetric parts, F with the diagonal folded in); here they are compared with a
direct evaluation of every U-statistic on the full (m n) x (m n) NTK. The layer
blocks of propagate_multi must not change the random numbers: results with one
layer per call and with several are bit-identical.
"""

import numpy as np
import pytest

import fwtheory.mc.multi_input as multi_input
from fwtheory import Network
from fwtheory.mc import _kernels_multi, simulate


def _direct_stats(z, Hfull, pa, pb):
    """Every statistic of the module docstring by its definition (mean over i != k)."""
    m, n = z.shape
    off = ~np.eye(n, dtype=bool)
    pairs = [(a, b) for a, b in zip(pa, pb)]
    p = len(pairs)
    lay, ns = _kernels_multi.stat_layout(m)
    out = np.empty(ns)
    zp = [z[a] * z[b] for a, b in pairs]
    hd = [np.diag(Hfull[a, b]) for a, b in pairs]
    for P in range(p):
        out[lay["z2"][0] + P] = zp[P].mean()
        out[lay["h"][0] + P] = hd[P].mean()
    q = 0
    for P in range(p):
        for Q in range(P, p):
            out[lay["zz"][0] + q] = np.outer(zp[P], zp[Q])[off].mean()
            out[lay["hh"][0] + q] = np.outer(hd[P], hd[Q])[off].mean()
            q += 1
        for Q in range(p):
            out[lay["hz"][0] + P * p + Q] = np.outer(hd[P], zp[Q])[off].mean()
    for P, (a, b) in enumerate(pairs):
        for c in range(m):
            for d in range(m):
                j = (P * m + c) * m + d
                out[lay["f"][0] + j] = (Hfull[a, b] * np.outer(z[c], z[d]))[off].mean()
                out[lay["b"][0] + j] = (Hfull[a, b] * Hfull[c, d])[off].mean()
    return out


@pytest.mark.parametrize("m, n", [(1, 8), (2, 9), (3, 16), (4, 12), (4, 16)])
def test_statistics_match_their_definitions(m, n):
    rng = np.random.default_rng(m * 100 + n)
    pa, pb = multi_input._pairs(m)
    po = _kernels_multi.off_diagonal(pa, pb)
    C = 2
    z = rng.standard_normal((C, m, n))
    Hfull = rng.standard_normal((C, m, m, n, n))
    for a in range(m):                  # an NTK: H[b, a] = H[a, b]^T, diagonal blocks symmetric
        Hfull[:, a, a] = Hfull[:, a, a] + Hfull[:, a, a].transpose(0, 2, 1)
        for b in range(a + 1, m):
            Hfull[:, b, a] = Hfull[:, a, b].transpose(0, 2, 1)
    H = np.ascontiguousarray(np.stack([Hfull[:, a, b] for a, b in zip(pa, pb)], axis=1))
    _, ns = _kernels_multi.stat_layout(m)
    out = np.empty((C, ns))
    _kernels_multi.stats_multi(z, H, pa, pb, po, out)
    for c in range(C):
        np.testing.assert_allclose(out[c], _direct_stats(z[c], Hfull[c], pa, pb), rtol=1e-12, atol=1e-13)


GRAM3 = [[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.5]]


@pytest.mark.parametrize("kw", [dict(ensemble="gaussian"), dict(ensemble="orthogonal", residual=0.5),
                                dict(ensemble="uniform", C_b=0.3)])
def test_layer_blocks_do_not_change_results(kw, monkeypatch):
    net = Network("tanh", depth=6, width=16, **kw)
    runs = []
    for layers in (None, 1, 2):   # default block (all 5 hidden layers), one, two per call
        if layers is not None:
            C = multi_input._chunk_size(16)
            count = 16 * 16 if net.ensemble != "orthogonal" else 16 * 17 // 2
            monkeypatch.setattr(multi_input, "_WEIGHT_BUFFER", layers * 8 * C * count)
        assert multi_input._layer_block(net, multi_input._chunk_size(16),
                                        16 * 16 if net.ensemble != "orthogonal" else 16 * 17 // 2) \
            == (layers or 5)
        runs.append(simulate(net, 40, seed=3, gram=GRAM3))
    for r in runs[1:]:
        for k in runs[0].values:
            assert np.array_equal(r.values[k], runs[0].values[k], equal_nan=True), k
            assert np.array_equal(r.errors[k], runs[0].errors[k], equal_nan=True), k
