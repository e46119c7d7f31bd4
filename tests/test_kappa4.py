"""i.i.d. weights with a fourth cumulant (uniform, Rademacher, user-registered):
the derived O(1/n) recursions (docs/derivation.md, "i.i.d. weights with a fourth cumulant").

Exact facts used:

* i.i.d. weights of variance C_W/n, relative fourth cumulant kappa: given layer l,
  z_i^(l+1) has conditional variance C_b + C_W (1/n) sum_j s_j^2 and conditional
  fourth cumulant kappa (C_W/n)^2 sum_j s_j^4, independently across i, so
  kappa_4(z_i) = (3V + Vd)/n with Vd = kappa C_W^2 <s^4> (likewise Dd, Ad for the
  NTK, whose conditional quadratic form W^T M W has fourth-cumulant part
  kappa (C_W/n)^2 sum_j M_jj^2);
* deep linear, C_b = 0: with M4 = E[z_i^4] and P = E[z_i^2 z_k^2] (i != k),
  exactly in n:  P' = C_W^2 (M4 + (n-1) P)/n,  M4' = 3 P' + kappa C_W^2 M4/n,
  from the first layer (x = sqrt(q0) (1, ..., 1), n0 = n):
  P = (C_W q0)^2, M4 = 3 (C_W q0)^2 + kappa C_W^2 q0^2 / n.
"""

from fractions import Fraction

import numpy as np
import pytest
import sympy

from fwtheory import Network, ParameterError, predict
from fwtheory.symbolic import C_W, CORRELATOR_SYMBOLS as S, derive, moment, q0
from fwtheory.symbolic import ensembles
from fwtheory.symbolic.derivation import NAMES, derive_carrying_diagonal
from fwtheory.symbolic.ensembles import IIDEnsemble, n
from fwtheory.symbolic.symbols import lambda_W, q4

KAPPA = {"uniform": sympy.Rational(-6, 5), "rademacher": sympy.Integer(-2)}
DIAG = {S["Vd"]: 0, S["Dd"]: 0, S["Ad"]: 0}
kappa = sympy.Symbol("kappa_4", real=True)


@pytest.fixture(scope="module")
def symbolic_kappa():
    rule = ensembles.register_ensemble(IIDEnsemble("test-iid-kappa", kappa))
    yield rule.name
    ensembles._ENSEMBLES.pop(rule.name)


def _s(**k):
    return moment(**k)


@pytest.mark.parametrize("ens", ["uniform", pytest.param("rademacher", marks=pytest.mark.slow)])
def test_single_neuron_cumulants_are_derived(ens):
    """Vd, Dd, Ad come out of the engine as the closed forms of the conditional
    fourth cumulants (module docstring), with their first-layer values."""
    k = KAPPA[ens]
    Th = S["Theta"]
    assert sympy.expand(derive("Vd", ens).expr - k * C_W**2 * _s(s=4)) == 0
    assert sympy.expand(derive("Dd", ens).expr - k * C_W**2 * Th * _s(s=2, t=2)) == 0
    assert sympy.expand(derive("Ad", ens).expr - k * C_W**2 * Th**2 * _s(t=4)) == 0
    init = derive("Vd", ens).initial
    assert sympy.expand(init[ens] - k * C_W**2 * q4) == 0          # sum_j x_j^4 = n0 q4
    assert init["gaussian"] == 0 and init["orthogonal"] == 0
    assert derive("Dd", ens).initial[ens] == 0 and derive("Ad", ens).initial[ens] == 0


def test_gaussian_limit_of_the_preactivation_family(symbolic_kappa):
    """kappa_4 -> 0 (fast subset of the next tests): G1, Vd of a symbolic kappa_4."""
    for name in ("G1", "Vd"):
        lim = sympy.expand(derive(name, symbolic_kappa).expr.subs(kappa, 0))
        assert lim == sympy.expand(derive_carrying_diagonal(name, "gaussian").expr)
        assert sympy.expand(lim.subs(DIAG)) == (0 if name == "Vd" else sympy.expand(derive(name).expr))
    assert sympy.expand(derive("Vd", symbolic_kappa).expr - kappa * C_W**2 * moment(s=4)) == 0


@pytest.mark.slow
def test_which_correlators_change(symbolic_kappa):
    """Single-neuron means (G1, Theta1) pick up Vd and Dd; correlators of distinct
    neurons (V, D, F, A, B, P..U) and the leading K, Theta are the Gaussian ones."""
    d2 = lambda **k: moment(**k, dk=2)      # noqa: E731
    d1 = lambda **k: moment(**k, dk=1)      # noqa: E731
    extra = {
        "G1": C_W * S["Vd"] / 6 * d2(s=2),
        "Theta1": (C_W * S["Dd"] * d1(t=2) + C_W * S["Theta"] * S["Vd"] / 6 * d2(t=2)
                   + lambda_W * S["Vd"] / 6 * d2(s=2)),
    }
    for name in NAMES:
        diff = sympy.expand(derive(name, symbolic_kappa).expr - derive(name, "gaussian").expr)
        assert diff == sympy.expand(extra.get(name, 0)), name
    for name in ("Vd", "Dd", "Ad"):
        assert derive(name, symbolic_kappa).expr.free_symbols >= {kappa}


