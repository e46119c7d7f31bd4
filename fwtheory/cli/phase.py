"""``fwtheory phase``: order-to-chaos phase diagram of an activation over (C_b, C_W).

Writes ``phase.png`` (chi_perp heat map with the edge of chaos; normalized NTK
off-diagonals against depth in an ordered, critical and chaotic setting) and
``phase.json`` into ``--out-dir``. Importing this module is cheap.
"""


def _floats(text, name):
    from ..errors import ParameterError

    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(name, f"must be a comma-separated list of numbers, got {text!r}") from None
    if not vals:
        raise ParameterError(name, "must not be empty")
    return vals


def _range(text, name):
    from ..errors import ParameterError

    vals = _floats(text, name)
    if len(vals) != 3 or vals[2] < 2 or vals[2] != int(vals[2]) or not vals[1] > vals[0]:
        raise ParameterError(name, f"must be MIN,MAX,N with MAX > MIN and an integer N >= 2, got {text!r}")
    import numpy as np

    return np.linspace(vals[0], vals[1], int(vals[2]))


def add_parser(sub):
    p = sub.add_parser(
        "phase", help="order-to-chaos phase diagram over (C_b, C_W): chi_perp, edge of chaos, NTK depth "
                      "profiles (writes phase.png/.json)",
        description="For every (C_b, C_W) the kernel flows to a fixed point q*; chi_perp = C_W <sigma'^2>_q* "
                    "< 1 is the ordered phase, > 1 the chaotic phase (PDLT Ch. 5; Jacot et al. "
                    "arXiv:1907.05715). The edge of chaos chi_perp = 1 is solved by root finding in C_W at "
                    "each C_b (null where it does not exist); the PDLT critical point is marked. The "
                    "normalized infinite-width NTK of a Gram matrix is followed over depth in an ordered, "
                    "the critical and a chaotic setting, with the fitted rate of approach.")
    p.add_argument("--activation", default="tanh",
                   help="built-in name (linear, relu, leaky_relu(a), tanh, sin, erf, sigmoid, softplus, gelu, "
                        "swish) or an expression in z (default: tanh)")
    p.add_argument("--cb-values", default=None, metavar="B1,B2,...",
                   help="C_b values at which the edge of chaos is solved (default: 21 values in [0, 0.5])")
    p.add_argument("--cb-range", default=None, metavar="MIN,MAX,N",
                   help="heat-map C_b grid (default: 0,0.5,26)")
    p.add_argument("--cw-range", default=None, metavar="MIN,MAX,N",
                   help="heat-map C_W grid (default: 80 values up to 1.6 times the largest edge C_W)")
    p.add_argument("--input-norm", type=float, default=1.0, help="q0 = |x|^2 / n0 (default: 1)")
    p.add_argument("--ntk-depth", type=int, default=40, help="depth of the NTK profiles (default: 40)")
    p.add_argument("--ntk-cb", type=float, default=None,
                   help="C_b of the NTK profiles (default: 0.1, or the first C_b with an edge of chaos)")
    p.add_argument("--gram", default=None, metavar="G11,G12;G21,G22",
                   help="input Gram matrix x_a.x_b/n0 of the NTK profiles, rows separated by ';' (m <= 4; "
                        "default: three unit inputs with overlaps 0.6, 0.2, 0.4)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.add_argument("--out-dir", default=".", metavar="DIR",
                   help="where phase.png and phase.json go (default: the working directory)")
    p.add_argument("--no-files", action="store_true", help="write neither phase.png nor phase.json")
    p.set_defaults(func=run)
    return p


def _table(d):
    from .._io import format_table

    rows = [[f"{b:g}", "-" if w is None else f"{w:.10g}"] for b, w in d.edge_of_chaos]
    out = [f"activation {d.activation}: edge of chaos (chi_perp(q*) = 1), q0 = {d.input_norm:g}",
           format_table(["C_b", "C_W"], rows)]
    c = d.criticality
    crit = "none" if c.get("C_W") is None else f"C_b = {c['C_b']:.10g}, C_W = {c['C_W']:.10g}"
    out.append(f"PDLT criticality ({c['universality_class']}): {crit}")
    if d.ntk_profiles:
        rows = []
        for p in d.ntk_profiles:
            fit = p.get("fit") or {}
            rows.append([p["regime"], f"{p['C_b']:g}", f"{p['C_W']:.6g}", f"{p['chi_perp']:.6g}",
                         f"{p['offdiag'][-1]:.6g}",
                         "-" if fit.get("limit") is None else f"{fit['limit']:.6g}",
                         "-" if fit.get("xi") is None else f"{fit['xi']:.4g}"])
        ln = {(p["C_b"], p["C_W"]): p for p in d.ntk_profiles_layernorm}
        for row, p in zip(rows, d.ntk_profiles):
            q = ln.get((p["C_b"], p["C_W"]))
            row += ["-", "-", "-"] if q is None else [f"{q['chi_perp']:.6g}", q["regime"], f"{q['offdiag'][-1]:.6g}"]
        out.append(f"normalized NTK off-diagonal at layer {len(d.ntk_profiles[0]['layers'])} "
                   "(LN: LayerNorm after every nonlinearity):")
        out.append(format_table(["regime", "C_b", "C_W", "chi_perp", "offdiag", "limit", "xi (layers)",
                                 "LN chi", "LN regime", "LN offdiag"], rows))
    return "\n".join(out)


def run(args):
    import os
    import sys

    from .._io import dumps_json
    from ..errors import ParameterError
    from ..phase import phase_diagram, write_diagram

    if not args.no_files and not os.path.isdir(args.out_dir):
        raise ParameterError("out-dir", f"{args.out_dir!r} is not an existing directory")
    edge_cb = None if args.cb_values is None else _floats(args.cb_values, "cb-values")
    if edge_cb is not None and any(not (b >= 0 and b < float("inf")) for b in edge_cb):
        raise ParameterError("cb-values", f"must be finite numbers >= 0, got {args.cb_values!r}")
    cb = None if args.cb_range is None else _range(args.cb_range, "cb-range")
    cw = None if args.cw_range is None else _range(args.cw_range, "cw-range")
    if cb is not None and cb[0] < 0:
        raise ParameterError("cb-range", "C_b must be >= 0")
    if cw is not None and cw[0] <= 0:
        raise ParameterError("cw-range", "C_W must be > 0")
    if args.ntk_depth < 2:
        raise ParameterError("ntk-depth", f"must be an integer >= 2, got {args.ntk_depth}")
    gram = None
    if args.gram is not None:
        from .. import gauss

        rows = [_floats(r, "gram") for r in args.gram.split(";") if r.strip()]
        if not rows or any(len(r) != len(rows) for r in rows):
            raise ParameterError("gram", f"must be a square matrix 'a,b;c,d', got {args.gram!r}")
        gram = gauss._check_cov(rows, name="gram")
    d = phase_diagram(args.activation, cb_values=cb, cw_values=cw, input_norm=args.input_norm,
                      edge_cb=edge_cb, ntk_depth=args.ntk_depth, ntk_cb=args.ntk_cb, gram=gram)
    if args.json:
        sys.stdout.write(dumps_json(d.to_dict()) + "\n")
    else:
        sys.stdout.write(_table(d) + "\n")
    if not args.no_files:
        png, js = write_diagram(d, args.out_dir)
        print(f"fwtheory phase: wrote {png} and {js}", file=sys.stderr)
    return 0
