"""Recurrent neural networks and LSTMs from scratch in NumPy, sequence data, and the chapter's models.

Taught in the chapter "Recurrent neural networks and LSTMs". Layouts follow Keras: a sequence is
(time, features), a batch is (n, time, features); a layer's weights are what
``layer.get_weights()`` returns, so ``rnn_forward(X, *keras_layer.get_weights())`` runs the
same network in NumPy:

- SimpleRNN: ``kernel`` (features, units), ``recurrent_kernel`` (units, units), ``bias`` (units,).
- LSTM: ``kernel`` (features, 4 units), ``recurrent_kernel`` (units, 4 units), ``bias`` (4 units,);
  the four blocks of columns are the gates in Keras's order: input i, forget f, candidate
  cell g, output o.
- GRU (Keras's default ``reset_after=True``): ``kernel`` (features, 3 units),
  ``recurrent_kernel`` (units, 3 units), ``bias`` (2, 3 units) (input bias, recurrent bias);
  blocks in the order update z, reset r, candidate h.

Sequence data made in code (nothing is downloaded): the adding problem, DNA with a planted
motif, synthetic price series, and the Zen of Python for a character-level model.
"""
from __future__ import annotations

import codecs
import contextlib
import io
import numbers

import numpy as np

from . import _validate

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
RECURRENT_KINDS = ("simple_rnn", "lstm", "gru")
DNA_ALPHABET = "ACGT"
SERIES_KINDS = ("random_walk", "seasonal")
ADDING_BASELINE_MSE = 1.0 / 6.0   # variance of the sum of two independent U(0, 1) numbers


# --------------------------------------------------------------------------- helpers
def _seed(seed, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def sigmoid(x) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), elementwise and without overflow."""
    x = np.asarray(x, dtype=float)
    return np.exp(-np.logaddexp(0.0, -x))


def _activation(name: str):
    _validate.choice(name, "activation", ACTIVATIONS)
    return {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "sigmoid": sigmoid,
            "linear": lambda z: z}[name]


def _weights(kernel, recurrent_kernel, bias, gates: int, *, bias_rows: int = 1):
    """Check the shapes of a recurrent layer's weights; return them as float arrays and ``units``."""
    W = _validate.array(kernel, "kernel", ndim=2)
    U = _validate.array(recurrent_kernel, "recurrent_kernel", ndim=2)
    units = U.shape[0]
    if U.shape != (units, gates * units):
        want = f"(units, {gates} * units)" if gates > 1 else "(units, units)"
        raise ValueError(f"recurrent_kernel must have shape {want}, got {U.shape}")
    if W.shape[1] != gates * units:
        raise ValueError(f"kernel must have shape (features, {gates * units}) to match recurrent_kernel "
                         f"{U.shape}, got {W.shape}")
    if bias is None:
        b = np.zeros((gates * units,) if bias_rows == 1 else (bias_rows, gates * units))
    else:
        b = _validate.array(bias, "bias", ndim=1 if bias_rows == 1 else 2)
        want = (gates * units,) if bias_rows == 1 else (bias_rows, gates * units)
        if b.shape != want:
            raise ValueError(f"bias must have shape {want}, got {b.shape}")
    return W, U, b, units


def _batch_vector(v, name: str, size: int, batch: int | None):
    """A (size,) or (n, size) array, returned as (n, size) and whether it was a single vector."""
    arr = _validate.array(v, name, ndim=(1, 2))
    if arr.shape[-1] != size:
        raise ValueError(f"{name} must have {size} values in its last axis, got shape {arr.shape}")
    if batch is not None and arr.ndim == 2 and arr.shape[0] != batch:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the batch has {batch} sequences")
    return arr


def _sequences(X, features: int):
    """(T, d) or (n, T, d) -> (n, T, d) and whether it was a single sequence."""
    Xa = _validate.array(X, "X", ndim=(2, 3))
    single = Xa.ndim == 2
    Xa = Xa[None] if single else Xa
    if Xa.shape[-1] != features:
        raise ValueError(f"X has {Xa.shape[-1]} features per time step but kernel expects {features}")
    if Xa.shape[1] < 1:
        raise ValueError("X must have at least one time step")
    return Xa, single


