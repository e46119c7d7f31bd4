"""Jackknife and width-fit helpers of fwtheory.mc.estimators."""

import numpy as np

from fwtheory.mc.estimators import fit_inverse_width, jackknife


def test_fit_recovers_line_and_its_error():
    inv_n = np.array([[1 / 16], [1 / 32], [1 / 64]])
    y = 2.0 + 5.0 * inv_n
    e = np.full_like(y, 0.1)
    fit = fit_inverse_width(inv_n, y, e)
    assert np.allclose(fit["c0"], 2.0) and np.allclose(fit["c1"], 5.0)
    # analytic WLS error of the intercept with equal errors sigma
    x = inv_n[:, 0]
    se0 = 0.1 * np.sqrt(np.sum(x ** 2) / (x.size * np.sum(x ** 2) - np.sum(x) ** 2))
    assert np.allclose(fit["c0_se"], se0) and fit["dof"][0] == 1 and fit["chi2"][0] < 1e-20


def test_fit_exact_points_and_constant_width():
    inv_n = np.array([[1 / 8, 1 / 8], [1 / 8, 1 / 16]])      # layer 1: same n0 at both widths
    y = np.array([[0.0, 1.0], [0.0, 1.5]])
    e = np.array([[0.0, 0.0], [0.0, 0.0]])
    fit = fit_inverse_width(inv_n, y, e)
    assert fit["c0"][0] == 0.0 and fit["c0_se"][0] == 0.0
    assert np.isclose(fit["c0"][1], 2.0) and fit["c0_se"][1] == 0.0


def test_jackknife_of_a_mean_is_the_standard_error():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(400)
    S = x.reshape(400, 1, 1)
    N = np.ones((400, 1))
    full, corr, se = jackknife(lambda S_, N_: {"m": S_[..., 0] / N_}, S, N)
    assert np.isclose(full["m"][0], x.mean()) and np.isclose(corr["m"][0], x.mean())
    assert np.isclose(se["m"][0], x.std(ddof=1) / np.sqrt(400))
    # unequal blocks (some empty) give the same mean and a comparable error
    blocks = np.array_split(np.arange(400), 37)
    Sb = np.array([x[b].sum() for b in blocks] + [0.0]).reshape(-1, 1, 1)
    Nb = np.array([len(b) for b in blocks] + [0]).reshape(-1, 1)
    full_b, corr_b, se_b = jackknife(lambda S_, N_: {"m": S_[..., 0] / N_}, Sb, Nb)
    assert np.isclose(corr_b["m"][0], x.mean())
    assert 0.7 < se_b["m"][0] / se["m"][0] < 1.3
