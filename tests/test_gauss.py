"""Gaussian expectations (fwtheory.gauss): float64 engine vs mpmath oracle and closed forms."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from fwtheory import gauss
from fwtheory.activations import get_activation
from fwtheory.errors import NumericalError, ParameterError


def _hermite(dk, z, K):
    """Hermite weight of d^dk/dK^dk (docs/conventions.md, "Gaussian expectations"), written out independently."""
    if dk == 0:
        return np.ones_like(z)
    if dk == 1:
        return (z * z - K) / (2 * K ** 2)
    return (z ** 4 - 6 * K * z * z + 3 * K ** 2) / (4 * K ** 4)


def _scale(act, K, power, dk):
    """<|monomial * weight|>_K: the scale the 1e-12 accuracy is relative to."""
    def f(z):
        d = act.derivatives(z, 3)
        m = np.ones_like(z)
        for k in range(4):
            m = m * d[k] ** power[k]
        return np.abs(m * z ** power[4] * _hermite(dk, z, K))
    return gauss.expect(f, K, kinks=act.kinks)


# ------------------------------------------------------------------ rules
@pytest.mark.parametrize("n, kmax", [(8, 15), (48, 95), (192, 60)])
def test_half_range_rule_reproduces_moments(n, kmax):
    # int_0^inf t^k phi(t) dt = 2^((k-1)/2) Gamma((k+1)/2) / sqrt(2 pi)
    t, w = gauss.half_hermite_rule(n)
    assert np.all(t > 0) and np.all(np.diff(t) > 0) and np.all(w > 0)
    for k in range(kmax + 1):
        exact = 2 ** ((k - 1) / 2) * math.gamma((k + 1) / 2) / math.sqrt(2 * math.pi)
        assert math.fsum(w * t ** k) == pytest.approx(exact, rel=2e-14), k


# ------------------------------------------------------------------ float64 vs mpmath oracle
MONOMIALS = ((2, 0, 0, 0, 0), (0, 2, 0, 0, 0), (1, 1, 1, 0, 1), (0, 0, 0, 1, 3))
ORACLE_CASES = [  # (activation, K, dk, monomials): smooth at small and large K, kinks at 0 and elsewhere
    ("tanh", 0.7, 0, MONOMIALS), ("tanh", 12.0, 1, MONOMIALS[:2]), ("gelu", 3.56, 2, MONOMIALS[:3]),
    ("swish", 14.3, 0, MONOMIALS[:2]), ("sin", 2.5, 1, MONOMIALS[1:]), ("erf", 0.05, 2, MONOMIALS[:2]),
    ("relu", 1.7, 0, MONOMIALS), ("relu", 40.0, 2, MONOMIALS[:2]), ("leaky_relu(0.2)", 0.3, 1, MONOMIALS),
    ("Max(z, 1) - 1", 2.0, 0, MONOMIALS[:2]), ("z*tanh(z)", 1.3, 1, MONOMIALS[:1]),
]


@pytest.mark.parametrize("name, K, dk, monomials", ORACLE_CASES)
def test_float64_agrees_with_mpmath_oracle(name, K, dk, monomials):
    act = get_activation(name)
    got, err = gauss.expect_monomials(act, K, monomials, dk, full_output=True)
    ref = gauss.expect_monomials_mp(act, K, monomials, dk, dps=20)
    for p, g, e, r in zip(monomials, got, err, ref):
        scale = _scale(act, K, p, dk)
        assert abs(g - float(r)) <= 1e-12 * scale + 1e-300, (p, g, float(r))
        assert e <= 1e-12 * scale + 1e-300  # the error estimate claims the accuracy it delivers


def test_oracle_keeps_mpf_precision_of_K():
    with mpmath.workdps(40):
        K = mpmath.mpf(1) / 3
        v = gauss.expect_monomials_mp("linear", [K], [(2, 0, 0, 0, 0)], dps=35)[0][0]
        assert abs(v - K) < mpmath.mpf(10) ** -33


# ------------------------------------------------------------------ exact across kinks
@pytest.mark.parametrize("K", [1e-8, 0.37, 1.0, 25.0, 1e8])
@pytest.mark.parametrize("a", [0.0, 0.2, 1.0])
def test_relu_family_closed_forms_at_any_K(K, a):
    act = get_activation("relu" if a == 0 else ("linear" if a == 1 else f"leaky_relu({a})"))
    A2, A4 = (1 + a * a) / 2, (1 + a ** 4) / 2
    powers = [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0), (1, 0, 0, 0, 1), (4, 0, 0, 0, 0), (1, 0, 0, 0, 0)]
    v0 = gauss.expect_monomials(act, K, powers, 0)
    exact0 = [A2 * K, A2, (1 + a) / 2 * K, 3 * A4 * K * K, (1 - a) * math.sqrt(K / (2 * math.pi))]
    np.testing.assert_allclose(v0, exact0, rtol=1e-13, atol=1e-15 * math.sqrt(K))
    v1 = gauss.expect_monomials(act, K, powers[:4], 1)
    np.testing.assert_allclose(v1, [A2, 0.0, (1 + a) / 2, 6 * A4 * K], rtol=1e-13,
                               atol=1e-13 * max(1.0, K) / K)
    v2 = gauss.expect_monomials(act, K, [(2, 0, 0, 0, 0), (4, 0, 0, 0, 0)], 2)
    np.testing.assert_allclose(v2, [0.0, 6 * A4], atol=1e-12 * max(1.0, 1 / K))


def test_vectorized_over_K_matches_scalar_calls():
    act = get_activation("gelu")
    K = np.array([1e-3, 0.5, 3.0, 40.0, 900.0])
    vec = gauss.expect_monomials(act, K, MONOMIALS, 1)
    assert vec.shape == (len(MONOMIALS), len(K))
    for j, k in enumerate(K):
        np.testing.assert_allclose(vec[:, j], gauss.expect_monomials(act, float(k), MONOMIALS, 1),
                                   rtol=1e-12, atol=1e-300)


def test_results_are_cached_and_independent_copies():
    gauss.clear_cache()
    a = gauss.expect_monomials("tanh", [0.5, 1.5], [(2, 0, 0, 0, 0)])
    a[:] = -1.0
    b = gauss.expect_monomials("tanh", [0.5, 1.5], [(2, 0, 0, 0, 0)])
    assert np.all(b > 0)


# ------------------------------------------------------------------ general callables
def test_expect_general_callable_with_declared_kink():
    # E|z - 1| for z ~ N(0, K) = 2 sqrt(K) phi(1/sqrt(K)) + erf(1/sqrt(2K))
    K = 0.8
    v, e = gauss.expect(lambda z: np.abs(z - 1.0), K, kinks=(1.0,), full_output=True)
    s = math.sqrt(K)
    exact = 2 * s * math.exp(-1 / (2 * K)) / math.sqrt(2 * math.pi) + math.erf(1 / (s * math.sqrt(2)))
    assert v == pytest.approx(exact, rel=1e-13)
    assert 0 <= e < 1e-12


@given(a=st.floats(-3, 3), b=st.floats(-3, 3), K=st.floats(0.01, 20))
def test_expectation_is_linear_in_f(a, b, K):
    f = lambda z: np.tanh(z) ** 2  # noqa: E731
    g = lambda z: np.maximum(z, 0.0) * z  # noqa: E731
    lhs = gauss.expect(lambda z: a * f(z) + b * g(z), K)
    rhs = a * gauss.expect(f, K) + b * gauss.expect(g, K)
    assert lhs == pytest.approx(rhs, rel=1e-11, abs=1e-12 * (abs(a) + abs(b)) * max(1.0, K))


# ------------------------------------------------------------------ m inputs
def _arccos_kernel(K11, K22, K12):
    c = max(-1.0, min(1.0, K12 / math.sqrt(K11 * K22)))
    th = math.acos(c)
    return math.sqrt(K11 * K22) / (2 * math.pi) * (math.sin(th) + (math.pi - th) * c)


@pytest.mark.parametrize("K11, K22, K12", [(1, 1, 0.5), (2, 0.5, 0.9), (1, 1, 0.999999), (1, 1, 1),
                                            (1, 1, -0.3), (3, 1e-3, 0.01), (1, 1, 0.0)])
def test_two_input_relu_is_the_arccos_kernel(K11, K22, K12):
    f = lambda Z: np.maximum(Z[0], 0) * np.maximum(Z[1], 0)  # noqa: E731
    v, e = gauss.expect_multi(f, [[K11, K12], [K12, K22]], kinks=(0,), full_output=True)
    exact = _arccos_kernel(K11, K22, K12)
    assert v == pytest.approx(exact, rel=1e-12)
    assert e <= 1e-10 * exact


def test_two_input_erf_is_the_arcsin_kernel():
    # two outputs: f returns shape (M, N)
    f = lambda Z: np.stack([special.erf(Z[0]) * special.erf(Z[1]), Z[0] * Z[1]])  # noqa: E731
    for K11, K22, K12 in [(1, 1, 0.5), (0.1, 3, 0.2), (5, 5, 4.99)]:
        v = gauss.expect_multi(f, [[K11, K12], [K12, K22]])
        exact = 2 / math.pi * math.asin(2 * K12 / math.sqrt((1 + 2 * K11) * (1 + 2 * K22)))
        assert v.shape == (2,)
        assert v[0] == pytest.approx(exact, rel=1e-12)
        assert v[1] == pytest.approx(K12, rel=1e-12)


def test_degenerate_covariances():
    relu2 = lambda Z: np.maximum(Z[0], 0) * np.maximum(Z[1], 0)  # noqa: E731
    # identical inputs: <relu^2>_K = K/2
    assert gauss.expect_multi(relu2, [[1.3, 1.3], [1.3, 1.3]], kinks=(0,)) == pytest.approx(0.65, rel=1e-13)
    # z2 = -z1: relu(z) relu(-z) = 0
    assert gauss.expect_multi(relu2, [[1.0, -1.0], [-1.0, 1.0]], kinks=(0,)) == pytest.approx(0.0, abs=1e-15)
    # zero covariance: a point mass at 0
    assert gauss.expect_multi(lambda Z: np.cos(Z[0]) + Z[1], [[0, 0], [0, 0]]) == pytest.approx(1.0)
    # rank 2 in 3 dimensions, kink of the dependent coordinate z3 = z1 + z2
    cov = [[1.0, 0.0, 1.0], [0.0, 2.0, 2.0], [1.0, 2.0, 3.0]]
    v = gauss.expect_multi(lambda Z: np.maximum(Z[2], 0) ** 2, cov, kinks=(0,))
    assert v == pytest.approx(1.5, rel=1e-12)


def test_four_inputs_isserlis():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 5))
    C = X @ X.T / 5
    v = gauss.expect_multi(lambda Z: Z[0] * Z[1] * Z[2] * Z[3], C)
    exact = C[0, 1] * C[2, 3] + C[0, 2] * C[1, 3] + C[0, 3] * C[1, 2]
    assert v == pytest.approx(exact, rel=1e-10, abs=1e-12)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("K", [float("nan"), float("inf"), 0.0, -1.0, [1.0, float("nan")], [[1.0]]])
def test_bad_K_is_a_parameter_error(K):
    with pytest.raises(ParameterError, match="^K:"):
        gauss.expect_monomials("tanh", K, [(2, 0, 0, 0, 0)])
    with pytest.raises(ParameterError, match="^K:"):
        gauss.expect(np.cos, K)


@pytest.mark.parametrize("powers, dk", [([(2, 0, 0, 0)], 0), ([(2, 0, 0, 0, -1)], 0), ([], 0),
                                        ([(2.5, 0, 0, 0, 0)], 0), ([(2, 0, 0, 0, 0)], 3)])
def test_bad_powers_or_dk(powers, dk):
    with pytest.raises(ParameterError, match="^(powers|dk):"):
        gauss.expect_monomials("tanh", 1.0, powers, dk)


def test_unresolvable_integrand_raises_numerical_error():
    with pytest.raises(NumericalError, match="did not converge"):
        gauss.expect(lambda z: np.sin(1e4 * z) ** 2, 1.0)


def test_overflow_raises_numerical_error_not_nan():
    with pytest.raises(NumericalError, match="non-finite"):
        gauss.expect(lambda z: np.exp(z * z), 1.0)
    with pytest.raises(NumericalError, match="non-finite"):
        gauss.expect_monomials("exp(z**2)", 1.0, [(1, 0, 0, 0, 0)])


def test_bad_covariance():
    with pytest.raises(ParameterError, match="^cov:.*positive semi-definite"):
        gauss.expect_multi(lambda Z: Z[0], [[1, 2], [2, 1]])
    with pytest.raises(ParameterError, match="^cov:"):
        gauss.expect_multi(lambda Z: Z[0], np.eye(5))
    with pytest.raises(ParameterError, match="^cov:"):
        gauss.expect_multi(lambda Z: Z[0], [[1, float("nan")], [float("nan"), 1]])
