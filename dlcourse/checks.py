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
    if isinstance(expected, bool) and isinstance(got, np.bool_):
        got = bool(got)
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


def _name_of(thing) -> str | None:
    """'relu' for 'relu', keras.activations.relu or a ReLU layer; a loss's or optimizer's name."""
    if thing is None:
        return None
    if isinstance(thing, str):
        return thing.lower()
    for attr in ("name", "__name__"):
        value = getattr(thing, attr, None)
        if isinstance(value, str):
            return value.lower()
    return type(thing).__name__.lower()


# Layers that change neither what a following activation means nor which layer it belongs to.
_PASS_THROUGH = ("BatchNormalization", "LayerNormalization", "Dropout", "GaussianNoise", "GaussianDropout")


def describe_layers(model) -> list[tuple]:
    """A Keras model's layers as comparable tuples, however the model was written.

    Each layer becomes ``(kind, details, activation)``, e.g. ``("Conv2D", (16, (2, 2), (1, 1)), "relu")``
    or ``("MaxPooling2D", ((2, 2), (2, 2)), None)``. Input layers are skipped, and a separate
    ``ReLU``/``Activation``/``Softmax`` layer is folded into the layer before it, looking past
    normalisation and dropout layers: ``Conv2D(16, 2, activation="relu")`` and ``Conv2D(16, 2)``
    followed by ``ReLU()`` compare equal, and ``Dense(100)``, ``BatchNormalization()``, ``ReLU()``
    describes as a ReLU ``Dense`` layer followed by the ``BatchNormalization`` row.
    """
    import keras

    rows: list[list] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if kind in ("ReLU", "Activation", "Softmax"):
            owner = next((row for row in reversed(rows) if row[0] not in _PASS_THROUGH), None)
            if owner is not None and owner[2] in (None, "linear"):
                owner[2] = "relu" if kind == "ReLU" else "softmax" if kind == "Softmax" else _name_of(layer.activation)
                continue
        if hasattr(layer, "filters"):
            details = (layer.filters, tuple(layer.kernel_size), tuple(layer.strides))
        elif hasattr(layer, "pool_size"):
            details = (tuple(layer.pool_size), tuple(layer.strides))
        elif hasattr(layer, "units"):
            details = (layer.units,)
        else:
            details = ()
        activation = _name_of(getattr(layer, "activation", None))
        rows.append([kind, details, activation])
    return [tuple(r) for r in rows]


def loss_name(model) -> str | None:
    """The name of a compiled model's loss ('categorical_crossentropy'), however it was passed."""
    return _name_of(getattr(model, "loss", None))


def call(function, *args, what: str, hint: str | None = None, **kwargs):
    """Call the student's ``function``; if it raises, fail with a message that says which call
    crashed, the error, and a hint (the grader's feedback shows only this message, not a
    traceback into the student's code)."""
    try:
        return function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any crash is the student's to see
        message = f"{what}: raised {type(exc).__name__}: {exc}"
        if hint:
            message += f"\nHint: {hint}"
        raise AssertionError(message) from exc


def check_unchanged(function, *args, what: str, hint: str | None = None, **kwargs):
    """Call the student's ``function`` (as :func:`call` does) and fail if it changed any of its
    array arguments in place; return its result.

    While grading, the student's function runs in another process on copies of the arguments, so
    the test's own arrays never change: the grader's proxy reports which arguments the call
    changed instead (``call_reporting_changes``). The verdict is the same in both places."""
    reporting = getattr(function, "call_reporting_changes", None)
    if reporting is not None:
        try:
            result, changed = reporting(*args, **kwargs)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash is the student's to see
            message = f"{what}: raised {type(exc).__name__}: {exc}"
            raise AssertionError(message + (f"\nHint: {hint}" if hint else "")) from exc
    else:
        before = {i: np.array(a, copy=True) for i, a in enumerate(args) if isinstance(a, np.ndarray)}
        before.update({k: np.array(v, copy=True) for k, v in kwargs.items() if isinstance(v, np.ndarray)})
        result = call(function, *args, what=what, hint=hint, **kwargs)
        changed = [k for k, old in before.items()
                   if not np.array_equal(args[k] if isinstance(k, int) else kwargs[k], old, equal_nan=True)]
    if changed:
        names = ", ".join(f"argument {k + 1}" if isinstance(k, int) else k for k in changed)
        _fail(f"{what}: the arrays passed to it", "unchanged after the call", f"{names} changed in place", hint)
    return result
