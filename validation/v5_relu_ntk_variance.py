"""Validation claim 5: ReLU NTK variance at larger L/n vs exp(5 beta) (Hanin-Nica).

Thin wrapper: the logic is :mod:`fwtheory.validation.relu_ntk_variance` (so that
``fwtheory validate`` works from an installed package). Usage::

    python validation/v5_relu_ntk_variance.py [--quick] [--out-dir DIR] [--seed S]

writes v5_relu_ntk_variance.json and v5_relu_ntk_variance.png into DIR and prints one PASS/FAIL line;
the exit status is 0 on PASS, 1 on FAIL.
"""

from fwtheory.validation import script_main
from fwtheory.validation.relu_ntk_variance import run  # noqa: F401  (run(quick, out_dir, seed=0) -> dict)

if __name__ == "__main__":
    raise SystemExit(script_main(5))
