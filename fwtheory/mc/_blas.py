"""Single-threaded BLAS while the samplers' worker threads run.

The samplers run independent chunks of networks on worker threads, and each
kernel multiplies n x n matrices through the BLAS that numba calls (SciPy's
OpenBLAS, via ``scipy.linalg.cython_blas``). From n ~ 128 on, OpenBLAS splits
every product over all cores by itself, which on top of the worker threads
oversubscribes the machine. Measured on 2 cores, tanh, per network and layer:
n = 128: 223 us with one worker and threaded BLAS, 122 us with two workers and
one BLAS thread; n = 192: 528 us against 357 us.

:func:`single_threaded` sets the thread count of every OpenBLAS loaded in the
process to 1 for the duration of a run and restores it afterwards (what
threadpoolctl's ``threadpool_limits`` does; OpenBLAS's count is process-wide,
so BLAS calls of other threads are single-threaded meanwhile too). Where no
OpenBLAS with the get/set calls is found (another BLAS, no
``/proc/self/maps``), :func:`available` is False and the caller keeps one
worker for large n instead.
"""

__all__ = ["available", "single_threaded"]

import contextlib
import ctypes
import functools
import os
import threading

# (get, set) symbol pairs of OpenBLAS builds: plain, and SciPy's/NumPy's prefixed wheels
_SYMBOLS = (
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
)
_lock = threading.Lock()
_depth = 0
_saved = []


@functools.lru_cache(maxsize=None)
def _controls():
    """(get, set) of every OpenBLAS loaded in the process."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba calls)
    except ImportError:  # pragma: no cover - scipy is a dependency
        return ()
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:  # pragma: no cover - not Linux
        return ()
    controls = []
    for path in sorted(paths):
        if not os.path.isfile(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:  # pragma: no cover
            continue
        for get_name, set_name in _SYMBOLS:
            get, set_ = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                controls.append((get, set_))
                break
    return tuple(controls)


def available():
    """True if the OpenBLAS thread count can be set here."""
    return bool(_controls())


def thread_counts():
    """Current thread count of each controlled OpenBLAS (for tests and diagnostics)."""
    return [get() for get, _ in _controls()]


@contextlib.contextmanager
def single_threaded():
    """One BLAS thread inside the block; the previous counts are restored when the
    last of any nested or concurrent blocks exits. No-op where not :func:`available`."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = [get() for get, _ in _controls()]
            for _, set_ in _controls():
                set_(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (_, set_), k in zip(_controls(), _saved):
                    set_(k)
