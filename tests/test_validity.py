"""The NTK-regime study (fwtheory.validity, ``fwtheory validity``): exact identities of
its estimators and of bias-free ReLU, the CLI contract, and (slow) the order-1/n
init dispersion against measurements in every phase at depth/width <= 0.1."""

import json
import math

import numpy as np
import pytest

from fwtheory import Network
from fwtheory.cli import main
from fwtheory.ntk_dispersion import ntk_dispersion
from fwtheory.validity import COSINES, _jackknife_ratio, init_dispersion, jackknife_cv, probe_inputs, validity_study


def test_jackknife_estimators_equal_brute_force_leave_one_out():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=40)
    y = rng.lognormal(size=40) + 1.0
    cv, se = jackknife_cv(x)
    assert cv == pytest.approx(x.std(ddof=1) / x.mean(), rel=1e-13)
    loo = np.array([np.delete(x, i).std(ddof=1) / np.delete(x, i).mean() for i in range(40)])
    assert se == pytest.approx(math.sqrt(39 / 40 * np.sum((loo - loo.mean()) ** 2)), rel=1e-10)
    r, rse = _jackknife_ratio(x, y)
    loo = np.array([np.delete(x, i).sum() / np.delete(y, i).sum() for i in range(40)])
    assert r == pytest.approx(x.sum() / y.sum(), rel=1e-14)
    assert rse == pytest.approx(math.sqrt(39 / 40 * np.sum((loo - loo.mean()) ** 2)), rel=1e-10)


def test_probe_inputs_are_unit_vectors_at_the_protocol_cosines():
    X = probe_inputs(np.random.default_rng(0), 100)
    assert X.shape == (11, 100)
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    assert np.allclose(X @ X[0], COSINES, atol=1e-14)


_STUDY = dict(width=16, depths=(2, 3), cw_values=(0.8, 2.0, 3.0), inits=5, steps=4)


def test_bias_free_relu_is_scale_invariant_in_c_w():
    """C_b = 0, lambda_b = 0: Theta = C_W^(L-1) x (a C_W-free variable) and training is
    equivariant under the weight scale, so with common random numbers every normalized
    measurement and prediction is the same at every C_W, to rounding."""
    s = validity_study("relu", lambda_b=0.0, **_STUDY)
    for key in ("init_dispersion", "init_dispersion_se", "ntk_change", "final_loss", "init_dispersion_theory",
                "final_loss_theory", "offdiag_ratio", "offdiag_ratio_theory"):
        a = np.asarray(s[key], dtype=float)
        assert np.isfinite(a).all(), key
        assert np.allclose(a, a[:, :1], rtol=1e-9, atol=0), key
    # ... while the mean NTK scales as C_W^(L-1)
    for i, L in enumerate(_STUDY["depths"]):
        th = np.asarray(s["ntk_mean"][i])
        assert np.allclose(th / th[0], (np.array(_STUDY["cw_values"]) / 0.8) ** (L - 1), rtol=1e-10)


def test_theory_beside_measurement_comes_from_ntk_dispersion():
    s = validity_study("relu", **_STUDY)
    d = np.asarray(s["init_dispersion_theory"])
    assert np.ptp(d[1]) > 0.05 * d[1].max()         # trained biases break the scale invariance
    for i, L in enumerate(_STUDY["depths"]):
        for j, cw in enumerate(_STUDY["cw_values"]):
            net = Network("relu", depth=L, width=16, C_W=cw, lambda_b=1.0, lambda_W=16.0)
            assert s["init_dispersion_theory"][i][j] == pytest.approx(
                ntk_dispersion(net, input_norm=1 / 16).relative[-1], rel=1e-12)
    assert np.array_equal(s["ntk_change_theory"], np.zeros((2, 3)))
    assert s.edge_of_chaos == pytest.approx(2.0, rel=1e-9)
    assert s.chi_perp == pytest.approx((0.4, 1.0, 1.5), rel=1e-9)


def test_cli_writes_json_and_png(tmp_path, capsys):
    rc = main(["validity", "--width", "12", "--depths", "2,3", "--cw", "1.5,2.5", "--inits", "3", "--steps", "2",
               "--json", "--out-dir", str(tmp_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["depths"] == [2, 3] and out["cw"] == [1.5, 2.5]
    for key in ("init_dispersion", "ntk_change", "final_loss"):
        for suffix in ("", "_se", "_theory"):
            arr = np.array(out[key + suffix], dtype=float)
            assert arr.shape == (2, 2), key + suffix
    assert json.loads((tmp_path / "validity.json").read_text())["inits"] == 3
    assert (tmp_path / "validity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,name", [(["--depths", "0,3"], "depths"), (["--cw", "a,b"], "cw"),
                                       (["--inits", "1"], "inits"), (["--lr-scale", "3"], "lr_scale"),
                                       (["--lambda-b", "-1"], "lambda_b")])
def test_cli_bad_input_exits_2(argv, name, tmp_path, capsys):
    rc = main(["validity", "--width", "8", "--depths", "2", "--cw", "1.0", "--inits", "3", "--steps", "1",
               "--no-files"] + argv)
    assert rc == 2
    assert name in capsys.readouterr().err


# ------------------------------------------------------------------ slow: every phase, depth/width <= 0.1
_PHASES = {"relu": (0.5, 2.0, 3.5), "sigmoid": (0.5, 103.0, 200.0)}    # ordered / edge / chaotic


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
@pytest.mark.parametrize("cb", [0.0, 0.1])
def test_init_dispersion_agrees_with_order_one_over_n_in_every_phase(act, cb):
    """Width 100, unit-norm inputs, standard parametrization (lambda_b = 1, lambda_W = n),
    400 initializations: measured std/mean of Theta(x0, x0) within 3 SE + 10% of
    sqrt((A + 2B)/n)/Theta at L = 5 and 10 (depth/width <= 0.1), for C_W in the ordered
    phase, at the edge of chaos and in the chaotic phase (sigmoid's edge is C_W = 103)."""
    n = 100
    for L in (5, 10):
        for cw in _PHASES[act]:
            net = Network(act, depth=L, width=n, C_W=cw, C_b=cb, lambda_b=1.0, lambda_W=float(n))
            cv, se, _ = init_dispersion(net, 400, seed=1)
            pred = ntk_dispersion(net, input_norm=1.0 / n).relative[-1]
            assert abs(cv - pred) <= 3 * se + 0.1 * pred, (L, cw, cv, se, pred)


def test_cli_full_grid_is_refused_without_force(capsys):
    """The paper's full grid (50 depths x 16 C_W x 500 initializations) is estimated at
    hours and refused before any work starts, naming what makes it big."""
    rc = main(["validity", "--full", "--no-files"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--force" in err and "inits" in err and "depths" in err
