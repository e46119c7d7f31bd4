"""Deconvolutional (transposed-convolution) networks at infinite channel number.

Jacot, Gabriel, Ged, Hongler (arXiv:1907.05715) carry the order/chaos analysis of
the NTK to deconvolutional networks (DC-NNs): checkerboard patterns, border
artifacts, a graph-based parametrization, a layer-dependent learning rate.
This subpackage gives the kernel and NTK recursions over pairs of output
locations (:mod:`~fwtheory.deconv.theory`), the bivariate Gaussian expectations
they need (:mod:`~fwtheory.deconv.pairs`), the layer geometry
(:mod:`~fwtheory.deconv.geometry`) and the diagnostics
(:mod:`~fwtheory.deconv.diagnostics`). The Monte Carlo is
:mod:`fwtheory.mc.deconv`. Derivations: docs/deconv.md.
"""

from .geometry import PARAMETRIZATIONS, Architecture
from .report import DeconvReport, deconv_report
from .theory import DeconvKernels, deconv_kernels

__all__ = ["Architecture", "PARAMETRIZATIONS", "DeconvKernels", "deconv_kernels", "DeconvReport", "deconv_report"]
