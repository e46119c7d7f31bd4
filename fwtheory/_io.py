"""Small I/O helpers shared by the CLI and the library: atomic file writes,
JSON encoding of numpy results, plain-text tables and a progress bar."""

__all__ = ["atomic_write_text", "atomic_write_bytes", "to_jsonable", "dumps_json",
           "format_table", "layer_ranges", "ProgressBar"]

import json
import math
import os
import sys
import tempfile
import time

import numpy as np


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically: a temporary file in the same
    directory, fsync, then ``os.replace``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fwtheory-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; give the usual mode
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)       # fallback: briefly set and restore (not thread-safe)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj):
    """Convert numpy scalars/arrays (recursively) to JSON-ready Python objects;
    non-finite floats become ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def dumps_json(obj):
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False)


def _fmt(v):
    if isinstance(v, str):
        return v
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:.6g}"
    return f"{v:.4e}"


def format_table(header, rows, align="right"):
    """Plain-text table with a rule under the header; cells right-aligned
    (numbers) or ``align="left"`` (text, trailing blanks stripped)."""
    cells = [[_fmt(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if align == "left":
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    else:
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def layer_ranges(layers):
    """'3-5, 9' from [3, 4, 5, 9] (sorted integers)."""
    parts, start = [], None
    for i, l in enumerate(layers):
        if start is None:
            start = l
        if i + 1 == len(layers) or layers[i + 1] != l + 1:
            parts.append(f"{start}" if start == l else f"{start}-{l}")
            start = None
    return ", ".join(parts)


class ProgressBar:
    """A minimal stderr progress bar that shows itself only on runs longer
    than ``delay`` seconds and only when stderr is a terminal (or ``force``)."""

    def __init__(self, total, label="", delay=2.0, stream=None, force=False):
        self.total = max(int(total), 1)
        self.label = label
        self.delay = delay
        self.stream = stream or sys.stderr
        self.enabled = force or getattr(self.stream, "isatty", lambda: False)()
        self.start = time.monotonic()
        self.done = 0
        self._shown = False

    def update(self, k=1):
        self.done += k
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        if elapsed < self.delay and self.done < self.total:
            return
        frac = min(self.done / self.total, 1.0)
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} "
                          f"{elapsed:5.1f}s eta {eta:5.1f}s")
        self.stream.flush()
        self._shown = True

    def close(self):
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
