"""Depth classification (fwtheory.saturation): the rule on synthetic curves, the
tanh results of docs/references.md items 5, 6 and 11, report outputs and the CLI."""

import argparse
import json
import math
import os
import stat

import numpy as np
import pytest

from fwtheory.errors import ParameterError
from fwtheory.depth_saturation import (DECAYING, GROWING, GROWING_FASTER, GROWING_SLOWER, SATURATING,
                                 UNDEFINED, ZERO_KIND, classify_depth_behaviour, saturation,
                                 saturation_depth)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
L = np.arange(1, 2001)


@pytest.fixture(scope="module")
def tanh_report():
    """Theory-only default report (tanh, C_b=0, C_W=1, width 64, depth 50)."""
    return saturation()


# ------------------------------------------------------------ the rule
def test_saturation_depth_is_first_layer_after_which_the_curve_stays_in_the_band():
    layers = np.arange(1, 9)
    # enters the 5% band of a=1 at layer 2, leaves at layer 3, stays from layer 4 on
    values = [2.0, 1.01, 1.2, 1.04, 1.03, 0.98, 1.0, 1.0]
    assert saturation_depth(layers, values, 1.0) == 4
    assert saturation_depth(layers, values[:3], 1.0) is None          # last point outside
    assert saturation_depth(layers, np.ones(8), 1.0) == 1
    # scale other than |target| (used for decay to 0): within 0.05 * 2 of 0 from layer 3
    assert saturation_depth(layers[:4], [2.0, 0.5, 0.09, -0.05], 0.0, scale=2.0) == 3


def test_saturating_synthetic_curve():
    # r = -2 + 1.95/l: |r + 2| <= 0.05 * 2  <=>  l >= 19.5
    b = classify_depth_behaviour(L, -2.0 + 1.95 / L, depth=50)
    assert b.kind == SATURATING
    assert b.asymptote == pytest.approx(-2.0, abs=1e-9)      # Aitken is exact for a + b/l
    assert b.saturation_depth == 20


def test_linear_growth_synthetic_curve():
    b = classify_depth_behaviour(L, 0.5 * L + 3.0 + 10.0 / L, depth=50)
    assert b.kind == GROWING
    assert b.slope == pytest.approx(0.5, abs=1e-4)
    assert b.slope_err < 1e-3
    assert b.window_slope == pytest.approx(0.5, abs=0.01)


def test_logarithmic_decaying_zero_superlinear_and_undefined_curves():
    log_curve = classify_depth_behaviour(L, -0.25 * np.log(L))
    assert log_curve.kind == GROWING_SLOWER
    assert log_curve.log_coefficient == pytest.approx(-0.25, rel=1e-9)
    decay = classify_depth_behaviour(L, 3.0 / L)
    assert decay.kind == DECAYING and decay.asymptote == 0.0
    assert decay.saturation_depth == 20                      # 3/l <= 0.05 * 3
    assert classify_depth_behaviour(L, np.zeros(2000)).kind == ZERO_KIND
    assert classify_depth_behaviour(L, 1e-3 * L.astype(float) ** 2).kind == GROWING_FASTER
    nan = np.ones(2000)
    nan[0] = np.nan
    assert classify_depth_behaviour(L, nan).kind == UNDEFINED
    nan_deep = 0.5 * L
    nan_deep[1500:] = np.nan                                  # classified on layers 1..1500
    b = classify_depth_behaviour(L, nan_deep, depth=50)
    assert b.kind == GROWING and b.extended_depth == 1500
    with pytest.raises(ParameterError):
        classify_depth_behaviour(np.arange(1, 5), np.ones(4))


# ------------------------------------------------------------ physics (theory only)
def test_orthogonal_tanh_V_saturates_at_minus_two_near_depth_twenty(tanh_report):
    b = tanh_report.behaviour["orthogonal"]["V/K^2"]
    assert b.kind == SATURATING
    assert b.asymptote == pytest.approx(-2.0, abs=0.01)      # docs/references.md item 6
    assert 15 <= b.saturation_depth <= 25                     # found: 19


