r"""Diagnostics of the deconvolutional NTK: checkerboard, border profile, regimes, learning rates, kernel descent.

Definitions (all on the infinite-channel NTK of :mod:`fwtheory.deconv.theory`,
output grid of side N, stride s, dimension d):

* **checkerboard amplitude** of the NTK diagonal: with m_r the mean of
  Theta(o, o) over the locations o of residue class r (o mod s per coordinate,
  s^d classes), A_cb = (max_r m_r - min_r m_r) / mean_o Theta(o, o) (the
  variation with location modulo the stride);
* **border amplitude**: A_border = 1 - min_o Theta(o, o) / max_o Theta(o, o);
* **checkerboard dominance** of the full NTK matrix: the largest Rayleigh
  quotient v^T Theta v over the s^d - 1 unit checkerboard patterns v (functions
  constant on each residue class, orthogonal to the constant), divided by the
  mean eigenvalue tr Theta / P: >> 1 when a checkerboard pattern is a dominant
  mode of the NTK, about 1 when it is not;
* **condition number** lambda_max / lambda_min of the NTK matrix over output
  locations;
* **kernel gradient descent** toward a target image y (the linearized training
  of a generator, Jacot, Gabriel, Hongler, NeurIPS 2018, arXiv:1806.07572):
  f_t = (1 - exp(-t Theta)) y from f_0 = 0 (the infinite-channel mean of the
  initial output), eigen-decomposed; the checkerboard content of the fit
  ||P_cb f_t|| / ||f_t|| (P_cb: projection on the checkerboard patterns) is
  followed along t and compared with that of the target.

Regimes follow :mod:`fwtheory.phase`: for an activation and C_b, the edge of
chaos C_W* (chi_perp(q*) = 1); ordered, critical and chaotic settings are
C_W = 0.6, 1, 1.6 times C_W* (Jacot et al. arXiv:1907.05715: "order" r < 1,
"chaos" r > 1).
"""

__all__ = ["checkerboard_amplitude", "border_amplitude", "checkerboard_patterns", "checkerboard_dominance",
           "condition_number", "regime_settings", "kernel_descent", "balanced_learning_rates",
           "learning_rate_study", "depth_study", "optimal_learning_rates", "fit_study"]

import numpy as np

from ..errors import NumericalError, ParameterError
from .geometry import Architecture, sublattice
from .theory import deconv_kernels

REGIME_FACTORS = {"ordered": 0.6, "critical": 1.0, "chaotic": 1.6}


def checkerboard_amplitude(diag, stride):
    """(max_r m_r - min_r m_r) / mean over the image (module docstring)."""
    img = np.asarray(diag, dtype=float)
    lab = sublattice(img.shape[0], img.ndim, stride)
    v = img.ravel()
    m = np.array([v[lab == r].mean() for r in np.unique(lab)])
    return float((m.max() - m.min()) / v.mean())


def border_amplitude(diag):
    """1 - min / max of the NTK diagonal over locations."""
    v = np.asarray(diag, dtype=float).ravel()
    return float(1.0 - v.min() / v.max())


def checkerboard_patterns(side, dim, stride):
    """Orthonormal basis (P, s^d - 1) of the functions constant on residue classes and orthogonal to 1."""
    lab = sublattice(side, dim, stride)
    ind = np.stack([(lab == r).astype(float) for r in np.unique(lab)], axis=1)
    ind -= ind.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(ind, full_matrices=False)
    return u[:, s > 1e-10 * s.max()]


def checkerboard_dominance(Theta, side, dim, stride):
    """max over unit checkerboard patterns v of v^T Theta v, over tr(Theta)/P (module docstring)."""
    V = checkerboard_patterns(side, dim, stride)
    R = V.T @ Theta @ V
    return float(np.linalg.eigvalsh(R).max() / (np.trace(Theta) / Theta.shape[0]))


def condition_number(Theta):
    """lambda_max / lambda_min of a symmetric NTK matrix (inf when singular)."""
    ev = np.linalg.eigvalsh(Theta)
    return float(ev[-1] / ev[0]) if ev[0] > 0 else float("inf")


def regime_settings(activation, C_b=0.1):
    """{regime: C_W} at 0.6, 1, 1.6 times the edge-of-chaos C_W* at this C_b (module docstring)."""
    from ..phase import edge_of_chaos

    w = edge_of_chaos(activation, C_b)
    if w is None:
        raise ParameterError("activation", f"{activation} has no edge of chaos at C_b = {C_b:g}; give C_W values")
    return {k: f * w for k, f in REGIME_FACTORS.items()}


