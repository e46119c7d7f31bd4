"""Property-based testing kit: hypothesis strategies and a theory-vs-simulation assertion.

For users who build on fwtheory and want its finite-width predictions checked
in their own test suites. Strategies (every parameter takes a fixed value or a
hypothesis strategy):

* :func:`activations` - built-in activations (leaky ReLU with a drawn slope);
* :func:`networks` - :class:`~fwtheory.network.Network` objects of moderate
  depth and width, Gaussian or orthogonal (the ensembles ``predict`` derives);
* :func:`simulation_networks` - networks for simulate-only checks: also the
  i.i.d. ``uniform`` and ``rademacher`` ensembles and residual networks with a
  drawn residual scale (:func:`residual_scales`);
* :func:`critical_networks` - networks at the critical initialization of their
  activation (:func:`fwtheory.kernel.criticality`, PDLT arXiv:2106.10165 Ch. 5);
* :func:`input_grams` - m x m positive semi-definite input Gram matrices
  G = X X^T / d.

:func:`assert_theory_matches_simulation` runs :func:`fwtheory.predict` and
:func:`fwtheory.mc.simulate` on a network and raises ``AssertionError`` with a
per-layer table when a quantity disagrees by the rule of
:func:`fwtheory.comparison.compare`: |measured - theory| > z SE + rel_tol |theory|.
With ``order=2`` it runs ``predict(order=2)`` against the preactivation sampler
:func:`fwtheory.mc.simulate_preactivations` and judges E[z^2] ("K") and V by the
series through 1/n^2 (K + G1/n + G2/n^2, V + V1/n), U6 at leading order.

Several inputs: :func:`input_grams` draws m x m Gram matrices (m = 2..4 with
``m=st.integers(2, 4)``; ``cosines`` draws two-input Grams from given cosines
and norms), and ``assert_theory_matches_simulation(network, gram=G, ...)`` runs
``predict(network, gram=G)`` against ``simulate(network, ..., gram=G)`` and
judges every index tuple of the checked correlators
(:mod:`fwtheory.comparison_multi`).

Example (this test is ``tests/test_testing_kit.py::test_documented_example``)::

    from hypothesis import given, settings, strategies as st

    from fwtheory.testing import assert_theory_matches_simulation, critical_networks


    @settings(max_examples=4, deadline=None, derandomize=True)
    @given(critical_networks(activation=st.sampled_from(["relu", "tanh"]),
                             depth=st.integers(2, 3), width=64))
    def test_four_point_vertex_and_ntk_fluctuations(network):
        assert_theory_matches_simulation(network, quantities=("V", "F", "B"),
                                         samples=2000, seed=0, z=4)

Example at order 1/n^2 (this test is
``tests/test_testing_kit.py::test_documented_order2_example``)::

    from hypothesis import given, settings, strategies as st

    from fwtheory.testing import assert_theory_matches_simulation, critical_networks


    @settings(max_examples=2, deadline=None, derandomize=True)
    @given(critical_networks(activation="tanh", depth=st.integers(4, 6), width=32))
    def test_next_order_moments(network):
        assert_theory_matches_simulation(network, quantities=("K", "V"), order=2,
                                         samples=50000, seed=0, z=4, rel_tol=0.0)

Example with several inputs (this test is
``tests/test_testing_kit.py::test_documented_gram_example``)::

    from hypothesis import given, settings, strategies as st

    from fwtheory import Network
    from fwtheory.testing import assert_theory_matches_simulation, input_grams


    @settings(max_examples=2, deadline=None, derandomize=True)
    @given(input_grams(m=2, cosines=st.sampled_from([0.2, 0.8]), norms=st.floats(0.5, 2.0)))
    def test_kernel_and_four_point_vertex_between_inputs(gram):
        network = Network("tanh", depth=3, width=32, C_W=1.0)
        assert_theory_matches_simulation(network, gram=gram, quantities=("K", "V", "Theta"),
                                         samples=1000, seed=0, z=4)

(The NTK variance A and the small off-diagonal entries of B carry O(1/n)
corrections of 10-20% at n = 32 - e.g. tanh, cos 0.2, layer 3: B_0101 measured
0.01456(18) at n = 32, 0.01355(10) at 64, 0.01272(8) at 128, extrapolated c0
0.01214(12) against the theory's 0.01240 - check them with ``widths=[32, 64, 128]``.)

Keep depth/width small (the theory is the leading order in 1/n: the
omitted terms grow like depth/width, and ``rel_tol`` covers a few percent of
them) and sample enough networks for the standard errors to be meaningful.
"""

