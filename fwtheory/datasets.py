"""Small real data set for training runs: the handwritten digits bundled with scikit-learn.

The 1797 8 x 8 images of the UCI optical-recognition digits (Alpaydin and Kaynak,
as shipped in ``sklearn.datasets.load_digits``; no download) as inputs of
dimension n0 = 64, and the classes as targets. scikit-learn is an optional
dependency: ``pip install "fwtheory[data]"``; without it :func:`load_digits`
raises :class:`MissingDependencyError` saying so.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["MissingDependencyError", "load_digits"]

import math

import numpy as np

from .errors import FwtheoryError, ParameterError, check_int


class MissingDependencyError(FwtheoryError, ImportError):
    """An optional dependency needed by the requested feature is not installed."""


def load_digits(classes: int = 10, input_norm: float = 1.0, targets: Literal["onehot", "signed"] = "onehot",
                n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs X (m, 64) and targets Y of the scikit-learn digits.

    Parameters
    ----------
    classes : int in [2, 10]
        Keep the digits 0 .. classes-1.
    input_norm : float > 0
        Every image is centered (its pixel mean removed) and scaled to
        |x|^2 / n0 = input_norm (PDLT's q0, docs/conventions.md).
    targets : {"onehot", "signed"}
        "onehot": Y (m, classes) with 1 at the class; "signed" (two classes only):
        Y (m, 1) = +-1.
    n : int, optional
        Keep a random subset of n images (``seed``), default all.

    Returns
    -------
    (X, Y, labels)
    """
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError:
        raise MissingDependencyError(
            "the digits data set needs scikit-learn, an optional dependency: pip install \"fwtheory[data]\""
        ) from None
    classes = check_int("classes", classes, lower=2, upper=10)
    if not (isinstance(input_norm, (int, float)) and math.isfinite(input_norm) and input_norm > 0):
        raise ParameterError("input_norm", f"must be a finite number > 0, got {input_norm!r}")
    if targets not in ("onehot", "signed"):
        raise ParameterError("targets", f"must be 'onehot' or 'signed', got {targets!r}")
    if targets == "signed" and classes != 2:
        raise ParameterError("targets", "'signed' needs classes=2")
    d = _sk_load()
    keep = d.target < classes
    X = np.asarray(d.data[keep], dtype=float)
    labels = np.asarray(d.target[keep], dtype=int)
    if n is not None:
        n = check_int("n", n, lower=1, upper=X.shape[0])
        idx = np.sort(np.random.default_rng(check_int("seed", seed, lower=0)).choice(X.shape[0], n, replace=False))
        X, labels = X[idx], labels[idx]
    X = X - X.mean(axis=1, keepdims=True)
    X *= np.sqrt(input_norm * X.shape[1]) / np.linalg.norm(X, axis=1, keepdims=True)
    if targets == "onehot":
        Y = np.eye(classes)[labels]
    else:
        Y = np.where(labels == 1, 1.0, -1.0)[:, None]
    return X, Y, labels
