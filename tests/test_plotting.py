"""dlcourse.plotting: every figure has a title and labelled axes, the figures show the values the
chapter computes, and bad arguments are rejected with a ValueError naming the argument."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlcourse import cnn, plotting  # noqa: E402

IMAGE = np.array([[1, 1, 8, 8], [1, 1, 8, 8], [1, 2, 9, 8], [0, 1, 8, 9]], dtype=float)
EDGE = np.array([[-1, 1], [-1, 1]], dtype=float)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_plot_history_draws_training_and_validation_curves():
    history = {"loss": [1.0, 0.5, 0.4], "accuracy": [0.5, 0.8, 0.9], "val_loss": [1.1, 0.7, 0.6],
               "val_accuracy": [0.4, 0.7, 0.85]}
    ax = plotting.plot_history({"a": history, "b": history}, title="curves")
    assert ax.get_title() == "curves" and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy"
    assert len(ax.lines) == 4
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), history["val_accuracy"])


def test_plot_matrix_writes_every_value_and_marks_hidden_cells():
    hide = np.zeros((4, 4), bool)
    hide[3, 3] = True
    ax = plotting.plot_matrix(IMAGE, title="image", hide=hide, boxes=[(0, 0, 2, 2)])
    assert ax.get_title() == "image" and ax.get_xlabel() == "column" and ax.get_ylabel() == "row"
    assert texts(ax) == [f"{v:g}" for v in IMAGE.ravel()[:-1]] + ["?"]
    assert len(ax.patches) == 1


def test_plot_convolution_steps_shows_the_computed_feature_map():
    fig = plotting.plot_convolution_steps(IMAGE, EDGE, positions=[(0, 0), (0, 1), (2, 2)])
    assert fig.get_suptitle()
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[1, 1:]] == ["out[0, 0] = 0", "out[0, 1] = 14", "out[2, 2] = 0"]
    out = cnn.conv2d(IMAGE[:, :, None], EDGE)[:, :, 0]
    assert texts(axes[1, -1]) == [f"{v:g}" for v in out.ravel()]       # the last step shows the whole map
    assert texts(axes[1, 1]).count("?") == out.size - 1                  # the first step shows one value
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes[:, 1:].ravel())


def test_plot_convolution_steps_follows_the_stride():
    fig = plotting.plot_convolution_steps(IMAGE, EDGE, stride=2)
    axes = np.array(fig.axes).reshape(2, -1)
    assert axes.shape[1] == 1 + 4                                        # 2 x 2 output positions
    assert [ax.get_title() for ax in axes[1, 1:]] == ["out[0, 0] = 0", "out[0, 1] = 0", "out[1, 0] = 2",
                                                      "out[1, 1] = 0"]


def test_plot_feature_maps_one_panel_per_filter():
    maps = np.random.default_rng(0).normal(size=(6, 9, 5))
    fig = plotting.plot_feature_maps(maps, [f"f{k}" for k in range(5)], ncols=3, suptitle="maps",
                                     symmetric=True, clip_percentile=99)
    images = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in images] == [f"f{k}" for k in range(5)]
    assert fig.get_suptitle() == "maps"
    assert all(ax.get_ylabel() == "row (pixels)" for ax in images[::3])
    assert all(ax.get_xlabel() == "column (pixels)" for ax in images[2:])
    low, high = images[0].images[0].get_clim()
    assert low == -high == -np.percentile(np.abs(maps[..., 0]), 99)


def test_plot_cnn_architecture_labels_every_layer():
    layers = cnn.cnn_layer_shapes()
    ax = plotting.plot_cnn_architecture(layers, (128, 128, 3))
    total = sum(p for _, _, p in layers)
    assert f"{total:,}" in ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel()
    labels = texts(ax)
    for text in ["Input", "Conv2D\n+ ReLU", "MaxPooling2D", "Flatten", "Dense\n+ softmax", "127 x 127 x 16",
                 "30,752", "3,075,300 params"]:
        assert text in labels, text


BAD_ARGUMENTS = [
    (plotting.plot_history, ({"loss": [1.0]},), {"metric": "accuracy"}, "metric"),
    (plotting.show_images, ([],), {}, "images"),
    (plotting.show_images, ([np.zeros((2, 2))],), {"titles": ["a", "b"]}, "titles"),
    (plotting.plot_matrix, (np.zeros(4),), {}, "values"),
    (plotting.plot_matrix, (np.zeros((2, 2)),), {"hide": np.zeros((3, 3), bool)}, "hide"),
    (plotting.plot_convolution_steps, (np.zeros((4, 4, 3)), EDGE), {}, "image"),
    (plotting.plot_convolution_steps, (IMAGE, np.zeros((2, 2, 1))), {}, "kernel"),
    (plotting.plot_convolution_steps, (IMAGE, EDGE), {"positions": [(3, 0)]}, "positions"),
    (plotting.plot_convolution_steps, (IMAGE, EDGE), {"positions": []}, "positions"),
    (plotting.plot_convolution_steps, (IMAGE, EDGE), {"stride": 0}, "stride"),
    (plotting.plot_feature_maps, (np.zeros((2, 2, 2, 2)),), {}, "maps"),
    (plotting.plot_feature_maps, ([],), {}, "maps"),
    (plotting.plot_feature_maps, (np.zeros((2, 2, 2)), ["a"]), {}, "titles"),
    (plotting.plot_feature_maps, (np.zeros((2, 2, 2)),), {"clip_percentile": 0}, "clip_percentile"),
    (plotting.plot_cnn_architecture, ([], (8, 8, 1)), {}, "layers"),
]


@pytest.mark.parametrize("function,args,kwargs,name", BAD_ARGUMENTS,
                         ids=[f"{f.__name__}-{name}-{i}" for i, (f, _, _, name) in enumerate(BAD_ARGUMENTS)])
def test_bad_arguments_raise_a_value_error_naming_the_argument(function, args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        function(*args, **kwargs)


def test_plot_lstm_cell_names_the_gates_and_both_states():
    ax = plotting.plot_lstm_cell()
    words = " ".join(texts(ax))
    for name in ["forget", "input", "candidate", "output", "$c_{t-1}$", "$c_t$", "$h_{t-1}$", "$h_t$", "$x_t$",
                 r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$", r"$h_t = o_t \odot \tanh(c_t)$"]:
        assert name in words, f"the LSTM diagram does not show {name!r}: {words}"
    assert ax.get_title() and ax.get_xlabel()
    fig, given = plt.subplots()
    assert plotting.plot_lstm_cell(ax=given, title="mine") is given and given.get_title() == "mine"
