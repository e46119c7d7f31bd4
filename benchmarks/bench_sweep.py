"""Benchmark: ``fwtheory sweep`` on a local Dask cluster against a serial sweep.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_sweep.py [--workers 2] [--only small|large]``

Two grids of ``simulate`` tasks, each run end to end as a user would (``python -m
fwtheory sweep SPEC --serial`` and ``... --workers N``, new processes, so imports,
the numba cache load and the cluster start are included):

* small tasks (width 16, 256 networks: one chunk, so simulate's own threads
  cannot share a task; ~30-60 ms each): the cluster runs one task per core;
  target >= 1.7x on 2 cores.
* large tasks (width 128, 512 networks, depth 20: 64 chunks, simulate keeps both
  cores busy by itself): the cluster's one-thread workers run two tasks at a time;
  target: no slower than serial (ratio >= 0.9).

It also checks that both runs wrote bitwise-identical outputs, and prints the
load average (the machine may be shared: ratios are from one run each).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

SMALL = """\
verb = "simulate"
[fixed]
activation = "tanh"
samples = 256
width = 16
[grid]
depth = [30, 45, 60]
cw = [{cws}]
"""

LARGE = """\
verb = "simulate"
[fixed]
activation = "tanh"
samples = 512
width = 128
depth = 20
[grid]
cw = [{cws}]
"""


def _cws(k):
    return ", ".join(f"{0.8 + 0.5 * i / max(1, k - 1):.4f}" for i in range(k))


def _run(spec, out, extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fwtheory", "sweep", str(spec), "--out", str(out),
                           "--force", *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"sweep failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return dt


def _outputs(path):
    rows = [json.loads(line) for line in open(path)]
    return {r["key"]: json.dumps(r["outputs"], sort_keys=True) for r in rows}, \
        sum(r["timing"]["seconds"] for r in rows)


def bench(name, text, workers, tmp):
    spec = pathlib.Path(tmp) / f"{name}.toml"
    spec.write_text(text)
    load0 = os.getloadavg()
    serial = _run(spec, pathlib.Path(tmp) / f"{name}-serial.jsonl", ["--serial"])
    cluster = _run(spec, pathlib.Path(tmp) / f"{name}-cluster.jsonl", ["--workers", str(workers)])
    load1 = os.getloadavg()
    a, task_serial = _outputs(pathlib.Path(tmp) / f"{name}-serial.jsonl")
    b, task_cluster = _outputs(pathlib.Path(tmp) / f"{name}-cluster.jsonl")
    same = a == b
    print(f"{name}: {len(a)} tasks; serial {serial:.1f} s (sum of task times {task_serial:.1f} s), "
          f"local cluster with {workers} workers {cluster:.1f} s (sum of task times {task_cluster:.1f} s); "
          f"ratio serial/cluster = {serial / cluster:.2f}; identical outputs: {same}; "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    return serial / cluster, same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--small", type=int, default=80, help="cw values of the small grid (x3 depths)")
    ap.add_argument("--large", type=int, default=8, help="cw values (tasks) of the large grid")
    ap.add_argument("--only", choices=("small", "large"), default=None)
    args = ap.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "small"):
            ratios["small"] = bench("small", SMALL.format(cws=_cws(args.small)), args.workers, tmp)
        if args.only in (None, "large"):
            ratios["large"] = bench("large", LARGE.format(cws=_cws(args.large)), args.workers, tmp)
    for name, (r, same) in ratios.items():
        target = 1.7 if name == "small" else 0.9
        print(f"{name} tasks: ratio {r:.2f} (target >= {target}: {'met' if r >= target else 'NOT met'})"
              + ("" if same else "; OUTPUTS DIFFER"))


if __name__ == "__main__":
    main()
