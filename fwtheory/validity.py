r"""When is a finite network in the NTK regime? Depth x C_W study after Seleznova and Kutyniok.

Protocol (Seleznova and Kutyniok, arXiv:2202.00553, and their published code;
scaled down by default): fully-connected networks of width n = 100 and input
dimension n0 = 100, bias variance C_b = sigma_b^2 = 0, weight variance C_W =
sigma_w^2 in {0.5, 0.8, 1.0, 1.2, ..., 3.5}, depths 1..50, 500 initializations;
per initialization two independent random unit vectors x0, y (y made orthogonal to
x0 here) and the unit-norm inputs x_r = r x0 + sqrt(1 - r^2) y, r = 1.0, 0.9, ..., 0.0
(so <x0, x_r> = r exactly).

Parametrization. The authors' networks are in the standard parametrization
(W_ij ~ N(0, sigma_w^2 / fan_in), biases initialized at N(0, sigma_b^2)) and their
NTK is the plain gradient inner product over all weights *and* biases, each with
learning rate 1. In PDLT's conventions (docs/conventions.md: lambda_b per bias,
lambda_W / n_{l-1} per weight) that is lambda_b = 1, lambda_W = n_{l-1} = n (n0 = n),
with q0 = |x|^2 / n0 = 1/n0: the defaults here. ``lambda_b=0`` gives the bias-free
NTK instead (then, for ReLU with C_b = 0, the network is homogeneous in the weight
scale, Theta is C_W^(L-1) times a C_W-independent random variable, and every
normalized NTK statistic is independent of C_W).

Depth: ``depths`` are fwtheory depths L = number of layers including the output
layer (L - 1 hidden layers; the authors' "depth" counts hidden layers, so their
1..50 is L = 2..51 here).

Measured per (L, C_W), over ``inits`` initializations (one output neuron):

* ``init_dispersion``: std/mean of Theta(x0, x0) at initialization (jackknife SE);
  theory beside it: sqrt((A + 2B)/n)/Theta from :func:`fwtheory.ntk_dispersion.ntk_dispersion`
  (order 1/n, PDLT Ch. 8);
* ``ntk_change``: mean over networks of ||Theta_T - Theta_0||_F / ||Theta_0||_F on the
  m = 11 training inputs after T = ``steps`` full-batch gradient-descent steps
  (standard error over networks); the infinite-width theory says 0 (the NTK is frozen;
  no finite-width prediction of the change after T steps is made here);
* ``final_loss``: trainability, E[L_T] / E[L_0] (ratio of means over networks,
  jackknife SE) on the training set {x_r} with random labels y_r = +-s, s =
  sqrt(K^(L)(x0, x0)) the infinite-width output scale (``target_scale="kernel"``, so
  that the targets neither dwarf nor are dwarfed by the initial outputs at any (L, C_W);
  ``"unit"``: s = 1); theory beside it: the infinite-width linearized dynamics
  (:func:`fwtheory.trained_gp.trained_gp`), averaged over the labels (E[y y^T] = s^2 1).

Randomness: the networks and data of depth L come from ``SeedSequence((seed, L))`` at
every C_W (common random numbers: the same standard normals, scaled by sqrt(C_W / fan_in));
so for bias-free ReLU with lambda_b = 0, where everything is equivariant under the weight
scale, the measurements are the same at every C_W up to rounding.

Training: :func:`fwtheory.train.train`, loss (1/2) sum_a (f(x_a) - y_a)^2, full batch,
learning rate eta = ``lr_scale`` / lambda_max(Theta_0) with Theta_0 each network's own
initial empirical NTK on the training inputs (stable for the linearized model when
lr_scale < 2); the theory uses the same rule with the infinite-width Theta. Runs whose
loss becomes non-finite are counted in ``diverged`` and left out of the averages.

The order/chaos boundary drawn in the heat maps is :func:`fwtheory.phase.edge_of_chaos`
(chi_perp(q*) = 1) at the study's C_b and q0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .activations import Activation

__all__ = ["ValidityStudy", "validity_study", "write_study", "probe_inputs", "SK_CW", "jackknife_cv",
           "init_dispersion"]

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import NumericalError, ParameterError, check_int, check_real
from .network import Network

SK_CW = (0.5, 0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.5, 3.0, 3.5)
SK_DEPTHS = tuple(range(2, 52))       # 1..50 hidden layers
COSINES = tuple(round(1.0 - 0.1 * k, 1) for k in range(11))


def probe_inputs(rng, n0, cosines=COSINES):
    """Unit vectors x_r = r x0 + sqrt(1 - r^2) y with x0, y random orthonormal (rows)."""
    x0 = rng.standard_normal(n0)
    x0 /= np.linalg.norm(x0)
    y = rng.standard_normal(n0)
    y -= (y @ x0) * x0
    y /= np.linalg.norm(y)
    r = np.asarray(cosines, dtype=float)
    return r[:, None] * x0[None, :] + np.sqrt(np.clip(1.0 - r * r, 0.0, None))[:, None] * y[None, :]


def jackknife_cv(x):
    """(std/mean, delete-one jackknife SE) of the samples x (std with ddof=1)."""
    x = np.asarray(x, dtype=float)
    N = x.size
    if N < 3:
        return float("nan"), float("nan")
    mean = x.mean()
    cv = x.std(ddof=1) / mean
    s1, s2 = x.sum(), (x * x).sum()
    mi = (s1 - x) / (N - 1)
    vi = np.clip((s2 - x * x - (N - 1) * mi * mi) / (N - 2), 0.0, None)
    ri = np.sqrt(vi) / mi
    se = math.sqrt((N - 1) / N * float(np.sum((ri - ri.mean()) ** 2)))
    return float(cv), se


def _jackknife_ratio(a, b):
    """(sum a / sum b, delete-one jackknife SE)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    N = a.size
    r = a.sum() / b.sum()
    if N < 2:
        return float(r), float("nan")
    ri = (a.sum() - a) / (b.sum() - b)
    return float(r), math.sqrt((N - 1) / N * float(np.sum((ri - ri.mean()) ** 2)))


