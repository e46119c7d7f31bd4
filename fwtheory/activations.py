"""Activation functions: symbolic form, fast numeric derivatives, kinks.

Every activation carries

* ``expr``: its sympy form in the symbol :data:`Z` (piecewise activations as
  ``sympy.Piecewise`` so that sympy differentiates them branch by branch);
* ``derivatives(x, order)``: vectorized float64 values of sigma, sigma',
  sigma'', sigma''' (closed forms for the built-ins, lambdified sympy
  derivatives for custom expressions);
* ``kinks``: the points where a derivative jumps (empty for smooth ones), used
  by the Gaussian-expectation engine to split integrals exactly;
* ``code``/``slope``: an integer dispatch code and parameter for the numba
  Monte Carlo kernels (``code == -1`` for custom expressions).

Built-ins: linear, relu, leaky_relu(slope), tanh, sin, erf, sigmoid, softplus,
gelu (exact erf form z*Phi(z)), swish (alias silu). Custom activations are
sympy expressions in ``z``, given as strings (``"z*tanh(z)"``) or sympy
objects.
"""

__all__ = ["Activation", "get_activation", "BUILTIN_NAMES", "Z"]

import math
import re
from functools import cached_property, lru_cache

import numpy as np
from scipy import special

from .errors import ParameterError


def __getattr__(name):  # PEP 562: the sympy symbol z without importing sympy up front
    if name == "Z":
        return _z()
    raise AttributeError(name)


def _z():
    import sympy

    return sympy.Symbol("z", real=True)

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# Integer codes understood by the numba kernels in fwtheory.mc._kernels.
CODES = {
    "linear": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sin": 4, "erf": 5,
    "sigmoid": 6, "softplus": 7, "gelu": 8, "swish": 9,
}
BUILTIN_NAMES = tuple(CODES) + ("silu",)


class Activation:
    """An activation function sigma with its derivatives.

    Instances are immutable and hashable by ``(name, expr)``; construct them
    with :func:`get_activation`.
    """

    __slots__ = ("name", "_source", "kinks", "code", "slope", "__dict__")

    def __init__(self, name, source, kinks=(), code=-1, slope=0.0):
        # ``source``: a sympy expression, or a zero-argument callable building
        # it (built-ins: sympy is imported only when the expression is needed).
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "kinks", tuple(sorted(float(k) for k in kinks)))
        object.__setattr__(self, "code", int(code))
        object.__setattr__(self, "slope", float(slope))

    def __setattr__(self, key, value):
        if key in Activation.__slots__[:-1]:
            raise AttributeError("Activation is immutable")
        object.__setattr__(self, key, value)

    def __repr__(self):
        return f"Activation({self.name!r})"

    def __eq__(self, other):
        if not isinstance(other, Activation):
            return NotImplemented
        if self.code >= 0 or other.code >= 0:
            return (self.name, self.code, self.slope) == (other.name, other.code, other.slope)
        return self.expr == other.expr

    def __hash__(self):
        return hash((self.name, self.code, self.slope))

    def __reduce__(self):
        return (get_activation, (self.name,))

    @cached_property
    def expr(self):
        """sympy form of sigma in the symbol z (real)."""
        return self._source() if callable(self._source) else self._source

    # ------------------------------------------------------------------ numeric
    @property
    def is_builtin(self):
        return self.code >= 0

    @property
    def is_smooth(self):
        return not self.kinks

    def __call__(self, x):
        return self.derivatives(x, 0)[0]

    def derivatives(self, x, order=3):
        """Return an array of shape ``(order + 1,) + x.shape`` holding
        sigma^(k)(x) for k = 0..order (float64, vectorized)."""
        if not 0 <= order <= 3:
            raise ParameterError("order", f"must be in [0, 3], got {order}")
        x = np.asarray(x, dtype=float)
        if self.code >= 0:
            return _builtin_derivatives(self.code, self.slope, x, order)
        out = np.empty((order + 1,) + x.shape)
        # a lambdified Piecewise evaluates every branch at every x (numpy.select):
        # z/(1 - z) of the z < 0 branch at z = 1 must not warn or raise
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for k in range(order + 1):
                out[k] = np.broadcast_to(self._numpy_funcs[k](x), x.shape)
        return out

    def derivative(self, k):
        """Return a vectorized float64 callable for sigma^(k), k = 0..3."""
        return lambda x: self.derivatives(x, k)[k]

    @cached_property
    def sympy_derivatives(self):
        import sympy

        Z = _z()
        """sympy forms of sigma, sigma', sigma'', sigma''' (branchwise for
        piecewise activations)."""
        out = [self.expr]
        for _ in range(3):
            out.append(sympy.piecewise_fold(sympy.diff(out[-1], Z)))
        return tuple(out)

    @cached_property
    def _numpy_funcs(self):
        import sympy

        mods = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, "scipy", "numpy"]
        return tuple(sympy.lambdify(_z(), d, modules=mods) for d in self.sympy_derivatives)

    @cached_property
    def _mpmath_funcs(self):
        import mpmath
        import sympy

        mods = [{"Heaviside": lambda x, h0=0.5: mpmath.mpf(1) if x > 0 else (
            mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))}, "mpmath"]
        return tuple(sympy.lambdify(_z(), d, modules=mods) for d in self.sympy_derivatives)

    def mp_derivative(self, k):
        """Return an mpmath callable for sigma^(k) (working precision of the
        caller's mpmath context); used by the high-precision oracle."""
        return self._mpmath_funcs[k]

    def taylor_coefficients(self, order=5):
        """Taylor coefficients sigma_k = sigma^(k)(0), k = 0..order, as floats.

        Convention of docs/conventions.md ("Criticality", K* = 0 class):
        sigma(z) = sum_k sigma_k z^k / k!.
        Raises :class:`ParameterError` for activations with a kink at 0.
        """
        import sympy

        if any(abs(k) < 1e-300 for k in self.kinks):
            raise ParameterError("activation", f"{self.name} has a kink at z = 0; no Taylor expansion")
        Z = _z()
        series = sympy.series(self.expr, Z, 0, order + 1).removeO()
        return [float(series.coeff(Z, k) * sympy.factorial(k)) for k in range(order + 1)]


