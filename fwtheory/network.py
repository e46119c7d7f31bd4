"""The network specification: one immutable object shared by theory and simulation.

Conventions (PDLT arXiv:2106.10165 eqs. (4.2)-(4.4) and Ch. 7-8; docs/conventions.md):

    z^(1)_i   = b^(1)_i + sum_j W^(1)_ij x_j
    z^(l+1)_i = b^(l+1)_i + sum_j W^(l+1)_ij sigma(z^(l)_j)

with E[b b] = C_b, E[W_ij W_ij] = C_W / n_{l-1} (Gaussian ensemble; i.i.d.
uniform on [-a, a], a = sqrt(3 C_W / n_{l-1}); i.i.d. Rademacher
+-sqrt(C_W / n_{l-1})), or W = sqrt(C_W) O with O Haar-orthogonal (square
layers only). Biases are Gaussian in every ensemble.

With ``residual=gamma`` (residual MLPs as in PDLT appendix B, "residual
learning", which weights the block and the shortcut separately; here the
shortcut weight is 1 and gamma weights the block; PDLT's own letters for the
two weights are not used here), the hidden layers are residual blocks around
the identity:

    z^(l+1)_i = z^(l)_i + gamma [b^(l+1)_i + sum_j W^(l+1)_ij sigma(z^(l)_j)],  l >= 1

(layer 1 unchanged). ``residual=None`` is the plain MLP (not gamma = 0, which
is the network that copies z^(1) to every layer). Hidden widths are
all equal to ``width``; the input dimension ``input_dim`` (n0) defaults to
``width``. The NTK learning-rate tensor is lambda_b for every bias and
lambda_W / n_{l-1} for every weight of layer l.
"""

__all__ = ["Network", "ENSEMBLES", "DERIVED_ENSEMBLES", "check_input_norm"]

from dataclasses import dataclass, replace

from .activations import Activation, get_activation
from .errors import ParameterError, check_int, check_real

ENSEMBLES = ("gaussian", "orthogonal", "uniform", "rademacher")
DERIVED_ENSEMBLES = ("gaussian", "orthogonal", "uniform", "rademacher")    # those predict() has recursions for
MIN_WIDTH = 2   # pairs of distinct neurons i != k; the same bound for theory and Monte Carlo
MAX_WIDTH = 10**12      # widths and n0 stay exact in float64 (1/n enters as a float)
MAX_DEPTH = 100_000     # the depth recursions are sequential: ~0.2 ms per layer for predict


def _ensemble(name, value):
    if not isinstance(value, str) or value.lower() not in ENSEMBLES:
        raise ParameterError(name, f"must be one of {', '.join(ENSEMBLES)}, got {value!r}")
    return value.lower()


