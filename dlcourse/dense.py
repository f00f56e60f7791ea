"""Dense (fully connected) networks from scratch in NumPy, and the chapter's Keras models.

Taught in the chapter "Shallow vs deep neural networks, and why deep learning took off".
Layouts follow Keras: a batch of inputs is (n, inputs); a Dense layer's kernel is
(inputs, units) and its bias (units,), so a layer computes ``activation(x @ kernel + bias)``.
An MLP's weights are a flat list ``[kernel_1, bias_1, kernel_2, bias_2, ...]``, exactly what
``model.get_weights()`` returns for a ``keras.Sequential`` of Dense layers.
"""
from __future__ import annotations

import math
import numbers
import time

import numpy as np

from . import _validate

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
HIDDEN_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
OPTIMIZERS = ("adam", "sgd")


# --------------------------------------------------------------------------- activations
def relu(x) -> np.ndarray:
    """The rectified linear unit max(0, x), elementwise (Nair & Hinton, 2010)."""
    return np.maximum(0.0, _validate.array(x, "x"))


def sigmoid(x) -> np.ndarray:
    """The logistic sigmoid 1 / (1 + exp(-x)), elementwise, without overflow for large |x|."""
    x = _validate.array(x, "x")
    e = np.exp(-np.abs(x))                       # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x) -> np.ndarray:
    """The hyperbolic tangent, elementwise."""
    return np.tanh(_validate.array(x, "x"))


def softmax(scores, axis: int = -1) -> np.ndarray:
    """Turn scores (logits) into probabilities that sum to 1 along ``axis``; numerically stable."""
    z = _validate.array(scores, "scores")
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def activate(z, activation: str = "relu") -> np.ndarray:
    """Apply the activation named ``activation`` (one of :data:`ACTIVATIONS`) to ``z``."""
    _validate.choice(activation, "activation", ACTIVATIONS)
    if activation == "linear":
        return _validate.array(z, "z")
    return {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}[activation](z)


def activation_derivative(z, activation: str = "relu") -> np.ndarray:
    """The derivative f'(z) of a hidden layer's activation at the pre-activations ``z``, elementwise.

    relu: 1 where z > 0, else 0 (the value at exactly 0 is taken as 0, as TensorFlow does).
    sigmoid: s(z) (1 - s(z)), at most 0.25. tanh: 1 - tanh(z)^2, at most 1. linear: 1.
    """
    _validate.choice(activation, "activation", HIDDEN_ACTIVATIONS)
    z = _validate.array(z, "z")
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    if activation == "sigmoid":
        s = sigmoid(z)
        return s * (1.0 - s)
    if activation == "tanh":
        return 1.0 - np.tanh(z) ** 2
    return np.ones_like(z)


# --------------------------------------------------------------------------- forward pass
def dense_forward(x, kernel, bias=None, activation: str = "linear") -> np.ndarray:
    """One Dense layer: ``activation(x @ kernel + bias)``.

    x: (inputs,) for one sample or (n, inputs) for a batch. kernel: (inputs, units), Keras's layout
    (``layer.get_weights()[0]``). bias: (units,) or None for a layer without bias. Returns (units,)
    or (n, units). Each output unit j computes ``sum_i x[i] * kernel[i, j] + bias[j]``.
    """
    x = _validate.array(x, "x", ndim=(1, 2))
    w = _validate.array(kernel, "kernel", ndim=2)
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"kernel must have shape (inputs, units) = ({x.shape[-1]}, units) to match x's "
                         f"{x.shape[-1]} features, got kernel of shape {w.shape}")
    out = x @ w
    if bias is not None:
        b = _validate.array(bias, "bias", ndim=1)
        if b.shape != (w.shape[1],):
            raise ValueError(f"bias must have shape ({w.shape[1]},), one per unit, got shape {b.shape}")
        out = out + b
    return activate(out, activation)


