"""Restricted Boltzmann machines: NumPy from scratch, and a TensorFlow estimator.

Taught in the chapter "Restricted Boltzmann machines". Keras has no RBM layer, so :class:`RBM`
is written with TensorFlow (variables, ``tf.function`` loops, ``tf.GradientTape``) and has the
interface of a scikit-learn transformer (``fit``, ``transform``, ``score_samples``).

Notation and shapes (the same everywhere in this module):

- ``v``: visible units, one row per sample, shape (n, n_visible); values 0/1, or in [0, 1]
  when grey pixels are read as probabilities (as scikit-learn's ``BernoulliRBM`` does);
- ``h``: hidden units, shape (n, n_hidden);
- ``weights`` W: (n_visible, n_hidden), laid out like a Keras ``Dense`` kernel (inputs, units).
  scikit-learn's ``components_`` is the transpose, W.T;
- ``visible_bias`` b: (n_visible,); ``hidden_bias`` c: (n_hidden,).

The model: energy E(v, h) = -b.v - c.h - v.W.h, joint p(v, h) = exp(-E(v, h)) / Z, and

- p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij)      (:func:`hidden_probabilities`)
- p(v_i = 1 | h) = sigmoid(b_i + sum_j W_ij h_j)      (:func:`visible_probabilities`)
- free energy F(v) = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + (vW)_j), so that
  p(v) = exp(-F(v)) / Z                               (:func:`free_energy`)
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state, gen_even_slices

from . import _validate

METHODS = ("cd", "pcd")
IMPUTE_METHODS = ("gibbs", "mean-field")
DTYPES = ("float32", "float64")
_MAX_ENUMERATED_UNITS = 20
_CHUNK_VALUES = 4_000_000   # (rows x n_visible x n_hidden) values per chunk in the exact pseudo-likelihood


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
def _unit_interval(value, name: str, *, ndim=2) -> np.ndarray:
    """An array whose values all lie in [0, 1] (binary states or probabilities)."""
    arr = _validate.array(value, name, ndim=ndim)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must hold values between 0 and 1 (binary states, or grey levels "
                         f"read as probabilities); got values from {arr.min():.4g} to {arr.max():.4g}. "
                         "Scale the data to [0, 1] first, e.g. pixels / pixels.max()")
    return arr


def _binary(value, name: str, *, ndim=2) -> np.ndarray:
    """An array of 0s and 1s (states of units)."""
    arr = _validate.array(value, name, ndim=ndim)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"{name} must be binary (only 0 and 1: the states of the units); got "
                         f"{int(bad.sum())} other values, e.g. {arr[bad].ravel()[0]:.4g}. "
                         "Sample it first (dlcourse.rbm.sample_bernoulli) or threshold it (x > 0.5)")
    return arr


def _parameters(weights, visible_bias=None, hidden_bias=None):
    """Check W (n_visible, n_hidden), b (n_visible,), c (n_hidden,) and their agreement."""
    W = _validate.array(weights, "weights", ndim=2)
    n_visible, n_hidden = W.shape
    b = c = None
    if visible_bias is not None:
        b = _validate.array(visible_bias, "visible_bias", ndim=1)
        if b.shape != (n_visible,):
            raise ValueError(f"visible_bias must have shape ({n_visible},), one per visible unit "
                             f"(weights are (n_visible, n_hidden) = {W.shape}); got {b.shape}")
    if hidden_bias is not None:
        c = _validate.array(hidden_bias, "hidden_bias", ndim=1)
        if c.shape != (n_hidden,):
            raise ValueError(f"hidden_bias must have shape ({n_hidden},), one per hidden unit "
                             f"(weights are (n_visible, n_hidden) = {W.shape}); got {c.shape}")
    return W, b, c


def _columns(arr: np.ndarray, n: int, name: str, what: str) -> np.ndarray:
    if arr.shape[1] != n:
        raise ValueError(f"{name} must have {n} columns (one per {what} unit), got shape {arr.shape}")
    return arr


def _rng(random_state):
    """A NumPy generator: an int seed, None, a ``RandomState`` or a ``Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    try:
        return check_random_state(random_state)
    except ValueError:
        raise ValueError("random_state must be None, an integer seed, a numpy RandomState or "
                         f"Generator; got {random_state!r}") from None


