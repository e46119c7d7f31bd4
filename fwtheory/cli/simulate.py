"""``fwtheory simulate``: Monte Carlo estimates of the correlators with errors.

Importing this module is cheap (argparse only); numba and the sampler load in
:func:`run`.
"""

from ._common import add_network_arguments, network_from_args


def add_parser(sub):
    p = sub.add_parser(
        "simulate", help="Monte Carlo of Gaussian/orthogonal/uniform/Rademacher (optionally residual) "
                         "networks: correlators with errors",
        description="Sample independent networks (numba), propagate the preactivations and the "
                    "full NTK matrix layer by layer, and estimate K, G1, V, Theta, Theta1, D, F, "
                    "A, B (same keys and normalizations as `predict`) with jackknife standard "
                    "errors. With --widths, fit X(n) = c0 + c1/n per layer (with three or more "
                    "widths also c0 + c1/n + c2/n^2, used where the 2-term fit is rejected at "
                    "p < 0.05 and the 3-term one is not) and report c0.")
    add_network_arguments(p)
    p.add_argument("--samples", type=int, default=4000, help="independent networks per width (default: 4000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--widths", default=None,
                   help="comma-separated widths for the 1/n extrapolation, e.g. 32,64,128")
    p.add_argument("--gram", default=None, metavar="G11,G12;G21,G22",
                   help="several inputs (m <= 4): the Gram matrix x_a.x_b/n0, rows separated by ';' "
                        "(e.g. \"1,0.5;0.5,1\"); JSON tensors are nested lists [layer][a][b] (K, G1, "
                        "Theta, Theta1) and [layer][a][b][c][d] (V, D, F, A, B); without it the "
                        "single-input output is unchanged")
    p.add_argument("--descendants", action="store_true",
                   help="also estimate the dNTK/ddNTK statistics P, Q, R, S, T, U "
                        "(fwtheory.mc.simulate_descendants; JSON key 'descendants')")
    p.add_argument("--preactivations", action="store_true",
                   help="preactivations only (fwtheory.mc.simulate_preactivations): E[z^2], G1, V and "
                        "the six-point U6 = n^2 kappa(z_i^2, z_j^2, z_k^2), no NTK; cheap enough for "
                        "the ~10^6 networks that resolve 1/n^2 terms")
    p.add_argument("--pairs", type=int, default=8,
                   help="neuron pairs sampled per network and layer for the descendants (default: 8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the JSON to FILE (atomically; a missing directory is created)")
    p.add_argument("--force", action="store_true",
                   help="run even when the estimated time exceeds the 30-minute limit (fwtheory._cost)")
    p.set_defaults(func=run)
    return p