def _split_weights(weights) -> list[tuple[np.ndarray, np.ndarray]]:
    """[W1, b1, W2, b2, ...] -> [(W1, b1), (W2, b2), ...], checked for matching shapes."""
    if isinstance(weights, np.ndarray) or not hasattr(weights, "__len__"):
        raise ValueError("weights must be a list [kernel_1, bias_1, kernel_2, bias_2, ...] as returned by "
                         f"model.get_weights(), got {type(weights).__name__}")
    if len(weights) == 0 or len(weights) % 2:
        raise ValueError("weights must be a list of kernel, bias pairs [kernel_1, bias_1, ...], "
                         f"got {len(weights)} arrays")
    pairs = []
    for i in range(0, len(weights), 2):
        w = _validate.array(weights[i], f"weights[{i}] (kernel of layer {i // 2 + 1})", ndim=2)
        b = _validate.array(weights[i + 1], f"weights[{i + 1}] (bias of layer {i // 2 + 1})", ndim=1)
        if b.shape != (w.shape[1],):
            raise ValueError(f"weights[{i + 1}] (bias of layer {i // 2 + 1}) must have shape ({w.shape[1]},), "
                             f"got {b.shape}")
        if pairs and pairs[-1][0].shape[1] != w.shape[0]:
            raise ValueError(f"weights[{i}] (kernel of layer {i // 2 + 1}) must have {pairs[-1][0].shape[1]} rows "
                             f"(the previous layer's units), got shape {w.shape}")
        pairs.append((w, b))
    return pairs


def mlp_forward(x, weights, *, activation: str = "relu", output_activation: str = "softmax") -> np.ndarray:
    """Forward pass of a multilayer perceptron: Dense layers applied in turn.

    x: (n, inputs) or (inputs,). weights: ``[kernel_1, bias_1, ..., kernel_L, bias_L]`` as
    ``model.get_weights()`` returns them. Every layer but the last uses ``activation``; the last
    uses ``output_activation`` (softmax: class probabilities). Returns (n, outputs) or (outputs,).
    """
    _validate.choice(activation, "activation", HIDDEN_ACTIVATIONS)
    _validate.choice(output_activation, "output_activation", ACTIVATIONS)
    pairs = _split_weights(weights)
    a = _validate.array(x, "x", ndim=(1, 2))
    if a.shape[-1] != pairs[0][0].shape[0]:
        raise ValueError(f"x must have {pairs[0][0].shape[0]} features (the first kernel's rows), "
                         f"got shape {a.shape}")
    for i, (w, b) in enumerate(pairs):
        a = dense_forward(a, w, b, output_activation if i == len(pairs) - 1 else activation)
    return a


# --------------------------------------------------------------------------- parameter counting
def dense_param_count(inputs: int, units: int, *, bias: bool = True) -> int:
    """Trainable parameters of one Dense layer: inputs * units weights plus ``units`` biases."""
    return (_validate.positive_int(inputs, "inputs") + int(bool(bias))) * _validate.positive_int(units, "units")


def _sizes(hidden_sizes) -> tuple[int, ...]:
    if isinstance(hidden_sizes, numbers.Integral) and not isinstance(hidden_sizes, bool):
        raise ValueError(f"hidden_sizes must be a list of layer widths such as (100, 100) or () for none, "
                         f"got the single number {hidden_sizes!r}")
    try:
        sizes = tuple(hidden_sizes)
    except TypeError:
        raise ValueError(f"hidden_sizes must be a list of layer widths such as (100, 100), got {hidden_sizes!r}") from None
    return tuple(_validate.positive_int(h, "hidden_sizes") for h in sizes)


def mlp_param_count(input_size: int, hidden_sizes, output_size: int, *, bias: bool = True) -> int:
    """Trainable parameters of an MLP: the sum of (fan_in + 1) * fan_out over its Dense layers.

    ``hidden_sizes`` lists the hidden layers' widths: ``()`` is logistic regression (no hidden
    layer), ``(298,)`` a shallow network, ``(100, 100)`` a deeper one. It matches Keras's
    ``model.count_params()`` for :func:`build_mlp` with the same sizes.
    """
    sizes = (_validate.positive_int(input_size, "input_size"), *_sizes(hidden_sizes),
             _validate.positive_int(output_size, "output_size"))
    return sum(dense_param_count(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))


def width_for_budget(budget: int, depth: int, *, input_size: int = 40, output_size: int = 10) -> int:
    """The hidden width h whose MLP with ``depth`` hidden layers of h units has closest to
    ``budget`` parameters (ties go to the smaller width).

    Used to compare depth against width at a fixed number of parameters: with 40 inputs and 10
    classes, a budget of 15,210 (the published MNIST-1D MLP, two hidden layers of 100) gives
    h = 298 for one hidden layer, 100 for two, 75 for three.
    """
    budget = _validate.positive_int(budget, "budget")
    depth = _validate.positive_int(depth, "depth")
    smallest = mlp_param_count(input_size, (1,) * depth, output_size)
    if budget < smallest:
        raise ValueError(f"budget must be at least {smallest} parameters for {depth} hidden layers "
                         f"(one unit each), got {budget}")
    lo, hi = 1, 1
    while mlp_param_count(input_size, (hi,) * depth, output_size) < budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:                        # the count grows with the width: bisect
        mid = (lo + hi) // 2
        if mlp_param_count(input_size, (mid,) * depth, output_size) < budget:
            lo = mid
        else:
            hi = mid
    below, above = (mlp_param_count(input_size, (h,) * depth, output_size) for h in (lo, hi))
    return lo if budget - below <= above - budget else hi


