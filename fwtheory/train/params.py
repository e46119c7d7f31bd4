"""Parameters of a trainable MLP drawn from a :class:`~fwtheory.network.Network`'s ensemble.

The trained network is the network of :mod:`fwtheory.network` (PDLT
arXiv:2106.10165 eqs. (4.2)-(4.4); docs/conventions.md) with its output layer
cut down to ``output_dim`` neurons:

    z^(1)   = b^(1) + W^(1) x                        W^(1): (n, n0)
    z^(l+1) = b^(l+1) + W^(l+1) sigma(z^(l))         W^(l+1): (n, n), l = 1 .. L-2
    z^(L)   = b^(L) + W^(L) sigma(z^(L-1))           W^(L): (n_out, n)

(for L = 1 the only layer is (n_out, n0)). Every weight has variance
C_W / fan_in and every bias variance C_b, exactly as in ``Network``:

* gaussian: W_ij ~ N(0, C_W / fan_in);
* uniform: i.i.d. on [-a, a], a = sqrt(3 C_W / fan_in);
* rademacher: i.i.d. +-sqrt(C_W / fan_in);
* orthogonal: W = sqrt(C_W) O, O Haar on O(fan_in) (square layers); a layer
  with fewer outputs than inputs (the output layer) takes the first fan_out
  rows of such an O, which is the joint law of those rows of the square Haar
  layer of the theory, so the kept output neurons have exactly the statistics
  of neurons 1..n_out of the theory's layer L.

Layer 1 is drawn from ``network.first_layer``, layers 2..L from
``network.ensemble``. With ``residual=gamma`` layers l >= 2 are blocks
z^(l) = P z^(l-1) + gamma (b^(l) + W^(l) sigma(z^(l-1))), P the identity for
hidden layers and the projection on the first n_out coordinates for the output
layer (again the theory's neurons 1..n_out of layer L).

Parameters are a list of ``(W, b)`` pairs, one per layer, float64.
"""

from __future__ import annotations

__all__ = ["init_params", "layer_shapes", "check_params"]

import math

import numpy as np

from ..errors import ParameterError, check_int
from ..network import Network


def layer_shapes(network, input_dim, output_dim):
    """[(fan_out, fan_in), ...] of layers 1..L."""
    n, L = network.width, network.depth
    shapes = []
    for l in range(1, L + 1):
        fan_in = input_dim if l == 1 else n
        fan_out = output_dim if l == L else n
        shapes.append((fan_out, fan_in))
    return shapes


def _check_dims(network, input_dim, output_dim):
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    input_dim = network.input_dim if input_dim is None else check_int("input_dim", input_dim, lower=1)
    output_dim = check_int("output_dim", output_dim, lower=1)
    if network.residual is not None and network.depth > 1 and output_dim > network.width:
        raise ParameterError("output_dim", f"a residual network needs output_dim <= width = "
                                           f"{network.width} (the output block's skip keeps the "
                                           f"first output_dim neurons), got {output_dim}")
    return input_dim, output_dim


def _weights(rng, ensemble, C_W, fan_out, fan_in, layer):
    if ensemble == "gaussian":
        return math.sqrt(C_W / fan_in) * rng.standard_normal((fan_out, fan_in))
    if ensemble == "uniform":
        a = math.sqrt(3.0 * C_W / fan_in)
        return rng.uniform(-a, a, size=(fan_out, fan_in))
    if ensemble == "rademacher":
        return math.sqrt(C_W / fan_in) * (2.0 * rng.integers(0, 2, size=(fan_out, fan_in)) - 1.0)
    # orthogonal: rows of a Haar O(fan_in) matrix
    if fan_out > fan_in:
        name = "first_layer" if layer == 1 else "ensemble"
        raise ParameterError(name, f"orthogonal layer {layer} needs fan_out <= fan_in, got "
                                   f"{fan_out} x {fan_in}")
    from ..mc.ensembles import haar_orthogonal

    O = haar_orthogonal(1, fan_in, rng)[0]
    return math.sqrt(C_W) * O[:fan_out]


def init_params(network: Network, input_dim: int | None = None, output_dim: int = 1,
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Draw the parameters of ``network`` (see the module docstring).

    Parameters
    ----------
    network : Network
    input_dim : int, optional
        Fan-in n0 of layer 1 (default ``network.input_dim``).
    output_dim : int >= 1
        Neurons of the output layer L.
    seed : int >= 0 or numpy.random.SeedSequence
        All draws come from ``numpy.random.default_rng(seed)``, layer by layer
        (weights, then biases when C_b > 0).

    Returns
    -------
    list of (W, b): W of shape (fan_out, fan_in), b of shape (fan_out,).
    """
    input_dim, output_dim = _check_dims(network, input_dim, output_dim)
    if not isinstance(seed, np.random.SeedSequence):
        seed = check_int("seed", seed, lower=0)
    rng = np.random.default_rng(seed)
    params = []
    for l, (fan_out, fan_in) in enumerate(layer_shapes(network, input_dim, output_dim), start=1):
        ensemble = network.first_layer if l == 1 else network.ensemble
        W = _weights(rng, ensemble, network.C_W, fan_out, fan_in, l)
        b = (math.sqrt(network.C_b) * rng.standard_normal(fan_out) if network.C_b > 0
             else np.zeros(fan_out))
        params.append((np.ascontiguousarray(W), b))
    return params


def check_params(network, params, input_dim, output_dim):
    """Raise ParameterError unless ``params`` has the shapes of ``network``."""
    shapes = layer_shapes(network, input_dim, output_dim)
    if not isinstance(params, (list, tuple)) or len(params) != len(shapes):
        raise ParameterError("params", f"must be a list of {len(shapes)} (W, b) pairs")
    out = []
    for l, ((W, b), shape) in enumerate(zip(params, shapes), start=1):
        W, b = np.asarray(W, dtype=float), np.asarray(b, dtype=float)
        if W.shape != shape or b.shape != (shape[0],):
            raise ParameterError("params", f"layer {l} must have W {shape} and b ({shape[0]},), "
                                           f"got {W.shape} and {b.shape}")
        out.append((np.array(W, order="C"), np.array(b)))
    return out
