"""The residual layer map z^(l+1) = z^(l) + gamma (b + W sigma(z^(l))), l >= 1, in derive
and predict (docs/derivation.md, "Residual networks").

Exact facts used:

* gamma = 0 is the identity map: every correlator is copied from layer to layer;
* the infinite-width recursions of PDLT appendix B (shortcut weight 1, block weight
  gamma): K' = K + gamma^2 (C_b + C_W <s^2>), Theta' = (1 + gamma^2 C_W <s'^2>) Theta
  + gamma^2 (lambda_b + lambda_W <s^2>) (fwtheory.mc.sampling.residual_infinite_width);
* deep linear, C_b = 0, Gaussian weights: given layer l, z'_i = z_i + gamma c g_i with
  c^2 = C_W |z|^2 / n and g standard normal, so with P = E[z_i^2 z_k^2] (i != k),
  M4 = E[z_i^4] and a = gamma^2 C_W, exactly in n:
  P' = P + (2a + a^2) (M4 + (n-1) P)/n,  M4' = M4 + (6a + 3a^2) (M4 + (n-1) P)/n,
  E[z^2]' = (1 + a) E[z^2]; hence V' = (1 + a)^2 V + 2a(2 + a) K^2 at order 1/n.
"""

from fractions import Fraction

import numpy as np
import pytest
import sympy

from fwtheory import Network, predict
from fwtheory.symbolic import C_W, C_b, CORRELATOR_SYMBOLS as S, derive, lambda_W, lambda_b, moment
from fwtheory.symbolic.derivation import NAMES, derive_carrying_diagonal
from fwtheory.symbolic.symbols import gamma


def test_gamma_zero_is_the_identity_fast():
    for name in ("K", "G1", "V", "Theta"):
        assert sympy.expand(derive(name, "gaussian", layer="residual").expr.subs(gamma, 0)) == S[name], name


@pytest.mark.slow
@pytest.mark.parametrize("ens", ["gaussian", "orthogonal"])
def test_gamma_zero_is_the_identity(ens):
    for name in NAMES[:9]:
        rec = derive(name, ens, layer="residual")
        assert rec.layer == "residual"
        assert sympy.expand(rec.expr.subs(gamma, 0)) == S[name], name


@pytest.mark.slow
def test_gamma_zero_is_the_identity_with_a_fourth_cumulant():
    for name in ("G1", "Theta1", "Vd", "Dd", "Ad"):
        assert sympy.expand(derive(name, "uniform", layer="residual").expr.subs(gamma, 0)) == S[name], name
    # a rotation-invariant residual layer neither creates nor changes single-neuron cumulants
    for name in ("Vd", "Dd", "Ad"):
        assert derive_carrying_diagonal(name, "gaussian", layer="residual").expr == S[name]


@pytest.mark.parametrize("ens", ["gaussian", "orthogonal", "uniform"])
def test_kernel_and_ntk_mean_are_the_appendix_b_recursions(ens):
    K, Th = S["K"], S["Theta"]
    s2, t2 = moment(s=2), moment(t=2)
    assert sympy.expand(derive("K", ens, layer="residual").expr - (K + gamma**2 * (C_b + C_W * s2))) == 0
    theta = Th * (1 + gamma**2 * C_W * t2) + gamma**2 * (lambda_b + lambda_W * s2)
    assert sympy.expand(derive("Theta", ens, layer="residual").expr - theta) == 0


def test_residual_recursions_reduce_to_the_plain_block_terms():
    """The gamma^4 part of V' (the block alone) is the plain MLP's source
    C_W^2 (<s^4> - <s^2>^2) plus C_W^2 (d<s^2>)^2 V; the gamma^2 part couples the
    shortcut to the block: 2 C_W (<s^2 z^2> - K <s^2>) + 2 C_W d<s^2> V."""
    V = sympy.expand(derive("V", "gaussian", layer="residual").expr)
    s2, s4, d = moment(s=2), moment(s=4), moment(s=2, dk=1)
    assert sympy.expand(V.coeff(gamma, 4) - C_W**2 * (s4 - s2**2 + d**2 * S["V"])) == 0
    assert sympy.expand(V.coeff(gamma, 2) - 2 * C_W * (moment(s=2, z=2) - S["K"] * s2 + d * S["V"])) == 0
    assert V.coeff(gamma, 0) == S["V"]


