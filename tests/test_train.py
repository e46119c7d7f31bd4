"""The trainer (fwtheory.train): exact gradients and NTK, ensembles, the update rule,
reproducibility, and the NTK statistics at initialization and after one step.

1. Gradients equal central finite differences (1e-7 relative, float64); the NTK
   equals J lambda J^T with J by central differences of the outputs.
2. The initial NTK statistics over initializations agree with ``simulate``.
3. Gradient descent: first-order output change -eta Theta e, linear models are
   their own linearization, SGD with the full batch is GD, seeds, interrupts.
4. First step (docs/training.md): E[Delta Theta] = -2 eta (P + 2Q)/n for one
   input and one output (tanh at the trainer's learning rate; ReLU in the
   eta -> 0 limit, and the kink-crossing term at finite eta for L = 2).
"""

import math

import numpy as np
import pytest

from fwtheory import Network, ParameterError, predict
from fwtheory.mc import simulate
from fwtheory.train.first_step import dntk_first_step, relu_crossing_coefficient
from fwtheory.train import (empirical_ntk, gradient, init_params, linearized_outputs, loss_and_gradient,
                            mlp_forward, train)


def _flat(params):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in params])


def _unflat(v, like):
    out, i = [], 0
    for W, b in like:
        w = v[i:i + W.size].reshape(W.shape)
        i += W.size
        out.append((w, v[i:i + b.size]))
        i += b.size
    return out


def _lambdas(net, params):
    return np.concatenate([np.concatenate([np.full(W.size, net.lambda_W / W.shape[1]),
                                           np.full(b.size, net.lambda_b)]) for W, b in params])


NETS = [
    dict(activation="tanh"),
    dict(activation="relu", C_W=2.0, C_b=0.3, lambda_b=0.7),
    dict(activation="gelu", residual=0.7, C_b=0.1, lambda_b=0.5),
    dict(activation="tanh", ensemble="orthogonal", C_b=0.2, lambda_b=1.0),
    dict(activation="sigmoid", ensemble="uniform", C_W=1.7),
    dict(activation="z*tanh(z) + sin(z)", ensemble="rademacher"),
]


@pytest.mark.parametrize("kw", NETS)
@pytest.mark.parametrize("output_dim", [1, 2])
def test_gradient_and_ntk_equal_central_differences(kw, output_dim):
    net = Network(depth=3, width=5, input_dim=5, **{"C_W": 1.5, **kw})
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((4, 5)), rng.standard_normal((4, output_dim))
    p = init_params(net, 5, output_dim, seed=3)
    g = _flat(gradient(net, p, X, Y))
    v, h = _flat(p), 1e-5
    basis = np.eye(len(v))
    loss = lambda w: loss_and_gradient(net, _unflat(w, p), X, Y)[0]  # noqa: E731
    fd = np.array([(loss(v + h * e) - loss(v - h * e)) / (2 * h) for e in basis])
    assert np.max(np.abs(fd - g)) <= 1e-7 * np.max(np.abs(g))
    # NTK = J lambda J^T, J by central differences of the outputs (a separate code path)
    J = np.array([(mlp_forward(net, _unflat(v + h * e, p), X) - mlp_forward(net, _unflat(v - h * e, p), X)).ravel()
                  / (2 * h) for e in basis]).T
    ref = (J * _lambdas(net, p)) @ J.T
    theta = empirical_ntk(net, p, X)
    m = X.shape[0]
    assert theta.shape == ((m, m) if output_dim == 1 else (m, output_dim, m, output_dim))
    theta = theta.reshape(m * output_dim, m * output_dim)
    assert np.max(np.abs(theta - ref)) <= 1e-7 * np.max(np.abs(ref))
    # cross kernel: rows of the full kernel
    cross = empirical_ntk(net, p, X[:2], X).reshape(2 * output_dim, m * output_dim)
    assert np.allclose(cross, theta[:2 * output_dim], rtol=1e-12, atol=1e-14)