@dataclass(frozen=True)
class Network:
    """A fully-connected network at initialization.

    Parameters
    ----------
    activation : str, sympy expression or Activation
        Built-in name (``"tanh"``, ``"leaky_relu(0.1)"``...) or expression in z.
    depth : int
        Number of layers 1 <= L <= 100000 (layer L is the output layer; the
        theory iterates layer by layer, about 20 s per 10^5 layers).
    width : int
        Hidden width 2 <= n <= 10^12 (every layer l = 1..L has n neurons). The 1/n
        corrections are statements about distinct neurons i != k (e.g.
        Cov(z_i^2, z_k^2)), which need at least two; the Monte Carlo needs the
        same, so theory and simulation accept the same widths.
    input_dim : int, optional
        Input dimension 1 <= n0 <= 10^12; defaults to ``width``.
    C_b : float
        Bias variance, >= 0.
    C_W : float
        Weight variance times fan-in, > 0.
    lambda_b, lambda_W : float
        NTK learning rates (>= 0) of biases and of weights (per weight
        lambda_W / n_{l-1}).
    ensemble : {"gaussian", "orthogonal", "uniform", "rademacher"}
        Weight ensemble of layers 2..L (uniform: i.i.d. on [-a, a] with
        a = sqrt(3 C_W / n_{l-1}); rademacher: i.i.d. +-sqrt(C_W / n_{l-1});
        both have variance C_W / n_{l-1}; their fourth cumulants enter the
        1/n theory, docs/derivation.md).
    first_layer : {"gaussian", "orthogonal", "uniform", "rademacher"}, optional
        Ensemble of the first layer; defaults to ``ensemble``. An orthogonal
        first layer needs ``input_dim == width``.
    residual : float >= 0, optional
        Residual strength gamma: z^(l+1) = z^(l) + gamma (b^(l+1) + W^(l+1)
        sigma(z^(l))) for l >= 1 (PDLT appendix B). None (default): plain MLP.
        ``predict`` needs an odd activation for it (docs/derivation.md).
    """

    activation: Activation
    depth: int
    width: int
    input_dim: int = None
    C_b: float = 0.0
    C_W: float = 1.0
    lambda_b: float = 0.0
    lambda_W: float = 1.0
    ensemble: str = "gaussian"
    first_layer: str = None
    residual: float = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("activation", get_activation(self.activation))
        set_("depth", check_int("depth", self.depth, lower=1, upper=MAX_DEPTH))
        set_("width", check_int("width", self.width, lower=MIN_WIDTH, upper=MAX_WIDTH))
        n0 = self.width if self.input_dim is None else self.input_dim
        set_("input_dim", check_int("input_dim", n0, lower=1, upper=MAX_WIDTH))
        set_("C_b", check_real("C_b", self.C_b, lower=0.0))
        set_("C_W", check_real("C_W", self.C_W, lower=0.0, lower_open=True))
        set_("lambda_b", check_real("lambda_b", self.lambda_b, lower=0.0))
        set_("lambda_W", check_real("lambda_W", self.lambda_W, lower=0.0))
        set_("ensemble", _ensemble("ensemble", self.ensemble))
        first = self.ensemble if self.first_layer is None else self.first_layer
        set_("first_layer", _ensemble("first_layer", first))
        if self.residual is not None:
            set_("residual", check_real("residual", self.residual, lower=0.0))
        if self.first_layer == "orthogonal" and self.input_dim != self.width:
            raise ParameterError(
                "first_layer",
                f"an orthogonal first layer needs square weights, input_dim == width; "
                f"got input_dim={self.input_dim}, width={self.width} "
                "(use first_layer='gaussian' or input_dim=width)")

    def replace(self, **changes):
        """Return a copy with some parameters changed (validated again)."""
        if "ensemble" in changes and "first_layer" not in changes and self.first_layer == self.ensemble:
            changes["first_layer"] = None
        if "width" in changes and "input_dim" not in changes and self.input_dim == self.width:
            changes["input_dim"] = None  # a default (square) input dimension follows the width
        return replace(self, **changes)

    def to_dict(self):
        """Plain-JSON dictionary of all parameters."""
        return {
            "activation": self.activation.name,
            "depth": self.depth,
            "width": self.width,
            "input_dim": self.input_dim,
            "C_b": self.C_b,
            "C_W": self.C_W,
            "lambda_b": self.lambda_b,
            "lambda_W": self.lambda_W,
            "ensemble": self.ensemble,
            "first_layer": self.first_layer,
            "residual": self.residual,
        }


def check_input_norm(network, input_norm):
    """q0 = |x|^2 / n0 as a float >= 0, and > 0 when C_b = 0 (then K^(1) =
    C_b + C_W q0 would vanish: a zero input has no Gaussian statistics).
    The same rule for kernel, predict and simulate."""
    q0 = check_real("input_norm", input_norm, lower=0.0)
    if q0 == 0.0 and network.C_b == 0.0:
        raise ParameterError(
            "input_norm", "must be > 0 when C_b = 0: K^(1) = C_b + C_W * input_norm would vanish "
            "(a zero input has no Gaussian statistics)")
    return q0
