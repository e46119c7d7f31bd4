"""``fwtheory sweep``: a grid of predict/simulate/compare runs, serially or on Dask.

Importing this module is cheap (argparse only); dask, numba and the samplers
load in :func:`run`.
"""


def add_parser(sub):
    p = sub.add_parser(
        "sweep", help="run a grid of predict/simulate/compare tasks (Dask or serial), resumable; "
                      "--report turns the results into tables and a plot",
        description="Run every point of a sweep spec (a TOML file: verb = 'simulate', a [fixed] table "
                    "and a [grid] table of lists, with the CLI's argument names) as one task, on a "
                    "local Dask cluster (one single-threaded worker process per core), on an existing "
                    "scheduler (--scheduler tcp://host:8786) or serially (--serial; also when "
                    "dask.distributed is not installed). Each finished task is appended as one JSON "
                    "line to --out; rerunning on the same file runs only the missing tasks. Each "
                    "task's seed derives from the sweep seed and its own arguments, so its numbers "
                    "do not depend on where or in which order it ran. Exit status 1 when a task "
                    "failed (recorded with its error; the others run).")
    p.add_argument("spec", nargs="?", default=None, help="the sweep spec (TOML file)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="results file, JSON lines (default: the spec's name with .jsonl)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--serial", action="store_true", help="run the tasks one after the other in this process")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--seed", type=int, default=None, help="the sweep's seed (default: the spec's, else 0)")
    p.add_argument("--retry-failed", action="store_true", help="run again the tasks recorded as failed")
    p.add_argument("--force", action="store_true",
                   help="run even when the estimated time exceeds the 30-minute limit (fwtheory._cost)")
    p.add_argument("--report", default=None, metavar="RESULTS",
                   help="print the tables of a results file instead of running a sweep")
    p.add_argument("--output", default=None, metavar="NAME",
                   help="with --report: the output shown and plotted, a ratio such as 'V/K^2' (default) "
                        "or a correlator such as K")
    p.add_argument("--layer", type=int, default=None, help="with --report: the layer (default: the last)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="with --report: write a PNG of the output against a grid parameter")
    p.add_argument("--x", default=None, metavar="PARAM",
                   help="with --plot: the grid parameter on the x axis (default: the one with most values)")
    p.add_argument("--json", action="store_true",
                   help="print JSON (a run: its summary; --report: the latest row of every task)")
    p.set_defaults(func=run)
    return p


def _default_out(spec):
    import os

    root, _ = os.path.splitext(spec)
    return root + ".jsonl"


def _report(args):
    import sys

    from .._io import dumps_json
    from ..errors import ParameterError
    from ..sweeps import report_plot, report_rows, report_table
    from ..sweeps.report import DEFAULT_OUTPUT

    if args.spec is not None:
        raise ParameterError("report", "give either a spec to run or --report RESULTS, not both")
    rows = report_rows(args.report)
    output = args.output or DEFAULT_OUTPUT
    if args.json:
        sys.stdout.write(dumps_json(rows) + "\n")
    else:
        sys.stdout.write(report_table(rows, output=output, layer=args.layer) + "\n")
    if args.plot:
        report_plot(args.plot, rows, output=output, x=args.x, layer=args.layer)
    return 0


def run(args):
    import sys

    from .._io import dumps_json
    from ..errors import ParameterError

    if args.report is not None:
        return _report(args)
    if args.spec is None:
        raise ParameterError("spec", "give a sweep spec (TOML file) to run, or --report RESULTS")
    for name in ("output", "plot", "x", "layer"):
        if getattr(args, name) is not None:
            raise ParameterError(name.replace("_", "-"), "only applies with --report")
    from ..sweeps import load_spec, sweep

    spec = load_spec(args.spec, seed=args.seed)       # validated before anything starts
    out = args.out or _default_out(args.spec)
    try:
        result = sweep(spec, out, scheduler=args.scheduler, serial=args.serial, workers=args.workers,
                       retry_failed=args.retry_failed, force=args.force, progress=True)
    except KeyboardInterrupt:
        print(f"fwtheory sweep: interrupted; finished tasks are in {out} (run again to resume)",
              file=sys.stderr)
        return 130
    if args.json:
        sys.stdout.write(dumps_json({"results": result.path, "tasks": spec.size, "ran": result.ran,
                                     "skipped": result.skipped, "backend": result.backend,
                                     "ok": sum(r["status"] == "ok" for r in result.rows),
                                     "failed": [{"key": r["key"], "args": r["args"], "error": r["error"]}
                                                for r in result.failed],
                                     "dashboard": result.dashboard}) + "\n")
    else:
        sys.stdout.write(f"fwtheory sweep: {result.summary()}\n")
        for r in result.failed:
            sys.stdout.write(f"  failed: {', '.join(f'{k}={v}' for k, v in r['args'].items())}: {r['error']}\n")
    return 1 if result.failed else 0
