"""Kernel shaping (fwtheory.shaping): DKS and TAT conditions, shaped expressions, finite-width cost."""

import math

import numpy as np
import pytest

from fwtheory import get_activation, maps, shaping
from fwtheory.errors import ParameterError


@pytest.fixture(scope="module")
def dks():
    return {a: shaping.shape_activation(a, 10, zeta=1.5) for a in ("tanh", "softplus", "gelu")}


@pytest.mark.parametrize("name", ["tanh", "softplus", "gelu"])
def test_dks_conditions_hold_for_the_shaped_expression(dks, name):
    s = dks[name]
    a = s.achieved            # recomputed from s.expression through fwtheory.maps
    assert abs(a["Q(1)"] - 1) < 1e-8 and abs(a["Q'(1)"] - 1) < 1e-8 and abs(a["C(0)"]) < 1e-8
    assert abs(a["network C'(1)"] - 1.5) < 1e-8
    assert abs(a["C'(1)"] - 1.5 ** 0.1) < 1e-8
    # independently: the composed network over D = 10 layers (PDLT depth 11) keeps q = 1
    comp = maps.compose(s.expression, 11, input_norm=1.0, input_corr=1.0)
    np.testing.assert_allclose(comp.K, 1.0, atol=1e-10)
    assert comp.dc[-1] == pytest.approx(1.5, abs=1e-8)


@pytest.mark.parametrize("name", ["tanh", "softplus", "gelu"])
def test_shaped_expression_is_the_transformation(dks, name):
    s = dks[name]
    act, base = get_activation(s.expression), get_activation(name)
    x = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(act(x), s.gamma * (base(s.alpha * x + s.beta) + s.delta), rtol=1e-13, atol=1e-13)
    assert s.alpha > 0 and s.gamma > 0


@pytest.mark.parametrize("name", ["tanh", "softplus", "gelu"])
def test_tat_smooth_conditions(name):
    s = shaping.shape_activation(name, 10, method="tat", tau=0.3)
    a = s.achieved
    assert abs(a["Q(1)"] - 1) < 1e-8 and abs(a["Q'(1)"] - 1) < 1e-8 and abs(a["C'(1)"] - 1) < 1e-8
    assert abs(a["network C''(1)"] - 0.3) < 1e-8 and abs(a["C''(1)"] - 0.03) < 1e-8
    assert s.alpha * s.gamma < 2


def test_tat_leaky_relu_network_c0():
    D = 50
    s = shaping.shape_activation("leaky_relu", D, method="tat", eta=0.9)
    a = s.achieved
    assert abs(a["network C(0)"] - 0.9) < 1e-8
    assert abs(a["Q(1)"] - 1) < 1e-12 and abs(a["Q'(1)"] - 1) < 1e-12
    sl = s.negative_slope
    assert 0 < sl < 1 and s.gamma == pytest.approx(math.sqrt(2 / (1 + sl * sl)), rel=1e-15)
    # the closed-form C map composed D times (TAT's leaky-ReLU C map)
    c = 0.0
    for _ in range(D):
        c = ((1 - sl) ** 2 * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
             + 2 * sl * c) / (1 + sl * sl)
    assert c == pytest.approx(0.9, abs=1e-12)


def test_tat_leaky_unreachable_eta_names_the_parameter():
    with pytest.raises(ParameterError) as e:     # the ReLU network itself has C_f(0) = 0.87 at D = 10
        shaping.shape_activation("relu", 10, method="tat", eta=0.9)
    assert e.value.parameter == "eta"


@pytest.mark.parametrize("kw, name", [(dict(zeta=1.0), "zeta"), (dict(depth=0), "depth"),
                                      (dict(method="x"), "method")])
def test_bad_input(kw, name):
    args = dict(activation="tanh", depth=10)
    args.update(kw)
    with pytest.raises(ParameterError) as e:
        shaping.shape_activation(**args)
    assert e.value.parameter == name


def test_dks_relu_is_refused_with_a_hint():
    with pytest.raises(ParameterError, match="method='tat'"):
        shaping.shape_activation("relu", 10)


def test_finite_width_cost_tanh(dks):
    from fwtheory import Network, predict

    cost = shaping.finite_width_cost(dks["tanh"], width=64)
    assert cost["layer"] == 11 and cost["width"] == 64
    sh, eoc = cost["shaped"], cost["edge_of_chaos"]
    assert (sh["C_b"], sh["C_W"]) == (0.0, 1.0) and (eoc["C_b"], eoc["C_W"]) == (0.0, 1.0)
    assert sh["K"] == pytest.approx(1.0, abs=1e-10)                   # Q(1) = 1 through the network
    ref = predict(Network("tanh", depth=11, width=64, C_b=0.0, C_W=1.0)).ratios
    for k in ("V/K^2", "A/Theta^2", "B/Theta^2"):
        assert eoc["ratios"][k] == pytest.approx(ref[k][-1], rel=1e-12)
        assert sh["over_width"][k] == pytest.approx(sh["ratios"][k] / 64, rel=1e-15)
    assert all(np.isfinite(v) for v in sh["ratios"].values())


# ------------------------------------------------------------------ CLI
def _cli(argv, capsys):
    from fwtheory.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_shape_json(capsys):
    import json

    rc, out, _ = _cli(["shape", "--activation", "tanh", "--depth", "10", "--json", "--width", "64"], capsys)
    assert rc == 0
    d = json.loads(out)
    for k in ("alpha", "beta", "gamma", "delta", "expression"):
        assert k in d
    assert get_activation(d["expression"])(np.array([0.3]))[0] == pytest.approx(
        d["gamma"] * (math.tanh(d["alpha"] * 0.3 + d["beta"]) + d["delta"]), rel=1e-13)
    assert abs(d["achieved"]["network C'(1)"] - 1.5) < 1e-8
    fw = d["finite_width"]
    assert fw["layer"] == 11 and set(fw["shaped"]["ratios"]) == {"V/K^2", "A/Theta^2", "B/Theta^2"}


def test_cli_shape_table_tat(capsys):
    rc, out, _ = _cli(["shape", "--activation", "softplus", "--depth", "5", "--method", "tat", "--no-cost"],
                      capsys)
    assert rc == 0 and "TAT" in out and "network C''(1)" in out and "expression" in out


@pytest.mark.parametrize("argv, parameter", [
    (["--depth", "0"], "depth"), (["--zeta", "0.5"], "zeta"), (["--activation", "relu"], "activation"),
    (["--method", "tat", "--activation", "relu", "--depth", "3"], "eta"),
])
def test_cli_shape_bad_input(argv, parameter, capsys):
    rc, out, err = _cli(["shape", "--no-cost"] + argv, capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and f"error: {parameter}:" in err
