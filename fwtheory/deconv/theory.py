r"""Infinite-channel kernel and NTK of a deconvolutional network, over pairs of output locations.

Network (PDLT arXiv:2106.10165 eqs. (4.2)-(4.4) with the dense product replaced
by a transposed convolution, :mod:`fwtheory.deconv.geometry`): n_l channels at
layer l, input x with n_0 channels on an N_0-location grid,

.. math::

    z^{(1)}_{c}(o) = b^{(1)}_c + a(o) \sum_{(i,k) \to o} \sum_{c'} W^{(1)}_{c c' k}\, x_{c'}(i), \qquad
    z^{(l+1)}_{c}(o) = b^{(l+1)}_c + a(o) \sum_{(i,k) \to o} \sum_{c'} W^{(l+1)}_{c c' k}\, \sigma(z^{(l)}_{c'}(i)),

b ~ N(0, C_b), W ~ N(0, C_W / n_l) independent (one weight per tap k, shared
over locations), learning-rate tensor lambda_b per bias and lambda_W / n_l per
weight (PDLT Ch. 7-8); a(o) is the parametrization factor. As n_l -> inf the
preactivations of a channel are a Gaussian field over locations with kernel
K^{(l)}(o, o') and the NTK converges to delta_{c c'} Theta^{(l)}(o, o'):

.. math::

    K^{(1)}(o,o') = C_b + C_W\, a(o) a(o') \sum_{k} G(\pi_k o, \pi_k o'),\qquad
    \Theta^{(1)}(o,o') = \lambda_b + \lambda_W\, a(o) a(o') \sum_{k} G(\pi_k o, \pi_k o'),

    K^{(l+1)}(o,o') = C_b + C_W\, a(o) a(o') \sum_{k} \langle\sigma\sigma\rangle^{(l)}(\pi_k o, \pi_k o'),

    \Theta^{(l+1)}(o,o') = \lambda_b + a(o) a(o') \sum_{k} \Big[\lambda_W \langle\sigma\sigma\rangle^{(l)}
        + C_W \langle\sigma'\sigma'\rangle^{(l)}\, \Theta^{(l)}\Big](\pi_k o, \pi_k o'),

with G(i, i') = x(i).x(i') / n_0, the sums over the taps k that are connections
of both o and o', and <f g>^{(l)}(i, i') = E[f(u) g(v)] for (u, v) Gaussian with
covariance K^{(l)} restricted to (i, i') (:mod:`fwtheory.deconv.pairs`). Derivation:
the same as PDLT Sec. 4.3 / Ch. 8 for a dense layer; the weight sum
sum_{c' c''} W_{c c' k} W_{c c'' k'} averages to delta_{c' c''} delta_{k k'} C_W / n_l, so
only connections through the same tap k pair up (hence only locations o = o'
modulo the stride are correlated beyond C_b and lambda_b in the last layer).
For one location (o = o') in the interior of a zero-padding layer with s | f
these are exactly PDLT's K^{(l+1)} = C_b + C_W <sigma^2>_K and Theta^{(l+1)} =
lambda_b + lambda_W <sigma^2>_K + C_W <sigma'^2>_K Theta^{(l)}.

Jacot, Gabriel, Ged, Hongler (arXiv:1907.05715) use the NTK parametrization:
z = (beta b + sqrt((1 - beta^2) / n) W sigma) with standard-normal parameters
and unit learning rate; it is the PDLT form above with C_b = lambda_b = beta^2 and
C_W = lambda_W = 1 - beta^2 (docs/deconv.md lists both side by side).

Layer-dependent learning rates: ``lambda_b`` and ``lambda_W`` may be sequences
of length L (lambda^{(l)} for the parameters of layer l). By linearity
Theta^{(L)} = sum_l [lambda_b^{(l)} B_l + lambda_W^{(l)} W_l]; ``contributions=True``
returns the matrices B_l, W_l.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..activations import Activation

__all__ = ["DeconvKernels", "deconv_kernels", "make_input_gram"]

from dataclasses import dataclass, field

import numpy as np

from .. import gauss
from ..activations import get_activation
from ..errors import NumericalError, ParameterError, check_real
from .geometry import Architecture, gather_diag, gather_pairs
from .pairs import pair_matrix

_S2, _T2 = (2, 0, 0, 0, 0), (0, 2, 0, 0, 0)


def _per_layer(name, value, L):
    v = np.atleast_1d(np.asarray(value, dtype=float))
    if v.size == 1:
        v = np.full(L, float(v[0]))
    if v.shape != (L,) or not np.isfinite(v).all() or (v < 0).any():
        raise ParameterError(name, f"must be a number >= 0 or {L} numbers >= 0 (one per layer)")
    return v


def make_input_gram(arch, input_norm=1.0, input_corr=0.0, gram=None):
    """The input Gram matrix G(i, i') = x(i).x(i')/n_0 over the N_0^d input locations.

    Default: q0 on the diagonal and q0 * input_corr off it.
    """
    P0 = arch.input_side ** arch.dim
    if gram is not None:
        G = np.asarray(gram, dtype=float)
        if G.shape != (P0, P0) or not np.isfinite(G).all() or np.abs(G - G.T).max() > 1e-12 * np.abs(G).max():
            raise ParameterError("input_gram", f"must be a symmetric ({P0}, {P0}) matrix")
        if np.linalg.eigvalsh(G).min() < -1e-10 * np.abs(G).max():
            raise ParameterError("input_gram", "must be positive semi-definite")
        return G
    q0 = check_real("input_norm", input_norm, lower=0.0, lower_open=True)
    c0 = check_real("input_corr", input_corr, lower=-1.0 / max(P0 - 1, 1), upper=1.0)
    return q0 * ((1.0 - c0) * np.eye(P0) + c0 * np.ones((P0, P0)))


@dataclass(frozen=True)
class DeconvKernels:
    """Infinite-channel kernel and NTK of a deconvolutional network (module docstring).

    ``K``, ``Theta``: lists over layers l = 1..L of (P_l, P_l) matrices over
    flat locations (``full=True``) or of (P_l,) diagonals (``full=False``).
    ``contributions``: None, or (B, W) lists over layers of the last layer's
    (P_L, P_L) contributions of lambda_b^{(l)} and lambda_W^{(l)}.
    """

    activation: str
    architecture: Architecture
    C_b: float
    C_W: float
    lambda_b: np.ndarray
    lambda_W: np.ndarray
    full: bool
    K: list = field(repr=False)
    Theta: list = field(repr=False)
    contributions: tuple = field(default=None, repr=False)

    def _image(self, M):
        d = np.diag(M) if self.full else M
        return d.reshape(self.architecture.output_shape)

    @property
    def kernel_diagonal(self):
        """K^{(L)}(o, o) on the output grid."""
        return self._image(self.K[-1])

    @property
    def ntk_diagonal(self):
        """Theta^{(L)}(o, o) on the output grid."""
        return self._image(self.Theta[-1])

    def __repr__(self):
        a = self.architecture
        th = self.ntk_diagonal
        return (f"DeconvKernels({self.activation}, {a.dim}-D, sides {a.sides}, {a.parametrization}, "
                f"C_b={self.C_b:g}, C_W={self.C_W:g}: Theta(o,o) in [{th.min():.6g}, {th.max():.6g}])")

    def to_dict(self):
        return {"activation": self.activation, "architecture": self.architecture.to_dict(),
                "C_b": self.C_b, "C_W": self.C_W, "lambda_b": self.lambda_b.tolist(),
                "lambda_W": self.lambda_W.tolist(), "kernel_diagonal": self.kernel_diagonal.tolist(),
                "ntk_diagonal": self.ntk_diagonal.tolist()}


def deconv_kernels(activation: str | Activation, architecture: Architecture | None = None, *, C_b: float = 0.0,
                   C_W: float = 1.0, lambda_b: float | Sequence[float] = 0.0,
                   lambda_W: float | Sequence[float] = 1.0, input_norm: float = 1.0, input_corr: float = 0.0,
                   input_gram: ArrayLike | None = None, full: bool = True, contributions: bool = False,
                   rtol: float = 1e-9, **arch_options: Any) -> DeconvKernels:
    """Kernel and NTK recursions of the module docstring, layer by layer.

    ``architecture``: an :class:`~fwtheory.deconv.geometry.Architecture`, or its
    options (``dim``, ``input_side``, ``depth``, ``stride``, ``filter``,
    ``padding``, ``parametrization``) as keywords. ``full=False`` propagates
    only the diagonals (1-D Gaussian expectations; any image size).
    """
    act = get_activation(activation)
    arch = architecture if architecture is not None else Architecture.build(**arch_options)
    if architecture is not None and arch_options:
        raise ParameterError("architecture", "give either an Architecture or its options, not both")
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    L = arch.depth
    lb, lw = _per_layer("lambda_b", lambda_b, L), _per_layer("lambda_W", lambda_W, L)
    G = make_input_gram(arch, input_norm, input_corr, input_gram)
    if contributions and not full:
        raise ParameterError("contributions", "need full=True")
    g0 = arch.layers[0]
    if full:
        lin = gather_pairs(G, g0.parents, g0.scale)
        K, Th = C_b + C_W * lin, lb[0] + lw[0] * lin
        cB, cW = [np.ones_like(lin)], [lin]
    else:
        lin = gather_diag(np.diag(G).copy(), g0.parents, g0.scale)
        K, Th = C_b + C_W * lin, lb[0] + lw[0] * lin
    Ks, Ths = [K], [Th]
    for li in range(1, L):
        g = arch.layers[li]
        if full:
            S, T = pair_matrix(act, K, rtol=rtol)
            gs = gather_pairs(S, g.parents, g.scale)
            K = C_b + C_W * gs
            Th = lb[li] + lw[li] * gs + C_W * gather_pairs(T * Th, g.parents, g.scale)
            if contributions:
                cB = [C_W * gather_pairs(T * X, g.parents, g.scale) for X in cB] + [np.ones_like(gs)]
                cW = [C_W * gather_pairs(T * X, g.parents, g.scale) for X in cW] + [gs]
        else:
            if not (np.isfinite(K).all() and (K > 0).all()):
                raise NumericalError(f"kernel overflow or zero variance at layer {li}")
            s2, t2 = gauss.expect_monomials(act, K, [_S2, _T2])
            gs = gather_diag(s2, g.parents, g.scale)
            K = C_b + C_W * gs
            Th = lb[li] + lw[li] * gs + C_W * gather_diag(t2 * Th, g.parents, g.scale)
        if not (np.isfinite(K).all() and np.isfinite(Th).all()):
            raise NumericalError(f"kernel or NTK overflow at layer {li + 1}")
        Ks.append(K)
        Ths.append(Th)
    return DeconvKernels(act.name, arch, C_b, C_W, lb, lw, bool(full), Ks, Ths,
                         (cB, cW) if contributions else None)
