r"""Monte Carlo of finite-channel deconvolutional networks: kernel and exact empirical NTK over output locations.

The network of :mod:`fwtheory.deconv.theory` (transposed convolutions, stride s,
filter f, zero padding or graph parametrization; PDLT arXiv:2106.10165 eqs.
(4.2)-(4.4) with W ~ N(0, C_W / n_l), b ~ N(0, C_b)) is sampled with ``channels``
channels in every layer (the output layer included) for ``networks``
independent draws (numpy, BLAS; the random numbers come from one
``np.random.SeedSequence`` spawned per network, so a run is reproducible and
independent of chunking). For one fixed input x (n_0 channels, x(i).x(i')/n_0 =
G(i, i')) each network gives

* the empirical kernel  Khat(o, o') = (1/n) sum_c z_c(o) z_c(o')  (all output channels);
* the exact empirical NTK of output channel c,
  Thetahat_c(o, o') = sum_mu lambda_mu dz_c(o)/dtheta_mu dz_c(o')/dtheta_mu
  (lambda_b per bias, lambda_W / n_{l-1} per weight, PDLT Ch. 7-8), averaged over
  the first ``ntk_channels`` output channels.

The NTK uses a hand-written backward pass. For every output location o the
backpropagated vector delta^{(l)}(j; o) = dz_c(o)/dz^{(l)}(j) is nonzero only on the
locations j of layer l that o depends on (its window: at most 3 per dimension for
stride 2, filter 4), so it is stored per window:
delta^{(l)}(i; o) = sigma'(z^{(l)}(i)) sum_{(o_{l+1}, k): pi_k(o_{l+1}) = i} a(o_{l+1}) W_k^{(l+1)T} delta^{(l+1)}(o_{l+1}; o).
With A = sigma(z^{(l-1)}) (x for l = 1) the contribution of the parameters of layer l is

.. math::

    \lambda_b \sum_{c} \beta_c(o) \beta_c(o') + \frac{\lambda_W}{n_{l-1}} \sum_k \sum_{j, j'}
    a(j) a(j') \langle\delta(j; o), \delta(j'; o')\rangle\, \langle A(\pi_k j), A(\pi_k j')\rangle,

beta_c(o) = sum_j delta_c(j; o) (the bias is shared over locations). The tests
check it against finite differences of the network function.
Errors are standard errors over the independent networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..activations import Activation
    from ..deconv.geometry import Architecture

__all__ = ["DeconvSimulation", "simulate_deconv", "network_function"]

from dataclasses import dataclass, field

import numpy as np

from ..activations import get_activation
from ..errors import ParameterError, check_int, check_real


def _input_signal(G, n0):
    """x (n0, P0) with x^T x / n0 = G (eigen-factorization; needs n0 >= rank G)."""
    lam, U = np.linalg.eigh(G)
    lam = np.clip(lam, 0.0, None)
    F = (U * np.sqrt(lam)).T                  # (P0, P0), F^T F = G
    P0 = G.shape[0]
    if n0 < P0:
        keep = np.argsort(lam)[::-1][:n0]
        if lam[np.setdiff1d(np.arange(P0), keep)].max(initial=0.0) > 1e-12 * lam.max():
            raise ParameterError("input_channels", f"must be >= the rank of the input Gram matrix ({P0})")
        F = F[keep]
        x = np.sqrt(n0) * F
    else:
        x = np.zeros((n0, P0))
        x[:P0] = np.sqrt(n0) * F
    return x


def _windows(arch):
    """Per layer l = 1..L: (P_L, W_l) locations of layer l each output depends on (-1 padded),
    and the backward edges (o, j_src, j_dst, p_src) per tap between layers l+1 and l."""
    L = arch.depth
    PL = arch.layers[-1].n_out
    wins = {L: np.arange(PL)[:, None]}
    edges = {}
    for l in range(L - 1, 0, -1):
        g = arch.layers[l]                    # maps layer l -> l + 1
        w = wins[l + 1]
        ok = w >= 0
        cand = g.parents[:, np.where(ok, w, 0)]            # (T, PL, W)
        cand = np.where(ok[None] & (cand >= 0), cand, -1)
        rows = [np.unique(r[r >= 0]) for r in cand.transpose(1, 0, 2).reshape(PL, -1)]
        W = max(len(r) for r in rows)
        arr = np.full((PL, W), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            arr[i, :len(r)] = r
        wins[l] = arr
        pos = np.full((PL, g.n_in), -1, dtype=np.int64)
        oo, jj = np.nonzero(arr >= 0)
        pos[oo, arr[oo, jj]] = jj
        per_tap = []
        for k in range(g.taps):
            o_idx, js = np.nonzero(ok)
            p = w[o_idx, js]
            q = g.parents[k, p]
            v = q >= 0
            o_idx, js, p, q = o_idx[v], js[v], p[v], q[v]
            per_tap.append((o_idx, js, pos[o_idx, q], p))
        edges[l] = per_tap
    return wins, edges


def _forward(act, arch, x, Ws, bs):
    """Preactivations z^(l) (n_l, P_l), sigma and sigma' of every layer."""
    zs, As, dAs = [], [x], []
    A = x
    for g, W, b in zip(arch.layers, Ws, bs):
        z = np.zeros((W.shape[1], g.n_out))
        for k in range(g.taps):
            par = g.parents[k]
            o = np.nonzero(par >= 0)[0]
            if o.size:
                z[:, o] += (W[k] @ A[:, par[o]]) * g.scale[o]
        z += b[:, None]
        zs.append(z)
        d = act.derivatives(z, 1)
        A = d[0]
        As.append(d[0])
        dAs.append(d[1])
    return zs, As, dAs