# --------------------------------------------------------------------------- gradients
def _labels(y, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu" or (n and (y.min() < 0 or y.max() >= num_classes)):
        raise ValueError(f"y must be {n} integer class labels in 0..{num_classes - 1}, got "
                         f"shape {y.shape} and dtype {y.dtype}")
    return y


def _backprop(x, y, weights, activation: str):
    """Forward and backward pass for each example: each layer's input and error d loss_i / d z."""
    _validate.choice(activation, "activation", HIDDEN_ACTIVATIONS)
    pairs = _split_weights(weights)
    x = _validate.array(x, "x", ndim=2)
    if x.shape[1] != pairs[0][0].shape[0]:
        raise ValueError(f"x must have {pairs[0][0].shape[0]} features (the first kernel's rows), got shape {x.shape}")
    n = x.shape[0]
    y = _labels(y, n, pairs[-1][0].shape[1])
    inputs, pre = [], []                      # forward, keeping each layer's input and pre-activation
    a = x
    for w, b in pairs:
        inputs.append(a)
        pre.append(a @ w + b)
        a = activate(pre[-1], activation)
    delta = softmax(pre[-1])
    delta[np.arange(n), y] -= 1.0             # d loss_i / d z at the output: p - onehot(y)
    errors = [delta]
    for i in range(len(pairs) - 1, 0, -1):     # back through the hidden layers
        delta = (delta @ pairs[i][0].T) * activation_derivative(pre[i - 1], activation)
        errors.append(delta)
    return inputs, errors[::-1]


def mlp_gradients(x, y, weights, *, activation: str = "relu") -> list[tuple[np.ndarray, np.ndarray]]:
    """Backpropagation through an MLP with a softmax output and mean cross-entropy loss.

    x: (n, inputs); y: (n,) integer labels; weights as for :func:`mlp_forward`. Returns one
    ``(d_kernel, d_bias)`` pair per layer: the gradient of the loss ``mean_i(-log p_i[y_i])`` with
    respect to that layer's kernel (inputs, units) and bias (units,). The backward pass starts
    from the output's error ``p - onehot(y)``; each layer passes ``error @ kernel.T`` back and
    multiplies it by its activation's derivative f'(z). With sigmoid, f' <= 0.25 shrinks the
    error at every layer: the vanishing gradient.
    """
    inputs, errors = _backprop(x, y, weights, activation)
    n = inputs[0].shape[0]
    return [(a.T @ d / n, d.sum(axis=0) / n) for a, d in zip(inputs, errors)]


def gradient_norms(x, y, weights, *, activation: str = "relu", per_example: bool = True) -> np.ndarray:
    """How big the loss gradient is at each layer's kernel, first layer to last (one norm per layer).

    ``per_example=True`` (the default): the Euclidean (Frobenius) norm of each example's own
    gradient, averaged over the examples, the quantity that Glorot & Bengio's and He et al.'s
    analyses follow from layer to layer. For one example the kernel's gradient is the outer
    product of the layer's input a and its error d, so its norm is ``|a| * |d|``.
    ``per_example=False``: the norm of the gradient of the mean loss over the batch (what one
    step of gradient descent on the whole batch uses); averaging over examples that disagree
    makes it smaller, more so in the early layers.
    """
    inputs, errors = _backprop(x, y, weights, activation)
    if per_example:
        return np.array([np.mean(np.linalg.norm(a, axis=1) * np.linalg.norm(d, axis=1))
                         for a, d in zip(inputs, errors)])
    n = inputs[0].shape[0]
    return np.array([np.linalg.norm(a.T @ d / n) for a, d in zip(inputs, errors)])


def keras_gradient_norms(model, x, y, *, per_example: bool = True) -> np.ndarray:
    """The same measurement as :func:`gradient_norms` for a Keras model, with ``tf.GradientTape``.

    The loss is the sparse categorical cross-entropy of ``model(x)`` (softmax outputs) against the
    integer labels ``y``. With ``per_example=True`` each example's gradient is taken on its own
    (a loop of one-example batches) and the norms averaged; otherwise the gradient of the mean
    loss over the batch. Returns one norm per layer that has a kernel, first to last.
    """
    import tensorflow as tf
    import keras

    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    if not kernels:
        raise ValueError("model must contain Dense layers (layers with a kernel), it has none")
    x = _validate.array(x, "x", ndim=2)
    y = _labels(y, x.shape[0], int(model.output_shape[-1]))
    variables = [k.value for k in kernels]

    @tf.function
    def norms(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, model(xb, training=False)))
        return [tf.norm(g) for g in tape.gradient(loss, variables)]

    xt, yt = tf.constant(x, dtype=variables[0].dtype), tf.constant(y)
    if not per_example:
        return np.array([float(v) for v in norms(xt, yt)], dtype=np.float64)
    per = np.array([[float(v) for v in norms(xt[i:i + 1], yt[i:i + 1])] for i in range(x.shape[0])])
    return per.mean(axis=0)