@pytest.mark.slow
def test_deep_linear_exact_vertex():
    """predict's K and V against the exact finite-n recursion (module docstring), l <= 10."""
    cw, qq, g, L = Fraction(11, 10), Fraction(7, 10), Fraction(1, 2), 10
    pred = predict(Network("linear", depth=L, width=32, C_W=float(cw), residual=float(g)), input_norm=float(qq))
    a = g * g * cw
    P0, P1, M0 = (cw * qq) ** 2, Fraction(0), 3 * (cw * qq) ** 2
    K = cw * qq
    for layer in range(L):
        assert pred["K"][layer] == pytest.approx(float(K), rel=1e-13)
        assert pred["V"][layer] == pytest.approx(float(P1), rel=1e-12, abs=1e-14), layer
        assert pred["G1"][layer] == pytest.approx(0.0, abs=1e-12)
        # eps-expansion of the exact recursion: (M4 + (n-1)P)/n = P + eps (M4 - P)
        P0, P1, M0 = P0 * (1 + a) ** 2, P1 * (1 + a) ** 2 + (2 * a + a * a) * (M0 - P0), M0 * (1 + a) ** 2
        K = K * (1 + a)
    assert pred["V"][-1] > 0


@pytest.mark.slow
def test_predict_gamma_zero_copies_layer_one_and_matches_infinite_width():
    from fwtheory.mc.sampling import residual_infinite_width

    net = Network("tanh", depth=6, width=64, C_b=0.1, lambda_b=0.3, ensemble="orthogonal", residual=0.0)
    p = predict(net)
    for k, v in p.values.items():
        np.testing.assert_array_equal(v, v[0], err_msg=k)
    net = net.replace(residual=0.5)
    p = predict(net)
    K, T = residual_infinite_width(net)
    np.testing.assert_allclose(p["K"], K, rtol=1e-12)
    np.testing.assert_allclose(p["Theta"], T, rtol=1e-12)
    assert not np.allclose(p["V"], predict(net.replace(residual=None))["V"])
    assert "P" not in p.values and "P" not in p.to_dict() and "V" in p.to_dict()


def test_descendants_and_order2_are_refused():
    """P..U of the residual map need NTK-dNTK joint cumulants that are not carried
    (simulated U at l = 3 is 0.140 +- 0.001 against 0.091 without them): refused."""
    from fwtheory import ParameterError

    for name in ("P", "U"):
        with pytest.raises(ParameterError, match="^layer: .*not derived for the residual map"):
            derive(name, "gaussian", layer="residual")
    with pytest.raises(ParameterError, match="^order: "):
        derive("G2", "gaussian", layer="residual")


def test_non_odd_activation_is_refused():
    """relu + residual: O(1/n) three-point cumulants (not carried) -> refused, not wrong."""
    from fwtheory import ParameterError

    with pytest.raises(ParameterError, match="^residual: .*odd activation"):
        predict(Network("relu", depth=3, width=16, residual=0.5))
    with pytest.raises(ParameterError, match="^residual: "):
        predict(Network("gelu", depth=3, width=16, residual=0.1, ensemble="uniform"))


@pytest.mark.slow
@pytest.mark.parametrize("ens, gamma_", [("gaussian", 0.5)])
def test_residual_tanh_against_simulation(ens, gamma_):
    """n = 64, l <= 10: K, V, Theta within 3 SE + 5% of predict."""
    from fwtheory.mc import simulate

    net = Network("tanh", depth=10, width=64, ensemble=ens, residual=gamma_)
    sim = simulate(net, samples=3000, seed=3)
    pred = predict(net)
    for k in ("K", "V", "Theta"):
        s, e, p = sim.values[k], sim.errors[k], pred[k]
        assert np.all(np.abs(s - p) <= 3 * e + 0.05 * np.abs(p) + 1e-12), (k, s, e, p)


def test_cli_derive_residual(capsys):
    """`fwtheory derive --layer residual` prints K..B (no descendants) and defines gamma."""
    from fwtheory.cli import main

    assert main(["derive", "--layer", "residual", "--ensemble", "uniform"]) == 0
    out = capsys.readouterr().out
    printed = [line.split("^(l+1)")[0] for line in out.splitlines() if "^(l+1) = " in line and not line.startswith("#")]
    assert printed == ["K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B", "Vd", "Dd", "Ad"]
    assert "gamma" in out.split("K^(l+1)")[1] and "# --layer residual: gamma" in out
    assert main(["derive", "P", "--layer", "residual"]) == 2
