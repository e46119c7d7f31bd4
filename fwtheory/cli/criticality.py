"""``fwtheory criticality``: universality class and critical (C_b, C_W, K*) of an activation.

Importing this module is cheap (argparse only); the solver loads in :func:`run`.
"""

from ._common import emit


def add_parser(sub):
    p = sub.add_parser(
        "criticality", help="universality class and critical initialization (C_b, C_W, K*)",
        description="Classify an activation (scale-invariant, K*=0, half-stable, none) and solve "
                    "chi_par = chi_perp = 1 at a fixed point K* = C_b + C_W <sigma^2>_K* "
                    "(PDLT Ch. 5, Sec. 5.1-5.3).")
    p.add_argument("--activation", default="gelu",
                   help="built-in name (linear, relu, leaky_relu(a), tanh, sin, erf, sigmoid, softplus, "
                        "gelu, swish) or an expression in z such as 'z*tanh(z)' (default: gelu)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run)
    return p


def _fmt(v):
    return "-" if v is None else f"{v:.10g}"


def run(args):
    from ..kernel import criticality

    result = criticality(args.activation)

    def table():
        from .._io import format_table

        k_star = result.K_star
        if result.universality_class == "scale-invariant":
            k_star = "any (line of fixed points)"
        rows = [["activation", result.activation], ["class", result.universality_class],
                ["C_b", _fmt(result.C_b)], ["C_W", _fmt(result.C_W)],
                ["K*", k_star if isinstance(k_star, str) else _fmt(k_star)]]
        rows += [[k, v if isinstance(v, str) else
                  (", ".join(_fmt(x) for x in v) if isinstance(v, list) else _fmt(v))]
                 for k, v in result.details.items()]
        return format_table(["quantity", "value"], rows)

    emit(args, result.to_dict(), table)
    return 0
