"""Validation claim 2: ReLU at criticality: V/K^2 = 5(l-1) and the NTK table.

Thin wrapper: the logic is :mod:`fwtheory.validation.relu_criticality` (so that
``fwtheory validate`` works from an installed package). Usage::

    python validation/v2_relu_criticality.py [--quick] [--out-dir DIR] [--seed S]

writes v2_relu_criticality.json and v2_relu_criticality.png into DIR and prints one PASS/FAIL line;
the exit status is 0 on PASS, 1 on FAIL.
"""

from fwtheory.validation import script_main
from fwtheory.validation.relu_criticality import run  # noqa: F401  (run(quick, out_dir, seed=0) -> dict)

if __name__ == "__main__":
    raise SystemExit(script_main(2))