# ---------------------------------------------------------------- built-ins
def _builtin_derivatives(code, slope, x, order):
    """Closed forms of sigma^(k), k = 0..order (only the requested orders are computed)."""
    out = np.empty((order + 1,) + x.shape)
    if code == 0:  # linear
        out[0] = x
        out[1:2] = 1.0
        out[2:] = 0.0
    elif code in (1, 2):  # relu, leaky relu
        a = 0.0 if code == 1 else slope
        pos = x >= 0  # sigma'(0) = 1, as sympy's Piecewise gives
        out[0] = np.where(pos, x, a * x)
        if order >= 1:
            out[1] = np.where(pos, 1.0, a)
        out[2:] = 0.0
    elif code == 3:  # tanh
        t = np.tanh(x)
        out[0] = t
        if order >= 1:
            e = np.exp(-2.0 * np.abs(x))
            sech2 = 4.0 * e / ((1.0 + e) * (1.0 + e))   # = 1 - t^2, accurate also for large |x|
            out[1] = sech2
            if order >= 2:
                out[2] = -2.0 * t * sech2
            if order >= 3:
                out[3] = sech2 * (6.0 * t * t - 2.0)
    elif code == 4:  # sin
        out[0] = np.sin(x)
        if order >= 1:
            out[1] = np.cos(x)
        if order >= 2:
            out[2] = -out[0]
        if order >= 3:
            out[3] = -out[1]
    elif code == 5:  # erf
        out[0] = special.erf(x)
        if order >= 1:
            g = _TWO_OVER_SQRT_PI * np.exp(-x * x)
            out[1] = g
            if order >= 2:
                out[2] = -2.0 * x * g
            if order >= 3:
                out[3] = (4.0 * x * x - 2.0) * g
    elif code in (6, 7):  # sigmoid, softplus
        # 1 - sig(x) = sig(-x) and 1 - 2 sig(x) = -tanh(x/2) keep full relative
        # accuracy for large x and near 0 (the forms 1 - sig, 1 - 2 sig cancel there)
        sig = special.expit(x)
        u = sig * special.expit(-x)
        if code == 6:
            vals = (lambda: sig, lambda: u, lambda: -u * np.tanh(0.5 * x), lambda: u * (1.0 - 6.0 * u))
        else:
            vals = (lambda: np.logaddexp(0.0, x), lambda: sig, lambda: u, lambda: -u * np.tanh(0.5 * x))
        for k in range(order + 1):
            out[k] = vals[k]()
    elif code == 8:  # gelu = z Phi(z)
        cdf = special.ndtr(x)
        out[0] = x * cdf
        if order >= 1:
            phi = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
            out[1] = cdf + x * phi
            if order >= 2:
                out[2] = phi * (2.0 - x * x)
            if order >= 3:
                out[3] = phi * (x * x * x - 4.0 * x)
    elif code == 9:  # swish = z sigmoid(z)
        sig = special.expit(x)
        out[0] = x * sig
        if order >= 1:
            u = sig * special.expit(-x)
            out[1] = sig + x * u
            if order >= 2:
                w = -np.tanh(0.5 * x)   # = 1 - 2 sig, without its cancellation near 0
                out[2] = u * (2.0 + x * w)
                if order >= 3:
                    out[3] = u * (w * (3.0 + x * w) - 2.0 * x * u)
    else:  # pragma: no cover - guarded by get_activation
        raise ParameterError("activation", f"unknown built-in code {code}")
    return out


