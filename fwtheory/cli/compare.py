"""``fwtheory compare``: theory and Monte Carlo side by side, layer by layer.

Importing this module is cheap (argparse only); the theory, numba and
matplotlib load in :func:`run`.
"""

from ._common import add_network_arguments, network_from_args


def add_parser(sub):
    p = sub.add_parser(
        "compare", help="theory against Monte Carlo: per correlator and layer, z-scores and verdicts",
        description="Run `predict` and `simulate` on one network and compare every correlator and "
                    "ratio layer by layer: theory, measured value with its standard error, z-score, "
                    "relative error and a verdict (agree when |measured - theory| <= z SE + "
                    "rel_tol |theory|). K and Theta are compared as E[z^2] = K + G1/n and "
                    "E[H_ii] = Theta + Theta1/n at the simulated width; with --widths the "
                    "width-extrapolated c0 of the chosen fit (c0 + c1/n, or c0 + c1/n + c2/n^2 with "
                    "three or more widths where the 2-term fit is rejected at p < 0.05; both fits' "
                    "chi^2 are shown) is compared with the theory. With --order 2 the simulation is "
                    "preactivations only (fwtheory.mc.simulate_preactivations: E[z^2], V, U6, many "
                    "networks are cheap) and E[z^2] and V are compared with the series through 1/n "
                    "and through 1/n^2, with chi^2 over layers for both. With --gram (several inputs) "
                    "every correlator K, G1, V, Theta, Theta1, D, F, A, B is compared per sample-index "
                    "tuple (one row per distinct entry; JSON: quantities -> name -> index string, "
                    "e.g. \"0101\").")
    add_network_arguments(p, depth=10, width=64)
    p.add_argument("--samples", type=int, default=2000, help="independent networks per width (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--widths", nargs="+", default=None, metavar="N",
                   help="widths for the 1/n extrapolation, e.g. --widths 32 64 128 (or 32,64,128)")
    p.add_argument("--order", type=int, default=1, choices=(1, 2),
                   help="2: predict(order=2) against the preactivation-only simulation; E[z^2] and V "
                        "through 1/n and 1/n^2, U6 at leading order (default: 1)")
    p.add_argument("--gram", default=None, metavar="G11,G12;G21,G22",
                   help="several inputs: the m x m input Gram matrix G_ab = x_a.x_b/n0 (m <= 4, rows "
                        "separated by ';'); every correlator is compared per index tuple "
                        "(docs/multi_input.md). Not with --order 2 or --input-norm")
    p.add_argument("--z", type=float, default=3.0, help="allowed standard errors (default: 3)")
    p.add_argument("--rel-tol", type=float, default=0.05,
                   help="allowed relative deviation from the theory (default: 0.05)")
    p.add_argument("--quantities", nargs="+", default=None, metavar="NAME",
                   help="restrict the table to these quantities, e.g. V 'V/K^2' (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the JSON to FILE (atomically; a missing directory is created)")
    p.add_argument("--plot", default=None, metavar="FILE", help="write a PNG of theory and MC against depth")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when any shown quantity disagrees")
    p.set_defaults(func=run)
    return p


def parse_widths(values):
    """['32,64', '128'] -> [32, 64, 128]; None stays None."""
    from ..errors import ParameterError

    if values is None:
        return None
    text = " ".join(values).replace(",", " ")
    try:
        return [int(w) for w in text.split()]
    except ValueError:
        raise ParameterError("widths", f"must be integers >= 2, got {' '.join(values)!r}") from None


def run(args):
    import sys

    from .._io import ProgressBar, atomic_write_text, check_output_file, dumps_json
    from ..comparison import compare
    from ..mc import simulate, simulate_preactivations
    from ..prediction import predict

    net = network_from_args(args)
    widths = parse_widths(args.widths)
    gram = _check_gram_args(args, net)
    if args.out is not None:
        check_output_file(args.out, "out")
    if args.plot is not None:
        check_output_file(args.plot, "plot")
    if gram is not None:
        prediction = predict(net, gram=gram)
    else:
        prediction = predict(net, input_norm=args.input_norm, order=args.order)
    total = args.samples * (len(set(widths)) if widths else 1)
    sampler = simulate if args.order == 1 else simulate_preactivations
    with ProgressBar(total, label="compare: simulate", delay=2.0) as bar:
        if gram is not None:
            sim = simulate(net, samples=args.samples, seed=args.seed, widths=widths, gram=gram, progress=bar)
        else:
            sim = sampler(net, samples=args.samples, seed=args.seed, widths=widths,
                          input_norm=args.input_norm, progress=bar)
    result = compare(prediction, sim, z=args.z, rel_tol=args.rel_tol)
    names = result.resolve_names(args.quantities)
    payload = result.to_dict()
    if args.out is not None:
        atomic_write_text(args.out, dumps_json(payload) + "\n", "out")
    if args.plot is not None:
        result.plot(args.plot, names=names)
    if args.json:
        sys.stdout.write(dumps_json(payload) + "\n")
    else:
        sys.stdout.write(result.table(names=names) + "\n")
    if sim.interrupted:
        return 130
    return 1 if (args.check and result.failures(names)) else 0


def _check_gram_args(args, net):
    """The checked Gram matrix of --gram (None without it); --gram refuses --order 2
    and --input-norm (the norms are the Gram matrix's diagonal)."""
    from ..errors import ParameterError

    if args.gram is None:
        return None
    from ..mc.multi_input import check_gram

    if args.order != 1:
        raise ParameterError("order", "with --gram (several inputs) only order 1 is derived; drop --order 2")
    if args.input_norm != 1.0:
        raise ParameterError("input_norm", "give either --input-norm (one input) or --gram (its diagonal "
                                           "holds the input norms)")
    return check_gram(args.gram, net)
