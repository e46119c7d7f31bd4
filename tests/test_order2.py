"""The general cumulant expansion (fwtheory.symbolic.cumulants) and the order-1/n^2 correlators
G2, V1, U6 against exact finite-width results (single input, fixed input, C_b = 0).

Oracles, derived in the comments below and independent of the engine:

* Gaussian weights: given layer l, z^(l+1) is Gaussian with the random variance
  G^ = C_W (1/n) sum_j sigma(z_j)^2 shared by all neurons, so for distinct neurons
  E[prod_a z_a^(2 m_a)] = prod_a (2 m_a - 1)!! E[G^^M], M = sum m_a. With a Gaussian first layer
  G^(1) = K^(1) is fixed, and given G^(l), sum_j sigma(z_j)^2 / G^(l) is
  chi^2_n for sigma(z) = z and chi^2 with Binomial(n, 1/2) degrees of freedom for ReLU, independent
  of G^(l). Hence E[G^(l)^M] = K^M mu_M^(l-1), mu_M = E[(C_W X / (n K ratio))^M]:
  linear mu_M = prod_{r<M} (1 + 2r/n); ReLU mu_M = 2^M E[B (B+2) ... (B+2M-2)] / n^M, B ~ Bin(n, 1/2).
  (mu_2 = 1 + 2/n and 1 + 5/n: PDLT arXiv:2106.10165 eq. (3.25) and its ReLU analogue.)
* Haar-orthogonal weights in every layer, sigma(z) = z: z^(l) = C_W^(l/2) O x with O Haar (a product
  of Haar matrices is Haar), uniform on the sphere of radius^2 n K, so
  E[z_i^2 z_k^2] = K^2 n/(n+2), E[z_i^2 z_j^2 z_k^2] = K^3 n^2/((n+2)(n+4)), E[z^4] = 3 K^2 n/(n+2).

Normalizations: E[z^2] = K + G1/n + G2/n^2, Cov(z_i^2, z_k^2) = V/n + V1/n^2,
kappa(z_i^2, z_j^2, z_k^2) = U6/n^2 + O(1/n^3) (i, j, k distinct).
"""

import json
import os

import pytest
import sympy

from fwtheory.errors import FwtheoryError, ParameterError
from fwtheory.exact import _moment_value
from fwtheory.symbolic import CORRELATOR_SYMBOLS as S
from fwtheory.symbolic import C_W, C_b, derive, moments_in, q0
from fwtheory.symbolic.cumulants import EPS, product_expectation, variance_operator_series
from fwtheory.symbolic.derivation import NAMES, expectation
from fwtheory.symbolic.ensembles import n
from fwtheory.symbolic.symbols import GaussianMoment, moment

STATE = ("K", "G1", "V", "G2", "V1", "U6")
LINEAR, RELU = (1, 1), (1, 0)


# ------------------------------------------------------------------ order 1 unchanged
def test_order1_recursions_unchanged():
    """Every order-1 recursion and first-layer value equals the one derived by the previous,
    hand-written O(1/n) effective theory (stored as sympy srepr in tests/data)."""
    path = os.path.join(os.path.dirname(__file__), "data", "order1_recursions.json")
    with open(path) as fh:
        snapshot = json.load(fh)
    ns = {k: getattr(sympy, k) for k in dir(sympy)}
    ns["GaussianMoment"] = GaussianMoment
    for ensemble in ("gaussian", "orthogonal"):
        for name in NAMES:
            rec, ref = derive(name, ensemble), snapshot[f"{name}/{ensemble}"]
            assert sympy.simplify(sympy.expand(rec.expr - eval(ref["expr"], ns))) == 0, (name, ensemble)
            for first in ("gaussian", "orthogonal"):
                assert sympy.simplify(rec.initial[first] - eval(ref["initial"][first], ns)) == 0
                assert sympy.simplify(rec.initial_exact[first]
                                      - eval(ref["initial_exact"][first], ns)) == 0


