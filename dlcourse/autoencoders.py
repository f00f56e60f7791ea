"""Autoencoders: a NumPy autoencoder trained by hand, PCA as the baseline, and Keras builders.

Taught in the chapter "Autoencoders". An autoencoder is trained with its input as its own
target: the encoder maps an input x of d numbers to a code of k < d numbers, the decoder maps
the code back to d numbers, and training minimises the reconstruction error between x and the
decoder's output. Layouts follow Keras: a batch of flat inputs is (n, d); a batch of images is
(n, height, width, channels). Weights are (inputs, units), as in ``keras.layers.Dense``.

Contents:

- From scratch (NumPy): :func:`init_shallow_autoencoder`, :func:`shallow_autoencoder_forward`,
  :func:`shallow_autoencoder_gradients` (backpropagation by hand), :func:`train_shallow_autoencoder`.
- The PCA baseline: :class:`PCABaseline` (fit, encode, decode, reconstruct), tested against
  scikit-learn's ``PCA``.
- Corruption for denoising: :func:`gaussian_noise`, :func:`masking_noise`.
- Errors: :func:`reconstruction_mse`, :func:`squared_errors`, :func:`squared_error_per_image`.
- Keras: :func:`build_dense_encoder`, :func:`build_dense_decoder`, :func:`build_conv_encoder`,
  :func:`build_conv_decoder`, :func:`build_autoencoder`, :func:`build_dense_autoencoder`,
  :func:`build_conv_autoencoder`.
- Evaluation and figures: :func:`knn_accuracy`, :func:`plot_autoencoder_diagram`,
  :func:`show_reconstructions`, :func:`plot_codes_2d`, :func:`plot_error_vs_code_size`.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _validate

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
OPTIMIZERS = ("adam", "sgd")
UPSAMPLING = ("transpose", "upsample")


# --------------------------------------------------------------------------- small checks
def _positive_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _non_negative_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _sizes(value, name: str) -> tuple[int, ...]:
    """A tuple of positive ints (possibly empty), e.g. the hidden layer sizes."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    return tuple(_validate.positive_int(v, name) for v in items)


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _pair_of_batches(X, X_hat, names=("X", "X_hat")) -> tuple[np.ndarray, np.ndarray]:
    """Two batches of the same shape, flattened to (n, features)."""
    a = _validate.array(X, names[0])
    b = _validate.array(X_hat, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim < 2:
        raise ValueError(f"{names[0]} must be a batch (n, features) or (n, height, width, channels), got shape {a.shape}")
    return a.reshape(len(a), -1), b.reshape(len(b), -1)


# --------------------------------------------------------------------------- NumPy, from scratch
def _activate(z: np.ndarray, name: str) -> np.ndarray:
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic sigmoid, without overflow


def _activation_slope(z: np.ndarray, out: np.ndarray, name: str) -> np.ndarray:
    """Derivative of the activation at pre-activation ``z`` (``out`` is its value there)."""
    if name == "linear":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1.0 - out ** 2
    return out * (1.0 - out)


def init_shallow_autoencoder(input_dim: int, code_size: int, *, seed=0) -> dict:
    """Weights of a shallow autoencoder: one encoder layer and one decoder layer.

    Glorot-uniform weights (Keras's default) and zero biases. Returns a dict with ``W_enc``
    (input_dim, code_size), ``b_enc`` (code_size,), ``W_dec`` (code_size, input_dim) and
    ``b_dec`` (input_dim,), as float64 arrays.
    """
    d = _validate.positive_int(input_dim, "input_dim")
    k = _validate.positive_int(code_size, "code_size")
    rng = _rng(seed)
    limit = np.sqrt(6.0 / (d + k))
    return {"W_enc": rng.uniform(-limit, limit, (d, k)), "b_enc": np.zeros(k),
            "W_dec": rng.uniform(-limit, limit, (k, d)), "b_dec": np.zeros(d)}


def _check_params(params) -> tuple[int, int]:
    if not isinstance(params, dict) or not {"W_enc", "b_enc", "W_dec", "b_dec"} <= set(params):
        raise ValueError("params must be a dict with W_enc, b_enc, W_dec and b_dec "
                         f"(see init_shallow_autoencoder), got {type(params).__name__}")
    W_enc = _validate.array(params["W_enc"], "params['W_enc']", ndim=2)
    d, k = W_enc.shape
    expected = {"b_enc": (k,), "W_dec": (k, d), "b_dec": (d,)}
    for key, shape in expected.items():
        got = np.shape(params[key])
        if got != shape:
            raise ValueError(f"params[{key!r}] must have shape {shape} to match W_enc {W_enc.shape}, got {got}")
    return d, k


def shallow_autoencoder_forward(X, params: dict, *, code_activation: str = "linear",
                                output_activation: str = "sigmoid") -> tuple[np.ndarray, np.ndarray]:
    """Encode and decode a batch with a shallow autoencoder.

    X: (n, d). Returns ``(codes, X_hat)``: codes = f(X W_enc + b_enc), shape (n, k), and
    X_hat = g(codes W_dec + b_dec), shape (n, d), where f is ``code_activation`` and g is
    ``output_activation``. With both "linear" this is the linear autoencoder.
    """
    d, _ = _check_params(params)
    X = _validate.array(X, "X", ndim=2)
    if X.shape[1] != d:
        raise ValueError(f"X must have {d} features to match params['W_enc'], got shape {X.shape}")
    _validate.choice(code_activation, "code_activation", ACTIVATIONS)
    _validate.choice(output_activation, "output_activation", ACTIVATIONS)
    codes = _activate(X @ params["W_enc"] + params["b_enc"], code_activation)
    return codes, _activate(codes @ params["W_dec"] + params["b_dec"], output_activation)


def shallow_autoencoder_gradients(X, params: dict, target=None, *, code_activation: str = "linear",
                                  output_activation: str = "sigmoid") -> tuple[float, dict]:
    """Reconstruction loss and its gradients, by backpropagation written out by hand.

    The loss is the mean squared error over all n * d entries, ``mean((X_hat - target) ** 2)``
    (Keras's ``"mse"``). ``target`` defaults to ``X``: an autoencoder is its own teacher. A
    denoising autoencoder passes the corrupted batch as ``X`` and the clean batch as ``target``.
    Returns ``(loss, grads)`` with ``grads`` shaped like ``params``.
    """
    X = _validate.array(X, "X", ndim=2)
    T = X if target is None else _validate.array(target, "target", ndim=2)
    if T.shape != X.shape:
        raise ValueError(f"target must have the shape of X {X.shape}, got {T.shape}")
    _check_params(params)
    _validate.choice(code_activation, "code_activation", ACTIVATIONS)
    _validate.choice(output_activation, "output_activation", ACTIVATIONS)
    z = X @ params["W_enc"] + params["b_enc"]
    codes = _activate(z, code_activation)
    a = codes @ params["W_dec"] + params["b_dec"]
    X_hat = _activate(a, output_activation)
    residual = X_hat - T
    loss = float(np.mean(residual ** 2))
    d_a = 2.0 * residual / residual.size * _activation_slope(a, X_hat, output_activation)
    d_z = (d_a @ params["W_dec"].T) * _activation_slope(z, codes, code_activation)
    grads = {"W_dec": codes.T @ d_a, "b_dec": d_a.sum(axis=0),
             "W_enc": X.T @ d_z, "b_enc": d_z.sum(axis=0)}
    return loss, grads


def train_shallow_autoencoder(X, code_size: int, *, target=None, epochs: int = 100, learning_rate: float = 0.1,
                              momentum: float = 0.9, batch_size: int = 32, seed=0,
                              code_activation: str = "linear", output_activation: str = "sigmoid"):
    """Train a shallow autoencoder with mini-batch gradient descent (with momentum), in NumPy.

    Each epoch shuffles the n rows of X (n, d), then for each mini-batch takes the step
    ``v = momentum * v - learning_rate * grad; w = w + v`` (Keras's ``SGD(momentum=...)``).
    ``target`` (default ``X``) is what the decoder should output.
    Returns ``(params, losses)``: the trained weights and the loss on all of X after each epoch.
    """
    X = _validate.array(X, "X", ndim=2)
    T = X if target is None else _validate.array(target, "target", ndim=2)
    if T.shape != X.shape:
        raise ValueError(f"target must have the shape of X {X.shape}, got {T.shape}")
    epochs = _validate.positive_int(epochs, "epochs")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    learning_rate = _positive_number(learning_rate, "learning_rate")
    momentum = _non_negative_number(momentum, "momentum")
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    rng = _rng(seed)
    params = init_shallow_autoencoder(X.shape[1], code_size, seed=rng)
    velocity = {key: np.zeros_like(value) for key, value in params.items()}
    kwargs = {"code_activation": code_activation, "output_activation": output_activation}
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            _, grads = shallow_autoencoder_gradients(X[rows], params, T[rows], **kwargs)
            for key in params:
                velocity[key] = momentum * velocity[key] - learning_rate * grads[key]
                params[key] = params[key] + velocity[key]
        losses.append(reconstruction_mse(T, shallow_autoencoder_forward(X, params, **kwargs)[1]))
    return params, np.array(losses)


# --------------------------------------------------------------------------- PCA, the baseline
class PCABaseline:
    """Principal component analysis as an autoencoder: encode = project, decode = map back.

    ``fit(X)`` centres X (n, d) and takes its singular value decomposition; the first
    ``n_components`` right singular vectors are the principal directions (rows of
    ``components_``, shape (k, d), orthonormal), with scikit-learn's sign convention (the
    largest entry of each direction in absolute value is positive). ``encode`` gives the
    (n, k) coordinates, ``decode`` maps them back to (n, d), ``reconstruct`` does both. Among
    all k-dimensional affine subspaces, PCA's gives the smallest squared reconstruction error
    on the training data (Eckart-Young).
    """

    def __init__(self, n_components: int):
        self.n_components = _validate.positive_int(n_components, "n_components")

    def fit(self, X) -> "PCABaseline":
        X = _validate.array(X, "X", ndim=2)
        n, d = X.shape
        if self.n_components > min(n, d):
            raise ValueError(f"n_components must be at most min(n_samples, n_features) = {min(n, d)}, "
                             f"got {self.n_components}")
        self.mean_ = X.mean(axis=0)
        _, s, Vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        biggest = np.argmax(np.abs(Vt), axis=1)
        Vt = Vt * np.sign(Vt[np.arange(len(Vt)), biggest])[:, None]
        self.components_ = Vt[:self.n_components]
        variances = s ** 2 / max(n - 1, 1)
        self.explained_variance_ = variances[:self.n_components]
        self.explained_variance_ratio_ = self.explained_variance_ / variances.sum()
        return self

    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise ValueError("this PCABaseline is not fitted yet: call fit(X_train) first")

    def encode(self, X) -> np.ndarray:
        """(n, d) -> (n, k): coordinates along the principal directions, ``(X - mean) V^T``."""
        self._check_fitted()
        X = _validate.array(X, "X", ndim=2)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X must have {self.mean_.shape[0]} features, as in fit, got shape {X.shape}")
        return (X - self.mean_) @ self.components_.T

    def decode(self, codes) -> np.ndarray:
        """(n, k) -> (n, d): ``codes V + mean``."""
        self._check_fitted()
        codes = _validate.array(codes, "codes", ndim=2)
        if codes.shape[1] != self.n_components:
            raise ValueError(f"codes must have {self.n_components} columns, got shape {codes.shape}")
        return codes @ self.components_ + self.mean_

    def reconstruct(self, X) -> np.ndarray:
        """Project X (n, d) onto the principal subspace: ``decode(encode(X))``."""
        return self.decode(self.encode(X))


# --------------------------------------------------------------------------- noise
def gaussian_noise(X, std: float, *, seed=0, clip: bool = True) -> np.ndarray:
    """Additive Gaussian noise: X + N(0, std^2) independently per entry, as float32.

    With ``clip=True`` the result is clipped to [0, 1] so that a noisy image is still an image.
    ``seed`` is an int or a ``numpy.random.Generator``; X keeps its shape.
    """
    X = _validate.array(X, "X")
    std = _non_negative_number(std, "std")
    noisy = X + _rng(seed).normal(0.0, std, size=X.shape)
    if clip:
        noisy = np.clip(noisy, 0.0, 1.0)
    return noisy.astype(np.float32)


def masking_noise(X, fraction: float, *, seed=0) -> np.ndarray:
    """Masking noise (Vincent et al., 2008): a random ``fraction`` of the entries set to 0.

    Each entry is zeroed independently with probability ``fraction`` (no rescaling, unlike
    dropout). Returns float32 of X's shape.
    """
    X = _validate.array(X, "X")
    fraction = _validate.fraction(fraction, "fraction", low_open=False, high_open=True)
    keep = _rng(seed).random(X.shape) >= fraction
    return (X * keep).astype(np.float32)


# --------------------------------------------------------------------------- errors
def reconstruction_mse(X, X_hat) -> float:
    """Mean squared error per entry (per pixel): ``mean((X - X_hat) ** 2)`` over all entries.

    X and X_hat: the same shape, (n, d) or (n, height, width, channels). This is Keras's
    ``"mse"`` loss averaged over the batch, and the number the chapter's tables report.
    """
    a, b = _pair_of_batches(X, X_hat)
    return float(np.mean((a - b) ** 2))


def squared_errors(X, X_hat) -> np.ndarray:
    """Squared error of each sample, summed over its entries: shape (n,)."""
    a, b = _pair_of_batches(X, X_hat)
    return np.sum((a - b) ** 2, axis=1)


def squared_error_per_image(X, X_hat) -> float:
    """Average over images of the squared error summed over pixels.

    The measure of Hinton & Salakhutdinov (2006); equal to ``reconstruction_mse * pixels``.
    """
    return float(np.mean(squared_errors(X, X_hat)))


# --------------------------------------------------------------------------- Keras builders
def build_dense_encoder(input_dim: int = 64, code_size: int = 2, *, hidden=(128, 64),
                        activation: str = "relu", name: str = "encoder"):
    """Dense encoder: Input(input_dim) -> Dense(h, activation) for h in ``hidden`` -> Dense(code_size).

    The code layer is linear (no activation), so codes can take any value. ``hidden=()``
    with ``activation="linear"`` gives the linear encoder. Output shape (n, code_size).
    """
    import keras

    input_dim = _validate.positive_int(input_dim, "input_dim")
    code_size = _validate.positive_int(code_size, "code_size")
    hidden = _sizes(hidden, "hidden")
    _validate.choice(activation, "activation", ACTIVATIONS)
    layers = [keras.Input(shape=(input_dim,))]
    layers += [keras.layers.Dense(h, activation=activation) for h in hidden]
    layers += [keras.layers.Dense(code_size, name="code")]
    return keras.Sequential(layers, name=name)


def build_dense_decoder(code_size: int = 2, output_dim: int = 64, *, hidden=(64, 128), activation: str = "relu",
                        output_activation: str = "sigmoid", name: str = "decoder"):
    """Dense decoder: Input(code_size) -> Dense(h, activation) for h in ``hidden`` -> Dense(output_dim).

    ``output_activation="sigmoid"`` keeps every output in (0, 1), the range of the pixels.
    Output shape (n, output_dim).
    """
    import keras

    code_size = _validate.positive_int(code_size, "code_size")
    output_dim = _validate.positive_int(output_dim, "output_dim")
    hidden = _sizes(hidden, "hidden")
    _validate.choice(activation, "activation", ACTIVATIONS)
    _validate.choice(output_activation, "output_activation", ACTIVATIONS)
    layers = [keras.Input(shape=(code_size,))]
    layers += [keras.layers.Dense(h, activation=activation) for h in hidden]
    layers += [keras.layers.Dense(output_dim, activation=output_activation, name="reconstruction")]
    return keras.Sequential(layers, name=name)


def _image_shape(value, name: str) -> tuple[int, int, int]:
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be (height, width, channels), got {value!r}") from None
    if len(shape) != 3:
        raise ValueError(f"{name} must be (height, width, channels), got {value!r}")
    return tuple(_validate.positive_int(v, name) for v in shape)


def build_conv_encoder(input_shape=(8, 8, 1), code_size: int = 10, *, filters=(16, 32),
                       kernel_size: int = 3, name: str = "conv_encoder"):
    """Convolutional encoder for small images.

    Input (H, W, C) -> [Conv2D(f, kernel_size, 'same', ReLU) -> MaxPooling2D(2)] for f in
    ``filters`` -> Flatten -> Dense(code_size). Each block halves the height and width, so
    H and W must be divisible by 2 ** len(filters). Output shape (n, code_size).
    """
    import keras

    h, w, c = _image_shape(input_shape, "input_shape")
    code_size = _validate.positive_int(code_size, "code_size")
    filters = _sizes(filters, "filters")
    if not filters:
        raise ValueError("filters must name at least one convolution block, got ()")
    kernel_size = _validate.pair(kernel_size, "kernel_size")
    factor = 2 ** len(filters)
    if h % factor or w % factor:
        raise ValueError(f"input_shape {h} x {w} must be divisible by 2 ** len(filters) = {factor}")
    layers = [keras.Input(shape=(h, w, c))]
    for f in filters:
        layers += [keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(code_size, name="code")]
    return keras.Sequential(layers, name=name)


def build_conv_decoder(code_size: int = 10, output_shape=(8, 8, 1), *, filters=(32, 16), kernel_size: int = 3,
                       upsampling: str = "transpose", name: str = "conv_decoder"):
    """Convolutional decoder, the mirror of :func:`build_conv_encoder`.

    Input (code_size) -> Dense(h * w * filters[0], ReLU) -> Reshape((h, w, filters[0])) with
    h = H / 2 ** len(filters) -> for f in ``filters``: Conv2DTranspose(f, kernel_size, strides=2,
    'same', ReLU) (``upsampling="transpose"``) or UpSampling2D(2) -> Conv2D(f, kernel_size, 'same',
    ReLU) (``upsampling="upsample"``) -> Conv2D(C, kernel_size, 'same', sigmoid).
    Output shape (n, H, W, C), values in (0, 1).
    """
    import keras

    code_size = _validate.positive_int(code_size, "code_size")
    H, W, C = _image_shape(output_shape, "output_shape")
    filters = _sizes(filters, "filters")
    if not filters:
        raise ValueError("filters must name at least one upsampling block, got ()")
    kernel_size = _validate.pair(kernel_size, "kernel_size")
    _validate.choice(upsampling, "upsampling", UPSAMPLING)
    factor = 2 ** len(filters)
    if H % factor or W % factor:
        raise ValueError(f"output_shape {H} x {W} must be divisible by 2 ** len(filters) = {factor}")
    h, w = H // factor, W // factor
    layers = [keras.Input(shape=(code_size,)),
              keras.layers.Dense(h * w * filters[0], activation="relu"),
              keras.layers.Reshape((h, w, filters[0]))]
    for f in filters:
        if upsampling == "transpose":
            layers.append(keras.layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", activation="relu"))
        else:
            layers += [keras.layers.UpSampling2D(2),
                       keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu")]
    layers.append(keras.layers.Conv2D(C, kernel_size, padding="same", activation="sigmoid", name="reconstruction"))
    return keras.Sequential(layers, name=name)


def build_autoencoder(encoder, decoder, *, optimizer: str = "adam", learning_rate: float = 1e-3,
                      compile: bool = True, name: str = "autoencoder"):
    """Chain an encoder and a decoder into one model: x -> decoder(encoder(x)).

    The encoder's output must have the decoder's input shape and the decoder's output the
    encoder's input shape. Compiled with mean squared error and Adam (or SGD with momentum 0.9,
    ``optimizer="sgd"``) at ``learning_rate``, unless ``compile=False``. Train it with
    ``model.fit(X, X)``: the input is the target. The encoder and decoder stay usable on their
    own and share their weights with the autoencoder.
    """
    import keras

    for what, model in (("encoder", encoder), ("decoder", decoder)):
        if not isinstance(model, keras.Model):
            raise ValueError(f"{what} must be a Keras model, got {type(model).__name__}")
    code_shape, decoder_in = tuple(encoder.output_shape[1:]), tuple(decoder.input_shape[1:])
    if code_shape != decoder_in:
        raise ValueError(f"the encoder outputs codes of shape {code_shape} but the decoder expects {decoder_in}")
    x_shape, out_shape = tuple(encoder.input_shape[1:]), tuple(decoder.output_shape[1:])
    if x_shape != out_shape:
        raise ValueError(f"the decoder outputs shape {out_shape} but the encoder's input has shape {x_shape}")
    _validate.choice(optimizer, "optimizer", OPTIMIZERS)
    learning_rate = _positive_number(learning_rate, "learning_rate")
    model = keras.Sequential([keras.Input(shape=x_shape), encoder, decoder], name=name)
    if compile:
        opt = (keras.optimizers.Adam(learning_rate=learning_rate) if optimizer == "adam"
               else keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9))
        model.compile(optimizer=opt, loss="mse")
    return model


def build_dense_autoencoder(input_dim: int = 64, code_size: int = 2, *, hidden=(128, 64), linear: bool = False,
                            learning_rate: float | None = None, compile: bool = True):
    """The chapter's dense autoencoder; returns ``(autoencoder, encoder, decoder)``.

    Nonlinear (default): input_dim -> hidden (ReLU) -> code_size (linear) -> reversed hidden
    (ReLU) -> input_dim (sigmoid), trained with Adam (learning rate 3e-3 unless given).
    ``linear=True``: input_dim -> code_size -> input_dim with no hidden layers and no
    activations at all, trained with SGD with momentum (learning rate 0.1 unless given): the
    linear autoencoder, whose best reconstruction is PCA's.
    """
    if linear:
        encoder = build_dense_encoder(input_dim, code_size, hidden=(), activation="linear")
        decoder = build_dense_decoder(code_size, input_dim, hidden=(), activation="linear", output_activation="linear")
        optimizer, default_lr = "sgd", 0.1
    else:
        hidden = _sizes(hidden, "hidden")
        encoder = build_dense_encoder(input_dim, code_size, hidden=hidden)
        decoder = build_dense_decoder(code_size, input_dim, hidden=hidden[::-1])
        optimizer, default_lr = "adam", 3e-3
    lr = default_lr if learning_rate is None else learning_rate
    model = build_autoencoder(encoder, decoder, optimizer=optimizer, learning_rate=lr, compile=compile,
                              name="linear_autoencoder" if linear else "dense_autoencoder")
    return model, encoder, decoder


def build_conv_autoencoder(input_shape=(8, 8, 1), code_size: int = 10, *, filters=(16, 32),
                           upsampling: str = "transpose", learning_rate: float = 3e-3, compile: bool = True):
    """The chapter's convolutional autoencoder; returns ``(autoencoder, encoder, decoder)``.

    :func:`build_conv_encoder` with ``filters`` and :func:`build_conv_decoder` with the filters
    reversed, trained with Adam at ``learning_rate``.
    """
    filters = _sizes(filters, "filters")
    encoder = build_conv_encoder(input_shape, code_size, filters=filters)
    decoder = build_conv_decoder(code_size, input_shape, filters=filters[::-1], upsampling=upsampling)
    model = build_autoencoder(encoder, decoder, learning_rate=learning_rate, compile=compile,
                              name="conv_autoencoder")
    return model, encoder, decoder


# --------------------------------------------------------------------------- evaluation
def knn_accuracy(codes_train, y_train, codes_test, y_test, *, k: int = 5) -> float:
    """Test accuracy of a k-nearest-neighbour classifier fitted on the training codes.

    A simple measure of how well a code separates the classes: if neighbours in the code
    space share a label, the accuracy is high. Codes: (n, code_size); labels: (n,).
    """
    from sklearn.neighbors import KNeighborsClassifier

    Z_train = _validate.array(codes_train, "codes_train", ndim=2)
    Z_test = _validate.array(codes_test, "codes_test", ndim=2)
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test)
    if len(y_train) != len(Z_train) or len(y_test) != len(Z_test):
        raise ValueError(f"labels must have one entry per code: codes_train {Z_train.shape} with y_train "
                         f"{y_train.shape}, codes_test {Z_test.shape} with y_test {y_test.shape}")
    if Z_train.shape[1] != Z_test.shape[1]:
        raise ValueError(f"codes_train and codes_test must have the same code size, got {Z_train.shape[1]} "
                         f"and {Z_test.shape[1]}")
    k = _validate.positive_int(k, "k")
    classifier = KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train)
    return float(np.mean(classifier.predict(Z_test) == y_test))


