"""simulate(): reproducibility, bad input, overflow reporting, JSON shape,
width extrapolation and sanity against the reference values of docs/references.md."""

import json
import subprocess
import sys

import numba
import numpy as np
import pytest

from fwtheory import AccuracyWarning, Network, ParameterError, quantities
from fwtheory._io import dumps_json
from fwtheory.mc import simulate

ALL_KEYS = quantities.CORRELATORS


def _arrays(sim):
    out = [sim.values[k] for k in ALL_KEYS] + [sim.errors[k] for k in ALL_KEYS]
    out += [sim.ratios[k] for k in quantities.RATIOS] + [sim.ratio_errors[k] for k in quantities.RATIOS]
    return out


def _identical(a, b):
    for x, y in zip(_arrays(a), _arrays(b)):
        assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize("ensemble,width", [("gaussian", 24), ("orthogonal", 24), ("gaussian", 128)])
def test_same_seed_same_numbers_at_any_thread_count(ensemble, width):
    net = Network("tanh", depth=4, width=width, ensemble=ensemble, C_b=0.1, lambda_b=0.5)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(net, samples=700, seed=5)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = simulate(net, samples=700, seed=5)
    finally:
        numba.set_num_threads(old)
    _identical(one, many)
    _identical(one, simulate(net, samples=700, seed=5))
    other = simulate(net, samples=700, seed=6)
    assert not np.array_equal(one.values["V"], other.values["V"])


def test_blas_is_single_threaded_during_a_run_and_restored_after():
    from fwtheory.mc import _blas

    if not _blas.available():
        pytest.skip("no OpenBLAS thread control here")
    before = _blas.thread_counts()
    seen = []
    net = Network("tanh", depth=2, width=8)
    simulate(net, samples=40, seed=0, progress=lambda k: seen.append(_blas.thread_counts()))
    assert seen and all(counts == [1] * len(before) for counts in seen)
    assert _blas.thread_counts() == before
    with _blas.single_threaded():
        with _blas.single_threaded():
            assert _blas.thread_counts() == [1] * len(before)
        assert _blas.thread_counts() == [1] * len(before)     # restored by the outermost block only
    assert _blas.thread_counts() == before


def test_builtin_activation_never_imports_sympy():
    code = ("import sys; sys.path[:0] = [p for p in sys.argv[1:]]\n"
            "import fwtheory\n"
            "from fwtheory import Network\n"
            "import fwtheory.mc._kernels as k\n"
            "net = Network('gelu', depth=3, width=8, ensemble='orthogonal')\n"
            "import fwtheory.mc.sampling as s\n"
            "s.simulate(net, samples=20, seed=0)\n"
            "s.simulate(net.replace(ensemble='gaussian'), samples=20, seed=0, widths=[4, 8])\n"
            "import fwtheory.cli.simulate\n"
            "assert 'sympy' not in sys.modules, 'sympy was imported'\n")
    subprocess.run([sys.executable, "-c", code] + sys.path, check=True)


def test_custom_activation_matches_builtin():
    net = Network("tanh", depth=3, width=8, ensemble="orthogonal")
    custom = net.replace(activation="1*tanh(z)")   # parsed by sympy: code -1
    a = simulate(net, samples=300, seed=4)
    b = simulate(custom, samples=300, seed=4)
    for k in ALL_KEYS:
        np.testing.assert_allclose(a.values[k], b.values[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(samples=1), "samples"),
    (dict(samples=2.5), "samples"),
    (dict(seed=-1), "seed"),
    (dict(widths=[1, 8]), "widths"),
    (dict(widths=[8]), "widths"),
    (dict(widths=[8, 8]), "widths"),
    (dict(input_norm=-1.0), "input_norm"),
    (dict(progress=3), "progress"),
])
def test_bad_input_names_the_parameter(kwargs, parameter):
    args = dict(samples=10, seed=0)
    args.update(kwargs)
    with pytest.raises(ParameterError) as info:
        simulate(Network("tanh", depth=2, width=4), **args)
    assert info.value.parameter == parameter


def test_bad_networks_are_refused():
    with pytest.raises(ParameterError, match="width"):
        simulate(Network("tanh", depth=2, width=1), samples=10, seed=0)
    with pytest.raises(ParameterError, match="GiB") as info:
        simulate(Network("tanh", depth=2, width=200_000), samples=10, seed=0)
    assert info.value.parameter == "width"
    with pytest.raises(ParameterError) as info:
        simulate(Network("tanh", depth=1_000_000_000, width=4), samples=10, seed=0)
    assert info.value.parameter == "depth"
    with pytest.raises(ParameterError, match="first_layer"):   # non-square orthogonal layer
        Network("tanh", depth=2, width=8, input_dim=4, ensemble="orthogonal")
    net = Network("tanh", depth=2, width=8, input_dim=4, ensemble="orthogonal", first_layer="gaussian")
    with pytest.raises(ParameterError):
        simulate(net.replace(first_layer="orthogonal"), samples=10, seed=0)
    with pytest.raises(ParameterError, match="network"):
        simulate("tanh", samples=10, seed=0)


