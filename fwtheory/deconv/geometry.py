r"""Geometry of a stack of transposed-convolution (deconvolution) layers, 1-D and 2-D.

One layer with stride s, filter size f and padding p maps an input of side N to
an output of side N' = s (N - 1) + f - 2 p (the transposed-convolution
arithmetic of Dumoulin and Visin, arXiv:1603.07285, Sec. 4). Input location i
scatters into the outputs o = s i + k - p, k = 0 .. f-1; read backwards, output
o receives the *connections* (i, k) with

.. math::

    i = \pi_k(o) = (o + p - k) / s \quad\text{integer and } 0 \le i < N .

In 2-D the taps are pairs k = (k_1, k_2) and the connections are products of the
1-D ones. m(o) (the number of connections of o) is the in-degree of o in the
graph of the layer; its interior value is (f/s)^d when s divides f.

Each layer multiplies the sum over the connections of o by a factor a(o):

* ``zero-padding``: a(o) = 1/sqrt((f/s)^d) for every o (the mean in-degree
  (f/s)^d: an interior output of a layer with s | f receives exactly that
  many connections, so the interior obeys the fully-connected recursions;
  border outputs receive fewer connections, as if the missing inputs were
  zeros);
* ``graph``: a(o) = 1/sqrt(m(o)), each output normalized by the number of
  connections it receives (the graph-based parametrization of Jacot, Gabriel,
  Ged, Hongler, arXiv:1907.05715, as stated in its abstract and its DC-NN
  section's description; the exact formula here is this package's statement).

Arrays are flat over locations (row-major in 2-D). ``parents`` has shape
(f^d, P_out): parents[k, o] = flat index of pi_k(o), or -1 when (o, k) is not
a connection.
"""

__all__ = ["LayerGeometry", "Architecture", "PARAMETRIZATIONS", "gather_pairs", "gather_diag", "sublattice",
           "border_distance"]

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError, check_int

PARAMETRIZATIONS = ("zero-padding", "graph")
MAX_LOCATIONS = 1 << 16


def _parents_1d(n_in, stride, filt, pad):
    n_out = stride * (n_in - 1) + filt - 2 * pad
    o = np.arange(n_out)
    par = np.full((filt, n_out), -1, dtype=np.int64)
    for k in range(filt):
        num = o + pad - k
        ok = (num % stride == 0) & (num >= 0) & (num // stride < n_in)
        par[k, ok] = num[ok] // stride
    return n_out, par


@dataclass(frozen=True)
class LayerGeometry:
    """One transposed-convolution layer: ``n_in`` -> ``n_out`` locations (flat).

    parents : (taps, n_out) int, -1 where (o, k) is not a connection
    degree : (n_out,) number of connections m(o)
    scale : (n_out,) the factor a(o) of the parametrization
    """

    side_in: int
    side_out: int
    dim: int
    parents: np.ndarray = field(repr=False)
    degree: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    @property
    def n_in(self):
        return self.side_in ** self.dim

    @property
    def n_out(self):
        return self.side_out ** self.dim

    @property
    def taps(self):
        return self.parents.shape[0]


def _layer(side_in, dim, stride, filt, pad, parametrization):
    side_out, p1 = _parents_1d(side_in, stride, filt, pad)
    if dim == 1:
        par = p1
    else:
        a = p1[:, None, :, None]            # (k1, 1, o1, 1)
        b = p1[None, :, None, :]            # (1, k2, 1, o2)
        par = np.where((a >= 0) & (b >= 0), a * side_in + b, -1).reshape(filt * filt, side_out * side_out)
    deg = (par >= 0).sum(axis=0)
    if parametrization == "graph":
        with np.errstate(divide="ignore"):
            scale = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0)
    else:
        scale = np.full(par.shape[1], (stride / filt) ** (dim / 2.0))
    return LayerGeometry(side_in, side_out, dim, par, deg, scale)


