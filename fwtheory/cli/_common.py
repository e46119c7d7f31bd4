"""Arguments shared by the sub-commands and their conversion to a Network."""

__all__ = ["add_network_arguments", "network_from_args", "emit"]

import sys

from .._io import dumps_json
from ..network import ENSEMBLES, MAX_DEPTH, MIN_WIDTH


def add_network_arguments(parser, *, depth=10, width=64, activation="tanh", cb=0.0, cw=1.0,
                          ensemble="gaussian", finite_width=True):
    """The network options. ``finite_width=False`` (the ``kernel`` verb, whose
    leading-order results depend on neither) leaves out --width, --input-dim,
    --ensemble and --first-layer, so that they are refused as unknown options
    instead of being silently ignored."""
    g = parser.add_argument_group("network")
    g.add_argument("--activation", default=activation,
                   help="built-in name (linear, relu, leaky_relu(a), tanh, sin, erf, sigmoid, "
                        "softplus, gelu, swish) or an expression in z such as 'z*tanh(z)' "
                        f"(default: {activation})")
    g.add_argument("--depth", type=int, default=depth, help=f"number of layers 1 <= L <= {MAX_DEPTH} (default: {depth})")
    if finite_width:
        g.add_argument("--width", type=int, default=width,
                       help=f"hidden width {MIN_WIDTH} <= n <= 10^12 (default: {width})")
        g.add_argument("--input-dim", type=int, default=None,
                       help="input dimension n0 >= 1 (default: width)")
    g.add_argument("--cb", type=float, default=cb, help=f"bias variance C_b >= 0 (default: {cb})")
    g.add_argument("--cw", type=float, default=cw,
                   help=f"weight variance C_W > 0 (default: {cw}); values so large that a correlator "
                        "overflows float64 are reported as a numerical error (exit 3)")
    g.add_argument("--lambda-b", type=float, default=0.0, help="bias learning rate lambda_b >= 0 (default: 0)")
    g.add_argument("--lambda-w", type=float, default=1.0, help="weight learning rate lambda_W >= 0 (default: 1)")
    if finite_width:
        ensembles = ENSEMBLES
        g.add_argument("--ensemble", default=ensemble, choices=ensembles,
                       help=f"weight ensemble (default: {ensemble}; uniform and rademacher: i.i.d. with a fourth cumulant)")
        g.add_argument("--first-layer", default=None, choices=ensembles,
                       help="first-layer ensemble (default: same as --ensemble)")
        g.add_argument("--residual", type=float, default=None, metavar="GAMMA",
                       help="residual network z^(l+1) = z^(l) + GAMMA (b + W sigma(z^(l))) for l >= 1 "
                            "(default: plain MLP)")
    g.add_argument("--input-norm", type=float, default=1.0,
                   help="q0 = |x|^2 / n0 >= 0 of the input (default: 1)")
    return g


def network_from_args(args, **overrides):
    """The Network of the parsed options; options a verb does not offer take the
    Network defaults (width 64, Gaussian weights)."""
    from ..network import Network

    kw = dict(activation=args.activation, depth=args.depth, width=getattr(args, "width", 64),
              input_dim=getattr(args, "input_dim", None), C_b=args.cb, C_W=args.cw,
              lambda_b=args.lambda_b, lambda_W=args.lambda_w,
              ensemble=getattr(args, "ensemble", "gaussian"),
              first_layer=getattr(args, "first_layer", None),
              residual=getattr(args, "residual", None))
    kw.update(overrides)
    return Network(**kw)


def emit(args, payload, table):
    """Print ``payload`` as JSON when ``--json`` was given, else the table."""
    if getattr(args, "json", False):
        sys.stdout.write(dumps_json(payload) + "\n")
    else:
        sys.stdout.write(table() + "\n")
