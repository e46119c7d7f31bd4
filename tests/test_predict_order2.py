"""predict(order=2): G2, V1, U6 against exact finite-width moments, the Hermite
identity for high K-derivatives, refusals, outputs and the CLI.

Exact oracles (single input, C_b = 0, fixed input; derivations in
tests/test_order2.py and docs/order2.md): given layer l, Gaussian weights make
z^(l+1) Gaussian with the shared random variance G^ = C_W |sigma(z^(l))|^2 / n, so for
distinct neurons E[z_i^2 z_k^2] = E[G^^2], E[z_i^2 z_j^2 z_k^2] = E[G^^3] and

* deep linear, Gaussian: E[G^^m] / K^m = mu_m^(l-1), mu_2 = 1 + 2/n, mu_3 = (1 + 2/n)(1 + 4/n);
* ReLU, Gaussian: |relu(z)|^2 / G^ is chi^2 with B ~ Binomial(n, 1/2) degrees of freedom, so
  mu_2 = 4 E[B(B+2)] / n^2 = 1 + 5/n, mu_3 = 8 E[B(B+2)(B+4)] / n^3;
* deep linear, orthogonal (every layer): z is uniform on the sphere of radius^2 n K, so
  E[z_i^2 z_k^2] = K^2 n/(n+2) and E[z_i^2 z_j^2 z_k^2] = K^3 n^2/((n+2)(n+4)).

With E[z^2] = K exactly in all three cases, G1 = G2 = 0, V + V1/n = n^2 (E[z_i^2 z_k^2]/K^2 - 1) K^2
through 1/n, and U6 = n^2 kappa(z_i^2, z_j^2, z_k^2) at leading order.
"""

import json

import numpy as np
import pytest
import sympy

from fwtheory import Network, NumericalError, ParameterError, predict
from fwtheory.next_order import _hermite_even, moment_values
from fwtheory.symbolic.symbols import GaussianMoment

N = sympy.Symbol("n", positive=True)
LAYERS = np.arange(1, 11)


def _coefficients(expr):
    """Coefficients of 1/n, 1/n^2 of a function of n that tends to a constant."""
    eps = sympy.Symbol("eps", positive=True)
    ser = sympy.expand(sympy.series(expr.subs(N, 1 / eps), eps, 0, 3).removeO())
    return [ser.coeff(eps, k) for k in (1, 2)]


def _oracle(mu2, mu3, layer):
    """(V/K^2, V1/K^2, U6/K^3) from E[z_i^2 z_k^2]/K^2 = mu2^(l-1), E[z_i^2 z_j^2 z_k^2]/K^3 = mu3^(l-1)."""
    e22, e222 = mu2 ** (layer - 1), mu3 ** (layer - 1)
    v, v1 = _coefficients(e22 - 1)
    _, u6 = _coefficients(e222 - 3 * e22 + 2)
    return float(v), float(v1), float(u6)


def _binomial_rising(k):
    """E[B (B+2) ... (B+2k-2)] for B ~ Binomial(n, 1/2), k = 2, 3 (falling factorial moments
    E[B(B-1)...(B-r+1)] = n(n-1)...(n-r+1)/2^r)."""
    f = [sympy.Integer(1), N / 2, N * (N - 1) / 4, N * (N - 1) * (N - 2) / 8]
    if k == 2:   # B^2 + 2B = B(B-1) + 3B
        return f[2] + 3 * f[1]
    # B^3 + 6B^2 + 8B = B(B-1)(B-2) + 9 B(B-1) + 15 B
    return f[3] + 9 * f[2] + 15 * f[1]


