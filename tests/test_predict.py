"""predict() against published/derived reference values (docs/references.md items 4-11),
exact solutions, K*=0 asymptotics and the mpmath oracle."""

import json
import subprocess
import sys

import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fwtheory import Network, NumericalError, ParameterError
from fwtheory.asymptotics import kstar0_asymptotics
from fwtheory.exact import scale_invariant_solution
from fwtheory.prediction import predict


def relu_net(depth=3, ensemble="gaussian", **kw):
    return Network("relu", depth=depth, width=64, C_W=2.0, lambda_b=0.0, lambda_W=1.0,
                   ensemble=ensemble, **kw)


@pytest.mark.parametrize("name", ["tanh", "sin", "erf", "gelu", "swish", "relu", "leaky_relu(0.1)",
                                  "linear", "sigmoid", "softplus"])
def test_every_builtin_predicts_to_depth_100_at_default_initialization(name):
    # C_b = 0, C_W = 1: for swish K falls like 4^-l; at K ~ 3e-11 the moments with sigma'''
    # once stalled the quadrature (1 - 2 sigmoid cancelled); the closed forms now avoid that
    p = predict(Network(name, depth=100, width=64))
    for key, v in p.values.items():
        assert np.isfinite(np.asarray(v, float)).all(), key


def test_relu_reference_values():
    # docs/references.md item 7: K = 2, Theta = l; (V, D, F, B, A) = (20, 12, 4, 2, 8) at l = 2
    # and (40, 36, 12, 10, 38) at l = 3
    p = predict(relu_net())
    np.testing.assert_allclose(p["K"], [2, 2, 2], rtol=1e-12)
    np.testing.assert_allclose(p["Theta"], [1, 2, 3], rtol=1e-12)
    for name, ref in zip("VDFBA", [(20, 40), (12, 36), (4, 12), (2, 10), (8, 38)]):
        np.testing.assert_allclose(p[name][1:], ref, rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(p["G1"], 0, atol=1e-10)  # <sigma^2> linear in K, so G1 = 0


def test_relu_orthogonal_reference_values():
    # docs/references.md item 10: orthogonal ReLU predictions at l = 3, 4
    p = predict(relu_net(depth=4, ensemble="orthogonal"))
    for name, ref in zip("VDFBA", [(16, 28), (24, 48), (6, 12), (5, 14), (28, 76)]):
        np.testing.assert_allclose(p[name][2:], ref, rtol=1e-10, err_msg=name)
    assert p["V"][0] == pytest.approx(-2 * 4)  # V^(1) = -2 K^2


def test_tanh_gaussian_reference_values():
    # docs/references.md items 5, 8, 9 (K^(1) = Theta^(1) = 1, lambda_b = 0, lambda_W = 1)
    p = predict(Network("tanh", depth=3, width=64))
    assert p["K"][1] == pytest.approx(0.394294, abs=5e-7)
    assert p["K"][2] == pytest.approx(0.236450, abs=5e-7)
    ref = dict(Theta=0.858697, V=0.097524, D=-0.010537, F=0.075051, B=0.341509, A=0.007242)
    for name, value in ref.items():
        assert p[name][1] == pytest.approx(value, abs=5e-7), name
    assert p["G1"][2] == pytest.approx(-0.030933, abs=5e-7)
    assert p["Theta1"][2] == pytest.approx(-0.0519, abs=5e-5)


def test_tanh_orthogonal_reference_values():
    # docs/references.md items 9, 10 (orthogonal first layer): V at l = 2..6, Theta1^(2) = -0.0359
    p = predict(Network("tanh", depth=6, width=64, ensemble="orthogonal"))
    np.testing.assert_allclose(p["V"][1:], [-0.2795, -0.0992, -0.0494, -0.0293, -0.0193], atol=6e-5)
    assert p["Theta1"][1] == pytest.approx(-0.0359, abs=5e-5)
    for name, ref in zip("DFBA", [-0.0118, -0.1081, 0.1258, 0.0072]):
        assert p[name][1] == pytest.approx(ref, abs=6e-5), name
    assert p.ratios["V/K^2"][0] == pytest.approx(-2.0)


def test_tanh_orthogonal_limits():
    # docs/references.md item 6: V/K^2 -> -2, G1/K -> 2, F/(K Theta) -> -2/3; B, D, A -> 0
    p = predict(Network("tanh", depth=4000, width=64, ensemble="orthogonal"))
    r = p.ratios
    assert r["V/K^2"][-1] == pytest.approx(-2.0, abs=2e-3)
    assert r["G1/K"][-1] == pytest.approx(2.0, abs=2e-2)
    assert r["F/(K Theta)"][-1] == pytest.approx(-2 / 3, abs=2e-3)
    for name in ("B/Theta^2", "D/(K Theta)", "A/Theta^2"):
        assert abs(r[name][-1]) < 2e-3, name
    # ... against Gaussian growth (docs/references.md item 5): V/K^2 ~ (2/3) l
    g = predict(Network("tanh", depth=4000, width=64)).ratios["V/K^2"]
    assert g[-1] / 4000 == pytest.approx(2 / 3, rel=5e-3)


@pytest.mark.parametrize("kwargs", [
    dict(activation="relu"),
    dict(activation="relu", ensemble="orthogonal"),
    dict(activation="relu", ensemble="orthogonal", first_layer="gaussian"),
    dict(activation="leaky_relu(0.3)", lambda_b=0.5),
    dict(activation="linear", C_W=1.3),
    dict(activation="linear", ensemble="orthogonal", C_W=0.8, lambda_W=2.0),
    dict(activation="relu", C_W=2.5, lambda_b=1.0, input_norm=0.7),
])
def test_exact_solutions_match_numeric_recursion(kwargs):
    kw = dict(kwargs)
    q0 = kw.pop("input_norm", 1.0)
    act = kw.pop("activation")
    ens = kw.get("ensemble", "gaussian")
    cw = kw.get("C_W")
    if cw is None:
        from fwtheory.exact import scale_invariant_slopes
        cw = float(1 / scale_invariant_slopes(act)["A2"])
    net = Network(act, depth=12, width=64, C_W=cw, lambda_b=kw.get("lambda_b", 0.0),
                  lambda_W=kw.get("lambda_W", 1.0), ensemble=ens,
                  first_layer=kw.get("first_layer"))
    sol = scale_invariant_solution(act, ens, net.first_layer, C_W=sympy.nsimplify(cw),
                                   lambda_b=sympy.nsimplify(net.lambda_b),
                                   lambda_W=sympy.nsimplify(net.lambda_W), input_norm=sympy.nsimplify(q0))
    exact = sol.evaluate(12)
    p = predict(net, input_norm=q0)
    for name, values in exact.items():
        scale = max(1.0, np.max(np.abs(values)))
        np.testing.assert_allclose(p[name], values, rtol=1e-10, atol=1e-10 * scale, err_msg=name)


def test_scale_invariant_closed_forms():
    ell = sympy.Symbol("l", integer=True, positive=True)
    relu = scale_invariant_solution("relu")
    assert sympy.simplify(relu.ratio("V", "K", "K") - 5 * (ell - 1)) == 0            # nu = 5
    assert sympy.simplify(relu.ratio("F", "K", "Theta") - (ell - 1)) == 0
    assert sympy.simplify(relu.ratio("D", "K", "Theta") - 3 * (ell - 1)) == 0
    assert sympy.simplify(relu.ratio("B", "Theta", "Theta") - (ell - 1) * (2 * ell - 1) / (3 * ell)) == 0
    lin = scale_invariant_solution("linear")
    assert sympy.simplify(lin.ratio("V", "K", "K") - 2 * (ell - 1)) == 0             # nu = 2
    orth = scale_invariant_solution("relu", "orthogonal")
    assert sympy.simplify(orth.ratio("V", "K", "K") - (3 * (ell - 1) - 2)) == 0
    lin_o = scale_invariant_solution("linear", "orthogonal")
    assert lin_o.ratio("V", "K", "K") == -2
    assert all(lin_o.expressions[k] == 0 for k in ("D", "F", "A", "B"))


def test_kstar0_asymptotics_forms():
    ell = sympy.Symbol("l", positive=True)
    g = kstar0_asymptotics("tanh")
    assert g.a1 == -2
    assert sympy.simplify(g.leading["K"] - 1 / (2 * ell)) == 0
    assert sympy.simplify(g.ratios["V/K^2"] - 2 * ell / 3) == 0
    assert sympy.simplify(g.leading["G1"] + sympy.Rational(1, 6)) == 0   # 1/(3 a1)
    assert sympy.simplify(g.ratios["F/(K Theta)"] - ell / 4) == 0
    assert sympy.simplify(g.ratios["B/Theta^2"] - ell / 3) == 0
    assert g.leading["D"] is None  # grows like log l: reported undetermined, not guessed
    o = kstar0_asymptotics("tanh", "orthogonal")
    assert o.ratios["V/K^2"] == -2 and o.ratios["G1/K"] == 2
    assert o.ratios["F/(K Theta)"] == sympy.Rational(-2, 3)
    s = kstar0_asymptotics("sin")
    assert s.a1 == -1 and sympy.simplify(s.leading["K"] - 1 / ell) == 0
    assert sympy.simplify(s.ratios["V/K^2"] - 2 * ell / 3) == 0
    with pytest.raises(ParameterError, match="activation"):
        kstar0_asymptotics("relu")
    with pytest.raises(ParameterError, match="activation"):
        kstar0_asymptotics("sigmoid")


def test_kstar0_asymptotics_agree_with_numeric_recursion():
    depth = 3000
    for ens in ("gaussian", "orthogonal"):
        asym = kstar0_asymptotics("tanh", ens)
        p = predict(Network("tanh", depth=depth, width=64, ensemble=ens))
        ell = sympy.Symbol("l", positive=True)
        for name in ("K", "V", "G1", "Theta", "F", "B"):
            lead = float(asym.leading[name].subs(ell, depth))
            assert p[name][-1] == pytest.approx(lead, rel=0.03), (ens, name)


def test_mpmath_reproduces_float64():
    net = Network("tanh", depth=4, width=64, C_b=0.1, C_W=1.2, lambda_b=0.3, ensemble="orthogonal")
    a, b = predict(net), predict(net, precision="mpmath", dps=25)
    for k in a.values:
        np.testing.assert_allclose(a[k], np.array(b[k], dtype=float), rtol=1e-10, atol=1e-13, err_msg=k)


smooth_terms = st.sampled_from(["tanh({b}*z)", "sin({b}*z)", "erf({b}*z)", "z/(1+exp(-{b}*z))", "{b}*z"])


@settings(max_examples=4, deadline=None)
@given(terms=st.lists(st.tuples(smooth_terms, st.floats(0.3, 1.5), st.floats(0.4, 1.6)),
                      min_size=1, max_size=2),
       ensemble=st.sampled_from(["gaussian", "orthogonal"]))
# a linear activation with orthogonal weights: B is exactly 0 and float64 returns
# 2.4e-12, inside its own round-off bound (fwtheory._termscale) but above 1e-12
@example(terms=[("{b}*z", 1.5, 1.6)], ensemble="orthogonal")
def test_mpmath_matches_float64_on_random_smooth_activations(terms, ensemble):
    """float64 and mpmath agree to 1e-10 relative, or within the float64 result's
    own round-off bound where a coefficient is (near) zero."""
    from fwtheory._termscale import roundoff_bounds

    expr = " + ".join(f"{a:.3f}*" + t.format(b=f"{b:.3f}") for t, a, b in terms)
    net = Network(expr, depth=3, width=32, C_b=0.05, C_W=1.1, lambda_b=0.2, ensemble=ensemble)
    a, b = predict(net), predict(net, precision="mpmath", dps=20)
    bound = roundoff_bounds(a)
    for k in a.values:
        got, want = np.asarray(a[k], dtype=float), np.array(b[k], dtype=float)
        allowed = 1e-10 * np.abs(want) + 1e-13 + bound.get(k, 0.0)
        assert np.all(np.abs(got - want) <= allowed), (k, got, want, bound.get(k))


def test_finite_width_moments():
    p = predict(relu_net())
    fw = p.finite_width()
    np.testing.assert_allclose(fw["Cov(z_i^2, z_k^2)"], p["V"] / 64)
    np.testing.assert_allclose(fw["Var(H_ii)"], (p["A"] + 2 * p["B"]) / 64)


def test_bad_input():
    net = Network("tanh", depth=3, width=8)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ParameterError, match="input_norm"):
            predict(net, input_norm=bad)
    with pytest.raises(ParameterError, match="precision"):
        predict(net, precision="float32")
    with pytest.raises(ParameterError, match="network"):
        predict("tanh")
    with pytest.raises(NumericalError, match="layer"):
        predict(Network("relu", depth=3000, width=8, C_W=3.0))   # chaotic: K = 1.5^l overflows


def test_cli_predict_json():
    out = subprocess.run([sys.executable, "-m", "fwtheory", "predict", "--activation", "tanh",
                          "--ensemble", "orthogonal", "--width", "64", "--depth", "5", "--cb", "0",
                          "--cw", "1", "--lambda-b", "1", "--lambda-w", "1", "--input-norm", "1",
                          "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["network"]["ensemble"] == "orthogonal" and data["layers"] == [1, 2, 3, 4, 5]
    for k in ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B"):
        assert len(data[k]) == 5
    assert data["V"][0] == pytest.approx(-2.0)
    table = subprocess.run([sys.executable, "-m", "fwtheory", "predict", "--depth", "3"],
                           capture_output=True, text=True, check=True).stdout
    assert "V/K^2" in table and "B/Theta^2" in table
    bad = subprocess.run([sys.executable, "-m", "fwtheory", "predict", "--width", "-3"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "width" in bad.stderr
