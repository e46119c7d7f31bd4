import math

import pytest

from fwtheory import Network, ParameterError


def test_defaults_and_dict():
    net = Network("tanh", depth=5, width=32)
    assert net.input_dim == 32 and net.first_layer == "gaussian"
    d = net.to_dict()
    assert d["activation"] == "tanh" and d["C_W"] == 1.0
    assert Network(**d) == net


@pytest.mark.parametrize("kw, param", [
    (dict(width=0), "width"), (dict(width=-3), "width"), (dict(depth=0), "depth"),
    (dict(C_W=0.0), "C_W"), (dict(C_W=-1.0), "C_W"), (dict(C_b=-0.1), "C_b"),
    (dict(C_b=math.nan), "C_b"), (dict(lambda_W=math.inf), "lambda_W"),
    (dict(lambda_b=-1), "lambda_b"), (dict(ensemble="haar"), "ensemble"),
    (dict(first_layer="orthogonal", input_dim=10), "first_layer"),
    (dict(activation="nope"), "activation"), (dict(width=2.5), "width"),
])
def test_bad_input_names_parameter(kw, param):
    base = dict(activation="tanh", depth=3, width=8)
    base.update(kw)
    with pytest.raises(ParameterError) as info:
        Network(**base)
    assert info.value.parameter == param
    assert str(info.value).startswith(param)


def test_orthogonal_first_layer_default_follows_ensemble():
    net = Network("tanh", depth=3, width=8, ensemble="orthogonal")
    assert net.first_layer == "orthogonal"
    assert net.replace(ensemble="gaussian").first_layer == "gaussian"
    with pytest.raises(ParameterError, match="first_layer"):
        Network("tanh", depth=3, width=8, input_dim=4, ensemble="orthogonal")
    assert Network("tanh", depth=3, width=8, input_dim=4, ensemble="orthogonal",
                   first_layer="gaussian").first_layer == "gaussian"


def test_replace_width_keeps_square_input():
    net = Network("tanh", depth=3, width=8, ensemble="orthogonal")
    wider = net.replace(width=16)
    assert wider.input_dim == 16 and wider.first_layer == "orthogonal"
    rect = Network("tanh", depth=3, width=8, input_dim=5)
    assert rect.replace(width=16).input_dim == 5
