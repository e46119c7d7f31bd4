"""``fwtheory asymptotics``: exact depth profiles (scale-invariant activations) or
large-depth asymptotics (K*=0 class), derived with sympy."""


def add_parser(sub):
    p = sub.add_parser(
        "asymptotics", help="closed forms in depth: exact (ReLU, linear, ...) or K*=0 asymptotics",
        description="For scale-invariant activations (relu, leaky_relu, linear) print the exact "
                    "leading-order depth profile of every correlator at C_b = 0 (C_W critical by "
                    "default); for the K*=0 class (tanh, sin, ...) the leading large-depth forms.")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--ensemble", default="gaussian", choices=("gaussian", "orthogonal"))
    p.add_argument("--first-layer", default=None, choices=("gaussian", "orthogonal"),
                   help="first-layer ensemble for exact solutions (default: same as --ensemble)")
    p.add_argument("--cw", default=None,
                   help="C_W > 0 for exact solutions (default: critical 1/A_2); scale-invariant "
                        "activations only")
    p.add_argument("--lambda-b", default="0")
    p.add_argument("--lambda-w", default="1")
    p.add_argument("--input-norm", default=None,
                   help="q0 >= 0 for exact solutions (default: 1); scale-invariant activations only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _number(name, text, positive=False):
    import math

    from ..errors import ParameterError

    rng = "a finite number > 0" if positive else "a finite number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(name, f"must be {rng}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ParameterError(name, f"must be {rng}, got {text}")
    return text


def run(args):
    import sympy

    from .._io import dumps_json
    from ..activations import get_activation

    from ..errors import ParameterError

    act = get_activation(args.activation)
    lb, lw = _number("lambda_b", args.lambda_b), _number("lambda_W", args.lambda_w)
    if args.cw is not None:
        _number("C_W", args.cw, positive=True)
    if args.input_norm is not None:
        _number("input_norm", args.input_norm)
    if not (act.kinks or act.code == 0):
        for option, value in (("C_W", args.cw), ("input_norm", args.input_norm),
                              ("first_layer", args.first_layer)):
            if value is not None:   # the K*=0 asymptotics are at criticality, for any input
                raise ParameterError(option, f"applies to exact solutions of scale-invariant "
                                             f"activations only (relu, leaky_relu, linear), not {act.name}")
    if act.kinks or act.code == 0:
        from ..exact import scale_invariant_solution

        cw = None if args.cw is None else sympy.nsimplify(_number("C_W", args.cw))
        sol = scale_invariant_solution(act, args.ensemble, args.first_layer, C_W=cw,
                                       lambda_b=sympy.nsimplify(lb), lambda_W=sympy.nsimplify(lw),
                                       input_norm=sympy.nsimplify(args.input_norm or "1"))
        if args.json:
            print(dumps_json({"kind": "exact", "activation": act.name, "ensemble": args.ensemble,
                              "first_layer": sol.first_layer,
                              "expressions": {k: sympy.sstr(v) for k, v in sol.expressions.items()}}))
        else:
            print(sol)
        return 0
    from ..asymptotics import kstar0_asymptotics

    res = kstar0_asymptotics(act, args.ensemble, lambda_b=sympy.nsimplify(lb), lambda_W=sympy.nsimplify(lw))
    if args.json:
        show = lambda v: None if v is None else sympy.sstr(v)  # noqa: E731
        print(dumps_json({"kind": "K*=0 asymptotics", "activation": act.name, "ensemble": args.ensemble,
                          "a1": sympy.sstr(res.a1),
                          "leading": {k: show(v) for k, v in res.leading.items()},
                          "ratios": {k: show(v) for k, v in res.ratios.items()}}))
    else:
        print(res)
    return 0
