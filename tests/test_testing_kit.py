"""The property-based testing kit (fwtheory.testing): the documented example
runs as written, the strategies produce what they promise, and the assertion
fails loudly with a per-layer table."""

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fwtheory.testing as kit
from fwtheory import Network
from fwtheory.kernel import criticality
from fwtheory.testing import (activations, assert_theory_matches_simulation, critical_networks,
                              input_grams, networks)


def _documented_example(marker="Example ("):
    """The code block after ``marker`` in the fwtheory.testing docstring."""
    doc = kit.__doc__
    block = doc[doc.index(marker):].split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_documented_example():
    """Runs the module docstring's example test exactly as written."""
    source = _documented_example()
    assert "assert_theory_matches_simulation" in source and "@given" in source
    namespace = {}
    exec(compile(source, "fwtheory.testing docstring", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()


def test_documented_order2_example():
    """Runs the docstring's order-1/n^2 example exactly as written."""
    source = _documented_example("Example at order 1/n^2")
    assert "order=2" in source
    namespace = {}
    exec(compile(source, "fwtheory.testing docstring (order 2)", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()


@settings(max_examples=30, deadline=None)
@given(kit.simulation_networks(depth=st.integers(1, 3), width=st.sampled_from((4, 8))))
def test_simulation_networks_draw_every_ensemble_and_residual_scales(net):
    assert net.ensemble in kit.SIMULATED_ENSEMBLES
    assert net.residual is None or 0.05 <= net.residual <= 1.0


def test_simulation_networks_cover_the_new_ensembles_and_run():
    from hypothesis import Phase, find

    from fwtheory.mc import simulate

    for ensemble in ("uniform", "rademacher"):
        net = find(kit.simulation_networks(depth=st.just(2), width=st.just(4)),
                   lambda n, e=ensemble: n.ensemble == e and n.residual is not None,
                   settings=settings(max_examples=500, database=None, phases=[Phase.generate]))
        sim = simulate(net, samples=20, seed=0)
        assert np.all(np.isfinite(sim.values["K"]))


def test_order2_assertion_catches_a_wrong_next_order_term(monkeypatch):
    """V1 with the wrong sign must be caught through 1/n^2 (deep linear, exact V1 = 2(l-1)(l-2) K^2)."""
    import importlib

    predict_module = importlib.import_module("fwtheory.prediction")
    real = predict_module.predict

    def wrong_predict(network, input_norm=1.0, **kw):
        p = real(network, input_norm=input_norm, **kw)
        return type(p)(p.network, p.input_norm, p.layers, dict(p.values, V1=-np.asarray(p.values["V1"])),
                       p.precision, p.order)

    net = Network("linear", depth=6, width=8)
    kit.assert_theory_matches_simulation(net, quantities=("K", "V"), order=2, samples=100000, seed=1,
                                         rel_tol=0.0)
    monkeypatch.setattr(predict_module, "predict", wrong_predict)
    with pytest.raises(AssertionError, match="V at layers"):
        kit.assert_theory_matches_simulation(net, quantities=("V",), order=2, samples=100000, seed=1,
                                             rel_tol=0.0)
    with pytest.raises(kit_parameter_error()):
        kit.assert_theory_matches_simulation(net, order=2, widths=[8, 16])


def kit_parameter_error():
    from fwtheory.errors import ParameterError

    return ParameterError


# ------------------------------------------------------------ strategies
@settings(max_examples=25, deadline=None)
@given(input_grams(st.integers(1, 4)))
def test_input_grams_are_symmetric_positive_definite(G):
    assert G.shape[0] == G.shape[1] and np.array_equal(G, G.T)
    assert np.linalg.eigvalsh(G).min() > 0


@settings(max_examples=25, deadline=None)
@given(networks())
def test_networks_are_valid_and_square(net):
    assert isinstance(net, Network)
    assert 1 <= net.depth <= 4 and net.input_dim == net.width
    assert net.first_layer == net.ensemble


@settings(max_examples=20, deadline=None)
@given(critical_networks())
def test_critical_networks_sit_at_the_critical_point(net):
    crit = criticality(net.activation)
    assert (net.C_b, net.C_W) == pytest.approx((crit.C_b, crit.C_W))
    assert crit.universality_class != "none"


@settings(max_examples=20, deadline=None)
@given(activations(names=("tanh", "relu"), leaky_slope=st.just(0.25)))
def test_activations_draw_from_the_given_names(act):
    assert act.name in ("tanh", "relu", "leaky_relu(0.25)")


def test_critical_point_of_an_activation_without_one():
    with pytest.raises(ValueError, match="no critical"):
        kit.critical_point("sigmoid")


# ------------------------------------------------------------ the assertion
def test_assertion_fails_with_a_per_layer_table(monkeypatch):
    """A theory with V twice too large must be caught, layer by layer."""
    import importlib

    predict_module = importlib.import_module("fwtheory.prediction")
    real = predict_module.predict

    def wrong_predict(network, input_norm=1.0, **kw):
        p = real(network, input_norm=input_norm, **kw)
        values = dict(p.values, V=np.asarray(p.values["V"]) * 2.0)
        return type(p)(p.network, p.input_norm, p.layers, values, p.precision)

    monkeypatch.setattr(predict_module, "predict", wrong_predict)
    net = Network("relu", depth=3, width=32, C_W=2.0)
    with pytest.raises(AssertionError) as info:
        assert_theory_matches_simulation(net, quantities=("V", "F"), samples=4000, seed=0)
    message = str(info.value)
    assert "V at layers 2, 3" in message
    assert "layer" in message and "verdict" in message and message.count("disagree") >= 2
    assert "F at" not in message.splitlines()[0]


def test_assertion_returns_the_comparison_when_everything_agrees():
    net = Network("linear", depth=3, width=32)
    c = assert_theory_matches_simulation(net, quantities="V/K^2", samples=1000, seed=0, layers=[2, 3])
    assert c.agrees(["V/K^2"], layers=[2, 3])


# ------------------------------------------------------------ several inputs
def test_documented_gram_example():
    """Runs the docstring's several-input example exactly as written."""
    source = _documented_example("Example with several inputs")
    assert "gram=gram" in source and "input_grams" in source
    namespace = {}
    exec(compile(source, "fwtheory.testing docstring (several inputs)", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_input_grams_with_a_common_cosine_and_drawn_norms(data):
    m = data.draw(st.integers(2, 4))
    c = data.draw(st.sampled_from([-0.3, 0.0, 0.2, 0.8]))
    G = data.draw(input_grams(m=m, cosines=c, norms=st.floats(0.5, 2.0)))
    q = np.diag(G)
    assert G.shape == (m, m) and np.all((q >= 0.5) & (q <= 2.0))
    rho = G / np.sqrt(np.outer(q, q))
    np.testing.assert_allclose(rho[~np.eye(m, dtype=bool)], c, atol=1e-12)
    assert np.linalg.eigvalsh(G).min() > 0


def test_gram_assertion_catches_a_wrong_V_between_inputs(monkeypatch):
    """A multi-input theory with V_abcd 1.5 times too large off the diagonal is caught, per index tuple."""
    import importlib

    predict_module = importlib.import_module("fwtheory.prediction")
    real = predict_module.predict

    def wrong_predict(network, gram=None, **kw):
        p = real(network, gram=gram, **kw)
        V = np.array(p.values["V"])
        V[:, 0, 1, 0, 1] *= 1.5
        V[:, 1, 0, 1, 0] = V[:, 0, 1, 1, 0] = V[:, 1, 0, 0, 1] = V[:, 0, 1, 0, 1]
        return type(p)(p.network, p.gram, p.layers, dict(p.values, V=V))

    monkeypatch.setattr(predict_module, "predict", wrong_predict)
    net = Network("tanh", depth=3, width=32)
    with pytest.raises(AssertionError) as info:
        assert_theory_matches_simulation(net, gram=[[1.0, 0.5], [0.5, 1.0]], quantities="V", samples=3000, seed=0)
    first = str(info.value).splitlines()[0]
    assert "V_0101 at layers 2, 3" in first and "V_0000" not in first and "V_0011" not in first
    with pytest.raises(kit_errors().ParameterError, match="order"):
        assert_theory_matches_simulation(net, gram=[[1.0, 0.5], [0.5, 1.0]], order=2)


def kit_errors():
    import fwtheory.errors

    return fwtheory.errors
