"""Gradient-descent training of an MLP with squared loss, recording the empirical NTK.

Loss (stated once for the whole package):

    L(theta) = (1/2) sum_{a=1..m} sum_{i=1..n_out} (z_i(x_a; theta) - y_{a,i})^2

summed (not averaged) over the m training inputs. Update (PDLT arXiv:2106.10165
Ch. 7 and 10-11: gradient descent with the NTK learning-rate tensor):

    theta_mu <- theta_mu - eta lambda_mu dL/dtheta_mu,
    lambda_mu = lambda_b (biases), lambda_W / n_{l-1} (weights of layer l),

so that, to first order in eta, the outputs move as
z(x_a) <- z(x_a) - eta sum_b Theta(x_a, x_b) (z(x_b) - y_b), Theta the empirical NTK
of :func:`fwtheory.train.empirical_ntk`. Full-batch gradient descent for
``batch_size=None``; otherwise minibatch SGD on batches of ``batch_size`` inputs
drawn without replacement at every step, with the batch loss scaled by m / |B|
(an unbiased estimate of dL/dtheta, so eta means the same in both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["train", "TrainingHistory", "linearized_outputs"]

import math
from dataclasses import dataclass, field

import numpy as np

from .._io import ProgressBar
from ..errors import NumericalError, ParameterError, check_int, check_real
from ..network import Network
from .mlp import backward, empirical_ntk, forward
from .params import check_params, init_params

_INIT_STREAM, _BATCH_STREAM = 0, 1


@dataclass
class TrainingHistory:
    """Record of one training run.

    Fields
    ------
    network : Network
    steps : (R,) int array, the recorded steps t (parameters after t updates).
    loss : (R,) full training loss L at the recorded steps.
    outputs : (R, m, n_out) training outputs z(x_a) at the recorded steps.
    ntk : (R, m, m) (n_out = 1) or (R, m, n_out, m, n_out): exact empirical NTK on
        the training inputs; None with ``record_ntk=False``.
    test_outputs : (R, m_test, n_out) or None.
    test_ntk : (R, m_test, m) (or (R, m_test, n_out, m, n_out)): NTK between test and
        training inputs, Theta(x_test, x_train); None without X_test.
    test_self_ntk : (R, m_test, m_test) (or 4-index): NTK on the test inputs; None
        without X_test.
    loss_curve : (S + 1,) loss before every update and after the last one (full
        batch: L itself; SGD: the scaled batch loss (m / |B|) L_B, and the last entry
        the full loss), S = number of steps done.
    params_init, params_final : lists of (W, b).
    learning_rate, batch_size, seed.
    interrupted : True if a KeyboardInterrupt stopped the run (the history holds
        the steps recorded before it).
    """

    network: Network
    steps: np.ndarray
    loss: np.ndarray
    outputs: np.ndarray
    ntk: np.ndarray
    test_outputs: np.ndarray
    test_ntk: np.ndarray
    test_self_ntk: np.ndarray
    loss_curve: np.ndarray
    params_init: list = field(repr=False)
    params_final: list = field(repr=False)
    learning_rate: float = None
    batch_size: int = None
    seed: int = None
    interrupted: bool = False

    def __repr__(self):
        net = self.network
        last = f"{self.loss[-1]:.4g}" if len(self.loss) else "-"
        first = f"{self.loss[0]:.4g}" if len(self.loss) else "-"
        mode = "full batch" if self.batch_size is None else f"batch {self.batch_size}"
        flag = ", interrupted" if self.interrupted else ""
        return (f"TrainingHistory({net.activation.name}, L={net.depth}, n={net.width}, "
                f"{net.ensemble}, eta={self.learning_rate:g}, {mode}, "
                f"{len(self.steps)} records up to step {self.steps[-1] if len(self.steps) else '-'}, "
                f"loss {first} -> {last}{flag})")

    def to_dict(self, arrays=True):
        """Plain-JSON dictionary: network, learning_rate, batch_size, seed, interrupted,
        steps, loss, ntk_change (when the NTK was recorded at step 0), loss_curve and,
        with ``arrays``, outputs, ntk, test_outputs, test_ntk, test_self_ntk (nested lists)."""
        out = {"network": self.network.to_dict(), "learning_rate": self.learning_rate,
               "batch_size": self.batch_size, "seed": self.seed, "interrupted": self.interrupted,
               "steps": self.steps.tolist(), "loss": self.loss.tolist(),
               "loss_curve": self.loss_curve.tolist()}
        if self.ntk is not None and len(self.steps) and self.steps[0] == 0:
            out["ntk_change"] = self.ntk_change().tolist()
        if arrays:
            for key in ("outputs", "ntk", "test_outputs", "test_ntk", "test_self_ntk"):
                value = getattr(self, key)
                out[key] = None if value is None else value.tolist()
        return out

    def ntk_change(self):
        """||Theta_t - Theta_0||_F / ||Theta_0||_F at every recorded step (step 0 recorded)."""
        if self.ntk is None or len(self.steps) == 0 or self.steps[0] != 0:
            raise ParameterError("record_steps", "ntk_change needs the NTK recorded at step 0")
        T = self.ntk.reshape(len(self.steps), -1)
        return np.linalg.norm(T - T[0], axis=1) / np.linalg.norm(T[0])


def _check_data(network, X, Y, output_dim):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ParameterError("X", f"must be a 2-d array (m, n0) with m >= 1, got shape {X.shape}")
    if X.shape[1] != network.input_dim:
        raise ParameterError("X", f"has {X.shape[1]} columns but network.input_dim = "
                                  f"{network.input_dim} (set Network(input_dim=...))")
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1 and output_dim == 1:
        Y = Y[:, None]
    if Y.shape != (X.shape[0], output_dim):
        raise ParameterError("Y", f"must have shape (m, output_dim) = {(X.shape[0], output_dim)}, "
                                  f"got {Y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ParameterError("X", "X and Y must be finite")
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


def _record_steps(record_steps, steps):
    if record_steps is None:
        return np.array(sorted({0, steps}), dtype=np.int64)
    try:
        rs = sorted({int(s) for s in record_steps})
    except (TypeError, ValueError):
        raise ParameterError("record_steps", "must be a sequence of integers") from None
    if not rs or rs[0] < 0 or rs[-1] > steps:
        raise ParameterError("record_steps", f"must be integers in [0, steps = {steps}], got {rs}")
    return np.array(rs, dtype=np.int64)


def _progress(progress, steps):
    if progress is None or progress is False:
        return None, None
    if progress is True:
        bar = ProgressBar(steps, label="train")
        return bar.update, bar
    if callable(progress):
        return progress, None
    if hasattr(progress, "update"):
        return progress.update, None
    raise ParameterError("progress", "must be None, True, a callable or an object with update(k)")


def train(network: Network, X: ArrayLike, Y: ArrayLike, *, steps: int, learning_rate: float,
          batch_size: int | None = None, seed: int, record_steps: Sequence[int] | None = None,
          X_test: ArrayLike | None = None, output_dim: int = 1,
          params: Sequence[tuple[np.ndarray, np.ndarray]] | None = None, progress: Any = None,
          record_ntk: bool = True, blas_single_thread: bool = False) -> TrainingHistory:
    """Train ``network`` on (X, Y) with squared loss by gradient descent.

    Parameters
    ----------
    network : Network
        Architecture, initialization (C_b, C_W, ensemble, residual) and the NTK
        learning-rate tensor (lambda_b, lambda_W); see :mod:`fwtheory.train.params`.
    X : (m, n0) training inputs (n0 = ``network.input_dim``); Y : (m, output_dim) targets.
    steps : int >= 0
        Number of updates.
    learning_rate : float > 0
        eta in theta <- theta - eta lambda dL/dtheta (module docstring). The
        full-batch dynamics is stable for eta < 2 / lambda_max(Theta) (Theta the
        (m n_out) x (m n_out) NTK), i.e. eta of order 1 / (m Theta(x, x)).
    batch_size : int, optional
        None: full-batch gradient descent; else minibatch SGD with batches of this
        size drawn without replacement at every step.
    seed : int >= 0
        ``SeedSequence(seed)`` spawns the initialization stream (child 0, used by
        :func:`init_params` unless ``params`` is given) and the batch stream (child 1).
    record_steps : sequence of int in [0, steps], optional
        Steps at which loss, outputs and NTKs are recorded (default: 0 and ``steps``).
    X_test : (m_test, n0), optional
        Test inputs: their outputs, the test-train and test-test NTKs are recorded too.
    output_dim : int >= 1
    params : list of (W, b), optional
        Initial parameters (copied) instead of a fresh draw.
    progress : None, True, callable(k) or object with ``update(k)``
        Progress (steps done); True shows :class:`fwtheory._io.ProgressBar`.
    record_ntk : bool
        False skips the NTKs (only outputs and losses are recorded).
    blas_single_thread : bool
        Run with one OpenBLAS thread (:func:`fwtheory.mc._blas.single_threaded`,
        process-wide, restored afterwards). Each step interleaves BLAS products with
        numpy elementwise work; on a loaded machine a threaded BLAS waking its
        threads for every product was measured 4x slower per step than one thread
        at width 256 (benchmarks/bench_train.py, docs/training.md).

    Returns
    -------
    TrainingHistory
        A KeyboardInterrupt ends the run early with the records made so far
        (``interrupted=True``).

    Raises
    ------
    ParameterError
        Bad shapes or ranges (message names the parameter).
    NumericalError
        The loss became non-finite (diverging learning rate).
    """
    if not isinstance(network, Network):
        raise ParameterError("network", f"must be a fwtheory.Network, got {type(network).__name__}")
    steps = check_int("steps", steps, lower=0)
    eta = check_real("learning_rate", learning_rate, lower=0.0, lower_open=True)
    seed = check_int("seed", seed, lower=0)
    output_dim = check_int("output_dim", output_dim, lower=1)
    X, Y = _check_data(network, X, Y, output_dim)
    m = X.shape[0]
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, lower=1, upper=m)
    if X_test is not None:
        X_test = np.ascontiguousarray(np.asarray(X_test, dtype=float))
        if X_test.ndim != 2 or X_test.shape[1] != X.shape[1]:
            raise ParameterError("X_test", f"must have shape (m_test, {X.shape[1]}), got {X_test.shape}")
    rec = _record_steps(record_steps, steps)
    init_seq, batch_seq = np.random.SeedSequence(seed).spawn(2)
    if params is None:
        params = init_params(network, X.shape[1], output_dim, init_seq)
    else:
        params = check_params(network, params, X.shape[1], output_dim)
    params_init = [(W.copy(), b.copy()) for W, b in params]
    rng = np.random.default_rng(batch_seq)
    lam_b = network.lambda_b
    lr_W = [eta * network.lambda_W / W.shape[1] for W, _ in params]
    lr_b = eta * lam_b

    records = {"steps": [], "loss": [], "outputs": [], "ntk": [], "test_outputs": [], "test_ntk": [],
               "test_self_ntk": []}
    curve = []

    def record(t, cache):
        out = cache.out
        E = out - Y
        records["steps"].append(t)
        records["loss"].append(0.5 * float(np.sum(E * E)))
        records["outputs"].append(out.copy())
        if record_ntk:
            records["ntk"].append(empirical_ntk(network, params, X))
        if X_test is not None:
            records["test_outputs"].append(forward(network, params, X_test).out)
            if record_ntk:
                records["test_ntk"].append(empirical_ntk(network, params, X_test, X))
                records["test_self_ntk"].append(empirical_ntk(network, params, X_test))

    update, bar = _progress(progress, steps)
    interrupted = False
    rec_set = set(rec.tolist())
    t = 0
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")  # checked: NumericalError
    blas = None
    if blas_single_thread:
        from ..mc import _blas

        blas = _blas.single_threaded()
        blas.__enter__()
    errstate.__enter__()
    try:
        while True:
            if batch_size is None or t in rec_set or t == steps:
                cache = forward(network, params, X)
                full_loss = 0.5 * float(np.sum((cache.out - Y) ** 2))
                if not math.isfinite(full_loss):
                    raise NumericalError(f"training loss is not finite at step {t} "
                                         f"(learning_rate={eta:g} too large?)")
                if t in rec_set:
                    record(t, cache)
            if t == steps:
                curve.append(full_loss)
                break
            if batch_size is None:
                E = cache.out - Y
                curve.append(full_loss)
                grads = backward(network, params, cache, E)
            else:
                idx = rng.choice(m, size=batch_size, replace=False)
                cb = forward(network, params, X[idx])
                E = (cb.out - Y[idx]) * (m / batch_size)
                curve.append(0.5 * float(np.sum((cb.out - Y[idx]) ** 2)) * (m / batch_size))
                if not math.isfinite(curve[-1]):
                    raise NumericalError(f"training loss is not finite at step {t} "
                                         f"(learning_rate={eta:g} too large?)")
                grads = backward(network, params, cb, E)
            for (W, b), (dW, db), c in zip(params, grads, lr_W):
                dW *= c
                W -= dW
                if lam_b != 0.0:
                    db *= lr_b
                    b -= db
            t += 1
            if update is not None:
                update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        errstate.__exit__(None, None, None)
        if blas is not None:
            blas.__exit__(None, None, None)
        if bar is not None:
            bar.close()

    def stack(key):
        return np.array(records[key]) if records[key] else None

    n_rec = len(records["steps"])
    return TrainingHistory(
        network=network,
        steps=np.array(records["steps"], dtype=np.int64),
        loss=np.array(records["loss"]),
        outputs=stack("outputs") if n_rec else np.empty((0, m, output_dim)),
        ntk=stack("ntk"),
        test_outputs=stack("test_outputs"),
        test_ntk=stack("test_ntk"),
        test_self_ntk=stack("test_self_ntk"),
        loss_curve=np.array(curve),
        params_init=params_init,
        params_final=params,
        learning_rate=eta,
        batch_size=batch_size,
        seed=seed,
        interrupted=interrupted,
    )


def linearized_outputs(ntk0, outputs0, Y, learning_rate, steps, test_ntk0=None, test_outputs0=None):
    """Outputs of the network's linearization f_lin(theta) = f(theta_0) + J_0 (theta - theta_0)
    trained by the same full-batch gradient descent (exact discrete dynamics):

        e_{t+1} = (1 - eta Theta_0) e_t,   e_t = f_lin,t(X) - Y
        f_lin,t(X_test) = f_0(X_test) - Theta_0(X_test, X) Theta_0^{-1} (1 - (1 - eta Theta_0)^t) e_0

    (the test formula summed as a geometric series, valid for singular Theta_0 too:
    sum_{s<t} (1 - eta Theta)^s eta applied via the eigendecomposition).

    Parameters
    ----------
    ntk0 : (m, m) or (m, n_out, m, n_out) NTK at step 0; outputs0 : (m, n_out); Y : (m, n_out)
    learning_rate : eta; steps : sequence of int >= 0
    test_ntk0 : (m_test, m) or 4-index test-train NTK; test_outputs0 : (m_test, n_out)

    Returns
    -------
    (train, test): arrays (len(steps), m, n_out) and (len(steps), m_test, n_out) (test None
    without test inputs).
    """
    outputs0 = np.asarray(outputs0, float)
    m, n_out = outputs0.shape
    N = m * n_out
    theta = np.asarray(ntk0, float).reshape(N, N)
    theta = 0.5 * (theta + theta.T)
    w, V = np.linalg.eigh(theta)
    e0 = (outputs0 - np.asarray(Y, float).reshape(m, n_out)).reshape(N)
    c0 = V.T @ e0
    steps = np.asarray(list(steps), dtype=np.int64)
    eta = float(learning_rate)
    fac = 1.0 - eta * w
    train_out = np.empty((len(steps), m, n_out))
    test_out = None
    if test_ntk0 is not None:
        tn = np.asarray(test_ntk0, float)
        mt = tn.shape[0]
        tn = tn.reshape(mt * n_out, N)
        test_out = np.empty((len(steps), mt, n_out))
    for k, t in enumerate(steps):
        decay = fac ** t
        train_out[k] = (outputs0.reshape(N) - e0 + V @ (decay * c0)).reshape(m, n_out)
        if test_ntk0 is not None:
            # sum_{s<t} eta (1 - eta w)^s  (= (1 - decay)/w, and eta t at w = 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                geo = np.where(np.abs(eta * w) > 1e-12, (1.0 - decay) / np.where(w == 0, 1, w), eta * t)
            test_out[k] = (np.asarray(test_outputs0, float).reshape(-1)
                           - tn @ (V @ (geo * c0))).reshape(mt, n_out)
    return train_out, test_out