# --------------------------------------------------------------------------- figures
def plot_autoencoder_diagram(layer_sizes=(64, 128, 64, 2, 64, 128, 64), *, ax=None,
                             title: str = "An autoencoder: encoder, code, decoder"):
    """Draw an autoencoder as bars whose heights are the layers' widths (units).

    ``layer_sizes`` runs from the input to the output; the smallest layer is drawn as the code
    (the bottleneck). Encoder connections are shaded blue, decoder ones orange.
    """
    import matplotlib.pyplot as plt

    sizes = _sizes(layer_sizes, "layer_sizes")
    if len(sizes) < 3:
        raise ValueError(f"layer_sizes needs at least an input, a code and an output, got {sizes!r}")
    code = int(np.argmin(sizes))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.25
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        color = "C0" if i < code else "C1"
        ax.fill([i + width / 2, i + 1 - width / 2, i + 1 - width / 2, i + width / 2],
                [-a / 2, -b / 2, b / 2, a / 2], color=color, alpha=0.25, lw=0)
    for i, s in enumerate(sizes):
        color = "C3" if i == code else "0.35"
        ax.add_patch(plt.Rectangle((i - width / 2, -s / 2), width, s, color=color))
        role = "input" if i == 0 else "output" if i == len(sizes) - 1 else "code" if i == code else "hidden"
        ax.annotate(f"{s}\n{role}", (i, s / 2), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize="small")
    top = max(sizes)
    ax.text(code / 2, -top / 2 - 0.12 * top, "encoder", ha="center", color="C0")
    ax.text(code + (len(sizes) - 1 - code) / 2, -top / 2 - 0.12 * top, "decoder", ha="center", color="C1")
    ax.set_xlim(-0.6, len(sizes) - 0.4)
    ax.set_ylim(-top / 2 - 0.2 * top, top / 2 + 0.3 * top)
    ax.set_xticks(range(len(sizes)))
    ax.set_xlabel("layer (input on the left, reconstruction on the right)")
    ax.set_ylabel("units in the layer (bar height)")
    ax.set_title(title)
    return ax