def _initial_state(h0, name: str, n: int, units: int) -> np.ndarray:
    if h0 is None:
        return np.zeros((n, units))
    h = _batch_vector(h0, name, units, n)
    return np.broadcast_to(h, (n, units)).astype(float)


# --------------------------------------------------------------------------- SimpleRNN
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias=None, *, activation: str = "tanh") -> np.ndarray:
    """One time step of a simple (Elman) recurrent layer, as ``keras.layers.SimpleRNN`` computes it.

    ``h_t = activation(x_t @ kernel + h_prev @ recurrent_kernel + bias)``.
    x_t: (features,) or (n, features); h_prev: (units,) or (n, units). Returns h_t with the
    batch shape of the inputs. The new state is also the layer's output at step t.
    """
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 1)
    x = _batch_vector(x_t, "x_t", W.shape[0], None)
    h = _batch_vector(h_prev, "h_prev", units, x.shape[0] if x.ndim == 2 else None)
    return _activation(activation)(x @ W + h @ U + b)


def rnn_forward(X, kernel, recurrent_kernel, bias=None, *, h0=None, activation: str = "tanh",
                return_sequences: bool = False) -> np.ndarray:
    """A SimpleRNN unrolled over time: :func:`rnn_step` applied at t = 0, 1, ..., T-1.

    X: (T, features) or (n, T, features). The state starts at ``h0`` (zeros by default) and each
    step's state is fed into the next. Returns the last state, (units,) or (n, units), or with
    ``return_sequences=True`` every state, (T, units) or (n, T, units), like Keras.
    """
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 1)
    Xa, single = _sequences(X, W.shape[0])
    f = _activation(activation)
    h = _initial_state(h0, "h0", Xa.shape[0], units)
    states = []
    for t in range(Xa.shape[1]):
        h = f(Xa[:, t] @ W + h @ U + b)
        states.append(h)
    out = np.stack(states, axis=1) if return_sequences else h
    return out[0] if single else out


# --------------------------------------------------------------------------- LSTM
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias=None):
    """One time step of an LSTM cell, as ``keras.layers.LSTM`` computes it. Returns ``(h_t, c_t)``.

    ``z = x_t @ kernel + h_prev @ recurrent_kernel + bias`` is split into four blocks of ``units``
    columns (Keras's order i, f, g, o)::

        i = sigmoid(z_i)   input gate: how much of the candidate to write
        f = sigmoid(z_f)   forget gate: how much of the old cell state to keep
        g = tanh(z_g)      candidate values
        o = sigmoid(z_o)   output gate: how much of the cell to show
        c_t = f * c_prev + i * g
        h_t = o * tanh(c_t)

    x_t: (features,) or (n, features); h_prev and c_prev: (units,) or (n, units).
    """
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 4)
    x = _batch_vector(x_t, "x_t", W.shape[0], None)
    n = x.shape[0] if x.ndim == 2 else None
    h = _batch_vector(h_prev, "h_prev", units, n)
    c = _batch_vector(c_prev, "c_prev", units, n)
    return _lstm_update(x @ W + h @ U + b, c, units)


def _lstm_update(z, c_prev, units: int):
    i = sigmoid(z[..., :units])
    f = sigmoid(z[..., units:2 * units])
    g = np.tanh(z[..., 2 * units:3 * units])
    o = sigmoid(z[..., 3 * units:])
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def lstm_forward(X, kernel, recurrent_kernel, bias=None, *, h0=None, c0=None,
                 return_sequences: bool = False, return_state: bool = False):
    """An LSTM unrolled over time: :func:`lstm_step` at t = 0, ..., T-1, carrying (h, c) along.

    X: (T, features) or (n, T, features). Returns the last output h_T, (units,) or (n, units);
    every output, (T, units) or (n, T, units), with ``return_sequences=True``; and with
    ``return_state=True`` the tuple ``(output, h_T, c_T)``, like Keras.
    """
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 4)
    Xa, single = _sequences(X, W.shape[0])
    n = Xa.shape[0]
    h, c = _initial_state(h0, "h0", n, units), _initial_state(c0, "c0", n, units)
    outputs = []
    for t in range(Xa.shape[1]):
        h, c = _lstm_update(Xa[:, t] @ W + h @ U + b, c, units)
        outputs.append(h)
    out = np.stack(outputs, axis=1) if return_sequences else h
    if single:
        out, h, c = out[0], h[0], c[0]
    return (out, h, c) if return_state else out


