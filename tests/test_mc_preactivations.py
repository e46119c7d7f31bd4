"""fwtheory.mc.simulate_preactivations and the order-2 comparison.

1. The estimators of E[z^2], V = n Cov(z_i^2, z_k^2) and U6 = n^2 kappa(z_i^2, z_j^2, z_k^2)
   against exact finite-width values of deep linear networks (Gaussian weights:
   E[z_i^2 z_k^2] = K^2 (1 + 2/n)^(l-1), E[z_i^2 z_j^2 z_k^2] = K^3 ((1 + 2/n)(1 + 4/n))^(l-1);
   orthogonal weights: z uniform on the sphere, K^2 n/(n+2) and K^3 n^2/((n+2)(n+4))).
2. The in-distribution hidden layers against the explicit weight matrices of
   simulate() (same estimators on both, tanh, distributions agree within errors).
3. Reproducibility, bad input, compare(order=2) on a synthetic pair with a known answer.
4. (slow) Issue-13 criterion, scaled down (n = 16): chi^2 over layers with the 1/n^2
   terms at least 5x smaller than without, for E[z^2] and for V (the full n = 32 run is
   validation/order2_tanh.py).
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from fwtheory import Network, ParameterError, compare, predict
from fwtheory.mc import _runner, simulate, simulate_preactivations

Z = 4.0     # standard errors allowed per number (a few dozen comparisons per test)


def _exact_linear(ensemble, n, layers):
    l = np.asarray(layers, dtype=float)
    if ensemble == "gaussian":
        e22, e222 = (1 + 2 / n) ** (l - 1), ((1 + 2 / n) * (1 + 4 / n)) ** (l - 1)
    else:
        e22, e222 = n / (n + 2) + 0 * l, n * n / ((n + 2) * (n + 4)) + 0 * l
    return n * (e22 - 1), n * n * (e222 - 3 * e22 + 2)


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_estimators_against_exact_deep_linear_moments(ensemble):
    n, C_W, q0 = 8, 1.3, 0.6
    net = Network("linear", depth=5, width=n, C_W=C_W, ensemble=ensemble)
    sim = simulate_preactivations(net, samples=60000, seed=3, input_norm=q0)
    K = C_W * q0 * C_W ** np.arange(5)
    V, U6 = _exact_linear(ensemble, n, sim.layers)
    for key, want in (("K", K), ("V", V * K**2), ("U6", U6 * K**3)):
        got, se = sim.values[key], sim.errors[key]
        assert np.all(np.abs(got - want) <= Z * se + 1e-12 * np.abs(want)), (key, got, want, se)
    assert np.all(sim.errors["V"][1:] > 0) and np.all(sim.errors["U6"][1:] > 0)
    np.testing.assert_allclose(sim.ratios["V/K^2"], sim.values["V"] / sim.values["K"] ** 2, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_in_distribution_layers_match_explicit_weights(ensemble):
    """simulate() multiplies explicit weight matrices; simulate_preactivations draws W s in
    distribution. Same network, independent samples: K, V agree within the combined errors."""
    net = Network("tanh", depth=3, width=16, C_W=1.2, C_b=0.1, ensemble=ensemble)
    a = simulate_preactivations(net, samples=20000, seed=1)
    b = simulate(net, samples=3000, seed=2)
    for key in ("K", "V", "G1"):
        diff = np.abs(a.values[key] - b.values[key])
        assert np.all(diff <= Z * np.hypot(a.errors[key], b.errors[key]) + 1e-12), (key, a.values[key], b.values[key])


@pytest.mark.parametrize("ensemble, residual", [("uniform", None), ("rademacher", None), ("gaussian", 0.5)])
def test_other_ensembles_and_residual_run_and_match_simulate(ensemble, residual):
    net = Network("tanh", depth=3, width=12, ensemble=ensemble, residual=residual)
    a = simulate_preactivations(net, samples=8000, seed=0)
    b = simulate(net, samples=4000, seed=0)
    for key in ("K", "V"):
        assert np.all(np.abs(a.values[key] - b.values[key]) <= Z * np.hypot(a.errors[key], b.errors[key]) + 1e-12)


def test_same_seed_same_numbers_at_any_thread_count(monkeypatch):
    net = Network("tanh", depth=3, width=8)
    monkeypatch.setattr(_runner, "worker_count", lambda: 1)
    one = simulate_preactivations(net, samples=9000, seed=5)
    monkeypatch.setattr(_runner, "worker_count", lambda: 3)
    many = simulate_preactivations(net, samples=9000, seed=5)
    for k in one.values:
        assert np.array_equal(one.values[k], many.values[k], equal_nan=True)
        assert np.array_equal(one.errors[k], many.errors[k], equal_nan=True)
    other = simulate_preactivations(net, samples=9000, seed=6)
    assert not np.array_equal(one.values["V"], other.values["V"])


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(samples=2), "samples"), (dict(seed=-1), "seed"), (dict(widths=[8]), "widths"),
    (dict(network=Network("tanh", depth=2, width=2)), "width"), (dict(input_norm=-1.0), "input_norm"),
])
def test_bad_input(kwargs, parameter):
    args = dict(network=Network("tanh", depth=2, width=4), samples=10, seed=0)
    args.update(kwargs)
    with pytest.raises(ParameterError) as err:
        simulate_preactivations(**args)
    assert err.value.parameter == parameter


def test_width_extrapolation_and_json():
    from fwtheory._io import dumps_json

    net = Network("linear", depth=3, width=8)
    sim = simulate_preactivations(net, samples=3000, seed=0, widths=[8, 16, 32])
    d = json.loads(dumps_json(sim.to_dict()))
    assert {"K", "V", "U6", "U6_se"} <= set(d) and d["extrapolation"]["widths"] == [8, 16, 32]
    assert set(d["extrapolation"]["fits"]["V"]) == {"linear", "quadratic"}


# ------------------------------------------------------------ compare at order 2
def _fake(prediction, n, K_meas, V_meas, se):
    L = prediction.network.depth
    values = {"K": K_meas, "V": V_meas}
    return SimpleNamespace(network=prediction.network.replace(width=n), samples=100, seed=0,
                           input_norm=1.0, layers=np.arange(1, L + 1), values=values,
                           errors={k: np.full(L, se) for k in values}, ratios={}, ratio_errors={},
                           extrapolation=None, notes=[])


def test_compare_reports_both_truncations():
    """A 'measurement' equal to the series through 1/n^2: chi^2 through 1/n^2 is 0, through
    1/n it is the sum of (G2/n^2 / SE)^2 (and (V1/n / SE)^2); table and JSON carry both."""
    net = Network("tanh", depth=8, width=32, C_W=1.0)
    p = predict(net, order=2)
    fw2 = p.finite_width(order=2)
    n = np.full(8, 32.0)
    V2 = p["V"] + p["V1"] / n
    se = 1e-4
    c = compare(p, _fake(p, 32, fw2["E[z^2]"], V2, se))
    assert c.order == 2 and set(c.series) == {"K", "V"}
    assert c.chi2["K"]["1/n^2"] == pytest.approx(0.0, abs=1e-12)
    want = np.sum((p["G2"] / n**2 / se) ** 2)
    assert c.chi2["K"]["1/n"] == pytest.approx(want, rel=1e-9)
    assert c.chi2["V"]["1/n"] == pytest.approx(np.sum((p["V1"] / n / se) ** 2), rel=1e-9)
    assert set(c.series["V"]["verdict"]) == {"agree"}
    table = c.table()
    assert "theory 1/n^2" in table and "chi^2 over 8 layers of K" in table
    d = c.to_dict()
    assert d["order"] == 2 and d["quantities"]["V"]["order2"]["verdict"] == ["agree"] * 8
    assert d["chi2"]["V"]["1/n^2"] == pytest.approx(0.0, abs=1e-12)
    # an order-1 prediction has no second truncation
    assert compare(predict(net), _fake(p, 32, fw2["E[z^2]"], V2, se)).series == {}


def test_compare_cli_order2(capsys):
    from fwtheory.cli import main

    assert main(["compare", "--order", "2", "--depth", "3", "--width", "16", "--samples", "3000",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["order"] == 2 and {"K", "V", "U6"} <= set(d["quantities"]) and "1/n^2" in d["chi2"]["K"]


# ------------------------------------------------------------ issue-13 acceptance
ACCEPTANCE = dict(width=32, depth=12, samples=1_000_000, seed=0)


def order2_chi2(samples=ACCEPTANCE["samples"], seed=ACCEPTANCE["seed"], width=ACCEPTANCE["width"],
                depth=ACCEPTANCE["depth"]):
    """chi^2 over layers of (simulation - theory) for E[z^2] and V, through 1/n and 1/n^2
    (tanh, Gaussian, critical C_b = 0, C_W = 1, q0 = 1)."""
    net = Network("tanh", depth=depth, width=width, C_W=1.0)
    c = compare(predict(net, order=2), simulate_preactivations(net, samples=samples, seed=seed))
    return c, {k: (c.chi2[k]["1/n"], c.chi2[k]["1/n^2"]) for k in ("K", "V")}


@pytest.mark.slow
def test_order2_terms_resolved_scaled_down():
    """Issue-13 criterion, scaled down to ~25 s: tanh, Gaussian, n = 16, l <= 12, 6 x 10^5
    networks: with the 1/n^2 terms the chi^2 over layers is at least 5x smaller, for E[z^2]
    and for V. (The issue's n = 32 run needs ~4 x 10^6 networks for the E[z^2] ratio to
    clear 5 at every seed; at 10^6 the ratios were 10.2, 14.2, 21.5, 2.8 at seeds 0-3:
    validation/order2_tanh.py, docs/order2.md.)"""
    c, chi2 = order2_chi2(samples=600_000, seed=0, width=16, depth=12)
    for key, (first, second) in chi2.items():
        assert first >= 5 * second, (key, first, second)


def test_builtin_activation_never_imports_sympy():
    import subprocess
    import sys

    code = ("import sys; sys.path[:0] = sys.argv[1:]\n"
            "from fwtheory import Network\n"
            "from fwtheory.mc import simulate_preactivations\n"
            "simulate_preactivations(Network('gelu', depth=3, width=6, ensemble='orthogonal'), 20, 0)\n"
            "assert 'sympy' not in sys.modules, 'sympy was imported'\n")
    subprocess.run([sys.executable, "-c", code] + sys.path, check=True)