def network_function(activation, arch, x, Ws, bs):
    """The output z^(L) (n_L, P_L) of one network with taps ``Ws[l]`` (f^d, n_{l+1}, n_l) and biases ``bs``."""
    return _forward(get_activation(activation), arch, x, Ws, bs)[0][-1]


def _draw(rng, arch, n0, n, C_b, C_W):
    Ws, bs, n_in = [], [], n0
    for g in arch.layers:
        Ws.append(rng.standard_normal((g.taps, n, n_in)) * np.sqrt(C_W / n_in))
        bs.append(rng.standard_normal(n) * np.sqrt(C_b))
        n_in = n
    return Ws, bs


def _ntk(arch, wins, edges, As, dAs, Ws, lam_b, lam_W, n_ntk, mode):
    """Exact empirical NTK of output channels 0..n_ntk-1 (mean over them): (P_L, P_L) or (P_L,)."""
    L = arch.depth
    PL = arch.layers[-1].n_out
    out = np.zeros((PL, PL)) if mode == "full" else np.zeros(PL)
    delta = np.zeros((n_ntk, PL, 1, Ws[-1].shape[1]))
    delta[np.arange(n_ntk), :, 0, np.arange(n_ntk)] = 1.0
    for l in range(L, 0, -1):
        g = arch.layers[l - 1]                # parameters of layer l: A_{l-1} -> z^(l)
        win = wins[l]
        ok = win >= 0
        A = As[l - 1]
        S = A.T @ A                            # (P_{l-1}, P_{l-1})
        W = win.shape[1]
        p = np.where(ok, win, 0)
        beta = delta.sum(axis=2)               # (c, PL, n_l)
        if mode == "full":
            Tm = np.zeros((PL * W, PL * W))
            for k in range(g.taps):
                q = g.parents[k, p.ravel()]
                m = (q >= 0) & ok.ravel()
                am = np.where(m, g.scale[p.ravel()], 0.0)
                qi = np.where(m, q, 0)
                Tm += np.outer(am, am) * S[np.ix_(qi, qi)]
            for c in range(n_ntk):
                Dl = delta[c].reshape(PL * W, -1)
                out += lam_b[l - 1] * (beta[c] @ beta[c].T)
                out += lam_W[l - 1] / A.shape[0] * (Dl @ Dl.T * Tm).reshape(PL, W, PL, W).sum(axis=(1, 3))
        else:
            Tm = np.zeros((PL, W, W))
            for k in range(g.taps):
                q = g.parents[k, p]
                m = (q >= 0) & ok
                am = np.where(m, g.scale[p], 0.0)
                qi = np.where(m, q, 0)
                Tm += am[:, :, None] * am[:, None, :] * S[qi[:, :, None], qi[:, None, :]]
            for c in range(n_ntk):
                Dd = np.einsum("ojn,okn->ojk", delta[c], delta[c])
                out += lam_b[l - 1] * np.einsum("on,on->o", beta[c], beta[c])
                out += lam_W[l - 1] / A.shape[0] * np.einsum("ojk,ojk->o", Dd, Tm)
        if l == 1:
            break
        # backward step to layer l - 1
        wl = wins[l - 1]
        nxt = np.zeros((n_ntk, PL, wl.shape[1], Ws[l - 1].shape[2]))
        for k, (o_idx, js, jd, psrc) in enumerate(edges[l - 1]):
            if o_idx.size == 0:
                continue
            vals = delta[:, o_idx, js, :] * g.scale[psrc][None, :, None]
            nxt[:, o_idx, jd, :] += vals @ Ws[l - 1][k]
        okl = wl >= 0
        dphi = dAs[l - 2][:, np.where(okl, wl, 0)].transpose(1, 2, 0) * okl[:, :, None]
        delta = nxt * dphi[None]
    return out / n_ntk