# --------------------------------------------------------------------------- GRU
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias=None) -> np.ndarray:
    """One time step of a GRU, as ``keras.layers.GRU`` (default ``reset_after=True``) computes it.

    With ``a = x_t @ kernel + bias[0]`` and ``r_ = h_prev @ recurrent_kernel + bias[1]``, each split
    into blocks (z, r, h)::

        z = sigmoid(a_z + r_z)             update gate
        r = sigmoid(a_r + r_r)             reset gate
        g = tanh(a_h + r * r_h)            candidate state
        h_t = z * h_prev + (1 - z) * g

    bias: (2, 3 units). x_t: (features,) or (n, features); h_prev: (units,) or (n, units).
    """
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 3, bias_rows=2)
    x = _batch_vector(x_t, "x_t", W.shape[0], None)
    h = _batch_vector(h_prev, "h_prev", units, x.shape[0] if x.ndim == 2 else None)
    return _gru_update(x @ W + b[0], h, U, b[1], units)


def _gru_update(a, h, U, b_rec, units: int):
    r_ = h @ U + b_rec
    z = sigmoid(a[..., :units] + r_[..., :units])
    r = sigmoid(a[..., units:2 * units] + r_[..., units:2 * units])
    g = np.tanh(a[..., 2 * units:] + r * r_[..., 2 * units:])
    return z * h + (1 - z) * g


def gru_forward(X, kernel, recurrent_kernel, bias=None, *, h0=None, return_sequences: bool = False):
    """A GRU unrolled over time (:func:`gru_step` at every step). Shapes as in :func:`rnn_forward`."""
    W, U, b, units = _weights(kernel, recurrent_kernel, bias, 3, bias_rows=2)
    Xa, single = _sequences(X, W.shape[0])
    h = _initial_state(h0, "h0", Xa.shape[0], units)
    states = []
    for t in range(Xa.shape[1]):
        h = _gru_update(Xa[:, t] @ W + b[0], h, U, b[1], units)
        states.append(h)
    out = np.stack(states, axis=1) if return_sequences else h
    return out[0] if single else out


def recurrent_param_count(kind: str, features: int, units: int) -> int:
    """Trainable parameters of a Keras recurrent layer.

    SimpleRNN: units * (features + units + 1); LSTM: 4 times that (one block per gate);
    GRU (reset_after=True): 3 * units * (features + units + 2) (two bias vectors).
    """
    _validate.choice(kind, "kind", RECURRENT_KINDS)
    d = _validate.positive_int(features, "features")
    u = _validate.positive_int(units, "units")
    if kind == "gru":
        return 3 * u * (d + u + 2)
    return (4 if kind == "lstm" else 1) * u * (d + u + 1)


# --------------------------------------------------------------------------- data
def adding_problem(num_samples: int, length: int, *, seed: int = 0):
    """The adding problem (Hochreiter & Schmidhuber 1997, in the form of Arjovsky et al. 2016).

    Each sequence has ``length`` steps of two features: a random number in [0, 1), and a marker
    that is 1 at exactly two steps (one in the first half, one in the second) and 0 elsewhere.
    The target is the sum of the two marked numbers. Predicting the constant 1 (the mean of the
    target) gives a mean squared error of 1/6 ~ 0.167 (:data:`ADDING_BASELINE_MSE`).

    Returns ``X`` (num_samples, length, 2) and ``y`` (num_samples,), both float32.
    """
    n = _validate.positive_int(num_samples, "num_samples")
    T = _validate.positive_int(length, "length")
    if T < 2:
        raise ValueError(f"length must be at least 2 (one marker in each half), got {T}")
    rng = np.random.default_rng(_seed(seed))
    values = rng.uniform(0.0, 1.0, size=(n, T))
    half = T // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    markers = np.zeros((n, T))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    X = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1).astype(np.float32)
    return X, y


