"""Shared machinery of the validation claims: provenance, seeds, statistics,
figures and atomic output (JSON + PNG through :mod:`fwtheory._io`)."""

__all__ = ["Report", "provenance", "claim_seed", "zscores", "new_figure", "save_figure"]

import math
import os
import platform
import subprocess
import time
from datetime import datetime, timezone

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, dumps_json


# ------------------------------------------------------------ provenance
def _git(args, cwd):
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_info():
    """(commit, dirty) of the source tree this package was imported from, or
    (None, None) for an installed copy outside a git checkout. Read-only git
    commands only (``rev-parse``, ``diff --quiet``); ``dirty`` covers tracked
    files under fwtheory/."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../fwtheory
    root = os.path.dirname(pkg)
    top = _git(["rev-parse", "--show-toplevel"], root)
    if top is None or os.path.realpath(top) != os.path.realpath(root):
        return None, None
    commit = _git(["rev-parse", "HEAD"], root)
    try:
        rc = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "fwtheory"], cwd=root,
                            capture_output=True, timeout=10).returncode
        dirty = None if rc not in (0, 1) else bool(rc)
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return commit, dirty


def provenance():
    """Versions, git commit and time stamp recorded in every validation JSON."""
    import numba
    import sympy

    from .. import __version__

    commit, dirty = _git_info()
    return {
        "fwtheory_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "sympy": sympy.__version__,
        "platform": platform.platform(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def claim_seed(seed, claim, part=0):
    """Independent simulation seed for sub-run ``part`` of claim ``claim``:
    the first word of ``SeedSequence([seed, claim, part])``. Claims never share
    random streams, and every derived seed is written to the JSON."""
    return int(np.random.SeedSequence([int(seed), int(claim), int(part)]).generate_state(1)[0])


# ------------------------------------------------------------ statistics
def zscores(measured, se, expected, atol=1e-9):
    """(measured - expected) / se elementwise. Where se == 0 (exact values,
    e.g. layer 1) the z-score is 0 if |measured - expected| <= atol * max(1, |expected|),
    else inf. NaN inputs give NaN."""
    m = np.asarray(measured, dtype=float)
    s = np.asarray(se, dtype=float)
    e = np.asarray(expected, dtype=float)
    diff = m - e
    with np.errstate(divide="ignore", invalid="ignore"):
        exact_ok = np.abs(diff) <= atol * np.maximum(1.0, np.abs(e))
        return np.where(s > 0, diff / np.where(s > 0, s, 1.0), np.where(exact_ok, 0.0, np.inf))


def max_abs(values):
    """max |x| ignoring NaN (NaN if all are NaN)."""
    v = np.abs(np.asarray(values, dtype=float)).ravel()
    v = v[~np.isnan(v)]
    return float(v.max()) if v.size else float("nan")


# ------------------------------------------------------------ figures
def new_figure(nrows=1, ncols=1, size=(6.4, 4.2)):
    """A matplotlib Figure (Agg canvas, no pyplot global state) and its axes grid."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, path, dpi=110):
    from ..plotting import figure_png

    atomic_write_bytes(path, figure_png(fig, dpi))


# ------------------------------------------------------------ report
class Report:
    """Collects the criteria and results of one claim and writes its files.

    ``check(name, passed, detail, **numbers)`` records one pass criterion;
    ``finish(fig, line)`` writes ``<stem>.json`` and ``<stem>.png`` atomically
    into ``out_dir``, prints the PASS/FAIL line and returns the JSON dict.
    """

    def __init__(self, claim, stem, title, sources, quick, seed, parameters, out_dir, verbose=True):
        self.claim, self.stem, self.title = int(claim), stem, title
        self.sources = list(sources)
        self.quick, self.seed = bool(quick), int(seed)
        self.parameters = dict(parameters)
        self.out_dir = os.fspath(out_dir)
        self.verbose = verbose
        self.criteria = []
        self.results = {}
        self.seeds = {}
        self.notes = []
        self.start = time.monotonic()

    def check(self, name, passed, detail, **numbers):
        self.criteria.append({"name": name, "passed": bool(passed), "detail": detail, **numbers})
        return bool(passed)

    @property
    def passed(self):
        return bool(self.criteria) and all(c["passed"] for c in self.criteria)

    def finish(self, fig, key_numbers):
        os.makedirs(self.out_dir, exist_ok=True)
        json_path = os.path.join(self.out_dir, self.stem + ".json")
        png_path = os.path.join(self.out_dir, self.stem + ".png")
        status = "PASS" if self.passed else "FAIL"
        failed = [c["name"] for c in self.criteria if not c["passed"]]
        line = f"{status} [{self.claim}] {self.title}: {key_numbers}"
        if failed:
            line += f" (failed: {'; '.join(failed)})"
        save_figure(fig, png_path)
        out = {
            "claim": self.claim,
            "name": self.stem,
            "title": self.title,
            "status": status,
            "passed": self.passed,
            "line": line,
            "quick": self.quick,
            "seed": self.seed,
            "simulation_seeds": self.seeds,
            "parameters": self.parameters,
            "sources": self.sources,
            "criteria": self.criteria,
            "results": self.results,
            "notes": self.notes,
            "elapsed_s": round(time.monotonic() - self.start, 2),
            "files": {"json": json_path, "png": png_path},
        }
        out.update(provenance())
        atomic_write_text(json_path, dumps_json(out) + "\n")
        if self.verbose:
            print(line, flush=True)
        return out


def fmt(x, digits=3):
    """Compact number for PASS/FAIL lines."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"
