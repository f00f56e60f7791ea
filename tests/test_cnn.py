"""dlcourse.cnn: the NumPy convolution, pooling, ReLU and softmax agree with Keras given the same
weights; output lengths and parameter counts agree with what Keras builds; the builders build the
taught models; bad arguments are rejected with a ValueError that names the argument."""
import numpy as np
import pytest

import dlcourse  # noqa: F401  (before TensorFlow: quiet logs, repeatable CPU results)
from dlcourse import cnn

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-5


def keras_conv(x, kernels, bias, strides, padding):
    layer = keras.layers.Conv2D(kernels.shape[-1], kernels.shape[:2], strides=strides, padding=padding)
    layer.build((None,) + x.shape[-3:])
    layer.set_weights([kernels, bias])
    return np.asarray(layer(x if x.ndim == 4 else x[None]))


def naive_conv2d(x, kernels, bias, stride):
    """The docstring's formula, written as plain loops: out[i, j, f] = sum(window * K[..., f]) + b[f]."""
    kh, kw, _, n_filters = kernels.shape
    out_h, out_w = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((out_h, out_w, n_filters))
    for i in range(out_h):
        for j in range(out_w):
            window = x[i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            for f in range(n_filters):
                out[i, j, f] = np.sum(window * kernels[..., f]) + bias[f]
    return out


# ---------------------------------------------------------------- convolution
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3, (1, 2), (2, 1)])
@pytest.mark.parametrize("shape,kernel,filters", [
    ((2, 7, 7, 1), (2, 2), 1),        # a batch of grey images, the chapter's 2 x 2 filter
    ((3, 9, 8, 3), (3, 3), 4),        # colour images, odd and even sizes
    ((1, 6, 10, 5), (2, 3), 2),       # several input channels, a non-square filter
])
def test_conv2d_matches_keras_conv2d(shape, kernel, filters, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    kernels = rng.normal(size=kernel + (shape[-1], filters)).astype(np.float32)
    bias = rng.normal(size=filters).astype(np.float32)
    want = keras_conv(x, kernels, bias, strides, padding)
    np.testing.assert_allclose(cnn.conv2d(x, kernels, bias, strides=strides, padding=padding), want,
                               rtol=RTOL, atol=ATOL)
    single = cnn.conv2d(x[0], kernels, bias, strides=strides, padding=padding)   # one image, no batch axis
    assert single.shape == want.shape[1:]
    np.testing.assert_allclose(single, want[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_follows_its_formula(stride):
    rng = np.random.default_rng(1)
    x, kernels, bias = rng.normal(size=(6, 7, 2)), rng.normal(size=(3, 2, 2, 3)), rng.normal(size=3)
    np.testing.assert_allclose(cnn.conv2d(x, kernels, bias, strides=stride), naive_conv2d(x, kernels, bias, stride),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_worked_example_of_the_chapter():
    image = np.array([[1, 1, 8, 8], [1, 1, 8, 8], [1, 2, 9, 8], [0, 1, 8, 9]], dtype=float)
    kernel = np.array([[-1, 1], [-1, 1]], dtype=float)
    out = cnn.conv2d(image[:, :, None], kernel)
    assert out.shape == (3, 3, 1)
    np.testing.assert_array_equal(out[:, :, 0], [[0, 14, 0], [1, 14, -1], [2, 14, 0]])
    np.testing.assert_array_equal(cnn.conv2d(image[:, :, None], kernel, strides=2)[:, :, 0], [[0, 0], [2, 0]])


def test_conv2d_without_bias_is_conv2d_with_zero_bias():
    rng = np.random.default_rng(2)
    x, kernels = rng.normal(size=(5, 5, 3)), rng.normal(size=(2, 2, 3, 4))
    np.testing.assert_array_equal(cnn.conv2d(x, kernels), cnn.conv2d(x, kernels, np.zeros(4)))


def test_conv2d_grey_filter_is_one_filter_on_one_channel():
    rng = np.random.default_rng(3)
    x, kernel = rng.normal(size=(6, 6, 1)), rng.normal(size=(2, 2))
    np.testing.assert_array_equal(cnn.conv2d(x, kernel), cnn.conv2d(x, kernel[:, :, None, None]))


# ---------------------------------------------------------------- pooling
@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool_size,strides", [(2, None), (2, 1), (3, 2), ((2, 3), None), (3, (1, 2))])
def test_pooling_matches_keras(kind, pool_size, strides, padding):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 7, 8, 3)).astype(np.float32)
    layer_class = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    want = np.asarray(layer_class(pool_size=pool_size, strides=strides, padding=padding)(x))
    ours = cnn.max_pool2d if kind == "max" else cnn.average_pool2d
    np.testing.assert_allclose(ours(x, pool_size, strides, padding=padding), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours(x[1], pool_size, strides, padding=padding), want[1], rtol=RTOL, atol=ATOL)


def test_pooling_worked_example_of_the_chapter():
    small_map = np.array([[1, 3, 2, 0], [4, 6, 1, 1], [0, 2, 5, 7], [1, 1, 3, 2]], dtype=float)[:, :, None]
    np.testing.assert_array_equal(cnn.max_pool2d(small_map, 2, 2)[:, :, 0], [[6, 2], [2, 7]])
    np.testing.assert_array_equal(cnn.average_pool2d(small_map, 2, 2)[:, :, 0], [[3.5, 1], [1, 4.25]])


def test_pooling_keeps_channels_apart():
    x = np.zeros((4, 4, 2))
    x[0, 0, 0], x[3, 3, 1] = 5.0, 7.0
    out = cnn.max_pool2d(x, 2)
    assert out[0, 0, 0] == 5 and out[0, 0, 1] == 0 and out[1, 1, 1] == 7 and out[1, 1, 0] == 0


# ---------------------------------------------------------------- output lengths
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_output_length_matches_keras_output_shapes(padding):
    for n in range(1, 10):
        for k in range(1, 5):
            if padding == "valid" and k > n:
                continue
            for s in range(1, 4):
                layer = keras.layers.Conv2D(1, (k, 1), strides=(s, 1), padding=padding)
                keras_shape = layer.compute_output_shape((None, n, 3, 1))
                assert cnn.conv_output_length(n, k, s, padding) == keras_shape[1], (n, k, s, padding)
                pool = keras.layers.MaxPooling2D((k, 1), strides=(s, 1), padding=padding)
                assert cnn.conv_output_length(n, k, s, padding) == pool.compute_output_shape((None, n, 3, 1))[1]


def test_conv_output_length_with_p_zeros_at_each_end():
    # floor((n + 2p - k) / s) + 1, checked against Keras: ZeroPadding1D(p) then a 'valid' Conv1D
    import keras

    for n, k, s, p in [(40, 5, 2, 1), (19, 3, 2, 1), (10, 3, 2, 1), (7, 3, 1, 2), (8, 4, 3, 0)]:
        model = keras.Sequential([keras.Input((n, 1)), keras.layers.ZeroPadding1D(p), keras.layers.Conv1D(1, k, strides=s)])
        assert cnn.conv_output_length(n, k, s, p) == model.output_shape[1], (n, k, s, p)
    assert cnn.conv_output_length(5, 2, 1, 0) == cnn.conv_output_length(5, 2, 1, "valid")


def test_conv_output_length_rejects_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match="kernel_size"):
        cnn.conv_output_length(3, 4)
    assert cnn.conv_output_length(3, 4, padding="same") == 3


# ---------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("kernel_size,channels,filters", [((2, 2), 3, 16), ((3, 3), 16, 32), ((1, 5), 1, 7)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_param_count_matches_keras(kernel_size, channels, filters, use_bias):
    model = keras.Sequential([keras.Input(shape=(12, 12, channels)),
                              keras.layers.Conv2D(filters, kernel_size, use_bias=use_bias)])
    assert cnn.conv2d_param_count(kernel_size, channels, filters, bias=use_bias) == model.count_params()


@pytest.mark.parametrize("inputs,units", [(64, 100), (30752, 100), (100, 10), (1, 1)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_param_count_matches_keras(inputs, units, use_bias):
    model = keras.Sequential([keras.Input(shape=(inputs,)), keras.layers.Dense(units, use_bias=use_bias)])
    assert cnn.dense_param_count(inputs, units, bias=use_bias) == model.count_params()


def test_conv_param_count_does_not_depend_on_the_image_size():
    counts = {keras.Sequential([keras.Input(shape=(n, n, 3)), keras.layers.Conv2D(16, (2, 2))]).count_params()
              for n in (8, 32, 128)}
    assert counts == {cnn.conv2d_param_count(2, 3, 16)} == {208}


@pytest.mark.parametrize("input_shape,kwargs", [
    ((128, 128, 3), {}),                                                    # the taught model
    ((8, 8, 1), {"padding": "same"}),                                       # the chapter's digits model
    ((8, 8, 1), {}),
    ((32, 24, 3), {"filters": (8, 16, 32), "kernel_size": 3, "dense_units": 20, "num_classes": 4}),
    ((20, 20, 1), {"pool_size": 1, "filters": (4,)}),                       # no pooling
    ((17, 9, 2), {"kernel_size": (3, 2), "pool_size": (2, 3), "padding": "same"}),
])
def test_cnn_layer_shapes_match_the_keras_model(input_shape, kwargs):
    table = cnn.cnn_layer_shapes(input_shape, **kwargs)
    model = cnn.build_cnn(input_shape, kwargs.get("num_classes", 10), compile=False,
                          **{k: v for k, v in kwargs.items() if k != "num_classes"})
    keras_table = cnn.model_layer_shapes(model)
    assert [(shape, params) for _, shape, params in table] == [(shape, params) for _, shape, params in keras_table]
    assert sum(params for _, _, params in table) == model.count_params()


def test_taught_model_parameter_counts():
    table = cnn.cnn_layer_shapes()
    assert [shape for _, shape, _ in table] == [(127, 127, 16), (63, 63, 16), (62, 62, 32), (31, 31, 32),
                                                (30752,), (100,), (10,)]
    assert [params for _, _, params in table] == [208, 0, 2080, 0, 0, 3075300, 1010]


# ---------------------------------------------------------------- activations
def test_relu_matches_keras():
    z = np.random.default_rng(5).normal(size=(4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(cnn.relu(z), np.asarray(keras.activations.relu(z)), rtol=RTOL)
    assert (cnn.relu(z) >= 0).all() and np.array_equal(cnn.relu(z)[z > 0], z[z > 0])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_sums_to_one_and_matches_keras(axis):
    z = np.random.default_rng(6).normal(scale=3, size=(5, 7)).astype(np.float32)
    p = cnn.softmax(z, axis=axis)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    assert (p > 0).all()
    np.testing.assert_allclose(p, np.asarray(keras.activations.softmax(z, axis=axis)), rtol=RTOL, atol=1e-7)


def test_softmax_is_stable_for_large_scores():
    with np.errstate(all="raise"):                      # any overflow would raise FloatingPointError
        p = cnn.softmax([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]])
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p[0], p[1])             # shifting all scores changes nothing
    np.testing.assert_allclose(p[0], cnn.softmax([2.0, 1.0, 0.0]))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)


# ---------------------------------------------------------------- builders
def test_build_cnn_is_the_taught_model():
    model = cnn.build_cnn()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    conv1, pool1, conv2, _, _, hidden, output = model.layers
    assert (conv1.filters, conv1.kernel_size, conv1.strides, conv1.padding) == (16, (2, 2), (1, 1), "valid")
    assert (conv2.filters, conv2.kernel_size, conv2.strides) == (32, (2, 2), (1, 1))
    assert (pool1.pool_size, pool1.strides) == ((2, 2), (2, 2))
    assert [conv1.activation.__name__, conv2.activation.__name__, hidden.activation.__name__,
            output.activation.__name__] == ["relu", "relu", "relu", "softmax"]
    assert (hidden.units, output.units) == (100, 10)
    assert model.input_shape == (None, 128, 128, 3)
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "categorical_crossentropy"


def test_numpy_forward_pass_matches_the_keras_model():
    keras.utils.set_random_seed(0)
    model = cnn.build_cnn((16, 12, 3), 5, dense_units=8, compile=False)
    (k1, b1), (k2, b2), (w3, b3), (w4, b4) = [layer.get_weights() for layer in model.layers if layer.weights]
    x = np.random.default_rng(7).random((3, 16, 12, 3), dtype=np.float32)
    h = cnn.max_pool2d(cnn.relu(cnn.conv2d(x, k1, b1)), 2, 2)
    h = cnn.max_pool2d(cnn.relu(cnn.conv2d(h, k2, b2)), 2, 2)
    h = cnn.relu(h.reshape(len(h), -1) @ w3 + b3)
    np.testing.assert_allclose(cnn.softmax(h @ w4 + b4), model.predict(x, verbose=0), rtol=RTOL, atol=1e-6)


def test_build_mnist1d_cnn_is_the_published_model():
    model = cnn.build_mnist1d_cnn()
    shapes = [shape for name, shape, _ in cnn.model_layer_shapes(model) if "padding" not in name]
    assert shapes == [(19, 25), (10, 25), (5, 25), (125,), (10,)]     # padding=1: 40 -> 19 -> 10 -> 5
    assert model.count_params() == ((5 + 1) * 25 + 2 * (3 * 25 + 1) * 25 + (125 + 1) * 10)
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(1e-2)
    assert model.loss == "sparse_categorical_crossentropy"


# ---------------------------------------------------------------- bad arguments
IMG = np.zeros((5, 5, 3))
KER = np.zeros((2, 2, 3, 4))
BAD_ARGUMENTS = [
    (cnn.conv_output_length, (0, 2), {}, "input_length"),
    (cnn.conv_output_length, (5, 0), {}, "kernel_size"),
    (cnn.conv_output_length, (5, 2, 0), {}, "stride"),
    (cnn.conv_output_length, (5, 2.5), {}, "kernel_size"),
    (cnn.conv_output_length, (5, 2), {"padding": "full"}, "padding"),
    (cnn.conv_output_length, (5, 2), {"padding": -1}, "padding"),
    (cnn.conv2d, (np.zeros((5, 5, 1)), KER), {}, "kernels"),             # mismatched channels
    (cnn.conv2d, (np.zeros((5, 5)), KER[:, :, :1]), {}, "x"),            # grey image without its channel axis
    (cnn.conv2d, (np.zeros((2, 2, 5, 5, 3)), KER), {}, "x"),
    (cnn.conv2d, (IMG, np.zeros((2, 2, 3))), {}, "kernels"),
    (cnn.conv2d, (IMG, KER, np.zeros(3)), {}, "bias"),
    (cnn.conv2d, (IMG, KER), {"strides": 0}, "strides"),
    (cnn.conv2d, (IMG, KER), {"strides": (1, 2, 3)}, "strides"),
    (cnn.conv2d, (IMG, KER), {"padding": "SAME"}, "padding"),
    (cnn.conv2d, (IMG, np.zeros((6, 6, 3, 1))), {}, "filter"),            # filter larger than the image
    (cnn.conv2d, (np.full((5, 5, 3), np.nan), KER), {}, "x"),
    (cnn.max_pool2d, (IMG,), {"pool_size": 0}, "pool_size"),
    (cnn.max_pool2d, (IMG,), {"pool_size": 6}, "pool_size"),
    (cnn.max_pool2d, (IMG, 2, -1), {}, "strides"),
    (cnn.max_pool2d, (np.zeros(5),), {}, "x"),
    (cnn.average_pool2d, (IMG,), {"pool_size": (2, 0)}, "pool_size"),
    (cnn.average_pool2d, (IMG,), {"padding": "full"}, "padding"),
    (cnn.average_pool2d, ("not an image",), {}, "x"),
    (cnn.relu, ("abc",), {}, "x"),
    (cnn.softmax, ([1.0, np.inf],), {}, "scores"),
    (cnn.softmax, (3.0,), {}, "scores"),
    (cnn.softmax, ([1.0, 2.0],), {"axis": 1}, "axis"),
    (cnn.softmax, ([1.0, 2.0],), {"axis": 0.5}, "axis"),
    (cnn.conv2d_param_count, ((2, 2), 0, 16), {}, "in_channels"),
    (cnn.conv2d_param_count, ((2, 2), 3, -1), {}, "filters"),
    (cnn.conv2d_param_count, ((2, 2, 2), 3, 16), {}, "kernel_size"),
    (cnn.dense_param_count, (0, 10), {}, "inputs"),
    (cnn.dense_param_count, (10, 1.5), {}, "units"),
    (cnn.cnn_layer_shapes, ((128, 128),), {}, "input_shape"),
    (cnn.cnn_layer_shapes, ((128, 0, 3),), {}, "input_shape"),
    (cnn.cnn_layer_shapes, ((4, 4, 1),), {}, "input_shape"),               # too small for two blocks
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"filters": ()}, "filters"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"filters": (16, 0)}, "filters"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"filters": "16"}, "filters"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"kernel_size": 0}, "kernel_size"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"pool_size": (2, 2, 2)}, "pool_size"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"dense_units": 0}, "dense_units"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"num_classes": 0}, "num_classes"),
    (cnn.cnn_layer_shapes, ((128, 128, 3),), {"padding": "full"}, "padding"),
    (cnn.model_layer_shapes, ("not a model",), {}, "model"),
    (cnn.build_cnn, ((128, 128),), {}, "input_shape"),
    (cnn.build_cnn, ((4, 4, 1),), {}, "input_shape"),
    (cnn.build_cnn, ((8, 8, 1), 1), {}, "num_classes"),
    (cnn.build_cnn, ((8, 8, 1),), {"filters": 0}, "filters"),
    (cnn.build_cnn, ((8, 8, 1),), {"dense_units": -3}, "dense_units"),
    (cnn.build_cnn, ((8, 8, 1),), {"padding": "full"}, "padding"),
    (cnn.build_cnn, ((8, 8, 1),), {"kernel_size": (2,)}, "kernel_size"),
    (cnn.build_mnist1d_cnn, (0,), {}, "num_classes"),
    (cnn.build_mnist1d_cnn, (), {"channels": 0}, "channels"),
    (cnn.build_mnist1d_cnn, (), {"length": 2.5}, "length"),
]


@pytest.mark.parametrize("function,args,kwargs,name", BAD_ARGUMENTS,
                         ids=[f"{f.__name__}-{name}-{i}" for i, (f, _, _, name) in enumerate(BAD_ARGUMENTS)])
def test_bad_arguments_raise_a_value_error_naming_the_argument(function, args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        function(*args, **kwargs)


def test_every_public_function_is_checked_for_bad_arguments():
    public = {name for name in dir(cnn) if not name.startswith("_") and callable(getattr(cnn, name))
              and getattr(getattr(cnn, name), "__module__", None) == cnn.__name__}
    assert public == {f.__name__ for f, *_ in BAD_ARGUMENTS}


def test_mismatched_channels_message_says_what_was_expected():
    with pytest.raises(ValueError) as info:
        cnn.conv2d(np.zeros((5, 5, 1)), KER)
    message = str(info.value)
    assert "3 input channels" in message and "x has 1" in message and "(kh, kw, in_channels, filters)" in message