CASES = {
    "linear gaussian": (Network("linear", depth=10, width=40, C_W=1.3, ensemble="gaussian"),
                        1 + 2 / N, (1 + 2 / N) * (1 + 4 / N)),
    "relu gaussian": (Network("relu", depth=10, width=40, C_W=2.0, ensemble="gaussian"),
                      4 * _binomial_rising(2) / N**2, 8 * _binomial_rising(3) / N**3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_gaussian_moments_reproduced(case):
    net, mu2, mu3 = CASES[case]
    p = predict(net, input_norm=0.7, order=2)
    K = np.asarray(p["K"])
    assert p.order == 2
    for i, layer in enumerate(LAYERS):
        v, v1, u6 = _oracle(mu2, mu3, layer)
        scale = 1e-9 * (1 + abs(v1)) * K[i] ** 2
        assert abs(p["V"][i] - v * K[i] ** 2) <= scale
        assert abs(p["V1"][i] - v1 * K[i] ** 2) <= scale, (layer, p["V1"][i] / K[i] ** 2, v1)
        assert abs(p["U6"][i] - u6 * K[i] ** 3) <= 1e-9 * (1 + abs(u6)) * K[i] ** 3
        assert abs(p["G1"][i]) <= 1e-9 * K[i] and abs(p["G2"][i]) <= 1e-9 * (1 + abs(v1)) * K[i]
    # the closed forms: (1 + 2/n)^(l-1) and (1 + 5/n)^(l-1)
    c = 2 if case.startswith("linear") else 5
    assert np.allclose(p["V"] / K**2, c * (LAYERS - 1), atol=1e-9)
    assert np.allclose(p["V1"] / K**2, c**2 / 2 * (LAYERS - 1) * (LAYERS - 2), atol=1e-8)


def test_exact_orthogonal_moments_reproduced():
    """E[z_i^2 z_k^2] - K^2 = -2K^2/(n+2) at every layer: V = -2K^2, V1 = 4K^2; U6 = 16K^3."""
    p = predict(Network("linear", depth=10, width=40, C_W=0.8, ensemble="orthogonal"), order=2)
    K = np.asarray(p["K"])
    v, v1 = _coefficients(-2 / (N + 2))
    e22, e222 = N / (N + 2), N**2 / ((N + 2) * (N + 4))
    _, u6 = _coefficients(e222 - 3 * e22 + 2)
    assert (v, v1, u6) == (-2, 4, 16)
    np.testing.assert_allclose(p["V"], -2 * K**2, rtol=1e-12)
    np.testing.assert_allclose(p["V1"], 4 * K**2, rtol=1e-10)
    np.testing.assert_allclose(p["U6"], 16 * K**3, rtol=1e-10)
    assert np.all(np.abs(p["G2"]) <= 1e-10 * K)


def test_finite_width_series_through_second_order():
    net = Network("linear", depth=6, width=16, C_W=1.0)
    p = predict(net, order=2)
    fw1, fw2 = p.finite_width(order=1), p.finite_width(order=2)
    n = 16.0
    exact = (1 + 2 / n) ** (LAYERS[:6] - 1) - 1          # Cov(z_i^2, z_k^2)/K^2, K = 1
    # the 1/n^2 truncation is closer to the exact covariance than the 1/n one (layers >= 3)
    err1 = np.abs(fw1["Cov(z_i^2, z_k^2)"] - exact)[2:]
    err2 = np.abs(fw2["Cov(z_i^2, z_k^2)"] - exact)[2:]
    assert np.all(err2 < err1 / 4)
    assert "kappa(z_i^2, z_j^2, z_k^2)" in fw2 and "kappa(z_i^2, z_j^2, z_k^2)" not in fw1
    with pytest.raises(ParameterError, match="order"):
        predict(net).finite_width(order=2)


def test_mpmath_order2_matches_float64():
    net = Network("tanh", depth=5, width=32, C_W=1.0, C_b=0.05)
    a, b = predict(net, order=2), predict(net, order=2, precision="mpmath")
    for k in ("G2", "V1", "U6"):
        np.testing.assert_allclose(np.asarray(b[k], float), a[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dk", [3, 4])
def test_high_K_derivatives_by_the_hermite_identity(dk):
    """sigma(z) = z^2: <sigma^2>_K = 3K^2, <sigma^4>_K = 105 K^4, <sigma^2 z^2>_K = 15 K^3;
    d^3/dK^3 and d^4/dK^4 in closed form."""
    K = np.array([0.3, 1.0, 2.5])
    moms = [GaussianMoment((2, 0, 0, 0, 0), dk), GaussianMoment((4, 0, 0, 0, 0), dk),
            GaussianMoment((2, 0, 0, 0, 2), dk)]
    got = moment_values("z**2", K, moms)
    kk = sympy.Symbol("kk", positive=True)
    for value, closed in zip(got, (3 * kk**2, 105 * kk**4, 15 * kk**3)):
        want = [float(sympy.diff(closed, kk, dk).subs(kk, x)) for x in K]
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9)
    assert _hermite_even(2) == ((0, 3), (2, -6), (4, 1))          # He_4


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(order=3), "order"), (dict(order=0), "order"), (dict(order=True), "order"),
    (dict(order=2.5), "order"),
])
def test_bad_order(kwargs, parameter):
    with pytest.raises(ParameterError) as err:
        predict(Network("tanh", depth=3, width=16), **kwargs)
    assert err.value.parameter == parameter


@pytest.mark.parametrize("net", [Network("tanh", depth=3, width=16, ensemble="uniform"),
                                 Network("tanh", depth=3, width=16, residual=0.5)])
def test_order2_refused_where_not_derived(net):
    with pytest.raises(ParameterError) as err:
        predict(net, order=2)
    assert err.value.parameter in ("ensemble", "residual", "order", "layer")


def test_order2_overflow_is_a_numerical_error():
    with pytest.raises(NumericalError):
        predict(Network("linear", depth=400, width=16, C_W=30.0), order=2)


def test_json_and_cli(capsys):
    from fwtheory.cli import main

    p = predict(Network("relu", depth=4, width=32, C_W=2.0), order=2)
    d = p.to_dict()
    assert d["order"] == 2 and len(d["V1"]) == 4 and "U6/K^3" in d["ratios"]
    assert "finite_width_order2" in d and "order" not in predict(Network("relu", depth=2, width=8)).to_dict()
    assert main(["predict", "--activation", "relu", "--cw", "2", "--depth", "4", "--order", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["V1"], d["V1"])
    assert main(["predict", "--depth", "3", "--order", "2"]) == 0
    table = capsys.readouterr().out
    assert "V1/K^2" in table and "1/n^2 coefficients" in table
    assert main(["predict", "--order", "2", "--ensemble", "rademacher"]) == 2
