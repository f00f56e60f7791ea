"""dlcourse.dense: the NumPy dense layers, MLP forward and backward passes and parameter counts
agree with Keras given the same weights; the builders and loaders do what the chapter says; bad
arguments are rejected with a clear message."""
import numpy as np
import pytest

import dlcourse  # noqa: F401  (before TensorFlow: quiet logs, repeatable CPU results)
from dlcourse import dense

keras = pytest.importorskip("keras")

RTOL = 1e-5


def keras_mlp(sizes, activation, *, dtype="float32", seed=0, initializer="glorot_uniform"):
    """A Sequential MLP with the given layer sizes [inputs, hidden..., outputs], softmax output."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(sizes[0],), dtype=dtype)]
    layers += [keras.layers.Dense(h, activation=activation, dtype=dtype, kernel_initializer=initializer,
                                  bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed))
               for h in sizes[1:-1]]
    layers += [keras.layers.Dense(sizes[-1], activation="softmax", dtype=dtype, kernel_initializer=initializer,
                                  bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed))]
    return keras.Sequential(layers)


# ---------------------------------------------------------------- activations
def test_activations_match_keras():
    z = np.random.default_rng(0).normal(scale=4, size=(50, 7)).astype(np.float32)
    for name in ("relu", "sigmoid", "tanh", "softmax", "linear"):
        want = np.asarray(keras.activations.get(name)(z))
        np.testing.assert_allclose(dense.activate(z, name), want, rtol=RTOL, atol=1e-7, err_msg=name)


def test_sigmoid_does_not_overflow_for_large_inputs():
    with np.errstate(over="raise"):
        s = dense.sigmoid([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])


def test_activation_derivatives_match_finite_differences():
    z = np.random.default_rng(1).normal(size=200)
    z = z[np.abs(z) > 1e-3]                     # keep away from ReLU's kink
    h = 1e-6
    for name in ("relu", "sigmoid", "tanh", "linear"):
        numeric = (dense.activate(z + h, name) - dense.activate(z - h, name)) / (2 * h)
        np.testing.assert_allclose(dense.activation_derivative(z, name), numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    assert dense.activation_derivative(np.linspace(-10, 10, 101), "sigmoid").max() == pytest.approx(0.25)


# ---------------------------------------------------------------- dense layer and MLP forward
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_forward_matches_keras_dense(activation):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 40)).astype(np.float32)
    layer = keras.layers.Dense(13, activation=activation)
    layer.build((None, 40))
    kernel, bias = rng.normal(size=(40, 13)).astype(np.float32), rng.normal(size=13).astype(np.float32)
    layer.set_weights([kernel, bias])
    np.testing.assert_allclose(dense.dense_forward(x, kernel, bias, activation), np.asarray(layer(x)),
                               rtol=RTOL, atol=1e-5)


def test_dense_forward_single_sample_and_no_bias():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=5), rng.normal(size=(5, 3))
    np.testing.assert_allclose(dense.dense_forward(x, w), x @ w)
    assert dense.dense_forward(x, w).shape == (3,)
    layer = keras.layers.Dense(3, use_bias=False, dtype="float64")
    layer.build((None, 5))
    layer.set_weights([w])
    np.testing.assert_allclose(dense.dense_forward(x[None], w, None, "linear"), np.asarray(layer(x[None])), rtol=RTOL)


def test_dense_forward_catches_a_transposed_kernel():
    with pytest.raises(ValueError, match=r"kernel must have shape \(inputs, units\)"):
        dense.dense_forward(np.ones((2, 40)), np.ones((10, 40)))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_forward_matches_keras_sequential(activation):
    model = keras_mlp([40, 32, 16, 10], activation)
    x = np.random.default_rng(4).normal(size=(64, 40)).astype(np.float32)
    got = dense.mlp_forward(x, model.get_weights(), activation=activation)
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


# ---------------------------------------------------------------- parameter counting
@pytest.mark.parametrize("hidden", [(), (298,), (100, 100), (75, 75, 75), (7, 300, 2)])
def test_mlp_param_count_matches_keras(hidden):
    model = dense.build_mlp(40, hidden, 10, compile=False)
    assert dense.mlp_param_count(40, hidden, 10) == model.count_params()


def test_param_count_formulas():
    assert dense.dense_param_count(40, 100) == 4100
    assert dense.dense_param_count(40, 100, bias=False) == 4000
    assert dense.mlp_param_count(40, (100, 100), 10) == 15210      # the published MNIST-1D MLP
    assert dense.mlp_param_count(40, (), 10) == 410                # logistic regression


def test_width_for_budget_gives_the_closest_width():
    for depth in range(1, 7):
        h = dense.width_for_budget(15210, depth)
        count = dense.mlp_param_count(40, (h,) * depth, 10)
        for other in (h - 1, h + 1):
            assert abs(count - 15210) <= abs(dense.mlp_param_count(40, (other,) * depth, 10) - 15210)
    assert dense.width_for_budget(15210, 2) == 100
    assert dense.width_for_budget(15210, 1) == 298


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_gradients_match_tensorflow(activation):
    import tensorflow as tf

    model = keras_mlp([40, 24, 24, 10], activation, dtype="float64")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(32, 40)), rng.integers(0, 10, size=32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x)))
    want = tape.gradient(loss, [v.value for v in model.trainable_weights])
    got = [g for pair in dense.mlp_gradients(x, y, model.get_weights(), activation=activation) for g in pair]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=RTOL, atol=1e-12)


def test_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    sizes = [6, 5, 4, 3]
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        weights += [rng.normal(size=(a, b)), rng.normal(size=b)]
    x, y = rng.normal(size=(8, 6)), rng.integers(0, 3, size=8)

    def loss(ws):
        p = dense.mlp_forward(x, ws, activation="tanh")
        return -np.mean(np.log(p[np.arange(8), y]))

    grads = [g for pair in dense.mlp_gradients(x, y, weights, activation="tanh") for g in pair]
    h = 1e-6
    for k, w in enumerate(weights):
        numeric = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[k][idx] += h
            minus[k][idx] -= h
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * h)
        np.testing.assert_allclose(grads[k], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("per_example", [True, False])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_norms_numpy_and_keras_agree(activation, per_example):
    model = keras_mlp([40, 16, 16, 16, 10], activation)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 40)).astype(np.float32), rng.integers(0, 10, size=20)
    got = dense.gradient_norms(x, y, model.get_weights(), activation=activation, per_example=per_example)
    want = dense.keras_gradient_norms(model, x, y, per_example=per_example)
    assert got.shape == want.shape == (4,)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_per_example_norm_is_the_mean_of_single_example_norms():
    model = keras_mlp([40, 16, 16, 10], "relu")
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(5, 40)), rng.integers(0, 10, size=5)
    w = model.get_weights()
    single = [dense.gradient_norms(x[i:i + 1], y[i:i + 1], w, per_example=False) for i in range(5)]
    np.testing.assert_allclose(dense.gradient_norms(x, y, w), np.mean(single, axis=0), rtol=1e-10)


def test_sigmoid_gradients_vanish_and_relu_with_he_initialisation_keeps_them():
    x = np.random.default_rng(9).normal(size=(128, 40)).astype(np.float32)
    y = np.arange(128) % 10
    ratios = {}
    for activation, init in (("sigmoid", "glorot_uniform"), ("relu", "he_normal")):
        model = dense.build_mlp(40, (64,) * 9, 10, activation=activation, kernel_initializer=init, compile=False)
        norms = dense.gradient_norms(x, y, model.get_weights(), activation=activation)
        ratios[activation] = norms[0] / norms[-1]
    assert ratios["sigmoid"] < 1e-3
    assert 0.3 < ratios["relu"] < 3


# ---------------------------------------------------------------- Keras builders
def test_build_mlp_layers_and_training():
    from dlcourse.data import load_mnist1d

    model = dense.build_mlp(40, (32, 16), 10, activation="tanh")
    kinds = [(type(l).__name__, l.units, l.activation.__name__) for l in model.layers]
    assert kinds == [("Dense", 32, "tanh"), ("Dense", 16, "tanh"), ("Dense", 10, "softmax")]
    assert model.loss == "sparse_categorical_crossentropy"
    X_train, X_test, y_train, y_test = load_mnist1d(num_samples=1000)
    keras.utils.set_random_seed(0)
    model.fit(X_train, y_train, epochs=3, batch_size=100, verbose=0)
    assert model.evaluate(X_test, y_test, verbose=0)[1] > 0.2     # well above chance (0.1)


def test_build_mlp_options():
    logreg = dense.build_logistic_regression(40, 10)
    assert len(logreg.layers) == 1 and logreg.count_params() == 410
    sgd = dense.build_mlp(hidden_sizes=(8,), optimizer="sgd", learning_rate=0.1)
    assert type(sgd.optimizer).__name__ == "SGD"
    decayed = dense.build_mlp(hidden_sizes=(8,), decay_steps=100)
    assert type(decayed.optimizer.learning_rate).__name__ != "float"
    he = dense.build_mlp(hidden_sizes=(8,), kernel_initializer="he_normal", compile=False)
    assert type(he.layers[0].kernel_initializer).__name__ == "HeNormal"


# ---------------------------------------------------------------- data and compute
def test_load_mnist1d_subsets_are_nested_with_a_fixed_test_set():
    subsets, X_test, y_test = dense.load_mnist1d_subsets([50, 200, 100], num_test=120)
    assert sorted(subsets) == [50, 100, 200]
    assert X_test.shape == (120, 40) and y_test.shape == (120,)
    for n, (X, y) in subsets.items():
        assert X.shape == (n, 40) and y.shape == (n,)
        np.testing.assert_array_equal(X, subsets[200][0][:n])
    # no test sequence is also a training sequence
    train = {row.tobytes() for row in subsets[200][0]}
    assert not any(row.tobytes() in train for row in X_test)
    assert set(np.unique(subsets[200][1])) == set(range(10))


def test_matmul_gflops_is_a_positive_rate():
    for threads in (None, 1):
        rate = dense.matmul_gflops(64, repeats=2, threads=threads)
        assert np.isfinite(rate) and rate > 0


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, match", [
    (lambda: dense.activate(np.ones(3), "gelu"), "activation must be one of"),
    (lambda: dense.activation_derivative(np.ones(3), "softmax"), "activation must be one of"),
    (lambda: dense.dense_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(5)), r"bias must have shape \(4,\)"),
    (lambda: dense.dense_forward(np.ones((2, 3, 4)), np.ones((4, 4))), "x must have 1 or 2 dimensions"),
    (lambda: dense.mlp_forward(np.ones((2, 3)), [np.ones((3, 4))]), "kernel, bias pairs"),
    (lambda: dense.mlp_forward(np.ones((2, 3)), [np.ones((3, 4)), np.ones(4), np.ones((5, 2)), np.ones(2)]),
     r"must have 4 rows"),
    (lambda: dense.mlp_forward(np.ones((2, 5)), [np.ones((3, 4)), np.ones(4)]), "x must have 3 features"),
    (lambda: dense.mlp_param_count(40, 100, 10), "hidden_sizes must be a list"),
    (lambda: dense.mlp_param_count(40, (100, 0), 10), "hidden_sizes must be a positive integer"),
    (lambda: dense.mlp_param_count(0, (100,), 10), "input_size must be a positive integer"),
    (lambda: dense.width_for_budget(10, 3), "budget must be at least"),
    (lambda: dense.width_for_budget(1000, 0), "depth must be a positive integer"),
    (lambda: dense.mlp_gradients(np.ones((2, 3)), [0, 7], [np.ones((3, 4)), np.ones(4)]), "y must be 2 integer"),
    (lambda: dense.mlp_gradients(np.ones((2, 3)), [0.5, 1], [np.ones((3, 4)), np.ones(4)]), "y must be 2 integer"),
    (lambda: dense.build_mlp(hidden_sizes=(10,), num_classes=1), "num_classes must be at least 2"),
    (lambda: dense.build_mlp(optimizer="rmsprop"), "optimizer must be one of"),
    (lambda: dense.build_mlp(learning_rate=-1), "learning_rate must be a positive number"),
    (lambda: dense.build_mlp(activation="softmax"), "activation must be one of"),
    (lambda: dense.load_mnist1d_subsets([]), "train_sizes must contain at least one"),
    (lambda: dense.load_mnist1d_subsets(100), "train_sizes must be a list"),
    (lambda: dense.load_mnist1d_subsets([100, -5]), "train_sizes must be a positive integer"),
    (lambda: dense.matmul_gflops(0), "n must be a positive integer"),
    (lambda: dense.matmul_gflops(8, min_seconds=-1), "min_seconds must be a number"),
    (lambda: dense.matmul_gflops(8, threads=0), "threads must be a positive integer"),
])
def test_bad_arguments_are_rejected_clearly(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_draw_mlp_draws_every_shown_weight_and_labels_the_axes():
    import matplotlib
    matplotlib.use("Agg")
    ax = dense.draw_mlp((4, 3, 2), title="tiny")
    assert len(ax.lines) == 4 * 3 + 3 * 2
    assert ax.get_title() == "tiny" and ax.get_xlabel()
    with pytest.raises(ValueError, match="at least an input and an output"):
        dense.draw_mlp((4,))
    ax = dense.draw_mlp((40, 300, 75, 10), units_per_circle=25, max_units=12)
    assert len(ax.lines) == 2 * 12 + 12 * 3 + 3 * 2           # 2, 12, 3 and 2 circles