__all__ = ["activations", "networks", "simulation_networks", "residual_scales", "critical_networks",
           "critical_point", "input_grams", "assert_theory_matches_simulation", "CRITICAL_ACTIVATIONS",
           "KNOWN_CRITICAL_POINTS", "SIMULATED_ENSEMBLES"]

from functools import lru_cache

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .activations import get_activation
from .network import DERIVED_ENSEMBLES as ENSEMBLES   # the ensembles predict() has recursions for
from .network import ENSEMBLES as SIMULATED_ENSEMBLES  # every ensemble simulate() samples
from .network import Network

SMOOTH_AND_KINKED = ("linear", "relu", "tanh", "sin", "erf", "sigmoid", "softplus", "gelu", "swish")
# activations with a critical point (PDLT Ch. 5; docs/conventions.md); leaky ReLU is added with a drawn slope
CRITICAL_ACTIVATIONS = ("linear", "relu", "tanh", "sin", "erf", "gelu", "swish")
# (C_b, C_W) from docs/references.md item 3, used when fwtheory.kernel is unavailable
KNOWN_CRITICAL_POINTS = {
    "linear": (0.0, 1.0), "relu": (0.0, 2.0), "tanh": (0.0, 1.0), "sin": (0.0, 1.0),
    "erf": (0.0, float(np.pi / 4)), "gelu": (0.17292239, 1.98305826), "swish": (0.55514317, 1.98800468),
}


def _strategy(value):
    return value if isinstance(value, SearchStrategy) else st.just(value)


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# ---------------------------------------------------------------- strategies
def activations(names=SMOOTH_AND_KINKED, leaky_relu=True, leaky_slope=_floats(0.0, 0.5)):
    """Built-in :class:`~fwtheory.activations.Activation` objects.

    ``names`` are sampled uniformly; with ``leaky_relu`` also
    ``leaky_relu(a)`` with slope ``a`` drawn from ``leaky_slope``.
    """
    strategy = st.sampled_from(tuple(names)).map(get_activation)
    if leaky_relu:
        leaky = _strategy(leaky_slope).map(lambda a: get_activation(f"leaky_relu({float(a):.6g})"))
        strategy = st.one_of(strategy, leaky)
    return strategy


def networks(activation=None, depth=st.integers(1, 4), width=st.sampled_from((8, 16, 32)),
             ensemble=st.sampled_from(ENSEMBLES), C_b=_floats(0.0, 0.5), C_W=_floats(0.5, 2.0),
             lambda_b=_floats(0.0, 1.0), lambda_W=_floats(0.1, 2.0), residual=None):
    """:class:`~fwtheory.network.Network` objects (input dimension = width,
    first layer of the same ensemble). ``activation`` defaults to
    :func:`activations`; ``residual`` (None: plain MLP) a residual scale gamma or a
    strategy such as :func:`residual_scales`."""
    return st.builds(Network, activation=_strategy(activation) if activation is not None else activations(),
                     depth=_strategy(depth), width=_strategy(width), C_b=_strategy(C_b),
                     C_W=_strategy(C_W), lambda_b=_strategy(lambda_b), lambda_W=_strategy(lambda_W),
                     ensemble=_strategy(ensemble), residual=_strategy(residual)).filter(_derivable)


def _derivable(network):
    """False for the few networks predict() refuses by design (a Rademacher first
    layer with C_b = 0 under a kinked activation; a residual network with a
    non-odd activation): docs/derivation.md, "Scope"."""
    from .errors import ParameterError
    from .prediction import _refuse_underived

    try:
        _refuse_underived(network)
    except ParameterError:
        return False
    return True


def residual_scales(low=0.05, high=1.0, plain=True):
    """Residual scales gamma in [low, high] of z^(l+1) = z^(l) + gamma (b + W sigma(z^(l)))
    (PDLT appendix B); with ``plain`` also None (the plain MLP)."""
    gamma = _floats(low, high)
    return st.one_of(st.none(), gamma) if plain else gamma


def simulation_networks(ensemble=st.sampled_from(SIMULATED_ENSEMBLES), residual=residual_scales(), **kw):
    """Networks for simulate-only checks (:func:`fwtheory.mc.simulate`): every
    ensemble the samplers know (Gaussian, orthogonal, uniform, Rademacher) and
    residual networks with a drawn scale. ``predict`` refuses those it has no
    recursions for; use :func:`networks` for theory-vs-simulation checks. Other
    keywords as in :func:`networks`."""
    return networks(ensemble=ensemble, residual=residual, **kw)