def dna_sequences(num_samples: int, length: int = 60, *, motif: str = "TATAAT",
                  with_motif: float = 0.5, seed: int = 0):
    """Random DNA strings, some of them carrying a planted motif at a random position.

    Bases are drawn uniformly from A, C, G, T. A fraction ``with_motif`` of the sequences gets
    ``motif`` (default TATAAT, the bacterial -10 promoter box) written at a random position
    (label 1); the others are redrawn until they do not contain it anywhere (label 0).

    Returns ``(sequences, y)``: a list of ``num_samples`` strings and an int64 array of labels.
    Use :func:`one_hot_dna` to feed them to a network.
    """
    n = _validate.positive_int(num_samples, "num_samples")
    T = _validate.positive_int(length, "length")
    if not isinstance(motif, str) or not motif or set(motif) - set(DNA_ALPHABET):
        raise ValueError(f"motif must be a non-empty string of the letters A, C, G, T, got {motif!r}")
    if len(motif) > T:
        raise ValueError(f"motif ({len(motif)} bases) is longer than length {T}")
    frac = _validate.fraction(with_motif, "with_motif", low_open=False, high_open=False)
    rng = np.random.default_rng(_seed(seed))
    letters = np.array(list(DNA_ALPHABET))
    y = (rng.permutation(n) < round(frac * n)).astype(np.int64)
    sequences = []
    for label in y:
        while True:
            s = "".join(letters[rng.integers(0, 4, size=T)])
            if label:
                at = int(rng.integers(0, T - len(motif) + 1))
                s = s[:at] + motif + s[at + len(motif):]
                break
            if motif not in s:
                break
        sequences.append(s)
    return sequences, y


def one_hot_dna(sequences) -> np.ndarray:
    """One-hot encode DNA strings of equal length: (n, length, 4) float32, channels A, C, G, T."""
    if isinstance(sequences, str):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("sequences must contain at least one string")
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequences must all have the same length, got lengths {sorted(lengths)}")
    lookup = {ch: i for i, ch in enumerate(DNA_ALPHABET)}
    try:
        ids = np.array([[lookup[ch] for ch in s] for s in sequences])
    except KeyError as e:
        raise ValueError(f"sequences may only contain the letters A, C, G, T, got {e.args[0]!r}") from None
    return np.eye(4, dtype=np.float32)[ids]


def synthetic_series(length: int, kind: str = "random_walk", *, seed: int = 0, start: float = 100.0,
                     volatility: float = 1.0, period: int = 20) -> np.ndarray:
    """A synthetic price-like series of ``length`` values (float64).

    - ``"random_walk"``: ``start`` plus cumulative Gaussian steps of standard deviation
      ``volatility``. Tomorrow's change is independent of the past, so no forecaster can beat
      "tomorrow = today" on average: the textbook model of an efficient market.
    - ``"seasonal"``: ``start`` plus a sine of ``period`` steps and amplitude 10, plus Gaussian
      noise of standard deviation ``volatility``: a series with structure to learn.
    """
    T = _validate.positive_int(length, "length")
    _validate.choice(kind, "kind", SERIES_KINDS)
    if isinstance(volatility, bool) or not isinstance(volatility, numbers.Real) or not volatility > 0:
        raise ValueError(f"volatility must be a positive number, got {volatility!r}")
    period = _validate.positive_int(period, "period")
    rng = np.random.default_rng(_seed(seed))
    noise = rng.normal(0.0, float(volatility), size=T)
    if kind == "random_walk":
        return float(start) + np.cumsum(noise)
    return float(start) + 10.0 * np.sin(2 * np.pi * np.arange(T) / period) + noise