def _widths(text):
    from ..errors import ParameterError

    if text is None:
        return None
    try:
        return [int(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise ParameterError("widths", f"must be comma-separated integers >= 2, got {text!r}") from None


def _table(sim, names=None):
    from .. import quantities
    from .._io import format_table

    def cell(v, e):
        if v != v:
            return "-"
        if v != 0 and abs(v) <= 1e-9 and e <= 1e-9:   # a deterministic 0 up to round-off
            return "0 (round-off)"
        return f"{v:.4g}" if e != e else f"{v:.4g}±{e:.2g}"

    names = list(quantities.RATIOS) if names is None else list(names)
    rows = []
    for i, l in enumerate(sim.layers):
        rows.append([int(l)] + [cell(float(sim.ratios[k][i]), float(sim.ratio_errors[k][i])) for k in names]
                    + [f"{sim.overflow[i]:.0%}" if sim.overflow[i] > 0 else ""])
    net = sim.network
    what = (f"extrapolated n -> inf from widths {', '.join(map(str, sim.extrapolation.widths))}"
            if sim.extrapolation is not None else f"width {net.width}")
    head = (f"# simulate: {net.activation.name}, {net.ensemble} (first layer {net.first_layer}), "
            f"depth {net.depth}{'' if net.residual is None else f', residual {net.residual:g}'}, {what}; C_b={net.C_b:g}, C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, "
            f"lambda_W={net.lambda_W:g}, q0={sim.input_norm:g}; {sim.samples} networks, seed {sim.seed}")
    out = head + "\n" + format_table(["l"] + names + ["overflow"], rows)
    if sim.extrapolation is not None and sim.extrapolation.fits:
        out += "\n" + _fit_table(sim, names)
    return out


def _chi2_cell(fit, i):
    """chi^2 of one fit at layer index i: '-' without that fit, 0 with no degrees of freedom left."""
    if fit is None:
        return "-"
    return "0" if fit["dof"][i] == 0 else f"{fit['chi2'][i]:.3g}"


def _fit_table(sim, names):
    """Per layer and ratio: the width-fit model used and both fits' chi^2 (2-term/3-term)."""
    from .._io import format_table

    ex = sim.extrapolation
    rows = []
    for i, l in enumerate(sim.layers):
        row = [int(l)]
        for k in names:
            fit = ex.fits.get(k)
            if not fit or fit.get("linear") is None:
                row.append("-")
                continue
            row.append(f"{int(ex.model[k][i])}: {_chi2_cell(fit['linear'], i)}/{_chi2_cell(fit['quadratic'], i)}")
        rows.append(row)
    return ("# width fits: terms used (2: c0 + c1/n, 3: + c2/n^2, used where the 2-term fit has chi^2 "
            "p < 0.05 and the 3-term one does not): chi^2 of the 2-term/3-term fit\n"
            + format_table(["l"] + list(names), rows))


def _gram_table(sim):
    """Per layer and input pair a <= b: K_ab, Theta_ab and the four-point vertex V_abab."""
    from .._io import format_table

    m = sim.gram.shape[0]
    pairs = [(a, b) for a in range(m) for b in range(a, m)]

    def cell(v, e):
        if v != v:
            return "-"
        return f"{v:.4g}" if e != e else f"{v:.4g}±{e:.2g}"

    head = ["l"]
    for name in ("K", "Theta", "V"):
        head += [f"{name}_{a}{b}" if name != "V" else f"V_{a}{b}{a}{b}" for a, b in pairs]
    rows = []
    for i, l in enumerate(sim.layers):
        row = [int(l)]
        for name in ("K", "Theta", "V"):
            for a, b in pairs:
                idx = (i, a, b) if name != "V" else (i, a, b, a, b)
                row.append(cell(float(sim.values[name][idx]), float(sim.errors[name][idx])))
        rows.append(row)
    net = sim.network
    what = (f"extrapolated n -> inf from widths {', '.join(map(str, sim.extrapolation['widths']))}"
            if sim.extrapolation is not None else f"width {net.width}")
    gram = ";".join(",".join(f"{v:g}" for v in r) for r in sim.gram)
    title = (f"# simulate --gram {gram}: {net.activation.name}, {net.ensemble} (first layer "
             f"{net.first_layer}), depth {net.depth}"
             f"{'' if net.residual is None else f', residual {net.residual:g}'}, {what}; C_b={net.C_b:g}, "
             f"C_W={net.C_W:g}, lambda_b={net.lambda_b:g}, lambda_W={net.lambda_W:g}; {sim.samples} "
             f"networks, seed {sim.seed} (all tensors: --json)")
    return title + "\n" + format_table(head, rows)


def run(args):
    import sys

    from .._io import ProgressBar, atomic_write_text, check_output_file, dumps_json
    from ..mc import simulate

    net = network_from_args(args)
    widths = _widths(args.widths)
    if args.out is not None:
        check_output_file(args.out, "out")
    from .._cost import check_simulate

    gram = None
    if args.gram is not None:
        from ..errors import ParameterError
        from ..mc.multi_input import check_gram

        if args.descendants:
            raise ParameterError("descendants", "not available with --gram (the dNTK/ddNTK sampler "
                                                "takes one input)")
        if args.preactivations:
            raise ParameterError("preactivations", "not available with --gram (the preactivation "
                                                   "sampler takes one input)")
        if args.input_norm != 1.0:
            raise ParameterError("input_norm", "must stay 1 with --gram: the input norms are the "
                                               "diagonal of the Gram matrix")
        gram = check_gram(args.gram, net)
    total = args.samples * (len(set(widths)) if widths else 1)
    if args.preactivations:
        from ..errors import ParameterError
        from ..mc import simulate_preactivations

        if args.descendants:
            raise ParameterError("descendants", "cannot be combined with --preactivations (that run "
                                                "propagates no NTK); run them separately")

        with ProgressBar(total, label="simulate (preactivations)", delay=2.0) as bar:
            sim = simulate_preactivations(net, samples=args.samples, seed=args.seed, widths=widths,
                                          input_norm=args.input_norm, progress=bar)
        payload = sim.to_dict()
        if args.out is not None:
            atomic_write_text(args.out, dumps_json(payload) + "\n", "out")
        sys.stdout.write(dumps_json(payload) + "\n" if args.json else
                         _table(sim, ("V/K^2", "G1/K", "U6/K^3")) + "\n")
        for note in sim.notes:
            print(f"fwtheory simulate: note: {note}", file=sys.stderr)
        return 130 if sim.interrupted else 0
    m = 1 if gram is None else gram.shape[0]     # several inputs: ~m(m+1)/2 NTK blocks per network
    check_simulate(net, args.samples * (m * (m + 1) // 2 if m > 1 else 1), widths, args.descendants,
                   force=args.force)
    with ProgressBar(total, label="simulate", delay=2.0) as bar:
        if gram is None:
            sim = simulate(net, samples=args.samples, seed=args.seed, widths=widths,
                           input_norm=args.input_norm, progress=bar)
        else:
            sim = simulate(net, samples=args.samples, seed=args.seed, widths=widths, progress=bar,
                           gram=gram)
    payload = sim.to_dict()
    desc = None
    if gram is not None:
        if args.out is not None:
            atomic_write_text(args.out, dumps_json(payload) + "\n", "out")
        sys.stdout.write((dumps_json(payload) if args.json else _gram_table(sim)) + "\n")
        for note in sim.notes:
            print(f"fwtheory simulate: note: {note}", file=sys.stderr)
        return 130 if sim.interrupted else 0
    if args.descendants:
        from ..mc import simulate_descendants

        with ProgressBar(total, label="descendants", delay=2.0) as bar:
            desc = simulate_descendants(net, samples=args.samples, seed=args.seed, pairs=args.pairs,
                                        widths=widths, input_norm=args.input_norm, progress=bar)
        payload["descendants"] = desc.to_dict()
    if args.out is not None:
        atomic_write_text(args.out, dumps_json(payload) + "\n", "out")
    if args.json:
        sys.stdout.write(dumps_json(payload) + "\n")
    else:
        sys.stdout.write(_table(sim) + "\n")
        if desc is not None:
            from ..quantities import DESCENDANT_RATIOS

            sys.stdout.write(_table(desc, DESCENDANT_RATIOS).replace("# simulate:", "# descendants:", 1) + "\n")
    for note in sim.notes + (desc.notes if desc is not None else []):
        print(f"fwtheory simulate: note: {note}", file=sys.stderr)
    return 130 if sim.interrupted or (desc is not None and desc.interrupted) else 0
