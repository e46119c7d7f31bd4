"""Running a sweep: serially, on a local Dask cluster, or on an existing scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import SweepSpec

__all__ = ["sweep", "SweepResult", "SweepProgress", "estimate_seconds", "local_worker_count",
           "WORKER_ENV"]

import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from .._cost import STARTUP_SECONDS, announce, layer_seconds
from ..errors import ParameterError
from .results import ResultsFile, latest_rows
from .spec import load_spec
from .tasks import one_line, run_task, task_namespace

# one BLAS/OpenMP/numba thread per worker process: the parallelism is over tasks
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}
WORKER_ERROR = "worker: "       # prefix of failures of the machinery rather than of the task
CLUSTER_STARTUP_SECONDS = 5.0     # LocalCluster start plus the workers' first imports
PREDICT_TASK_SECONDS = 0.05       # a float64 predict at depth ~10 (the first one in a process ~2 s)


def local_worker_count():
    """Cores available to this process (one worker process each)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------ cost
def _task_cpu_seconds(task):
    try:
        ns = task_namespace(task.verb, task.args)
        if task.verb == "predict":
            return PREDICT_TASK_SECONDS
        widths = ns.widths
        if isinstance(widths, str):
            widths = [int(w) for w in widths.replace(",", " ").split()]
        ws = sorted(set(widths)) if widths else [ns.width]
        desc = bool(getattr(ns, "descendants", False))
        cpu = sum(max(0, ns.samples) * max(0, ns.depth) * layer_seconds(max(1, w), ns.ensemble, desc)
                  for w in ws)
        return cpu + (PREDICT_TASK_SECONDS if task.verb == "compare" else 0.0)
    except Exception:   # bad values: the task fails fast when it runs
        return 0.0


def estimate_seconds(tasks, slots, cluster=False):
    """Wall seconds of ``tasks`` on ``slots`` parallel workers (fwtheory._cost's model)."""
    cpu = sum(_task_cpu_seconds(t) for t in tasks)
    return STARTUP_SECONDS + (CLUSTER_STARTUP_SECONDS if cluster else 0.0) + cpu / max(1, slots)


def _check_cost(spec, tasks, slots, cluster, force):
    if not tasks:
        return None
    seconds = estimate_seconds(tasks, slots, cluster)
    big = [("grid", len(tasks), 1)]
    for name, default in (("samples", 4000), ("depth", 10), ("width", 64)):
        values = [t.args[name] for t in tasks if isinstance(t.args.get(name), (int, float))]
        if values:
            big.append((name, max(values), default))
    return announce("sweep", seconds, big, force=force,
                    detail=f" for {len(tasks)} tasks on {slots} worker{'s' if slots != 1 else ''}")


# -------------------------------------------------------------- progress
class SweepProgress:
    """One stderr line: done / running / failed and the estimated time left.
    Shown only when the stream is a terminal (or ``force``)."""

    def __init__(self, total, stream=None, force=False, label="sweep"):
        self.total = max(int(total), 0)
        self.stream = stream or sys.stderr
        self.enabled = force or getattr(self.stream, "isatty", lambda: False)()
        self.label = label
        self.start = time.monotonic()
        self.done = self.failed = self.running = 0
        self._shown = False
        self._last = 0.0

    def line(self):
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        if self.done:
            eta = f"{elapsed / self.done * left:.0f}s left"
        else:
            eta = "time left: -"
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(24 * frac)
        return (f"{self.label} [{bar:<24}] {self.done}/{self.total} done, {self.running} running, "
                f"{self.failed} failed, {elapsed:.0f}s, {eta}")

    def update(self, done=0, failed=0, running=None):
        self.done += done
        self.failed += failed
        if running is not None:
            self.running = running
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            self._stale = True
            return
        self._draw(now)

    def _draw(self, now):
        self._last = now
        self._stale = False
        self.stream.write("\r" + self.line() + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self):
        if self.enabled and getattr(self, "_stale", False):
            self._draw(time.monotonic())      # the last state, not the last drawn one
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- result
@dataclass
class SweepResult:
    """What :func:`sweep` did. ``rows``: the latest row of every task of the
    spec found in the results file, in grid order (missing tasks absent)."""

    spec: object
    path: str
    rows: list
    ran: int
    skipped: int
    backend: str
    dashboard: str = None
    notes: list = field(default_factory=list)

    @property
    def failed(self):
        return [r for r in self.rows if r["status"] != "ok"]

    @property
    def complete(self):
        return len(self.rows) == self.spec.size and not self.failed

    def summary(self):
        ok = sum(r["status"] == "ok" for r in self.rows)
        return (f"{self.spec.size} tasks: {ok} ok, {len(self.failed)} failed, "
                f"{self.spec.size - len(self.rows)} missing; ran {self.ran} ({self.backend}), "
                f"{self.skipped} already in {self.path}")


