"""``fwtheory validity``: is a finite network in the NTK regime? Depth x C_W study
after Seleznova and Kutyniok (arXiv:2202.00553), scaled to fit by default.

Writes ``validity.png`` (heat maps of init dispersion, NTK change and final loss over
depth x C_W, with the order/chaos boundary) and ``validity.json`` into ``--out-dir``.
Importing this module is cheap.
"""

_DEFAULT_INITS, _DEFAULT_STEPS = 30, 50


def add_parser(sub):
    from ..network import ENSEMBLES

    p = sub.add_parser(
        "validity", help="NTK-regime study over depth x C_W (Seleznova-Kutyniok protocol): init dispersion, "
                         "NTK change and final loss of trained networks beside the theory "
                         "(writes validity.png/.json)",
        description="For every depth L and weight variance C_W, initializes --inits networks (width n, input "
                    "dimension n0, unit-norm inputs x_r with <x0, x_r> = r = 1.0, 0.9, ..., 0.0), measures "
                    "std/mean of the output NTK Theta(x0, x0), trains each network --steps full-batch "
                    "gradient-descent steps on the 11 inputs with random labels, and reports the relative NTK "
                    "change and the final loss, each with its standard error, beside the theory: the order-1/n "
                    "dispersion sqrt((A+2B)/n)/Theta (PDLT Ch. 8) and the infinite-width linearized loss (Lee et "
                    "al. arXiv:1902.06720). Default parametrization: the authors' standard one (all parameters at "
                    "learning rate 1: lambda_b = 1, lambda_W = n). Depth L counts layers including the output "
                    "layer (the paper's depth is L - 1 hidden layers).")
    g = p.add_argument_group("network")
    g.add_argument("--activation", default="relu",
                   help="built-in name (relu, tanh, sigmoid, ...) or an expression in z (default: relu)")
    g.add_argument("--width", type=int, default=100, help="hidden width n (default: 100)")
    g.add_argument("--input-dim", type=int, default=None, help="input dimension n0 (default: width)")
    g.add_argument("--depths", default=None, metavar="L1,L2,...",
                   help="depths L (layers incl. output) (default: 5,20; --full: 2..51)")
    g.add_argument("--cw", default=None, metavar="W1,W2,...",
                   help="weight variances C_W = sigma_w^2 (default: 1.5,2.5; --full: 0.5,0.8,1.0,1.2,1.4,"
                        "1.5,...,2.2,2.5,3.0,3.5)")
    g.add_argument("--cb", type=float, default=0.0, help="bias variance C_b = sigma_b^2 (default: 0)")
    g.add_argument("--ensemble", default="gaussian", choices=ENSEMBLES, help="weight ensemble (default: gaussian)")
    g.add_argument("--lambda-b", type=float, default=1.0,
                   help="bias learning rate lambda_b (default: 1; 0 = bias-free NTK)")
    g.add_argument("--lambda-w", type=float, default=None,
                   help="weight learning rate lambda_W (per weight lambda_W / n_{l-1}; default: the width, "
                        "i.e. learning rate 1 for every weight)")
    t = p.add_argument_group("protocol")
    t.add_argument("--inits", type=int, default=None,
                   help=f"initializations per cell (default: {_DEFAULT_INITS}; --full: 500)")
    t.add_argument("--steps", type=int, default=_DEFAULT_STEPS,
                   help=f"gradient-descent steps (default: {_DEFAULT_STEPS})")
    t.add_argument("--lr-scale", type=float, default=0.5,
                   help="learning rate eta = LR_SCALE / lambda_max(Theta_0) per network, 0 < LR_SCALE <= 2 "
                        "(default: 0.5)")
    t.add_argument("--lr-rule", default="network", choices=("network", "theory"),
                   help="lambda_max of each network's own initial NTK (network, default) or of the "
                        "infinite-width NTK, the same eta for all networks as in the theory (theory)")
    t.add_argument("--targets", default="kernel", choices=("kernel", "unit"),
                   help="labels +-sqrt(K^(L)(x, x)) (kernel, default) or +-1 (unit)")
    t.add_argument("--full", action="store_true",
                   help="the paper's grid: depths 2..51, its 16 C_W values, 500 initializations (hours; "
                        "needs --force beyond 30 min)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--force", action="store_true", help="run even if the estimate exceeds 30 minutes")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.add_argument("--out-dir", default=".", metavar="DIR",
                   help="where validity.png and validity.json go (default: the working directory)")
    p.add_argument("--no-files", action="store_true", help="write neither validity.png nor validity.json")
    p.set_defaults(func=run)
    return p


