"""Multi-input Gaussian expectations (fwtheory.gauss_multi) against the 1-D engine, the
2-D kernel maps, closed forms (arc-cosine, arcsine, Isserlis/Wick) and symmetries."""

import itertools
import math

import numpy as np
import pytest

from fwtheory import gauss, maps
from fwtheory.errors import AccuracyWarning, ParameterError
from fwtheory.gauss_multi import expect_monomials as em

K4 = np.array([[1.0, 0.5, 0.2, 0.1], [0.5, 1.0, 0.3, 0.4], [0.2, 0.3, 1.5, 0.6], [0.1, 0.4, 0.6, 1.2]])


def _wick(K, idx):
    """Isserlis/Wick: E[z_i1 ... z_ik] as the sum over pairings, written out independently."""
    if not idx:
        return 1.0
    if len(idx) % 2:
        return 0.0
    first, rest = idx[0], idx[1:]
    return sum(K[first, rest[j]] * _wick(K, rest[:j] + rest[j + 1:]) for j in range(len(rest)))


@pytest.mark.parametrize("act", ["tanh", "relu", "gelu", "leaky_relu(0.2)"])
def test_single_input_reduces_to_1d_engine(act):
    Ks = np.stack([K4 * s for s in (0.3, 1.0, 2.5)])
    mons = [((2, 0),), ((2, 0), (2, 0)), ((1, 1), (1, 0), (1, -1)), ((3, -1), (3, -1), (3, 1), (3, 0))]
    powers = [(1, 0, 0, 0, 0), (2, 0, 0, 0, 0), (1, 1, 0, 0, 1), (1, 1, 0, 0, 2)]
    inputs = [2, 2, 1, 3]
    v = em(act, Ks, mons)
    for i, (p, a) in enumerate(zip(powers, inputs)):
        ref = gauss.expect_monomials(act, Ks[:, a, a], [p])[0]
        np.testing.assert_allclose(v[:, i], ref, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("c", [-0.7, 0.3, 0.95])
def test_erf_arcsine_closed_form_two_inputs(c):
    # Williams 1997: E[erf(u) erf(v)] = (2/pi) arcsin(2 K_uv / sqrt((1 + 2 K_uu)(1 + 2 K_vv)))
    # and E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 K_uu)(1 + 2 K_vv) - 4 K_uv^2)
    K = np.array([[0.8, c * math.sqrt(0.8 * 1.7)], [c * math.sqrt(0.8 * 1.7), 1.7]])
    v = em("erf", K, [((0, 0), (1, 0)), ((0, 1), (1, 1))])
    a, b, k = 1 + 2 * K[0, 0], 1 + 2 * K[1, 1], 2 * K[0, 1]
    assert v[0] == pytest.approx(2 / math.pi * math.asin(k / math.sqrt(a * b)), rel=1e-10, abs=1e-12)
    assert v[1] == pytest.approx(4 / math.pi / math.sqrt(a * b - k * k), rel=1e-10)


@pytest.mark.parametrize("act", ["tanh", "softplus"])
def test_two_inputs_match_maps(act):
    q, c = 1.3, 0.6
    K = q * np.array([[1.0, c], [c, 1.0]])
    s2, t2 = gauss.expect_monomials(act, q, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    ss, tt = maps._pair_moments(maps.get_activation(act), q, c, s2, t2)
    v = em(act, K, [((0, 0), (1, 0)), ((1, 1), (0, 1))])
    assert v == pytest.approx([ss, tt], rel=1e-10)


@pytest.mark.parametrize("c", [-0.8, 0.0, 0.45, 0.99])
def test_relu_arccos_closed_forms(c):
    # Cho & Saul: E[relu(u) relu(v)] = sqrt(K_uu K_vv) (sqrt(1-c^2) + (pi - arccos c) c) / (2 pi),
    # E[step(u) step(v)] = (pi - arccos c) / (2 pi); Stein: E[u relu(v)] = K_uv / 2
    ku, kv = 0.7, 2.2
    K = np.array([[ku, c * math.sqrt(ku * kv)], [c * math.sqrt(ku * kv), kv]])
    v = em("relu", K, [((0, 0), (1, 0)), ((0, 1), (1, 1)), ((0, -1), (1, 0)), ((0, 0), (1, 1))])
    th = math.acos(c)
    # E[relu(u) step(v)] = sqrt(K_uu) (1 + c) ... via Stein: E[u step(v)] = K_uv phi(0)/sqrt(K_vv)
    ref = [math.sqrt(ku * kv) * (math.sqrt(1 - c * c) + (math.pi - th) * c) / (2 * math.pi),
           (math.pi - th) / (2 * math.pi),
           K[0, 1] / 2,
           math.sqrt(ku) * (1 + c) / (2 * math.sqrt(2 * math.pi))]
    assert v == pytest.approx(ref, rel=1e-11, abs=1e-13)


def test_relu_second_derivative_raises():
    with pytest.raises(ParameterError, match="monomials"):
        em("relu", K4, [((0, 2), (1, 0))])
    with pytest.raises(ParameterError, match="monomials"):
        em("relu", K4, [((0, 2),)])
    # sigma'' of a smooth activation is allowed, sigma'''' is not provided
    em("tanh", K4[:2, :2], [((0, 2), (1, 3))])
    with pytest.raises(ParameterError, match="monomials"):
        em("tanh", K4, [((0, 4),)])


@pytest.mark.parametrize("bad", [np.array([[1.0, 2.0], [2.0, 1.0]]), np.eye(5), np.array([[1.0, 0.1], [0.2, 1.0]])])
def test_bad_K_raises(bad):
    with pytest.raises(ParameterError, match="K"):
        em("tanh", bad, [((0, 0), (1, 0))])


def test_linear_activation_is_exact_wick():
    # sigma = z, sigma' = 1: every monomial is a Gaussian moment (Isserlis)
    facs = [(a, d) for a in range(4) for d in (-1, 0, 1)]
    mons = [m for k in (2, 3, 4) for m in itertools.combinations_with_replacement(facs, k)]
    v = em("linear", K4, mons)
    ref = [_wick(K4, tuple(a for a, d in m if d != 1)) for m in mons]
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-13)


def test_permutation_invariance():
    rng = np.random.default_rng(3)
    mons = [((0, 0), (1, 0), (2, 1), (3, 0)), ((0, 1), (0, 1), (2, 0)), ((1, 0), (3, -1))]
    v = em("tanh", K4, mons, rtol=1e-8)
    for _ in range(2):
        p = rng.permutation(4)   # input a of the permuted problem is input p[a] of the original
        inv = np.argsort(p)
        Kp = K4[np.ix_(p, p)]
        mp = [tuple((int(inv[a]), d) for a, d in m[::-1]) for m in mons]
        np.testing.assert_allclose(em("tanh", Kp, mp, rtol=1e-8), v, rtol=1e-6)


def test_identical_inputs_singular_K():
    # two identical inputs: E[sigma(z0) sigma(z1)] = <sigma^2>, E[sigma'(z0) z1 sigma(z2)] = <sigma' z sigma>
    for act in ("tanh", "relu"):
        K = np.array([[1.3, 1.3], [1.3, 1.3]])
        v = em(act, K, [((0, 0), (1, 0)), ((0, 1), (1, -1), (1, 0))])
        ref = gauss.expect_monomials(act, 1.3, [(2, 0, 0, 0, 0), (1, 1, 0, 0, 1)])
        np.testing.assert_allclose(v, ref, rtol=1e-10)


def test_block_diagonal_factorizes_four_inputs():
    # K = diag(B1, B2): E[f(z0, z1) g(z2, z3)] = E[f] E[g]  (tests the 4-D tensor rule)
    K = np.zeros((4, 4))
    K[:2, :2] = K4[:2, :2]
    K[2:, 2:] = K4[2:, 2:]
    for act in ("tanh", "relu"):
        v = em(act, K, [((0, 0), (1, 1), (2, 1), (3, 0))], rtol=1e-8)[0]
        a = em(act, K[:2, :2], [((0, 0), (1, 1))])[0]
        b = em(act, K[2:, 2:], [((0, 1), (1, 0))])[0]
        assert v == pytest.approx(a * b, rel=1e-7)


def test_layer_stack_shape_and_consistency():
    Ks = np.stack([K4 * s for s in (0.5, 1.0)])
    mons = [((0, 0), (1, 0)), ((2, 1), (3, 1), (3, 0))]
    v = em("tanh", Ks, mons)
    assert v.shape == (2, 2)
    for i in range(2):
        np.testing.assert_allclose(v[i], em("tanh", Ks[i], mons), rtol=1e-14)


def test_orthant_probabilities():
    from fwtheory._orthant import orthant_probability

    # equicorrelated rho = 1/2: P(z > 0) = 1/(d + 1) (Steck 1958); blocks factorize
    for d in (2, 3, 4):
        R = np.full((1, d, d), 0.5)
        R[0][np.diag_indices(d)] = 1.0
        assert orthant_probability(R)[0] == pytest.approx(1.0 / (d + 1), abs=1e-14)
    B = np.eye(4)[None].copy()
    B[0, 0, 1] = B[0, 1, 0] = 0.6
    B[0, 2, 3] = B[0, 3, 2] = -0.95
    ref = (0.25 + math.asin(0.6) / (2 * math.pi)) * (0.25 + math.asin(-0.95) / (2 * math.pi))
    assert orthant_probability(B)[0] == pytest.approx(ref, rel=1e-13)
    # nearly collinear (deep ReLU kernels): against the 1-D integral of the equicorrelated law
    from scipy import integrate, special

    rho = 0.999
    R = np.full((1, 4, 4), rho)
    R[0][np.diag_indices(4)] = 1.0
    ref = sum(integrate.quad(lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
                             * special.ndtr(x * math.sqrt(rho / (1 - rho))) ** 4, lo, hi,
                             epsabs=1e-16, epsrel=1e-13, limit=400)[0]
              for lo, hi in ((-40, -0.2), (-0.2, 0.2), (0.2, 40)))
    assert orthant_probability(R)[0] == pytest.approx(ref, rel=1e-12)


def test_relu_three_and_four_inputs_exact_vs_quadrature():
    # the exact (orthant) path against the split quadrature at moderate correlations
    from fwtheory import gauss_multi
    from fwtheory.activations import get_activation

    act = get_activation("relu")
    mons3 = [((0, 0), (1, 0), (2, 0)), ((0, 1), (1, 1), (2, 0)), ((0, 0), (0, 0), (1, 1), (2, -1))]
    C = K4[:3, :3]
    exact = em("relu", C, mons3)
    atoms = [tuple(gauss_multi._check_monomials([m], 3, act)[0][a] for a in range(3)) for m in mons3]
    quad = gauss_multi._integrate_subset(act, C[None], atoms, 1e-9)[0]
    np.testing.assert_allclose(exact, quad, rtol=1e-7)
    from fwtheory._orthant import orthant_probability

    v4 = em("relu", K4, [((0, 0), (1, 0), (2, 0), (3, 0)), ((0, 1), (1, 1), (2, 1), (3, 1))])
    assert v4[1] == pytest.approx(orthant_probability(K4[None])[0], rel=1e-14)
    atoms4 = [tuple(gauss_multi._check_monomials([m], 4, act)[0][a] for a in range(4))
              for m in [((0, 0), (1, 0), (2, 0), (3, 0))]]
    with pytest.warns(AccuracyWarning):      # the 4-D quadrature stops at its point budget
        q4 = gauss_multi._integrate_subset(act, K4[None], atoms4, 1e-12)[0, 0]
    assert v4[0] == pytest.approx(q4, rel=1e-4)


def test_leaky_relu_is_linear_in_relu_and_identity():
    # leaky(z) = alpha z + (1 - alpha) relu(z): E[s_a s_b s_c] expands into relu moments and Wick terms
    a = 0.3
    C = K4[:3, :3]
    lk = em(f"leaky_relu({a})", C, [((0, 0), (1, 0), (2, 0))])[0]
    total = 0.0
    for pattern in itertools.product((0, 1), repeat=3):   # 0: alpha z, 1: (1 - alpha) relu
        coef = math.prod(a if p == 0 else 1 - a for p in pattern)
        mono = tuple((i, -1 if p == 0 else 0) for i, p in enumerate(pattern))
        total += coef * em("relu", C, [mono])[0]
    assert lk == pytest.approx(total, rel=1e-12)


def test_parity_halves_the_rule_without_changing_values():
    # tanh is odd: odd monomials vanish exactly, even ones use half of the first coordinate
    from fwtheory import gauss_multi
    from fwtheory.activations import get_activation

    act = get_activation("tanh")
    C = K4[:3, :3] * 0.4
    mons = [((0, 0), (1, 0), (2, 0)), ((0, 0), (1, 0), (2, 1)), ((0, 1), (1, 1), (2, -1), (2, 0))]
    v = em(act, C, mons)
    assert v[0] == 0.0 and v[1] != 0.0
    atoms = [tuple(gauss_multi._check_monomials([m], 3, act)[0][a] for a in range(3)) for m in mons[1:]]
    full = gauss_multi._integrate_subset_parts(act, C[None], atoms, 1e-10, np.zeros(1), False)[0]
    np.testing.assert_allclose(v[1:], full, rtol=1e-9)
