"""Names and normalizations of the correlators, shared by theory and simulation.

Single input, layer l, neurons i != k, n = n_{l-1} (the width of the layer
*below*, PDLT's convention), Hhat the NTK matrix (docs/conventions.md):

    E[z_i^2]                              = K + G1/n
    E[z_i^2 z_k^2] - E[z_i^2] E[z_k^2]     = V/n
    E[Hhat_ii]                            = Theta + Theta1/n
    Cov(Hhat_ii, z_k^2)                   = D/n
    E[Hhat_ik z_i z_k]                    = F/n
    E[Hhat_ik^2]                          = B/n
    Cov(Hhat_ii, Hhat_kk)                 = A/n

all up to O(1/n^2). The NTK descendants (PDLT Ch. 11 and infinity), with the
dNTK dHhat_{i0 i1 i2} = sum lambda lambda d2z_{i0}[a,b] dz_{i1}[a] dz_{i2}[b] and the
ddNTKs ddIHhat_{i0 i1 i2 i3} = sum lambda^3 d3z_{i0}[a,b,c] dz_{i1}[a] dz_{i2}[b] dz_{i3}[c],
ddIIHhat_{i1 i2 i3 i4} = sum lambda^3 d2z_{i1}[a,b] d2z_{i2}[a,c] dz_{i3}[b] dz_{i4}[c]
(lambda_b per bias, lambda_W/n_{l-1} per weight), are normalized the same way:

    E[dHhat_{i k k} z_i]                  = P/n
    E[dHhat_{i i k} z_k]                  = Q/n      (= E[dHhat_{i k i} z_k])
    E[ddIHhat_{i i k k}]                  = R/n      (symmetric in the last three slots)
    E[ddIIHhat_{i i k k}]                 = S/n
    E[ddIIHhat_{i k i k}]                 = T/n
    E[ddIIHhat_{i k k i}]                 = U/n

i.e. E[dHhat_{i0 i1 i2} z_{i3}] = (1/n)(d_{i0 i3} d_{i1 i2} P + d_{i0 i1} d_{i2 i3} Q + d_{i0 i2} d_{i1 i3} Q),
E[ddIIHhat_{i1 i2 i3 i4}] = (1/n)(d_{12} d_{34} S + d_{13} d_{24} T + d_{14} d_{23} U).
The dimensionless ratios below are what saturation and growth are judged on.
"""

__all__ = ["CORRELATORS", "DESCENDANTS", "ALL_CORRELATORS", "LEADING", "FLUCTUATIONS", "RATIOS",
           "DESCENDANT_RATIOS", "ALL_RATIOS", "ratio_values"]

# order used in result objects and JSON
CORRELATORS = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")
DESCENDANTS = ("P", "Q", "R", "S", "T", "U")
ALL_CORRELATORS = CORRELATORS + DESCENDANTS
LEADING = ("K", "Theta")
FLUCTUATIONS = ("G1", "V", "Theta1", "D", "F", "A", "B") + DESCENDANTS

# ratio name -> (numerator, denominator factors)
RATIOS = {
    "V/K^2": ("V", ("K", "K")),
    "G1/K": ("G1", ("K",)),
    "Theta1/Theta": ("Theta1", ("Theta",)),
    "A/Theta^2": ("A", ("Theta", "Theta")),
    "B/Theta^2": ("B", ("Theta", "Theta")),
    "D/(K Theta)": ("D", ("K", "Theta")),
    "F/(K Theta)": ("F", ("K", "Theta")),
}
# dNTK ~ Theta^2 / K and ddNTK ~ Theta^3 / K^2 per unit z: P z, Q z ~ Theta^2, R, S, T, U ~ Theta^3 / K
# (name -> (numerator, denominator factors, extra numerator factors))
DESCENDANT_RATIOS = {
    "P/Theta^2": ("P", ("Theta", "Theta")),
    "Q/Theta^2": ("Q", ("Theta", "Theta")),
    "R K/Theta^3": ("R", ("Theta", "Theta", "Theta"), ("K",)),
    "S K/Theta^3": ("S", ("Theta", "Theta", "Theta"), ("K",)),
    "T K/Theta^3": ("T", ("Theta", "Theta", "Theta"), ("K",)),
    "U K/Theta^3": ("U", ("Theta", "Theta", "Theta"), ("K",)),
}
ALL_RATIOS = {**RATIOS, **DESCENDANT_RATIOS}


def ratio_values(values):
    """Return {ratio name: array} from a mapping of correlator arrays."""
    import numpy as np

    out = {}
    for name, spec in ALL_RATIOS.items():
        num, den, extra = spec[0], spec[1], (spec[2] if len(spec) > 2 else ())
        if num not in values:
            continue
        # 0/0 is NaN (undefined ratio); a denominator such as Theta^2 that
        # overflows gives 0, without numpy warnings (callers check finiteness)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            top = np.asarray(values[num], dtype=float)
            for f in extra:
                top = top * np.asarray(values[f], dtype=float)
            d = np.ones_like(top)
            for f in den:
                d = d * np.asarray(values[f], dtype=float)
            out[name] = top / d
    return out
