"""Kernel maps (fwtheory.maps): Q and C maps against closed forms, derivatives, composition."""

import math

import numpy as np
import pytest

from fwtheory import maps
from fwtheory.errors import ParameterError


def leaky_c(c, s):
    """Closed-form C map of the leaky ReLU with negative slope s, normalized by C_W = 2/(1+s^2)
    so that Q(q) = q (TAT, arXiv:2203.08120; DKS's leaky-ReLU C map)."""
    return ((1 - s) ** 2 * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
            + 2 * s * c) / (1 + s * s)


@pytest.mark.parametrize("s", [0.0, 0.2, 0.7])
@pytest.mark.parametrize("c", [-0.9, -0.3, 0.0, 0.4, 0.95, 0.999999, 1.0])
def test_leaky_relu_c_map_closed_form(s, c):
    # at any input scale q: the scale-invariant map does not depend on q
    for q in (1.0, 1.7):
        v = maps.c_map(f"leaky_relu({s})", c, q=q, C_W=2 / (1 + s * s))
        assert v == pytest.approx(leaky_c(c, s), abs=1e-12)
    assert maps.q_map(f"leaky_relu({s})", 1.7, C_W=2 / (1 + s * s)) == pytest.approx(1.7, rel=1e-13)


@pytest.mark.parametrize("c", [-0.8, -0.2, 0.3, 0.9])
def test_relu_arccos_kernel_and_derivatives(c):
    # Cho & Saul arc-cosine kernel, C_W = 2: C = (sqrt(1-c^2) + (pi - arccos c) c)/pi
    q = 2.5
    assert maps.c_map("relu", c, q=q, C_W=2) == pytest.approx(
        (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi, abs=1e-12)
    assert maps.c_map("relu", c, q=q, C_W=2, derivative=1) == pytest.approx(
        (math.pi - math.acos(c)) / math.pi, abs=1e-12)
    assert maps.c_map("relu", c, q=q, C_W=2, derivative=2) == pytest.approx(
        1 / (math.pi * math.sqrt(1 - c * c)), rel=1e-10)


def test_relu_values_at_0_and_1():
    lv = maps.local_values("relu", q=1.0, C_W=2.0)
    assert lv.Q == pytest.approx(1.0, rel=1e-14) and lv.dQ == pytest.approx(1.0, rel=1e-13)
    assert lv.C0 == pytest.approx(1 / math.pi, rel=1e-13)
    assert lv.dC0 == pytest.approx(0.5, rel=1e-13) and lv.dC1 == pytest.approx(1.0, rel=1e-13)
    assert lv.d2C1 == math.inf
    assert maps.c_map("relu", 0.0, C_W=2, derivative=2) == pytest.approx(1 / math.pi, rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 2.0])
