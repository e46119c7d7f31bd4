"""The validation suite (fwtheory.validation, `fwtheory validate`, validation/*.py).

The quick run of all five claims takes ~15-40 s on 2 cores and is part of the
default test run; the full run is marked slow.
"""

import argparse
import importlib
import importlib.util
import json
import pathlib

import pytest

import fwtheory
from fwtheory import ParameterError
from fwtheory.cli import validate as cli_validate
from fwtheory.validation import CLAIMS, _select, validate

ROOT = pathlib.Path(__file__).resolve().parents[1]
REQUIRED = {"claim", "name", "title", "status", "passed", "line", "quick", "seed", "simulation_seeds",
            "parameters", "sources", "criteria", "results", "elapsed_s", "files",
            "fwtheory_version", "git_commit", "python", "numpy", "created_utc"}


def _parser():
    parser = argparse.ArgumentParser(prog="fwtheory")
    sub = parser.add_subparsers(dest="command")
    cli_validate.add_parser(sub)
    return parser


def _check_outputs(summary, out_dir):
    assert [c["id"] for c in summary["claims"]] == sorted(c["id"] for c in summary["claims"])
    for c in summary["claims"]:
        data = json.loads(pathlib.Path(c["json"]).read_text())
        assert REQUIRED <= set(data), REQUIRED - set(data)
        assert data["claim"] == c["id"] and data["seed"] == summary["seed"]
        assert data["passed"] is True and data["status"] == "PASS", data["criteria"]
        assert data["line"].startswith(f"PASS [{c['id']}]")
        assert data["criteria"] and all(k["passed"] for k in data["criteria"])
        assert data["fwtheory_version"] == fwtheory.__version__
        png = pathlib.Path(c["png"])
        assert png.parent == pathlib.Path(out_dir) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    return validate(quick=True, out_dir=out, seed=0, verbose=False), out


def test_quick_validation_passes_and_writes_files(quick_run):
    summary, out = quick_run
    assert summary["passed"], [c["line"] for c in summary["claims"]]
    assert [c["id"] for c in summary["claims"]] == [1, 2, 3, 4, 5]
    _check_outputs(summary, out)
    stored = json.loads((out / "validation_summary.json").read_text())
    assert stored["passed"] is True and len(stored["claims"]) == 5


def test_quick_results_carry_the_claimed_numbers(quick_run):
    summary, out = quick_run
    load = lambda k: json.loads((out / f"v{k}_{CLAIMS[k]}.json").read_text())  # noqa: E731
    r2 = load(2)["results"]
    assert r2["closed_forms"]["V/K^2"] == "5*(l - 1)"
    assert r2["asymptotic_slopes"] == {"A/Theta^2": "7/3", "(A+2B)/Theta^2": "11/3"}
    r3 = load(3)["results"]
    assert r3["K_times_2l_at_L"] == pytest.approx(1.0, abs=2e-3)
    assert r3["V_over_K2_over_l_at_L"] == pytest.approx(2 / 3, abs=2e-3)
    r4 = load(4)["results"]
    assert 10 <= r4["orthogonal_V_over_K2"]["saturation_depth_5pct"] <= 30
    assert r4["gaussian_slopes"]["V/K^2"] == pytest.approx(2 / 3, rel=0.05)
    r5 = load(5)["results"]["large_beta"]["16"]
    assert r5["growth_rate_leading_order"] < r5["growth_rate"] <= 5 + 4 * r5["growth_rate_se"]


def test_same_seed_same_numbers(tmp_path, quick_run):
    summary, out = quick_run
    again = validate(quick=True, out_dir=tmp_path, seed=0, only=[1], verbose=False)
    a = json.loads((out / "v1_deep_linear.json").read_text())["results"]
    b = json.loads(pathlib.Path(again["claims"][0]["json"]).read_text())["results"]
    assert a == b


def test_cli_quick_only(tmp_path, capsys):
    args = _parser().parse_args(["validate", "--quick", "--only", "3", "--out-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "PASS [3]" in out and "1/1 passed" in out and "kstar0_tanh" in out
    assert (tmp_path / "v3_kstar0_tanh.png").exists()
    args = _parser().parse_args(["validate", "--quick", "--only", "kstar0_tanh", "--json",
                                 "--out-dir", str(tmp_path)])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and [c["id"] for c in data["claims"]] == [3]


def test_cli_exit_status_on_failure(tmp_path, monkeypatch, capsys):
    from fwtheory.validation import deep_linear

    monkeypatch.setitem(deep_linear.QUICK, "z", 0.0)        # "within 0 SE": must fail
    monkeypatch.setitem(deep_linear.QUICK, "samples", 2000)
    args = _parser().parse_args(["validate", "--quick", "--only", "1", "--out-dir", str(tmp_path)])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "FAIL [1]" in out and "0/1 passed" in out
    data = json.loads((tmp_path / "v1_deep_linear.json").read_text())
    assert data["passed"] is False and not data["criteria"][0]["passed"]


def test_errors_are_reported_and_the_rest_still_runs(tmp_path, monkeypatch):
    from fwtheory.validation import kstar0_tanh

    def boom(**kw):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(kstar0_tanh, "run", boom)
    summary = validate(quick=True, out_dir=tmp_path, only="3", verbose=False)
    (entry,) = summary["claims"]
    assert entry["status"] == "ERROR" and not summary["passed"]
    assert "broken on purpose" in entry["line"] and "Traceback" in entry["error"]


def test_only_selection():
    assert _select(None) == [1, 2, 3, 4, 5]
    assert _select("4,2") == [2, 4]
    assert _select(["1", "deep_linear", 5]) == [1, 5]
    for bad in ("6", "nonsense", []):
        with pytest.raises(ParameterError, match="only"):
            _select(bad)
    with pytest.raises(ParameterError, match="seed"):
        validate(seed=-1, only=3)


def test_lazy_export_and_scripts_are_thin_wrappers():
    import fwtheory.validation as pkg

    assert fwtheory.validate is pkg.validate
    for k, name in CLAIMS.items():
        path = ROOT / "validation" / f"v{k}_{name}.py"
        spec = importlib.util.spec_from_file_location(f"_validation_script_{k}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.run is importlib.import_module(f"fwtheory.validation.{name}").run
    assert (ROOT / "validation" / "run_all.py").exists()


@pytest.mark.slow
def test_full_validation_passes(tmp_path):
    summary = validate(quick=False, out_dir=tmp_path, seed=0, verbose=False)
    assert summary["passed"], [c["line"] for c in summary["claims"]]
    _check_outputs(summary, tmp_path)