def show_reconstructions(rows: dict, *, n: int = 8, image_shape=(8, 8), suptitle: str | None = None,
                         size: float = 1.1):
    """Rows of images, one row per entry of ``rows`` ({label: batch}), the first ``n`` of each.

    Each batch is (m, pixels) or (m, height, width[, channels]); flat rows are reshaped to
    ``image_shape``. The row's label is the title of its first image. Drawn with
    :func:`dlcourse.plotting.show_images` on a common grey scale from 0 to 1.
    """
    from .plotting import show_images

    if not isinstance(rows, dict) or not rows:
        raise ValueError(f"rows must be a non-empty dict {{label: images}}, got {type(rows).__name__}")
    n = _validate.positive_int(n, "n")
    shape = tuple(_validate.positive_int(v, "image_shape") for v in image_shape)
    images, titles = [], []
    for label, batch in rows.items():
        batch = _validate.array(batch, f"rows[{label!r}]")
        if len(batch) < n:
            raise ValueError(f"rows[{label!r}] has {len(batch)} images, fewer than n = {n}")
        for j in range(n):
            images.append(batch[j].reshape(shape))
            titles.append(str(label) if j == 0 else "")
    return show_images(images, titles, ncols=n, suptitle=suptitle, size=size, vmin=0, vmax=1)


