"""Sweeps (fwtheory.sweep, ``fwtheory sweep``): spec validation, task keys and
seeds, bitwise-identical numbers serially / on a LocalCluster / after a kill and
resume, failed tasks, the no-dask fallback, the results file and the report."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from fwtheory.errors import ParameterError
from fwtheory.sweeps import load_spec, read_results, sweep
from fwtheory.sweeps.results import ResultsFile

ROOT = pathlib.Path(__file__).resolve().parents[1]

GRID_24 = """\
verb = "simulate"
seed = 7

[fixed]
activation = "tanh"
samples = 200

[grid]
width = [8, 16]
depth = [2, 3, 4]
cw = [0.9, 1.0, 1.1, 1.2]
"""

SMALL = {"verb": "simulate", "seed": 3, "fixed": {"samples": 50, "depth": 2},
         "grid": {"width": [4, 6], "cw": [1.0, 1.5]}}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fwtheory", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def outputs_by_key(path):
    rows = read_results(path)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["status"] != "ok"]
    return {r["key"]: json.dumps(r["outputs"], sort_keys=True) for r in rows}


def lines(path):
    return pathlib.Path(path).read_bytes().count(b"\n") if pathlib.Path(path).exists() else 0


# ---------------------------------------------------------------- spec
@pytest.mark.parametrize("spec, name", [
    ({"verb": "train"}, "verb"),
    ({"verb": "simulate", "fixed": {"widht": 8}}, "fixed.widht"),
    ({"verb": "simulate", "grid": {"foo": [1, 2]}}, "grid.foo"),
    ({"verb": "predict", "fixed": {"samples": 10}}, "fixed.samples"),        # not a predict argument
    ({"verb": "simulate", "grid": {"depth": 3}}, "grid.depth"),              # not a list
    ({"verb": "simulate", "grid": {"depth": [2.5]}}, "grid.depth"),          # not an integer
    ({"verb": "simulate", "fixed": {"depth": 3}, "grid": {"depth": [2]}}, "grid.depth"),
    ({"verb": "simulate", "grid": {"seed": [1, 2]}}, "grid.seed"),
    ({"verb": "simulate", "fixed": {"ensemble": "cauchy"}}, "fixed.ensemble"),
    ({"verb": "simulate", "workers": 2}, "workers"),                       # unknown top-level key
])
def test_bad_spec_names_the_offender(spec, name):
    with pytest.raises(ParameterError) as err:
        load_spec(spec)
    assert err.value.parameter == name


def test_bad_spec_on_the_command_line_is_one_line_exit_2(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('verb = "simulate"\n[grid]\nwidht = [8, 16]\n')
    out = cli("sweep", spec, "--out", tmp_path / "r.jsonl", "--serial")
    assert out.returncode == 2, out.stderr
    msg = out.stderr.strip().splitlines()
    assert len(msg) == 1 and "error: grid.widht: unknown argument for simulate" in msg[0]
    assert not (tmp_path / "r.jsonl").exists()
    (tmp_path / "verb.toml").write_text('verb = "train"\n')
    out = cli("sweep", tmp_path / "verb.toml", "--serial")
    assert out.returncode == 2 and "error: verb: must be one of predict, simulate, compare" in out.stderr


def test_task_keys_and_seeds_depend_only_on_the_arguments():
    a = load_spec({"verb": "simulate", "fixed": {"samples": 50, "cw": 1},
                   "grid": {"width": [4, 8], "depth": [2, 3]}})
    b = load_spec({"verb": "simulate", "fixed": {"depth": 3, "samples": 50},
                   "grid": {"cw": [1.0, 2.0], "width": [8, 6]}})
    ta = {t.key: t for t in a.tasks()}
    tb = {t.key: t for t in b.tasks()}
    common = set(ta) & set(tb)
    assert len(common) == 1               # width 8, depth 3, cw 1 (= 1.0), samples 50
    (k,) = common
    assert ta[k].seed == tb[k].seed and ta[k].args == tb[k].args
    assert len({t.seed for t in a.tasks()}) == 4
    other = load_spec({"verb": "simulate", "seed": 1, "fixed": {"samples": 50, "cw": 1},
                       "grid": {"width": [4, 8], "depth": [2, 3]}})
    assert not {t.key for t in other.tasks()} & set(ta)
    assert not {t.seed for t in other.tasks()} & {t.seed for t in a.tasks()}


# ------------------------------------------------- the acceptance grid
_SLOW_SERIAL = r"""
import sys, time
import fwtheory.sweeps.execute as ex
_run = ex.run_task
def slow(*a, **k):
    row = _run(*a, **k)
    time.sleep(0.2)        # room for the test to kill the run between two tasks
    return row
