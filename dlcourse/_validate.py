"""Argument checks shared by the modules: a bad argument raises a ValueError that names the
argument, says what was expected and what was given."""
from __future__ import annotations

import numbers

import numpy as np


def positive_int(value, name: str) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def pair(value, name: str) -> tuple[int, int]:
    """Accept ``k`` or ``(kh, kw)`` of positive integers; return ``(kh, kw)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}") from None
    return positive_int(a, name), positive_int(b, name)


def fraction(value, name: str, *, low_open: bool = True, high_open: bool = True) -> float:
    """Return ``value`` as a float strictly inside (0, 1) (ends optionally included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    v = float(value)
    ok_low = v > 0 if low_open else v >= 0
    ok_high = v < 1 if high_open else v <= 1
    if not (ok_low and ok_high):
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return v


def choice(value, name: str, options) -> str:
    """Return ``value`` if it is one of ``options``, else raise a ValueError listing them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def array(value, name: str, *, ndim=None, dtype=float) -> np.ndarray:
    """Convert ``value`` to an array of ``dtype`` and check its number of dimensions.

    ``ndim`` may be an int or a tuple of allowed ints. Non-finite values are rejected.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(value).__name__}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr
