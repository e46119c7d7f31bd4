"""Validation claim 4: orthogonal tanh: V/K^2 -> -2, NTK correlators saturate near depth 20.

Thin wrapper: the logic is :mod:`fwtheory.validation.orthogonal_tanh` (so that
``fwtheory validate`` works from an installed package). Usage::

    python validation/v4_orthogonal_tanh.py [--quick] [--out-dir DIR] [--seed S]

writes v4_orthogonal_tanh.json and v4_orthogonal_tanh.png into DIR and prints one PASS/FAIL line;
the exit status is 0 on PASS, 1 on FAIL.
"""

from fwtheory.validation import script_main
from fwtheory.validation.orthogonal_tanh import run  # noqa: F401  (run(quick, out_dir, seed=0) -> dict)

if __name__ == "__main__":
    raise SystemExit(script_main(4))
