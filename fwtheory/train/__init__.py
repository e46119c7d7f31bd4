"""Training of the networks fwtheory describes: gradient descent with squared loss
and the exact empirical NTK along the way (numpy; GEMMs via BLAS; no deep-learning
framework).

>>> import numpy as np
>>> from fwtheory import Network
>>> from fwtheory.train import train
>>> net = Network("tanh", depth=3, width=32, input_dim=4)
>>> X = np.random.default_rng(0).standard_normal((8, 4)); Y = np.sin(X[:, :1])
>>> hist = train(net, X, Y, steps=10, learning_rate=0.05, seed=0)
>>> hist.ntk.shape
(2, 8, 8)

Conventions: :mod:`fwtheory.train.params` (the network and its ensembles),
:mod:`fwtheory.train.mlp` (forward/backward pass, the NTK), :mod:`fwtheory.train.trainer`
(loss normalization L = (1/2) sum_{a,i} (z_i(x_a) - y_{a,i})^2 and the update
theta <- theta - eta lambda dL/dtheta; PDLT arXiv:2106.10165 Ch. 7, 10-11).
"""

from .mlp import backward, empirical_ntk, forward, gradient, loss_and_gradient, mlp_forward
from .params import init_params, layer_shapes
from .trainer import TrainingHistory, linearized_outputs, train

__all__ = ["train", "TrainingHistory", "empirical_ntk", "mlp_forward", "init_params", "gradient",
           "loss_and_gradient", "forward", "backward", "layer_shapes", "linearized_outputs"]