def test_init_params_ensembles():
    net = Network("tanh", depth=3, width=40, C_W=1.3, C_b=0.4)
    p = init_params(net, 40, 3, seed=0)
    assert [W.shape for W, _ in p] == [(40, 40), (40, 40), (3, 40)]
    Ws = np.concatenate([W.ravel() for W, _ in p[:2]]) / math.sqrt(1.3 / 40)
    bs = np.concatenate([b for _, b in p]) / math.sqrt(0.4)
    assert abs(np.var(Ws) - 1.0) < 5 * math.sqrt(2 / Ws.size)
    assert abs(np.var(bs) - 1.0) < 5 * math.sqrt(2 / bs.size)
    orth = init_params(net.replace(ensemble="orthogonal"), 40, 3, seed=0)
    for W, _ in orth:               # W W^T = C_W I: square layers and the output rows
        assert np.allclose(W @ W.T, 1.3 * np.eye(W.shape[0]), atol=1e-12)
    rad = init_params(net.replace(ensemble="rademacher"), 40, 1, seed=0)
    assert np.allclose(np.abs(rad[1][0]), math.sqrt(1.3 / 40))
    uni = init_params(net.replace(ensemble="uniform"), 40, 1, seed=0)
    assert np.max(np.abs(uni[1][0])) <= math.sqrt(3 * 1.3 / 40)
    assert np.array_equal(init_params(net, 40, 1, seed=5)[1][0], init_params(net, 40, 1, seed=5)[1][0])
    with pytest.raises(ParameterError, match="output_dim"):
        init_params(net.replace(residual=0.5), 40, 41, seed=0)


def _ntk_samples(net, N, outputs=2):
    x = np.ones((1, net.input_dim))
    H = np.empty((N, outputs, outputs))
    for s in range(N):
        H[s] = empirical_ntk(net, init_params(net, net.input_dim, outputs, s), x)[0, :, 0, :]
    return H


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_initial_ntk_statistics_agree_with_simulate(ensemble):
    """Output-layer E[H_ii], Var(H_ii) and E[H_ik^2] over initializations, trainer
    against simulate (x = (1, ..., 1), tanh, n = 12, L = 3), within 3 combined SE."""
    net = Network("tanh", depth=3, width=12, C_W=1.2, C_b=0.1, lambda_b=0.5, ensemble=ensemble)
    H = _ntk_samples(net, 1500)
    d, off = H[:, 0, 0], H[:, 0, 1]
    dd = d - d.mean()
    mine = {"h": (d.mean(), d.std(ddof=1) / math.sqrt(len(d))),
            "var": (np.var(d, ddof=1), np.std(dd ** 2, ddof=1) / math.sqrt(len(d))),
            "hik2": (np.mean(off ** 2), np.std(off ** 2, ddof=1) / math.sqrt(len(d)))}
    sim = simulate(net, samples=3000, seed=7)
    ref = {"h": sim.jackknife(lambda m: m["h"]), "var": sim.jackknife(lambda m: m["h2"] - m["Eh^2"]),
           "hik2": sim.jackknife(lambda m: m["hik2"])}
    for key, (val, se) in mine.items():
        rv, rse = ref[key][0][-1], ref[key][1][-1]
        assert abs(val - rv) <= 3 * math.hypot(se, rse), (key, val, se, rv, rse)


def test_first_order_output_change_is_minus_eta_theta_e():
    net = Network("tanh", depth=3, width=20, input_dim=6, lambda_b=0.3, C_b=0.1)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 6)), rng.standard_normal((5, 2))
    h = train(net, X, Y, steps=1, learning_rate=1e-6, seed=2, output_dim=2)
    theta = h.ntk[0].reshape(10, 10)
    e = (h.outputs[0] - Y).ravel()
    change = (h.outputs[1] - h.outputs[0]).ravel()
    assert np.allclose(change, -1e-6 * theta @ e, rtol=1e-4, atol=1e-14)
    assert h.loss[1] < h.loss[0]


def test_linear_model_is_its_own_linearization():
    """Depth 1, linear activation: z = b + W x is linear in theta, so GD equals the
    linearized dynamics (train and test outputs) to round-off."""
    net = Network("linear", depth=1, width=4, input_dim=7, lambda_b=0.5, C_b=0.2)
    rng = np.random.default_rng(3)
    X, Y, Xt = rng.standard_normal((6, 7)), rng.standard_normal((6, 2)), rng.standard_normal((3, 7))
    h = train(net, X, Y, steps=40, learning_rate=0.05, seed=1, output_dim=2, X_test=Xt,
              record_steps=[0, 1, 10, 40])
    tr, te = linearized_outputs(h.ntk[0], h.outputs[0], Y, 0.05, h.steps, h.test_ntk[0], h.test_outputs[0])
    assert np.allclose(tr, h.outputs, atol=1e-12)
    assert np.allclose(te, h.test_outputs, atol=1e-12)
    assert np.allclose(h.ntk, h.ntk[0], atol=1e-14)         # and its NTK never changes
    assert h.ntk_change()[-1] < 1e-14


