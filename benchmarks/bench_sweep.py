"""Benchmark: ``fwtheory sweep`` on a local Dask cluster against a serial sweep.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_sweep.py [--workers 2] [--only small|large]``

Two grids of ``simulate`` tasks, each run end to end as a user would (``python -m
fwtheory sweep SPEC --serial`` and ``... --workers N``, new processes, so imports,
the numba cache load and the cluster start are included):

* small tasks (width 16, 256 networks: one chunk, so simulate's own threads
  cannot share a task; 360 tasks at depth 150-300, ~0.1-0.2 s each): the
  cluster runs one task per core; target >= 1.7x on 2 cores.
* large tasks (24 tasks, width 128, 512 networks, depth 40: 64 chunks, simulate
  keeps both cores busy by itself): the cluster's one-thread workers run two tasks
  at a time; target: no slower than serial (ratio >= 0.9).

The cluster pays a fixed ~3.5 s (start 1.7 s, the workers' imports and numba
cache loads 1.2 s, shutdown 0.7 s, measured), so both grids are sized to take
about a minute serially on 2 idle cores; with much shorter grids that fixed
cost decides the ratio.

``--steady`` adds the same comparison in this process with the cluster already
started and warm (the throughput ratio without the fixed start-up costs).

Before the runs it measures what ``--workers`` independent CPU-bound processes get
on the machine right now (2.0x one process on 2 idle cores): on a shared machine
that is the ceiling of the ratios.

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
depth = [150, 225, 300]
cw = [{cws}]
"""

LARGE = """\
verb = "simulate"
[fixed]
activation = "tanh"
samples = 512
width = 128
depth = 40
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


def steady(name, text, workers, tmp):
    """Serial against an already started, warm cluster, in this process."""
    sys.path.insert(0, str(ROOT))
    from fwtheory.sweeps import sweep
    from fwtheory.sweeps.execute import _start_local_cluster

    spec = pathlib.Path(tmp) / f"{name}-steady.toml"
    spec.write_text(text)
    warm = {"verb": "simulate", "fixed": {"samples": 20, "width": 8, "depth": 2}, "grid": {"cw": [1.0, 1.1]}}
    cluster, client = _start_local_cluster(workers)
    try:
        sweep(warm, pathlib.Path(tmp) / "warm-c.jsonl", client=client)
        client.run(lambda: None)
        sweep(warm, pathlib.Path(tmp) / "warm-s.jsonl", serial=True)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        sweep(str(spec), pathlib.Path(tmp) / f"{name}-steady-serial.jsonl", serial=True, force=True)
        t1 = time.perf_counter()
        sweep(str(spec), pathlib.Path(tmp) / f"{name}-steady-cluster.jsonl", client=client, force=True)
        t2 = time.perf_counter()
    finally:
        client.close()
        cluster.close()
    print(f"{name} (steady state, cluster already running): serial {t1 - t0:.1f} s, cluster {t2 - t1:.1f} s, "
          f"ratio {(t1 - t0) / (t2 - t1):.2f}; load average before {load0[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(15_000_000):\n    x += i\n" \
        "print(time.perf_counter() - t)"


def machine_speedup(workers):
    """What ``workers`` independent processes get right now: the time of one CPU-bound
    pure-Python loop alone, times ``workers``, over the time of ``workers`` of them side
    by side (2.0 on an idle 2-core machine; ~1 when other jobs hold the cores)."""
    one = float(subprocess.run([sys.executable, "-c", _SPIN], capture_output=True, text=True).stdout)
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    many = max(float(p.communicate()[0]) for p in procs)
    return workers * one / many


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--small", type=int, default=120, help="cw values of the small grid (x3 depths)")
    ap.add_argument("--large", type=int, default=24, help="cw values (tasks) of the large grid")
    ap.add_argument("--only", choices=("small", "large"), default=None)
    ap.add_argument("--steady", action="store_true",
                    help="also time serial against an already started cluster, in this process")
    args = ap.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}; "
          f"{args.workers} independent processes get {machine_speedup(args.workers):.2f}x one process "
          f"right now (the ceiling of any ratio below)")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "small"):
            ratios["small"] = bench("small", SMALL.format(cws=_cws(args.small)), args.workers, tmp)
        if args.only in (None, "large"):
            ratios["large"] = bench("large", LARGE.format(cws=_cws(args.large)), args.workers, tmp)
        if args.steady:
            for name in ratios:
                text = (SMALL.format(cws=_cws(args.small)) if name == "small"
                        else LARGE.format(cws=_cws(args.large)))
                steady(name, text, args.workers, tmp)
    for name, (r, same) in ratios.items():
        target = 1.7 if name == "small" else 0.9
        print(f"{name} tasks: ratio {r:.2f} (target >= {target}: {'met' if r >= target else 'NOT met'})"
              + ("" if same else "; OUTPUTS DIFFER"))


if __name__ == "__main__":
    main()
