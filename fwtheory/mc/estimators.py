"""Estimators with honest errors: U-statistics, block jackknife, width fits.

Single input, layer l, neurons i != k, n = n_{l-1} (``fwtheory.quantities``,
docs/conventions.md). Each network contributes per-layer neuron
means and pair means over all ordered pairs i != k (``_kernels.STAT_NAMES``);
over N independent networks

    K      = mean z2                                   (= E[z_i^2], measured)
    G1     = n (E[z_i^2] - K_inf)
    V      = n (E[z_i^2 z_k^2] - E[z_i^2] E[z_k^2])
    Theta  = E[H_ii],   Theta1 = n (E[H_ii] - Theta_inf)
    D      = n (E[H_ii z_k^2] - E[H_ii] E[z_k^2])
    F      = n E[H_ik z_i z_k],   B = n E[H_ik^2]
    A      = n (E[H_ii H_kk] - E[H_ii] E[H_kk])

The products of expectations use *different* networks, E[x] E[y] ~
sum_{a != b} x_a y_b / (N (N - 1)), so every correlator is an unbiased
U-statistic (neurons of one network are correlated at O(1/n), networks are
independent). K_inf and Theta_inf are the infinite-width kernel and NTK
(``fwtheory.kernel.infinite_width``).

Standard errors: delete-one-block jackknife over networks (blocks of
consecutive networks; unequal block sizes allowed, as happens when networks
that overflowed are dropped from a layer), M. Busing, E. Meijer, R. van der
Leeden, Stat. Comput. 9 (1999) 3, "Delete-m jackknife for unequal m". For a
ratio (nonlinear in the means) the jackknife also removes the O(1/N) bias; the
reported ratio is the bias-corrected jackknife estimate.
"""

__all__ = ["SUM_NAMES", "BlockSums", "moments", "correlators", "jackknife",
           "fit_inverse_width", "fit_widths", "MODEL_P_VALUE", "MODELS"]

import numpy as np

from ._kernels import STAT_NAMES

# per-network quantities summed over networks: the stats plus three products
# needed for the cross-network U-statistics
SUM_NAMES = STAT_NAMES + ("z2*z2", "h*h", "h*z2")
NSUM = len(SUM_NAMES)
_I = {name: i for i, name in enumerate(SUM_NAMES)}


def extend_stats(stats):
    """(..., NSTAT) per-network statistics -> (..., NSUM) with the products."""
    z2 = stats[..., _I["z2"]]
    h = stats[..., _I["h"]]
    return np.concatenate([stats, np.stack([z2 * z2, h * h, h * z2], axis=-1)], axis=-1)


