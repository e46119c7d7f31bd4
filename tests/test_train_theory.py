"""Infinite-width theory of trained outputs (fwtheory.trained_gp) and the order-1/n
NTK dispersion (fwtheory.ntk_dispersion), against exact identities and the trainer."""

import math

import numpy as np
import pytest

from fwtheory import Network, ParameterError, kernel_matrix, predict
from fwtheory.ntk_dispersion import ntk_dispersion
from fwtheory.train import empirical_ntk, init_params, train
from fwtheory.trained_gp import output_kernels, trained_gp
from fwtheory.validity import jackknife_cv


def _data(m=6, p=3, n0=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n0))
    Xt = rng.standard_normal((p, n0))
    Y = np.sin(X @ rng.standard_normal(n0) / math.sqrt(n0))
    return X, Y, Xt


NET = Network("tanh", depth=3, width=64, input_dim=5, C_W=1.0, lambda_b=0.5, lambda_W=1.0, C_b=0.1)


def test_output_kernels_match_kernel_matrix_on_four_inputs():
    X, _, _ = _data(m=4)
    K, Th = output_kernels(NET, X)
    km = kernel_matrix(NET, X @ X.T / X.shape[1])
    assert np.allclose(K, km.K[-1], rtol=1e-12, atol=0)
    assert np.allclose(Th, km.Theta[-1], rtol=1e-12, atol=0)
    Ka, Tha = output_kernels(NET, X, all_layers=True)
    assert np.allclose(Ka, km.K, rtol=1e-12, atol=0) and np.allclose(Tha, km.Theta, rtol=1e-12, atol=0)


@pytest.mark.parametrize("when", [dict(steps=0, learning_rate=0.1), dict(time=0.0)])
def test_time_zero_is_the_prior(when):
    X, Y, Xt = _data()
    gp = trained_gp(NET, X, Y, Xt, **when)
    K, _ = output_kernels(NET, np.concatenate([X, Xt]))
    assert np.array_equal(gp.mean, np.zeros((3, 1)))
    assert np.allclose(gp.cov, K[6:, 6:], rtol=1e-13, atol=1e-15)
    assert np.allclose(gp.train_cov, K[:6, :6], rtol=1e-13, atol=1e-15)
    assert gp.expected_loss == pytest.approx(gp.initial_loss, rel=1e-14)
    assert gp.initial_loss == pytest.approx(0.5 * (np.sum(Y ** 2) + np.trace(K[:6, :6])), rel=1e-13)


@pytest.mark.parametrize("when", [dict(steps=math.inf), dict(time=math.inf), dict(steps=20000, learning_rate=0.3)])
def test_infinite_training_interpolates_with_zero_variance(when):
    X, Y, Xt = _data()
    gp = trained_gp(NET, X, Y, Xt, **when)
    assert np.allclose(gp.train_mean[:, 0], Y, atol=1e-10)
    assert np.abs(gp.train_cov).max() < 1e-10
    assert gp.expected_loss < 1e-18
    # test points: kernel regression with the NTK, variance K** - ... (Lee et al. Sec. 2), PSD
    K, Th = output_kernels(NET, np.concatenate([X, Xt]))
    P = Th[6:, :6] @ np.linalg.inv(Th[:6, :6])
    assert np.allclose(gp.mean[:, 0], P @ Y, rtol=1e-8, atol=1e-12)
    C = K[6:, 6:] - P @ K[:6, 6:] - K[6:, :6] @ P.T + P @ K[:6, :6] @ P.T
    assert np.allclose(gp.cov, C, rtol=1e-7, atol=1e-12)
    assert np.linalg.eigvalsh(gp.cov).min() > -1e-12


def test_discrete_steps_converge_to_gradient_flow_linearly_in_eta():
    X, Y, Xt = _data()
    flow = trained_gp(NET, X, Y, Xt, time=3.0)
    errs = []
    for eta in (0.1, 0.01, 0.001):
        gd = trained_gp(NET, X, Y, Xt, steps=int(round(3.0 / eta)), learning_rate=eta)
        errs.append(max(np.abs(gd.mean - flow.mean).max(), np.abs(gd.cov - flow.cov).max()))
    assert errs[0] > 1e-4                          # the discrete form is not the flow ...
    assert errs[2] < 1e-4 * max(1.0, np.abs(flow.mean).max())
    assert 8.0 < errs[0] / errs[1] < 12.0 and 8.0 < errs[1] / errs[2] < 12.0   # ... and differs at O(eta)


