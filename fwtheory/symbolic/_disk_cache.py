"""A disk cache of derived expressions, keyed by the package version and the
source of :mod:`fwtheory.symbolic` (so an edited engine never reads stale results).

Location: ``$FWTHEORY_CACHE_DIR``, else ``$XDG_CACHE_HOME/fwtheory``, else
``~/.cache/fwtheory``; ``FWTHEORY_CACHE_DIR=off`` disables it. The cache is an
optimisation only: an unreadable or unwritable cache is ignored.
"""

__all__ = ["cached", "cache_dir"]

import hashlib
import os
import pickle
from functools import lru_cache


def cache_dir():
    env = os.environ.get("FWTHEORY_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fwtheory")


@lru_cache(maxsize=None)
def _fingerprint():
    from .. import __version__

    h = hashlib.sha256(__version__.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as fh:
                h.update(name.encode() + fh.read())
    return h.hexdigest()[:16]


def _sources_hash(sources):
    h = hashlib.sha256()
    for path in sources:
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:8]


def cached(key, compute, sources=()):
    """``compute()``, stored on disk under ``key`` (a tuple of str); ``sources``:
    further files whose content the stored value depends on."""
    directory = cache_dir()
    if directory is None:
        return compute()
    tag = _fingerprint() + ("-" + _sources_hash(sources) if sources else "")
    path = os.path.join(directory, "derive-%s-%s.pickle" % (tag, "-".join(map(str, key))))
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # missing or unreadable: recompute
        pass
    value = compute()
    try:
        from .._io import atomic_write_bytes

        os.makedirs(directory, exist_ok=True)
        atomic_write_bytes(path, pickle.dumps(value))
    except Exception:  # an unwritable cache only costs time
        pass
    return value
