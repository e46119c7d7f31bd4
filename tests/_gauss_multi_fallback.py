"""Test-only stand-in for fwtheory.gauss_multi.expect_monomials (smooth activations).

Pointwise derivatives sigma^(d), d <= 3, integrated with fwtheory.gauss.expect_multi:
exact (to rtol) for smooth activations such as tanh; it misses the delta terms of
sigma'' at a kink, so the tests use it for smooth activations only.
"""

import numpy as np

from fwtheory import gauss


def expect_monomials(activation, K, monomials, rtol=1e-11):
    K = np.asarray(K, dtype=float)
    if K.ndim == 3:
        return np.stack([expect_monomials(activation, k, monomials, rtol) for k in K])
    monomials = [tuple(m) for m in monomials]
    if any(d > 3 for m in monomials for _, d in m):
        raise ValueError("fallback: derivative order > 3")

    def f(Z):
        D = activation.derivatives(Z, 3)
        out = np.ones((len(monomials), Z.shape[1]))
        for r, mono in enumerate(monomials):
            for a, d in mono:
                out[r] *= Z[a] if d == -1 else D[d, a]
        return out

    return np.atleast_1d(gauss.expect_multi(f, K, kinks=activation.kinks, rtol=rtol))


def install():
    """Register this module as fwtheory.gauss_multi unless the real one exists."""
    import importlib
    import sys

    try:
        importlib.import_module("fwtheory.gauss_multi")
        return False
    except ImportError:
        sys.modules["fwtheory.gauss_multi"] = sys.modules[__name__]
        return True