class BlockSums:
    """Per-block sums of the network statistics, layer by layer.

    Network number g (0-based, in sampling order) belongs to block
    g // block_size. Chunks must be added in sampling order; the sums are then
    accumulated in a fixed order (bit-reproducible).
    """

    def __init__(self, depth, block_size, n_blocks, n_sums=NSUM, extend=extend_stats):
        # ``extend`` maps (..., NSTAT) statistics to the (..., n_sums) columns that are summed
        # (default: the NTK/preactivation statistics plus their cross-network products)
        self.extend = extend
        self.block_size = int(block_size)
        self.sums = np.zeros((n_blocks, depth, n_sums))
        self.counts = np.zeros((n_blocks, depth), dtype=np.int64)
        self.networks = 0          # networks added (valid or not)

    def add(self, stats, valid):
        """Add a chunk: ``stats`` (C, L, NSTAT), ``valid`` (C, L) bool (False:
        non-finite values at that layer, excluded)."""
        with np.errstate(all="ignore"):      # products of overflowed values are excluded below
            ext = self.extend(stats) if self.extend is not None else np.array(stats, dtype=float)
        ext[~valid] = 0.0
        blk = (self.networks + np.arange(stats.shape[0])) // self.block_size
        starts = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]])
        self.sums[blk[starts]] += np.add.reduceat(ext, starts, axis=0)
        self.counts[blk[starts]] += np.add.reduceat(valid.astype(np.int64), starts, axis=0)
        self.networks += stats.shape[0]

    def used(self):
        """(sums, counts) of the blocks that have received networks."""
        nb = -(-self.networks // self.block_size)
        return self.sums[:nb], self.counts[:nb]


def moments(S, N):
    """Unbiased moment estimates from sums ``S`` (..., L, NSUM) over ``N`` (..., L)
    networks: a dict of arrays (..., L). Keys are the stat names (means over
    networks) plus "Ez2^2", "Eh^2", "EhEz2" (cross-network products)."""
    N = np.asarray(N, dtype=float)
    with np.errstate(all="ignore"):
        m = {name: S[..., i] / N for i, name in enumerate(STAT_NAMES)}
        pairs = N * (N - 1.0)
        sz, sh = S[..., _I["z2"]], S[..., _I["h"]]
        m["Ez2^2"] = (sz * sz - S[..., _I["z2*z2"]]) / pairs
        m["Eh^2"] = (sh * sh - S[..., _I["h*h"]]) / pairs
        m["EhEz2"] = (sh * sz - S[..., _I["h*z2"]]) / pairs
    return m


def correlators(m, n_prev, K_inf, Theta_inf):
    """The correlators of ``fwtheory.quantities.CORRELATORS`` from moments ``m``;
    ``n_prev`` (L,) is n_{l-1} per layer."""
    with np.errstate(all="ignore"):
        return {
            "K": m["z2"],
            "G1": n_prev * (m["z2"] - K_inf),
            "V": n_prev * (m["z2z2"] - m["Ez2^2"]),
            "Theta": m["h"],
            "Theta1": n_prev * (m["h"] - Theta_inf),
            "D": n_prev * (m["hz2"] - m["EhEz2"]),
            "F": n_prev * m["hzz"],
            "A": n_prev * (m["hh"] - m["Eh^2"]),
            "B": n_prev * m["hik2"],
        }


def jackknife(estimator, S, N):
    """Delete-one-block jackknife of ``estimator(S, N) -> dict of (..., L) arrays``.

    ``S`` (nb, L, NSUM) and ``N`` (nb, L) are per-block sums and counts.
    Returns ``(full, corrected, se)``: dicts of (L,) arrays with the plain
    estimate on all networks, the bias-corrected jackknife estimate and the
    jackknife standard error (Busing et al. 1999 for unequal block sizes m_j):

        h_j = N / m_j,   theta_J = g theta - sum_j (1 - m_j/N) theta_(j),
        var = (1/g) sum_j (h_j theta - (h_j - 1) theta_(j) - theta_J)^2 / (h_j - 1)

    over the g blocks with m_j > 0. NaN where fewer than two blocks (or
    networks) are available.
    """
    S = np.asarray(S, dtype=float)
    N = np.asarray(N, dtype=float)
    Stot, Ntot = S.sum(axis=0), N.sum(axis=0)
    full = estimator(Stot, Ntot)
    loo = estimator(Stot[None] - S, Ntot[None] - N)
    used = N > 0                                     # (nb, L)
    g = used.sum(axis=0)                             # (L,)
    corrected, se = {}, {}
    with np.errstate(all="ignore"):
        frac = np.where(used, N / Ntot, 0.0)
        h = np.where(used, Ntot / N, np.inf)
        for key, th in full.items():
            thj = np.where(used, loo[key], 0.0)
            thJ = g * th - np.sum(np.where(used, (1.0 - frac) * thj, 0.0), axis=0)
            pseudo = h * th - (h - 1.0) * thj
            terms = np.where(used, (pseudo - thJ) ** 2 / (h - 1.0), 0.0)
            var = terms.sum(axis=0) / g
            ok = (g >= 2) & np.isfinite(var) & np.all(np.where(used, np.isfinite(thj), True), axis=0)
            corrected[key] = np.where(ok, thJ, np.nan)
            se[key] = np.where(ok, np.sqrt(var), np.nan)
            full[key] = np.where(Ntot >= 2, th, np.nan)
    return full, corrected, se


MODEL_P_VALUE = 0.05   # a fit with chi^2 p-value below this is rejected (model selection)
MODELS = {2: "c0 + c1/n", 3: "c0 + c1/n + c2/n^2"}


def _chi2_pvalue(chi2, dof):
    """P(chi^2_dof >= chi2); NaN for dof < 1."""
    from scipy.special import chdtrc

    return float(chdtrc(dof, chi2)) if dof >= 1 and np.isfinite(chi2) else np.nan


def fit_inverse_width(inv_n, values, errors, terms=2):
    """Weighted least-squares fit X(n) = c0 + c1 / n [+ c2 / n^2] per layer.

    Parameters
    ----------
    inv_n : (W, L) 1/n_{l-1} of each width and layer
    values, errors : (W, L) measured coefficients and their standard errors
    terms : {2, 3}
        Number of coefficients: 2 for c0 + c1/n, 3 for c0 + c1/n + c2/n^2.

    Returns
    -------
    dict of (L,) arrays: c0, c0_se, c1, c1_se (and c2, c2_se for terms=3), chi2,
    dof, p (chi^2 p-value, NaN where dof = 0). Where the widths give fewer
    distinct n_{l-1} than ``terms`` the polynomial is truncated to that many
    coefficients (one distinct n, e.g. layer 1 with a fixed input dimension:
    the weighted mean, c1 = 0, c1_se = NaN; the missing higher coefficients are
    0 with NaN errors). Errors are floored at 1e-9 of the largest; where every
    error is zero (deterministic values, e.g. Theta at layer 1) the fit is
    unweighted and its errors are zero.
    """
    if terms not in (2, 3):
        raise ValueError(f"terms must be 2 or 3, got {terms!r}")
    inv_n = np.asarray(inv_n, float)
    y = np.asarray(values, float)
    e = np.asarray(errors, float)
    W, L = y.shape
    names = [f"c{j}" for j in range(terms)]
    out = {k: np.full(L, np.nan) for k in names + [c + "_se" for c in names] + ["chi2", "p"]}
    out["dof"] = np.zeros(L, dtype=int)
    with np.errstate(all="ignore"):
        for l in range(L):
            ok = np.isfinite(y[:, l]) & np.isfinite(e[:, l])
            if not ok.any():
                continue
            x, yy, ee = inv_n[ok, l], y[ok, l], e[ok, l]
            exact = not np.max(ee) > 0.0          # deterministic values (e.g. Theta at layer 1)
            w = np.ones_like(ee) if exact else 1.0 / np.maximum(ee, 1e-9 * np.max(ee)) ** 2
            k = min(terms, np.unique(x).size)
            X = np.stack([x ** j for j in range(k)], axis=1)
            try:
                cov = np.linalg.inv(X.T @ (w[:, None] * X))
            except np.linalg.LinAlgError:   # weights 1e18 apart (an error ~0 at one width)
                cov = np.linalg.pinv(X.T @ (w[:, None] * X))
            c = cov @ (X.T @ (w * yy))
            resid = yy - X @ c
            se = np.zeros(k) if exact else np.sqrt(np.diag(cov))
            for j in range(terms):
                out[f"c{j}"][l] = c[j] if j < k else 0.0
                out[f"c{j}_se"][l] = se[j] if j < k else np.nan
            out["chi2"][l] = 0.0 if exact else float(np.sum(w * resid ** 2))
            out["dof"][l] = x.size - k
            out["p"][l] = np.nan if exact else _chi2_pvalue(out["chi2"][l], out["dof"][l])
    return out


def fit_widths(inv_n, values, errors, alpha=MODEL_P_VALUE):
    """Both width fits and the model choice, per layer.

    The two-term fit c0 + c1/n is kept unless its chi^2 is rejected (p-value
    below ``alpha``, default :data:`MODEL_P_VALUE` = 0.05) and the three-term fit
    c0 + c1/n + c2/n^2 (needs three or more distinct n_{l-1}) is not rejected
    (its p-value >= ``alpha``, or it has no degrees of freedom left, as with
    exactly three widths, where it passes through the points).

    Returns
    -------
    dict: "linear" and "quadratic" (the :func:`fit_inverse_width` dicts with
    terms=2 and 3; "quadratic" is None with fewer than three distinct widths),
    "model" (L,) int (2 or 3: the number of coefficients chosen) and the chosen
    "c0", "c0_se", "c1", "c1_se", "chi2", "dof", "p".
    """
    inv_n = np.asarray(inv_n, float)
    lin = fit_inverse_width(inv_n, values, errors, terms=2)
    distinct = max(np.unique(inv_n[:, l]).size for l in range(inv_n.shape[1]))
    quad = fit_inverse_width(inv_n, values, errors, terms=3) if distinct >= 3 else None
    L = inv_n.shape[1]
    model = np.full(L, 2, dtype=int)
    if quad is not None:
        for l in range(L):
            if np.unique(inv_n[:, l]).size < 3 or not np.isfinite(quad["c0"][l]):
                continue
            p2, p3 = lin["p"][l], quad["p"][l]
            if p2 < alpha and not p3 < alpha:   # NaN p3 (no dof left): not rejected
                model[l] = 3
    out = {"linear": lin, "quadratic": quad, "model": model}
    for key in ("c0", "c0_se", "c1", "c1_se", "chi2", "p"):
        out[key] = np.where(model == 3, quad[key], lin[key]) if quad is not None else lin[key].copy()
    out["dof"] = np.where(model == 3, quad["dof"], lin["dof"]) if quad is not None else lin["dof"].copy()
    return out