def test_mean_loss_normalization_rescales_the_learning_rate():
    X, Y, Xt = _data()
    a = trained_gp(NET, X, Y, Xt, steps=7, learning_rate=0.06, loss="sum")
    b = trained_gp(NET, X, Y, Xt, steps=7, learning_rate=0.06 * 6, loss="mean")
    assert np.allclose(a.mean, b.mean, rtol=1e-12) and np.allclose(a.cov, b.cov, rtol=1e-12, atol=1e-15)
    assert b.expected_loss == pytest.approx(a.expected_loss / 6, rel=1e-12)


def test_depth_one_network_is_its_linearization_exactly():
    """A one-layer network is linear in its parameters and its NTK is deterministic,
    so every trained network obeys f_T(x*) = f_0(x*) + P(x*) (Y - f_0(X)) with the
    theory's P (mean of trained_gp with Y = 1) to rounding."""
    X, Y, Xt = _data(m=5, p=2, n0=7)
    net = Network("tanh", depth=1, width=8, input_dim=7, C_b=0.3, C_W=1.5, lambda_b=0.7, lambda_W=1.2)
    eta, steps = 0.05, 40
    P = trained_gp(net, X, np.eye(5), Xt, steps=steps, learning_rate=eta)
    Ptr = P.train_mean
    for seed in range(3):
        h = train(net, X, Y[:, None], steps=steps, learning_rate=eta, seed=seed, X_test=Xt)
        f0, fT = h.outputs[0, :, 0], h.outputs[-1, :, 0]
        g0, gT = h.test_outputs[0, :, 0], h.test_outputs[-1, :, 0]
        assert np.allclose(fT, f0 + Ptr @ (Y - f0), rtol=1e-10, atol=1e-12)
        assert np.allclose(gT, g0 + P.mean @ (Y - f0), rtol=1e-10, atol=1e-12)
        assert np.allclose(h.ntk[0], P.Theta[:5, :5], rtol=1e-12)


def test_trained_gp_refuses_bad_input():
    X, Y, Xt = _data()
    with pytest.raises(ParameterError, match="learning_rate"):
        trained_gp(NET, X, Y, Xt, steps=10, learning_rate=1e3)
    with pytest.raises(ParameterError, match="steps"):
        trained_gp(NET, X, Y, Xt, steps=10, learning_rate=0.1, time=1.0)
    with pytest.raises(ParameterError, match="X_test"):
        trained_gp(NET, X, Y, Xt[:, :3], time=1.0)
    with pytest.raises(ParameterError, match="Y"):
        trained_gp(NET, X, Y[:4], Xt, time=1.0)
    with pytest.raises(ParameterError, match="loss"):
        trained_gp(NET, X, Y, Xt, time=1.0, loss="l1")


# ------------------------------------------------------------------ NTK dispersion at order 1/n
def test_dispersion_is_a_plus_two_b_over_n():
    net = Network("relu", depth=5, width=80, C_W=2.0, lambda_b=1.0, lambda_W=80.0)
    d = ntk_dispersion(net, input_norm=1 / 80)
    pr = predict(net, input_norm=1 / 80)
    assert d.variance[0] == 0.0 and d.relative[0] == 0.0       # first-layer NTK is deterministic
    assert np.allclose(d.variance, (pr["A"] + 2 * pr["B"]) / 80, rtol=1e-14)
    assert np.allclose(d.relative, np.sqrt((pr["A"] + 2 * pr["B"]) / 80) / pr["Theta"], rtol=1e-14)
    assert np.allclose(d.mean, pr["Theta"] + pr["Theta1"] / 80, rtol=1e-14)


_SLOW = pytest.mark.slow      # the orthogonal recursions take ~20 s to derive on first use


@pytest.mark.parametrize("act,cw,ens,depth", [("tanh", 1.0, "gaussian", 4), ("relu", 2.0, "gaussian", 4),
                                              pytest.param("tanh", 1.0, "orthogonal", 4, marks=_SLOW),
                                              pytest.param("relu", 2.0, "orthogonal", 4, marks=_SLOW)])