def test_gaussian_tanh_V_grows_with_slope_two_thirds(tanh_report):
    b = tanh_report.behaviour["gaussian"]["V/K^2"]
    assert b.kind == GROWING
    assert abs(b.slope - 2.0 / 3.0) < 0.005                   # PDLT Sec. 5.4.2; found 0.6665
    assert b.slope_err < 0.005
    assert abs(b.window_slope - 2.0 / 3.0) < 0.02             # slope over layers 25..50: 0.658


def test_other_tanh_classes(tanh_report):
    gauss, orth = tanh_report.behaviour["gaussian"], tanh_report.behaviour["orthogonal"]
    # docs/references.md item 11 (l = 2e4 numerics): F/(K Theta) -> l/4, B/Theta^2 -> l/3, D ~ -(1/4) ln l
    assert gauss["F/(K Theta)"].slope == pytest.approx(0.25, abs=0.005)
    assert gauss["B/Theta^2"].slope == pytest.approx(1 / 3, abs=0.005)
    assert gauss["D/(K Theta)"].kind == GROWING_SLOWER
    assert gauss["D/(K Theta)"].log_coefficient == pytest.approx(-0.25, abs=0.02)
    # docs/references.md item 6: orthogonal G1/K -> 2, F/(K Theta) -> -2/3, B, D, A -> 0; nothing grows
    assert orth["G1/K"].asymptote == pytest.approx(2.0, abs=0.02)
    assert orth["F/(K Theta)"].asymptote == pytest.approx(-2 / 3, abs=0.005)
    for name in ("A/Theta^2", "B/Theta^2", "D/(K Theta)"):
        assert orth[name].kind == DECAYING
    assert not any(b.is_growing for b in orth.values())


def test_tanh_descendant_classes_follow_the_theory(tanh_report):
    """The ddNTK ratios T K/Theta^3 and U K/Theta^3 decay with Gaussian weights (the theory's
    curves; no class is imposed), while P/Theta^2, R K/Theta^3, S K/Theta^3 grow linearly
    (slopes -1/12, -1/12, 1/12) and Q/Theta^2 logarithmically; with orthogonal weights
    every descendant ratio saturates or decays (docs/conventions.md, docs/order2.md)."""
    gauss, orth = tanh_report.behaviour["gaussian"], tanh_report.behaviour["orthogonal"]
    for name in ("T K/Theta^3", "U K/Theta^3"):
        assert gauss[name].kind == DECAYING, (name, gauss[name].kind)
        values = np.asarray(tanh_report.theory["gaussian"].ratios[name])
        assert abs(values[-1]) < 0.5 * np.max(np.abs(values))          # it really comes down
    for name, slope in (("P/Theta^2", -1 / 12), ("R K/Theta^3", -1 / 12), ("S K/Theta^3", 1 / 12)):
        assert gauss[name].kind == GROWING and gauss[name].slope == pytest.approx(slope, abs=0.002)
    assert gauss["Q/Theta^2"].kind == GROWING_SLOWER
    for name in ("P/Theta^2", "Q/Theta^2", "R K/Theta^3", "S K/Theta^3", "T K/Theta^3", "U K/Theta^3"):
        assert orth[name].kind in (SATURATING, DECAYING), (name, orth[name].kind)


def test_relu_does_not_saturate_with_either_ensemble():
    report = saturation("relu", C_W=2.0, depth=20, extended_depth=800)
    assert report.behaviour["gaussian"]["V/K^2"].slope == pytest.approx(5.0, abs=1e-6)     # 5(l-1)
    assert report.behaviour["orthogonal"]["V/K^2"].slope == pytest.approx(3.0, abs=1e-6)   # 3(l-1)-2


def test_extended_depth_is_lowered_when_the_theory_overflows():
    # ReLU with C_W = 3: K grows like 1.5^l and overflows float64 near l = 1750
    report = saturation("relu", C_W=3.0, depth=30, ensembles=("gaussian",))
    assert report.theory["gaussian"].network.depth < 2000
    assert any("failed at depth 2000" in n for n in report.notes)


