"""Phase diagram (fwtheory.phase): edge of chaos, fixed points, Jacot coordinates, NTK profiles."""

import math

import numpy as np
import pytest

from fwtheory import gauss, phase
from fwtheory.errors import ParameterError


@pytest.mark.parametrize("C_b", [0.0, 0.1, 0.5, 2.0])
def test_relu_edge_of_chaos_is_C_W_2_for_every_C_b(C_b):
    assert phase.edge_of_chaos("relu", C_b) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("C_b, C_W", [(0.05, 1.761), (0.1, 1.986), (0.3, 2.505)])
def test_tanh_edge_of_chaos_points(C_b, C_W):
    w = phase.edge_of_chaos("tanh", C_b)
    assert abs(w - C_W) < 1e-3
    q = phase.fixed_point("tanh", C_b, w)
    s2, t2 = gauss.expect_monomials("tanh", q, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    assert C_b + w * s2 == pytest.approx(q, rel=1e-12)       # q* is a fixed point
    assert w * t2 == pytest.approx(1.0, abs=1e-9)            # chi_perp(q*) = 1


def test_tanh_edge_at_zero_bias_is_the_K_star_zero_point():
    assert phase.edge_of_chaos("tanh", 0.0) == 1.0           # PDLT Sec. 5.3.3: C_W = 1/sigma_1^2
    assert phase.edge_of_chaos("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-14)


def test_sigmoid_edge_only_near_C_W_103():
    w = phase.edge_of_chaos("sigmoid", 0.0)
    q = phase.fixed_point("sigmoid", 0.0, w)
    assert w == pytest.approx(103.0076, abs=1e-3)
    assert q == pytest.approx(45.6243, abs=1e-3)
    assert phase.chi_at("sigmoid", w, q)[1] == pytest.approx(1.0, abs=1e-9)
    # far below: ordered
    assert phase.chi_at("sigmoid", 20.0, phase.fixed_point("sigmoid", 0.0, 20.0))[1] < 0.5


def test_edge_does_not_exist_gives_none():
    # GELU below its half-stable C_b (0.1729, PDLT Sec. 5.3.4): q* jumps, chi_perp never equals 1
    assert phase.edge_of_chaos("gelu", 0.1) is None
    w = phase.edge_of_chaos("gelu", 0.3)
    assert w is not None and phase.chi_at("gelu", w, phase.fixed_point("gelu", 0.3, w))[1] == \
        pytest.approx(1.0, abs=1e-8)
    # linear: chi_perp = C_W whatever q* (which diverges for C_W >= 1 when C_b > 0), as ReLU
    assert phase.edge_of_chaos("linear", 0.1) == pytest.approx(1.0, rel=1e-12)


def test_fixed_point_limits():
    assert phase.fixed_point("relu", 0.1, 2.5) == math.inf       # K grows without bound
    assert phase.fixed_point("tanh", 0.0, 0.5) == 0.0            # K flows to 0
    assert phase.fixed_point("relu", 0.3, 1.0) == pytest.approx(0.6, rel=1e-12)  # C_b / (1 - C_W/2)


def test_jacot_coordinates_round_trip():
    for beta in (0.2, 0.6):
        p = phase.from_jacot("tanh", beta, q_star=1.0)
        j = phase.jacot_coordinates("tanh", p["C_b"], p["C_W"])
        assert j["q_star"] == pytest.approx(1.0, rel=1e-12)
        assert j["beta"] == pytest.approx(beta, rel=1e-12)
        assert j["r"] == pytest.approx(p["r"], rel=1e-12)
    # r = chi_perp: the edge of chaos is r = 1
    w = phase.edge_of_chaos("tanh", 0.1)
    assert phase.jacot_coordinates("tanh", 0.1, w)["r"] == pytest.approx(1.0, abs=1e-9)
    # standardized tanh (Jacot et al.): r = (1 - beta^2) E[sigma'^2]/E[sigma^2]
    s2, t2 = gauss.expect_monomials("tanh", 1.0, [(2, 0, 0, 0, 0), (0, 2, 0, 0, 0)])
    assert phase.from_jacot("tanh", 0.5)["r"] == pytest.approx(0.75 * t2 / s2, rel=1e-13)


def test_ntk_profile_order_and_chaos():
    w = phase.edge_of_chaos("tanh", 0.1)
    G = [[1.0, 0.5], [0.5, 1.0]]
    ordered = phase.ntk_profile("tanh", 0.1, 0.6 * w, G, depth=30)
    chaotic = phase.ntk_profile("tanh", 0.1, 1.6 * w, G, depth=30)
    assert ordered["regime"] == "ordered" and chaotic["regime"] == "chaotic"
    assert ordered["offdiag"][-1] > 0.99 and chaotic["offdiag"][-1] < 1e-2
    assert ordered["fit"]["limit"] == 1.0 and 0 < ordered["fit"]["rate"] < 1
    assert chaotic["fit"]["limit"] == 0.0 and 0 < chaotic["fit"]["rate"] < 1
    # the normalized NTK matrix: diagonal 1
    last = np.array(chaotic["normalized"][-1])
    np.testing.assert_allclose(np.diag(last), 1.0, rtol=1e-14)
    # same recursion as kernel.kernel_matrix
    from fwtheory import Network, kernel_matrix

    km = kernel_matrix(Network("tanh", depth=30, width=4, C_b=0.1, C_W=0.6 * w), np.array(G))
    ref = km.Theta[:, 0, 1] / km.Theta[:, 0, 0]
    np.testing.assert_allclose(ordered["offdiag"], ref, rtol=1e-10)


def test_phase_diagram_small_grid():
    d = phase.phase_diagram("relu", cb_values=[0.0, 0.2], cw_values=[1.0, 1.5, 2.5, 3.0],
                            edge_cb=[0.0, 0.3], ntk_depth=12)
    assert d.edge_of_chaos == [[0.0, pytest.approx(2.0)], [0.3, pytest.approx(2.0)]]
    np.testing.assert_allclose(d.chi_perp, [[0.5, 0.75, 1.25, 1.5]] * 2, rtol=1e-12)
    assert d.regime.tolist() == [[-1, -1, 1, 1]] * 2
    assert d.criticality["C_W"] == pytest.approx(2.0)
    assert [p["regime"] for p in d.ntk_profiles] == ["ordered", "critical", "chaotic"]
    out = d.to_dict()
    assert out["q_star"][1][3] is None                      # infinite q* -> null in JSON
    assert out["q_star"][1][0] == pytest.approx(0.4, rel=1e-12)  # C_b / (1 - C_W/2)


def test_phase_diagram_grid_matches_exact_fixed_points():
    d = phase.phase_diagram("tanh", cb_values=[0.05, 0.3], cw_values=[1.2, 2.0, 3.0], edge_cb=[0.1],
                            ntk_depth=6)
    for i, b in enumerate(d.C_b):
        for j, w in enumerate(d.C_W):
            q = phase.fixed_point("tanh", b, w)
            assert d.q_star[i, j] == pytest.approx(q, rel=1e-10)
            assert d.chi_perp[i, j] == pytest.approx(phase.chi_at("tanh", w, q)[1], rel=1e-10)


def test_bad_input():
    with pytest.raises(ParameterError) as e:
        phase.edge_of_chaos("tanh", -0.1)
    assert e.value.parameter == "C_b"
    with pytest.raises(ParameterError):
        phase.phase_diagram("tanh", edge_cb=[float("nan")])


# ------------------------------------------------------------------ CLI
def _cli(argv, capsys):
    from fwtheory.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


_SMALL = ["--cb-range", "0,0.3,4", "--cw-range", "0.5,3,6", "--ntk-depth", "8"]


def test_cli_phase_json_edge_values(capsys):
    import json

    rc, out, _ = _cli(["phase", "--activation", "tanh", "--cb-values", "0,0.1,0.3", "--json", "--no-files"]
                      + _SMALL, capsys)
    assert rc == 0
    d = json.loads(out)
    edge = d["edge_of_chaos"]
    assert [e[0] for e in edge] == [0.0, 0.1, 0.3]
    assert edge[0][1] == 1.0 and abs(edge[1][1] - 1.986) < 1e-3 and abs(edge[2][1] - 2.505) < 1e-3
    assert len(d["chi_perp"]) == 4 and len(d["chi_perp"][0]) == 6
    assert [p["regime"] for p in d["ntk_profiles"]] == ["ordered", "critical", "chaotic"]


def test_cli_phase_gram_option(capsys):
    import json

    rc, out, _ = _cli(["phase", "--activation", "erf", "--cb-values", "0.1", "--gram", "1,0.3;0.3,1", "--json",
                       "--no-files"] + _SMALL, capsys)
    assert rc == 0
    prof = json.loads(out)["ntk_profiles"][0]
    assert prof["gram"] == [[1.0, 0.3], [0.3, 1.0]] and len(prof["offdiag"]) == 8


def test_cli_phase_null_where_no_edge(capsys):
    import json

    rc, out, _ = _cli(["phase", "--activation", "gelu", "--cb-values", "0.1,0.3", "--json", "--no-files"]
                      + _SMALL, capsys)
    assert rc == 0
    edge = json.loads(out)["edge_of_chaos"]
    assert edge[0] == [0.1, None] and edge[1][1] == pytest.approx(1.9561586, abs=1e-6)


def test_cli_phase_writes_png_and_json(tmp_path, capsys):
    import json

    rc, out, err = _cli(["phase", "--activation", "relu", "--cb-values", "0,0.2", "--out-dir", str(tmp_path)]
                        + _SMALL, capsys)
    assert rc == 0 and "edge of chaos" in out and "wrote" in err
    png, js = tmp_path / "phase.png", tmp_path / "phase.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["edge_of_chaos"] == [[0.0, pytest.approx(2.0)], [0.2, pytest.approx(2.0)]]


@pytest.mark.parametrize("argv, parameter", [
    (["--cb-values", "0,x"], "cb-values"), (["--cb-values", "-1"], "cb-values"),
    (["--cw-range", "1,0,5"], "cw-range"), (["--activation", "nonsense"], "activation"),
    (["--out-dir", "/nonexistent/dir"], "out-dir"), (["--ntk-depth", "1"], "ntk-depth"),
    (["--gram", "1,2;2,1"], "gram"), (["--gram", "1,0.5"], "gram"),
])
def test_cli_phase_bad_input_one_line_exit_2(argv, parameter, capsys):
    rc, out, err = _cli(["phase", "--no-files"] + argv if "--out-dir" not in argv else ["phase"] + argv,
                        capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and f"error: {parameter}:" in err