# ------------------------------------------------------------- backends
def _run_serial(tasks, write, bar):
    for t in tasks:
        bar.update(running=1)
        row = run_task(t.verb, t.args, t.seed, t.key, single_threaded=False)
        write(t, row)
        bar.update(done=1, failed=row["status"] != "ok", running=0)


def _worker_failure_row(task, exc):
    return {"key": task.key, "verb": task.verb, "args": dict(task.args), "seed": task.seed,
            "status": "failed", "error": f"{WORKER_ERROR}{one_line(exc)}", "outputs": None, "warnings": [],
            "timing": None, "software": None}


def _retry(row, retry_failed):
    """Run a recorded task again? Failed ones with ``retry_failed``; those that failed
    in the machinery (a worker died, a scheduler could not load the task: error
    "worker: ...") always."""
    if row["status"] == "ok":
        return False
    return retry_failed or str(row.get("error") or "").startswith(WORKER_ERROR)


def _run_dask(tasks, client, write, bar):
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    by_key = {}
    futures = []
    for t in tasks:
        f = client.submit(run_task, t.verb, t.args, t.seed, t.key, True,
                          key=f"fwtheory-sweep-{t.key}-{token}", pure=False, retries=0)
        by_key[f.key] = t
        futures.append(f)
    try:
        slots = sum(client.nthreads().values()) or 1
    except Exception:  # pragma: no cover
        slots = 1
    pending = len(futures)
    bar.update(running=min(pending, slots))
    try:
        for f in as_completed(futures):
            task = by_key[f.key]
            try:
                row = f.result()
            except Exception as exc:     # the worker died or the task could not be run there
                row = _worker_failure_row(task, exc)
            write(task, row)
            pending -= 1
            f.release()
            bar.update(done=1, failed=row["status"] != "ok", running=min(pending, slots))
    except BaseException:
        client.cancel([f for f in futures if not f.done()])
        raise


def _dask_available():
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _start_local_cluster(workers):
    """A LocalCluster of ``workers`` single-threaded processes with :data:`WORKER_ENV`.
    Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` for its workers is left out: it
    returns freed memory to the OS eagerly, and the samplers' allocations then
    cost page faults (~10% per task, measured on small simulate tasks). The workers'
    statistical profiler (a stack sample every 10 ms, for the dashboard's profile
    page) is off: ~5-10% per task."""
    import dask
    from distributed import Client, LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    environ.update(WORKER_ENV)
    saved = {k: os.environ.get(k) for k in list(WORKER_ENV) + ["MALLOC_TRIM_THRESHOLD_"]}
    os.environ.update(WORKER_ENV)   # inherited by the worker processes spawned now
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)   # also left here by earlier Dask nannies
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR, env=dict(WORKER_ENV))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return cluster, Client(cluster)


def _dashboard(client):
    try:
        if "dashboard" in (client.scheduler_info().get("services") or {}):
            return client.dashboard_link
    except Exception:  # pragma: no cover
        pass
    return None