def test_bad_arguments():
    with pytest.raises(ParameterError, match="ensembles"):
        saturation(ensembles=("uniform",))
    with pytest.raises(ParameterError, match="extended_depth"):
        saturation(depth=50, extended_depth=20)


# ------------------------------------------------------------ outputs
def test_report_writes_png_and_json_atomically(tanh_report, tmp_path):
    png, js = tanh_report.write(tmp_path)
    with open(png, "rb") as fh:
        assert fh.read(8) == PNG_SIGNATURE
    data = json.loads(open(js).read())
    assert {"parameters", "ensembles", "ratios", "rule", "extended_depth", "layers", "results",
            "fwtheory_version"} <= set(data)
    entry = data["results"]["orthogonal"]["V/K^2"]
    assert entry["behaviour"]["kind"] == "saturating"
    assert len(entry["theory"]) == 50 and "mc" not in entry
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saturation.json", "saturation.png"]


def test_atomic_write_keeps_the_old_file_on_failure_and_honours_the_umask(tmp_path):
    from fwtheory._io import atomic_write_bytes

    target = tmp_path / "out.png"
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"first")
        with pytest.raises(TypeError):
            atomic_write_bytes(target, "not bytes")           # fails while writing
    finally:
        os.umask(old)
    assert target.read_bytes() == b"first"                    # untouched, no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644     # not mkstemp's 0600


def test_table_is_side_by_side(tanh_report):
    text = tanh_report.table()
    row = next(line for line in text.splitlines() if line.startswith("V/K^2"))
    assert "growing" in row and "saturating" in row
    assert row.index("growing") < row.index("saturating")      # gaussian column first


def test_short_simulation_adds_checked_points(tmp_path):
    report = saturation(depth=8, width=16, simulate=True, samples=300, seed=1)
    for ens in ("gaussian", "orthogonal"):
        sim = report.simulations[ens]
        assert sim is not None and sim.samples == 300
        check = report.checks[ens]["V/K^2"]
        assert check.layers_compared == 8
    slope_check = report.checks["gaussian"]["V/K^2"]
    assert slope_check.slope is not None and slope_check.slope_err > 0
    data = report.to_dict()
    mc = data["results"]["gaussian"]["V/K^2"]["mc"]
    assert len(mc["values"]) == 8 and len(mc["se"]) == 8 and "verdict" in mc["check"]
    assert "MC" in report.table()
    png, _ = report.write(tmp_path)
    assert open(png, "rb").read(8) == PNG_SIGNATURE


# ------------------------------------------------------------ CLI
def _cli(argv):
    from fwtheory.cli import saturation as cmd

    parser = argparse.ArgumentParser(prog="fwtheory")
    cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["saturation"] + argv)
    return args.func(args)


