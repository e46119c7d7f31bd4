"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""

import statistics
import time


def median_time(fn, repeat):
    """Median wall-clock seconds of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