def _builtin_expr(name, slope):
    import sympy

    Z = _z()
    if name in ("relu", "leaky_relu"):
        return sympy.Piecewise((sympy.nsimplify(slope) * Z, Z < 0), (Z, True))
    return {
        "linear": lambda: Z,
        "tanh": lambda: sympy.tanh(Z),
        "sin": lambda: sympy.sin(Z),
        "erf": lambda: sympy.erf(Z),
        "sigmoid": lambda: 1 / (1 + sympy.exp(-Z)),
        "softplus": lambda: sympy.log(1 + sympy.exp(Z)),
        "gelu": lambda: Z * (1 + sympy.erf(Z / sympy.sqrt(2))) / 2,
        "swish": lambda: Z / (1 + sympy.exp(-Z)),
    }[name]()


_NAME_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")
_DEFAULT_LEAKY_SLOPE = 0.01


def _builtin(name, param):
    if name == "silu":
        name = "swish"
    if name == "leaky_relu":
        slope = _DEFAULT_LEAKY_SLOPE if param is None else param
        if not math.isfinite(slope) or slope < 0:
            raise ParameterError("activation", f"leaky_relu slope must be a finite number >= 0, got {slope}")
        return Activation(f"leaky_relu({slope:g})", lambda: _builtin_expr(name, slope),
                          kinks=(0.0,), code=CODES[name], slope=slope)
    if param is not None:
        raise ParameterError("activation", f"{name} takes no parameter, got ({param:g})")
    kinks = (0.0,) if name == "relu" else ()
    return Activation(name, lambda: _builtin_expr(name, 0), kinks=kinks, code=CODES[name])


def _kinks_of(expr):
    """Real points where a derivative of ``expr`` may jump."""
    import sympy

    Z = _z()
    args = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Heaviside, sympy.Abs, sympy.sign)):
            args.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            a = node.args
            args.extend(a[i] - a[j] for i in range(len(a)) for j in range(i + 1, len(a)))
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    args.append(cond.lhs - cond.rhs)
    points = set()
    for a in args:
        for r in sympy.solve(sympy.Eq(a, 0), Z):
            if r.is_real:
                points.add(float(r))
    return tuple(sorted(points))


def _custom(expr, text):
    import sympy

    Z = _z()
    free = expr.free_symbols
    if free != {Z}:
        names = sorted(str(s) for s in free)
        raise ParameterError(
            "activation",
            f"a custom activation must be a function of z alone, got {text!r} (free symbols: "
            f"{names or 'none'}); {_ALLOWED_FORMS}")
    # Make piecewise pieces explicit so sympy differentiates branchwise.
    expr = sympy.piecewise_fold(expr.rewrite(sympy.Piecewise)) if expr.has(
        sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside, sympy.sign) else expr
    for probe in (-1.3, 0.0, 0.7, 2.1):
        try:
            val = complex(expr.subs(Z, probe).evalf())
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            val = complex(math.nan)   # e.g. an undefined function foo(z): no numeric value
        if abs(val.imag) > 1e-12 or not math.isfinite(val.real):
            raise ParameterError("activation", f"{text!r} is not real and finite at z = {probe} "
                                               "(overflow, a pole, a complex value or no numeric value)")
    try:
        kinks = _kinks_of(expr)
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise ParameterError("activation", f"cannot locate the kinks of {text!r} "
                                           f"({type(exc).__name__}); simplify the expression") from None
    return Activation(str(text), expr, kinks=kinks, code=-1)


