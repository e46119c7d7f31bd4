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
    p.add_argument("--gram", default=None,
                   help="several inputs: the Gram matrix x_a.x_b/n0, rows separated by ';', e.g. "
                        "\"1,0.5;0.5,1\" (m <= 4; replaces --input-norm); JSON tensors are indexed "
                        "[layer][a][b] (K, G1, Theta, Theta1) and [layer][a][b][c][d] (V, D, F, A, B)")
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
    if args.gram is not None:
        return _run_gram(args, net)
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


def _run_gram(args, net):
    from .._io import atomic_write_text, dumps_json, format_table
    from ..errors import ParameterError
    from ..prediction import predict

    if args.input_norm != 1.0:
        raise ParameterError("input_norm", "give either --input-norm or --gram (its diagonal holds the "
                                           "input norms), not both")
    from ..gram import parse_gram

    result = predict(net, precision=args.precision, order=args.order, gram=parse_gram(args.gram))
    payload = result.to_dict()
    if args.out is not None:
        atomic_write_text(args.out, dumps_json(payload) + "\n", "out")

    def table():
        m = result.gram.shape[0]
        title = (f"# {net.activation.name}, {net.ensemble} weights (first layer {net.first_layer}), "
                 f"C_b={net.C_b:g}, C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, lambda_W={net.lambda_W:g}, "
                 f"{m} inputs, gram={args.gram}; one row per layer and index tuple (canonical order, "
                 "docs/derivation.md); G1, V, Theta1, D, F, A, B are 1/n coefficients")
        rows = {}
        for layer, name, idx, value in result.table_rows():
            rows.setdefault((layer, name), []).append((idx, value))
        lines = []
        for (layer, name), entries in rows.items():
            for idx, value in entries:
                lines.append([layer, name, idx, value])
        return title + "\n" + format_table(["layer", "name", "indices", "value"], lines)

    emit(args, payload, table)
    return 0
