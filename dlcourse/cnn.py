"""Convolutional neural networks from scratch in NumPy, and the chapter's Keras model.

Taught in the chapter "Convolutional neural networks". Layouts follow Keras: images are
(height, width, channels), a batch is (n, height, width, channels), and a convolution's
kernels are (kernel_height, kernel_width, in_channels, filters). As in Keras and every deep
learning library, "convolution" here is cross-correlation: the filter is not flipped.
"""
from __future__ import annotations

import math

import numpy as np

from . import _validate

PADDINGS = ("valid", "same")


def conv_output_length(input_length: int, kernel_size: int, stride: int = 1,
                       padding: str | int = "valid") -> int:
    """Length of a convolution's or pooling's output along one axis (the CNN chapter).

    With ``p`` zeros added at each end, floor((n + 2p - k) / s) + 1 windows fit: ``padding`` is
    that ``p`` (an int >= 0, as PyTorch's ``padding=p``), or 'valid' (p = 0, Keras's default), or
    'same' (Keras adds as many zeros as it takes for every stride position to have a window:
    ceil(n / s)).
    """
    n = _validate.positive_int(input_length, "input_length")
    k = _validate.positive_int(kernel_size, "kernel_size")
    s = _validate.positive_int(stride, "stride")
    if isinstance(padding, bool) or not isinstance(padding, (str, int)) or (isinstance(padding, int) and padding < 0):
        raise ValueError(f"padding: expected 'valid', 'same' or a number of zeros >= 0, got {padding!r}")
    if isinstance(padding, str):
        _validate.choice(padding, "padding", PADDINGS)
    if padding == "same":
        return math.ceil(n / s)
    p = 0 if padding == "valid" else padding
    if k > n + 2 * p:
        raise ValueError(f"kernel_size {k} is larger than the input length {n} with padding {padding!r}")
    return (n + 2 * p - k) // s + 1