def test_variance_operator_series_order2():
    # exp(eps(G1 D + V D^2/2) + eps^2 (G2 D + V1 D^2/2 + U6 D^3/6)) to eps^2
    G1, V, G2, V1, U6 = (S[k] for k in ("G1", "V", "G2", "V1", "U6"))
    ser = variance_operator_series(2)
    D = sympy.Symbol("D")
    got = sum(c * EPS**k * D**len(m) for (k, m), c in ser.items())
    X = EPS * (G1 * D + V * D**2 / 2) + EPS**2 * (G2 * D + V1 * D**2 / 2 + U6 * D**3 / 6)
    want = sympy.series(sympy.exp(X), EPS, 0, 3).removeO()
    assert sympy.expand(got - want) == 0


def test_single_neuron_fourth_moment_from_cumulants():
    # E[z^4] = 3 E[z^2]^2 + kappa_4(z,z,z,z) = 3 (K + eps G1 + eps^2 G2)^2 + 3 eps (V + eps V1)
    K, G1, V, G2, V1 = (S[k] for k in ("K", "G1", "V", "G2", "V1"))
    kk = sympy.Symbol("kk", positive=True)
    e = product_expectation([(0, 0, 0, 0, 4)], 2)
    e = e.xreplace({m: sympy.diff(3 * kk**2, kk, m.dk).subs(kk, K) for m in e.atoms(GaussianMoment)})
    want = sympy.expand(3 * (K + EPS * G1 + EPS**2 * G2) ** 2 + 3 * EPS * (V + EPS * V1))
    assert sympy.expand(e - want).coeff(EPS, 0) == 0
    assert sympy.expand(e - want).coeff(EPS, 1) == 0
    assert sympy.expand(e - want).coeff(EPS, 2) == 0


# ------------------------------------------------------------------ oracles
def _mu(activation, M):
    """E[(G^(l+1)/G^(l))^M] / C_W^M * (A2)^M for C_b = 0 (module docstring), exact in n."""
    if activation == LINEAR:
        out = sympy.Integer(1)
        for r in range(M):
            out *= 1 + 2 * r / n
        return out
    # ReLU: E[chi^2_B (chi^2_B + 2) ... ] over B ~ Binomial(n, 1/2), via factorial moments
    B = sympy.Symbol("B")
    poly = sympy.Poly(sympy.expand(sympy.prod([B + 2 * r for r in range(M)])), B)
    # B^p = sum_k S2(p, k) B^(k) (falling), E[B^(k)] = n^(k) / 2^k
    from sympy.functions.combinatorial.numbers import stirling
    total = sympy.Integer(0)
    for (p,), c in poly.terms():
        for k in range(p + 1):
            total += c * stirling(p, k) * sympy.ff(n, k) / 2**k
    return sympy.expand(total * 2**M / n**M)


def _coeffs(expr, order=2):
    ser = sympy.series(sympy.together(expr).subs(n, 1 / EPS), EPS, 0, order + 1).removeO()
    return [sympy.simplify(sympy.expand(ser).coeff(EPS, k)) for k in range(order + 1)]


def _oracle(case, layer, K):
    """(G1, G2, V, V1, U6) at ``layer`` from the exact finite-width moments."""
    ensemble, activation = case
    if ensemble == "orthogonal":
        e2, e22 = sympy.Integer(1), n / (n + 2)
        e222 = n**2 / ((n + 2) * (n + 4))
    else:
        e2 = sympy.Integer(1)
        e22 = _mu(activation, 2) ** (layer - 1)
        e222 = _mu(activation, 3) ** (layer - 1)
    g = _coeffs(e2)
    v = _coeffs(e22 - e2**2)
    u = _coeffs(e222 - 3 * e22 * e2 + 2 * e2**3)
    assert v[0] == 0 and u[0] == 0 and u[1] == 0
    return {"G1": g[1] * K, "G2": g[2] * K, "V": v[1] * K**2, "V1": v[2] * K**2, "U6": u[2] * K**3}


def _substitute_moments(expr, activation, K):
    ap, am = activation
    return expr.xreplace({m: _moment_value(m, ap, am, K) for m in moments_in(expr)})


