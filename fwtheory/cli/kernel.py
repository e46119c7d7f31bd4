"""``fwtheory kernel``: per-layer infinite-width kernel K, mean NTK Theta and chi's.

Importing this module is cheap (argparse only); the theory loads in :func:`run`.
"""

from ._common import add_network_arguments, emit, network_from_args


def add_parser(sub):
    p = sub.add_parser(
        "kernel", help="leading-order kernel K, mean NTK Theta and susceptibilities per layer",
        description="Single-input infinite-width recursions (PDLT "
                    "Ch. 4, 5, 8): K^(l+1) = C_b + C_W <sigma^2>_K, Theta^(l+1) = lambda_b + "
                    "lambda_W <sigma^2>_K + chi_perp Theta^(l), chi_par = C_W d<sigma^2>_K/dK, "
                    "chi_perp = C_W <sigma'^2>_K. Width and weight ensemble do not enter at this order, "
                    "so the verb has no --width, --input-dim, --ensemble or --first-layer.")
    add_network_arguments(p, finite_width=False)
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run)
    return p


def run(args):
    from ..kernel import infinite_width

    result = infinite_width(network_from_args(args), input_norm=args.input_norm)

    def table():
        from .._io import format_table

        net = result.network
        head = (f"# {net.activation.name}, L = {net.depth}, C_b = {net.C_b:.10g}, C_W = {net.C_W:.10g}, "
                f"lambda_b = {net.lambda_b:.10g}, lambda_W = {net.lambda_W:.10g}, "
                f"input_norm = {result.input_norm:.10g}")
        rows = [[int(l), f"{k:.10g}", f"{t:.10g}", f"{cp:.10g}", f"{cq:.10g}"]
                for l, k, t, cp, cq in zip(result.layers, result.K, result.Theta,
                                           result.chi_parallel, result.chi_perp)]
        return head + "\n" + format_table(["layer", "K", "Theta", "chi_par", "chi_perp"], rows)

    payload = result.to_dict()
    for key in ("width", "input_dim", "ensemble", "first_layer"):   # do not enter at this order
        payload["network"].pop(key, None)
    emit(args, payload, table)
    return 0
