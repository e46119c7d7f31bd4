"""Symbolic layer: derive finite-width recursions with sympy.

Never imports the Monte Carlo package. Public entry points: :func:`derive`,
:func:`dependency_graph`, the ensembles' moment rules and the symbols.
"""

from .cumulants import DerivationError, product_expectation
from .derivation import ALL_NAMES, NAMES, ORDER2_NAMES, Recursion, dependency_graph, derive, expectation
from .multi_input import MULTI_NAMES, DerivMoment, MultiRecursion, SampleMoment
from .ensembles import coset_type, pair_partitions, weingarten_orthogonal, weingarten_table
from .symbols import (CORRELATOR_SYMBOLS, C_W, C_b, GaussianMoment, lambda_W, lambda_b, moment,
                      moments_in, q0)

__all__ = [
    "derive", "dependency_graph", "expectation", "Recursion", "NAMES", "ORDER2_NAMES", "ALL_NAMES",
    "product_expectation", "DerivationError",
    "pair_partitions", "coset_type", "weingarten_orthogonal", "weingarten_table",
    "CORRELATOR_SYMBOLS", "C_W", "C_b", "lambda_W", "lambda_b", "q0", "GaussianMoment",
    "moment", "moments_in", "MultiRecursion", "MULTI_NAMES", "SampleMoment", "DerivMoment",
]