# --------------------------------------------------------------------------- Keras models
def build_mlp(input_size: int = 40, hidden_sizes=(100, 100), num_classes: int = 10, *,
              activation: str = "relu", kernel_initializer: str = "glorot_uniform",
              optimizer: str = "adam", learning_rate: float = 1e-2, decay_steps: int | None = None,
              compile: bool = True, name: str | None = None):
    """A multilayer perceptron built with ``keras.Sequential``, as the chapter teaches.

    Input (input_size,) -> one Dense(h, activation) per entry of ``hidden_sizes`` ->
    Dense(num_classes, softmax). ``hidden_sizes=()`` gives logistic regression. Keras's default
    initialiser is Glorot uniform (Glorot & Bengio, 2010); use ``"he_normal"``
    (He et al., 2015) with ReLU in deep networks. Compiled (unless ``compile=False``) with
    Adam or plain SGD at ``learning_rate`` (cosine-decayed to 0 over ``decay_steps`` steps when
    given) and sparse categorical cross-entropy (integer labels), reporting accuracy.
    """
    import keras

    input_size = _validate.positive_int(input_size, "input_size")
    sizes = _sizes(hidden_sizes)
    num_classes = _validate.positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    _validate.choice(activation, "activation", HIDDEN_ACTIVATIONS)
    _validate.choice(optimizer, "optimizer", OPTIMIZERS)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not 0 < learning_rate < 10:
        raise ValueError(f"learning_rate must be a positive number below 10, got {learning_rate!r}")
    layers = [keras.Input(shape=(input_size,))]
    layers += [keras.layers.Dense(h, activation=activation, kernel_initializer=kernel_initializer) for h in sizes]
    layers += [keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=kernel_initializer)]
    default = "logistic_regression" if not sizes else f"mlp_{'x'.join(map(str, sizes))}"
    model = keras.Sequential(layers, name=name or default)
    if compile:
        lr = float(learning_rate)
        if decay_steps is not None:
            lr = keras.optimizers.schedules.CosineDecay(lr, _validate.positive_int(decay_steps, "decay_steps"))
        opt = keras.optimizers.Adam(learning_rate=lr) if optimizer == "adam" else keras.optimizers.SGD(learning_rate=lr)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_logistic_regression(input_size: int = 40, num_classes: int = 10, **kwargs):
    """Logistic (softmax) regression: one Dense(num_classes, softmax) layer, no hidden layer.

    The shallowest network of all; the MNIST-1D benchmark's first row. Keyword arguments go to
    :func:`build_mlp`.
    """
    return build_mlp(input_size, (), num_classes, **kwargs)


# --------------------------------------------------------------------------- data and compute
def load_mnist1d_subsets(train_sizes, *, num_test: int = 1000, seed: int = 42):
    """Nested training sets of growing size and one fixed test set, from one MNIST-1D draw.

    Generates ``max(train_sizes) + num_test`` sequences with ``dlcourse.data.load_mnist1d(
    num_samples=...)``; the last ``num_test`` are the test set and the training sets are the first
    n of the rest (already shuffled, so each is a random sample and every smaller set is inside
    every larger one). Returns ``(subsets, X_test, y_test)`` where ``subsets[n] = (X_train, y_train)``.
    """
    from .data import load_mnist1d

    try:
        sizes = sorted({_validate.positive_int(n, "train_sizes") for n in train_sizes})
    except TypeError:
        raise ValueError(f"train_sizes must be a list of positive integers, got {train_sizes!r}") from None
    if not sizes:
        raise ValueError("train_sizes must contain at least one size, got an empty list")
    num_test = _validate.positive_int(num_test, "num_test")
    total = sizes[-1] + num_test
    total += -total % 10                       # make_dataset draws the same number per class
    X_train, X_test, y_train, y_test = load_mnist1d(num_samples=total, train_split=0.5, seed=seed)
    X, y = np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test])
    subsets = {n: (X[:n], y[:n]) for n in sizes}
    return subsets, X[-num_test:], y[-num_test:]


