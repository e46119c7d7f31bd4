"""saturation with several inputs (fwtheory.saturation_multi): the normalized
ratios reduce to the single-input ones on the diagonal, the deep linear network's
V_abab/(K_aa K_bb) = (l - 1)(1 + cos^2) is classified as linear growth with that
slope, orthogonal tanh saturates, ReLU's G1 is zero, the cosine scan, and the CLI."""

import argparse
import json

import numpy as np
import pytest

from fwtheory.depth_saturation import DECAYING, GROWING, SATURATING, ZERO_KIND, saturation
from fwtheory.errors import ParameterError
from fwtheory.prediction import predict
from fwtheory.saturation_multi import gram_ratios, ratio_definition

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAM = [[1.0, 0.5], [0.5, 1.0]]


@pytest.fixture(scope="module")
def tanh_report():
    return saturation(depth=20, extended_depth=400, gram=GRAM, ensembles=("gaussian", "orthogonal"))


def test_ratio_definitions():
    assert ratio_definition("V", (0, 1, 0, 1)) == "V_0101 / (K_00 K_11)"
    assert ratio_definition("V", (0, 0, 0, 0)) == "V_0000 / K_00^2"
    assert ratio_definition("D", (0, 0, 1, 1)) == "D_0011 / (K_11 Theta_00)"
    assert ratio_definition("G1", (0, 1)) == "G1_01 / (K_00^(1/2) K_11^(1/2))"


def test_diagonal_ratios_are_the_single_input_ratios(tanh_report):
    """r_0000 of the two-input theory equals the single-input V/K^2, ... at q0 = G_00."""
    single = predict(tanh_report.theory["gaussian"].network, input_norm=1.0)
    r = tanh_report.ratios["gaussian"]
    for label, name in (("V_0000", "V/K^2"), ("G1_00", "G1/K"), ("Theta1_11", "Theta1/Theta"),
                        ("A_0000", "A/Theta^2"), ("B_1111", "B/Theta^2"), ("D_0000", "D/(K Theta)"),
                        ("F_1111", "F/(K Theta)")):
        np.testing.assert_allclose(r[label][1:], single.ratios[name][1:], rtol=1e-8, atol=1e-12, err_msg=label)


def test_tanh_classes(tanh_report):
    g, o = tanh_report.behaviour["gaussian"], tanh_report.behaviour["orthogonal"]
    # one input (PDLT Sec. 5.4.2; Day, Kahn, Roberts arXiv:2310.07765): slope 2/3, and -2
    assert g["V_0000"].kind == GROWING and abs(g["V_0000"].slope - 2 / 3) < 2e-3
    assert o["V_0000"].kind == SATURATING and abs(o["V_0000"].asymptote + 2) < 1e-2
    # between the inputs: Gaussian grows linearly, orthogonal saturates (at a negative value)
    assert g["V_0101"].kind == GROWING and g["V_0101"].slope > 2 / 3
    assert o["V_0101"].kind == SATURATING and o["V_0101"].asymptote < 0
    assert o["A_0000"].kind == DECAYING


def test_deep_linear_V_between_inputs_grows_with_slope_one_plus_cos_squared():
    """Linear sigma, C_b = 0, C_W = 1, Gaussian: K_ab = G_ab and
    V' = V + K_ac K_bd + K_ad K_bc, so V_abab/(K_aa K_bb) = (l - 1)(1 + c^2) exactly."""
    for c in (0.2, 0.5):
        report = saturation("linear", depth=20, extended_depth=200, gram=[[1.0, c], [c, 1.0]],
                            ensembles="gaussian")
        r = report.ratios["gaussian"]["V_0101"]
        l = np.arange(1, 201)
        np.testing.assert_allclose(r, (l - 1) * (1 + c * c), rtol=1e-10, atol=1e-12)
        b = report.behaviour["gaussian"]["V_0101"]
        assert b.kind == GROWING and abs(b.slope - (1 + c * c)) < 1e-8
        assert report.behaviour["gaussian"]["G1_01"].kind == ZERO_KIND
        scan = report.cosine["gaussian"]
        d = np.asarray(scan["depths"], float)[:, None]
        cos = np.asarray(scan["cosines"])[None, :]
        np.testing.assert_allclose(scan["values"]["V_0101"], (d - 1) * (1 + cos ** 2), rtol=1e-10, atol=1e-12)


