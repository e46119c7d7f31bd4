"""The results file of a sweep: JSON lines, one row per finished task.

Rows are appended one complete line at a time (write, flush, fsync), by the one
process that drives the sweep; a lock (``flock``) keeps a second sweep from
writing to the same file meanwhile. A half-written last line (the process was
killed mid-write) is cut off when the file is opened again and ignored by
:func:`read_results`.
"""

__all__ = ["ResultsFile", "read_results", "latest_rows", "dumps_row"]

import json
import os

from .._io import to_jsonable
from ..errors import ParameterError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


def dumps_row(row):
    return json.dumps(to_jsonable(row), separators=(",", ":"), allow_nan=False)


def _parse(data):
    """(rows, n_bad, partial): complete lines parsed; a last line without its newline
    is ``partial`` and not parsed."""
    rows, bad = [], 0
    cut = data.rfind(b"\n") + 1
    for line in data[:cut].splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and "key" in row and "status" in row:
            rows.append(row)
        else:
            bad += 1
    return rows, bad, cut < len(data)


def read_results(path):
    """The rows of a results file (a half-written last line is ignored)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ParameterError("report", f"no such results file: {path}") from None
    except OSError as exc:
        raise ParameterError("report", f"cannot read {path}: {exc.strerror or exc}") from None
    return _parse(data)[0]


def latest_rows(rows):
    """{key: row}, the last row of each key (a retried task supersedes its failure)."""
    out = {}
    for row in rows:
        out[row["key"]] = row
    return out


class ResultsFile:
    """An open, locked results file: the rows already in it and :meth:`append`."""

    def __init__(self, path):
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ParameterError("out", f"directory {directory} does not exist")
        try:
            self._fh = open(self.path, "a+b")
        except OSError as exc:
            raise ParameterError("out", f"cannot open {self.path}: {exc.strerror or exc}") from None
        if fcntl is not None:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._fh.close()
                raise ParameterError("out", f"{self.path} is being written by another sweep "
                                            "(wait for it, or choose another --out)") from None
        self._fh.seek(0)
        data = self._fh.read()
        self.rows, self.bad_lines, self.partial = _parse(data)
        if self.partial:                 # a line cut by a kill: drop it so the next row starts clean
            self._fh.truncate(data.rfind(b"\n") + 1)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def append(self, row):
        self._fh.write((dumps_row(row) + "\n").encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows.append(row)

    def close(self):
        if not self._fh.closed:
            self._fh.close()       # also releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
