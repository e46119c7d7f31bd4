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


def _documented_example():
    """The code block after "Example" in the fwtheory.testing docstring."""
    doc = kit.__doc__
    block = doc[doc.index("Example"):].split("::\n", 1)[1]
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
