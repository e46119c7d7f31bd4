"""Small I/O helpers shared by the CLI and the library: atomic file writes,
JSON encoding of numpy results, plain-text tables and a progress bar.

Output locations: a missing parent directory of an output file (or a missing
output directory) is created, like ``mkdir -p``; a location that cannot be
created or written (a parent that is a regular file, no permission, a
read-only file system, a path that is a directory) raises
:class:`fwtheory.errors.ParameterError` naming the option, one line, so the
CLI exits with status 2 instead of printing a traceback. The CLI checks its
output locations with :func:`check_output_file` / :func:`check_output_dir`
before any computation starts.
"""

__all__ = ["atomic_write_text", "atomic_write_bytes", "check_output_file", "check_output_dir",
           "to_jsonable", "dumps_json", "format_table", "layer_ranges", "ProgressBar", "write_png_and_json"]

import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from .errors import ParameterError


def _reason(exc):
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


def _output_path(path, parameter):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ParameterError(parameter, f"must be a file path, got {path!r}")
    path = os.fsdecode(os.fspath(path))
    if not path or "\0" in path:
        raise ParameterError(parameter, f"must be a non-empty file path, got {path!r}")
    return path


def check_output_dir(directory, parameter="out_dir"):
    """Create ``directory`` (and its parents) if missing and check that a file
    can be created in it; return it. Raises :class:`ParameterError` naming
    ``parameter`` otherwise."""
    directory = _output_path(directory, parameter)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ParameterError(parameter, f"{directory!r} exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise ParameterError(parameter, f"cannot create the directory {directory!r}: "
                                        f"{_reason(exc)}") from None
    if not os.path.isdir(directory):
        raise ParameterError(parameter, f"{directory!r} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fwtheory-probe-", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ParameterError(parameter, f"cannot write into {directory!r}: {_reason(exc)}") from None
    return directory


def check_output_file(path, parameter="path"):
    """Check that ``path`` can be written (atomically) before any work is done:
    its directory is created if missing and must be writable, and ``path``
    must not be a directory. Returns the path; raises :class:`ParameterError`
    naming ``parameter`` otherwise."""
    path = _output_path(path, parameter)
    if path.endswith(os.sep) or os.path.isdir(path):
        raise ParameterError(parameter, f"{path!r} is a directory; give a file name")
    check_output_dir(os.path.dirname(os.path.abspath(path)), parameter)
    return path


def atomic_write_bytes(path, data, parameter="path"):
    """Write ``data`` to ``path`` atomically: a temporary file in the same
    directory, fsync, then ``os.replace``. A missing directory is created;
    an unwritable location raises :class:`ParameterError` naming ``parameter``."""
    path = check_output_file(path, parameter)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fwtheory-", dir=directory)
    except OSError as exc:
        raise ParameterError(parameter, f"cannot write {path!r}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; give the usual mode
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ParameterError(parameter, f"cannot write {path!r}: {_reason(exc)}") from None
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


def atomic_write_text(path, text, parameter="path"):
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), parameter)


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


def write_png_and_json(out_dir, stem, png, payload, parameter="path"):
    """Write ``<stem>.png`` (the bytes ``png``) and ``<stem>.json`` (``payload`` by
    :func:`dumps_json`) into ``out_dir`` atomically; return both paths. Write errors
    name ``parameter``."""
    png_path, json_path = os.path.join(out_dir, f"{stem}.png"), os.path.join(out_dir, f"{stem}.json")
    atomic_write_bytes(png_path, png, parameter)
    atomic_write_text(json_path, dumps_json(payload) + "\n", parameter)
    return png_path, json_path


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
