r"""Infinite-width distribution of a network's outputs after gradient-descent training.

At infinite width a network trained by gradient descent on the squared loss
evolves as its linearization around the initialization, with the NTK frozen at
its deterministic limit Theta (Jacot et al. arXiv:1806.07572; Lee, Xiao,
Schoenholz, Bahri, Novak, Sohl-Dickstein, Pennington, "Wide neural networks of
any depth evolve as linear models under gradient descent", arXiv:1902.06720,
Sec. 2; equation numbers not cited, they differ between the arXiv versions). With the loss

    L = (1 / (2 m)) sum_{a in train} |f(x_a) - y_a|^2          (m training inputs)

(``loss="mean"``) or L = (1/2) sum_a |f(x_a) - y_a|^2 (``loss="sum"``, c = 1
instead of c = 1/m below) and the update theta_mu <- theta_mu - eta lambda_mu
dL/dtheta_mu (the learning-rate tensor of docs/conventions.md: lambda_b per
bias, lambda_W / n_{l-1} per weight), one step moves the linearized outputs on
the training inputs X by

    f_{s+1}(X) - Y = (1 - eta c Theta) (f_s(X) - Y),

so that after s steps (discrete gradient descent) or after the time t of
gradient flow d f / dt = -c Theta (f - Y) (continuous form, t = eta s as
eta -> 0)

    E_s = (1 - eta c Theta)^s          or          E_t = exp(-t c Theta).

Every point x* (training or test) moves as f_s(x*) = f_0(x*) + Theta(x*, X)
Theta^-1 (1 - E_s)(Y - f_0(X)). The initial outputs f_0 are the centered
Gaussian process with the kernel K (NNGP), so the trained outputs are Gaussian
with (Lee et al. Sec. 2, whose exp(-eta Theta t) is E_t here):

    mu(x*)       = P(x*) Y,                 P(x*) = Theta(x*, X) Theta^-1 (1 - E)
    Sigma(x*, x') = K(x*, x') - P(x*) K(X, x') - K(x*, X) P(x')^T + P(x*) K(X, X) P(x')^T

independently for every output neuron (at infinite width the kernels are
proportional to delta_{ij} in the output indices). On the training inputs
P = 1 - E: at s = 0 the prior (mean 0, covariance K), as s -> infinity the
targets with zero variance (Theta positive definite).

K and Theta at the output layer L for all pairs of inputs come from
:func:`fwtheory.kernel.kernel_matrix` (PDLT arXiv:2106.10165 eq. (4.8), Sec. 4.3,
Ch. 8): its recursion for the entry (a, b) involves only the 2x2 Gram matrix of
x_a, x_b, so the (m + p) x (m + p) matrices are assembled from one two-input
call per pair. Directions of Theta with eigenvalue <= 1e-12 Theta_max are not
learned (their coefficient is set to 0; a singular Theta arises from repeated
inputs, whose Theta(x*, X) has no component there either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["TrainedGP", "output_kernels", "trained_gp"]

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import NumericalError, ParameterError, check_int, check_real
from .network import Network

_NULL_RTOL = 1e-12


def _check_inputs(network, X, name):
    try:
        a = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(name, "must be a real (m, input_dim) array") from None
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != network.input_dim:
        raise ParameterError(name, f"must have shape (m, {network.input_dim}) (input_dim of the network), "
                                   f"got {np.shape(X)}")
    if not np.isfinite(a).all():
        raise ParameterError(name, "must be finite (got NaN or inf)")
    return a


def output_kernels(network, X, all_layers=False):
    r"""K^(L)(x_a, x_b) and Theta^(L)(x_a, x_b) of the output layer for the rows of X.

    Leading order (infinite width), from :func:`fwtheory.kernel.kernel_matrix`
    on the 2x2 Gram matrix G = x x^T / n0 of every pair (the recursion of an
    entry involves only its own pair; PDLT eq. (4.8), Sec. 4.3, Ch. 8).

    Returns
    -------
    (K, Theta) : two (m, m) arrays; with ``all_layers=True`` two (L, m, m)
    arrays, index l-1 for layer l.
    """
    from .kernel import kernel_matrix

    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    X = _check_inputs(network, X, "X")
    G = X @ X.T / network.input_dim
    m, L = G.shape[0], network.depth
    if m == 1:
        km = kernel_matrix(network, G)
        K, Th = km.K.copy(), km.Theta.copy()
    else:
        K = np.empty((L, m, m))
        Th = np.empty((L, m, m))
        for a in range(m):
            for b in range(a + 1, m):
                idx = np.ix_(range(L), (a, b), (a, b))
                km = kernel_matrix(network, G[np.ix_((a, b), (a, b))])
                K[idx] = km.K
                Th[idx] = km.Theta
    return (K, Th) if all_layers else (K[-1].copy(), Th[-1].copy())


@dataclass(frozen=True)
class TrainedGP:
    """Gaussian distribution of the trained outputs at infinite width (module docstring).

    ``mean`` has shape (p, n_out) (one column per output neuron, target
    column), ``cov`` (p, p) (the same for every output neuron); ``train_mean``
    and ``train_cov`` are the same on the training inputs. ``expected_loss``
    is E[L] = (c/2) sum_a (|mu_a - y_a|^2 + n_out Sigma_aa) over
    initializations (c of ``loss``), ``initial_loss`` its value at step 0. ``steps`` is None
    for gradient flow (then ``time`` is its time t), ``math.inf`` for the
    limit of infinite training. ``K`` and ``Theta`` are the infinite-width
    output kernels of the rows of [X; X_test] (training inputs first).
    """

    network: Network
    steps: float
    time: float
    learning_rate: float
    mean: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    train_mean: np.ndarray = field(repr=False)
    train_cov: np.ndarray = field(repr=False)
    K: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(repr=False)
    expected_loss: float = None
    initial_loss: float = None
    loss: str = "sum"

    @property
    def std(self):
        """Standard deviation of each test output over initializations, shape (p,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def __repr__(self):
        when = ("t -> inf" if self.steps == math.inf else
                f"gradient flow t = {self.time:g}" if self.steps is None else
                f"{int(self.steps)} steps of eta = {self.learning_rate:g}")
        return (f"TrainedGP({self.network.activation.name}, L={self.network.depth}, {when}: "
                f"{self.train_mean.shape[0]} training and {self.mean.shape[0]} test inputs, "
                f"E[loss] = {self.expected_loss:.4g} (step 0: {self.initial_loss:.4g}))")

    def to_dict(self):
        return {"network": self.network.to_dict(), "steps": self.steps, "time": self.time,
                "learning_rate": self.learning_rate, "mean": self.mean.tolist(), "cov": self.cov.tolist(),
                "train_mean": self.train_mean.tolist(), "train_cov": self.train_cov.tolist(),
                "expected_loss": self.expected_loss, "initial_loss": self.initial_loss, "loss": self.loss}


def _gain(w, steps, time, eta_m):
    """g(w) = (1 - e(w)) / w: e = (1 - eta_m w)^steps, exp(-time w), or 0 (steps = inf);
    ``eta_m`` = eta c and ``time`` = t c already carry the loss normalization c."""
    g = np.zeros_like(w)
    pos = w > _NULL_RTOL * max(float(w.max()), 0.0)
    wp = w[pos]
    with np.errstate(over="ignore", invalid="ignore"):
        if steps == math.inf:
            g[pos] = 1.0 / wp
        elif steps is None:
            g[pos] = -np.expm1(-time * wp) / wp
        else:       # (1 - x)^s for x = eta_m w < 1 via log1p (accurate for small x); x in [1, 2) directly
            x = eta_m * wp
            small = x < 1.0
            one_minus_e = 1.0 - np.power(1.0 - x, steps)
            one_minus_e[small] = -np.expm1(steps * np.log1p(-x[small]))
            g[pos] = one_minus_e / wp
    return g


def trained_gp(network: Network, X: ArrayLike, Y: ArrayLike, X_test: ArrayLike | None = None, *,
               steps: int | None = None, learning_rate: float | None = None, time: float | None = None,
               loss: Literal["sum", "mean"] = "sum",
               kernels: tuple[ArrayLike, ArrayLike] | None = None) -> TrainedGP:
    r"""Mean and covariance of trained outputs over initializations, infinite width.

    Lee et al. arXiv:1902.06720, Sec. 2 (module docstring), with the
    learning-rate tensor of the network (lambda_b, lambda_W / n_{l-1}).

    Parameters
    ----------
    network : Network
        Its K and Theta at the output layer enter (the width does not).
    X : (m, n0) training inputs;  Y : (m,) or (m, n_out) targets.
    X_test : (p, n0) test inputs, optional (default: none, only the training set).
    steps, learning_rate : discrete gradient descent, E = (1 - (eta/m) Theta)^steps;
        ``steps=math.inf`` gives the limit of infinite training (no learning rate needed).
        The learning rate must satisfy eta c Theta_max < 2 (else the linear model diverges).
    time : gradient flow for time t, E = exp(-t c Theta) (``math.inf``: the limit).
    loss : {"sum", "mean"}
        L = (1/2) sum_a |f(x_a) - y_a|^2 (c = 1, the loss of :mod:`fwtheory.train`) or
        (1/(2m)) sum_a ... (c = 1/m).
    kernels : (K, Theta), optional
        The output kernels of the rows of [X; X_test] (:func:`output_kernels`), to
        skip computing them again.

    Returns
    -------
    TrainedGP
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    X = _check_inputs(network, X, "X")
    m = X.shape[0]
    try:
        Ya = np.asarray(Y, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("Y", "must be a real array") from None
    if Ya.ndim == 1:
        Ya = Ya[:, None]
    if Ya.ndim != 2 or Ya.shape[0] != m or not np.isfinite(Ya).all():
        raise ParameterError("Y", f"must be a finite array of shape ({m},) or ({m}, n_out), got {np.shape(Y)}")
    Xt = np.empty((0, X.shape[1])) if X_test is None else _check_inputs(network, X_test, "X_test")
    if (time is None) == (steps is None):
        raise ParameterError("steps", "give either steps (with learning_rate, or steps=inf) or time, not both")
    if loss not in ("sum", "mean"):
        raise ParameterError("loss", f"must be 'sum' or 'mean', got {loss!r}")
    c = 1.0 if loss == "sum" else 1.0 / m
    eta_m = None
    if time is not None:
        time = math.inf if time == math.inf else check_real("time", time, lower=0.0)
        mode_steps = math.inf if time == math.inf else None
    else:
        if steps == math.inf:
            mode_steps = math.inf
        else:
            mode_steps = check_int("steps", steps, lower=0)
            learning_rate = check_real("learning_rate", learning_rate, lower=0.0, lower_open=True)
            eta_m = learning_rate * c
    Z = np.concatenate([X, Xt], axis=0)
    if kernels is None:
        K, Th = output_kernels(network, Z)
    else:
        K, Th = (np.asarray(k, dtype=float) for k in kernels)
        if K.shape != (Z.shape[0], Z.shape[0]) or Th.shape != K.shape:
            raise ParameterError("kernels", f"must be two ({Z.shape[0]}, {Z.shape[0]}) arrays (K, Theta) "
                                            "of the rows of [X; X_test]")
    w, U = np.linalg.eigh(Th[:m, :m])
    if eta_m is not None and eta_m * w.max() >= 2.0:
        raise ParameterError("learning_rate", f"must be < 2 / (c Theta_max) = {2.0 / (c * w.max()):.6g} "
                                              f"(the linearized dynamics diverge beyond)")
    g = _gain(w, mode_steps, None if time is None else time * c, eta_m)
    P = Th[:, :m] @ (U * g) @ U.T              # (m + p, m): Theta(z, X) Theta^-1 (1 - E)
    mean = P @ Ya
    KZX = K[:, :m]
    cov = K - P @ KZX.T - KZX @ P.T + P @ K[:m, :m] @ P.T
    cov = 0.5 * (cov + cov.T)
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise NumericalError("trained_gp: non-finite mean or covariance (kernel overflow?)")
    n_out = Ya.shape[1]
    tm, tc = mean[:m], cov[:m, :m]
    norm = 0.5 if loss == "sum" else 0.5 / m
    exp_loss = float(norm * (np.sum((tm - Ya) ** 2) + n_out * np.trace(tc)))
    loss0 = float(norm * (np.sum(Ya ** 2) + n_out * np.trace(K[:m, :m])))
    t_out = math.inf if mode_steps == math.inf else (time if time is not None else None)
    ro = lambda a: _readonly(a)  # noqa: E731
    return TrainedGP(network, mode_steps, t_out, learning_rate if eta_m is not None else None,
                     ro(mean[m:]), ro(cov[m:, m:]), ro(tm), ro(tc), ro(K), ro(Th), exp_loss, loss0, loss)


def _readonly(a):
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a
