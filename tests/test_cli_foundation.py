"""`fwtheory kernel` and `fwtheory criticality` as a user runs them (subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fwtheory import Network
from fwtheory.kernel import infinite_width

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fwtheory", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_criticality_table_has_8_significant_digits():
    out = run("criticality", "--activation", "gelu")
    assert out.returncode == 0, out.stderr
    assert "half-stable" in out.stdout
    for digits in ("0.17292239", "1.9830582", "3.561552"):
        assert digits in out.stdout


def test_criticality_json():
    out = run("criticality", "--activation", "leaky_relu(0.5)", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["universality_class"] == "scale-invariant"
    assert d["C_b"] == 0.0 and d["C_W"] == pytest.approx(2 / 1.25, rel=1e-14) and d["K_star"] is None


def test_kernel_json_matches_the_library():
    args = ["--activation", "tanh", "--depth", "6", "--cb", "0.1", "--cw", "1.5", "--lambda-b", "0.2",
            "--input-norm", "0.7"]
    out = run("kernel", *args, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    ref = infinite_width(Network("tanh", depth=6, width=64, C_b=0.1, C_W=1.5, lambda_b=0.2), input_norm=0.7)
    for key in ("K", "Theta", "chi_parallel", "chi_perp"):
        np.testing.assert_allclose(d[key], getattr(ref, key), rtol=1e-15)
    table = run("kernel", *args)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[1].split() == ["layer", "K", "Theta", "chi_par", "chi_perp"]
    assert len(lines) == 3 + 6 and lines[-1].split()[0] == "6"


@pytest.mark.parametrize("args, parameter", [
    (["predict", "--width", "-3"], "width"),
    (["predict", "--width", "1"], "width"),      # n >= 2 everywhere, as in simulate
    (["kernel", "--cw", "0"], "C_W"),
    (["kernel", "--cb", "nan"], "C_b"),
    (["kernel", "--input-norm", "inf"], "input_norm"),
    (["predict", "--first-layer", "orthogonal", "--input-dim", "3"], "first_layer"),
    (["criticality", "--activation", "foo"], "activation"),
])
def test_bad_input_is_one_line_exit_2(args, parameter):
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"error: {parameter}:" in lines[0]
    assert out.stdout == ""


@pytest.mark.parametrize("option", ["--width", "--input-dim", "--ensemble", "--first-layer"])
def test_kernel_refuses_options_that_have_no_effect(option):
    value = "orthogonal" if option in ("--ensemble", "--first-layer") else "3"
    out = run("kernel", "--depth", "2", option, value)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"fwtheory: error: unrecognized arguments: {option} {value}"