def kernel_descent(Theta, target, side, dim, stride, times=None):
    """Kernel gradient descent f_t = (1 - exp(-t Theta)) y (module docstring).

    ``times`` in units of 1/lambda_max (default: 40 log-spaced values 1e-2 .. 1e4).
    Returns dict: times, loss (||y - f_t||^2 / ||y||^2), cb_fit (checkerboard content
    of f_t), cb_target, t_half (first time the loss is <= 1/2) and cb_at_half.
    """
    y = np.asarray(target, dtype=float).ravel()
    ev, U = np.linalg.eigh(Theta)
    ev = np.clip(ev, 0.0, None)
    t = np.logspace(-2, 4, 40) if times is None else np.asarray(times, dtype=float)
    c = U.T @ y
    V = checkerboard_patterns(side, dim, stride)
    loss, cb = [], []
    for ti in t:
        f = U @ ((1.0 - np.exp(-ti * ev / ev[-1])) * c)
        loss.append(float(np.sum((y - f) ** 2) / np.sum(y * y)))
        nf = np.linalg.norm(f)
        cb.append(float(np.linalg.norm(V.T @ f) / nf) if nf > 0 else 0.0)
    loss, cb = np.array(loss), np.array(cb)
    half = np.nonzero(loss <= 0.5)[0]
    return {"times": t.tolist(), "loss": loss.tolist(), "cb_fit": cb.tolist(),
            "cb_target": float(np.linalg.norm(V.T @ y) / np.linalg.norm(y)),
            "t_half": float(t[half[0]]) if half.size else None,
            "cb_at_half": float(cb[half[0]]) if half.size else None}


def balanced_learning_rates(contributions):
    """lambda_W^{(l)} proportional to 1 / tr W_l (each layer's weights contribute the same NTK trace),
    normalized to mean 1."""
    tr = np.array([np.trace(W) for W in contributions[1]])
    if (tr <= 0).any():
        raise NumericalError("a layer contributes nothing to the NTK trace")
    lam = 1.0 / tr
    return lam / lam.mean()


def learning_rate_study(activation, C_W, C_b=0.0, **arch_options):
    """Condition number of the NTK with the uniform learning rate and with the balanced
    layer-dependent one (:func:`balanced_learning_rates`); lambda_b = 0.

    Returns dict with per-layer trace shares, both profiles and condition numbers.
    """
    r = deconv_kernels(activation, C_b=C_b, C_W=C_W, contributions=True, **arch_options)
    Wl = r.contributions[1]
    uni = sum(Wl)
    lam = balanced_learning_rates(r.contributions)
    bal = sum(a * W for a, W in zip(lam, Wl))
    tr = np.array([np.trace(W) for W in Wl])
    best = optimal_learning_rates(Wl)
    return {"C_W": C_W, "trace_share_uniform": (tr / tr.sum()).tolist(), "lambda_balanced": lam.tolist(),
            "cond_uniform": condition_number(uni), "cond_balanced": condition_number(bal),
            "lambda_optimal": best[0].tolist(), "cond_optimal": best[1]}


def optimal_learning_rates(Wl):
    """The layer profile lambda_W^{(l)} > 0 (mean 1) minimizing the condition number of sum_l lambda_l W_l
    (Nelder-Mead on log lambda from the uniform profile); returns (lambda, condition number)."""
    from scipy import optimize

    def f(u):
        return np.log(condition_number(sum(np.exp(a) * W for a, W in zip(u, Wl))))

    res = optimize.minimize(f, np.zeros(len(Wl)), method="Nelder-Mead",
                            options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 400 * len(Wl)})
    lam = np.exp(res.x)
    lam /= lam.mean()
    return lam, condition_number(sum(a * W for a, W in zip(lam, Wl)))


def fit_study(activation, C_W, C_b=0.0, noise=0.1, seed=0, **arch_options):
    """Kernel gradient descent toward a smooth target (a centered Gaussian bump of width side/6)
    plus white noise of relative size ``noise`` (seeded): checkerboard content of the fit
    at half loss against that of the target, and the checkerboard dominance of the NTK."""
    r = deconv_kernels(activation, C_b=C_b, C_W=C_W, **arch_options)
    a = r.architecture
    side, dim = a.output_side, a.dim
    o = (np.arange(side) - (side - 1) / 2) / (side / 6)
    y = np.exp(-o ** 2) if dim == 1 else np.exp(-o[:, None] ** 2 - o[None, :] ** 2)
    y = y.ravel()
    y = y + noise * np.linalg.norm(y) / np.sqrt(y.size) * np.random.default_rng(seed).standard_normal(y.size)
    kd = kernel_descent(r.Theta[-1], y, side, dim, a.stride)
    kd["dominance"] = checkerboard_dominance(r.Theta[-1], side, dim, a.stride)
    kd["condition_number"] = condition_number(r.Theta[-1])
    kd["C_W"] = C_W
    return kd


def depth_study(activation, C_W, C_b, depths, **arch_options):
    """Checkerboard and border amplitudes of the NTK diagonal for each depth (diagonal recursion)."""
    out = []
    for L in depths:
        arch = Architecture.build(depth=L, **arch_options)
        r = deconv_kernels(activation, arch, C_b=C_b, C_W=C_W, full=False)
        d = r.ntk_diagonal
        out.append({"depth": int(L), "checkerboard": checkerboard_amplitude(d, arch.stride),
                    "border": border_amplitude(d)})
    return out