def init_dispersion(network, inits, seed=0):
    """Measured std/mean of Theta(x0, x0) (one output neuron, unit-norm x0) over
    ``inits`` initializations: (value, jackknife SE, samples). Only the
    initialization, no training (:func:`fwtheory.train.empirical_ntk`)."""
    from .train import empirical_ntk, init_params

    inits = check_int("inits", inits, lower=3)
    n0 = network.input_dim
    seqs = np.random.SeedSequence((check_int("seed", seed, lower=0), network.depth)).spawn(inits + 1)
    rng = np.random.default_rng(seqs[0])
    th = np.empty(inits)
    for k in range(inits):
        x = rng.standard_normal((1, n0))
        x /= np.linalg.norm(x)
        th[k] = empirical_ntk(network, init_params(network, n0, 1, seqs[k + 1]), x)[0, 0]
    cv, se = jackknife_cv(th)
    return cv, se, th


def _grid(shape):
    return np.full(shape, np.nan)


@dataclass(frozen=True)
class ValidityStudy:
    """Result of :func:`validity_study`: arrays indexed [depth][C_W] (module docstring)."""

    activation: str
    settings: dict
    depths: tuple
    cw: tuple
    arrays: dict = field(repr=False)
    edge_of_chaos: float = None
    chi_perp: tuple = ()

    def __getitem__(self, name):
        return self.arrays[name]

    def __repr__(self):
        s = self.settings
        return (f"ValidityStudy({self.activation}, n={s['width']}, C_b={s['C_b']:g}, {s['ensemble']}, "
                f"{len(self.depths)} depths x {len(self.cw)} C_W, {s['inits']} inits, {s['steps']} steps)")

    def to_dict(self):
        out = {"activation": self.activation, **self.settings, "depths": list(self.depths),
               "cw": list(self.cw), "edge_of_chaos": self.edge_of_chaos, "chi_perp": list(self.chi_perp)}
        for k, v in self.arrays.items():
            out[k] = np.asarray(v).tolist()
        return out

    def table(self):
        from ._io import format_table

        a = self.arrays
        rows = []
        for i, L in enumerate(self.depths):
            for j, w in enumerate(self.cw):
                rows.append([L, w, self.chi_perp[j], a["init_dispersion"][i][j], a["init_dispersion_se"][i][j],
                             a["init_dispersion_theory"][i][j], a["ntk_change"][i][j], a["ntk_change_se"][i][j],
                             a["final_loss"][i][j], a["final_loss_se"][i][j], a["final_loss_theory"][i][j],
                             a["diverged"][i][j]])
        head = ["L", "C_W", "chi_perp", "disp", "se", "theory", "dNTK", "se", "loss", "se", "theory", "diverged"]
        return format_table(head, rows)


def _network(activation, L, width, n0, cb, cw, lambda_b, lambda_w, ensemble):
    return Network(activation, depth=L, width=width, input_dim=n0, C_b=cb, C_W=cw,
                   lambda_b=lambda_b, lambda_W=lambda_w, ensemble=ensemble)