@dataclass(frozen=True)
class DeconvSimulation:
    """Monte Carlo estimates (module docstring): means and standard errors over networks.

    K, K_se : (P_L, P_L) empirical kernel; Theta, Theta_se : (P_L, P_L) (``ntk='full'``)
    or (P_L,) (``'diagonal'``) or None.
    """

    activation: str
    architecture: object
    channels: int
    networks: int
    seed: int
    K: np.ndarray = field(repr=False)
    K_se: np.ndarray = field(repr=False)
    Theta: np.ndarray = field(default=None, repr=False)
    Theta_se: np.ndarray = field(default=None, repr=False)

    def __repr__(self):
        a = self.architecture
        return (f"DeconvSimulation({self.activation}, {a.dim}-D, sides {a.sides}, {a.parametrization}, "
                f"channels={self.channels}, networks={self.networks}, seed={self.seed})")

    @property
    def ntk_diagonal(self):
        if self.Theta is None:
            return None
        d = np.diag(self.Theta) if self.Theta.ndim == 2 else self.Theta
        return d.reshape(self.architecture.output_shape)

    def to_dict(self):
        return {"activation": self.activation, "architecture": self.architecture.to_dict(),
                "channels": self.channels, "networks": self.networks, "seed": self.seed,
                "kernel_diagonal": np.diag(self.K).tolist(), "kernel_diagonal_se": np.diag(self.K_se).tolist(),
                "ntk_diagonal": None if self.Theta is None else self.ntk_diagonal.ravel().tolist()}


def simulate_deconv(activation: str | Activation, architecture: Architecture | None = None, *, channels: int = 64,
                    networks: int = 16, seed: int = 0, C_b: float = 0.0, C_W: float = 1.0,
                    lambda_b: float | Sequence[float] = 0.0, lambda_W: float | Sequence[float] = 1.0,
                    input_norm: float = 1.0, input_corr: float = 0.0, input_gram: ArrayLike | None = None,
                    input_channels: int | None = None, ntk: Literal["full", "diagonal"] | None = "full",
                    ntk_channels: int = 1, **arch_options: Any) -> DeconvSimulation:
    """Sample ``networks`` deconvolutional networks with ``channels`` channels (module docstring).

    ``ntk``: 'full' (all pairs of output locations), 'diagonal' or None.
    """
    from ..deconv.geometry import Architecture
    from ..deconv.theory import _per_layer, make_input_gram

    act = get_activation(activation)
    arch = architecture if architecture is not None else Architecture.build(**arch_options)
    n = check_int("channels", channels, lower=1)
    N = check_int("networks", networks, lower=2)
    seed = check_int("seed", seed, lower=0)
    C_b = check_real("C_b", C_b, lower=0.0)
    C_W = check_real("C_W", C_W, lower=0.0, lower_open=True)
    if ntk not in ("full", "diagonal", None):
        raise ParameterError("ntk", f"must be 'full', 'diagonal' or None, got {ntk!r}")
    nc = check_int("ntk_channels", ntk_channels, lower=1, upper=n)
    lb, lw = _per_layer("lambda_b", lambda_b, arch.depth), _per_layer("lambda_W", lambda_W, arch.depth)
    G = make_input_gram(arch, input_norm, input_corr, input_gram)
    n0 = n if input_channels is None else check_int("input_channels", input_channels, lower=1)
    x = _input_signal(G, n0)
    wins, edges = _windows(arch) if ntk else (None, None)
    PL = arch.layers[-1].n_out
    Ks = np.empty((N, PL, PL))
    Ts = None if ntk is None else np.empty((N, PL, PL) if ntk == "full" else (N, PL))
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(N)):
        rng = np.random.default_rng(ss)
        Ws, bs = _draw(rng, arch, n0, n, C_b, C_W)
        zs, As, dAs = _forward(act, arch, x, Ws, bs)
        Ks[i] = zs[-1].T @ zs[-1] / n
        if ntk:
            Ts[i] = _ntk(arch, wins, edges, As, dAs, Ws, lb, lw, nc, ntk)
    se = lambda a: a.std(axis=0, ddof=1) / np.sqrt(N)  # noqa: E731
    return DeconvSimulation(act.name, arch, n, N, seed, Ks.mean(axis=0), se(Ks),
                            None if Ts is None else Ts.mean(axis=0), None if Ts is None else se(Ts))