def sweep(spec: str | os.PathLike | Mapping[str, Any] | SweepSpec, out: str | os.PathLike, *, seed: int | None = None,
          scheduler: str | None = None, client: Any = None, serial: bool = False, workers: int | None = None,
          retry_failed: bool = False, force: bool = False, progress: bool | None = None,
          stream: Any = None) -> SweepResult:
    """Run a sweep: every grid point of ``spec`` is one task of its verb, each
    finished task one JSON line appended to ``out``.

    Parameters
    ----------
    spec : str, path, dict or SweepSpec
        A TOML file (or TOML text, or the same content as a dict; :mod:`fwtheory.sweeps.spec`):
        ``verb`` ("predict", "simulate", "compare"), ``[fixed]`` arguments with the
        CLI's names, ``[grid]`` lists whose product gives the tasks, ``seed``.
    out : str or path
        The results file (JSON lines). Tasks already in it (by task key) are not
        run again: restarting a killed sweep runs only the missing tasks.
    seed : int, optional
        Overrides the spec's seed.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://host:8786"``.
    client : distributed.Client, optional
        An existing Dask client (instead of ``scheduler``).
    serial : bool
        Run in this process, one task after the other (Monte Carlo on its own
        threads). Also the fallback when ``dask.distributed`` is not installed.
    workers : int, optional
        Worker processes of the local cluster (default: one per core), each with
        one thread and one BLAS thread.
    retry_failed : bool
        Run again the tasks recorded as failed (a newer row supersedes).
    force : bool
        Run even when the estimated time exceeds the 30-minute limit.
    progress : bool, optional
        A live line on stderr (when it is a terminal): done, running, failed, time
        left; the notes (dask missing, a half-written line dropped) are printed on
        stderr before the run.

    Returns
    -------
    SweepResult

    Raises
    ------
    ParameterError
        An invalid spec (unknown verb, key or argument, wrongly typed value),
        an unusable results file, ``scheduler`` without dask.distributed, or an
        estimated run time beyond the limit without ``force``.

    Notes
    -----
    Each task's seed comes from the sweep seed and the task's own arguments
    (:func:`fwtheory.sweeps.spec.task_seed`), and ``simulate`` is bit-identical
    at any thread count, so a task gives the same numbers serially, on any
    worker, in any order, and after a resume.
    """
    stream = sys.stderr if stream is None else stream
    spec = load_spec(spec, seed)
    tasks = spec.tasks()
    notes = []
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError("workers", f"must be an integer >= 1, got {workers!r}")
    if serial and (scheduler or client):
        raise ParameterError("serial", "cannot be combined with a scheduler")
    if scheduler and not _dask_available():
        raise ParameterError("scheduler", "needs dask.distributed (pip install 'fwtheory[distributed]')")
    created = not os.path.exists(out)
    with ResultsFile(out) as results:
        if results.partial:
            notes.append(f"{results.path}: ignored a half-written last line (an interrupted write)")
        if results.bad_lines:
            notes.append(f"{results.path}: ignored {results.bad_lines} unreadable lines")
        have = latest_rows(results.rows)
        todo = [t for t in tasks if t.key not in have or _retry(have[t.key], retry_failed)]
        skipped = len(tasks) - len(todo)
        grid_names = list(spec.grid)

        def write(task, row):
            # where the task sits in this sweep (metadata: not part of its identity)
            results.append(dict(row, index=task.index, grid=grid_names, sweep=spec.name))

        mode = "serial"
        if todo and not serial:
            if client is not None or scheduler:
                mode = "scheduler"
            elif not _dask_available():
                notes.append("dask.distributed is not installed: running serially "
                             "(pip install 'fwtheory[distributed]')")
            elif len(todo) > 1:
                mode = "local"
        nworkers = int(workers) if workers else local_worker_count()
        if mode == "serial":
            from .._cost import _workers

            slots = _workers()
        elif mode == "local":
            slots = nworkers
        else:
            slots = None
        try:
            if slots is not None:
                _check_cost(spec, todo, slots, mode == "local", force)
        except ParameterError:
            if created and not results.rows:
                os.unlink(results.path)        # a refused sweep leaves no empty results file behind
            raise
        if progress:
            for note in notes:
                print(f"fwtheory sweep: note: {note}", file=stream)
        own_cluster = own_client = None
        dashboard = None
        backend = mode if todo else "nothing to run"
        bar = SweepProgress(len(todo), stream=stream)
        bar.enabled = bar.enabled and bool(progress)
        try:
            if mode == "serial":
                _run_serial(todo, write, bar)
            else:
                if mode == "local":
                    own_cluster, own_client = _start_local_cluster(nworkers)
                    active = own_client
                    backend = f"local cluster, {nworkers} workers"
                elif client is not None:
                    active = client
                    backend = f"scheduler {client.scheduler.address}"
                else:
                    from distributed import Client

                    try:
                        active = own_client = Client(scheduler, timeout="20s")
                    except (OSError, TimeoutError) as exc:
                        raise ParameterError("scheduler", f"cannot connect to {scheduler}: {one_line(exc)}") \
                            from None
                    backend = f"scheduler {scheduler}"
                if mode == "scheduler":
                    slots = sum(active.nthreads().values()) or 1
                    _check_cost(spec, todo, slots, False, force)
                dashboard = _dashboard(active)
                if dashboard and progress:
                    print(f"fwtheory sweep: Dask dashboard: {dashboard}", file=stream)
                _run_dask(todo, active, write, bar)
        finally:
            bar.close()
            if own_client is not None:
                own_client.close()
            if own_cluster is not None:
                own_cluster.close()
        have = latest_rows(results.rows)
    rows = [have[t.key] for t in tasks if t.key in have]
    return SweepResult(spec=spec, path=results.path, rows=rows, ran=len(todo), skipped=skipped,
                       backend=backend, dashboard=dashboard, notes=notes)