def matmul_gflops(n: int = 1024, *, repeats: int = 3, min_seconds: float = 0.05, threads: int | None = None,
                  dtype=np.float32, seed: int = 0) -> float:
    """This machine's measured throughput multiplying two n x n matrices with NumPy, in GFLOP/s.

    One product costs 2 n^3 floating-point operations (n^3 multiplications and as many
    additions). After one warm-up product, the product is timed at least ``repeats`` times and
    for at least ``min_seconds`` in all; the fastest run is reported (the others were slowed down
    by whatever else the machine was doing). ``threads=1`` measures one core: NumPy's BLAS is
    limited to that many threads during the measurement (with threadpoolctl, which scikit-learn
    installs); ``None`` uses BLAS's default, usually every core.
    """
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threads = _validate.positive_int(threads, "threads")
        with threadpool_limits(limits=threads, user_api="blas"):
            return matmul_gflops(n, repeats=repeats, min_seconds=min_seconds, dtype=dtype, seed=seed)
    n = _validate.positive_int(n, "n")
    repeats = _validate.positive_int(repeats, "repeats")
    if isinstance(min_seconds, bool) or not isinstance(min_seconds, numbers.Real) or not 0 <= min_seconds <= 60:
        raise ValueError(f"min_seconds must be a number of seconds between 0 and 60, got {min_seconds!r}")
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best, runs, started = math.inf, 0, time.perf_counter()
    while runs < repeats or time.perf_counter() - started < min_seconds:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
        runs += 1
    return 2 * n ** 3 / best / 1e9


# --------------------------------------------------------------------------- pictures
def draw_mlp(layer_sizes, *, ax=None, title: str | None = None, max_units: int = 8,
             units_per_circle: int | None = None):
    """Draw a fully connected network as circles (units) and lines (weights), input on the left.

    ``layer_sizes`` lists the units per layer, input first and output last, e.g. ``(40, 298, 10)``.
    Each layer is labelled with its true width. By default a layer is drawn with one circle per
    unit, at most ``max_units``; with ``units_per_circle=k`` one circle stands for about k units
    (at least 2, at most ``max_units`` circles), so wider layers look wider. Returns the axes.
    """
    import matplotlib.pyplot as plt

    sizes = tuple(_validate.positive_int(s, "layer_sizes") for s in layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes must list at least an input and an output layer, got {layer_sizes!r}")
    max_units = _validate.positive_int(max_units, "max_units")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * len(sizes) + 1, 3))
    if units_per_circle is None:
        shown = [min(s, max_units) for s in sizes]
    else:
        per = _validate.positive_int(units_per_circle, "units_per_circle")
        shown = [min(s, max_units, max(2, round(s / per))) for s in sizes]
    ys = [np.linspace(-1, 1, k) * (k - 1) / (max_units - 1 or 1) for k in shown]
    for i in range(len(sizes) - 1):
        for y0 in ys[i]:
            for y1 in ys[i + 1]:
                ax.plot([i, i + 1], [y0, y1], color="0.75", lw=0.5, zorder=1)
    for i, (k, y) in enumerate(zip(sizes, ys)):
        color = "C0" if i == 0 else ("C3" if i == len(sizes) - 1 else "C1")
        ax.scatter(np.full(len(y), i), y, s=60, color=color, edgecolor="k", zorder=2)
        role = "input" if i == 0 else ("output" if i == len(sizes) - 1 else f"hidden {i}")
        ax.text(i, -1.25, f"{role}\n{k} units", ha="center", va="top", fontsize="small")
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(-1.75, 1.15)
    ax.set_xticks(range(len(sizes)), [f"layer {i}" for i in range(len(sizes))])
    ax.set_yticks([])
    ax.set_xlabel("layer (data flows left to right)")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"{len(sizes) - 2} hidden layer(s)")
    return ax
