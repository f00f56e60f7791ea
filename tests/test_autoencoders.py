"""Unit tests of dlcourse.autoencoders: NumPy against Keras and scikit-learn, and bad arguments."""
import dlcourse  # noqa: F401  (quiet TensorFlow before it is imported)

import numpy as np
import pytest

from dlcourse import autoencoders as ae
from dlcourse.data import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits(images=False)


def _random_params(d, k, seed):
    rng = np.random.default_rng(seed)
    return {"W_enc": rng.normal(0, 0.5, (d, k)), "b_enc": rng.normal(0, 0.1, k),
            "W_dec": rng.normal(0, 0.5, (k, d)), "b_dec": rng.normal(0, 0.1, d)}


# ----------------------------------------------------------------------------- PCA baseline
@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_pca_baseline_matches_scikit_learn_on_digits(digits, k):
    from sklearn.decomposition import PCA

    X_train, X_test, _, _ = digits
    ours = ae.PCABaseline(k).fit(X_train)
    theirs = PCA(k, svd_solver="full").fit(X_train)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.components_, theirs.components_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(ours.encode(X_test), theirs.transform(X_test), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.reconstruct(X_test), theirs.inverse_transform(theirs.transform(X_test)),
                               rtol=1e-4, atol=1e-5)


def test_pca_baseline_matches_scikit_learn_on_random_data():
    from sklearn.decomposition import PCA

    X = np.random.default_rng(3).normal(size=(50, 7)) @ np.random.default_rng(4).normal(size=(7, 7))
    ours = ae.PCABaseline(3).fit(X)
    theirs = PCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.encode(X), theirs.transform(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.decode(ours.encode(X)), theirs.inverse_transform(theirs.transform(X)),
                               rtol=1e-6, atol=1e-9)


def test_pca_components_are_orthonormal_and_error_falls_with_k(digits):
    X_train, X_test, _, _ = digits
    errors = []
    for k in (2, 5, 10, 16):
        pca = ae.PCABaseline(k).fit(X_train)
        np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(k), atol=1e-10)
        errors.append(ae.reconstruction_mse(X_test, pca.reconstruct(X_test)))
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert 0.03 < errors[1] < 0.04  # the reference: about 0.035 at five components


def test_pca_beats_any_other_subspace_on_training_data(digits):
    X_train = digits[0]
    pca_error = ae.reconstruction_mse(X_train, ae.PCABaseline(5).fit(X_train).reconstruct(X_train))
    rng = np.random.default_rng(0)
    centred = X_train - X_train.mean(axis=0)
    for _ in range(5):
        Q, _ = np.linalg.qr(rng.normal(size=(64, 5)))
        other = centred @ Q @ Q.T + X_train.mean(axis=0)
        assert pca_error < ae.reconstruction_mse(X_train, other)


def test_pca_baseline_rejects_bad_arguments(digits):
    X_train = digits[0]
    with pytest.raises(ValueError, match="n_components"):
        ae.PCABaseline(0)
    with pytest.raises(ValueError, match="n_components"):
        ae.PCABaseline(65).fit(X_train)
    with pytest.raises(ValueError, match="not fitted"):
        ae.PCABaseline(2).encode(X_train)
    pca = ae.PCABaseline(2).fit(X_train)
    with pytest.raises(ValueError, match="features"):
        pca.encode(X_train[:, :10])
    with pytest.raises(ValueError, match="columns"):
        pca.decode(np.zeros((3, 4)))


# ----------------------------------------------------------------------------- NumPy vs Keras
@pytest.mark.parametrize("code_activation,output_activation",
                         [("linear", "linear"), ("linear", "sigmoid"), ("relu", "sigmoid"), ("tanh", "linear")])