ex.run_task = slow
from fwtheory.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_24_task_grid_is_bitwise_identical_serial_local_cluster_and_killed_then_resumed(tmp_path):
    pytest.importorskip("distributed")
    spec = tmp_path / "grid.toml"
    spec.write_text(GRID_24)
    assert load_spec(str(spec)).size == 24

    serial = sweep(str(spec), tmp_path / "serial.jsonl", serial=True)
    assert serial.backend == "serial" and serial.complete and serial.ran == 24
    reference = outputs_by_key(tmp_path / "serial.jsonl")
    assert len(reference) == 24

    local = sweep(str(spec), tmp_path / "local.jsonl", workers=2)
    assert local.backend == "local cluster, 2 workers" and local.complete
    assert {r["timing"]["threads"] for r in local.rows} == {1}          # single-threaded in the workers
    assert len({r["timing"]["pid"] for r in local.rows}) >= 1
    assert outputs_by_key(tmp_path / "local.jsonl") == reference

    # a real kill: SIGKILL a serial run after some rows are written
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SERIAL, "sweep", str(spec), "--out", str(out),
                             "--serial"], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while lines(out) < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    written = lines(out)
    assert 8 <= written < 24, written
    with open(out, "ab") as fh:                   # and a line cut in the middle of a write
        fh.write(b'{"key": "0123456789abcdef", "verb": "simu')
    resumed = sweep(str(spec), out, workers=2)
    assert resumed.skipped == written and resumed.ran == 24 - written and resumed.complete
    assert any("half-written" in n for n in resumed.notes)
    assert lines(out) == 24
    assert outputs_by_key(out) == reference
    # nothing left to do: no task runs again
    again = sweep(str(spec), out, serial=True)
    assert again.ran == 0 and again.skipped == 24


# --------------------------------------------------------- failures
def test_a_failing_task_is_recorded_with_its_error_and_the_others_complete(tmp_path):
    spec = {"verb": "predict", "fixed": {"depth": 3}, "grid": {"cw": [-1.0, 1.0, 1.5], "width": [8, 16]}}
    res = sweep(spec, tmp_path / "r.jsonl", serial=True)
    rows = read_results(tmp_path / "r.jsonl")
    assert len(rows) == 6
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2 and {r["args"]["cw"] for r in failed} == {-1.0}
    for r in failed:
        assert r["error"] == "ParameterError: C_W: must be > 0, got -1.0"
        assert "\n" not in r["error"] and r["outputs"] is None
    assert all(r["outputs"]["K"] for r in rows if r["status"] == "ok")
    assert len(res.failed) == 2 and not res.complete
    # failed tasks are not rerun on resume unless asked
    assert sweep(spec, tmp_path / "r.jsonl", serial=True).ran == 0
    assert sweep(spec, tmp_path / "r.jsonl", serial=True, retry_failed=True).ran == 2


def test_a_failing_task_on_the_cluster_and_the_cli_exit_status(tmp_path):
    pytest.importorskip("distributed")
    spec = tmp_path / "s.toml"
    spec.write_text('verb = "simulate"\n[fixed]\nsamples = 40\ndepth = 2\nwidth = 4\n'
                    '[grid]\ncw = [-1, 1.0, 1.3]\n')
    out = cli("sweep", spec, "--out", tmp_path / "r.jsonl", "--workers", "2")
    assert out.returncode == 1, out.stderr
    assert "3 tasks: 2 ok, 1 failed" in out.stdout
    assert "failed: cw=-1.0, depth=2, samples=40, width=4: ParameterError: C_W: must be > 0" in out.stdout
    rows = read_results(tmp_path / "r.jsonl")
    assert sorted(r["status"] for r in rows) == ["failed", "ok", "ok"]


