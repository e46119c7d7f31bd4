"""``fwtheory predict``: leading-order correlators across depth."""

from ._common import add_network_arguments, emit, network_from_args


def add_parser(sub):
    p = sub.add_parser(
        "predict", help="leading-order 1/n correlators at every layer (theory)",
        description="Evaluate the derived single-input recursions across depth. The table shows "
                    "the dimensionless ratios; --json gives every correlator per layer.")
    add_network_arguments(p, depth=10, width=64)
    p.add_argument("--precision", default="float64", choices=("float64", "mpmath"))
    p.add_argument("--order", type=int, default=1, choices=(1, 2),
                   help="2: also the 1/n^2 preactivation correlators G2, V1, U6 (single input; "
                        "E[z^2] = K + G1/n + G2/n^2, Cov(z_i^2, z_k^2) = V/n + V1/n^2, "
                        "kappa(z_i^2, z_j^2, z_k^2) = U6/n^2; default: 1)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--out", default=None, help="also write the JSON to this file (atomically; a missing directory is created)")
    p.set_defaults(func=run)
    return p


def run(args):
    from .._io import atomic_write_text, check_output_file, dumps_json, format_table
    from ..prediction import predict
    from ..quantities import RATIOS

    net = network_from_args(args)
    if args.out is not None:
        check_output_file(args.out, "out")
    result = predict(net, input_norm=args.input_norm, precision=args.precision, order=args.order)
    payload = result.to_dict()
    if args.out is not None:
        atomic_write_text(args.out, dumps_json(payload) + "\n", "out")

    def table():
        ratios = dict(result.ratios)
        names = list(RATIOS)
        if result.order == 2:
            ratios.update(result.order2_ratios)
            names += list(result.order2_ratios)
        head = ["layer", "K", "Theta"] + names
        rows = [[int(l), float(result["K"][i]), float(result["Theta"][i])]
                + [float(ratios[r][i]) for r in names] for i, l in enumerate(result.layers)]
        title = (f"# {net.activation.name}, {net.ensemble} weights (first layer {net.first_layer}), "
                 f"C_b={net.C_b:g}, C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, "
                 f"lambda_W={net.lambda_W:g}, q0={args.input_norm:g}; ratios are 1/n coefficients"
                 + ("; G2/K, V1/K^2, U6/K^3 are 1/n^2 coefficients" if result.order == 2 else ""))
        return title + "\n" + format_table(head, rows)

    emit(args, payload, table)
    return 0
