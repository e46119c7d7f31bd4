"""Monte Carlo validation of the finite-width theory (numba; never imports sympy).

Gaussian, Haar-orthogonal, i.i.d. uniform and Rademacher networks (optionally
residual, ``Network(residual=gamma)``) are sampled (:func:`simulate_preactivations`:
preactivations only, for the order-1/n^2 statistics), the preactivations and the
full NTK matrix are propagated layer by layer (PDLT Ch. 8 forward equation),
and the correlators of :mod:`fwtheory.quantities` are estimated with
U-statistics over neuron pairs and jackknife errors over networks. With
``gram=G`` every network propagates m <= 4 inputs (:mod:`.multi_input`).

>>> from fwtheory import Network
>>> from fwtheory.mc import simulate
>>> sim = simulate(Network("relu", depth=3, width=16, C_W=2.0), samples=200, seed=0)
>>> sorted(sim.ratios)[:2]
['A/Theta^2', 'B/Theta^2']
"""

from .descendants import DescendantSimulation, simulate_descendants
from .ensembles import haar_orthogonal
from .multi_input import GramSimulation
from .preactivations import PreactivationSimulation, simulate_preactivations
from .sampling import Extrapolation, Simulation, estimate_memory, simulate

__all__ = ["simulate", "Simulation", "Extrapolation", "haar_orthogonal", "estimate_memory",
           "simulate_descendants", "DescendantSimulation", "simulate_preactivations",
           "PreactivationSimulation", "GramSimulation"]