def test_training_reproducible_sgd_and_interrupt():
    net = Network("tanh", depth=3, width=16, input_dim=4)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 4)), np.sin(rng.standard_normal((8, 1)))
    a = train(net, X, Y, steps=30, learning_rate=0.05, seed=4, record_steps=range(0, 31, 10))
    b = train(net, X, Y, steps=30, learning_rate=0.05, seed=4, record_steps=range(0, 31, 10))
    assert np.array_equal(a.ntk, b.ntk) and np.array_equal(a.loss, b.loss)
    assert a.loss[-1] < 0.5 * a.loss[0] and len(a.loss_curve) == 31 and a.loss_curve[0] == a.loss[0]
    c = train(net, X, Y, steps=30, learning_rate=0.05, seed=5)
    assert not np.array_equal(c.outputs[0], a.outputs[0])
    # SGD with the whole data set as batch is gradient descent (sums reordered only)
    s = train(net, X, Y, steps=30, learning_rate=0.05, seed=4, batch_size=8, record_steps=range(0, 31, 10))
    assert np.allclose(s.outputs, a.outputs, atol=1e-12)
    s2 = train(net, X, Y, steps=30, learning_rate=0.05, seed=4, batch_size=3)
    assert s2.loss[-1] < s2.loss[0] and s2.batch_size == 3
    # a KeyboardInterrupt keeps the history recorded so far
    done = []

    def stop(k):
        done.append(k)
        if len(done) == 12:
            raise KeyboardInterrupt

    i = train(net, X, Y, steps=30, learning_rate=0.05, seed=4, record_steps=range(0, 31, 5), progress=stop)
    assert i.interrupted and list(i.steps) == [0, 5, 10]
    assert np.array_equal(i.outputs[0], a.outputs[0]) and np.array_equal(i.outputs[2], a.outputs[1])
    assert i.ntk.shape == (3, 8, 8) and "interrupted" in repr(i)


def test_bad_input():
    net = Network("tanh", depth=2, width=8, input_dim=3)
    X, Y = np.zeros((4, 3)), np.zeros((4, 1))
    for kwargs, name in [(dict(steps=-1), "steps"), (dict(learning_rate=0.0), "learning_rate"),
                         (dict(batch_size=5), "batch_size"), (dict(record_steps=[11]), "record_steps"),
                         (dict(X=np.zeros((4, 2))), "X"), (dict(Y=np.zeros((4, 2))), "Y"),
                         (dict(X_test=np.zeros((2, 5))), "X_test")]:
        args = dict(X=X, Y=Y, steps=10, learning_rate=0.1, seed=0)
        args.update(kwargs)
        with pytest.raises(ParameterError, match=name):
            train(net, args.pop("X"), args.pop("Y"), **args)
    from fwtheory.errors import NumericalError

    with pytest.raises(NumericalError):
        train(net, np.ones((4, 3)), np.ones((4, 1)), steps=200, learning_rate=50.0, seed=0)


def _first_step(net, N, eta, seed0=0):
    """E[Delta Theta]/eta and its SE over N initializations: one GD step on the
    input x = (1, ..., 1), target y = 0, one output."""
    X, Y = np.ones((1, net.input_dim)), np.zeros((1, 1))
    d = np.empty(N)
    for s in range(N):
        h = train(net, X, Y, steps=1, learning_rate=eta, seed=seed0 + s)
        d[s] = (h.ntk[1, 0, 0] - h.ntk[0, 0, 0]) / eta
    return d.mean(), d.std(ddof=1) / math.sqrt(N)


def _dntk_prediction(net):
    pred, theta = dntk_first_step(net)
    pr = predict(net)               # the relation spelled out with predict's P, Q
    assert pred == pytest.approx(-2.0 * (pr["P"][-1] + 2.0 * pr["Q"][-1]) / net.width, rel=1e-12)
    return pred, theta


def test_first_step_mean_ntk_change_tanh():
    """E[Delta Theta] = -2 eta (P + 2Q)/n (docs/training.md), tanh at criticality,
    n = 64, L = 3, 2000 initializations, eta Theta = 0.01: within 3 SE + 10%."""
    net = Network("tanh", depth=3, width=64)
    pred, theta = _dntk_prediction(net)
    mean, se = _first_step(net, 2000, 0.01 / theta)
    assert abs(mean - pred) <= 3 * se + 0.1 * abs(pred), (mean, se, pred)
    assert abs(mean) > 4 * se            # a resolved, nonzero signal