def sliding_windows(series, window: int, *, horizon: int = 1):
    """Cut a 1-D series into (input window, target) pairs for forecasting.

    X[k] = series[k : k + window] as (window, 1); y[k] = series[k + window + horizon - 1].
    Returns ``(X, y)`` as float32 arrays of shapes (m, window, 1) and (m,).
    """
    s = _validate.array(series, "series", ndim=1)
    w = _validate.positive_int(window, "window")
    h = _validate.positive_int(horizon, "horizon")
    m = s.size - w - h + 1
    if m < 1:
        raise ValueError(f"series of length {s.size} is too short for window {w} and horizon {h}")
    X = np.lib.stride_tricks.sliding_window_view(s, w)[:m]
    y = s[w + h - 1: w + h - 1 + m]
    return X[..., None].astype(np.float32), y.astype(np.float32)


# --------------------------------------------------------------------------- text
def zen_of_python() -> str:
    """The Zen of Python (PEP 20), which ships with every Python as the module ``this``.

    ``import this`` prints it and keeps it ROT13-encoded in ``this.s``; here it is decoded
    without printing. 856 characters, 19 aphorisms.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def char_vocabulary(text: str) -> list[str]:
    """The sorted list of distinct characters in ``text``: position k is the id of a character."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty string, got {text!r:.40}")
    return sorted(set(text))


def encode_text(text: str, vocabulary) -> np.ndarray:
    """Character ids of ``text`` (int64), using ``vocabulary`` from :func:`char_vocabulary`."""
    lookup = {ch: i for i, ch in enumerate(vocabulary)}
    try:
        return np.array([lookup[ch] for ch in text], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"text contains {e.args[0]!r}, which is not in the vocabulary") from None


def next_char_windows(ids, window: int, *, step: int = 1):
    """Training pairs for next-character prediction: the labels come from the text itself.

    X[k] = ids[k*step : k*step + window] and Y[k] = ids[k*step + 1 : k*step + window + 1], so
    at every position the target is the character that follows. Returns int64 arrays
    ``(X, Y)`` of shape (m, window).
    """
    a = np.asarray(ids)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D array of integers, got {a.dtype} with shape {a.shape}")
    w = _validate.positive_int(window, "window")
    s = _validate.positive_int(step, "step")
    if a.size < w + 1:
        raise ValueError(f"ids has {a.size} characters; window {w} needs at least {w + 1}")
    starts = np.arange(0, a.size - w, s)
    X = np.stack([a[k:k + w] for k in starts]).astype(np.int64)
    Y = np.stack([a[k + 1:k + w + 1] for k in starts]).astype(np.int64)
    return X, Y


def generate_text(lstm_weights, dense_weights, vocabulary, prompt: str, num_chars: int, *,
                  temperature: float = 1.0, seed: int = 0) -> str:
    """Sample text from a trained character-level LSTM with the NumPy cell of this module.

    ``lstm_weights`` is ``[kernel, recurrent_kernel, bias]`` of an LSTM that reads one-hot
    characters; ``dense_weights`` is ``[W, b]`` of the softmax layer on top (as from
    ``get_weights()``). The prompt is read first to warm the state up, then each next character
    is drawn from softmax(logits / temperature) and fed back in. ``temperature`` near 0 picks the
    most likely character; 1 samples from the model's distribution. Returns the prompt followed
    by ``num_chars`` generated characters.
    """
    kernel, recurrent_kernel, bias = lstm_weights
    Wd, bd = (np.asarray(w, dtype=float) for w in dense_weights)
    V = len(vocabulary)
    _, _, _, units = _weights(kernel, recurrent_kernel, bias, 4)
    if np.shape(kernel)[0] != V or Wd.shape != (units, V):
        raise ValueError(f"the weights do not fit a vocabulary of {V} characters and {units} units")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    num_chars = _validate.positive_int(num_chars, "num_chars")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    rng = np.random.default_rng(_seed(seed))
    eye = np.eye(V)
    ids = list(encode_text(prompt, vocabulary))
    h, c = np.zeros(units), np.zeros(units)
    for k in ids:
        h, c = lstm_step(eye[k], h, c, kernel, recurrent_kernel, bias)
    out = []
    for _ in range(num_chars):
        logits = (h @ Wd + bd) / float(temperature)
        p = np.exp(logits - logits.max())
        k = int(rng.choice(V, p=p / p.sum()))
        out.append(vocabulary[k])
        h, c = lstm_step(eye[k], h, c, kernel, recurrent_kernel, bias)
    return prompt + "".join(out)


