"""Validation suite: reproduce published claims with fwtheory's theory and Monte Carlo.

Five claims, each a module with ``run(quick, out_dir, seed=0) -> dict`` that
writes ``<stem>.json`` (parameters, seed, derived simulation seeds, fwtheory
version, git commit, criteria, results) and ``<stem>.png`` atomically into
``out_dir`` and prints one ``PASS``/``FAIL`` line with the key numbers:

1. :mod:`~fwtheory.validation.deep_linear` - deep linear exact finite-width
   moments, E[z^4]/(3E[z^2]^2) = (1 + 2/n)^(l-1) (PDLT eq. 3.25), Monte Carlo;
2. :mod:`~fwtheory.validation.relu_criticality` - ReLU at criticality,
   V/K^2 = 5(l-1) and the NTK table: exact solution == predict, Monte Carlo
   with width extrapolation;
3. :mod:`~fwtheory.validation.kstar0_tanh` - K* = 0 asymptotics for tanh,
   K ~ 1/(2l), V/K^2 -> (2/3) l: predict at large depth vs kstar0_asymptotics;
4. :mod:`~fwtheory.validation.orthogonal_tanh` - orthogonal tanh, V/K^2 -> -2
   and the NTK correlators saturating near depth 20 against Gaussian growth
   (Day, Kahn, Roberts arXiv:2310.07765): theory and a short Monte Carlo;
5. :mod:`~fwtheory.validation.relu_ntk_variance` - ReLU NTK variance at larger
   L/n from simulation: the leading-order line (11/3) L/n and where it
   departs, towards the exp(5 L/n) growth of Hanin and Nica (arXiv:1909.05989).

:func:`validate` runs them (``fwtheory validate`` on the command line). The
logic lives in this package so that it works from an installed fwtheory; the
scripts in the repository's ``validation/`` directory are thin wrappers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["validate", "CLAIMS", "run_claim", "script_main"]

import os
import time
import traceback
from importlib import import_module

from ..errors import ParameterError
from ._paths import DEFAULT_OUT_DIR

#: claim number -> module name in this package
CLAIMS = {
    1: "deep_linear",
    2: "relu_criticality",
    3: "kstar0_tanh",
    4: "orthogonal_tanh",
    5: "relu_ntk_variance",
}


def _select(only):
    if only is None:
        return list(CLAIMS)
    if isinstance(only, (int, str)):
        only = [only]
    chosen = []
    for item in only:
        for part in str(item).replace(",", " ").split():
            key = part.strip()
            match = [k for k, name in CLAIMS.items() if key == str(k) or key == name]
            if not match:
                raise ParameterError("only", f"unknown claim {part!r}; choose from "
                                             + ", ".join(f"{k} ({v})" for k, v in CLAIMS.items()))
            if match[0] not in chosen:
                chosen.append(match[0])
    if not chosen:
        raise ParameterError("only", "no claim selected")
    return sorted(chosen)


def run_claim(claim, quick=True, out_dir=DEFAULT_OUT_DIR, seed=0, verbose=True):
    """Run one claim (number or module name) and return its JSON dict."""
    (k,) = _select([claim])
    module = import_module(f".{CLAIMS[k]}", __name__)
    return module.run(quick=quick, out_dir=out_dir, seed=seed, verbose=verbose)


def validate(quick: bool = True, out_dir: str | os.PathLike = DEFAULT_OUT_DIR, seed: int = 0,
             only: int | str | Iterable[int | str] | None = None, verbose: bool = True) -> dict[str, Any]:
    """Run the validation claims and write their JSON and PNG files.

    Parameters
    ----------
    quick : bool
        Reduced sizes (all five in about 12 s on 2 idle cores) instead of the
        full run (about 60 s; sizes and timings in docs/validation.md).
    out_dir : path
        Directory for ``v<k>_<name>.json``/``.png`` and ``validation_summary.json``
        (created if missing).
    seed : int >= 0
        Master seed; claim k, sub-run j simulates with the seed
        ``SeedSequence([seed, k, j]).generate_state(1)[0]`` (recorded in its JSON).
    only : int, str or list, optional
        Claim numbers or names to run (default: all).
    verbose : bool
        Print each claim's PASS/FAIL line as it finishes.

    Returns
    -------
    dict
        ``passed`` (all claims passed), ``claims`` (per claim: id, name, title,
        status PASS/FAIL/ERROR, line, elapsed_s, json, png, error), ``quick``,
        ``seed``, ``elapsed_s``, ``summary_file``. A claim that raises is
        reported as ERROR (with its traceback in the summary file) and the
        others still run.
    """
    from .._io import atomic_write_text, check_output_dir, dumps_json
    from ..errors import check_int
    from ._common import provenance

    seed = check_int("seed", seed, lower=0)
    ids = _select(only)
    out_dir = os.fspath(out_dir)
    check_output_dir(out_dir, "out_dir")   # created if missing; unwritable -> ParameterError
    start = time.monotonic()
    claims = []
    for k in ids:
        t0 = time.monotonic()
        entry = {"id": k, "name": CLAIMS[k]}
        try:
            res = run_claim(k, quick=quick, out_dir=out_dir, seed=seed, verbose=verbose)
            entry.update(title=res["title"], status=res["status"], passed=res["passed"],
                         line=res["line"], json=res["files"]["json"], png=res["files"]["png"])
        except Exception as exc:     # report and go on with the other claims
            module = import_module(f".{CLAIMS[k]}", __name__)
            line = f"ERROR [{k}] {getattr(module, 'TITLE', CLAIMS[k])}: {type(exc).__name__}: {exc}"
            entry.update(title=getattr(module, "TITLE", CLAIMS[k]), status="ERROR", passed=False,
                         line=line, error=traceback.format_exc())
            if verbose:
                print(line, flush=True)
        entry["elapsed_s"] = round(time.monotonic() - t0, 2)
        claims.append(entry)
    summary = {"passed": all(c["passed"] for c in claims), "quick": bool(quick), "seed": int(seed),
               "claims": claims, "elapsed_s": round(time.monotonic() - start, 2)}
    summary.update(provenance())
    path = os.path.join(out_dir, "validation_summary.json")
    atomic_write_text(path, dumps_json(summary) + "\n")
    summary["summary_file"] = path
    return summary


def script_main(claim, argv=None):
    """Command line of the ``validation/*.py`` scripts: ``[--quick] [--out-dir DIR] [--seed S]``.
    Returns the exit code (0 pass, 1 fail)."""
    import argparse

    module = import_module(f".{CLAIMS[_select([claim])[0]]}", __name__)
    parser = argparse.ArgumentParser(description=(module.__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (the CI setting)")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR,
                        help=f"directory for the JSON and PNG (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    args = parser.parse_args(argv)
    res = module.run(quick=args.quick, out_dir=args.out_dir, seed=args.seed)
    return 0 if res["passed"] else 1