def test_cli_theory_only_writes_files(tmp_path, capsys):
    assert _cli(["--no-simulate", "--depth", "20", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "V/K^2" in out and "saturating" in out
    assert (tmp_path / "saturation.png").read_bytes()[:8] == PNG_SIGNATURE
    data = json.loads((tmp_path / "saturation.json").read_text())
    assert data["parameters"]["depth"] == 20 and data["simulation"] is None


def test_cli_json_and_bad_out_dir(tmp_path, capsys):
    assert _cli(["--no-simulate", "--depth", "10", "--json", "--no-files"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["results"]["gaussian"]["V/K^2"]["behaviour"]["kind"] == "growing"
    (tmp_path / "a-file").write_text("")       # a missing --out-dir is created; a file is refused
    with pytest.raises(ParameterError, match="out-dir"):
        _cli(["--no-simulate", "--out-dir", str(tmp_path / "a-file")])


@pytest.mark.slow
def test_readme_main_job_defaults(tmp_path, monkeypatch, capsys):
    """`fwtheory saturation` on its defaults, in the working directory, < 3 min."""
    import time

    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert _cli([]) == 0
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    assert (tmp_path / "saturation.png").exists() and (tmp_path / "saturation.json").exists()
    data = json.loads((tmp_path / "saturation.json").read_text())
    assert data["results"]["orthogonal"]["V/K^2"]["behaviour"]["kind"] == "saturating"
    gauss = data["results"]["gaussian"]["V/K^2"]
    assert gauss["behaviour"]["kind"] == "growing"
    assert math.isclose(gauss["behaviour"]["slope"], 2 / 3, abs_tol=0.005)
    assert gauss["mc"]["check"]["layers_compared"] == 50
    assert "V/K^2" in out
    assert elapsed < 180


# ------------------------------------------------------------ zero at the theory's own scale
def test_relu_G1_and_Theta1_are_zero_not_growing():
    """ReLU's G1 and Theta1 vanish (scale-invariant kernel map); predict returns
    round-off 1e-14..1e-9 that used to be classified as superlinear growth."""
    report = saturation("relu", C_W=2.0, depth=50)
    for ens in ("gaussian", "orthogonal"):
        b = report.behaviour[ens]
        for name in ("G1/K", "Theta1/Theta"):
            assert b[name].kind == ZERO_KIND, (ens, name, b[name].describe())
        assert b["V/K^2"].kind == GROWING
    entry = report.to_dict()["results"]["gaussian"]["G1/K"]
    assert entry["theory"] == [0.0] * 50 and "theory_roundoff" in entry
    row = next(line for line in report.table().splitlines() if line.startswith("G1/K"))
    assert "0 (identically" in row and "growing" not in row


def test_small_nonzero_correlators_are_not_zero(tanh_report):
    from fwtheory.depth_saturation import _ratio_noise

    for ens in ("gaussian", "orthogonal"):
        assert not any(b.kind == ZERO_KIND for b in tanh_report.behaviour[ens].values())
    # a scaled-down tanh G1 curve (1e-11 in size) is still not zero: the bound scales with it
    th = tanh_report.theory["gaussian"]
    noise = _ratio_noise(th)["G1/K"]
    r = th.ratios["G1/K"]
    assert np.all(noise < 1e-6 * np.abs(r).max())
    assert classify_depth_behaviour(th.layers, r, noise=noise).kind == GROWING
    assert classify_depth_behaviour(L, 1e-13 * L, noise=1e-12 * L).kind == ZERO_KIND
    assert classify_depth_behaviour(L, 1e-13 * L).kind == GROWING     # no bound: only exact 0 is zero
    # a void bound (a term overflowed: inf) claims nothing, as in fwtheory._termscale.zero_values
    assert classify_depth_behaviour(L, 1e-13 * L, noise=np.full(len(L), np.inf)).kind == GROWING


# ------------------------------------------------------------ width scan beside every miss
def test_no_bare_miss_in_the_table_the_width_scan_is_beside_it():
    """Every missed check carries the width-scan verdict and its evidence; the
    JSON carries the scan's numbers."""
    from fwtheory.width_scan import CONSISTENT, DISAGREES, INCONCLUSIVE, NEXT_ORDER

    report = saturation(depth=8, width=16, simulate=True, samples=300, seed=2)
    missed = [(e, n) for e in report.ensembles for n, c in report.checks[e].items()
              if c.verdict == "disagree"]
    assert missed                                       # A/Theta^2, D/(K Theta) miss at n = 16
    text = report.table()
    for e, n in missed:
        scan = report.scans[e][n]
        assert scan.verdict in (NEXT_ORDER, CONSISTENT, DISAGREES, INCONCLUSIVE)
        assert scan.widths == (8, 16, 32)
        assert f"#   {e} {n}: {scan.verdict}" in text
        entry = report.to_dict()["results"][e][n]["width_scan"]
        assert entry["widths"] == [8, 16, 32] and len(entry["fit"]["c0"]) == 8
    for line in text.splitlines():
        if "OFF" in line or " miss " in line:
            assert "width scan:" in line, line
    # the orthogonal NTK-variance misses are next-order: the n -> inf value lands on the theory
    assert report.scans["orthogonal"]["D/(K Theta)"].verdict == NEXT_ORDER
    off = saturation(depth=8, width=16, simulate=True, samples=300, seed=2, width_scan=False)
    assert not any(off.scans.values()) and "not width-scanned" in off.table()


def test_width_fit_recovers_intercept_and_tells_a_wrong_theory():
    from fwtheory.width_scan import fit_widths

    widths = (32, 64, 128)
    y = np.array([[1.0 + 20.0 / n + 300.0 / n**2] for n in widths])
    fit = fit_widths(widths, y, np.full_like(y, 1e-3))
    assert fit["c0"][0] == pytest.approx(1.0, abs=0.01)
    assert abs(fit["c1"][0]) > 3 * fit["c1_se"][0]


# ------------------------------------------------------------ cost estimate and refusal
def test_cost_estimate_order_of_magnitude_and_refusal(capsys):
    from fwtheory import Network
    from fwtheory._cost import check_simulate, simulate_seconds

    small = simulate_seconds(2000, 50, [64], ("gaussian", "orthogonal"), workers=2)
    assert 3 < small < 60                              # measured ~5-10 s on 2 idle cores
    assert simulate_seconds(100, 10, [128], workers=1) > simulate_seconds(100, 10, [64], workers=1)
    with pytest.raises(ParameterError, match="depth") as exc:
        check_simulate(Network("tanh", depth=100000, width=64), 4000)
    assert "--force" in str(exc.value)
    assert check_simulate(Network("tanh", depth=100000, width=64), 4000, force=True) > 1800
    assert "estimated run time" in capsys.readouterr().err


def test_cli_refuses_huge_runs_with_exit_code_2(capsys):
    from fwtheory.cli import main

    assert main(["simulate", "--depth", "100000"]) == 2
    err = capsys.readouterr().err
    assert "depth" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["saturation", "--depth", "20000", "--no-files"]) == 2
    assert "depth" in capsys.readouterr().err
    assert main(["saturation", "--samples", "10000000", "--no-files"]) == 2
    assert "samples" in capsys.readouterr().err


def test_width_scan_tells_next_order_from_a_wrong_theory():
    """Synthetic r(n) = r0 + c1/n + c2/n^2 with 1% noise: the scan finds r0 when the
    theory is r0, and says "theory disagrees" when the theory is off by 30%."""
    from types import SimpleNamespace

    from fwtheory.depth_saturation import MonteCarloCheck
    from fwtheory.width_scan import DISAGREES, NEXT_ORDER, width_scan

    rng = np.random.default_rng(0)
    layers = np.arange(1, 21)
    r0 = 0.5 + 0.1 * layers
    sims = {}
    for n in (32, 64, 128):
        exact = r0 + 3.0 * layers / n + 20.0 * layers / n**2
        se = np.full(20, 0.01)
        sims[n] = SimpleNamespace(ratios={"X": exact + se * rng.standard_normal(20)},
                                  ratio_errors={"X": se}, samples=1000)
    check = {"X": MonteCarloCheck(layers_compared=20, layers_agree=0, failed_layers=tuple(layers))}
    assert width_scan(sims, {"X": r0}, check, None)["X"].verdict == NEXT_ORDER
    assert width_scan(sims, {"X": 1.3 * r0}, check, None)["X"].verdict == DISAGREES


def test_compare_shows_zero_theory_as_0_without_nan_rel_err():
    from fwtheory import Network, compare, predict
    from fwtheory.mc import simulate

    net = Network("relu", depth=3, width=16, C_W=2.0)
    comp = compare(predict(net), simulate(net, samples=50, seed=0))
    assert np.all(comp.theory["G1"] == 0.0) and np.all(comp.theory["G1/K"] == 0.0)
    rows = [line for line in comp.table().splitlines() if line.split()[:1] == ["G1"]]
    assert rows and not any("nan" in r for r in rows)
    assert "theory 0: zero at this order" in comp.table()
