"""Exception and warning classes of fwtheory.

Every user-facing error names the offending parameter and the allowed range,
so that the CLI can print it as one line on stderr (exit code 2).
"""

__all__ = [
    "FwtheoryError",
    "ParameterError",
    "NumericalError",
    "PrecisionLoss",
    "FwtheoryWarning",
    "AccuracyWarning",
    "check_finite",
    "check_int",
    "check_real",
]

import math
import numbers


class FwtheoryError(Exception):
    """Base class of all fwtheory errors."""


class ParameterError(FwtheoryError, ValueError):
    """Bad user input: the message names the parameter and what is allowed."""

    def __init__(self, parameter, message):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class NumericalError(FwtheoryError, ArithmeticError):
    """Numerical trouble (quadrature not converged, overflow) that would
    otherwise surface as a silent NaN or inf."""


class PrecisionLoss(NumericalError):
    """A recursion lost its precision beyond layer ``valid_layers`` (the results of
    layers 1..valid_layers are within tolerance)."""

    def __init__(self, message, valid_layers):
        super().__init__(message)
        self.valid_layers = valid_layers


class FwtheoryWarning(UserWarning):
    """Base class of fwtheory warnings."""


class AccuracyWarning(FwtheoryWarning):
    """A result is returned but did not reach the requested accuracy."""


def check_real(name, value, *, lower=None, upper=None, lower_open=False,
               allowed=None):
    """Return ``value`` as a finite float, or raise :class:`ParameterError`.

    ``allowed`` is the human description of the range used in the message.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(name, f"must be a real number, got {value!r}") from None
    value = float(value)
    rng = allowed or _describe(lower, upper, lower_open)
    if not math.isfinite(value):
        raise ParameterError(name, f"must be finite ({rng}), got {value}")
    if lower is not None and (value < lower or (lower_open and value == lower)):
        raise ParameterError(name, f"must be {rng}, got {value}")
    if upper is not None and value > upper:
        raise ParameterError(name, f"must be {rng}, got {value}")
    return value


def check_int(name, value, *, lower=1, upper=None, allowed=None):
    """Return ``value`` as an int >= ``lower`` (and <= ``upper``), or raise."""
    rng = allowed or (f"an integer >= {lower}" if upper is None
                      else f"an integer in [{lower}, {upper}]")
    if isinstance(value, bool):
        raise ParameterError(name, f"must be {rng}, got {value!r}")
    if isinstance(value, numbers.Integral):
        ivalue = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        ivalue = int(value)
    else:
        raise ParameterError(name, f"must be {rng}, got {value!r}")
    if ivalue < lower or (upper is not None and ivalue > upper):
        raise ParameterError(name, f"must be {rng}, got {ivalue}")
    return ivalue


def check_finite(name, array):
    """Raise :class:`NumericalError` if ``array`` holds NaN or inf."""
    import numpy as np

    arr = np.asarray(array)
    if not np.all(np.isfinite(arr)):
        raise NumericalError(f"{name}: non-finite value (NaN or overflow) encountered")
    return array


def _describe(lower, upper, lower_open):
    if lower is None and upper is None:
        return "a finite real number"
    if upper is None:
        return f"{'>' if lower_open else '>='} {lower:g}"
    if lower is None:
        return f"<= {upper:g}"
    return f"in {'(' if lower_open else '['}{lower:g}, {upper:g}]"
