"""Running one task of a sweep (in this process or on a Dask worker) and the
row it produces.

:func:`run_task` never raises for a failing task (``Exception``): the row then
has ``status = "failed"`` and the one-line error. A KeyboardInterrupt is
re-raised, also when :func:`fwtheory.simulate` caught it and returned a partial
result, so that an interrupted task is never recorded as done.
"""

__all__ = ["run_task", "task_namespace", "one_line"]

import argparse
import os
import platform
import socket
import time
import warnings
from datetime import datetime, timezone

from .spec import verb_arguments


def one_line(exc, limit=300):
    """``"ParameterError: C_W: must be > 0, got -1.0"``: the exception's message on one
    line (whitespace collapsed, at most ``limit`` characters)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def task_namespace(verb, args):
    """The argparse namespace ``fwtheory <verb>`` would build: the CLI defaults
    updated with the task's arguments."""
    ns = {dest: default for dest, (_t, default, _n, _f, _c) in verb_arguments(verb).items()}
    ns.update(args)
    return argparse.Namespace(**ns)


def _widths(value):
    if value is None:
        return None
    if isinstance(value, str):
        return [int(w) for w in value.replace(",", " ").split()]
    return [int(w) for w in value]


def _execute(verb, ns, seed):
    """Run the verb through the library; returns its ``to_dict()`` (which records the
    network with every default filled in, and the seed used)."""
    from ..cli._common import network_from_args

    net = network_from_args(ns)
    widths = _widths(getattr(ns, "widths", None))
    if verb == "predict":
        from ..prediction import predict

        return predict(net, input_norm=ns.input_norm, precision=ns.precision,
                       order=getattr(ns, "order", 1)).to_dict()
    from ..mc import simulate, simulate_preactivations

    order = getattr(ns, "order", 1) if verb == "compare" else 1
    # compare --order 2 and simulate --preactivations use the preactivation sampler
    preact = order == 2 or (verb == "simulate" and getattr(ns, "preactivations", False))
    if preact and verb == "simulate" and getattr(ns, "descendants", False):
        from ..errors import ParameterError

        raise ParameterError("descendants", "cannot be combined with preactivations (no NTK is propagated)")
    sampler = simulate_preactivations if preact else simulate
    sim = sampler(net, samples=ns.samples, seed=seed, widths=widths, input_norm=ns.input_norm)
    if sim.interrupted:
        raise KeyboardInterrupt
    if verb == "simulate":
        out = sim.to_dict()
        if getattr(ns, "descendants", False):
            from ..mc import simulate_descendants

            desc = simulate_descendants(net, samples=ns.samples, seed=seed, pairs=ns.pairs, widths=widths,
                                        input_norm=ns.input_norm)
            if desc.interrupted:
                raise KeyboardInterrupt
            out["descendants"] = desc.to_dict()
        return out
    from ..comparison import compare
    from ..prediction import predict

    prediction = predict(net, input_norm=ns.input_norm, order=order)
    return compare(prediction, sim, z=ns.z, rel_tol=ns.rel_tol).to_dict()


def _software():
    import numpy

    from .. import __version__

    return {"fwtheory": __version__, "numpy": numpy.__version__, "python": platform.python_version()}


def run_task(verb, args, seed, key, single_threaded=False):
    """Run one task and return its result row (a JSON-ready dict).

    ``single_threaded``: run the Monte Carlo on one thread with one BLAS thread
    (a Dask worker: the parallelism is over tasks). The numbers do not depend on
    it (simulate is bit-identical at any thread count).
    """
    from .._io import to_jsonable

    started = datetime.now(timezone.utc)
    t0, c0 = time.perf_counter(), time.process_time()
    row = {"key": key, "verb": verb, "args": dict(args), "seed": int(seed), "status": "ok", "error": None}
    threads = None
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if single_threaded:
                import numba

                from ..mc import _blas

                old = numba.get_num_threads()
                numba.set_num_threads(1)
                try:
                    with _blas.single_threaded():
                        threads = 1
                        outputs = _execute(verb, task_namespace(verb, args), seed)
                finally:
                    numba.set_num_threads(old)
            else:
                if verb != "predict":
                    from ..mc._runner import worker_count

                    threads = worker_count()
                outputs = _execute(verb, task_namespace(verb, args), seed)
        row["outputs"] = to_jsonable(outputs)
    except Exception as exc:  # a failing task is recorded and does not stop the sweep
        row["status"] = "failed"
        row["error"] = one_line(exc)
        row["outputs"] = None
    row["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught or []})
    row["timing"] = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                     "started": started.isoformat(timespec="milliseconds"),
                     "host": socket.gethostname(), "pid": os.getpid(), "threads": threads}
    row["software"] = _software()
    return row