def _theory_loss(net, X, K, Th, lr_scale, steps, scale):
    """Infinite-width E[L_T]/E[L_0] averaged over labels y = scale * (+-1), E[y y^T] = scale^2
    (K, Th: the output kernels of X; :func:`fwtheory.trained_gp.trained_gp` with Y = 1 gives P)."""
    from .trained_gp import trained_gp

    m = X.shape[0]
    eta = lr_scale / float(np.linalg.eigvalsh(Th).max())
    gp = trained_gp(net, X, np.eye(m), steps=steps, learning_rate=eta, kernels=(K, Th))
    P = gp.train_mean
    final = 0.5 * (scale ** 2 * float(np.sum((P - np.eye(m)) ** 2)) + float(np.trace(gp.train_cov)))
    start = 0.5 * (scale ** 2 * m + float(np.trace(K)))
    return final / start


def _theory(activation, depth, width, n0, cb, cw, lambda_b, lambda_w, ensemble, q0):
    """Per-layer theory of one C_W up to ``depth``: NTK dispersion (None where predict
    fails) and the output kernels of the probe inputs (None where they fail)."""
    from .ntk_dispersion import ntk_dispersion
    from .trained_gp import output_kernels

    net = _network(activation, depth, width, n0, cb, cw, lambda_b, lambda_w, ensemble)
    out = {"dispersion": None, "kernels": None, "inputs": probe_inputs(np.random.default_rng(0), n0)}
    try:
        out["dispersion"] = ntk_dispersion(net, input_norm=q0)
    except (NumericalError, ParameterError):
        pass
    try:
        out["kernels"] = output_kernels(net, out["inputs"], all_layers=True)
    except NumericalError:
        pass
    return out