def test_relu_diagonal_G1_is_zero_and_the_imprecise_deep_layers_are_left_out(tanh_report):
    """ReLU: G1_00 = 0 (one input), G1_01 != 0 (the arc-cosine kernel map is curved
    off the diagonal); the correlation of the inputs -> 1 with depth and the layers
    with 1 - rho < 0.02 are not used (saturation_multi docstring)."""
    report = saturation("relu", C_W=2.0, depth=10, extended_depth=200, gram=GRAM, ensembles="gaussian")
    b = report.behaviour["gaussian"]
    assert b["G1_00"].kind == ZERO_KIND and b["G1_01"].kind != ZERO_KIND
    assert b["V_0000"].kind == GROWING and abs(b["V_0000"].slope - 5.0) < 1e-6      # single input: V/K^2 = 5(l-1)
    assert 10 <= b["V_0101"].extended_depth < 200
    assert any("lose precision" in n for n in report.notes)
    # tanh, C_b = 0: K_01 = 0 for orthogonal inputs at every layer (odd sigma), and so is its 1/n correction
    scan = tanh_report.cosine["gaussian"]
    j = scan["cosines"].index(0.0)
    assert np.all(np.abs(scan["values"]["G1_01"][:, j]) < 1e-12)
    assert np.all(scan["values"]["V_0101"][:, j] > 0)


def test_refusals():
    with pytest.raises(ParameterError, match="simulate"):
        saturation(depth=10, gram=GRAM, simulate=True)
    with pytest.raises(ParameterError, match="gram"):
        saturation(depth=10, gram=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ParameterError, match="input_norm"):
        saturation(depth=10, gram=GRAM, input_norm=2.0)


def _cli(argv):
    from fwtheory.cli import saturation as cmd

    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["saturation"] + argv)
    return args.func(args)


def test_cli_gram_writes_figures_and_json(tmp_path, capsys):
    argv = ["--gram", "1,0.5;0.5,1", "--depth", "10", "--extended-depth", "100", "--ensembles", "orthogonal",
            "--out-dir", str(tmp_path)]
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert "V_0101 / (K_00 K_11)" in out and "against their cosine" in out
    for png in ("saturation_gram.png", "saturation_gram_cosine.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_SIGNATURE
    data = json.loads((tmp_path / "saturation_gram.json").read_text())
    assert data["gram"] == GRAM and data["extended_depth"] == {"orthogonal": 100}
    res = data["results"]["orthogonal"]["V_0101"]
    assert res["definition"] == "V_0101 / (K_00 K_11)" and len(res["theory"]) == 10
    assert res["behaviour"]["kind"] == SATURATING
    cs = data["cosine_scan"]["orthogonal"]
    assert len(cs["values"]["V_0101 / (K_00 K_11)"]) == len(cs["depths"])
    assert _cli(argv[:8] + ["--json", "--no-files"]) == 0
    assert list(json.loads(capsys.readouterr().out)["results"]) == ["orthogonal"]


@pytest.mark.parametrize("extra, name", [(["--simulate"], "simulate"), (["--gram", "1,2;2,1"], "gram")])
def test_cli_bad_gram_input_exits_2(extra, name, capsys):
    from fwtheory.cli import main

    base = ["saturation", "--depth", "10", "--no-files"]
    argv = base + (extra if extra[0] == "--gram" else ["--gram", "1,0.5;0.5,1"] + extra)
    assert main(argv) == 2
    assert name in capsys.readouterr().err
