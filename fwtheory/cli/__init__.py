"""The ``fwtheory`` command line: one sub-command per API verb.

Each sub-command lives in its own module ``fwtheory.cli.<name>`` exposing
``add_parser(subparsers)`` (cheap: no heavy imports) and ``run(args) -> int``.
Errors in user input print one line on stderr and exit with code 2.
"""

__all__ = ["main", "build_parser", "COMMANDS"]

import argparse
import sys
from importlib import import_module

from ..errors import FwtheoryError, NumericalError, ParameterError

COMMANDS = ("kernel", "criticality", "derive", "predict", "asymptotics", "simulate", "compare",
            "saturation", "validate", "phase", "shape", "sweep", "deconv", "train", "validity")


def build_parser():
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="fwtheory",
        description="Finite-width perturbation theory for deep networks: derive, predict, "
                    "simulate and compare 1/n corrections (PDLT conventions).")
    parser.add_argument("--version", action="version", version=f"fwtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as exc:
        print(f"fwtheory {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except NumericalError as exc:
        print(f"fwtheory {args.command}: numerical error: {exc}", file=sys.stderr)
        return 3
    except FwtheoryError as exc:
        print(f"fwtheory {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - e.g. `fwtheory ... | head`
        return 0
