"""``fwtheory validate``: reproduce the published claims (theory and Monte Carlo)."""

from ..validation._paths import DEFAULT_OUT_DIR


def add_parser(sub):
    p = sub.add_parser(
        "validate", help="reproduce published claims: PASS/FAIL per claim, JSON and PNG files",
        description="Run the validation suite (fwtheory.validation): (1) deep linear exact "
                    "finite-width moments, (2) ReLU at criticality and the NTK table, (3) K*=0 "
                    "asymptotics for tanh, (4) orthogonal tanh saturation vs Gaussian growth, "
                    "(5) ReLU NTK variance at larger depth/width vs exp(5 beta). Each claim "
                    "writes v<k>_<name>.json and .png into --out-dir; a summary table is printed "
                    "and the exit status is 1 if any claim fails.")
    p.add_argument("--quick", action="store_true",
                   help="reduced sizes: all five claims in about 12 s on 2 idle cores "
                        "(default: the full run, about 60 s; timings in docs/validation.md)")
    p.add_argument("--out-dir", default=DEFAULT_OUT_DIR,
                   help=f"directory for the output files, created if missing (default: {DEFAULT_OUT_DIR})")
    p.add_argument("--only", action="append", default=None, metavar="N",
                   help="run only claim N (number 1-5 or name; repeat or comma-separate)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON instead of the table")
    p.add_argument("--force", action="store_true",
                   help="run even when the estimated time exceeds the 30-minute limit (fwtheory._cost)")
    p.set_defaults(func=run)
    return p


def run(args):
    import sys

    from .._io import check_output_dir, dumps_json, format_table
    from ..errors import check_int
    from ..validation import validate

    seed = check_int("seed", args.seed, lower=0)
    from .._cost import check_validate

    check_validate(args.quick, args.only, force=args.force)
    check_output_dir(args.out_dir, "out-dir")
    summary = validate(quick=args.quick, out_dir=args.out_dir, seed=seed, only=args.only,
                       verbose=not args.json)
    if args.json:
        sys.stdout.write(dumps_json(summary) + "\n")
    else:
        rows = [[c["id"], c["name"], c["status"], f"{c['elapsed_s']:.1f}"] for c in summary["claims"]]
        mode = "quick" if summary["quick"] else "full"
        print(f"\n# validation ({mode}, seed {summary['seed']}): "
              f"{sum(c['passed'] for c in summary['claims'])}/{len(rows)} passed in "
              f"{summary['elapsed_s']:.1f} s; files in {args.out_dir}")
        print(format_table(["claim", "name", "status", "seconds"], rows))
    return 0 if summary["passed"] else 1
