"""mpmath moments with fixed Gauss rules (fwtheory.gauss_mp, gauss_rules_mp) and the
mpmath path of predict: accuracy against mpmath.quad and float64, work per layer
(counted, never timed), progress bar."""

import io

import mpmath
import numpy as np
import pytest

from fwtheory import Network, gauss, gauss_mp, gauss_rules_mp, predict
from fwtheory._io import ProgressBar
from fwtheory.activations import get_activation
from fwtheory.prediction import _compile


def test_rules_integrate_polynomials_exactly():
    with mpmath.workdps(40):
        t, w = gauss_rules_mp.half_hermite_rule_mp(20, 40)
        for k in range(0, 40, 3):  # int_0^inf t^k phi(t) dt = 2^((k-1)/2) Gamma((k+1)/2) / sqrt(2 pi)
            exact = mpmath.mpf(2) ** (mpmath.mpf(k - 1) / 2) * mpmath.gamma(mpmath.mpf(k + 1) / 2) \
                / mpmath.sqrt(2 * mpmath.pi)
            assert abs(mpmath.fdot(w, [x ** k for x in t]) / exact - 1) < mpmath.mpf(10) ** -38, k
        g, gw = gauss_rules_mp.legendre_rule_mp(20, 40)
        for k in range(0, 40, 2):
            assert abs(mpmath.fdot(gw, [x ** k for x in g]) - mpmath.mpf(2) / (k + 1)) < mpmath.mpf(10) ** -38


MONOMIALS = ((2, 0, 0, 0, 0), (0, 2, 0, 0, 0), (1, 1, 1, 0, 1), (0, 0, 0, 1, 3))


@pytest.mark.parametrize("name, K, dk", [("tanh", 0.7, 0), ("tanh", 12.0, 1), ("gelu", 3.56, 2),
                                          ("relu", 1.7, 2), ("Max(z, 1) - 1", 2.0, 1)])
def test_moments_agree_with_quad_at_higher_precision(name, K, dk):
    act = get_activation(name)
    mons = MONOMIALS if act.is_smooth else MONOMIALS[:2]
    vals, errs = gauss_mp.expect_moments_mp(act, K, [(p, dk) for p in mons], dps=30, full_output=True)
    ref = gauss.expect_monomials_mp(act, K, mons, dk, dps=45)
    for p, v, e, r in zip(mons, vals, errs, ref):
        scale = gauss._abs_scale(act, K, p, dk)
        assert abs(v - r) <= 1e-30 * scale, (p, v, r)  # the accuracy the docstring claims
        assert e <= 1e-30 * scale  # and the error estimate says so


def test_one_set_of_evaluations_for_all_moments(monkeypatch):
    requests = [(m.powers, m.dk) for m in _compile("gaussian", "mpmath").moments]
    counts = []
    for reqs in (requests[:1], requests):
        monkeypatch.setattr(gauss_mp, "_HINT", {})
        before = gauss_mp.engine_stats()["evaluations"]
        gauss_mp.expect_moments_mp("tanh", 0.4, reqs, dps=30)
        counts.append(gauss_mp.engine_stats()["evaluations"] - before)
    assert len(requests) > 10 and counts[1] <= counts[0] * 1.5


def test_predict_mpmath_work_per_layer_is_bounded(monkeypatch):
    calls = []
    real_quad = mpmath.quad
    monkeypatch.setattr(mpmath, "quad", lambda *a, **k: calls.append(1) or real_quad(*a, **k))
    net = Network("tanh", depth=12, width=64)
    predict(net, precision="mpmath", dps=20)  # warm the rule cache
    rules, stats = gauss_rules_mp.rule_stats()["builds"], gauss_mp.engine_stats()
    predict(net, precision="mpmath", dps=20)
    after = gauss_mp.engine_stats()
    assert not calls  # no adaptive mpmath.quad (before: ~17 per layer)
    assert gauss_rules_mp.rule_stats()["builds"] == rules  # node cache hit
    assert after["calls"] - stats["calls"] == 11  # one engine call per layer
    assert after["evaluations"] - stats["evaluations"] <= 11 * 2 * (2 * 128)
    assert after["fallbacks"] == stats["fallbacks"]


def test_progress_bar_reaches_total():
    stream = io.StringIO()
    bar = ProgressBar(7, label="predict (mpmath)", delay=0.0, stream=stream, force=True)
    predict(Network("relu", depth=7, width=16), precision="mpmath", dps=20, progress=bar)
    assert bar.done == bar.total == 7
    assert "7/7" in stream.getvalue() and stream.getvalue().endswith("\n")


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu"])
def test_predict_mpmath_vs_float64_and_vs_higher_precision(name):
    net = Network(name, depth=20, width=64, C_b=0.0 if name == "tanh" else 0.1)
    f64 = predict(net)
    lo = predict(net, precision="mpmath", dps=30)
    hi = predict(net, precision="mpmath", dps=45)
    for k in f64.values:
        np.testing.assert_allclose(f64[k], np.array(lo[k], dtype=float), rtol=1e-12, atol=1e-14, err_msg=k)
        with mpmath.workdps(45):
            for layer, (a, b) in enumerate(zip(lo[k], hi[k])):
                assert abs(a - b) <= mpmath.mpf(10) ** -26 * max(abs(b), 1e-3), (k, layer)
