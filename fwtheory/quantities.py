"""Names and normalizations of the correlators, shared by theory and simulation.

Single input, layer l, neurons i != k, n = n_{l-1} (the width of the layer
*below*, PDLT's convention), Hhat the NTK matrix, ../shared/theory.md Sec. 1.4-1.10:

    E[z_i^2]                              = K + G1/n
    E[z_i^2 z_k^2] - E[z_i^2] E[z_k^2]     = V/n
    E[Hhat_ii]                            = Theta + Theta1/n
    Cov(Hhat_ii, z_k^2)                   = D/n
    E[Hhat_ik z_i z_k]                    = F/n
    E[Hhat_ik^2]                          = B/n
    Cov(Hhat_ii, Hhat_kk)                 = A/n

all up to O(1/n^2). The dimensionless ratios below are what saturation and
growth are judged on.
"""

__all__ = ["CORRELATORS", "LEADING", "FLUCTUATIONS", "RATIOS", "ratio_values"]

# order used in result objects and JSON
CORRELATORS = ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B")
LEADING = ("K", "Theta")
FLUCTUATIONS = ("G1", "V", "Theta1", "D", "F", "A", "B")

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


def ratio_values(values):
    """Return {ratio name: array} from a mapping of correlator arrays."""
    import numpy as np

    out = {}
    for name, (num, den) in RATIOS.items():
        if num not in values:
            continue
        d = np.ones_like(np.asarray(values[num], dtype=float))
        for f in den:
            d = d * np.asarray(values[f], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.asarray(values[num], dtype=float) / d
    return out