def test_measured_ntk_dispersion_agrees_at_order_one_over_n(act, cw, ens, depth):
    """std/mean of Theta(x, x) of one output neuron over 1500 initializations (the
    trainer's exact empirical NTK) against sqrt((A + 2B)/n)/Theta, within 3 SE + 10%."""
    n = 64
    net = Network(act, depth=depth, width=n, C_W=cw, lambda_b=0.5, lambda_W=1.0, ensemble=ens)
    pred = ntk_dispersion(net, input_norm=1.0)
    x = np.ones((1, n))
    ss = np.random.SeedSequence(11).spawn(1500)
    th = np.array([empirical_ntk(net, init_params(net, n, 1, s), x)[0, 0] for s in ss])
    cv, se = jackknife_cv(th)
    assert abs(cv - pred.relative[-1]) <= 3 * se + 0.1 * pred.relative[-1], (cv, se, pred.relative[-1])
    mse = th.std(ddof=1) / math.sqrt(th.size)
    assert abs(th.mean() - pred.mean[-1]) <= 3 * mse + 0.02 * pred.mean[-1]


# ------------------------------------------------------------------ slow: trained networks vs the infinite-width GP
def trained_test_outputs(net, X, Y, Xt, steps, eta, inits, seed=0):
    """Test outputs after ``steps`` full-batch steps, one row per initialization."""
    seeds = np.random.SeedSequence(seed).generate_state(inits)
    out = []
    for s in seeds:
        h = train(net, X, Y[:, None], steps=steps, learning_rate=eta, seed=int(s), X_test=Xt, record_ntk=False)
        out.append(h.test_outputs[-1, :, 0])
    return np.array(out)


@pytest.mark.slow
def test_trained_outputs_of_tanh_at_criticality_follow_the_infinite_width_gp():
    """tanh at criticality (C_W = 1, C_b = 0), n = 256, L = 3, 240 initializations, 100
    full-batch steps at eta = 0.5 / lambda_max(Theta): mean and variance of each test
    output within 3 SE + 10% of Lee et al.'s prediction (discrete-step form)."""
    rng = np.random.default_rng(5)
    n0, m, p = 8, 8, 4
    X, Xt = rng.standard_normal((m, n0)), rng.standard_normal((p, n0))
    Y = np.sin(X @ rng.standard_normal(n0) / math.sqrt(n0))
    net = Network("tanh", depth=3, width=256, input_dim=n0, C_W=1.0, C_b=0.0, lambda_b=1.0, lambda_W=1.0)
    _, Th = output_kernels(net, X)
    eta = 0.5 / np.linalg.eigvalsh(Th).max()
    gp = trained_gp(net, X, Y, Xt, steps=100, learning_rate=eta)
    out = trained_test_outputs(net, X, Y, Xt, 100, eta, 240)
    N = out.shape[0]
    mean, var = out.mean(0), out.var(0, ddof=1)
    mean_se = np.sqrt(var / N)
    var_se = np.sqrt((((out - mean) ** 4).mean(0) - var ** 2) / N)
    pm, pv = gp.mean[:, 0], np.diag(gp.cov)
    assert np.all(np.abs(mean - pm) <= 3 * mean_se + 0.1 * np.abs(pm)), (mean, mean_se, pm)
    assert np.all(np.abs(var - pv) <= 3 * var_se + 0.1 * pv), (var, var_se, pv)
    assert np.all(pv < 0.9 * np.diag(gp.K)[m:])      # training did move the distribution away from the prior


# ------------------------------------------------------------------ optional real data
def test_digits_loader_names_the_missing_extra(monkeypatch):
    import sys

    from fwtheory.datasets import MissingDependencyError, load_digits

    monkeypatch.setitem(sys.modules, "sklearn", None)        # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match=r"fwtheory\[data\]"):
        load_digits()


def test_digits_loader_normalizes_inputs_and_builds_targets(monkeypatch):
    import sys
    import types

    from fwtheory.datasets import load_digits

    rng = np.random.default_rng(0)
    fake = types.ModuleType("sklearn.datasets")
    fake.load_digits = lambda: types.SimpleNamespace(data=rng.integers(0, 17, (50, 64)).astype(float),
                                                     target=np.arange(50) % 10)
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", fake)
    X, Y, labels = load_digits(classes=2, input_norm=2.0, targets="signed")
    assert X.shape == (10, 64) and Y.shape == (10, 1)
    assert np.allclose(np.sum(X ** 2, axis=1) / 64, 2.0) and np.allclose(X.mean(axis=1), 0.0, atol=1e-12)
    assert np.array_equal(Y[:, 0], np.where(labels == 1, 1.0, -1.0))
    X, Y, labels = load_digits(classes=10, n=20, seed=1)
    assert X.shape == (20, 64) and np.array_equal(Y.argmax(1), labels) and np.allclose(Y.sum(1), 1.0)
    with pytest.raises(ParameterError, match="targets"):
        load_digits(classes=3, targets="signed")
