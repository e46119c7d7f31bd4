"""Issue 5 acceptance: simulate() against predict() at n = 64, within 3 standard errors plus 5%.

tanh, C_b = 0, C_W = 1: orthogonal at l <= 20 and Gaussian at l <= 10 for V/K^2, B/Theta^2,
F/(K Theta); ReLU Gaussian (C_W = 2) at l <= 3. Uses the project's own testing kit.
"""

import pytest

from fwtheory import Network
from fwtheory.testing import assert_theory_matches_simulation

RATIOS = ("V/K^2", "B/Theta^2", "F/(K Theta)")


@pytest.mark.parametrize("activation, C_W, ensemble, depth", [
    ("tanh", 1.0, "orthogonal", 20),
    ("tanh", 1.0, "gaussian", 10),
    ("relu", 2.0, "gaussian", 3),
])
def test_simulation_agrees_with_prediction(activation, C_W, ensemble, depth):
    net = Network(activation, depth=depth, width=64, C_W=C_W, ensemble=ensemble)
    assert_theory_matches_simulation(net, quantities=RATIOS, samples=3000, seed=2, z=3, rel_tol=0.05,
                                     layers=range(2, depth + 1))