def validity_study(activation: str | Activation = "relu", *, width: int = 100, input_dim: int | None = None,
                   depths: Sequence[int] = (5, 20), cw_values: Sequence[float] = (1.5, 2.5), cb: float = 0.0,
                   inits: int = 40, steps: int = 100, ensemble: str = "gaussian", lambda_b: float = 1.0,
                   lambda_w: float | None = None, lr_scale: float = 0.5, lr_rule: str = "network",
                   target_scale: str = "kernel", seed: int = 0, progress: Any = None) -> ValidityStudy:
    """Run the depth x C_W study (module docstring); returns a :class:`ValidityStudy`.

    ``lambda_w=None`` means lambda_W = width (the authors' standard
    parametrization); ``target_scale="kernel"``: labels +-sqrt(K^(L)(x, x)) (the
    scale of the initial outputs, so that every (L, C_W) starts at the same relative
    loss), ``"unit"``: labels +-1; ``progress``: an object with ``update(k)`` ticked
    once per trained network (default: a :class:`fwtheory._io.ProgressBar` on a terminal);
    ``lr_rule="network"``: eta = lr_scale / lambda_max of each network's own Theta_0,
    ``"theory"``: the same eta for every network, from the infinite-width Theta (as the
    theory's; networks whose loss diverges are counted in ``diverged``).
    """
    from ._io import ProgressBar
    from .phase import chi_at, edge_of_chaos, fixed_point
    from .train import empirical_ntk, init_params, mlp_forward, train

    width = check_int("width", width, lower=2)
    n0 = width if input_dim is None else check_int("input_dim", input_dim, lower=1)
    try:
        depths = tuple(check_int("depths", d, lower=1) for d in depths)
        cws = tuple(check_real("cw", w, lower=0.0, lower_open=True) for w in cw_values)
    except TypeError:
        raise ParameterError("depths", "depths and cw_values must be sequences of numbers") from None
    if not depths or not cws:
        raise ParameterError("depths" if not depths else "cw", "must not be empty")
    cb = check_real("cb", cb, lower=0.0)
    inits = check_int("inits", inits, lower=3)
    steps = check_int("steps", steps, lower=0)
    lambda_b = check_real("lambda_b", lambda_b, lower=0.0)
    lambda_w = float(width) if lambda_w is None else check_real("lambda_w", lambda_w, lower=0.0)
    lr_scale = check_real("lr_scale", lr_scale, lower=0.0, lower_open=True, upper=2.0)
    seed = check_int("seed", seed, lower=0)
    if lr_rule not in ("network", "theory"):
        raise ParameterError("lr_rule", f"must be 'network' or 'theory', got {lr_rule!r}")
    if target_scale not in ("kernel", "unit"):
        raise ParameterError("target_scale", f"must be 'kernel' or 'unit', got {target_scale!r}")
    _network(activation, depths[0], width, n0, cb, cws[0], lambda_b, lambda_w, ensemble)  # validates
    q0 = 1.0 / n0                              # unit-norm inputs
    shape = (len(depths), len(cws))
    names = ["init_dispersion", "init_dispersion_se", "init_dispersion_theory", "ntk_change", "ntk_change_se",
             "ntk_change_theory", "final_loss", "final_loss_se", "final_loss_theory", "diverged",
             "ntk_mean", "ntk_mean_theory", "offdiag_ratio", "offdiag_ratio_theory", "target_scale"]
    arr = {k: _grid(shape) for k in names}
    arr["ntk_change_theory"] = np.zeros(shape)     # infinite width: the NTK does not move
    nc = len(COSINES)
    arr["offdiag_ratio"] = np.full(shape + (nc,), np.nan)
    arr["offdiag_ratio_theory"] = np.full(shape + (nc,), np.nan)
    bar = progress if progress is not None else ProgressBar(len(depths) * len(cws) * inits, label="validity")
    own_bar = progress is None
    try:
        for j, cw in enumerate(cws):
            theory = _theory(activation, max(depths), width, n0, cb, cw, lambda_b, lambda_w, ensemble, q0)
            for i, L in enumerate(depths):
                net = _network(activation, L, width, n0, cb, cw, lambda_b, lambda_w, ensemble)
                K, Th = (None, None) if theory["kernels"] is None else (x[L - 1] for x in theory["kernels"])
                scale = 1.0
                if target_scale == "kernel":
                    if K is None:   # no theory (quadrature failed): the first network's RMS output
                        scale = float("nan")
                    else:
                        scale = math.sqrt(K[0, 0])
                lam_theory = None
                if lr_rule == "theory":
                    if Th is None:
                        raise NumericalError(f"lr_rule='theory' needs the infinite-width NTK, which failed at "
                                             f"L = {L}, C_W = {cw:g}")
                    lam_theory = float(np.linalg.eigvalsh(Th).max())
                cell = np.random.SeedSequence((seed, L))      # common random numbers across C_W
                data_seq, *net_seqs = cell.spawn(inits + 1)
                rng = np.random.default_rng(data_seq)
                th00, change, l0, lT, ratios = [], [], [], [], []
                diverged = 0
                for k in range(inits):
                    X = probe_inputs(rng, n0)
                    Y = rng.choice([-1.0, 1.0], size=(nc, 1))
                    params = init_params(net, n0, 1, net_seqs[k])
                    T0 = empirical_ntk(net, params, X)
                    th00.append(T0[0, 0])
                    ratios.append(T0[0] / T0[0, 0])
                    if not math.isfinite(scale):
                        scale = float(np.sqrt(np.mean(mlp_forward(net, params, X) ** 2)))
                    lam = float(np.linalg.eigvalsh(0.5 * (T0 + T0.T)).max()) if lam_theory is None else lam_theory
                    try:
                        h = train(net, X, scale * Y, steps=steps, learning_rate=lr_scale / lam,
                                  seed=int(net_seqs[k].generate_state(1)[0]), params=params,
                                  record_steps=(0, steps))
                    except NumericalError:
                        diverged += 1
                        bar.update(1)
                        continue
                    change.append(float(h.ntk_change()[-1]))
                    l0.append(h.loss[0])
                    lT.append(h.loss[-1])
                    bar.update(1)
                arr["init_dispersion"][i, j], arr["init_dispersion_se"][i, j] = jackknife_cv(th00)
                arr["ntk_mean"][i, j] = float(np.mean(th00))
                arr["offdiag_ratio"][i, j] = np.mean(ratios, axis=0)
                arr["diverged"][i, j] = diverged / inits
                arr["target_scale"][i, j] = scale
                if len(change) >= 2:
                    arr["ntk_change"][i, j] = float(np.mean(change))
                    arr["ntk_change_se"][i, j] = float(np.std(change, ddof=1) / math.sqrt(len(change)))
                    arr["final_loss"][i, j], arr["final_loss_se"][i, j] = _jackknife_ratio(lT, l0)
                if theory["dispersion"] is not None:
                    arr["init_dispersion_theory"][i, j] = theory["dispersion"].relative[L - 1]
                    arr["ntk_mean_theory"][i, j] = theory["dispersion"].mean[L - 1]
                if Th is not None:
                    arr["offdiag_ratio_theory"][i, j] = Th[0] / Th[0, 0]
                    try:
                        arr["final_loss_theory"][i, j] = _theory_loss(net, theory["inputs"], K, Th, lr_scale,
                                                                      steps, scale)
                    except (NumericalError, ParameterError):
                        pass
    finally:
        if own_bar:
            bar.close()
    edge = None
    try:
        edge = edge_of_chaos(activation, cb, input_norm=q0)
    except NumericalError:
        pass
    chi = []
    for w in cws:
        try:
            chi.append(chi_at(activation, w, fixed_point(activation, cb, w, q0))[1])
        except NumericalError:
            chi.append(float("nan"))
    settings = {"width": width, "input_dim": n0, "C_b": cb, "ensemble": ensemble, "inits": inits,
                "steps": steps, "lambda_b": lambda_b, "lambda_W": lambda_w, "lr_scale": lr_scale,
                "seed": seed, "input_norm": q0, "cosines": list(COSINES), "target_scale_rule": target_scale,
                "lr_rule": lr_rule}
    from .activations import get_activation

    return ValidityStudy(get_activation(activation).name, settings, depths, cws, arr, edge, tuple(chi))


