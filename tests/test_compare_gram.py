"""compare with several inputs (fwtheory.comparison_multi): two identical inputs
reproduce the single-input comparison number for number, a two-input tanh
network at n = 32 agrees with the theory at the stated tolerance, the
width-extrapolated basis, refusals, and the CLI (`fwtheory compare --gram`)."""

import argparse
import json

import numpy as np
import pytest

from fwtheory import Network
from fwtheory.comparison import compare
from fwtheory.comparison_multi import GramComparison, compare_gram
from fwtheory.errors import ParameterError
from fwtheory.mc import simulate
from fwtheory.prediction import predict

NET = Network("tanh", depth=3, width=16)
GRAM = [[1.0, 0.5], [0.5, 1.0]]


@pytest.fixture(scope="module")
def identical():
    """(two-input comparison with identical inputs, single-input comparison)."""
    two = compare(predict(NET, gram=[[1.0, 1.0], [1.0, 1.0]]),
                  simulate(NET, samples=300, seed=3, gram=[[1.0, 1.0], [1.0, 1.0]]))
    one = compare(predict(NET), simulate(NET, samples=300, seed=3))
    return two, one


def test_two_identical_inputs_give_the_single_input_numbers(identical):
    two, one = identical
    assert isinstance(two, GramComparison) and two.basis == one.basis == "finite-width"
    for name in two.names:
        for j, comp in enumerate(two.components[name]):
            for field in ("theory", "measured", "errors", "zscores"):
                a, b = getattr(two, field)[name][:, j], getattr(one, field)[name]
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{field} {name}{comp}")
            assert list(two.verdicts[name][:, j]) == list(one.verdicts[name])


def test_two_input_tanh_at_width_32_agrees_with_the_theory():
    """cos 0.5, n = 32, depth 3, 3000 networks: every index tuple of every correlator
    within 4 SE + 5% (z = 4 for ~170 numbers, see compare's docstring), except the
    diagonal NTK variance A_0000 = A_1111 at layer 3: that is the single-input A, which
    misses at n = 32 (its O(1/n^2) terms, tests/test_compare.py) - input 0 sees the
    random numbers of the single-input run, so the miss is the same number."""
    net = Network("tanh", depth=3, width=32)
    result = compare(predict(net, gram=GRAM), simulate(net, samples=3000, seed=0, gram=GRAM), z=4.0,
                     rel_tol=0.05)
    assert result.agrees(names=[k for k in result.names if k != "A"]), result.table()
    assert {(c, l) for _, c, l in result.failures(names="A")} <= {((0, 0, 0, 0), 3), ((1, 1, 1, 1), 3)}
    assert result.agrees(names="A", layers=[1, 2]), result.table(names="A")
    single = compare(predict(net), simulate(net, samples=3000, seed=0), z=4.0, rel_tol=0.05)
    j = result.components["A"].index((0, 0, 0, 0))
    np.testing.assert_allclose(result.measured["A"][:, j], single.measured["A"], rtol=1e-9)
    assert list(result.verdicts["A"][:, j]) == list(single.verdicts["A"])
    # a wrong theory is caught: V_0101 50% too large disagrees
    j = result.components["V"].index((0, 1, 0, 1))
    shifted = result.theory["V"][1:, j] * 1.5
    assert np.all(np.abs(result.measured["V"][1:, j] - shifted)
                  > 4 * result.errors["V"][1:, j] + 0.05 * np.abs(shifted))


def test_width_extrapolated_basis_and_refusals():
    net = Network("relu", depth=2, width=16, C_W=2.0)
    pred = predict(net, gram=GRAM)
    sim = simulate(net, samples=200, seed=1, gram=GRAM, widths=[16, 32])
    result = compare(pred, sim)
    assert result.basis == "width-extrapolated" and result.widths == (16, 32)
    assert [c.widths for c in result.per_width] == [(16,), (32,)]
    assert set(np.unique(result.fits["V"])) <= {2, 3}
    j = result.components["K"].index((0, 1))
    np.testing.assert_array_equal(result.theory["K"][:, j], pred.values["K"][:2, 0, 1])   # leading K
    with pytest.raises(ParameterError, match="gram"):
        compare(predict(net), sim)
    with pytest.raises(ParameterError, match="gram"):
        compare_gram(predict(net, gram=[[1.0, 0.2], [0.2, 1.0]]), sim)
    with pytest.raises(ParameterError, match="quantities"):
        result.resolve_names(["V/K^2"])


def _cli(argv):
    from fwtheory.cli import compare as cmd

    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare"] + argv)
    return args.func(args)


def test_cli_gram_json_shape_and_table(capsys, tmp_path):
    argv = ["--gram", "1,0.5;0.5,1", "--depth", "2", "--width", "16", "--samples", "200", "--seed", "1"]
    assert _cli(argv + ["--json", "--plot", str(tmp_path / "g.png")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gram"] == GRAM and data["inputs"] == 2 and data["basis"] == "finite-width"
    assert set(data["quantities"]) == {"K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B"}
    assert set(data["quantities"]["K"]) == {"00", "01", "11"}
    assert len(data["quantities"]["V"]) == 6 and len(data["quantities"]["F"]) == 12
    entry = data["quantities"]["V"]["0101"]
    assert entry["index"] == [0, 1, 0, 1] and len(entry["theory"]) == 2 and len(entry["verdict"]) == 2
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _cli(argv + ["--quantities", "V"]) == 0
    out = capsys.readouterr().out
    assert "index" in out and "0101" in out and "agree" in out


@pytest.mark.parametrize("extra, name", [
    (["--gram", "1,2;3"], "gram"),                      # not square
    (["--gram", "1,2;2,1"], "gram"),                    # not positive semi-definite
    (["--gram", "1,a;a,1"], "gram"),
    (["--gram", "1,0.5;0.5,1", "--order", "2"], "order"),
    (["--gram", "1,0.5;0.5,1", "--input-norm", "2"], "input_norm"),
])
def test_cli_bad_gram_exits_2(extra, name, capsys):
    from fwtheory.cli import main

    assert main(["compare", "--depth", "2", "--width", "8", "--samples", "10"] + extra) == 2
    assert name in capsys.readouterr().err