# ----------------------------------------------------------------------------------------------
# NumPy, from scratch
# ----------------------------------------------------------------------------------------------
def sigmoid(x) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), elementwise and without overflow."""
    return expit(_validate.array(x, "x"))


def energy(v, h, weights, visible_bias, hidden_bias) -> np.ndarray:
    """Energy E(v, h) = -b.v - c.h - v.W.h of joint binary states, one value per row.

    v: (n, n_visible) and h: (n, n_hidden), both 0/1 (states, not probabilities).
    Returns (n,). Low energy means high probability: p(v, h) is proportional to exp(-E).
    """
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    v = _columns(_binary(v, "v"), W.shape[0], "v", "visible")
    h = _columns(_binary(h, "h"), W.shape[1], "h", "hidden")
    if len(v) != len(h):
        raise ValueError(f"v and h must have the same number of rows (one joint state each); "
                         f"got {len(v)} and {len(h)}")
    return -v @ b - h @ c - np.einsum("ni,ij,nj->n", v, W, h)


def hidden_probabilities(v, weights, hidden_bias) -> np.ndarray:
    """p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij) for every sample and hidden unit.

    v: (n, n_visible) in [0, 1]. Returns (n, n_hidden). Given v, the hidden units are
    independent (no hidden-hidden connections), so this one matrix product is the whole
    conditional distribution.
    """
    W, _, c = _parameters(weights, None, hidden_bias)
    v = _columns(_unit_interval(v, "v"), W.shape[0], "v", "visible")
    return expit(v @ W + c)


def visible_probabilities(h, weights, visible_bias) -> np.ndarray:
    """p(v_i = 1 | h) = sigmoid(b_i + sum_j W_ij h_j) for every sample and visible unit.

    h: (n, n_hidden) in [0, 1]. Returns (n, n_visible): the same weights as
    :func:`hidden_probabilities`, used the other way (transposed).
    """
    W, b, _ = _parameters(weights, visible_bias, None)
    h = _columns(_unit_interval(h, "h"), W.shape[1], "h", "hidden")
    return expit(h @ W.T + b)


def free_energy(v, weights, visible_bias, hidden_bias) -> np.ndarray:
    """Free energy F(v) = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + (vW)_j).

    v: (n, n_visible) in [0, 1]. Returns (n,). The hidden units are summed out in closed form,
    so p(v) = exp(-F(v)) / Z. This is scikit-learn's ``BernoulliRBM._free_energy``.
    """
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    v = _columns(_unit_interval(v, "v"), W.shape[0], "v", "visible")
    return -v @ b - np.logaddexp(0, v @ W + c).sum(axis=1)


def sample_bernoulli(p, random_state=None) -> np.ndarray:
    """Binary samples: 1 with probability ``p``, elementwise (``uniform < p``, as scikit-learn draws).

    p: any shape, values in [0, 1]. Returns a float array of 0s and 1s of the same shape.
    """
    p = _unit_interval(p, "p", ndim=None)
    return (_rng(random_state).uniform(size=p.shape) < p).astype(float)


def gibbs_step(v, weights, visible_bias, hidden_bias, random_state=None):
    """One step of block Gibbs sampling: h ~ p(h | v), then v' ~ p(v | h).

    v: (n, n_visible). Returns ``(v_new, h)``, both binary: (n, n_visible) and (n, n_hidden).
    All hidden units are sampled at once, then all visible units: each layer is conditionally
    independent given the other.
    """
    rng = _rng(random_state)
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    h = sample_bernoulli(hidden_probabilities(v, W, c), rng)
    return sample_bernoulli(visible_probabilities(h, W, b), rng), h


def cd_gradients(v_data, v_model, weights, hidden_bias):
    """The contrastive divergence statistics: data term minus model term.

    dW = <v h>_data - <v h>_model,  db = <v>_data - <v>_model,  dc = <h>_data - <h>_model,
    where h is replaced by p(h | v) (less noisy, same expectation) and each term is summed over
    its rows and divided by the number of data rows (scikit-learn's convention).
    v_data: (n, n_visible) training batch (the positive phase); v_model: (m, n_visible) samples
    of the model (the negative phase). Returns (dW (n_visible, n_hidden), db, dc): the direction
    that increases the log-likelihood; add ``learning_rate`` times it to the parameters.
    """
    W, _, c = _parameters(weights, None, hidden_bias)
    v_data = _columns(_unit_interval(v_data, "v_data"), W.shape[0], "v_data", "visible")
    v_model = _columns(_unit_interval(v_model, "v_model"), W.shape[0], "v_model", "visible")
    h_data, h_model = expit(v_data @ W + c), expit(v_model @ W + c)
    n = len(v_data)
    return ((v_data.T @ h_data - v_model.T @ h_model) / n,
            (v_data.sum(axis=0) - v_model.sum(axis=0)) / n,
            (h_data.sum(axis=0) - h_model.sum(axis=0)) / n)


def cd_update(v, weights, visible_bias, hidden_bias, *, learning_rate: float = 0.1, k: int = 1,
              random_state=None):
    """One contrastive divergence (CD-k) update on a batch ``v`` (Hinton 2002).

    The negative phase starts a Gibbs chain at the data and runs ``k`` steps:
    h0 ~ p(h | v), v1 ~ p(v | h0), ..., v_k. Returns the new ``(weights, visible_bias,
    hidden_bias)`` = old + learning_rate * :func:`cd_gradients` (v, v_k), and ``v_k``.
    """
    rng = _rng(random_state)
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    k = _validate.positive_int(k, "k")
    lr = _positive_number(learning_rate, "learning_rate")
    v = _columns(_unit_interval(v, "v"), W.shape[0], "v", "visible")
    v_model = v
    for _ in range(k):
        v_model, _ = gibbs_step(v_model, W, b, c, rng)
    dW, db, dc = cd_gradients(v, v_model, W, c)
    return W + lr * dW, b + lr * db, c + lr * dc, v_model


def pcd_update(v, persistent_h, weights, visible_bias, hidden_bias, *, learning_rate: float = 0.1,
               random_state=None):
    """One persistent contrastive divergence (PCD) update, exactly as ``BernoulliRBM`` does it.

    The negative phase continues a Gibbs chain kept from the previous update (Tieleman 2008)
    instead of restarting at the data: v_model ~ p(v | persistent_h), then the update uses
    p(h | v_model), and the chain's new hidden state is sampled from it.
    persistent_h: (m, n_hidden) binary. Returns ``(weights, visible_bias, hidden_bias,
    new_persistent_h)``. Random numbers are drawn in scikit-learn's order, so the same
    ``RandomState`` gives the same update as ``BernoulliRBM._fit``.
    """
    rng = _rng(random_state)
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    lr = _positive_number(learning_rate, "learning_rate")
    v = _columns(_unit_interval(v, "v"), W.shape[0], "v", "visible")
    persistent_h = _columns(_binary(persistent_h, "persistent_h"), W.shape[1], "persistent_h", "hidden")
    v_model = sample_bernoulli(visible_probabilities(persistent_h, W, b), rng)
    dW, db, dc = cd_gradients(v, v_model, W, c)
    new_h = sample_bernoulli(hidden_probabilities(v_model, W, c), rng)
    return W + lr * dW, b + lr * db, c + lr * dc, new_h


def pseudo_likelihood(v, weights, visible_bias, hidden_bias, *, exact: bool = True,
                      random_state=None) -> np.ndarray:
    """Log pseudo-likelihood sum_i log p(v_i | all other v), one value per row.

    For binary v, log p(v_i | v_-i) = log sigmoid(F(v with bit i flipped) - F(v)).
    ``exact=True`` sums all n_visible terms. ``exact=False`` is scikit-learn's
    ``score_samples``: it flips one randomly chosen bit per row (``randint`` of
    ``check_random_state(random_state)``) and multiplies its term by n_visible, an unbiased but
    noisy estimate of the exact sum. With grey values in [0, 1], "flipping" replaces v_i by
    1 - v_i (as scikit-learn does); the number is then a training monitor, not a probability.
    Returns (n,) values <= 0 (closer to 0 is better).
    """
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    v = _columns(_unit_interval(v, "v"), W.shape[0], "v", "visible")
    n, d = v.shape
    if not exact:
        rows, cols = np.arange(n), _rng(random_state).randint(0, d, n)
        flipped = v.copy()
        flipped[rows, cols] = 1 - flipped[rows, cols]
        return -d * np.logaddexp(0, -(free_energy(flipped, W, b, c) - free_energy(v, W, b, c)))
    out = np.empty(n)
    step = max(1, _CHUNK_VALUES // max(1, d * W.shape[1]))
    for start in range(0, n, step):
        vc = v[start:start + step]
        pre = vc @ W + c                                   # (m, n_hidden)
        sign = 1 - 2 * vc                                  # +1 where a flip turns 0 -> 1
        pre_flipped = pre[:, None, :] + sign[:, :, None] * W[None]     # (m, n_visible, n_hidden)
        delta = -sign * b - (np.logaddexp(0, pre_flipped) - np.logaddexp(0, pre)[:, None, :]).sum(axis=2)
        out[start:start + step] = -np.logaddexp(0, -delta).sum(axis=1)   # delta = F(flipped) - F(v)
    return out


def expected_cd1_gradients(v_data, weights, visible_bias, hidden_bias, *, visible: str = "sample"):
    """The exact expectation of one CD-1 step's statistics, by enumerating the layers' states.

    One CD-1 step samples h0 ~ p(h | v_data), then v1 ~ p(v | h0) (``visible="sample"``) or
    takes v1 = p(v | h0) (``visible="probability"``, a common variant), and returns
    :func:`cd_gradients` (v_data, v1). Its result is random; this returns its expected value
    (dW, db, dc), exactly, so that a CD-1 implementation can be checked by averaging many of
    its updates. Small RBMs only (at most 12 units per layer).
    """
    _validate.choice(visible, "visible", ("sample", "probability"))
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    v_data = _columns(_unit_interval(v_data, "v_data"), W.shape[0], "v_data", "visible")
    n_visible, n_hidden = W.shape
    if max(n_visible, n_hidden) > 12:
        raise ValueError(f"expected_cd1_gradients enumerates both layers, which must have at most 12 units; got weights of shape {W.shape}")
    H, V = _all_states(n_hidden), _all_states(n_visible)
    p_h0 = expit(v_data @ W + c)                                            # (n, n_hidden)
    prob_h0 = np.prod(np.where(H[None] == 1, p_h0[:, None], 1 - p_h0[:, None]), axis=2)   # (n, 2^nh)
    p_v1 = expit(H @ W.T + b)                                               # (2^nh, n_visible)
    if visible == "sample":
        prob_v1 = np.prod(np.where(V[None] == 1, p_v1[:, None], 1 - p_v1[:, None]), axis=2)  # (2^nh, 2^nv)
        weight_v = prob_h0 @ prob_v1                                        # (n, 2^nv): p(v1 = V | v_data row)
        neg_v, neg_h = weight_v @ V, weight_v @ expit(V @ W + c)
        neg_vh = np.einsum("nk,ki,kj->ij", weight_v, V, expit(V @ W + c))
    else:
        neg_v, neg_h = prob_h0 @ p_v1, prob_h0 @ expit(p_v1 @ W + c)
        neg_vh = np.einsum("nk,ki,kj->ij", prob_h0, p_v1, expit(p_v1 @ W + c))
    n = len(v_data)
    pos_h = expit(v_data @ W + c)
    return ((v_data.T @ pos_h - neg_vh) / n, (v_data.sum(axis=0) - neg_v.sum(axis=0)) / n,
            (pos_h.sum(axis=0) - neg_h.sum(axis=0)) / n)


def _all_states(n: int) -> np.ndarray:
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[::-1]) & 1).astype(float)


def log_partition(weights, visible_bias, hidden_bias) -> float:
    """log Z, the log of the normalising constant, by summing over every state of one layer.

    Z = sum_v exp(-F(v)) = sum_h exp(c.h) prod_i (1 + exp(b_i + (W h)_i)). The smaller layer
    is enumerated, so this is exact but only feasible for RBMs with a layer of at most 20
    units. Used to check the formulas and to measure the true log-likelihood of small RBMs.
    """
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    n_visible, n_hidden = W.shape
    if min(n_visible, n_hidden) > _MAX_ENUMERATED_UNITS:
        raise ValueError(f"log_partition enumerates the smaller layer, which must have at most "
                         f"{_MAX_ENUMERATED_UNITS} units; got weights of shape {W.shape}")
    if n_hidden <= n_visible:
        h = _all_states(n_hidden)
        return float(logsumexp(h @ c + np.logaddexp(0, h @ W.T + b).sum(axis=1)))
    v = _all_states(n_visible)
    return float(logsumexp(-free_energy(v, W, b, c)))


def log_likelihood(v, weights, visible_bias, hidden_bias) -> np.ndarray:
    """Exact log p(v) = -F(v) - log Z per row (small RBMs only: see :func:`log_partition`)."""
    W, b, c = _parameters(weights, visible_bias, hidden_bias)
    return -free_energy(_binary(v, "v"), W, b, c) - log_partition(W, b, c)


def _positive_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or not np.isfinite(value):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------
# data helpers for the chapter's applications
# ----------------------------------------------------------------------------------------------
def nudge_images(X, y, *, shape=(8, 8)):
    """Five copies of each image: the original and shifted by one pixel up, down, left, right.

    X: (n, height * width) flat images; y: (n,) labels. Returns (X5, y5) with 5n rows, ordered
    as in scikit-learn's example "Restricted Boltzmann Machine features for digit
    classification" (original, then the four shifts); pixels pushed off the edge are lost and
    the uncovered row or column is 0.
    """
    X = _validate.array(X, "X", ndim=2)
    y = np.asarray(y)
    h, w = _validate.pair(shape, "shape")
    if X.shape[1] != h * w:
        raise ValueError(f"X must have shape[1] = {h} * {w} = {h * w} (flat {h} x {w} images), got {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"y must have shape ({len(X)},), one label per image, got {y.shape}")
    images = X.reshape(-1, h, w)
    shifted = [images]
    for axis, step in ((1, -1), (2, -1), (2, 1), (1, 1)):   # up, left, right, down
        moved = np.roll(images, step, axis=axis)
        edge = [slice(None)] * 3
        edge[axis] = -1 if step == -1 else 0
        moved[tuple(edge)] = 0
        shifted.append(moved)
    return np.concatenate(shifted).reshape(-1, h * w), np.concatenate([y] * 5)


def hide_pixels(X, fraction: float = 0.5, *, random_state=None):
    """Hide a ``fraction`` of each row's values: returns (X with NaN there, boolean mask).

    Exactly round(fraction * n_features) entries of every row are hidden, chosen at random;
    the mask is True where a value is missing. NaN marks a missing value, as scikit-learn's
    imputers (``SimpleImputer``, ``KNNImputer``) expect.
    """
    X = _validate.array(X, "X", ndim=2)
    fraction = _validate.fraction(fraction, "fraction")
    rng = _rng(random_state)
    n, d = X.shape
    k = int(round(fraction * d))
    if k == 0:
        raise ValueError(f"fraction={fraction} of {d} features hides nothing")
    order = np.argsort(rng.uniform(size=(n, d)), axis=1)[:, :k]
    mask = np.zeros((n, d), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    hidden = X.astype(float).copy()
    hidden[mask] = np.nan
    return hidden, mask


def draw_rbm(n_visible: int = 6, n_hidden: int = 4, *, ax=None, title: str | None = None):
    """Draw an RBM as a bipartite graph: hidden units on top, visible units below, every
    visible unit joined to every hidden unit, no connections within a layer. Returns the axes."""
    import matplotlib.pyplot as plt

    n_visible = _validate.positive_int(n_visible, "n_visible")
    n_hidden = _validate.positive_int(n_hidden, "n_hidden")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    xv = np.linspace(0, 1, n_visible) if n_visible > 1 else np.array([0.5])
    xh = np.linspace(0.15, 0.85, n_hidden) if n_hidden > 1 else np.array([0.5])
    for a in xv:
        for bx in xh:
            ax.plot([a, bx], [0, 1], color="0.6", lw=0.8, zorder=1)
    ax.scatter(xv, np.zeros(n_visible), s=500, color="C0", edgecolor="k", zorder=2)
    ax.scatter(xh, np.ones(n_hidden), s=500, color="C1", edgecolor="k", zorder=2)
    for i, a in enumerate(xv):
        ax.text(a, 0, f"$v_{{{i + 1}}}$", ha="center", va="center", fontsize="small", zorder=3)
    for j, bx in enumerate(xh):
        ax.text(bx, 1, f"$h_{{{j + 1}}}$", ha="center", va="center", fontsize="small", zorder=3)
    ax.text(1.12, 0, "visible units $v$\n(the data), bias $b$", va="center", fontsize="small")
    ax.text(1.12, 1, "hidden units $h$\n(features), bias $c$", va="center", fontsize="small")
    ax.text(0.5, 0.5, "weights $W$", ha="center", va="center", fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "none"}, zorder=3)
    ax.set_xlim(-0.1, 1.55)
    ax.set_ylim(-0.3, 1.3)
    ax.set_xticks([])
    ax.set_yticks([0, 1], ["visible layer", "hidden layer"])
    ax.set_xlabel("units (every visible unit is connected to every hidden unit)")
    ax.set_title(title or f"An RBM with {n_visible} visible and {n_hidden} hidden units")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


# ----------------------------------------------------------------------------------------------
# TensorFlow
# ----------------------------------------------------------------------------------------------
def _tf():
    import tensorflow as tf
    return tf


_TF = {}


def _tf_functions():
    """The compiled TensorFlow pieces, built once per process.

    They are pure functions of their arguments (the parameters go in and come out as tensors,
    random numbers come from stateless ops seeded by an argument), so every RBM shares the same
    traced graphs: no retracing for each new model.
    """
    if _TF:
        return _TF
    tf = _tf()
    fold_in, split = tf.random.experimental.stateless_fold_in, tf.random.experimental.stateless_split

    def p_h(v, W, c):
        return tf.sigmoid(tf.matmul(v, W) + c)

    def p_v(h, W, b):
        return tf.sigmoid(tf.matmul(h, W, transpose_b=True) + b)

    def bernoulli(p, seed):
        return tf.cast(tf.random.stateless_uniform(tf.shape(p), seed, dtype=p.dtype) < p, p.dtype)

    def free_energy(v, W, b, c):
        return -tf.linalg.matvec(v, b) - tf.reduce_sum(tf.math.softplus(tf.matmul(v, W) + c), axis=1)

    @tf.function(reduce_retracing=True)
    def train_epoch(W, b, c, X, order, bounds, chain_h, lr, k, seed, persistent):
        """One pass of CD-k (persistent=False) or PCD-k (True) updates over X's batches."""
        for i in tf.range(tf.shape(bounds)[0]):
            v_data = tf.gather(X, order[bounds[i, 0]:bounds[i, 1]])
            seed_i = fold_in(seed, tf.cast(i, tf.int64))
            # negative phase: Gibbs chains from the persistent state (PCD) or from the data (CD)
            h = chain_h if persistent else bernoulli(p_h(v_data, W, c), split(seed_i, 1)[0])
            v_model = v_data
            for step in tf.range(k):
                seeds = split(fold_in(seed_i, tf.cast(step + 1, tf.int64)), 2)
                v_model = bernoulli(p_v(h, W, b), seeds[0])
                h = bernoulli(p_h(v_model, W, c), seeds[1])
            if persistent:
                chain_h = h
            v_model = tf.stop_gradient(v_model)
            n = tf.cast(tf.shape(v_data)[0], W.dtype)
            with tf.GradientTape() as tape:
                tape.watch([W, b, c])
                # mean F(data) - mean F(model samples): its gradient is minus the CD statistics
                loss = (tf.reduce_sum(free_energy(v_data, W, b, c))
                        - tf.reduce_sum(free_energy(v_model, W, b, c))) / n
            gW, gb, gc = tape.gradient(loss, [W, b, c])
            W, b, c = W - lr * gW, b - lr * gb, c - lr * gc
        return W, b, c, chain_h

    @tf.function(reduce_retracing=True)
    def gibbs_chain(W, b, c, v, n_steps, record_every, seed):
        """Block Gibbs sampling; p(v | h) is recorded every ``record_every`` steps."""
        records = tf.TensorArray(W.dtype, size=n_steps // record_every)
        for step in tf.range(1, n_steps + 1):
            seeds = split(fold_in(seed, tf.cast(step, tf.int64)), 2)
            probs = p_v(bernoulli(p_h(v, W, c), seeds[0]), W, b)
            v = bernoulli(probs, seeds[1])
            if step % record_every == 0:
                records = records.write(step // record_every - 1, probs)
        return records.stack(), v

    @tf.function(reduce_retracing=True)
    def impute(W, b, c, X, observed, start, n_steps, burn_in, seed, mean_field):
        """Gibbs sampling (or mean-field iteration) of the missing units, observed ones clamped."""
        v = tf.where(observed, X, start)
        total = tf.zeros_like(X)
        for step in tf.range(n_steps):
            if mean_field:
                v = tf.where(observed, X, p_v(p_h(v, W, c), W, b))
            else:
                seeds = split(fold_in(seed, tf.cast(step, tf.int64)), 2)
                probs = p_v(bernoulli(p_h(v, W, c), seeds[0]), W, b)
                v = tf.where(observed, X, bernoulli(probs, seeds[1]))
                total += tf.cast(step >= burn_in, W.dtype) * probs
        if not mean_field:
            v = tf.where(observed, X, total / tf.cast(n_steps - burn_in, W.dtype))
        return v

    _TF.update(p_h=p_h, p_v=p_v, free_energy=free_energy, train_epoch=train_epoch,
               gibbs_chain=gibbs_chain, impute=impute)
    return _TF


class RBM(TransformerMixin, BaseEstimator):
    """A Bernoulli restricted Boltzmann machine in TensorFlow, used like a scikit-learn transformer.

    Parameters (the names and defaults of scikit-learn's ``BernoulliRBM``, plus four):

    n_components : number of hidden units.
    learning_rate, batch_size, n_iter : plain stochastic gradient ascent, ``n_iter`` passes over
        the data in batches of at most ``batch_size`` rows (scikit-learn's ``gen_even_slices``).
    method : ``"pcd"`` (persistent contrastive divergence with ``batch_size`` chains, as
        ``BernoulliRBM`` trains) or ``"cd"`` (contrastive divergence, chains restarted at the
        batch).
    k : Gibbs steps per update in the negative phase (CD-k, PCD-k).
    shuffle : reshuffle the rows before each pass (``BernoulliRBM`` does not).
    random_state : int seed (or None). The weights start as in ``BernoulliRBM`` with the same
        seed, N(0, 0.01^2); the seeds of TensorFlow's random numbers are drawn from it too.
    dtype : ``"float32"`` (fast) or ``"float64"`` (for exact comparisons).

    Attributes after ``fit``: ``weights_`` (n_features, n_components), ``components_`` (its
    transpose, as in scikit-learn), ``intercept_visible_``, ``intercept_hidden_``,
    ``history_`` (per pass: ``pseudo_likelihood`` as scikit-learn's ``score_samples``
    estimates it, and ``reconstruction_error``, the mean squared difference between the data
    and p(v | p(h | v))).

    Training maximises the log-likelihood approximately: each update is a gradient step on
    mean F(v_data) - mean F(v_model), the model samples held fixed, which ``tf.GradientTape``
    differentiates; that gradient is exactly minus :func:`cd_gradients`. One pass over the data
    is a single call of a compiled ``tf.function``.
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1, batch_size: int = 10,
                 n_iter: int = 10, method: str = "pcd", k: int = 1, shuffle: bool = False,
                 random_state=None, dtype: str = "float32"):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.method = method
        self.k = k
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype

    # -- parameters ---------------------------------------------------------------------------
    def _check_params(self):
        _validate.positive_int(self.n_components, "n_components")
        _positive_number(self.learning_rate, "learning_rate")
        _validate.positive_int(self.batch_size, "batch_size")
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer, got {self.n_iter!r}")
        _validate.choice(self.method, "method", METHODS)
        _validate.positive_int(self.k, "k")
        _validate.choice(self.dtype, "dtype", DTYPES)
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {self.shuffle!r}")
        if self.random_state is not None and (isinstance(self.random_state, bool)
                                              or not isinstance(self.random_state, numbers.Integral)
                                              or self.random_state < 0):
            raise ValueError(f"random_state must be None or a non-negative integer, got {self.random_state!r}")

    def _is_fitted(self):
        if not hasattr(self, "_W"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X) or set_weights(...) first")

    @property
    def weights_(self) -> np.ndarray:
        """W, shape (n_features, n_components)."""
        self._is_fitted()
        return self._W.numpy()

    @property
    def components_(self) -> np.ndarray:
        """W.T, shape (n_components, n_features), as scikit-learn's ``BernoulliRBM.components_``."""
        return self.weights_.T

    @property
    def intercept_visible_(self) -> np.ndarray:
        """b, shape (n_features,)."""
        self._is_fitted()
        return self._b.numpy()

    @property
    def intercept_hidden_(self) -> np.ndarray:
        """c, shape (n_components,)."""
        self._is_fitted()
        return self._c.numpy()

    def set_weights(self, weights, visible_bias, hidden_bias):
        """Use given parameters: W (n_features, n_components), b (n_features,), c (n_components,).

        To copy a fitted ``BernoulliRBM`` ``s``: ``set_weights(s.components_.T,
        s.intercept_visible_, s.intercept_hidden_)``. ``n_components`` is set from W.
        Returns self.
        """
        self._check_params()
        W, b, c = _parameters(weights, visible_bias, hidden_bias)
        if b is None or c is None:
            raise ValueError("set_weights needs weights, visible_bias and hidden_bias")
        self.n_components = W.shape[1]
        self._set(W, b, c, _rng(self.random_state))
        return self

    def _set(self, W, b, c, rng):
        tf = _tf()
        self._dt = tf.float32 if self.dtype == "float32" else tf.float64
        self._W, self._b, self._c = (tf.constant(a, self._dt) for a in (W, b, c))
        self._seeds = rng
        self.n_features_in_ = W.shape[0]

    def _seed(self):
        return _tf().constant(self._seeds.randint(2 ** 31 - 1, size=2), _tf().int64)

    # -- scikit-learn interface -----------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on X (n_samples, n_features), values in [0, 1]. Returns self."""
        tf = _tf()
        self._check_params()
        X = _unit_interval(X, "X")
        n, d = X.shape
        if n == 0:
            raise ValueError("X must have at least one row")
        rng = _rng(self.random_state)
        W = rng.normal(0, 0.01, (self.n_components, d)).T      # BernoulliRBM's start
        self._set(W, np.zeros(d), np.zeros(self.n_components), rng)
        n_batches = int(np.ceil(n / self.batch_size))
        bounds = np.array([(s.start, s.stop) for s in
                           gen_even_slices(n_batches * self.batch_size, n_batches, n_samples=n)])
        X_tf, bounds_tf = tf.constant(X, self._dt), tf.constant(bounds, tf.int32)
        chain_h = tf.zeros((self.batch_size, self.n_components), self._dt)
        lr, k = tf.constant(self.learning_rate, self._dt), tf.constant(int(self.k))
        train_epoch = _tf_functions()["train_epoch"]
        self.history_ = {"pseudo_likelihood": [], "reconstruction_error": []}
        for _ in range(self.n_iter):
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            self._W, self._b, self._c, chain_h = train_epoch(
                self._W, self._b, self._c, X_tf, tf.constant(order, tf.int32), bounds_tf, chain_h,
                lr, k, self._seed(), self.method == "pcd")
            self.history_["pseudo_likelihood"].append(float(self.score_samples(X).mean()))
            self.history_["reconstruction_error"].append(float(self.reconstruction_error(X).mean()))
        self.persistent_h_ = chain_h.numpy()
        return self

    def _input(self, X, name="X", *, binary=False, hidden=False):
        self._is_fitted()
        arr = _binary(X, name) if binary else _unit_interval(X, name)
        width = self.n_components if hidden else self.n_features_in_
        if arr.shape[1] != width:
            raise ValueError(f"{name} has {arr.shape[1]} columns, but this RBM has {width} "
                             f"{'hidden' if hidden else 'visible'} units; expected shape (n, {width})")
        return _tf().constant(arr, self._dt)

    def transform(self, X) -> np.ndarray:
        """Features p(h = 1 | v = X), shape (n_samples, n_components): the RBM as an encoder."""
        return _tf_functions()["p_h"](self._input(X), self._W, self._c).numpy()

    def hidden_probabilities(self, v) -> np.ndarray:
        """p(h_j = 1 | v): (n, n_features) -> (n, n_components). Same as ``transform``."""
        return _tf_functions()["p_h"](self._input(v, "v"), self._W, self._c).numpy()

    def visible_probabilities(self, h) -> np.ndarray:
        """p(v_i = 1 | h): (n, n_components) -> (n, n_features): the same weights, transposed."""
        return _tf_functions()["p_v"](self._input(h, "h", hidden=True), self._W, self._b).numpy()

    def reconstruct(self, X) -> np.ndarray:
        """Mean-field reconstruction p(v | p(h | X)), the shape of X: encode, then decode."""
        f = _tf_functions()
        return f["p_v"](f["p_h"](self._input(X), self._W, self._c), self._W, self._b).numpy()

    def reconstruction_error(self, X) -> np.ndarray:
        """Mean squared difference between each row of X and its reconstruction: (n,)."""
        X = _unit_interval(X, "X")
        return ((self.reconstruct(X) - X) ** 2).mean(axis=1)

    def free_energy(self, X) -> np.ndarray:
        """F(v) for each row of X: (n,). p(v) is proportional to exp(-F(v))."""
        return _tf_functions()["free_energy"](self._input(X), self._W, self._b, self._c).numpy()

    def energy(self, v, h) -> np.ndarray:
        """E(v, h) for binary joint states: v (n, n_features), h (n, n_components) -> (n,)."""
        tf = _tf()
        v_tf, h_tf = self._input(v, "v", binary=True), self._input(h, "h", binary=True, hidden=True)
        if v_tf.shape[0] != h_tf.shape[0]:
            raise ValueError(f"v and h must have the same number of rows; got {v_tf.shape[0]} and {h_tf.shape[0]}")
        return (-tf.linalg.matvec(v_tf, self._b) - tf.linalg.matvec(h_tf, self._c)
                - tf.reduce_sum(tf.matmul(v_tf, self._W) * h_tf, axis=1)).numpy()

    def score_samples(self, X) -> np.ndarray:
        """Pseudo-likelihood estimated as scikit-learn's ``BernoulliRBM.score_samples`` does it.

        One random bit per row is flipped (``check_random_state(self.random_state).randint``:
        the same bits as ``BernoulliRBM`` with the same integer ``random_state``) and its term
        is multiplied by n_features. See :func:`pseudo_likelihood`; :meth:`pseudo_likelihood`
        gives the exact sum over all bits.
        """
        tf, f = _tf(), _tf_functions()
        Xa = _unit_interval(X, "X")
        v = self._input(Xa)
        n, d = Xa.shape
        rows, cols = np.arange(n), check_random_state(self.random_state).randint(0, d, n)
        flipped = Xa.copy()
        flipped[rows, cols] = 1 - flipped[rows, cols]
        delta = (f["free_energy"](self._input(flipped), self._W, self._b, self._c)
                 - f["free_energy"](v, self._W, self._b, self._c))
        return (-d * tf.math.softplus(-delta)).numpy()

    def pseudo_likelihood(self, X) -> np.ndarray:
        """Exact log pseudo-likelihood (every bit flipped in turn), one value per row: (n,)."""
        self._is_fitted()
        return pseudo_likelihood(X, self.weights_, self.intercept_visible_, self.intercept_hidden_)

    def gibbs_chain(self, v, n_steps: int = 100, *, record_every: int = 1) -> np.ndarray:
        """Follow Gibbs chains started at v (n, n_features); record p(v | h) along the way.

        Returns (n_steps // record_every, n, n_features): the visible probabilities at steps
        record_every, 2 * record_every, ... (smoother to look at than binary samples).
        """
        tf = _tf()
        n_steps = _validate.positive_int(n_steps, "n_steps")
        record_every = _validate.positive_int(record_every, "record_every")
        if record_every > n_steps:
            raise ValueError(f"record_every must be at most n_steps = {n_steps}, got {record_every}")
        records, _ = _tf_functions()["gibbs_chain"](self._W, self._b, self._c, self._input(v, "v"),
                                                   tf.constant(n_steps), tf.constant(record_every), self._seed())
        return records.numpy()

    def gibbs(self, v, n_steps: int = 1) -> np.ndarray:
        """Run ``n_steps`` of block Gibbs sampling from v; returns the binary visible states."""
        tf = _tf()
        n_steps = _validate.positive_int(n_steps, "n_steps")
        _, v_last = _tf_functions()["gibbs_chain"](self._W, self._b, self._c, self._input(v, "v"),
                                                  tf.constant(n_steps), tf.constant(n_steps), self._seed())
        return v_last.numpy()

    def sample(self, n_samples: int = 10, *, n_steps: int = 1000, start=None) -> np.ndarray:
        """Generate new data: p(v | h) at the end of Gibbs chains run for ``n_steps``.

        ``start``: (n_samples, n_features) states to start from, e.g. training rows (the
        chains then begin near the data); by default random coin flips. Returns
        (n_samples, n_features) visible probabilities in [0, 1].
        """
        self._is_fitted()
        n_samples = _validate.positive_int(n_samples, "n_samples")
        if start is None:
            start = (self._seeds.uniform(size=(n_samples, self.n_features_in_)) < 0.5).astype(float)
        else:
            start = _unit_interval(start, "start")
            if len(start) != n_samples:
                raise ValueError(f"start must have n_samples = {n_samples} rows, got {len(start)}")
        return self.gibbs_chain(start, n_steps, record_every=n_steps)[-1]

    def impute(self, X, *, method: str = "gibbs", n_steps: int = 200, burn_in: int = 50) -> np.ndarray:
        """Fill the missing values (NaN) of X (n, n_features) from the model.

        The observed values stay clamped. ``"gibbs"``: the missing units start at sigmoid(b),
        then h ~ p(h | v) and v_missing ~ p(v | h) for ``n_steps`` steps; the estimate is the
        average of p(v_missing | h) over the steps after ``burn_in``. ``"mean-field"``: the
        same iteration with probabilities instead of samples (deterministic; ``burn_in`` is
        not used). Returns a copy of X with the NaNs replaced by values in [0, 1].
        """
        tf = _tf()
        self._is_fitted()
        _validate.choice(method, "method", IMPUTE_METHODS)
        n_steps = _validate.positive_int(n_steps, "n_steps")
        if method == "gibbs" and (isinstance(burn_in, bool) or not isinstance(burn_in, numbers.Integral)
                                  or not 0 <= burn_in < n_steps):
            raise ValueError(f"burn_in must be an integer from 0 to n_steps - 1 = {n_steps - 1}, got {burn_in!r}")
        try:
            arr = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"X must be an array of numbers with NaN for missing values, got {type(X).__name__}") from None
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), one column per visible unit, got {arr.shape}")
        if np.isinf(arr).any():
            raise ValueError("X contains infinite values; mark missing values with NaN")
        observed = ~np.isnan(arr)
        clean = np.where(observed, arr, 0.0)
        _unit_interval(clean, "X (its observed values)")
        start = np.broadcast_to(expit(self.intercept_visible_), arr.shape)
        filled = _tf_functions()["impute"](
            self._W, self._b, self._c, tf.constant(clean, self._dt), tf.constant(observed),
            tf.constant(start, self._dt), tf.constant(n_steps), tf.constant(int(burn_in) if method == "gibbs" else 0),
            self._seed(),
            method == "mean-field")
        return filled.numpy().astype(float)
