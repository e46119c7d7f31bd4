"""``fwtheory derive``: print derived single-input recursions."""

from ..quantities import ALL_CORRELATORS

ORDER2 = ("G2", "V1", "U6")
NAMES = ALL_CORRELATORS + ORDER2

# defines every symbol that can occur in a printed recursion (checked by tests/test_symbolic.py)
LEGEND = (
    "<...> = Gaussian expectation over z ~ N(0, K) at K = K^(l) (docs/conventions.md);",
    "  inside <...>: s = sigma(z), t = sigma'(z), u = sigma''(z), v = sigma'''(z), z = preactivation;",
    "dK[<...>], dK2[<...>] = first and second derivatives of <...> with respect to K;",
    "C_b, C_W = bias and weight variances (Var W_ij = C_W/n); lambda_b, lambda_W = learning rates",
    "  of biases and weights (lambda_W/n per weight); q0 = |x|^2/n0 (input norm, first layer only);",
    "K, Theta = kernel and mean NTK; G1, Theta1 = their 1/n corrections; V = four-point vertex;",
    "  D, F = NTK-preactivation and A, B = NTK-NTK correlators; P, Q = dNTK and R, S, T, U = ddNTK",
    "  correlators (normalizations: docs/conventions.md); order 1/n^2: G2 = 1/n^2 part of E[z^2],",
    "  V1 = 1/n^2 part of the four-point vertex, U6 = six-point vertex (docs/derivation.md).",
)


# several inputs (docs/derivation.md, "Several inputs")
MULTI_LEGEND = (
    "X[a,b,...] = component of correlator X at sample (input) indices a, b, ... (generic labels",
    "  0, 1, 2, 3 on the left; index order and symmetries in docs/derivation.md); G[a,b] = x_a.x_b/n0;",
    "<...> = Gaussian expectation over (z_0, z_1, ...) ~ N(0, K) at the layer-l kernel matrix K;",
    "  inside <...>: s0 = sigma(z_0), t0 = sigma'(z_0), u0 = sigma''(z_0), v0 = sigma'''(z_0),",
    "  s(D)0 = the D-th derivative of sigma at z_0 (K-entry derivatives written out by Price's theorem);",
    "C_b, C_W = bias and weight variances; lambda_b, lambda_W = learning rates (lambda_W/n per weight).",
)


def _components(rec, inputs):
    """Several inputs: every canonical component's recursion, keyed by its indices."""
    if inputs == 1:
        return {}
    import sympy

    return {"components": {"".join(map(str, c)): sympy.sstr(rec.entry(*c)) for c in rec.components()}}


def add_parser(sub):
    p = sub.add_parser(
        "derive", help="derive a correlator's layer-to-layer recursion (sympy)",
        description="Derive the single-input recursion of a correlator from the layer map and the "
                    "weight ensemble (Wick pairings or orthogonal Weingarten calculus).")
    p.add_argument("name", nargs="?", default="all", choices=NAMES + ("all",),
                   help="correlator (default: all)")
    p.add_argument("--ensemble", default="gaussian",
                   help="weight ensemble: gaussian or orthogonal (default: gaussian)")
    p.add_argument("--inputs", type=int, default=1,
                   help="number of inputs m (default: 1); m > 1 prints the recursions at generic "
                        "sample indices 0, 1, 2, 3 (K, G1, V, Theta, Theta1, D, F, A, B)")
    p.add_argument("--order", type=int, default=None,
                   help="order in 1/n: 0 or 1 (K, Theta and the 1/n correlators), 2 (G2, V1, U6); "
                        "default: the named correlator's own order, or 1 with 'all'")
    p.add_argument("--layer", default="mlp",
                   help="layer map: mlp or residual (default: mlp; residual is not derived yet)")
    p.add_argument("--latex", action="store_true", help="print LaTeX")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
    return p


def run(args):
    import sympy

    from .._io import dumps_json
    from ..errors import ParameterError
    from ..symbolic import derive

    order, inputs, layer = args.order, args.inputs, args.layer
    if args.name == "all":
        if order not in (None, 1, 2):
            raise ParameterError("order", f"with 'all' use --order 1 or 2, got {order}")
        if inputs != 1 and order == 2:
            raise ParameterError("order", "several inputs are derived to order 1/n only")
        names, order = (ORDER2 if order == 2 else ALL_CORRELATORS), None
        if inputs != 1:
            from ..symbolic.multi_input import MULTI_NAMES

            names = MULTI_NAMES
    else:
        names = (args.name,)
    recs = [derive(k, args.ensemble, inputs=inputs, order=order, layer=layer)
            for k in names]
    if args.json:
        print(dumps_json({
            "ensemble": args.ensemble,
            "recursions": {r.name: {
                "expr": sympy.sstr(r.expr), "latex": r.latex_rhs(),
                "dependencies": list(r.dependencies),
                "initial": {k: sympy.sstr(v) for k, v in r.initial.items()},
                "initial_exact": {k: sympy.sstr(v) for k, v in r.initial_exact.items()},
                **_components(r, inputs),
            } for r in recs}}))
        return 0
    comment = "%" if args.latex else "#"
    kind = "single-input" if inputs == 1 else f"{inputs}-input"
    print(f"{comment} {kind} recursions, {args.ensemble} weights; layer-l quantities on the right")
    for line in (LEGEND if inputs == 1 else MULTI_LEGEND):
        print(f"{comment} {line}")
    for r in recs:
        if args.latex:
            print(r.latex())
            for first, v in r.initial.items():
                print(r"%% layer 1 (%s first layer): %s" % (first, sympy.latex(v)))
        else:
            print(str(r))
            init = ", ".join(f"{first} first layer: {sympy.sstr(v)}" for first, v in r.initial.items())
            print(f"    layer 1 ({init}); depends on {', '.join(r.dependencies) or 'nothing'}")
    return 0
