"""Validation claim 3: K*=0 asymptotics for tanh: K ~ 1/(2l), V/K^2 -> (2/3) l.

Thin wrapper: the logic is :mod:`fwtheory.validation.kstar0_tanh` (so that
``fwtheory validate`` works from an installed package). Usage::

    python validation/v3_kstar0_tanh.py [--quick] [--out-dir DIR] [--seed S]

writes v3_kstar0_tanh.json and v3_kstar0_tanh.png into DIR and prints one PASS/FAIL line;
the exit status is 0 on PASS, 1 on FAIL.
"""

from fwtheory.validation import script_main
from fwtheory.validation.kstar0_tanh import run  # noqa: F401  (run(quick, out_dir, seed=0) -> dict)

if __name__ == "__main__":
    raise SystemExit(script_main(3))