# --------------------------------------------------------------------------- Keras models
def _recurrent_layer(kind: str, units: int, **kwargs):
    import keras

    _validate.choice(kind, "kind", RECURRENT_KINDS)
    layer = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    return layer(_validate.positive_int(units, "units"), **kwargs)


def _learning_rate(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"learning_rate must be a positive number, got {value!r}")
    return float(value)


def build_sequence_regressor(kind: str = "lstm", units: int = 16, *, length: int | None = None,
                             features: int = 2, learning_rate: float = 1e-2, compile: bool = True):
    """A recurrent layer reading the whole sequence, then Dense(1) on its last output.

    Input (length, features) -> SimpleRNN / LSTM / GRU(units) -> Dense(1). Used for the adding
    problem (features 2) and for forecasting a series (features 1). ``length=None`` accepts any
    length. Compiled with Adam(learning_rate) and mean squared error; ``jit_compile=True``
    (XLA) makes small recurrent networks faster on a CPU (a GRU up to twice as fast).
    """
    import keras

    length = None if length is None else _validate.positive_int(length, "length")
    features = _validate.positive_int(features, "features")
    model = keras.Sequential([keras.Input(shape=(length, features)), _recurrent_layer(kind, units),
                              keras.layers.Dense(1)], name=f"{kind}_regressor")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=_learning_rate(learning_rate)),
                      loss="mse", jit_compile=True)
    return model


def build_sequence_classifier(kind: str = "gru", units: int = 64, *, length: int | None = None,
                              features: int = 1, num_classes: int = 10, learning_rate: float = 1e-2,
                              compile: bool = True):
    """A recurrent layer reading the sequence, then a softmax over ``num_classes`` on its last output.

    Input (length, features) -> SimpleRNN / LSTM / GRU(units) -> Dense(num_classes, softmax).
    Used for MNIST-1D read as a sequence (features 1) and DNA motifs (features 4). Compiled with
    Adam(learning_rate), sparse categorical cross-entropy (integer labels) and accuracy.
    """
    import keras

    length = None if length is None else _validate.positive_int(length, "length")
    features = _validate.positive_int(features, "features")
    num_classes = _validate.positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    model = keras.Sequential([keras.Input(shape=(length, features)), _recurrent_layer(kind, units),
                              keras.layers.Dense(num_classes, activation="softmax")],
                             name=f"{kind}_classifier")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=_learning_rate(learning_rate)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True)
    return model


def build_char_model(vocab_size: int, units: int = 128, *, learning_rate: float = 1e-2,
                     compile: bool = True):
    """A character-level language model: one-hot characters -> LSTM(units) -> softmax over the vocabulary.

    The LSTM returns its output at every step (``return_sequences=True``), so the model predicts
    the next character at every position of a window (a self-supervised task: the text is its own
    label). Input (time, vocab_size) one-hot; output (time, vocab_size) probabilities. Compiled
    with Adam and sparse categorical cross-entropy on integer next-character targets (time,).
    Sample from it with :func:`generate_text`.
    """
    import keras

    V = _validate.positive_int(vocab_size, "vocab_size")
    model = keras.Sequential([keras.Input(shape=(None, V)),
                              _recurrent_layer("lstm", units, return_sequences=True),
                              keras.layers.Dense(V, activation="softmax")], name="char_lstm")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=_learning_rate(learning_rate)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True)
    return model