@pytest.mark.slow
def test_gaussian_limit_is_exact(symbolic_kappa):
    """kappa_4 -> 0 reproduces the Gaussian recursions and first layer exactly, and an
    IIDEnsemble registered with kappa_4 = 0 is the Gaussian ensemble."""
    zero = ensembles.register_ensemble(IIDEnsemble("test-iid-zero", 0))
    try:
        for name in NAMES + ("Vd", "Dd", "Ad"):
            sym = derive(name, symbolic_kappa)
            lim = sympy.expand(sym.expr.subs(kappa, 0))
            assert lim == sympy.expand(derive_carrying_diagonal(name, "gaussian").expr), name
            assert lim == sympy.expand(derive(name, zero.name).expr), name
            if name in NAMES:
                assert sympy.expand(lim.subs(DIAG)) == sympy.expand(derive(name, "gaussian").expr), name
            else:
                assert lim == 0
            for first in ("gaussian", "orthogonal"):
                assert sympy.simplify(sym.initial[first] - derive_carrying_diagonal(name).initial[first]) == 0
    finally:
        ensembles._ENSEMBLES.pop(zero.name)


@pytest.mark.slow
def test_deep_linear_exact_fourth_moments():
    """predict's K, G1, V, Vd against the exact finite-n linear recursion (module
    docstring), l = 1..8, for uniform and Rademacher networks and a uniform network
    with a Gaussian first layer. The exact recursion is linear in (P, M4) with
    coefficients polynomial in eps = 1/n, so its eps^0 and eps^1 coefficients follow
    exactly from those of the layer below: V = [P]_1, Vd = [M4]_1 - 3 [P]_1."""
    cw, qq, L = Fraction(13, 10), Fraction(7, 10), 8
    for ens, first in (("uniform", "uniform"), ("rademacher", "rademacher"), ("uniform", "gaussian")):
        k, k1 = Fraction(str(KAPPA[ens])), Fraction(str(KAPPA.get(first, 0)))
        pred = predict(Network("linear", depth=L, width=64, C_W=float(cw), ensemble=ens, first_layer=first),
                       input_norm=float(qq))
        P0, P1 = (cw * qq) ** 2, Fraction(0)
        M0, M1 = 3 * P0, k1 * cw ** 2 * qq ** 2
        for layer in range(L):
            K = cw ** (layer + 1) * qq
            assert P0 == K ** 2 and M0 == 3 * K ** 2
            assert pred["K"][layer] == pytest.approx(float(K), rel=1e-12)
            assert pred["G1"][layer] == pytest.approx(0.0, abs=1e-12)
            assert pred["V"][layer] == pytest.approx(float(P1), rel=1e-12, abs=1e-14), (ens, layer)
            assert pred["Vd"][layer] == pytest.approx(float(M1 - 3 * P1), rel=1e-12, abs=1e-14), (ens, layer)
            # P' = C_W^2 (P + eps (M4 - P)),  M4' = 3 P' + eps kappa C_W^2 M4
            P0, P1 = cw ** 2 * P0, cw ** 2 * (P1 + M0 - P0)
            M0, M1 = 3 * P0, 3 * P1 + k * cw ** 2 * M0
        assert pred["Vd"][-1] != 0.0


@pytest.mark.slow
def test_ntk_variance_and_fourth_moment_carry_the_single_neuron_cumulants():
    """finite_width(): E[z^4] = 3 E[z^2]^2 + (3V + Vd)/n and Var(H_ii) = (A + 2B + Ad)/n."""
    net = Network("tanh", depth=4, width=32, ensemble="rademacher", lambda_b=0.3)
    pred = predict(net)
    fw, v = pred.finite_width(), pred.values
    nn = np.array([32.0] * 4)
    ez2 = v["K"] + v["G1"] / nn
    np.testing.assert_allclose(fw["E[z^4]"], 3 * ez2 ** 2 + (3 * v["V"] + v["Vd"]) / nn, rtol=1e-14)
    np.testing.assert_allclose(fw["Var(H_ii)"], (v["A"] + 2 * v["B"] + v["Ad"]) / nn, rtol=1e-14)
    assert np.all(v["Ad"][1:] < 0) and np.all(v["Vd"] < 0)


@pytest.mark.slow
def test_relu_is_blind_to_the_fourth_cumulant():
    """For ReLU, <relu^2>_K = K/2 and <relu'^2>_K = 1/2: d^2<s^2> = d<t^2> = d^2<t^2> = 0,
    so the derived kappa_4 terms of G1 and Theta1 vanish and every correlator equals
    the Gaussian one, while Vd, Dd, Ad do not vanish."""
    net = Network("relu", depth=6, width=64, C_W=2.0, lambda_b=0.1)
    g = predict(net)
    for ens in ("uniform", "rademacher"):
        u = predict(net.replace(ensemble=ens, first_layer="uniform"))
        for k in g.values:
            np.testing.assert_allclose(u[k], g[k], rtol=1e-12, atol=1e-12, err_msg=k)
        assert np.all(u["Vd"] < 0) and np.all(u["Dd"][1:] < 0)


