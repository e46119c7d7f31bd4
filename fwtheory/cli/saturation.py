"""``fwtheory saturation``: which 1/n effects grow with depth and which saturate.

The README's main job: on its defaults (tanh, C_b = 0, C_W = 1, width 64,
depth 50, Gaussian and orthogonal weights, a short Monte Carlo run) it prints
the side-by-side table and writes ``saturation.png`` and ``saturation.json``
into the working directory (``--out-dir``). Importing this module is cheap.
"""

import argparse

from ..depth_saturation import DEFAULT_SAMPLES  # light: numpy only


def add_parser(sub):
    p = sub.add_parser(
        "saturation", help="classify each 1/n ratio as growing, saturating or decaying with depth, "
                           "Gaussian vs orthogonal weights (writes saturation.png/.json)",
        description="For every dimensionless 1/n ratio (V/K^2, G1/K, Theta1/Theta, A/Theta^2, "
                    "B/Theta^2, D/(K Theta), F/(K Theta) and the dNTK/ddNTK ones) and each weight "
                    "ensemble, classify the depth behaviour from the leading-order theory evaluated "
                    "far beyond --depth: linear growth (slope per layer), saturation (asymptote and "
                    "the depth after which it stays within 5%) or decay. A short Monte Carlo run "
                    "(on by default) adds measured points and checks them; every ratio it misses is "
                    "width-scanned (widths n/2, n, 2n) to tell a next-order effect from a wrong "
                    "theory. Writes saturation.png and saturation.json into --out-dir. Runs "
                    "estimated beyond 30 minutes are refused without --force.")
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
    g.add_argument("--gram", default=None, metavar="G11,G12;G21,G22",
                   help="several inputs: the m x m input Gram matrix (m <= 4, rows separated by ';'); "
                        "classifies every normalized multi-input ratio (e.g. V_0101/(K_00 K_11)) from the "
                        "theory and writes saturation_gram.png, saturation_gram_cosine.png (ratios against "
                        "the input cosine at a few depths) and saturation_gram.json; theory only")
    p.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=None,
                   help="add a short Monte Carlo run (default: on; not available with --gram)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"networks per ensemble for --simulate (default: {DEFAULT_SAMPLES})")
    p.add_argument("--width-scan", action=argparse.BooleanOptionalAction, default=True,
                   help="for every ratio the Monte Carlo check misses, also simulate widths n/2 and 2n and "
                        "report whether the width-extrapolated value agrees with the theory "
                        "(next-order effect) or not (default: on)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--force", action="store_true",
                   help="run even when the estimated time exceeds the 30-minute limit")
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

    if args.gram is not None:
        return _run_gram(args)
    if args.simulate is None:
        args.simulate = True
    _announce_cost(args)
    if not args.no_files:
        check_output_dir(args.out_dir, "out-dir")   # created if missing, like every output location
    report = saturation(activation=args.activation, C_b=args.cb, C_W=args.cw, width=args.width,
                        depth=args.depth, ensembles=args.ensembles, lambda_b=args.lambda_b,
                        lambda_W=args.lambda_w, simulate=args.simulate, samples=args.samples,
                        seed=args.seed, progress=True, input_norm=args.input_norm,
                        extended_depth=args.extended_depth, width_scan=args.width_scan)
    if args.json:
        sys.stdout.write(dumps_json(report.to_dict()) + "\n")
    else:
        sys.stdout.write(report.table() + "\n")
    if not args.no_files:
        png, js = report.write(args.out_dir)
        print(f"fwtheory saturation: wrote {png} and {js} ({report.elapsed:.1f} s)", file=sys.stderr)
    interrupted = any(s is not None and s.interrupted for s in report.simulations.values())
    return 130 if interrupted else 0


def estimate_seconds(width, depth, samples, ensembles, simulate=True, width_scan=True, extended_depth=None):
    """Wall seconds of ``fwtheory saturation`` (order of magnitude, fwtheory._cost):
    the theory to the extended depth (~3 s of start-up and compilation plus
    ~0.25 ms per layer and ensemble: 6 s for the default 2000 layers, 14 s for
    20000, measured), the simulation, and the width scan as if every ensemble
    had a missed check."""
    from .._cost import simulate_seconds
    from ..depth_saturation import EXTENDED_FACTOR, MAX_EXTENDED, MIN_EXTENDED
    from ..width_scan import scan_samples, scan_widths

    ext = extended_depth or max(depth, min(max(EXTENDED_FACTOR * depth, MIN_EXTENDED), MAX_EXTENDED))
    seconds = 3.0 + 0.25e-3 * ext * len(ensembles)
    if simulate:
        seconds += simulate_seconds(samples, depth, [width], ensembles)
        if width_scan:
            extra = [(w, s) for w, s in zip(scan_widths(width), scan_samples(samples)) if w != width]
            seconds += simulate_seconds([s for _, s in extra], depth, [w for w, _ in extra], ensembles)
    return seconds


def _announce_cost(args):
    from .._cost import announce

    if min(args.width, args.depth, args.samples) < 1:
        return          # saturation() names the bad parameter
    seconds = estimate_seconds(args.width, args.depth, args.samples, args.ensembles, args.simulate,
                               args.width_scan, args.extended_depth)
    big = [("depth", args.depth, 50), ("extended-depth", args.extended_depth or 0, 20000)]
    if args.simulate:
        big += [("samples", args.samples, DEFAULT_SAMPLES), ("width", args.width, 64)]
    announce("saturation", seconds, big, force=args.force)


def _run_gram(args):
    """``saturation --gram``: theory only (fwtheory.saturation_multi)."""
    import sys

    from .._io import check_output_dir, dumps_json
    from ..depth_saturation import saturation
    from ..errors import ParameterError

    if args.simulate:
        raise ParameterError("simulate", "not available with --gram (theory only); check the theory against "
                                         "Monte Carlo with `fwtheory compare --gram ...`")
    if args.input_norm != 1.0:
        raise ParameterError("input_norm", "give either --input-norm or --gram (its diagonal holds the norms)")
    if not args.no_files:
        check_output_dir(args.out_dir, "out-dir")
    report = saturation(activation=args.activation, C_b=args.cb, C_W=args.cw, width=args.width,
                        depth=args.depth, ensembles=args.ensembles, lambda_b=args.lambda_b,
                        lambda_W=args.lambda_w, simulate=False, extended_depth=args.extended_depth,
                        gram=args.gram)
    if args.json:
        sys.stdout.write(dumps_json(report.to_dict()) + "\n")
    else:
        sys.stdout.write(report.table() + "\n")
    if not args.no_files:
        paths = report.write(args.out_dir)
        print(f"fwtheory saturation: wrote {', '.join(paths)} ({report.elapsed:.1f} s)", file=sys.stderr)
    return 0