def gradient_by_lag(model, X, *, feature: int | None = None, mask=None) -> np.ndarray:
    """How strongly the model's final output depends on the input ``lag`` steps before the end.

    For a model mapping (n, T, features) to (n, 1), computes d output / d X[:, t] with
    TensorFlow's automatic differentiation and takes its absolute value, summed over the
    features (or for one ``feature`` only). Returns its mean over the batch at each step, indexed
    by lag = T - 1 - t: entry 0 is the last step, entry T - 1 the first. Shape (T,).

    ``mask`` (n, T) of 0/1 restricts the mean to the entries where it is 1 (for the adding
    problem: the two marked steps); a lag where the mask is 0 for every sequence gives NaN.
    """
    import tensorflow as tf

    Xa = _validate.array(X, "X", ndim=3).astype(np.float32)
    if feature is not None and not (isinstance(feature, numbers.Integral) and not isinstance(feature, bool)
                                    and 0 <= feature < Xa.shape[-1]):
        raise ValueError(f"feature must be an index from 0 to {Xa.shape[-1] - 1}, got {feature!r}")
    if mask is None:
        weights = np.ones(Xa.shape[:2])
    else:
        weights = _validate.array(mask, "mask", ndim=2)
        if weights.shape != Xa.shape[:2]:
            raise ValueError(f"mask must have shape {Xa.shape[:2]} (samples, time), got {weights.shape}")
    x = tf.constant(Xa)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(model(x, training=False))
    g = np.abs(tape.gradient(out, x).numpy())
    g = g[..., feature] if feature is not None else g.sum(axis=-1)
    counts = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, (g * weights).sum(axis=0) / counts, np.nan)
    return mean[::-1]


# --------------------------------------------------------------------------- picture
def plot_unrolled_rnn(steps: int = 4, *, ax=None, title: str | None = None):
    """Draw a recurrent layer folded (a loop) and unrolled over ``steps`` time steps.

    Inputs x_t at the bottom, the cell in the middle, outputs (states) h_t on top; the arrow from
    one step to the next carries h_{t-1} into the cell through the recurrent weights U. The same
    cell, with the same weights W, U, b, is used at every step; the state starts at h_0 = 0.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    steps = _validate.positive_int(steps, "steps")
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6 + 1.6 * steps, 3.4))

    def box(x, y, text, color):
        ax.add_patch(FancyBboxPatch((x - 0.36, y - 0.27), 0.72, 0.54, boxstyle="round,pad=0.02",
                                    facecolor=color, edgecolor="black"))
        ax.text(x, y, text, ha="center", va="center", fontsize=12)

    def arrow(p, q, text=None, rad=0.0, at=None):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=12, linewidth=1.3,
                                     connectionstyle=f"arc3,rad={rad}", color="black"))
        if text:
            x, y = at if at is not None else ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2 + 0.17)
            ax.text(x, y, text, ha="center", va="center", fontsize=11, color="C3")

    # folded: one cell whose output loops back into it
    box(0, 1, "cell", "#cfe2f3")
    box(0, 0, "$x_t$", "#fff2cc")
    box(0, 2, "$h_t$", "#d9ead3")
    arrow((0, 0.27), (0, 0.73))
    arrow((0, 1.27), (0, 1.73))
    arrow((0.38, 2.0), (0.38, 1.05), text="$U$", rad=-0.9, at=(0.98, 1.52))
    ax.text(1.3, 1, "=", fontsize=20, ha="center", va="center")
    # unrolled: h_0 = 0, then one copy of the cell per step
    x0 = 2.05
    ax.text(x0, 1, "$h_0 = 0$", ha="center", va="center", fontsize=11)
    for t in range(1, steps + 1):
        x = x0 + 1.6 * t
        box(x, 1, "cell", "#cfe2f3")
        box(x, 0, f"$x_{t}$", "#fff2cc")
        box(x, 2, f"$h_{t}$", "#d9ead3")
        arrow((x, 0.27), (x, 0.73))
        arrow((x, 1.27), (x, 1.73))
        arrow((x - 1.6 + (0.36 if t > 1 else 0.42), 1), (x - 0.38, 1), text=f"$h_{t - 1}\\,U$")
    ax.set_xlim(-0.6, x0 + 1.6 * steps + 0.6)
    ax.set_ylim(-0.45, 2.45)
    ax.set_aspect("equal")
    ax.set_xticks([x0 + 1.6 * t for t in range(1, steps + 1)], [f"t = {t}" for t in range(1, steps + 1)])
    ax.set_yticks([])
    ax.set_xlabel("time step")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "A recurrent layer, folded (left) and unrolled over time (right)")
    return ax