def _list(text, name, kind):
    from ..errors import ParameterError

    try:
        vals = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(name, f"must be a comma-separated list of {kind.__name__}s, got {text!r}") from None
    if not vals:
        raise ParameterError(name, "must not be empty")
    return vals


def run(args):
    import sys

    from .. import _cost
    from .._io import ProgressBar, check_output_dir, dumps_json
    from ..errors import ParameterError
    from ..validity import SK_CW, SK_DEPTHS, validity_study, write_study

    if not args.no_files:
        check_output_dir(args.out_dir, "out-dir")
    depths = _list(args.depths, "depths", int) if args.depths else (list(SK_DEPTHS) if args.full else [5, 20])
    cws = _list(args.cw, "cw", float) if args.cw else (list(SK_CW) if args.full else [1.5, 2.5])
    inits = args.inits if args.inits is not None else (500 if args.full else _DEFAULT_INITS)
    for name, v in (("width", args.width), ("inits", inits), ("steps", args.steps)):
        if not isinstance(v, int) or v < (0 if name == "steps" else 2):
            raise ParameterError(name, f"must be an integer >= {0 if name == 'steps' else 2}, got {v}")
    if min(depths) < 1:
        raise ParameterError("depths", f"must be integers >= 1, got {args.depths}")
    seconds = _cost.validity_seconds(depths, len(cws), inits, args.steps, args.width, args.ensemble)
    _cost.announce("validity", seconds, [("inits", inits, _DEFAULT_INITS), ("steps", args.steps, _DEFAULT_STEPS),
                                         ("depths", max(depths), 20), ("width", args.width, 100),
                                         ("cw", len(cws), 2)], force=args.force)
    bar = ProgressBar(len(depths) * len(cws) * inits, label="validity")
    with bar:
        study = validity_study(args.activation, width=args.width, input_dim=args.input_dim, depths=depths,
                               cw_values=cws, cb=args.cb, inits=inits, steps=args.steps, ensemble=args.ensemble,
                               lambda_b=args.lambda_b, lambda_w=args.lambda_w, lr_scale=args.lr_scale,
                               lr_rule=args.lr_rule,
                               target_scale=args.targets, seed=args.seed, progress=bar)
    if args.json:
        sys.stdout.write(dumps_json(study.to_dict()) + "\n")
    else:
        s = study.settings
        edge = "none" if study.edge_of_chaos is None else f"C_W = {study.edge_of_chaos:.6g}"
        sys.stdout.write(f"{study.activation}, n = {s['width']}, n0 = {s['input_dim']}, C_b = {s['C_b']:g}, "
                         f"{s['ensemble']}, lambda_b = {s['lambda_b']:g}, lambda_W = {s['lambda_W']:g}, "
                         f"{s['inits']} inits, {s['steps']} steps; edge of chaos {edge}\n"
                         "disp = std/mean of Theta(x0, x0) at init (theory: order 1/n); dNTK = "
                         "||Theta_T - Theta_0||_F/||Theta_0||_F (infinite width: 0); loss = E[L_T]/E[L_0] "
                         "(theory: infinite width)\n")
        sys.stdout.write(study.table() + "\n")
    if not args.no_files:
        png, js = write_study(study, args.out_dir)
        print(f"fwtheory validity: wrote {png} and {js}", file=sys.stderr)
    return 0
