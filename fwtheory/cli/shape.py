"""``fwtheory shape``: DKS / TAT kernel-shaping transformation of an activation and its
finite-width cost next to the edge-of-chaos initialization. Importing this module is cheap.
"""


def add_parser(sub):
    p = sub.add_parser(
        "shape", help="Deep Kernel Shaping / TAT transformation gamma (phi(alpha z + beta) + delta) "
                      "and its finite-width cost",
        description="Solve phi_hat(z) = gamma (phi(alpha z + beta) + delta) for a network of D nonlinear "
                    "layers (C_W = 1, C_b = 0, q0 = 1): DKS (Martens et al. arXiv:2110.01765) imposes "
                    "Q(1) = 1, Q'(1) = 1, C(0) = 0 and network C'(1) = zeta; TAT (Zhang et al. "
                    "arXiv:2203.08120) imposes network C(0) = eta for leaky ReLU (solving the negative "
                    "slope) or Q(1) = Q'(1) = C'(1) = 1 and network C''(1) = tau for smooth activations. "
                    "Prints the transformation, the achieved map values and the leading 1/n ratios "
                    "V/K^2, A/Theta^2, B/Theta^2 at the output layer L = D + 1 next to the edge-of-chaos "
                    "initialization of the same activation.")
    p.add_argument("--activation", default="tanh",
                   help="built-in name or an expression in z (default: tanh)")
    p.add_argument("--depth", type=int, default=10, help="number D of nonlinear layers (default: 10)")
    p.add_argument("--method", default="dks", choices=("dks", "tat"), help="DKS or TAT (default: dks)")
    p.add_argument("--zeta", type=float, default=1.5, help="DKS: network C'(1) (default: 1.5)")
    p.add_argument("--eta", type=float, default=0.9, help="TAT leaky ReLU: network C(0) (default: 0.9)")
    p.add_argument("--tau", type=float, default=0.3, help="TAT smooth: network C''(1) (default: 0.3)")
    p.add_argument("--width", type=int, default=64, help="width n for the finite-width cost (default: 64)")
    p.add_argument("--no-cost", action="store_true", help="skip the finite-width comparison")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run)
    return p


def _g(v):
    return "-" if v is None else f"{v:.12g}"


def run(args):
    from ..shaping import finite_width_cost, shape_activation
    from ._common import emit

    s = shape_activation(args.activation, args.depth, zeta=args.zeta, method=args.method, eta=args.eta,
                         tau=args.tau)
    cost = None if args.no_cost else finite_width_cost(s, args.width)
    payload = s.to_dict()
    payload["finite_width"] = cost

    def table():
        from .._io import format_table

        rows = [["method", s.method.upper()], ["activation", s.activation], ["depth D", str(s.depth)],
                ["alpha", _g(s.alpha)], ["beta", _g(s.beta)], ["gamma", _g(s.gamma)], ["delta", _g(s.delta)]]
        if s.negative_slope is not None:
            rows.append(["negative slope", _g(s.negative_slope)])
        rows.append(["expression", s.expression])
        out = [format_table(["quantity", "value"], rows, align="left"), "",
               format_table(["map value", "target", "achieved"],
                            [[k, _g(s.targets.get(k)), _g(v)] for k, v in s.achieved.items()])]
        if cost is not None:
            out.append("")
            out.append(f"leading 1/n ratios at layer L = {cost['layer']}, width n = {cost['width']} "
                       "(value, and value / n):")
            rows = []
            for key in ("shaped", "edge_of_chaos"):
                c = cost.get(key)
                if c is None:
                    rows.append([key, "-", "-", "-", "-", "-", "-"])
                    continue
                r, o = c["ratios"], c["over_width"]
                rows.append([f"{key} (C_b={c['C_b']:.4g}, C_W={c['C_W']:.4g})"] +
                            [f"{r[k]:.5g}" for k in ("V/K^2", "A/Theta^2", "B/Theta^2")] +
                            [f"{o[k]:.4g}" for k in ("V/K^2", "A/Theta^2", "B/Theta^2")])
            out.append(format_table(["network", "V/K^2", "A/Theta^2", "B/Theta^2", "V/(nK^2)",
                                     "A/(nTheta^2)", "B/(nTheta^2)"], rows))
            if cost.get("edge_of_chaos"):
                out.append(f"edge of chaos: {cost['edge_of_chaos']['initialization']}")
        return "\n".join(out)

    emit(args, payload, table)
    return 0
