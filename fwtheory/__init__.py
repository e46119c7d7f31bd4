"""fwtheory: finite-width perturbation theory for deep networks at initialization.

Derive the leading 1/n corrections (four-point vertex V, NLO kernel G1, NTK
fluctuations A, B, cross-correlators D, F, ...) symbolically, evaluate them
across depth, and validate them against Monte Carlo simulation of Gaussian and
Haar-orthogonal networks. Conventions: Roberts, Yaida, Hanin, *The Principles
of Deep Learning Theory* (arXiv:2106.10165).

Heavy submodules (sympy derivations, numba samplers) load on first use so that
``import fwtheory`` stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .activations import Activation, get_activation
from .errors import AccuracyWarning, FwtheoryError, NumericalError, ParameterError
from .network import Network

try:
    __version__ = version("fwtheory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# public name -> submodule that defines it (PEP 562 lazy loading)
_LAZY = {
    "derive": ".symbolic",
    "infinite_width": ".kernel",
    "kernel_matrix": ".kernel",
    "fixed_points": ".kernel",
    "criticality": ".kernel",
    "predict": ".prediction",
    "Prediction": ".prediction",
    "GramPrediction": ".prediction_multi",
    "scale_invariant_solution": ".exact",
    "kstar0_asymptotics": ".asymptotics",
    "simulate": ".mc",
    "simulate_descendants": ".mc",
    "simulate_preactivations": ".mc",
    "compare": ".comparison",
    "Comparison": ".comparison",
    "GramComparison": ".comparison_multi",
    "saturation": ".depth_saturation",
    "SaturationReport": ".depth_saturation",
    "validate": ".validation",
    "sweep": ".sweeps",
    "phase_diagram": ".phase", "edge_of_chaos": ".phase", "shape_activation": ".shaping",
    "normalized_kernels": ".normalization", "simulate_normalized": ".mc.normalized",
    "deconv_kernels": ".deconv", "deconv_report": ".deconv", "simulate_deconv": ".mc.deconv",
    "TrainingHistory": ".train", "empirical_ntk": ".train",    # the trainer itself: fwtheory.train.train
    "trained_gp": ".trained_gp", "TrainedGP": ".trained_gp", "ntk_dispersion": ".ntk_dispersion",
    "validity_study": ".validity", "load_digits": ".datasets",
}

__all__ = [
    "Activation", "get_activation", "Network", "FwtheoryError", "ParameterError",
    "NumericalError", "AccuracyWarning", "__version__",
] + sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fwtheory' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