@pytest.mark.parametrize("c", [-0.7, 0.0, 0.2, 0.8, 1.0])
def test_erf_arcsine_kernel(q, c):
    # Williams 1997: E[erf(u) erf(v)] = (2/pi) arcsin(2 q c / (1 + 2 q))
    num = 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))
    den = 2 / math.pi * math.asin(2 * q / (1 + 2 * q))
    assert maps.c_map("erf", c, q=q) == pytest.approx(num / den, abs=1e-12)
    # C'(c) = (2/pi) (2q / (1+2q)) / sqrt(1 - (2qc/(1+2q))^2) / den
    a = 2 * q / (1 + 2 * q)
    d1 = 2 / math.pi * a / math.sqrt(1 - (a * c) ** 2) / den
    assert maps.c_map("erf", c, q=q, derivative=1) == pytest.approx(d1, rel=1e-11)
    d2 = 2 / math.pi * a ** 3 * c / (1 - (a * c) ** 2) ** 1.5 / den
    assert maps.c_map("erf", c, q=q, derivative=2) == pytest.approx(d2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("act", ["tanh", "gelu", "softplus", "leaky_relu(0.3)"])
@pytest.mark.parametrize("c", [-0.4, 0.35, 0.7])
def test_c_derivatives_vs_finite_differences(act, c):
    h = 1e-4
    f = lambda x: maps.c_map(act, x, q=1.3, C_b=0.1, C_W=1.5)  # noqa: E731
    d1 = maps.c_map(act, c, q=1.3, C_b=0.1, C_W=1.5, derivative=1)
    d2 = maps.c_map(act, c, q=1.3, C_b=0.1, C_W=1.5, derivative=2)
    fd1 = (f(c + h) - f(c - h)) / (2 * h)
    fd2 = (f(c + h) - 2 * f(c) + f(c - h)) / h ** 2
    assert d1 == pytest.approx(fd1, rel=1e-7)
    assert d2 == pytest.approx(fd2, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("act", ["tanh", "softplus", "relu"])
def test_q_map_derivatives_and_dks_identity(act):
    h = 1e-4
    q = 1.0
    d1 = maps.q_map(act, q, derivative=1)
    assert d1 == pytest.approx((maps.q_map(act, q + h) - maps.q_map(act, q - h)) / (2 * h), rel=1e-7)
    d2 = maps.q_map(act, q, derivative=2)
    assert d2 == pytest.approx((maps.q_map(act, q + h) - 2 * maps.q_map(act, q) + maps.q_map(act, q - h))
                               / h ** 2, rel=1e-4, abs=1e-7)
    # DKS: Q'(1) = E[phi(x) phi'(x) x]
    from fwtheory import gauss

    assert d1 == pytest.approx(gauss.expect_monomials(act, 1.0, [(1, 1, 0, 0, 1)])[0], rel=1e-12)


def test_local_values_match_c_map():
    lv = maps.local_values("softplus", q=0.8, C_b=0.2, C_W=1.7)
    kw = dict(q=0.8, C_b=0.2, C_W=1.7)
    assert lv.C0 == pytest.approx(maps.c_map("softplus", 0.0, **kw), rel=1e-14)
    assert lv.dC0 == pytest.approx(maps.c_map("softplus", 0.0, derivative=1, **kw), rel=1e-14)
    assert lv.dC1 == pytest.approx(maps.c_map("softplus", 1.0, derivative=1, **kw), rel=1e-14)
    assert lv.d2C1 == pytest.approx(maps.c_map("softplus", 1.0, derivative=2, **kw), rel=1e-14)
    # the general-c (2-D) path agrees with the 1-D forms near the ends
    assert maps.c_map("softplus", 1e-9, **kw) == pytest.approx(lv.C0 + 1e-9 * lv.dC0, abs=1e-12)
    assert maps.c_map("softplus", 1 - 1e-9, derivative=1, **kw) == pytest.approx(lv.dC1, rel=1e-7)


def test_compose_chain_rule_matches_finite_differences():
    L = 6
    comp = maps.compose("tanh", L, input_norm=1.0, input_corr=0.5, C_b=0.05, C_W=1.6)
    h = 1e-4
    lo = maps.compose("tanh", L, input_norm=1.0, input_corr=0.5 - h / 1.6 * (0.05 + 1.6) , C_b=0.05, C_W=1.6)
    hi = maps.compose("tanh", L, input_norm=1.0, input_corr=0.5 + h / 1.6 * (0.05 + 1.6), C_b=0.05, C_W=1.6)
    # c^(1) moves by +-h: derivatives with respect to c^(1)
    assert hi.c[0] - comp.c[0] == pytest.approx(h, rel=1e-9)
    assert comp.dc[-1] == pytest.approx((hi.c[-1] - lo.c[-1]) / (2 * h), rel=1e-7)
    assert comp.d2c[-1] == pytest.approx((hi.c[-1] - 2 * comp.c[-1] + lo.c[-1]) / h ** 2, rel=1e-4)
    # K and Theta agree with the single-input recursion of kernel.infinite_width
    from fwtheory import Network, infinite_width

    iw = infinite_width(Network("tanh", depth=L, width=8, C_b=0.05, C_W=1.6))
    np.testing.assert_allclose(comp.K, iw.K, rtol=1e-12)
    np.testing.assert_allclose(comp.Theta, iw.Theta, rtol=1e-12)
    np.testing.assert_allclose(comp.dK[1:] / comp.dK[:-1], iw.chi_parallel[:-1], rtol=1e-12)


def test_compose_at_c_equal_1_gives_network_slope_and_curvature():
    # leaky ReLU at Q(q) = q stays at q = 1; tanh: the chain rule of the module docstring per layer
    act = "leaky_relu(0.4)"
    D = 5
    comp = maps.compose(act, D + 1, input_norm=1.16 / 2, input_corr=1.0, C_W=2 / 1.16)
    assert np.allclose(comp.K, 1.0, rtol=1e-13) and np.all(comp.c == 1.0)
    np.testing.assert_allclose(comp.dc, 1.0, rtol=1e-12)       # C'(1) = 1 for the normalized leaky ReLU
    assert np.all(np.isinf(comp.d2c[1:]))                      # sigma' jumps: C''(1) = +inf
    lv = maps.local_values("tanh")
    comp = maps.compose("tanh", D + 1, input_norm=1.0, input_corr=1.0, C_W=1 / lv.Q)
    # tanh's K changes with depth: check the chain rule layer by layer instead
    for i in range(D):
        v = maps.local_values("tanh", q=comp.K[i], C_W=1 / lv.Q)
        assert comp.dc[i + 1] == pytest.approx(comp.dc[i] * v.dC1, rel=1e-12)
        assert comp.d2c[i + 1] == pytest.approx(v.d2C1 * comp.dc[i] ** 2 + v.dC1 * comp.d2c[i], rel=1e-12)


def test_compose_ntk_rho_matches_kernel_matrix():
    from fwtheory import Network, kernel_matrix

    G = np.array([[1.0, 0.3], [0.3, 1.0]])
    km = kernel_matrix(Network("erf", depth=5, width=4, C_b=0.1, C_W=1.4), G)
    comp = maps.compose("erf", 5, input_corr=0.3, C_b=0.1, C_W=1.4)
    np.testing.assert_allclose(comp.rho, km.Theta[:, 0, 1] / km.Theta[:, 0, 0], rtol=1e-10)
    np.testing.assert_allclose(comp.c, km.K[:, 0, 1] / km.K[:, 0, 0], rtol=1e-10)
    th, rho = maps.ntk_step("erf", comp.K[2], comp.c[2], comp.Theta[2], comp.rho[2], C_b=0.1, C_W=1.4)
    assert (th, rho) == pytest.approx((comp.Theta[3], comp.rho[3]), rel=1e-12)


@pytest.mark.parametrize("kw, name", [(dict(c=1.5), "c"), (dict(c=0.5, q=0.0), "q"),
                                      (dict(c=0.5, C_W=-1), "C_W"), (dict(c=0.5, derivative=3), "derivative")])
def test_bad_input_names_the_parameter(kw, name):
    with pytest.raises(ParameterError) as e:
        maps.c_map("tanh", **kw)
    assert e.value.parameter == name
