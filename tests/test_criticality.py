"""Criticality and fixed points (PDLT Ch. 5; docs/conventions.md, docs/references.md item 3)."""

import json

import numpy as np
import pytest

from fwtheory import gauss
from fwtheory.errors import ParameterError
from fwtheory.kernel import UNIVERSALITY_CLASSES, criticality, fixed_points




@pytest.mark.parametrize("name, C_b, C_W, K_star", [
    ("gelu", 0.17292239, 1.98305826, 3.561553),
    ("swish", 0.55514317, 1.98800468, 14.320173),
    ("silu", 0.55514317, 1.98800468, 14.320173),
])
def test_half_stable_values_to_8_digits(name, C_b, C_W, K_star):
    c = criticality(name)
    assert c.universality_class == "half-stable"
    assert round(c.C_b, 8) == C_b and round(c.C_W, 8) == C_W
    assert abs(c.K_star - K_star) < 1e-6  # docs/references.md gives K* to 6 decimals
    # self-consistency: K* is a fixed point with chi_par = chi_perp = 1
    s2, t2 = gauss.expect_monomials(name, c.K_star, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    d2 = gauss.expect_monomials(name, c.K_star, [(2, 0, 0, 0, 0)], dk=1)[0]
    assert c.C_b + c.C_W * s2 == pytest.approx(c.K_star, rel=1e-12)
    assert c.C_W * t2 == pytest.approx(1.0, rel=1e-12)
    assert c.C_W * d2 == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("name, C_W", [("tanh", 1.0), ("sin", 1.0), ("erf", np.pi / 4),
                                       ("3*tanh(z)", 1 / 9), ("sin(z)+0.1*z**3", 1.0)])
def test_k_star_zero_class(name, C_W):
    c = criticality(name)
    assert (c.universality_class, c.C_b, c.K_star) == ("K*=0", 0.0, 0.0)
    assert c.C_W == pytest.approx(C_W, rel=1e-14)
    assert c.details["a_1"] < 0


def test_tanh_a1():
    assert criticality("tanh").details["a_1"] == pytest.approx(-2.0)  # docs/conventions.md: K ~ 1/(2 l)
    assert criticality("sin").details["a_1"] == pytest.approx(-1.0)


@pytest.mark.parametrize("name, C_W, nu", [
    ("relu", 2.0, 5.0), ("linear", 1.0, 2.0), ("leaky_relu(0.1)", 2 / 1.01, None),
    ("leaky_relu(0.5)", 2 / 1.25, None), ("Max(0, 2*z)", 0.5, 5.0), ("Abs(z)", 1.0, 2.0),
])
def test_scale_invariant_class(name, C_W, nu):
    c = criticality(name)
    assert (c.universality_class, c.C_b, c.K_star) == ("scale-invariant", 0.0, None)
    assert c.C_W == pytest.approx(C_W, rel=1e-14)
    if nu is not None:
        assert c.details["nu"] == pytest.approx(nu, rel=1e-14)  # docs/conventions.md: nu = 3 A_4 / A_2^2 - 1


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "z**2", "exp(z)"])
def test_no_criticality(name):
    c = criticality(name)
    assert c.universality_class == "none"
    assert c.C_b is None and c.C_W is None and c.K_star is None


def test_custom_half_stable_is_self_consistent():
    c = criticality("z*tanh(z)")  # sigma(0) = sigma'(0) = 0: not K*=0, searched like GELU
    assert c.universality_class in UNIVERSALITY_CLASSES
    assert c.universality_class == "half-stable" and c.C_b >= 0
    s2, t2 = gauss.expect_monomials("z*tanh(z)", c.K_star, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    assert c.C_b + c.C_W * s2 == pytest.approx(c.K_star, rel=1e-12)
    assert c.C_W * t2 == pytest.approx(1.0, rel=1e-12)


def test_result_serializes():
    d = json.loads(json.dumps(criticality("gelu").to_dict()))
    assert d["universality_class"] == "half-stable" and set(d) >= {"C_b", "C_W", "K_star"}


# ------------------------------------------------------------------ fixed points
def test_fixed_points():
    # ReLU at criticality: a line of fixed points
    assert fixed_points("relu", 0.0, 2.0).line_of_fixed_points
    # ReLU below criticality with a bias: K* = C_b / (1 - C_W/2), stable
    fp = fixed_points("relu", 0.5, 1.0)
    assert fp.K_star == pytest.approx((1.0,), rel=1e-12) and fp.stability == ("stable",)
    # tanh at (0, 1): K* = 0, marginal (chi_par -> 1)
    fp = fixed_points("tanh", 0.0, 1.0)
    assert fp.K_star == (0.0,) and fp.stability == ("marginal",)
    # tanh at (0, 2): K = 0 unstable, one stable K* > 0
    fp = fixed_points("tanh", 0.0, 2.0)
    assert fp.K_star[0] == 0.0 and fp.stability[0] == "unstable"
    assert len(fp.K_star) == 2 and fp.stability[1] == "stable"
    # GELU at its critical point: the double root K* is found and is marginal
    c = criticality("gelu")
    fp = fixed_points("gelu", c.C_b, c.C_W)
    i = int(np.argmin(np.abs(np.array(fp.K_star) - c.K_star)))
    assert fp.K_star[i] == pytest.approx(c.K_star, rel=1e-6) and fp.stability[i] == "marginal"


def test_fixed_points_bad_input():
    with pytest.raises(ParameterError, match="^C_W:"):
        fixed_points("tanh", 0.0, 0.0)
    with pytest.raises(ParameterError, match="^C_b:"):
        fixed_points("tanh", float("nan"), 1.0)
    with pytest.raises(ParameterError, match="^activation:"):
        criticality("nonsense")