def _iterate(ensemble, first, activation, cw, q, depth):
    recs = {k: derive(k, ensemble) for k in STATE}
    params = {C_b: 0, C_W: cw, q0: q}
    state = {k: sympy.simplify(recs[k].initial[first].subs(params)) for k in STATE}
    out = [state]
    for _ in range(depth - 1):
        new = {}
        for k in STATE:
            e = _substitute_moments(recs[k].expr.subs(params), activation, state["K"])
            new[k] = sympy.simplify(sympy.expand(e.xreplace({S[x]: state[x] for x in STATE})))
        state = new
        out.append(state)
    return out


CASES = {
    "linear_gaussian": (("gaussian", LINEAR), "gaussian", sympy.Rational(3, 2), sympy.Rational(7, 5)),
    "linear_orthogonal": (("orthogonal", LINEAR), "orthogonal", sympy.Rational(5, 4), sympy.Rational(2, 3)),
    "relu_gaussian": (("gaussian", RELU), "gaussian", sympy.Integer(2), sympy.Rational(7, 5)),
    "relu_gaussian_off_critical": (("gaussian", RELU), "gaussian", sympy.Rational(5, 2), sympy.Rational(1, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_order2_recursions_match_exact_finite_width(case):
    (ensemble, activation), first, cw, q = CASES[case]
    profile = _iterate(ensemble, first, activation, cw, q, depth=10)
    for layer, state in enumerate(profile, start=1):
        want = _oracle((ensemble, activation), layer, state["K"])
        for k in ("G1", "G2", "V", "V1", "U6"):
            assert sympy.simplify(state[k] - want[k]) == 0, (case, layer, k, state[k], want[k])


def test_order2_closed_forms_quoted():
    # the oracle's closed forms for the record: V1 = 2(l-1)(l-2) K^2 (linear), 12.5 (l-1)(l-2) K^2
    # (ReLU), U6 = 4 (l-1)(3l-4) K^3 (linear Gaussian), V1 = 4K^2, U6 = 16K^3 (linear orthogonal)
    for layer in range(1, 8):
        lin = _oracle(("gaussian", LINEAR), layer, 1)
        relu = _oracle(("gaussian", RELU), layer, 1)
        assert lin["V"] == 2 * (layer - 1) and lin["V1"] == 2 * (layer - 1) * (layer - 2)
        assert lin["U6"] == 4 * (layer - 1) * (3 * layer - 4)
        assert relu["V"] == 5 * (layer - 1) and relu["V1"] == sympy.Rational(25, 2) * (layer - 1) * (layer - 2)
    orth = _oracle(("orthogonal", LINEAR), 3, 1)
    assert orth == {"G1": 0, "G2": 0, "V": -2, "V1": 4, "U6": 16}


def test_first_layer_order2_values():
    K1 = C_W * q0
    assert derive("V1", "orthogonal").initial["orthogonal"] == sympy.expand(4 * K1**2)
    assert sympy.simplify(derive("U6").initial_exact["orthogonal"]
                          - 16 * K1**3 * n**2 / ((n + 2) * (n + 4))) == 0
    for name in ("G2", "V1", "U6"):
        assert derive(name).initial["gaussian"] == 0
        assert derive(name, order=2).order == 2


# ------------------------------------------------------------------ expectation(order=2)
Z = ("z", "i"), ("z", "j"), ("z", "k")


def _fields(powers):
    return tuple(f for f, p in zip(Z, powers) for _ in range(p))


@pytest.mark.parametrize("ensemble, activation", [("gaussian", LINEAR), ("gaussian", RELU),
                                                  ("orthogonal", LINEAR)])
@pytest.mark.parametrize("powers", [(2, 0, 0), (4, 0, 0), (2, 2, 0), (6, 0, 0), (4, 2, 0), (2, 2, 2)])
def test_expectation_order2_against_exact_moments(ensemble, activation, powers):
    """E[prod z^(2m)] at layer l+1 from the layer-l effective theory, to 1/n^2."""
    cw, q = sympy.Rational(3, 2), sympy.Rational(4, 3)
    if activation == RELU:
        cw = sympy.Integer(2)
    expr = expectation(_fields(powers), ensemble, order=2).subs({C_b: 0, C_W: cw})
    M = sum(powers) // 2
    dfact = sympy.prod([sympy.factorial2(p - 1) for p in powers if p])
    A2 = 1 if activation == LINEAR else sympy.Rational(1, 2)
    for layer in range(1, 6):
        K = q * cw * (cw * A2) ** (layer - 1)
        state = dict(_oracle((ensemble, activation), layer, K), K=K)
        got = _substitute_moments(expr, activation, K).xreplace({S[x]: state[x] for x in STATE})
        got = sympy.expand(got)
        Knext = K * cw * A2
        if ensemble == "gaussian":
            exact = dfact * Knext**M * _mu(activation, M) ** layer
        else:  # uniform on the sphere of radius^2 n K: E[prod u^(2m)] = prod (2m-1)!! / (n (n+2) ...)
            exact = dfact * (n * Knext) ** M / sympy.prod([n + 2 * r for r in range(M)])
        want = _coeffs(exact)
        for k in range(3):
            assert sympy.simplify(got.coeff(EPS, k) - want[k]) == 0, (layer, k)


# ------------------------------------------------------------------ what order 2 cannot do
def test_order2_with_ntk_fields_raises():
    with pytest.raises(ParameterError, match="Theta2"):
        expectation((("H", "i", "i"),), "gaussian", order=2)
    with pytest.raises(ParameterError, match="order"):
        expectation((("z", "i"), ("H", "k", "k")), "orthogonal", order=2)
    with pytest.raises(ParameterError, match="eight-point"):
        expectation((("z", "i"), ("z", "i")), "gaussian", order=3)
    with pytest.raises(ParameterError, match="V1"):
        derive("V", order=2)
    with pytest.raises(FwtheoryError):
        derive("Theta1", order=2)


def test_lower_orders_of_the_six_point_cumulant_vanish():
    # U6 is the leading (1/n^2) term: kappa(z_i^2, z_j^2, z_k^2) has no eps^0 or eps^1 part
    from fwtheory.symbolic.derivation import _joint_cumulant
    for ensemble in ("gaussian", "orthogonal"):
        kappa = _joint_cumulant(((Z[0], Z[0]), (Z[1], Z[1]), (Z[2], Z[2])),
                                lambda f: expectation(f, ensemble, order=2))
        kappa = sympy.expand(kappa)
        assert kappa.coeff(EPS, 0) == 0 and kappa.coeff(EPS, 1) == 0
        assert sympy.expand(kappa.coeff(EPS, 2) - derive("U6", ensemble).expr) == 0


# ------------------------------------------------------------------ any activation, second layer
@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_second_layer_exact_for_any_activation(ensemble):
    """Layer 2 over a Gaussian first layer (any C_b): the s_j = sigma(z_j^(1)) are i.i.d. with
    <s^2>, <s^4>, <s^6> at K^(1). Gaussian weights: z^(2) is Gaussian with variance
    G^ = C_W |s|^2 / n. Orthogonal: z^(2) is uniform on the sphere of radius^2 C_W |s|^2, so
    E[z_i^2 z_k^2] = C_W^2 E|s|^4 / (n(n+2)), E[z_i^2 z_j^2 z_k^2] = C_W^3 E|s|^6 / (n(n+2)(n+4))."""
    s2, s4, s6 = moment(s=2), moment(s=4), moment(s=6)
    E_s2 = n * s2
    E_s4 = n * s4 + n * (n - 1) * s2**2
    E_s6 = n * s6 + 3 * n * (n - 1) * s4 * s2 + n * (n - 1) * (n - 2) * s2**3
    if ensemble == "gaussian":
        e2, e22, e222 = C_W * E_s2 / n, C_W**2 * E_s4 / n**2, C_W**3 * E_s6 / n**3
    else:
        e2 = C_W * E_s2 / n
        e22 = C_W**2 * E_s4 / (n * (n + 2))
        e222 = C_W**3 * E_s6 / (n * (n + 2) * (n + 4))
    # biases: z_i = b_i + y_i with b_i ~ N(0, C_b) independent of y (odd terms vanish)
    e2, e22, e222 = (C_b + e2, C_b**2 + 2 * C_b * e2 + e22,
                     C_b**3 + 3 * C_b**2 * e2 + 3 * C_b * e22 + e222)
    g = _coeffs(e2)
    v = _coeffs(e22 - e2**2)
    u = _coeffs(e222 - 3 * e22 * e2 + 2 * e2**3)
    layer1 = {S[k]: 0 for k in ("G1", "V", "G2", "V1", "U6")}
    for name, want in (("G1", g[1]), ("G2", g[2]), ("V", v[1]), ("V1", v[2]), ("U6", u[2])):
        got = derive(name, ensemble).expr.xreplace(layer1)
        assert sympy.expand(got - want) == 0, (name, got, want)


# ------------------------------------------------------------------ the expansion on a non-Gaussian law
@pytest.mark.parametrize("powers", [(8,), (4, 4), (6, 2), (4, 2, 2), (2, 2, 2, 2), (6, 4, 2), (10,)])
def test_product_expectation_on_the_sphere(powers):
    """z uniform on the sphere of radius^2 n K in R^n (an O(n)-invariant law that is not a Gaussian
    scale mixture: its four-point cumulant is negative). Exact: E[prod_a z_a^(2 m_a)] =
    prod (2 m_a - 1)!! (nK)^M / (n (n+2) ... (n + 2M - 2)). Its cumulants in the normalization
    of Z_CUMULANTS: G1 = G2 = 0, V = -2K^2, V1 = 4K^2, U6 = 16K^3; the expansion must reproduce
    every such moment through 1/n^2, including the D^4 term (V^2/8) on up to four neurons."""
    K = sympy.Symbol("K", positive=True)
    values = {S["K"]: K, S["G1"]: 0, S["G2"]: 0, S["V"]: -2 * K**2, S["V1"]: 4 * K**2,
              S["U6"]: 16 * K**3}
    kk = sympy.Symbol("kk", positive=True)
    e = product_expectation([(0, 0, 0, 0, p) for p in powers], 2)
    e = e.xreplace({m: sympy.diff(sympy.factorial2(m.powers[4] - 1) * kk ** (m.powers[4] // 2), kk,
                                  m.dk).subs(kk, K) for m in e.atoms(GaussianMoment)})
    e = sympy.expand(e.xreplace(values))
    M = sum(powers) // 2
    exact = sympy.prod([sympy.factorial2(p - 1) for p in powers]) * (n * K) ** M / sympy.prod(
        [n + 2 * r for r in range(M)])
    want = _coeffs(exact)
    for k in range(3):
        assert sympy.expand(e.coeff(EPS, k) - want[k]) == 0, (k, e.coeff(EPS, k), want[k])


def test_growing_coefficient_is_a_clear_error():
    from fwtheory.symbolic import DerivationError
    from fwtheory.symbolic.derivation import _eps_series
    with pytest.raises(DerivationError, match="grows with the width"):
        _eps_series(n**2 / (n + 1), 2)


def test_order2_dependencies():
    assert set(derive("G2").dependencies) == {"K", "G1", "V", "G2", "V1", "U6"}
    assert set(derive("V1", "orthogonal").dependencies) == {"K", "G1", "V", "V1", "U6"}
    assert set(derive("U6").dependencies) == {"K", "V", "U6"}


# ------------------------------------------------------------------ a non-scale-invariant activation
def _quadratic_moments(expr, K):
    """<sigma^a sigma'^b sigma''^c sigma'''^e z^d>_K and K-derivatives for sigma(z) = z^2."""
    kk = sympy.Symbol("kk", positive=True)
    subs = {}
    for m in expr.atoms(GaussianMoment):
        a, b, c, e, d = m.powers
        p = 2 * a + b + d
        val = 0 if (e or p % 2) else 2 ** (b + c) * sympy.factorial2(p - 1) * kk ** (p // 2)
        subs[m] = sympy.diff(val, kk, m.dk).subs(kk, K)
    return expr.xreplace(subs)


def _mean_power_of_Y(p):
    """E[Y^p] through eps^2, Y = (1/n) sum_j xi_j^4 over n i.i.d. standard normals: a sum over
    the ways the p indices coincide, k distinct ones counted n^(k falling) / n^p =
    eps^(p-k) prod_{i<k} (1 - i eps), with E[xi^(4r)] = (4r-1)!! = 3, 105, 10395 for r = 1, 2, 3.
    Only k >= p - 2 reach eps^2: all distinct; one pair; one triple or two pairs."""
    def count(k):
        e1 = k * (k - 1) // 2
        e2 = (e1**2 - (k - 1) * k * (2 * k - 1) // 6) // 2   # sum_{i<j<k} i j
        return EPS ** (p - k) * (1 - e1 * EPS + e2 * EPS**2)
    b = sympy.binomial
    total = 3**p * count(p)
    if p >= 2:
        total += b(p, 2) * 105 * 3 ** (p - 2) * count(p - 1)
    if p >= 3:
        total += b(p, 3) * 10395 * 3 ** (p - 3) * count(p - 2)
    if p >= 4:
        total += 3 * b(p, 4) * 105**2 * 3 ** (p - 4) * count(p - 2)
    return _truncate2(total)


def _truncate2(expr):
    expr = sympy.expand(expr)
    return sum((expr.coeff(EPS, k) * EPS**k for k in range(3)), sympy.Integer(0))


def test_quadratic_activation_exact_to_all_orders():
    """sigma(z) = z^2, Gaussian weights, C_b = 0, C_W = 1/3, K^(1) = 1 (q0 = 3): with
    z^(l) = sqrt(G^_l) xi, G^_{l+1} = C_W G^_l^2 Y_l, Y_l = (1/n) sum_j xi_j^4 i.i.d. over layers, so
    E[G^_l^m] = prod_{r=1}^{l-1} E[(Y/3)^(m 2^(l-1-r))] exactly and K^(l) = 1. Unlike ReLU and linear,
    <sigma^2>_K = 3K^2 has a nonzero second K-derivative: every term of G2 and V1 except the
    third- and fourth-derivative ones is exercised, with G1, V, V1, U6 all nonzero. Layers 1..10."""
    params = {C_b: 0, C_W: sympy.Rational(1, 3), q0: 3}
    recs = {k: derive(k).expr.subs(params) for k in STATE}
    state = {k: derive(k).initial["gaussian"].subs(params) for k in STATE}
    ey = {}

    def EY(p):
        if p not in ey:
            ey[p] = _mean_power_of_Y(p) / 3**p
        return ey[p]

    for layer in range(1, 11):
        moments = [_truncate2(sympy.prod([EY(m * 2 ** (layer - 1 - r)) for r in range(1, layer)]))
                   for m in (1, 2, 3)]
        e2, e22, e222 = moments
        g, v, u = ([_truncate2(x).coeff(EPS, k) for k in range(3)]
                   for x in (e2, e22 - e2**2, e222 - 3 * e22 * e2 + 2 * e2**3))
        want = {"K": g[0], "G1": g[1], "G2": g[2], "V": v[1], "V1": v[2], "U6": u[2]}
        for k in STATE:
            assert sympy.simplify(state[k] - want[k]) == 0, (layer, k, state[k], want[k])
        state = {k: sympy.expand(_quadratic_moments(recs[k], state["K"]).xreplace(
            {S[x]: state[x] for x in STATE})) for k in STATE}
    assert state["G2"] != 0 and state["V1"] != 0 and state["U6"] != 0


def _series_ratio(k, p, sphere):
    """n^(k falling) / n^p times, on the sphere, n^(2p) / prod_{i<2p} (n + 2i), through eps^2."""
    c = [1, 0, 0]                                   # truncated polynomial in eps

    def times(a):                                   # multiply by (1 + a eps)
        c[2] += a * c[1]
        c[1] += a * c[0]

    for i in range(k):
        times(-i)
    if sphere:
        for i in range(2 * p):                      # 1/(1 + 2i eps) = 1 - 2i eps + 4i^2 eps^2 - ...
            a = 2 * i
            c[2] += -a * c[1] + a * a * c[0]
            c[1] += -a * c[0]
    return EPS ** (p - k) * (c[0] + c[1] * EPS + c[2] * EPS**2)


def _mean_power_of_Y_sphere(p):
    """E[(n sum_j u_j^4)^p] through eps^2, u uniform on the unit sphere of R^n:
    E[prod_i u_i^(2 a_i)] = prod (2 a_i - 1)!! / (n (n+2) ... (n + 2A - 2))."""
    b = sympy.binomial
    total = 3**p * _series_ratio(p, p, True)
    if p >= 2:
        total += b(p, 2) * 105 * 3 ** (p - 2) * _series_ratio(p - 1, p, True)
    if p >= 3:
        total += b(p, 3) * 10395 * 3 ** (p - 3) * _series_ratio(p - 2, p, True)
    if p >= 4:
        total += 3 * b(p, 4) * 105**2 * 3 ** (p - 4) * _series_ratio(p - 2, p, True)
    return _truncate2(total)


def test_quadratic_activation_orthogonal_hidden_layers_exact():
    """sigma(z) = z^2, Gaussian first layer, Haar-orthogonal hidden layers, C_b = 0, C_W = 1/3,
    K^(1) = 1. For l >= 2, z^(l) = R_l u_l with u_l uniform on the unit sphere and independent of
    the radius (Haar invariance), R_2^2 = C_W n K1^2 Y_1 (Y_1 = (1/n) sum xi^4 of the Gaussian
    first layer) and R_(l+1)^2 = C_W R_l^4 sum_j u_(l,j)^4. With P_l = R_l^2 / n:
    E[z^2] = E[P], E[z_i^2 z_k^2] = E[P^2] n/(n+2), E[z_i^2 z_j^2 z_k^2] = E[P^3] n^2/((n+2)(n+4)),
    and P_(l+1) = C_W P_l^2 (n sum_j u_j^4)."""
    params = {C_b: 0, C_W: sympy.Rational(1, 3), q0: 3}
    recs = {k: derive(k, "orthogonal").expr.subs(params) for k in STATE}
    state = {k: derive(k, "orthogonal").initial["gaussian"].subs(params) for k in STATE}
    cache = {}

    def EY(p, first):
        if (p, first) not in cache:
            cache[p, first] = (_mean_power_of_Y(p) if first else _mean_power_of_Y_sphere(p)) / 3**p
        return cache[p, first]

    sphere2 = _truncate2(sympy.series(1 / (1 + 2 * EPS), EPS, 0, 3).removeO())
    sphere3 = _truncate2(sympy.series(1 / ((1 + 2 * EPS) * (1 + 4 * EPS)), EPS, 0, 3).removeO())
    for layer in range(1, 11):
        EP = [_truncate2(sympy.prod([EY(m * 2 ** (layer - 1 - r), r == 1) for r in range(1, layer)]))
              for m in (1, 2, 3)]
        e2 = EP[0]
        e22 = _truncate2(EP[1] * (sphere2 if layer > 1 else 1))
        e222 = _truncate2(EP[2] * (sphere3 if layer > 1 else 1))
        g, v, u = ([_truncate2(x).coeff(EPS, k) for k in range(3)]
                   for x in (e2, e22 - e2**2, e222 - 3 * e22 * e2 + 2 * e2**3))
        want = {"K": g[0], "G1": g[1], "G2": g[2], "V": v[1], "V1": v[2], "U6": u[2]}
        for k in STATE:
            assert sympy.simplify(state[k] - want[k]) == 0, (layer, k, state[k], want[k])
        state = {k: sympy.expand(_quadratic_moments(recs[k], state["K"]).xreplace(
            {S[x]: state[x] for x in STATE})) for k in STATE}
