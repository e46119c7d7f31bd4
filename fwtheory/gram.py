"""The input Gram matrix of several inputs: parsing and checking, shared by theory and simulation.

G_ab = x_a . x_b / n0 for m inputs (PDLT arXiv:2106.10165 eq. (4.6) for the
first-layer kernel K^(1)_ab = C_b + C_W G_ab). :func:`parse_gram` reads the
command-line form ``"1,0.5;0.5,1"``; :func:`check_gram` validates a matrix for
a network (symmetric, positive semidefinite, finite, m <= 4, and every input
with a nonzero first-layer kernel). Samplers add their own requirements on top
(:func:`fwtheory.mc.multi_input.check_gram`).
"""

__all__ = ["parse_gram", "check_gram", "MAX_INPUTS"]

import numpy as np

from .errors import ParameterError

MAX_INPUTS = 4


def parse_gram(text: str) -> list:
    """``"1,0.5;0.5,1"`` -> ``[[1.0, 0.5], [0.5, 1.0]]`` (rows separated by ';', entries by ',')."""
    try:
        rows = [[float(v) for v in row.replace(" ", "").split(",") if v != ""]
                for row in str(text).strip().split(";") if row.strip()]
    except ValueError:
        raise ParameterError("gram", f"must be rows of numbers separated by ';' and ',', e.g. "
                                     f"'1,0.5;0.5,1', got {text!r}") from None
    if not rows or any(len(r) != len(rows) for r in rows):
        raise ParameterError("gram", f"must be a square matrix, rows separated by ';', got {text!r}")
    return rows


def check_gram(gram, network) -> np.ndarray:
    """The m x m Gram matrix as a float array, or ParameterError naming ``gram``.

    Accepts a nested sequence, an array or the string form of :func:`parse_gram`.
    Requires 1 <= m <= 4, finite entries, symmetry (to 1e-12 relative), positive
    semidefiniteness (eigenvalues >= -1e-12 relative) and K^(1)_aa = C_b + C_W G_aa > 0
    for every input a (a zero input needs C_b > 0). Returns the symmetrized matrix.
    """
    if isinstance(gram, str):
        gram = parse_gram(gram)
    try:
        G = np.array(gram, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("gram", f"must be a real (m, m) matrix, got {gram!r}") from None
    if G.ndim != 2 or G.shape[0] != G.shape[1] or not 1 <= G.shape[0] <= MAX_INPUTS:
        raise ParameterError("gram", f"must be a square (m, m) matrix with 1 <= m <= {MAX_INPUTS}, "
                                     f"got shape {G.shape}")
    if not np.isfinite(G).all():
        raise ParameterError("gram", "must be finite (got NaN or inf)")
    scale = max(float(np.max(np.abs(G))), 1e-300)
    if np.max(np.abs(G - G.T)) > 1e-12 * scale:
        raise ParameterError("gram", "must be symmetric")
    G = 0.5 * (G + G.T)
    if np.min(np.linalg.eigvalsh(G)) < -1e-12 * scale or (np.diag(G) < 0).any():
        raise ParameterError("gram", "must be positive semi-definite (a Gram matrix x_a.x_b/n0)")
    k1 = network.C_b + network.C_W * np.diag(G)
    if not (k1 > 0).all():
        a = int(np.nonzero(~(k1 > 0))[0][0])
        raise ParameterError("gram", f"input {a} has K^(1)_aa = C_b + C_W gram[{a},{a}] = 0 "
                                     "(a zero input needs C_b > 0)")
    return G