def plot_codes_2d(codes, labels, *, ax=None, title: str = "Two-dimensional codes",
                  xlabel: str = "code 1", ylabel: str = "code 2"):
    """Scatter plot of 2-D codes (n, 2), coloured by class label (n,), with a legend."""
    import matplotlib.pyplot as plt

    Z = _validate.array(codes, "codes", ndim=2)
    if Z.shape[1] != 2:
        raise ValueError(f"codes must have 2 columns to be drawn in the plane, got shape {Z.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(Z),):
        raise ValueError(f"labels must have shape ({len(Z)},), one per code, got {labels.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(Z[sel, 0], Z[sel, 1], s=8, color=cmap(i % cmap.N), label=str(c), alpha=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title="class", fontsize="x-small", markerscale=2, loc="best", ncols=2)
    return ax


def plot_error_vs_code_size(code_sizes, errors: dict, *, ax=None,
                            title: str = "Reconstruction error against code size",
                            ylabel: str = "test MSE per pixel"):
    """One line per model: ``errors = {label: [error for each code size]}`` against ``code_sizes``."""
    import matplotlib.pyplot as plt

    sizes = _sizes(code_sizes, "code_sizes")
    if not isinstance(errors, dict) or not errors:
        raise ValueError(f"errors must be a non-empty dict {{label: errors}}, got {type(errors).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    markers = "osd^v<>"
    for i, (label, values) in enumerate(errors.items()):
        values = _validate.array(values, f"errors[{label!r}]", ndim=1)
        if len(values) != len(sizes):
            raise ValueError(f"errors[{label!r}] has {len(values)} values for {len(sizes)} code sizes")
        ax.plot(sizes, values, marker=markers[i % len(markers)], label=label)
    ax.set_xticks(sizes)
    ax.set_xlabel("code size k (numbers per image)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