@dataclass(frozen=True)
class Architecture:
    """A depth-L stack of transposed convolutions (module docstring).

    ``input_side`` is the side of the input grid (1-D length or 2-D side); layer
    l maps side N_{l-1} to N_l. Layer 1 acts on the input x, layers 2..L on
    sigma(z^(l-1)) (PDLT eq. (4.2)-(4.4) with the dense product replaced by the
    transposed convolution).
    """

    dim: int
    input_side: int
    depth: int
    stride: int
    filter: int
    padding: int
    parametrization: str
    layers: tuple = field(repr=False)

    @property
    def sides(self):
        return [self.input_side] + [g.side_out for g in self.layers]

    @property
    def output_side(self):
        return self.layers[-1].side_out

    @property
    def output_shape(self):
        return (self.output_side,) * self.dim

    def to_dict(self):
        return {"dim": self.dim, "input_side": self.input_side, "depth": self.depth, "stride": self.stride,
                "filter": self.filter, "padding": self.padding, "parametrization": self.parametrization,
                "sides": self.sides}

    @classmethod
    def build(cls, dim=1, input_side=4, depth=4, stride=2, filter=4, padding=None,
              parametrization="zero-padding"):
        """Validate the options and build the layers.

        ``padding`` defaults to (f - s) // 2 (stride 2, filter 4: padding 1, so each
        layer doubles the side, as in DCGAN generators).
        """
        dim = check_int("dim", dim, lower=1, upper=2)
        n0 = check_int("input_side", input_side, lower=1)
        L = check_int("depth", depth, lower=1, upper=12)
        s = check_int("stride", stride, lower=1)
        f = check_int("filter", filter, lower=1)
        if parametrization not in PARAMETRIZATIONS:
            raise ParameterError("parametrization", f"must be one of {', '.join(PARAMETRIZATIONS)}, "
                                                    f"got {parametrization!r}")
        if padding is None:
            padding = max(f - s, 0) // 2
        p = check_int("padding", padding, lower=0)
        if 2 * p >= f:
            raise ParameterError("padding", f"must be < filter / 2 = {f / 2:g} (got {p})")
        layers, side = [], n0
        for _ in range(L):
            g = _layer(side, dim, s, f, p, parametrization)
            if g.side_out < 1 or g.n_out > MAX_LOCATIONS:
                raise ParameterError("depth", f"the output grid would have {g.side_out}^{dim} locations; "
                                              f"allowed 1 .. {MAX_LOCATIONS}")
            if (g.degree == 0).any():
                raise ParameterError("stride", f"stride {s} > filter {f} leaves outputs without connections")
            layers.append(g)
            side = g.side_out
        return cls(dim, n0, L, s, f, p, parametrization, tuple(layers))


def gather_pairs(M, parents, scale):
    r"""sum_k a(o) a(o') M[pi_k(o), pi_k(o')] over the taps k valid for both o and o'.

    The linear map of one layer on pair functions (module docstring of
    :mod:`fwtheory.deconv.theory`). ``M`` (n_in, n_in) -> (n_out, n_out).
    """
    n_out = parents.shape[1]
    out = np.zeros((n_out, n_out))
    for par in parents:
        ok = par >= 0
        if not ok.any():
            continue
        idx = np.nonzero(ok)[0]
        pi = par[idx]
        out[np.ix_(idx, idx)] += M[np.ix_(pi, pi)]
    return out * np.outer(scale, scale)


def gather_diag(d, parents, scale):
    """Diagonal version of :func:`gather_pairs`: sum_k a(o)^2 d[pi_k(o)]."""
    out = np.zeros(parents.shape[1])
    for par in parents:
        ok = par >= 0
        out[ok] += d[par[ok]]
    return out * scale * scale


def sublattice(side, dim, stride):
    """Residue class label of every flat location: (o_1 mod s) + s (o_2 mod s)."""
    r = np.arange(side) % stride
    if dim == 1:
        return r
    return (r[:, None] * stride + r[None, :]).ravel()


def border_distance(side, dim):
    """Distance of every flat location to the nearest border (0 on the border)."""
    o = np.arange(side)
    d = np.minimum(o, side - 1 - o)
    if dim == 1:
        return d
    return np.minimum(d[:, None], d[None, :]).ravel()

