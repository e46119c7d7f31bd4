import subprocess
import sys

import numpy as np
import pytest
import sympy

from fwtheory.activations import BUILTIN_NAMES, Z, get_activation
from fwtheory.errors import ParameterError

NAMES = [n for n in BUILTIN_NAMES] + ["leaky_relu(0.3)", "z*tanh(z)", "Max(0, z)**2", "exp(-z**2)"]


@pytest.mark.parametrize("name", NAMES)
def test_numeric_derivatives_match_sympy(name):
    act = get_activation(name)
    x = np.linspace(-4.0, 4.0, 17) + 0.013  # avoid evaluating exactly at a kink
    got = act.derivatives(x, 3)
    for k, expr in enumerate(act.sympy_derivatives):
        ref = np.array([float(expr.subs(Z, xx).evalf(30)) for xx in x])
        np.testing.assert_allclose(got[k], ref, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_derivatives_keep_relative_accuracy_near_zero_and_far_out(name):
    # tiny-K layers evaluate sigma'' and sigma''' at |z| ~ 1e-8, where forms such as
    # 1 - 2 sigmoid(z) cancel (predict then failed for swish at depth ~17)
    act = get_activation(name)
    x = np.array([1e-8, -1e-8, 3e-5, -3e-5, 0.02, -0.02, 25.0, -25.0])
    got = act.derivatives(x, 3)
    for k, expr in enumerate(act.sympy_derivatives):
        ref = np.array([float(expr.subs(Z, sympy.Float(xx, 60)).evalf(60)) for xx in x])
        np.testing.assert_allclose(got[k], ref, rtol=1e-12, atol=0, err_msg=f"{name}, derivative {k}")


def test_kinks():
    assert get_activation("relu").kinks == (0.0,)
    assert get_activation("leaky_relu(0.1)").kinks == (0.0,)
    assert get_activation("tanh").kinks == ()
    assert get_activation("Max(z, 1) - 1").kinks == (1.0,)
    assert get_activation("Abs(z + 2)").kinks == (-2.0,)


def test_taylor_coefficients_tanh():
    # tanh z = z - z^3/3 + 2 z^5/15: sigma_3 = -2, sigma_5 = 16
    assert get_activation("tanh").taylor_coefficients(5) == pytest.approx([0, 1, 0, -2, 0, 16])


@pytest.mark.parametrize("bad", ["foo", "z + y", "", "log(z)", "tanh(0.5)", "relu(2)", "leaky_relu(-1)"])
def test_bad_activation_names_the_parameter(bad):
    with pytest.raises(ParameterError, match="activation"):
        get_activation(bad)


def test_sympy_expression_input():
    z = sympy.Symbol("z")
    act = get_activation(z * sympy.tanh(z))
    assert act(np.array([1.0]))[0] == pytest.approx(np.tanh(1.0))


def test_import_is_light():
    code = "import sys, fwtheory; fwtheory.get_activation('tanh')([0.1]); print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_function_call_syntax():
    # "tanh(z)" is the built-in; "tanh(2*z)" is a custom expression
    assert get_activation("tanh(z)") == get_activation("tanh")
    assert get_activation("tanh(z)").code == 3
    custom = get_activation("tanh(2*z)")
    assert custom.code == -1 and custom(np.array([0.3]))[0] == pytest.approx(np.tanh(0.6))
    with pytest.raises(ParameterError, match="activation"):
        get_activation("relu(z*2)")


def test_lazy_exports_are_not_shadowed_by_submodules():
    import importlib

    import fwtheory

    for mod in ("prediction", "comparison", "depth_saturation", "exact", "asymptotics", "kernel",
                "symbolic", "mc", "testing", "validation"):
        importlib.import_module(f"fwtheory.{mod}")
    for name in ("predict", "compare", "saturation", "simulate", "derive", "validate", "criticality"):
        assert callable(getattr(fwtheory, name)) and not isinstance(getattr(fwtheory, name), type(fwtheory)), name