@lru_cache(maxsize=None)
def critical_point(activation):
    """(C_b, C_W) of ``activation`` at criticality: :func:`fwtheory.kernel.criticality`,
    else :data:`KNOWN_CRITICAL_POINTS`. Raises ValueError when there is none."""
    act = get_activation(activation)
    try:
        from .kernel import criticality
    except ImportError:  # pragma: no cover - fwtheory.kernel ships with the package
        criticality = None
    if criticality is not None:
        crit = criticality(act)
        if crit.C_W is not None:
            return float(crit.C_b), float(crit.C_W)
    elif act.name in KNOWN_CRITICAL_POINTS:
        return KNOWN_CRITICAL_POINTS[act.name]
    raise ValueError(f"{act.name} has no critical initialization (PDLT Sec. 5.3.2)")


def critical_networks(activation=None, depth=st.integers(1, 4), width=st.sampled_from((16, 32, 64)),
                      ensemble=st.sampled_from(ENSEMBLES), lambda_b=0.0, lambda_W=1.0):
    """Networks at the critical (C_b, C_W) of their activation.

    ``activation`` defaults to :data:`CRITICAL_ACTIVATIONS` plus leaky ReLU
    with a drawn slope in [0, 0.5].
    """
    if activation is None:
        activation = activations(CRITICAL_ACTIVATIONS)
    act = _strategy(activation).map(get_activation)

    def build(a, depth_, width_, ensemble_, lambda_b_, lambda_W_):
        C_b, C_W = critical_point(a)
        return Network(a, depth=depth_, width=width_, C_b=C_b, C_W=C_W, lambda_b=lambda_b_,
                       lambda_W=lambda_W_, ensemble=ensemble_)

    return st.builds(build, act, _strategy(depth), _strategy(width), _strategy(ensemble),
                     _strategy(lambda_b), _strategy(lambda_W))


@st.composite
def input_grams(draw, m=2, dim=None, scale=_floats(0.1, 4.0), full_rank=True, cosines=None, norms=None):
    """m x m Gram matrices G_ab = x_a . x_b / d of ``m`` inputs in R^d (PDLT's
    (1/n0) sum_j x_ja x_jb, PDLT eq. (4.8)): symmetric and
    positive semi-definite by construction. ``dim`` defaults to a draw in
    [m, 3m]; with ``full_rank`` the smallest eigenvalue exceeds 1e-6 trace(G).

    With ``cosines`` (a value or strategy, e.g. ``st.sampled_from([0.2, 0.8])``)
    the inputs have one common cosine c between every pair and the norms
    G_aa drawn from ``norms`` (default 1):
    G_ab = sqrt(G_aa G_bb) ((1 - c) delta_ab + c), positive semi-definite for
    -1/(m-1) <= c <= 1 (other cosines are rejected); ``m`` may be a strategy
    such as ``st.integers(2, 4)``."""
    m = draw(_strategy(m))
    if cosines is not None:
        c = float(draw(_strategy(cosines)))
        q = np.array([float(draw(_strategy(norms if norms is not None else 1.0))) for _ in range(m)])
        assume(np.all(q > 0) and -1.0 / max(m - 1, 1) <= c <= 1.0)
        rho = (1.0 - c) * np.eye(m) + c * np.ones((m, m))
        G = np.sqrt(np.outer(q, q)) * rho
        if full_rank:
            assume(np.linalg.eigvalsh(rho).min() > 1e-6 * m)
        return G
    d = draw(_strategy(dim) if dim is not None else st.integers(m, 3 * m))
    s = draw(_strategy(scale))
    entries = draw(st.lists(_floats(-1.0, 1.0), min_size=m * d, max_size=m * d))
    X = np.sqrt(s) * np.asarray(entries, dtype=float).reshape(m, d)
    G = X @ X.T / d
    G = 0.5 * (G + G.T)
    if full_rank:
        assume(np.linalg.eigvalsh(G).min() > 1e-6 * max(np.trace(G), 1e-300))
    return G


