"""Validation claim 1: deep linear exact finite-width moments (PDLT eq. 3.25).

Thin wrapper: the logic is :mod:`fwtheory.validation.deep_linear` (so that
``fwtheory validate`` works from an installed package). Usage::

    python validation/v1_deep_linear.py [--quick] [--out-dir DIR] [--seed S]

writes v1_deep_linear.json and v1_deep_linear.png into DIR and prints one PASS/FAIL line;
the exit status is 0 on PASS, 1 on FAIL.
"""

from fwtheory.validation import script_main
from fwtheory.validation.deep_linear import run  # noqa: F401  (run(quick, out_dir, seed=0) -> dict)

if __name__ == "__main__":
    raise SystemExit(script_main(1))
