"""The mean NTK change after one gradient step, from the dNTK statistics (docs/training.md).

One training input x, one output z, squared loss L = (1/2)(z - y)^2, one step
theta <- theta - eta lambda dL/dtheta. To first order in eta (PDLT
arXiv:2106.10165 Ch. 11: the NTK moves by the dNTK contracted with the error),

    Delta Theta = -eta (dH_{z z z} + dH_{z z z}) (z - y) + O(eta^2)
                = -2 eta dH (z - y) + O(eta^2),

dH = sum_{mu,nu} lambda_mu lambda_nu d2z/dtheta_mu dtheta_nu dz/dtheta_mu dz/dtheta_nu.
Averaged over initializations, E[dH] = 0 (flipping the sign of the output layer
flips z and dH) and, with the index structure of :mod:`fwtheory.quantities`,
E[dH_{iii} z_i] = (P + 2Q)/n at coinciding indices, so

    E[Delta Theta] = -2 eta (P + 2Q) / n + O(eta^2) + O(1/n^2),     n = n_{L-1}.

For ReLU this is the almost-everywhere derivative (eta -> 0 at fixed networks).
At finite eta, preactivations that cross the kink switch sigma' off and add a
term of order eta / sqrt(n) to the mean (:func:`relu_crossing_coefficient`).
"""

__all__ = ["dntk_first_step", "relu_crossing_coefficient"]

import math

from ..errors import ParameterError
from ..network import Network


def dntk_first_step(network, input_norm=1.0):
    """(E[Delta Theta]/eta, Theta) at the output layer: -2 (P + 2Q)/n from
    :func:`fwtheory.predict` (leading order in 1/n, first order in eta; one input
    with |x|^2 / n0 = ``input_norm``, one output, target y arbitrary), and the
    leading-order Theta^(L)."""
    from ..prediction import predict

    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    if network.depth < 2:
        raise ParameterError("depth", "must be >= 2 (the first layer has no dNTK)")
    pr = predict(network, input_norm)
    P, Q = float(pr["P"][-1]), float(pr["Q"][-1])
    return -2.0 * (P + 2.0 * Q) / network.width, float(pr["Theta"][-1])


def relu_crossing_coefficient(C_W, input_norm=1.0, lambda_W=1.0, C_b=0.0, lambda_b=0.0, y=0.0):
    """c in E[Delta Theta]_crossing / eta = -c / sqrt(n) for a depth-2 ReLU network
    (one input, one output, target y, leading order in 1/n and in eta).

    An active first-layer neuron j moves by Delta z1_j = -eta e Theta1 W_j (e = z - y,
    Theta1 = lambda_b + lambda_W q0, W_j its output weight, W_j ~ N(0, C_W/n));
    inactive neurons do not move. It crosses the kink iff 0 < z1_j < eta e Theta1 W_j,
    and then the NTK loses its term Theta1 W_j^2. With z1_j ~ N(0, K1) of density
    1/sqrt(2 pi K1) at 0, and e independent of W_j at leading order,

        E[Delta Theta]_crossing = -n Theta1 p(0) E[W^2 (eta e Theta1 W)_+]
                                = -eta Theta1^2 (C_W/n)^{3/2} n E|e| sqrt(2/pi) / sqrt(2 pi K1)

    with K1 = C_b + C_W q0, K2 = C_b + C_W K1 / 2, e = z - y, z ~ N(0, K2), and
    E|e| = sqrt(2 K2/pi) exp(-y^2 / 2K2) + y (1 - 2 Phi(-y / sqrt K2)). (For
    C_b = 0, y = 0: c = (2 / (pi sqrt(2 pi))) Theta1^2 C_W^{3/2} sqrt(K2/K1).)
    """
    q0 = float(input_norm)
    K1 = C_b + C_W * q0
    K2 = C_b + C_W * K1 / 2.0
    theta1 = lambda_b + lambda_W * q0
    s = math.sqrt(K2)
    e_abs = s * math.sqrt(2.0 / math.pi) * math.exp(-y * y / (2.0 * K2)) \
        + y * (1.0 - 2.0 * 0.5 * math.erfc(y / (s * math.sqrt(2.0))))
    return theta1 ** 2 * C_W ** 1.5 * e_abs * math.sqrt(2.0 / math.pi) / math.sqrt(2.0 * math.pi * K1)