# ---------------------------------------------------------------- assertion
def assert_theory_matches_simulation(network, quantities=("V", "F", "B"), samples=2000, seed=0, z=4,
                                     rel_tol=0.05, layers=None, widths=None, input_norm=1.0, order=1,
                                     gram=None):
    """Assert that the leading-order theory agrees with a Monte Carlo run.

    Parameters
    ----------
    network : Network
    quantities : sequence of str
        Correlator names (``fwtheory.quantities.ALL_CORRELATORS``; K and Theta are
        compared as E[z^2], E[H_ii] at the network's width) and/or ratio names
        ("V/K^2", ...).
    samples, seed : int
        Networks simulated and random seed (:func:`fwtheory.mc.simulate`).
    z, rel_tol : float
        Agreement when |measured - theory| <= z SE + rel_tol |theory|.
    layers : sequence of int, optional
        Layers to check (default: all).
    widths : sequence of int, optional
        Compare the width-extrapolated coefficients instead (simulate ``widths``).
    input_norm : float
    order : {1, 2}
        2: ``predict(order=2)`` against :func:`fwtheory.mc.simulate_preactivations`
        (quantities among "K", "G1", "V", "U6" and the ratios "V/K^2", "G1/K",
        "U6/K^3"); "K" (E[z^2]) and "V" are judged against the series through
        1/n^2 (:attr:`fwtheory.comparison.Comparison.series`). Single width only.
    gram : (m, m) array, optional
        Several inputs (m <= 4): ``predict(network, gram=gram)`` against
        ``simulate(network, ..., gram=gram)``, every index tuple of the checked
        correlators (K, G1, V, Theta, Theta1, D, F, A, B; no ratios) judged
        (:mod:`fwtheory.comparison_multi`). Order 1 only; ``input_norm`` stays 1
        (the norms are the diagonal of ``gram``).

    Returns
    -------
    Comparison or GramComparison
        When everything agrees (for further checks).

    Raises
    ------
    AssertionError
        With the per-layer table of the checked quantities, when a checked
        (quantity, layer) disagrees or has no finite measurement.
    """
    from .comparison import compare
    from .errors import ParameterError
    from .mc import simulate, simulate_preactivations
    from .prediction import predict

    if order not in (1, 2) or isinstance(order, bool):
        raise ParameterError("order", f"must be 1 or 2, got {order!r}")
    if order == 2 and widths is not None:
        raise ParameterError("widths", "order=2 compares at the network's width (the width fit has no "
                                       "1/n^2 series to compare); drop widths")
    names = [quantities] if isinstance(quantities, str) else list(quantities)
    if gram is not None:
        return _assert_gram(network, names, samples, seed, z, rel_tol, layers, widths, input_norm, order, gram)
    prediction = predict(network, input_norm=input_norm, order=order)
    sampler = simulate if order == 1 else simulate_preactivations
    sim = sampler(network, samples=samples, seed=seed, widths=widths, input_norm=input_norm)
    comparison = compare(prediction, sim, z=z, rel_tol=rel_tol)
    names = comparison.resolve_names(names)
    idx = {int(l): i for i, l in enumerate(comparison.layers)}

    def verdict_of(name, layer, verdict):      # order 2: K and V through 1/n^2
        series = comparison.series.get(name)
        return verdict if series is None else series["verdict"][idx[layer]]

    bad = [(n, layer) for n, layer, verdict in comparison.entries(names, layers)
           if verdict_of(n, layer, verdict) != "agree"]
    if bad:
        by_name = {}
        for n, layer in bad:
            by_name.setdefault(n, []).append(layer)
        what = "; ".join(f"{n} at layer{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}"
                         for n, v in by_name.items())
        raise AssertionError(f"theory and simulation disagree ({what}) for {network!r}\n"
                             + comparison.table(names=names, layers=layers))
    return comparison


def _assert_gram(network, names, samples, seed, z, rel_tol, layers, widths, input_norm, order, gram):
    """Several inputs: :func:`assert_theory_matches_simulation` with ``gram``."""
    from .comparison import compare
    from .errors import ParameterError
    from .mc import simulate
    from .prediction import predict

    if order != 1:
        raise ParameterError("order", "with gram (several inputs) only order 1 is derived")
    if input_norm != 1.0:
        raise ParameterError("input_norm", "must stay 1 with gram (the input norms are its diagonal)")
    prediction = predict(network, gram=gram)
    sim = simulate(network, samples=samples, seed=seed, widths=widths, gram=gram)
    comparison = compare(prediction, sim, z=z, rel_tol=rel_tol)
    names = comparison.resolve_names(names)
    bad = [(n, c, layer) for n, c, layer, verdict in comparison.entries(names, layers) if verdict != "agree"]
    if bad:
        from .comparison_multi import component_label

        by_name = {}
        for n, c, layer in bad:
            by_name.setdefault(f"{n}_{component_label(c)}", []).append(layer)
        what = "; ".join(f"{n} at layer{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}"
                         for n, v in by_name.items())
        raise AssertionError(f"theory and simulation disagree ({what}) for {network!r}, gram "
                             f"{np.asarray(gram).tolist()}\n" + comparison.table(names=names, layers=layers))
    return comparison