# ---------------------------------------------------- no dask installed
def test_without_dask_the_sweep_runs_serially_with_the_same_numbers(tmp_path, monkeypatch):
    reference = sweep(SMALL, tmp_path / "serial.jsonl", serial=True)
    monkeypatch.setitem(sys.modules, "distributed", None)       # `import distributed` raises ImportError
    res = sweep(SMALL, tmp_path / "nodask.jsonl")
    assert res.backend == "serial" and res.complete
    assert any("dask.distributed is not installed" in n for n in res.notes)
    assert outputs_by_key(tmp_path / "nodask.jsonl") == outputs_by_key(tmp_path / "serial.jsonl")
    assert len(reference.rows) == 4
    with pytest.raises(ParameterError) as err:
        sweep(SMALL, tmp_path / "x.jsonl", scheduler="tcp://127.0.0.1:1")
    assert err.value.parameter == "scheduler"


# ----------------------------------------------------- results file
def test_results_file_ignores_a_half_written_line_and_is_locked(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as rf:
        rf.append({"key": "a", "status": "ok", "x": 1.5})
        with pytest.raises(ParameterError) as err:
            ResultsFile(path)                       # a second sweep on the same file
        assert err.value.parameter == "out"
    with open(path, "ab") as fh:
        fh.write(b'{"key": "b", "sta')
    assert [r["key"] for r in read_results(path)] == ["a"]
    with ResultsFile(path) as rf:
        assert rf.partial and [r["key"] for r in rf.rows] == ["a"]
        rf.append({"key": "c", "status": "ok"})
    assert [r["key"] for r in read_results(path)] == ["a", "c"]
    assert path.read_bytes().endswith(b"\n")


def test_compare_verb_and_rows(tmp_path):
    spec = {"verb": "compare", "fixed": {"samples": 60, "depth": 2, "width": 6},
            "grid": {"activation": ["tanh", "relu"]}}
    res = sweep(spec, tmp_path / "c.jsonl", serial=True)
    assert res.complete
    row = res.rows[0]
    assert set(row) >= {"key", "verb", "args", "seed", "status", "error", "outputs", "timing", "software"}
    assert "V/K^2" in row["outputs"]["quantities"] and row["software"]["fwtheory"]
    assert row["outputs"]["samples"] == 60


# ------------------------------------------------------------- report
def test_report_table_json_and_plot(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('verb = "simulate"\nseed = 2\n[fixed]\nsamples = 40\ndepth = 3\n'
                    '[grid]\nwidth = [4, 6]\ncw = [-1, 1.0, 1.2]\n')
    assert cli("sweep", spec, "--serial").returncode == 1            # default --out: s.jsonl
    results = tmp_path / "s.jsonl"
    assert lines(results) == 6
    rep = cli("sweep", "--report", results, "--plot", tmp_path / "p.png", "--output", "K", "--x", "cw")
    assert rep.returncode == 0, rep.stderr
    assert "6 tasks (simulate): 4 ok, 2 failed" in rep.stdout
    assert "# fixed: depth=3, samples=40" in rep.stdout
    assert "C_W: must be > 0, got -1.0" in rep.stdout
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    js = cli("sweep", "--report", results, "--json")
    assert len(json.loads(js.stdout)) == 6
    bad = cli("sweep", "--report", results, "--output", "nope")
    assert bad.returncode == 2 and "error: output: unknown output 'nope'" in bad.stderr


# --------------------------------------------------------------- cost
def test_a_long_sweep_is_refused_without_force(tmp_path):
    spec = {"verb": "simulate", "fixed": {"samples": 100000, "depth": 100, "width": 256},
            "grid": {"cw": [1.0, 1.1, 1.2]}}
    with pytest.raises(ParameterError) as err:
        sweep(spec, tmp_path / "r.jsonl", serial=True)
    assert "--force" in str(err.value) and "samples" in err.value.parameter
    assert not (tmp_path / "r.jsonl").exists()


def test_public_name():
    import fwtheory

    assert fwtheory.sweep is sweep
    from fwtheory.cli import COMMANDS

    assert "sweep" in COMMANDS


def test_an_existing_scheduler_and_machinery_failures_are_rerun(tmp_path):
    distributed = pytest.importorskip("distributed")
    reference = outputs_by_key_after(sweep(SMALL, tmp_path / "serial.jsonl", serial=True))
    out = tmp_path / "remote.jsonl"
    first = load_spec(SMALL).tasks()[0]
    with ResultsFile(out) as rf:      # a task lost with its worker, as _run_dask records it
        rf.append({"key": first.key, "verb": "simulate", "args": first.args, "seed": first.seed,
                   "status": "failed", "error": "worker: KilledWorker: ...", "outputs": None})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        res = sweep(SMALL, out, scheduler=cluster.scheduler_address)
    assert res.backend == f"scheduler {cluster.scheduler_address}"
    assert res.ran == 4 and res.complete
    assert outputs_by_key_after(res) == reference


def outputs_by_key_after(result):
    return {r["key"]: json.dumps(r["outputs"], sort_keys=True) for r in result.rows}


def test_toml_and_dict_specs_are_the_same_sweep(tmp_path):
    spec = tmp_path / "g.toml"
    spec.write_text(GRID_24)
    as_dict = {"verb": "simulate", "seed": 7, "fixed": {"activation": "tanh", "samples": 200},
               "grid": {"width": [8, 16], "depth": [2, 3, 4], "cw": [0.9, 1, 1.1, 1.2]}}
    assert [(t.key, t.seed) for t in load_spec(str(spec)).tasks()] == \
        [(t.key, t.seed) for t in load_spec(as_dict).tasks()]
    widths = load_spec({"verb": "simulate", "fixed": {"input-dim": 4},
                        "grid": {"widths": [[8, 16], "16,32"]}})
    assert [t.args for t in widths.tasks()] == [{"input_dim": 4, "widths": [8, 16]},
                                                {"input_dim": 4, "widths": [16, 32]}]


def test_progress_line():
    import io

    from fwtheory.sweeps.execute import SweepProgress

    stream = io.StringIO()
    bar = SweepProgress(4, stream=stream, force=True)
    bar.update(running=2)
    bar.update(done=1, failed=1, running=2)
    bar.close()
    text = stream.getvalue()
    assert "1/4 done, 2 running, 1 failed" in text and "s left" in text and text.endswith("\n")


def test_the_spec_on_the_docs_page_is_the_tested_grid(tmp_path):
    import re

    page = (ROOT / "docs" / "sweeps.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", page, flags=re.S)
    (tmp_path / "cw_scan.toml").write_text(block)
    spec = load_spec(str(tmp_path / "cw_scan.toml"))
    assert spec.size == 24 and spec.verb == "simulate" and spec.name == "tanh C_W scan"
    assert spec.grid == load_spec(GRID_24.replace("seed = 7", "seed = 0")).grid


def test_local_cluster_workers_have_one_thread_each():
    pytest.importorskip("distributed")
    from fwtheory.sweeps.execute import WORKER_ENV, _start_local_cluster

    before = {k: os.environ.get(k) for k in WORKER_ENV}
    cluster, client = _start_local_cluster(1)
    try:
        env = client.run(lambda: {k: os.environ.get(k) for k in list(WORKER_ENV) + ["MALLOC_TRIM_THRESHOLD_"]})
        assert list(env.values()) == [dict(WORKER_ENV, MALLOC_TRIM_THRESHOLD_=None)]
        assert list(client.nthreads().values()) == [1]
        import dask

        assert client.run(lambda: dask.config.get("distributed.worker.profile.enabled")) == \
            {w: False for w in client.nthreads()}
    finally:
        client.close()
        cluster.close()
    assert {k: os.environ.get(k) for k in WORKER_ENV} == before          # this process's are restored