def test_overflow_is_reported_per_layer_not_silent():
    net = Network("relu", depth=1200, width=32, C_W=3.0)     # chaotic: K grows like 1.5^l
    with pytest.warns(AccuracyWarning, match="fewer than 2 finite networks"):
        sim = simulate(net, samples=64, seed=0)
    over = sim.overflow
    assert over[0] == 0.0 and over[900] == 0.0 and over[-1] > 0.9
    assert np.all(np.isnan(sim.values["V"][sim.valid < 2]))
    assert np.all(np.diff(over) >= 0)
    assert np.array_equal(sim.valid, np.round((1 - over) * 64).astype(int))
    ok = sim.valid >= 3
    assert np.all(np.isfinite(sim.values["K"][ok]))
    assert any("overflow" in note for note in sim.notes)
    d = json.loads(dumps_json(sim.to_dict()))
    assert d["overflow"][-1] > 0.5


def test_to_dict_has_the_predict_keys():
    net = Network("tanh", depth=3, width=8)
    d = json.loads(dumps_json(simulate(net, samples=50, seed=9).to_dict()))
    for k in ALL_KEYS:
        assert len(d[k]) == 3 and len(d[k + "_se"]) == 3
    assert set(d["ratios"]) == set(quantities.RATIOS) == set(d["ratios_se"])
    assert d["network"]["input_norm"] == 1.0 and d["network"]["activation"] == "tanh"
    assert d["layers"] == [1, 2, 3] and d["samples"] == 50 and d["seed"] == 9
    assert "extrapolation" not in d


def test_layer_one_is_exact():
    net = Network("tanh", depth=2, width=16, C_b=0.2, C_W=1.5, lambda_b=0.3, lambda_W=0.8)
    sim = simulate(net, samples=3000, seed=1, input_norm=2.0)
    K1 = 0.2 + 1.5 * 2.0
    assert abs(sim.values["K"][0] - K1) < 4 * sim.errors["K"][0]
    assert sim.values["Theta"][0] == pytest.approx(0.3 + 0.8 * 2.0, rel=1e-14)
    assert abs(sim.values["V"][0]) < 4 * sim.errors["V"][0]
    for k in ("D", "F", "A", "B"):
        assert sim.values[k][0] == pytest.approx(0.0, abs=1e-12)


def test_relu_gaussian_layer_two_matches_reference():
    """docs/references.md item 7: ReLU, C_W = 2, layer 2 (exact at any width
    since layer 1 is exactly Gaussian): (V, D, F, B, A) = (20, 12, 4, 2, 8)."""
    net = Network("relu", depth=2, width=32, C_W=2.0)
    sim = simulate(net, samples=3000, seed=0)
    for key, exact in zip("VDFBA", (20.0, 12.0, 4.0, 2.0, 8.0)):
        assert abs(sim.values[key][1] - exact) < 4 * sim.errors[key][1], key
    assert sim.errors["B"][1] < 0.02 and sim.errors["F"][1] < 0.1


def test_width_extrapolation_recovers_leading_order():
    """ReLU at criticality: V/K^2 = 5 at l = 2 and (V, F, B) = (40, 12, 10) at
    l = 3 to leading order (docs/references.md item 7); extrapolate in 1/n."""
    net = Network("relu", depth=3, width=16, C_W=2.0)
    sim = simulate(net, samples=3000, seed=0, widths=[8, 16, 32])
    ex = sim.extrapolation
    assert ex.widths == [8, 16, 32] and len(ex.per_width) == 3
    assert [r.network.width for r in ex.per_width] == [8, 16, 32]
    # the width-16 row is the plain simulation at that width
    _identical(ex.per_width[1], simulate(net, samples=3000, seed=0))
    for key, exact in (("V", 40.0), ("F", 12.0), ("B", 10.0)):
        assert abs(sim.values[key][2] - exact) < 4 * sim.errors[key][2], key
    assert abs(sim.ratios["V/K^2"][1] - 5.0) < 4 * sim.ratio_errors["V/K^2"][1]
    d = json.loads(dumps_json(sim.to_dict()))
    assert d["extrapolation"]["widths"] == [8, 16, 32]
    assert len(d["extrapolation"]["per_width"]) == 3


def test_progress_and_interrupt(monkeypatch):
    seen = []
    net = Network("tanh", depth=2, width=64)
    sim = simulate(net, samples=100, seed=0, progress=seen.append)
    assert sum(seen) == 100

    import fwtheory.mc.sampling as mod
    calls = {"n": 0}
    real = mod.BlockSums.add

    def add_then_interrupt(self, stats, valid):
        real(self, stats, valid)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(mod.BlockSums, "add", add_then_interrupt)
    part = simulate(net, samples=300, seed=0)
    assert part.interrupted and part.samples == 64 and part.samples_requested == 300
    assert any("interrupted" in note for note in part.notes)
    monkeypatch.setattr(mod.BlockSums, "add", real)
    full = simulate(net, samples=64, seed=0)      # the finished prefix is a valid smaller run
    for k in ALL_KEYS:   # same networks; only the summation order (jackknife blocks) differs
        np.testing.assert_allclose(part.values[k], full.values[k], rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_tanh_orthogonal_extrapolates_to_reference_values():
    """docs/references.md item 10, tanh, C_W = 1, orthogonal in every layer, l = 2:
    V, F, B = -0.2795, -0.1081, 0.1258 at leading order (extrapolated in 1/n)."""
    net = Network("tanh", depth=3, width=32, ensemble="orthogonal")
    sim = simulate(net, samples=20_000, seed=0, widths=[16, 32, 64])
    for key, exact in (("V", -0.2795), ("F", -0.1081), ("B", 0.1258)):
        v, e = sim.values[key][1], sim.errors[key][1]
        assert abs(v - exact) < 4 * e + 0.01 * abs(exact), (key, v, e)
