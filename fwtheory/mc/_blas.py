"""One BLAS thread per sampler worker thread.

The samplers run independent chunks of networks on worker threads, and each
kernel multiplies n x n matrices through the BLAS that numba calls (SciPy's
OpenBLAS, via ``scipy.linalg.cython_blas``). From n ~ 128 on, OpenBLAS splits
every product over all cores by itself, which on top of the worker threads
oversubscribes the machine. Measured on 2 cores, tanh, per network and layer:
n = 128: 223 us with one worker and threaded BLAS, 124 us with two workers and
one BLAS thread each; n = 192: 528 us against 365 us.

OpenBLAS >= 0.3.27 has ``openblas_set_num_threads_local(k)``, which sets the
thread count for the calling thread only; :func:`limit_this_thread` calls it in
each worker thread (nothing else in the process is affected, and the setting
ends with the thread). Where it is not available (another BLAS, an older
OpenBLAS, no ``/proc/self/maps``) :func:`available` is False and the caller
keeps one worker for large n instead.
"""

__all__ = ["available", "limit_this_thread"]

import ctypes
import functools
import os


@functools.lru_cache(maxsize=None)
def _setters():
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded in the process."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba calls)
    except ImportError:  # pragma: no cover - scipy is a dependency
        return ()
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:  # pragma: no cover - not Linux
        return ()
    setters = []
    for path in sorted(paths):
        if not os.path.isfile(path):
            continue
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        setters.append(fn)
    return tuple(setters)


def available():
    """True if the BLAS thread count can be set per thread here."""
    return bool(_setters())


def limit_this_thread(threads=1):
    """Let the calling thread's BLAS calls use ``threads`` threads (no-op where
    not :func:`available`). Used as the worker threads' initializer."""
    for fn in _setters():
        fn(int(threads))
