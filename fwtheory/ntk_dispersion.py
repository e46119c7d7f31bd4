r"""Initialization dispersion of the NTK of one output neuron, at order 1/n.

For one input, a neuron i of layer l and n = n_{l-1} (docs/conventions.md,
:mod:`fwtheory.quantities`), PDLT's NTK fluctuation tensor (arXiv:2106.10165
Ch. 8; four-index form at coinciding sample indices)

    Cov(Hhat_{i1 i2}, Hhat_{i3 i4}) = (1/n) [delta_{i1 i2} delta_{i3 i4} A
                                           + (delta_{i1 i3} delta_{i2 i4} + delta_{i1 i4} delta_{i2 i3}) B]
                                      + O(1/n^2)

gives Cov(Hhat_ii, Hhat_kk) = A/n (i != k), E[Hhat_ik^2] = B/n and, for the
diagonal entry of one neuron (i1 = i2 = i3 = i4),

    Var(Hhat_ii) = (A + 2 B)/n,        E[Hhat_ii] = Theta + Theta1/n.

The relative dispersion over initializations of Theta(x, x) = Hhat_ii at the
output layer L is therefore

    std / mean = sqrt((A + 2 B) / n) / Theta  +  O(n^{-3/2}),

which is what :func:`ntk_dispersion` returns (``relative``), with the
correlators from :func:`fwtheory.predict` (all layers; the 1/n of layer l is
1/n_{l-1}, input_dim for layer 1, where A = B = 0: the first-layer NTK
lambda_b + lambda_W q0 is deterministic). Only the Gaussian and orthogonal
ensembles of plain MLPs have derived recursions (``predict`` refuses the others).
"""

from __future__ import annotations

__all__ = ["NTKDispersion", "ntk_dispersion"]

from dataclasses import dataclass, field

import numpy as np

from .errors import ParameterError
from .network import Network


@dataclass(frozen=True)
class NTKDispersion:
    """Per-layer (index l-1) mean, variance and relative dispersion of Hhat_ii
    over initializations at order 1/n (module docstring)."""

    network: Network
    input_norm: float
    layers: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)
    relative: np.ndarray = field(repr=False)

    def __repr__(self):
        return (f"NTKDispersion({self.network.activation.name}, L={self.network.depth}, "
                f"n={self.network.width}: std/mean of Theta(x, x) at layer L = {self.relative[-1]:.4g})")

    def to_dict(self):
        return {"network": self.network.to_dict(), "input_norm": self.input_norm,
                "layers": [int(v) for v in self.layers], "mean": self.mean.tolist(),
                "variance": self.variance.tolist(), "relative": self.relative.tolist()}


def ntk_dispersion(network: Network, input_norm: float = 1.0) -> NTKDispersion:
    r"""std/mean over initializations of the NTK Theta(x, x) of one neuron, per layer.

    ``relative[l-1] = sqrt((A + 2 B)/n_{l-1}) / Theta`` at layer l (module
    docstring; PDLT arXiv:2106.10165 Ch. 8 normalizations), ``variance`` =
    (A + 2 B)/n_{l-1}, ``mean`` = Theta + Theta1/n_{l-1}.
    """
    from .prediction import predict

    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    pred = predict(network, input_norm=input_norm)
    fw = pred.finite_width()
    var = np.asarray(fw["Var(H_ii)"], dtype=float)
    mean = np.asarray(fw["E[H_ii]"], dtype=float)
    Theta = np.asarray(pred["Theta"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.sqrt(np.clip(var, 0.0, None)) / Theta
    return NTKDispersion(network, pred.input_norm, np.asarray(pred.layers), mean, var, rel)