def test_shallow_forward_matches_keras_with_the_same_weights(code_activation, output_activation):
    import keras

    d, k = 12, 4
    params = _random_params(d, k, seed=1)
    X = np.random.default_rng(2).normal(size=(9, d)).astype(np.float32)
    model = keras.Sequential([keras.Input(shape=(d,)), keras.layers.Dense(k, activation=code_activation),
                              keras.layers.Dense(d, activation=output_activation)])
    model.set_weights([params[key].astype(np.float32) for key in ("W_enc", "b_enc", "W_dec", "b_dec")])
    codes, X_hat = ae.shallow_autoencoder_forward(X, params, code_activation=code_activation,
                                                  output_activation=output_activation)
    np.testing.assert_allclose(X_hat, model.predict(X, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(codes, model.layers[0](X).numpy(), rtol=1e-5, atol=1e-5)


def test_linear_keras_autoencoder_is_the_numpy_linear_autoencoder():
    model, encoder, decoder = ae.build_dense_autoencoder(10, 3, linear=True)
    params = _random_params(10, 3, seed=5)
    model.set_weights([params[key].astype(np.float32) for key in ("W_enc", "b_enc", "W_dec", "b_dec")])
    X = np.random.default_rng(6).random((7, 10)).astype(np.float32)
    codes, X_hat = ae.shallow_autoencoder_forward(X, params, code_activation="linear", output_activation="linear")
    np.testing.assert_allclose(model.predict(X, verbose=0), X_hat, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(encoder.predict(X, verbose=0), codes, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("code_activation,output_activation",
                         [("linear", "linear"), ("relu", "sigmoid"), ("tanh", "sigmoid"), ("sigmoid", "tanh")])
@pytest.mark.parametrize("denoising", [False, True])
def test_gradients_match_tensorflow_autodiff(code_activation, output_activation, denoising):
    import tensorflow as tf

    d, k = 8, 3
    params = _random_params(d, k, seed=7)
    rng = np.random.default_rng(8)
    X = rng.random((6, d))
    target = rng.random((6, d)) if denoising else None
    loss, grads = ae.shallow_autoencoder_gradients(X, params, target, code_activation=code_activation,
                                                   output_activation=output_activation)
    acts = {"linear": tf.identity, "relu": tf.nn.relu, "tanh": tf.tanh, "sigmoid": tf.sigmoid}
    variables = {key: tf.Variable(value) for key, value in params.items()}
    with tf.GradientTape() as tape:
        codes = acts[code_activation](X @ variables["W_enc"] + variables["b_enc"])
        X_hat = acts[output_activation](codes @ variables["W_dec"] + variables["b_dec"])
        tf_loss = tf.reduce_mean((X_hat - (X if target is None else target)) ** 2)
    tf_grads = tape.gradient(tf_loss, variables)
    np.testing.assert_allclose(loss, tf_loss.numpy(), rtol=1e-10)
    for key in params:
        np.testing.assert_allclose(grads[key], tf_grads[key].numpy(), rtol=1e-7, atol=1e-12)


def test_gradients_match_finite_differences():
    params = _random_params(5, 2, seed=9)
    X = np.random.default_rng(10).random((4, 5))
    _, grads = ae.shallow_autoencoder_gradients(X, params, code_activation="tanh", output_activation="sigmoid")
    eps = 1e-6
    for key in params:
        flat = params[key].reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = ae.shallow_autoencoder_gradients(X, params, code_activation="tanh", output_activation="sigmoid")[0]
            flat[i] = old - eps
            down = ae.shallow_autoencoder_gradients(X, params, code_activation="tanh", output_activation="sigmoid")[0]
            flat[i] = old
            assert grads[key].reshape(-1)[i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_training_the_linear_autoencoder_lands_on_pca(digits):
    X_train = digits[0].astype(np.float64)
    params, losses = ae.train_shallow_autoencoder(X_train, 5, epochs=200, learning_rate=0.2,
                                                  code_activation="linear", output_activation="linear")
    pca_error = ae.reconstruction_mse(X_train, ae.PCABaseline(5).fit(X_train).reconstruct(X_train))
    assert losses[0] > losses[-1]
    assert pca_error <= losses[-1] < 1.005 * pca_error
    # the decoder's rows span PCA's subspace: projecting them on it changes almost nothing
    from scipy.linalg import subspace_angles
    V = ae.PCABaseline(5).fit(X_train).components_
    assert np.degrees(subspace_angles(params["W_dec"].T, V.T)).max() < 5


def test_training_is_reproducible_and_uses_the_target(digits):
    X = digits[0][:200]
    noisy = ae.masking_noise(X, 0.5, seed=1)
    p1, l1 = ae.train_shallow_autoencoder(noisy, 4, target=X, epochs=3, seed=3)
    p2, l2 = ae.train_shallow_autoencoder(noisy, 4, target=X, epochs=3, seed=3)
    p3, l3 = ae.train_shallow_autoencoder(noisy, 4, epochs=3, seed=3)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(p1["W_enc"], p2["W_enc"])
    assert not np.allclose(l1, l3)
    _, X_hat = ae.shallow_autoencoder_forward(noisy, p1)
    assert l1[-1] == pytest.approx(ae.reconstruction_mse(X, X_hat))


def test_numpy_autoencoder_rejects_bad_arguments():
    params = ae.init_shallow_autoencoder(6, 2)
    X = np.zeros((3, 6))
    with pytest.raises(ValueError, match="code_size"):
        ae.init_shallow_autoencoder(6, 0)
    with pytest.raises(ValueError, match="code_activation"):
        ae.shallow_autoencoder_forward(X, params, code_activation="softmax")
    with pytest.raises(ValueError, match="6 features"):
        ae.shallow_autoencoder_forward(np.zeros((3, 5)), params)
    with pytest.raises(ValueError, match="params"):
        ae.shallow_autoencoder_forward(X, {"W_enc": params["W_enc"]})
    with pytest.raises(ValueError, match=r"params\['W_dec'\]"):
        ae.shallow_autoencoder_forward(X, {**params, "W_dec": params["W_dec"].T})
    with pytest.raises(ValueError, match="target"):
        ae.shallow_autoencoder_gradients(X, params, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="learning_rate"):
        ae.train_shallow_autoencoder(X, 2, learning_rate=-1)
    with pytest.raises(ValueError, match="momentum"):
        ae.train_shallow_autoencoder(X, 2, momentum=1.0)
    with pytest.raises(ValueError, match="seed"):
        ae.init_shallow_autoencoder(6, 2, seed=-1)


# ----------------------------------------------------------------------------- noise
def test_gaussian_noise_has_the_requested_spread_and_is_reproducible():
    X = np.full((200, 50), 0.5, dtype=np.float32)
    noisy = ae.gaussian_noise(X, 0.1, seed=0, clip=False)
    assert noisy.dtype == np.float32 and noisy.shape == X.shape
    assert abs(float(np.std(noisy - X)) - 0.1) < 0.005
    assert abs(float(np.mean(noisy - X))) < 0.005
    np.testing.assert_array_equal(noisy, ae.gaussian_noise(X, 0.1, seed=0, clip=False))
    assert not np.array_equal(noisy, ae.gaussian_noise(X, 0.1, seed=1, clip=False))
    clipped = ae.gaussian_noise(X, 1.0, seed=0)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(ae.gaussian_noise(X, 0.0), X)


def test_masking_noise_zeroes_the_requested_fraction_and_keeps_the_rest():
    X = np.random.default_rng(0).uniform(0.1, 1.0, (300, 64)).astype(np.float32)
    noisy = ae.masking_noise(X, 0.3, seed=0)
    zeroed = noisy == 0
    assert abs(zeroed.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(noisy[~zeroed], X[~zeroed])
    np.testing.assert_array_equal(ae.masking_noise(X, 0.0), X)
    images = X.reshape(-1, 8, 8, 1)
    assert ae.masking_noise(images, 0.5, seed=np.random.default_rng(2)).shape == images.shape


def test_noise_rejects_bad_arguments():
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="std"):
        ae.gaussian_noise(X, -0.1)
    with pytest.raises(ValueError, match="fraction"):
        ae.masking_noise(X, 1.0)
    with pytest.raises(ValueError, match="fraction"):
        ae.masking_noise(X, 1.5)
    with pytest.raises(ValueError, match="seed"):
        ae.masking_noise(X, 0.5, seed="zero")


# ----------------------------------------------------------------------------- errors
def test_reconstruction_errors_agree_with_keras_and_each_other():
    import keras

    rng = np.random.default_rng(0)
    X, X_hat = rng.random((10, 8, 8, 1)).astype(np.float32), rng.random((10, 8, 8, 1)).astype(np.float32)
    mse = ae.reconstruction_mse(X, X_hat)
    keras_mse = float(keras.losses.MeanSquaredError()(X.reshape(10, -1), X_hat.reshape(10, -1)))
    assert mse == pytest.approx(keras_mse, rel=1e-5)
    assert ae.squared_error_per_image(X, X_hat) == pytest.approx(64 * mse, rel=1e-6)
    per_image = ae.squared_errors(X, X_hat)
    assert per_image.shape == (10,)
    assert per_image[3] == pytest.approx(float(np.sum((X[3] - X_hat[3]) ** 2)), rel=1e-6)
    assert ae.reconstruction_mse(X, X) == 0.0


def test_reconstruction_errors_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        ae.reconstruction_mse(np.zeros((4, 64)), np.zeros((4, 8, 8, 1)))
    with pytest.raises(ValueError, match="batch"):
        ae.squared_errors(np.zeros(5), np.zeros(5))


# ----------------------------------------------------------------------------- Keras builders
@pytest.mark.parametrize("code_size", [2, 5, 16])
def test_dense_autoencoder_shapes_and_output_range(code_size):
    model, encoder, decoder = ae.build_dense_autoencoder(64, code_size)
    X = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    assert encoder.output_shape == (None, code_size)
    assert decoder.input_shape == (None, code_size)
    assert model.output_shape == (None, 64)
    out = model.predict(X * 50 - 25, verbose=0)
    assert out.min() > 0 and out.max() < 1
    np.testing.assert_allclose(model.predict(X, verbose=0),
                               decoder.predict(encoder.predict(X, verbose=0), verbose=0), rtol=1e-5, atol=1e-6)
    sizes = [layer.units for layer in encoder.layers] + [layer.units for layer in decoder.layers]
    assert sizes == [128, 64, code_size, 64, 128, 64]
    assert model.loss == "mse"


def test_linear_autoencoder_has_no_hidden_layers_and_no_activations():
    model, encoder, decoder = ae.build_dense_autoencoder(64, 5, linear=True)
    layers = encoder.layers + decoder.layers
    assert [layer.units for layer in layers] == [5, 64]
    assert all(layer.activation.__name__ == "linear" for layer in layers)
    assert model.count_params() == 64 * 5 + 5 + 5 * 64 + 64
    assert type(model.optimizer).__name__ == "SGD"


@pytest.mark.parametrize("upsampling", ["transpose", "upsample"])
def test_conv_autoencoder_shapes(upsampling):
    model, encoder, decoder = ae.build_conv_autoencoder((8, 8, 1), 10, upsampling=upsampling)
    assert encoder.output_shape == (None, 10)
    assert decoder.output_shape == (None, 8, 8, 1)
    out = model.predict(np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32), verbose=0)
    assert out.shape == (3, 8, 8, 1) and out.min() > 0 and out.max() < 1
    kinds = {type(layer).__name__ for layer in decoder.layers}
    assert ("Conv2DTranspose" in kinds) == (upsampling == "transpose")
    assert ("UpSampling2D" in kinds) == (upsampling == "upsample")


def test_conv_builders_work_for_other_image_sizes():
    encoder = ae.build_conv_encoder((16, 12, 3), 7, filters=(8, 8))
    decoder = ae.build_conv_decoder(7, (16, 12, 3), filters=(8, 8))
    assert encoder.output_shape == (None, 7) and decoder.output_shape == (None, 16, 12, 3)
    assert ae.build_autoencoder(encoder, decoder).output_shape == (None, 16, 12, 3)


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="code_size"):
        ae.build_dense_encoder(64, 0)
    with pytest.raises(ValueError, match="hidden"):
        ae.build_dense_decoder(2, 64, hidden=(32, -1))
    with pytest.raises(ValueError, match="output_activation"):
        ae.build_dense_decoder(2, 64, output_activation="softplus")
    with pytest.raises(ValueError, match="input_shape"):
        ae.build_conv_encoder((8, 8), 4)
    with pytest.raises(ValueError, match="divisible"):
        ae.build_conv_encoder((6, 6, 1), 4, filters=(4, 4))
    with pytest.raises(ValueError, match="upsampling"):
        ae.build_conv_decoder(4, (8, 8, 1), upsampling="bilinear")
    with pytest.raises(ValueError, match="decoder expects"):
        ae.build_autoencoder(ae.build_dense_encoder(64, 3), ae.build_dense_decoder(4, 64))
    with pytest.raises(ValueError, match="encoder's input"):
        ae.build_autoencoder(ae.build_dense_encoder(64, 3), ae.build_dense_decoder(3, 32))
    with pytest.raises(ValueError, match="encoder must be a Keras model"):
        ae.build_autoencoder("encoder", ae.build_dense_decoder(3, 64))
    with pytest.raises(ValueError, match="optimizer"):
        ae.build_autoencoder(ae.build_dense_encoder(64, 3), ae.build_dense_decoder(3, 64), optimizer="rmsprop")


# ----------------------------------------------------------------------------- evaluation, figures
def test_knn_accuracy_matches_scikit_learn_and_separates_good_codes_from_noise(digits):
    from sklearn.neighbors import KNeighborsClassifier

    X_train, X_test, y_train, y_test = digits
    expected = KNeighborsClassifier(3).fit(X_train, y_train).score(X_test, y_test)
    assert ae.knn_accuracy(X_train, y_train, X_test, y_test, k=3) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    noise = ae.knn_accuracy(rng.normal(size=(len(X_train), 2)), y_train, rng.normal(size=(len(X_test), 2)), y_test)
    assert noise < 0.2
    with pytest.raises(ValueError, match="one entry per code"):
        ae.knn_accuracy(X_train, y_train[:-1], X_test, y_test)
    with pytest.raises(ValueError, match="same code size"):
        ae.knn_accuracy(X_train, y_train, X_test[:, :3], y_test)


def test_figures_have_titles_and_labelled_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = ae.plot_autoencoder_diagram((64, 32, 2, 32, 64))
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    ax = ae.plot_codes_2d(np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3)
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.collections) == 3
    ax = ae.plot_error_vs_code_size([2, 5], {"PCA": [0.05, 0.03], "AE": [0.04, 0.02]})
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and len(ax.lines) == 2
    images = np.random.default_rng(0).random((4, 64))
    fig = ae.show_reconstructions({"clean": images, "noisy": images}, n=3, suptitle="Reconstructions")
    titled = [a.get_title() for a in fig.axes]
    assert titled == ["clean", "", "", "noisy", "", ""] and fig._suptitle.get_text() == "Reconstructions"
    plt.close("all")


def test_figures_reject_bad_arguments():
    with pytest.raises(ValueError, match="2 columns"):
        ae.plot_codes_2d(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="labels"):
        ae.plot_codes_2d(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="code sizes"):
        ae.plot_error_vs_code_size([2, 5], {"PCA": [0.1]})
    with pytest.raises(ValueError, match="fewer than n"):
        ae.show_reconstructions({"clean": np.zeros((2, 64))}, n=3)
    with pytest.raises(ValueError, match="layer_sizes"):
        ae.plot_autoencoder_diagram((64, 2))