def get_activation(spec):
    """Return an :class:`Activation` from a name, ``"leaky_relu(0.1)"``, a
    string expression in ``z`` or a sympy expression.

    Raises :class:`ParameterError` (parameter ``activation``) for an unknown
    name or an expression that is not a real function of z alone.
    """
    if isinstance(spec, Activation):
        return spec
    if type(spec).__module__.startswith("sympy"):
        expr = spec.xreplace({s: _z() for s in spec.free_symbols if s.name == "z"})
        return _custom(expr, str(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise ParameterError("activation", f"cannot use {spec!r}: {_ALLOWED_FORMS}")
    m = _NAME_RE.match(spec)
    if m and m.group(1).lower() in BUILTIN_NAMES:
        name, arg = m.group(1).lower(), m.group(2)
        param = None
        if arg:
            try:
                param = float(arg)
            except ValueError:
                param = None
                if arg.strip() != "z" and name not in ("tanh", "sin", "erf"):
                    raise ParameterError(
                        "activation", f"parameter of {name} must be a number, got {arg!r}") from None
                if arg.strip() != "z":
                    m = None  # e.g. "tanh(2*z)": a sympy expression, parsed below
        if m is not None:
            return _builtin(name, param)
    if m and m.group(2) is None and m.group(1) != "z":
        raise ParameterError(
            "activation",
            f"unknown activation {spec.strip()!r}; built-ins are {', '.join(BUILTIN_NAMES)}, "
            "or give an expression in z such as 'z*tanh(z)'")
    return _custom(_parse(spec), spec.strip())


_ALLOWED_FORMS = ("give a built-in name (" + ", ".join(BUILTIN_NAMES) + ", leaky_relu(a)) "
                  "or an expression in z such as 'z*tanh(z)'")
_MAX_CONSTANT = 1e300


def _cannot_parse(spec, reason):
    reason = " ".join(str(reason).split()) or "invalid expression"
    return ParameterError("activation", f"cannot parse {spec.strip()!r}: {reason}; {_ALLOWED_FORMS}")


@lru_cache(maxsize=1)
def _sympy_namespace():
    """sympy's names without Python's builtins: the expression string is
    evaluated by ``parse_expr``, and ``__import__('os')`` must not run."""
    ns = {}
    exec("from sympy import *", ns)  # noqa: S102 - fixed string
    ns["__builtins__"] = {}
    return ns


def _parse(spec):
    """Parse a string expression in z into a sympy expression, or raise a
    one-line :class:`ParameterError` naming ``activation``.

    The string is first parsed unevaluated, so that constants such as
    ``10**10**10`` or ``factorial(10**7)`` are refused (|constant| <= 1e300)
    before sympy would compute them exactly (which can take forever)."""
    import sympy
    from sympy.core.function import AppliedUndef

    local = {"z": _z(), "Z": _z()}
    try:
        raw = sympy.parse_expr(spec, local_dict=local, global_dict=_sympy_namespace(), evaluate=False)
    except SyntaxError as exc:
        raise _cannot_parse(spec, exc.msg) from None
    except Exception as exc:  # noqa: BLE001 - sympy's parser raises many types
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc
        if type(exc).__name__ == "TokenError":
            reason = f"{reason} (unbalanced parentheses or brackets?)"
        raise _cannot_parse(spec, reason) from None
    if not isinstance(raw, sympy.Expr) or isinstance(raw, (sympy.Tuple,)):
        raise _cannot_parse(spec, f"not a function of z (it is a {type(raw).__name__})")
    unknown = sorted({str(f.func) for f in raw.atoms(AppliedUndef)})
    if unknown:
        raise _cannot_parse(spec, f"unknown function {', '.join(unknown)}")
    bad = [n for n in sympy.preorder_traversal(raw)
           if isinstance(n, (sympy.Derivative, sympy.Integral, sympy.Sum, sympy.Product,
                             sympy.Lambda, sympy.Limit, sympy.Subs))]
    if bad:
        raise _cannot_parse(spec, f"{type(bad[0]).__name__} is not supported; write the closed form")
    for node in sympy.postorder_traversal(raw):       # innermost constants first
        if node.free_symbols or node.is_Atom:
            continue
        try:
            big = abs(complex(node.evalf(15))) > _MAX_CONSTANT
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            big = False   # nan, zoo...: refused later as not real and finite
        if big:
            raise _cannot_parse(spec, f"the constant {sympy.sstr(node)[:40]} is too large "
                                      f"(|constants| <= {_MAX_CONSTANT:g})")
    try:
        expr = sympy.parse_expr(spec, local_dict=local, global_dict=_sympy_namespace())
    except Exception as exc:  # noqa: BLE001
        raise _cannot_parse(spec, exc) from None
    if not isinstance(expr, sympy.Expr):
        raise _cannot_parse(spec, f"not a function of z (it is {sympy.sstr(expr)[:40]})")
    return expr
