"""Checks used by the graded exercises' tests.

Each check raises ``AssertionError`` with a message that says what was expected, what was
got, and a hint, in the style of the DeepLearning.AI assignments. The message is what the
student reads in JupyterLab's Validate and in the feedback nbgrader writes.
"""
from __future__ import annotations

import numpy as np

_MAX_SHOW = 6


def _fail(what: str, expected, got, hint: str | None):
    message = f"{what}: expected {expected}, got {got}."
    if hint:
        message += f"\nHint: {hint}"
    raise AssertionError(message)


def _short(arr: np.ndarray) -> str:
    flat = np.asarray(arr).ravel()
    body = np.array2string(flat[:_MAX_SHOW], precision=4, separator=", ")
    return body[:-1] + ", ...]" if flat.size > _MAX_SHOW else body


def check_array(got, expected, what: str, *, hint: str | None = None,
                rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Check that ``got`` is an array with ``expected``'s shape and values (within tolerance)."""
    expected = np.asarray(expected)
    if got is None:
        _fail(what, f"an array of shape {expected.shape}", "None", hint or "did you forget `return`?")
    try:
        got_arr = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        _fail(what, f"an array of shape {expected.shape}", type(got).__name__, hint)
    if got_arr.shape != expected.shape:
        _fail(what, f"shape {expected.shape}", f"shape {got_arr.shape}", hint)
    if not np.all(np.isfinite(got_arr)):
        _fail(what, "finite numbers", "NaN or infinite values", hint)
    close = np.isclose(got_arr, expected, rtol=rtol, atol=atol)
    if not close.all():
        where = tuple(int(i) for i in np.argwhere(~close)[0])
        _fail(what, f"{_short(expected)} (first difference at index {where}: {expected[where]:.6g})",
              f"{_short(got_arr)} ({got_arr[where]:.6g} there; {int((~close).sum())} of {close.size} values differ)",
              hint)


def check_equal(got, expected, what: str, *, hint: str | None = None) -> None:
    """Check ``got == expected`` for plain values (ints, tuples, strings)."""
    if isinstance(expected, tuple) and isinstance(got, list):
        got = tuple(got)
    if isinstance(expected, (int, np.integer)) and isinstance(got, (int, np.integer)) and not isinstance(got, bool):
        got = int(got)
    if type(got) is not type(expected) and not (isinstance(expected, tuple) and isinstance(got, tuple)):
        _fail(what, f"{expected!r} ({type(expected).__name__})", f"{got!r} ({type(got).__name__})", hint)
    if got != expected:
        _fail(what, repr(expected), repr(got), hint)


def check_at_least(got, threshold, what: str, *, hint: str | None = None) -> None:
    """Check that a number (an accuracy, say) is at least ``threshold``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        _fail(what, f"a number of at least {threshold}", repr(got), hint)
    if not np.isfinite(value) or value < threshold:
        _fail(what, f"at least {threshold}", f"{value:.4g}", hint)


def check_at_most(got, threshold, what: str, *, hint: str | None = None) -> None:
    """Check that a number (an error, say) is at most ``threshold``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        _fail(what, f"a number of at most {threshold}", repr(got), hint)
    if not np.isfinite(value) or value > threshold:
        _fail(what, f"at most {threshold}", f"{value:.4g}", hint)