def _pad_amounts(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Zeros added before and after along one axis (TensorFlow's rule: the extra one goes after)."""
    if padding == "valid":
        return 0, 0
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _as_batch(x, name: str) -> tuple[np.ndarray, bool]:
    x = _validate.array(x, name)
    if x.ndim == 2:
        raise ValueError(f"{name} must be an image (height, width, channels) or a batch (n, height, width, "
                         f"channels), got shape {x.shape}; a grey image needs its channel axis: {name}[:, :, None]")
    if x.ndim not in (3, 4):
        raise ValueError(f"{name} must have 3 or 4 dimensions (height, width, channels), "
                         f"with a batch axis first if 4, got shape {x.shape}")
    return (x, False) if x.ndim == 4 else (x[None], True)


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """All (kh, kw) windows of a (n, H, W, C) batch at the given strides: (n, H', W', kh, kw, C)."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (n, H-kh+1, W-kw+1, C, kh, kw)
    return view[:, ::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)


def conv2d(x, kernels, bias=None, *, strides=1, padding: str = "valid") -> np.ndarray:
    """2-D convolution (cross-correlation) of an image or a batch with a bank of filters.

    x: (H, W, C) or (n, H, W, C). kernels: (kh, kw, C, F), or (kh, kw) for one grey filter.
    bias: (F,) or None. Returns (H', W', F) or (n, H', W', F), with H' and W' given by
    :func:`conv_output_length`. Each output value is the sum over the window and the channels of
    window * filter, plus the filter's bias: ``out[i, j, f] = sum(x[i*s:i*s+kh, j*s:j*s+kw, :] * K[..., f]) + b[f]``.
    """
    xb, single = _as_batch(x, "x")
    k = _validate.array(kernels, "kernels", ndim=(2, 4))
    if k.ndim == 2:
        k = k[:, :, None, None]
    kh, kw, c_in, n_filters = k.shape
    if c_in != xb.shape[-1]:
        raise ValueError(f"kernels have {c_in} input channels but x has {xb.shape[-1]}: "
                         "kernels must be shaped (kh, kw, in_channels, filters)")
    sh, sw = _validate.pair(strides, "strides")
    _validate.choice(padding, "padding", PADDINGS)
    (pt, pb), (pl, pr) = (_pad_amounts(xb.shape[1], kh, sh, padding), _pad_amounts(xb.shape[2], kw, sw, padding))
    xb = np.pad(xb, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    if xb.shape[1] < kh or xb.shape[2] < kw:
        raise ValueError(f"the {kh} x {kw} filter is larger than the {xb.shape[1]} x {xb.shape[2]} input")
    out = np.einsum("nijklc,klcf->nijf", _windows(xb, kh, kw, sh, sw), k, optimize=True)
    if bias is not None:
        b = _validate.array(bias, "bias", ndim=1)
        if b.shape != (n_filters,):
            raise ValueError(f"bias must have shape ({n_filters},), one per filter, got {b.shape}")
        out = out + b
    return out[0] if single else out


def _pool(x, pool_size, strides, padding: str, reduce: str) -> np.ndarray:
    xb, single = _as_batch(x, "x")
    ph, pw = _validate.pair(pool_size, "pool_size")
    sh, sw = (ph, pw) if strides is None else _validate.pair(strides, "strides")
    _validate.choice(padding, "padding", PADDINGS)
    (pt, pb), (pl, pr) = (_pad_amounts(xb.shape[1], ph, sh, padding), _pad_amounts(xb.shape[2], pw, sw, padding))
    if xb.shape[1] + pt + pb < ph or xb.shape[2] + pl + pr < pw:
        raise ValueError(f"pool_size {(ph, pw)} is larger than the {xb.shape[1]} x {xb.shape[2]} input")
    if reduce == "max":
        padded = np.pad(xb, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
        out = _windows(padded, ph, pw, sh, sw).max(axis=(3, 4))
    else:  # average over the real pixels only, as Keras does at the border with 'same'
        padded = np.pad(xb, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        counts = np.pad(np.ones_like(xb[..., :1]), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        out = _windows(padded, ph, pw, sh, sw).sum(axis=(3, 4)) / _windows(counts, ph, pw, sh, sw).sum(axis=(3, 4))
    return out[0] if single else out


def max_pool2d(x, pool_size=2, strides=None, *, padding: str = "valid") -> np.ndarray:
    """Max pooling: the largest value in each pool_size window, channel by channel.

    x: (H, W, C) or (n, H, W, C). strides defaults to pool_size, as in Keras.
    """
    return _pool(x, pool_size, strides, padding, "max")


def average_pool2d(x, pool_size=2, strides=None, *, padding: str = "valid") -> np.ndarray:
    """Average pooling: the mean of each pool_size window, channel by channel.

    x: (H, W, C) or (n, H, W, C). strides defaults to pool_size, as in Keras.
    """
    return _pool(x, pool_size, strides, padding, "average")


def relu(x) -> np.ndarray:
    """max(0, x), elementwise."""
    return np.maximum(0, _validate.array(x, "x"))


def softmax(scores, axis: int = -1) -> np.ndarray:
    """Turn scores (logits) into probabilities that sum to 1 along ``axis``; numerically stable.

    ``softmax(z)_k = exp(z_k) / sum_j exp(z_j)``. Subtracting the largest score first changes
    nothing mathematically but keeps ``exp`` from overflowing for scores in the hundreds.
    """
    z = _validate.array(scores, "scores")
    if z.ndim == 0:
        raise ValueError("scores must have at least one dimension (one score per class), got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be an integer between {-z.ndim} and {z.ndim - 1} for scores of "
                         f"shape {z.shape}, got {axis!r}")
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def conv2d_param_count(kernel_size, in_channels: int, filters: int, *, bias: bool = True) -> int:
    """Trainable parameters of a Conv2D layer: (kh * kw * in_channels + 1) * filters.

    The count does not depend on the image size: the same filters slide over every position.
    """
    kh, kw = _validate.pair(kernel_size, "kernel_size")
    c = _validate.positive_int(in_channels, "in_channels")
    f = _validate.positive_int(filters, "filters")
    return (kh * kw * c + int(bias)) * f


def dense_param_count(inputs: int, units: int, *, bias: bool = True) -> int:
    """Trainable parameters of a Dense layer: (inputs + 1) * units (weights plus one bias per unit)."""
    return (_validate.positive_int(inputs, "inputs") + int(bias)) * _validate.positive_int(units, "units")


def _filters(filters) -> tuple[int, ...]:
    """``filters`` as a non-empty tuple of positive ints (one entry per convolution block)."""
    if isinstance(filters, (int, np.integer)) and not isinstance(filters, bool):
        filters = (filters,)
    try:
        values = tuple(filters)
    except TypeError:
        raise ValueError(f"filters must be a sequence of positive integers, one per convolution "
                         f"block, got {filters!r}") from None
    if not values:
        raise ValueError("filters must name at least one convolution block, got an empty sequence")
    return tuple(_validate.positive_int(f, "filters") for f in values)


def _input_shape(input_shape) -> tuple[int, int, int]:
    try:
        values = tuple(input_shape)
    except TypeError:
        values = ()
    if len(values) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    return tuple(_validate.positive_int(v, "input_shape") for v in values)


def cnn_layer_shapes(input_shape=(128, 128, 3), *, filters=(16, 32), kernel_size=(2, 2),
                     pool_size=(2, 2), dense_units: int = 100, num_classes: int = 10,
                     padding: str = "valid"):
    """Layer by layer output shape and parameter count of the chapter's CNN, computed by hand.

    Returns a list of ``(layer name, output shape, parameters)``; it matches Keras's
    ``model.summary()`` (and :func:`model_layer_shapes`) for :func:`build_cnn` with the same
    arguments. ``padding`` is the convolutions' ('valid' as taught, or 'same'); pooling is
    always 'valid', as in Keras's default. ``pool_size=1`` describes the network without pooling.
    Raises ValueError when the image becomes smaller than a filter or a pooling window.
    """
    h, w, c = _input_shape(input_shape)
    filters = _filters(filters)
    kh, kw = _validate.pair(kernel_size, "kernel_size")
    ph, pw = _validate.pair(pool_size, "pool_size")
    _validate.choice(padding, "padding", PADDINGS)
    dense_units = _validate.positive_int(dense_units, "dense_units")
    num_classes = _validate.positive_int(num_classes, "num_classes")
    rows = []
    for i, f in enumerate(filters, start=1):
        if padding == "valid" and (h < kh or w < kw):
            raise ValueError(f"input_shape {tuple(input_shape)!r} is too small: block {i} gets a {h} x {w} "
                             f"map, smaller than the {kh} x {kw} kernel_size (use padding='same' or fewer filters)")
        params = conv2d_param_count((kh, kw), c, f)
        h, w, c = conv_output_length(h, kh, 1, padding), conv_output_length(w, kw, 1, padding), f
        rows.append((f"conv2d_{i}", (h, w, c), params))
        if h < ph or w < pw:
            raise ValueError(f"input_shape {tuple(input_shape)!r} is too small: block {i} pools a {h} x {w} "
                             f"map with a {ph} x {pw} pool_size")
        h, w = conv_output_length(h, ph, ph), conv_output_length(w, pw, pw)
        rows.append((f"max_pooling2d_{i}", (h, w, c), 0))
    flat = h * w * c
    rows.append(("flatten", (flat,), 0))
    rows.append(("dense", (dense_units,), dense_param_count(flat, dense_units)))
    rows.append(("dense_output", (num_classes,), dense_param_count(dense_units, num_classes)))
    return rows


def model_layer_shapes(model):
    """The same table as :func:`cnn_layer_shapes`, read from a built Keras model.

    Returns ``[(layer name, output shape without the batch axis, parameters), ...]``, one row
    per layer, so the hand count can be compared with what Keras built.
    """
    layers = getattr(model, "layers", None)
    if layers is None or not getattr(model, "built", False):
        raise ValueError(f"model must be a built Keras model (start it with keras.Input), got {type(model).__name__}")
    return [(layer.name, tuple(int(d) for d in layer.output.shape[1:]), int(layer.count_params()))
            for layer in layers]


def build_cnn(input_shape=(128, 128, 3), num_classes: int = 10, *, filters=(16, 32),
              kernel_size=(2, 2), pool_size=(2, 2), dense_units: int = 100, compile: bool = True,
              padding: str = "valid"):
    """The chapter's CNN, built with ``keras.Sequential`` exactly as taught.

    Input -> [Conv2D(filters[i], kernel_size, strides=1, ReLU) -> MaxPooling2D(pool_size, strides=pool_size)]
    for each entry of ``filters`` -> Flatten -> Dense(dense_units, ReLU) -> Dense(num_classes, softmax).
    ``padding`` is the convolutions' padding: 'valid' as taught, 'same' for small images (the
    chapter uses it for 8 x 8 digits, where 'valid' shrinks the maps to 1 x 1).
    Compiled with Adam and categorical cross-entropy (labels one-hot) unless ``compile=False``.
    """
    import keras

    shape = _input_shape(input_shape)
    num_classes = _validate.positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    filters = _filters(filters)
    kernel_size, pool_size = _validate.pair(kernel_size, "kernel_size"), _validate.pair(pool_size, "pool_size")
    dense_units = _validate.positive_int(dense_units, "dense_units")
    _validate.choice(padding, "padding", PADDINGS)
    cnn_layer_shapes(shape, filters=filters, kernel_size=kernel_size, pool_size=pool_size,
                     dense_units=dense_units, num_classes=num_classes, padding=padding)  # fails early if too small
    layers = [keras.Input(shape=shape)]
    for f in filters:
        layers += [keras.layers.Conv2D(f, kernel_size, strides=(1, 1), padding=padding, activation="relu"),
                   keras.layers.MaxPooling2D(pool_size=pool_size, strides=pool_size)]
    layers += [keras.layers.Flatten(),
               keras.layers.Dense(dense_units, activation="relu"),
               keras.layers.Dense(num_classes, activation="softmax")]
    model = keras.Sequential(layers, name="cnn")
    if compile:
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_mnist1d_cnn(num_classes: int = 10, *, channels: int = 25, length: int = 40, compile: bool = True):
    """The small 1-D CNN of the MNIST-1D benchmark (greydanus/mnist1d, "CNN": 94 % test accuracy).

    Input (length, 1) -> three Conv1D layers of ``channels`` filters (kernel 5, 3, 3; stride 2;
    ReLU), each after one zero added at both ends (the published ``padding=1``, as a
    ``ZeroPadding1D(1)`` layer: Keras's Conv1D has only 'valid' and 'same'), so the length goes
    40 -> 19 -> 10 -> 5 -> Flatten -> Dense(num_classes, softmax). About 5,000 parameters.
    Compiled with Adam (learning rate 1e-2, as published) and sparse categorical cross-entropy
    (integer labels) unless ``compile=False``. Used by the CNN and shallow-vs-deep chapters.
    """
    import keras

    channels = _validate.positive_int(channels, "channels")
    length = _validate.positive_int(length, "length")
    num_classes = _validate.positive_int(num_classes, "num_classes")
    model = keras.Sequential([
        keras.Input(shape=(length, 1)),
        keras.layers.ZeroPadding1D(1),
        keras.layers.Conv1D(channels, 5, strides=2, activation="relu"),
        keras.layers.ZeroPadding1D(1),
        keras.layers.Conv1D(channels, 3, strides=2, activation="relu"),
        keras.layers.ZeroPadding1D(1),
        keras.layers.Conv1D(channels, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ], name="mnist1d_cnn")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