def test_first_step_relu_almost_everywhere_limit():
    """ReLU, eta -> 0 (no preactivation crosses the kink): the a.e. dNTK relation
    holds; n = 64, L = 3, 2000 initializations."""
    net = Network("relu", depth=3, width=64, C_W=2.0)
    pred, theta = _dntk_prediction(net)
    mean, se = _first_step(net, 2000, 1e-7 / theta)
    assert abs(mean - pred) <= 3 * se + 0.1 * abs(pred), (mean, se, pred)


@pytest.mark.slow
def test_first_step_relu_kink_crossings_depth2():
    """ReLU, L = 2, finite eta: E[Delta Theta]/eta = -2(P + 2Q)/n - c/sqrt(n) with the
    kink-crossing term c = 0.718 of relu_crossing_coefficient (docs/training.md), n = 64."""
    net = Network("relu", depth=2, width=64, C_W=2.0)
    pred, theta = _dntk_prediction(net)
    cross = -relu_crossing_coefficient(2.0, 1.0, 1.0) / math.sqrt(64)
    mean, se = _first_step(net, 20000, 0.01 / theta)
    assert abs(mean - (pred + cross)) <= 3 * se + 0.1 * abs(pred + cross), (mean, se, pred, cross)
    assert abs(mean - pred) > 5 * se                     # the dNTK term alone is excluded



def _regime(n, N, steps=10, eta=0.1):
    """Per-network relative NTK changes (N,) and the changes (N, m, m), tanh L = 3."""
    rng = np.random.default_rng(12345)
    X = rng.standard_normal((4, 8))
    X *= math.sqrt(8) / np.linalg.norm(X, axis=1, keepdims=True)
    Y = np.array([[0.6], [-0.4], [0.3], [-0.5]])
    net = Network("tanh", depth=3, width=n, input_dim=8)
    rel, d, th = np.empty(N), np.empty((N, 4, 4)), np.empty((N, 4, 4))
    for s in range(N):
        h = train(net, X, Y, steps=steps, learning_rate=eta, seed=s)
        rel[s] = h.ntk_change()[-1]
        d[s], th[s] = h.ntk[1] - h.ntk[0], h.ntk[0]
    return rel, d, th


@pytest.mark.slow
def test_width_exponents_scaled_down():
    """docs/training.md: each network's relative NTK change and its mean both scale as
    1/n (tanh, L = 3, 10 steps); n = 64 and 256, 1000 networks each."""
    out = {}
    for n in (64, 256):
        rel, d, th = _regime(n, 1000)
        flat = d.reshape(len(d), -1)
        tot = flat.sum(axis=0)
        mean_sq = (tot @ tot - np.sum(flat * flat)) / (len(d) * (len(d) - 1))     # unbiased ||E d||^2
        out[n] = (rel.mean(), rel.std(ddof=1) / math.sqrt(len(rel)),
                  math.sqrt(mean_sq) / np.linalg.norm(th.mean(axis=0)))
    slope = lambda a, b: math.log(b / a) / math.log(4.0)  # noqa: E731
    per_network = slope(out[64][0], out[256][0])
    assert abs(per_network + 1.0) < 0.1, per_network
    assert abs(per_network + 0.5) > 0.3                  # not the n^{-1/2} of the convergence bounds
    assert abs(slope(out[64][2], out[256][2]) + 1.0) < 0.25


def test_cli_train(capsys, tmp_path):
    import json

    from fwtheory.cli import main

    out = tmp_path / "t.json"
    rc = main(["train", "--width", "16", "--depth", "2", "--inputs", "5", "--steps", "20", "--records", "2",
               "--json", "--out", str(out)])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["steps"] == [0, 10, 20] and data["loss"][-1] < data["loss"][0]
    assert data["ntk_change"][0] == 0 and len(data["lambda_max"]) == 3
    saved = json.loads(out.read_text())
    assert len(saved["ntk"]) == 3 and len(saved["ntk"][0]) == 5
    # the default learning rate 1 / lambda_max(Theta_0): the first step follows the NTK to O(eta^2)
    assert data["learning_rate"] == pytest.approx(1.0 / data["lambda_max"][0])
    assert main(["train", "--inputs", "0"]) == 2
    assert "inputs" in capsys.readouterr().err
