"""Run all validation claims: ``python validation/run_all.py [--quick] [--out-dir DIR] [--only N] [--seed S]``.

Same as ``fwtheory validate``; see :mod:`fwtheory.validation` and docs/validation.md.
"""

import argparse
import sys

from fwtheory.cli import validate as cli_validate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="run_all.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    cli_validate.add_parser(sub)
    args = parser.parse_args(["validate"] + sys.argv[1:])
    raise SystemExit(args.func(args))
