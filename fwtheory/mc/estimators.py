"""Estimators with honest errors: U-statistics, block jackknife, width fits.

Single input, layer l, neurons i != k, n = n_{l-1} (``fwtheory.quantities``,
../shared/theory.md Sec. 1.4-1.10). Each network contributes per-layer neuron
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
           "fit_inverse_width"]

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


def fit_inverse_width(inv_n, values, errors):
    """Weighted least-squares fit X(n) = c0 + c1 / n per layer.

    Parameters
    ----------
    inv_n : (W, L) 1/n_{l-1} of each width and layer
    values, errors : (W, L) measured coefficients and their standard errors

    Returns
    -------
    dict of (L,) arrays: c0, c0_se, c1, c1_se, chi2, dof. Where all widths have
    the same n_{l-1} (layer 1 with a fixed input dimension) the fit is the
    weighted mean (c1 = 0, c1_se = NaN). Errors are floored at 1e-9 of the
    largest; where every error is zero (deterministic values, e.g. Theta at
    layer 1) the fit is unweighted and its errors are zero.
    """
    inv_n = np.asarray(inv_n, float)
    y = np.asarray(values, float)
    e = np.asarray(errors, float)
    W, L = y.shape
    out = {k: np.full(L, np.nan) for k in ("c0", "c0_se", "c1", "c1_se", "chi2")}
    out["dof"] = np.zeros(L, dtype=int)
    with np.errstate(all="ignore"):
        for l in range(L):
            ok = np.isfinite(y[:, l]) & np.isfinite(e[:, l])
            if not ok.any():
                continue
            x, yy, ee = inv_n[ok, l], y[ok, l], e[ok, l]
            exact = not np.max(ee) > 0.0          # deterministic values (e.g. Theta at layer 1)
            w = np.ones_like(ee) if exact else 1.0 / np.maximum(ee, 1e-9 * np.max(ee)) ** 2
            distinct = np.unique(x).size
            if distinct >= 2:
                X = np.stack([np.ones_like(x), x], axis=1)
                try:
                    cov = np.linalg.inv(X.T @ (w[:, None] * X))
                except np.linalg.LinAlgError:   # weights 1e18 apart (an error ~0 at one width)
                    cov = np.linalg.pinv(X.T @ (w[:, None] * X))
                c = cov @ (X.T @ (w * yy))
                resid = yy - X @ c
                out["c0"][l], out["c1"][l] = c
                out["c0_se"][l], out["c1_se"][l] = (0.0, 0.0) if exact else np.sqrt(np.diag(cov))
                out["chi2"][l] = 0.0 if exact else float(np.sum(w * resid ** 2))
                out["dof"][l] = x.size - 2
            else:
                c0 = np.sum(w * yy) / np.sum(w)
                out["c0"][l], out["c1"][l] = c0, 0.0
                out["c0_se"][l] = 0.0 if exact else np.sqrt(1.0 / np.sum(w))
                out["chi2"][l] = 0.0 if exact else float(np.sum(w * (yy - c0) ** 2))
                out["dof"][l] = x.size - 1
    return out