@pytest.mark.slow
def test_tanh_differs_from_gaussian_and_mixed_first_layer():
    """tanh: G1 and Theta1 differ from the Gaussian values, V, D, F, A, B do not; a
    uniform first layer under Gaussian hidden layers changes G1 from layer 2 on."""
    net = Network("tanh", depth=5, width=64)
    g = predict(net)
    u = predict(net.replace(ensemble="uniform"))
    for k in ("K", "Theta", "V", "D", "F", "A", "B", "P", "Q", "R", "S", "T", "U"):
        np.testing.assert_allclose(u[k], g[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert np.all(np.abs(u["G1"][1:] - g["G1"][1:]) > 1e-3)
    assert np.all(np.abs(u["Theta1"][1:] - g["Theta1"][1:]) > 1e-3)
    mixed = predict(net.replace(first_layer="uniform"))
    assert mixed["Vd"][0] == pytest.approx(-1.2) and np.all(mixed["Vd"][1:] == 0)
    assert abs(mixed["G1"][1] - g["G1"][1]) > 1e-2
    # the layer-1 coefficients are per 1/n0: with n0 = n/4 the first step carries 4 Vd^(1)
    narrow = predict(net.replace(first_layer="uniform", input_dim=16))
    assert narrow["Vd"][0] == pytest.approx(-1.2)
    assert narrow["G1"][1] == pytest.approx(4 * mixed["G1"][1], rel=1e-12)
    assert float(predict(net.replace(first_layer="uniform", input_dim=16), precision="mpmath", dps=20)["G1"][1]) \
        == pytest.approx(narrow["G1"][1], rel=1e-12)
    m = predict(net.replace(ensemble="uniform"), precision="mpmath", dps=20)
    np.testing.assert_allclose(np.array(m["G1"], dtype=float), u["G1"], rtol=1e-9, atol=1e-12)


def test_refusals():
    """Order 2 with a fourth cumulant, a non-i.i.d. non-invariant rule, and a Rademacher
    first layer (a lattice with an atom at 0) under a kinked activation with C_b = 0."""
    with pytest.raises(ParameterError, match="^order: "):
        derive("V1", "uniform")
    with pytest.raises(ParameterError, match="^first_layer: "):
        predict(Network("relu", depth=3, width=16, ensemble="rademacher"))
    with pytest.raises(ParameterError, match="^first_layer: "):
        predict(Network("leaky_relu(0.1)", depth=3, width=16, first_layer="rademacher"))
    with pytest.raises(ParameterError, match="^ensemble: 'test-not-iid' is not rotation invariant"):
        class NotIID(ensembles.GaussianEnsemble):
            name, rotation_invariant = "test-not-iid", False
        ensembles.register_ensemble(NotIID())
        try:
            derive("G1", "test-not-iid")
        finally:
            ensembles._ENSEMBLES.pop("test-not-iid")


@pytest.mark.slow
def test_rademacher_tanh_against_simulation():
    """n = 64, l <= 6, 20000 networks: V, G1, Theta, Theta1 within 3 SE + 5% of predict,
    and Theta1 resolved away from the Gaussian prediction (the kappa_4 effect)."""
    from fwtheory.mc import simulate

    net = Network("tanh", depth=6, width=64, ensemble="rademacher")
    sim = simulate(net, samples=20000, seed=5)
    pred, gauss = predict(net), predict(net.replace(ensemble="gaussian"))
    for k in ("V", "G1", "Theta", "Theta1"):
        s, e, p = sim.values[k], sim.errors[k], pred[k]
        assert np.all(np.abs(s - p) <= 3 * e + 0.05 * np.abs(p) + 1e-12), (k, s, e, p)
    l = slice(3, 6)
    assert np.all(np.abs(sim.values["Theta1"][l] - gauss["Theta1"][l]) > 6 * sim.errors["Theta1"][l])
    # a C_b > 0 network with kinks: the Rademacher first layer is then continuous (accepted)
    assert np.all(np.isfinite(predict(Network("relu", depth=3, width=16, ensemble="rademacher", C_b=0.1))["G1"]))


def test_reregistering_a_name_forgets_the_old_rule():
    from fwtheory.symbolic import CORRELATOR_SYMBOLS

    try:
        ensembles.register_ensemble(IIDEnsemble("test-iid-swap", -1))
        first = derive("Vd", "test-iid-swap").expr
        ensembles.register_ensemble(IIDEnsemble("test-iid-swap", 2))
        second = derive("Vd", "test-iid-swap").expr
        assert sympy.expand(second + 2 * first) == 0 and CORRELATOR_SYMBOLS["Vd"] not in second.free_symbols
    finally:
        ensembles._ENSEMBLES.pop("test-iid-swap")