# ------------------------------------------------------------------ output
def _render(study, dpi=110):
    """PNG bytes: heat maps over (C_W, depth) of the three measurements, edge of chaos drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("init_dispersion", "init dispersion std/mean of $\\Theta(x_0,x_0)$"),
              ("ntk_change", "NTK change $\\|\\Theta_T-\\Theta_0\\|_F/\\|\\Theta_0\\|_F$"),
              ("final_loss", "final loss $E[L_T]/E[L_0]$")]
    fig = Figure(figsize=(14, 4.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    cw = np.asarray(study.cw, dtype=float)
    dep = np.asarray(study.depths, dtype=float)

    def edges(v):
        if len(v) == 1:
            return np.array([v[0] - 0.5, v[0] + 0.5])
        mid = 0.5 * (v[1:] + v[:-1])
        return np.concatenate([[max(2 * v[0] - mid[0], 0.5 * v[0])], mid, [2 * v[-1] - mid[-1]]])

    order_c = np.argsort(cw)
    order_d = np.argsort(dep)
    for ax, (key, title) in zip(axes, panels):
        z = np.asarray(study.arrays[key], dtype=float)[np.ix_(order_d, order_c)]
        with np.errstate(all="ignore"):
            mesh = ax.pcolormesh(edges(cw[order_c]), edges(dep[order_d]), np.ma.masked_invalid(z),
                                 cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax)
        th = np.asarray(study.arrays[key + "_theory"], dtype=float)[np.ix_(order_d, order_c)]
        lo, hi = np.nanmin(z) if np.isfinite(z).any() else 0.0, np.nanmax(z) if np.isfinite(z).any() else 1.0
        for a in range(len(order_d)):
            for b in range(len(order_c)):
                v = z[a, b]
                if np.isfinite(v) and len(order_d) * len(order_c) <= 64:
                    label = f"{v:.3g}" + (f"\n({th[a, b]:.3g})" if np.isfinite(th[a, b]) else "")
                    dark = (v - lo) > 0.6 * (hi - lo)
                    ax.text(cw[order_c][b], dep[order_d][a], label, ha="center", va="center",
                            fontsize=7, color="k" if dark else "w")
        if study.edge_of_chaos is not None:
            ax.axvline(study.edge_of_chaos, color="r", lw=2, label=f"edge of chaos C_W = {study.edge_of_chaos:.4g}")
        ax.axhline(0.1 * study.settings["width"], color="orange", ls="--", lw=1.2, label="depth/width = 0.1")
        ax.set_xlabel("$C_W = \\sigma_w^2$")
        ax.set_ylabel("depth L (layers)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    s = study.settings
    fig.suptitle(f"{study.activation}, n = {s['width']}, C_b = {s['C_b']:g}, {s['ensemble']}, "
                 f"lambda_b = {s['lambda_b']:g}, lambda_W = {s['lambda_W']:g}, {s['inits']} inits, "
                 f"{s['steps']} steps: measured (theory); ordered left of the red line", fontsize=10)
    from .plotting import figure_png

    return figure_png(fig)


def write_study(study, out_dir=".", stem="validity"):
    """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir`` atomically; return both paths."""
    from ._io import write_png_and_json

    return write_png_and_json(out_dir, stem, _render(study), study.to_dict(), "out_dir")
