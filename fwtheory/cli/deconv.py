"""``fwtheory deconv``: NTK of deconvolutional networks in the ordered, critical and chaotic regimes.

Writes ``deconv.png`` (NTK-diagonal images per regime and parametrization, border
profiles) and ``deconv.json`` into ``--out-dir``. Importing this module is cheap.
"""


def add_parser(sub):
    p = sub.add_parser(
        "deconv", help="deconvolutional-network NTK: checkerboard, border artifacts, regimes, learning rates "
                       "(writes deconv.png/.json)",
        description="Infinite-channel NTK of a stack of transposed convolutions (Jacot, Gabriel, Ged, Hongler, "
                    "arXiv:1907.05715; docs/deconv.md) at 0.6, 1 and 1.6 times the edge-of-chaos C_W: the NTK "
                    "diagonal over output locations (checkerboard = variation modulo the stride; border profile) "
                    "with zero padding and the graph parametrization, its depth dependence, the checkerboard "
                    "dominance and condition number of the full NTK, layer-dependent learning rates and kernel "
                    "gradient descent toward a target image.")
    p.add_argument("--activation", default="tanh", help="activation (default: tanh)")
    p.add_argument("--stride", type=int, default=2, help="stride s (default: 2)")
    p.add_argument("--filter", type=int, default=4, help="filter size f (default: 4)")
    p.add_argument("--padding", type=int, default=None, help="padding p (default: (f - s) // 2)")
    p.add_argument("--depth", type=int, default=4, help="number of layers (default: 4)")
    p.add_argument("--dim", type=int, default=2, choices=(1, 2), help="1-D or 2-D images (default: 2)")
    p.add_argument("--input-side", type=int, default=4, help="side of the input grid (default: 4)")
    p.add_argument("--parametrization", default="zero-padding", choices=("zero-padding", "graph"),
                   help="parametrization shown first (both are computed; default: zero-padding)")
    p.add_argument("--cb", type=float, default=0.1, help="bias variance C_b (default: 0.1)")
    p.add_argument("--max-depth", type=int, default=6, help="depth range of the depth study (default: 6)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.add_argument("--out-dir", default=".", metavar="DIR", help="where deconv.png/.json go (default: .)")
    p.add_argument("--no-files", action="store_true", help="write neither file")
    p.set_defaults(func=run)
    return p


def _table(rep):
    from .._io import format_table

    rows = [[r["regime"], r["parametrization"], f"{r['C_W']:.4g}", f"{r['checkerboard']:.3g}", f"{r['border']:.3g}",
             f"{r['dominance_1d']:.3g}", f"{r['cond_1d']:.4g}", f"{r['cb_target']:.3g}", f"{r['cb_fit_half']:.3g}"]
            for r in rep.summary]
    out = [repr(rep), format_table(["regime", "param.", "C_W", "A_cb", "A_border", "cb dominance", "cond",
                                    "cb target", "cb fit@1/2"], rows)]
    lr = [[k, f"{v['cond_uniform']:.4g}", f"{v['cond_balanced']:.4g}", f"{v['cond_optimal']:.4g}",
           ",".join(f"{x:.2g}" for x in v["lambda_optimal"])] for k, v in rep.learning_rates.items()]
    out.append("NTK condition number (1-D), layer-dependent lambda_W:")
    out.append(format_table(["regime", "uniform", "balanced", "optimal", "optimal lambda_W^(l)"], lr))
    return "\n".join(out)


def run(args):
    import sys

    from .._io import check_output_dir, dumps_json
    from ..deconv.report import deconv_report, write_report
    from ..errors import ParameterError

    if not args.no_files:
        check_output_dir(args.out_dir, "out-dir")
    if args.max_depth < 1 or args.max_depth > 12:
        raise ParameterError("max-depth", f"must be in 1 .. 12, got {args.max_depth}")
    rep = deconv_report(args.activation, C_b=args.cb, dim=args.dim, input_side=args.input_side, depth=args.depth,
                        stride=args.stride, filter=args.filter, padding=args.padding,
                        parametrization=args.parametrization, max_depth=args.max_depth)
    sys.stdout.write((dumps_json(rep.to_dict()) if args.json else _table(rep)) + "\n")
    if not args.no_files:
        png, js = write_report(rep, args.out_dir)
        print(f"fwtheory deconv: wrote {png} and {js}", file=sys.stderr)
    return 0
