"""``fwtheory saturation``: which 1/n effects grow with depth and which saturate.

The README's main job: on its defaults (tanh, C_b = 0, C_W = 1, width 64,
depth 50, Gaussian and orthogonal weights, a short Monte Carlo run) it prints
the side-by-side table and writes ``saturation.png`` and ``saturation.json``
into the working directory (``--out-dir``). Importing this module is cheap.
"""

import argparse

from ..depth_saturation import DEFAULT_SAMPLES  # noqa: F401  (light: numpy only)


def add_parser(sub):
    p = sub.add_parser(
        "saturation", help="classify each 1/n ratio as growing, saturating or decaying with depth, "
                           "Gaussian vs orthogonal weights (writes saturation.png/.json)",
        description="For every dimensionless 1/n ratio (V/K^2, G1/K, Theta1/Theta, A/Theta^2, "
                    "B/Theta^2, D/(K Theta), F/(K Theta) and the dNTK/ddNTK ones) and each weight "
                    "ensemble, classify the depth behaviour from the leading-order theory evaluated "
                    "far beyond --depth: linear growth (slope per layer), saturation (asymptote and "
                    "the depth after which it stays within 5%) or decay. A short Monte Carlo run "
                    "(on by default) adds measured points and checks them. Writes saturation.png "
                    "and saturation.json into --out-dir.")
    g = p.add_argument_group("network")
    g.add_argument("--activation", default="tanh", help="activation (default: tanh)")
    g.add_argument("--cb", type=float, default=0.0, help="bias variance C_b (default: 0)")
    g.add_argument("--cw", type=float, default=1.0, help="weight variance C_W (default: 1)")
    g.add_argument("--width", type=int, default=64, help="hidden width n (default: 64)")
    g.add_argument("--depth", type=int, default=50, help="depth L shown and simulated (default: 50)")
    g.add_argument("--lambda-b", type=float, default=0.0, help="bias learning rate lambda_b (default: 0)")
    g.add_argument("--lambda-w", type=float, default=1.0, help="weight learning rate lambda_W (default: 1)")
    g.add_argument("--input-norm", type=float, default=1.0, help="q0 = |x|^2 / n0 (default: 1)")
    g.add_argument("--ensembles", nargs="+", default=["gaussian", "orthogonal"],
                   choices=("gaussian", "orthogonal"), help="weight ensembles (default: both)")
    p.add_argument("--extended-depth", type=int, default=None,
                   help="depth of the theory used to classify (default: max(40 depth, 2000), at most 20000)")
    p.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=True,
                   help="add a short Monte Carlo run (default: on)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"networks per ensemble for --simulate (default: {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.add_argument("--out-dir", default=".", metavar="DIR",
                   help="where saturation.png and saturation.json go (default: the working directory)")
    p.add_argument("--no-files", action="store_true", help="write neither saturation.png nor saturation.json")
    p.set_defaults(func=run)
    return p


def run(args):
    import sys

    from .._io import check_output_dir, dumps_json
    from ..depth_saturation import saturation

    if not args.no_files:
        check_output_dir(args.out_dir, "out-dir")   # created if missing, like every output location
    report = saturation(activation=args.activation, C_b=args.cb, C_W=args.cw, width=args.width,
                        depth=args.depth, ensembles=args.ensembles, lambda_b=args.lambda_b,
                        lambda_W=args.lambda_w, simulate=args.simulate, samples=args.samples,
                        seed=args.seed, progress=True, input_norm=args.input_norm,
                        extended_depth=args.extended_depth)
    if args.json:
        sys.stdout.write(dumps_json(report.to_dict()) + "\n")
    else:
        sys.stdout.write(report.table() + "\n")
    if not args.no_files:
        png, js = report.write(args.out_dir)
        print(f"fwtheory saturation: wrote {png} and {js} ({report.elapsed:.1f} s)", file=sys.stderr)
    interrupted = any(s is not None and s.interrupted for s in report.simulations.values())
    return 130 if interrupted else 0
