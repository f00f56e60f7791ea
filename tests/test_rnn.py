"""dlcourse.rnn: the NumPy SimpleRNN, LSTM and GRU agree with the Keras layers given the same
weights; the sequence data generators are seeded and have the stated properties; the model
builders and helpers do what the chapter says; bad arguments are rejected with a clear message."""
import numpy as np
import pytest

import dlcourse  # noqa: F401  (before TensorFlow: quiet logs, repeatable CPU results)
from dlcourse import rnn

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-6
LAYERS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
FORWARD = {"simple_rnn": rnn.rnn_forward, "lstm": rnn.lstm_forward, "gru": rnn.gru_forward}


def keras_layer(kind, features, units, *, seed=0, scale=0.5, **kwargs):
    """A built Keras recurrent layer with random (not default) weights, and those weights."""
    layer = getattr(keras.layers, LAYERS[kind])(units, **kwargs)
    layer.build((None, None, features))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=scale, size=w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    return layer, weights


def sequences(n, T, d, seed=1):
    return np.random.default_rng(seed).normal(size=(n, T, d)).astype(np.float32)


# ---------------------------------------------------------------- forward passes against Keras
@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_numpy_forward_matches_keras_layer(kind, return_sequences):
    layer, weights = keras_layer(kind, 3, 5)
    layer.return_sequences = return_sequences
    X = sequences(8, 12, 3)
    want = np.asarray(layer(X))
    got = FORWARD[kind](X, *weights, return_sequences=return_sequences)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_simple_rnn_activation_matches_keras(activation):
    layer, weights = keras_layer("simple_rnn", 2, 4, activation=activation, scale=0.3)
    X = sequences(6, 9, 2)
    np.testing.assert_allclose(rnn.rnn_forward(X, *weights, activation=activation), np.asarray(layer(X)),
                               rtol=RTOL, atol=ATOL)


def test_lstm_matches_keras_over_a_long_sequence_with_initial_state():
    layer, weights = keras_layer("lstm", 2, 6, return_sequences=True, return_state=True, scale=0.3)
    X = sequences(4, 100, 2)
    rng = np.random.default_rng(3)
    h0, c0 = (rng.normal(size=(4, 6)).astype(np.float32) for _ in range(2))
    out, h, c = (np.asarray(a) for a in layer(X, initial_state=[h0, c0]))
    got_out, got_h, got_c = rnn.lstm_forward(X, *weights, h0=h0, c0=c0, return_sequences=True, return_state=True)
    for got, want in [(got_out, out), (got_h, h), (got_c, c)]:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_steps_unrolled_by_hand_equal_the_forward_pass():
    X = sequences(3, 7, 4)
    _, w_rnn = keras_layer("simple_rnn", 4, 5)
    _, w_lstm = keras_layer("lstm", 4, 5)
    _, w_gru = keras_layer("gru", 4, 5)
    h = np.zeros((3, 5))
    hl, cl = np.zeros((3, 5)), np.zeros((3, 5))
    hg = np.zeros((3, 5))
    for t in range(7):
        h = rnn.rnn_step(X[:, t], h, *w_rnn)
        hl, cl = rnn.lstm_step(X[:, t], hl, cl, *w_lstm)
        hg = rnn.gru_step(X[:, t], hg, *w_gru)
    np.testing.assert_allclose(h, rnn.rnn_forward(X, *w_rnn), rtol=1e-12)
    np.testing.assert_allclose(hl, rnn.lstm_forward(X, *w_lstm), rtol=1e-12)
    np.testing.assert_allclose(hg, rnn.gru_forward(X, *w_gru), rtol=1e-12)


def test_single_sequence_and_single_vector_give_unbatched_results():
    _, w = keras_layer("lstm", 3, 4)
    X = sequences(1, 5, 3)
    single = rnn.lstm_forward(X[0], *w, return_sequences=True)
    assert single.shape == (5, 4)
    np.testing.assert_allclose(single, rnn.lstm_forward(X, *w, return_sequences=True)[0])
    h, c = rnn.lstm_step(X[0, 0], np.zeros(4), np.zeros(4), *w)
    assert h.shape == c.shape == (4,)


def test_lstm_gates_follow_keras_order_i_f_g_o():
    """With every pre-activation zero except one block, only that gate's role shows up."""
    units = 3
    kernel = np.zeros((1, 4 * units))
    recurrent = np.zeros((units, 4 * units))
    big = 20.0
    # forget gate open (f = 1), input gate shut (i = 0): the cell keeps its value
    bias = np.concatenate([-big * np.ones(units), big * np.ones(units), np.zeros(units), big * np.ones(units)])
    h, c = rnn.lstm_step(np.zeros(1), np.zeros(units), np.full(units, 0.7), kernel, recurrent, bias)
    np.testing.assert_allclose(c, 0.7, rtol=1e-6)
    np.testing.assert_allclose(h, np.tanh(0.7), rtol=1e-6)
    # forget gate shut, input gate open, candidate tanh(1): the cell is overwritten
    bias = np.concatenate([big * np.ones(units), -big * np.ones(units), np.ones(units), big * np.ones(units)])
    _, c = rnn.lstm_step(np.zeros(1), np.zeros(units), np.full(units, 0.7), kernel, recurrent, bias)
    np.testing.assert_allclose(c, np.tanh(1.0), rtol=1e-6)


def test_gru_update_gate_one_keeps_the_state():
    units = 2
    bias = np.zeros((2, 3 * units))
    bias[0, :units] = 30.0                      # z = 1
    h_prev = np.array([0.3, -0.8])
    h = rnn.gru_step(np.ones(2), h_prev, np.ones((2, 3 * units)), np.ones((units, 3 * units)), bias)
    np.testing.assert_allclose(h, h_prev, atol=1e-9)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_param_count_matches_keras(kind):
    for features, units in [(1, 1), (2, 16), (35, 64)]:
        layer = getattr(keras.layers, LAYERS[kind])(units)
        layer.build((None, None, features))
        assert rnn.recurrent_param_count(kind, features, units) == layer.count_params()


def test_sigmoid_is_stable_and_correct():
    with np.errstate(over="raise"):
        s = rnn.sigmoid([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])
    z = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(rnn.sigmoid(z), 1 / (1 + np.exp(-z)))


# ---------------------------------------------------------------- data
def test_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    X, y = rnn.adding_problem(500, 30, seed=4)
    assert X.shape == (500, 30, 2) and y.shape == (500,) and X.dtype == y.dtype == np.float32
    markers = X[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1) and np.all(markers[:, 15:].sum(axis=1) == 1)
    np.testing.assert_allclose(y, (X[..., 0] * markers).sum(axis=1), rtol=1e-6)
    assert X[..., 0].min() >= 0 and X[..., 0].max() < 1


def test_adding_problem_baseline_mse_is_one_sixth():
    _, y = rnn.adding_problem(200_000, 10, seed=0)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(rnn.ADDING_BASELINE_MSE, abs=0.002)
    assert rnn.ADDING_BASELINE_MSE == pytest.approx(0.1667, abs=1e-4)


def test_generators_are_seeded():
    a, b = rnn.adding_problem(10, 8, seed=3), rnn.adding_problem(10, 8, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], rnn.adding_problem(10, 8, seed=4)[0])
    assert rnn.dna_sequences(20, seed=5)[0] == rnn.dna_sequences(20, seed=5)[0]
    assert rnn.dna_sequences(20, seed=5)[0] != rnn.dna_sequences(20, seed=6)[0]
    np.testing.assert_array_equal(rnn.synthetic_series(50, seed=1), rnn.synthetic_series(50, seed=1))


def test_dna_motif_is_planted_in_positives_only():
    seqs, y = rnn.dna_sequences(400, 40, motif="GATTACA", with_motif=0.25, seed=2)
    assert len(seqs) == 400 and y.sum() == 100
    assert all(len(s) == 40 and set(s) <= set("ACGT") for s in seqs)
    assert all(("GATTACA" in s) == bool(label) for s, label in zip(seqs, y))


def test_one_hot_dna_encodes_each_base_in_its_channel():
    X = rnn.one_hot_dna(["ACGT", "TTAA"])
    assert X.shape == (2, 4, 4) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], np.eye(4))
    np.testing.assert_array_equal(X[1].argmax(axis=1), [3, 3, 0, 0])


def test_random_walk_steps_are_independent_and_seasonal_series_is_periodic():
    walk = rnn.synthetic_series(20_000, "random_walk", seed=0, volatility=2.0)
    steps = np.diff(walk)
    assert steps.std() == pytest.approx(2.0, rel=0.03)
    assert abs(np.corrcoef(steps[:-1], steps[1:])[0, 1]) < 0.03
    seasonal = rnn.synthetic_series(2000, "seasonal", seed=0, period=20, volatility=0.1)
    assert np.corrcoef(seasonal[:-20], seasonal[20:])[0, 1] > 0.99


def test_sliding_windows_pair_each_window_with_the_value_after_it():
    s = np.arange(10.0)
    X, y = rnn.sliding_windows(s, 3)
    assert X.shape == (7, 3, 1) and y.shape == (7,)
    np.testing.assert_array_equal(X[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(y, np.arange(3, 10))
    X2, y2 = rnn.sliding_windows(s, 3, horizon=2)
    assert len(X2) == 6 and y2[0] == 4


def test_zen_of_python_is_decoded_without_printing(capsys):
    text = rnn.zen_of_python()
    assert capsys.readouterr().out == ""
    assert text.startswith("The Zen of Python, by Tim Peters")
    assert "Beautiful is better than ugly." in text and len(text) > 800


def test_text_encoding_round_trips_and_windows_shift_by_one():
    text = "hello world"
    vocab = rnn.char_vocabulary(text)
    ids = rnn.encode_text(text, vocab)
    assert "".join(vocab[i] for i in ids) == text
    X, Y = rnn.next_char_windows(ids, 4, step=2)
    assert X.shape == Y.shape == (4, 4)
    np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])
    np.testing.assert_array_equal(Y[1], ids[3:7])


# ---------------------------------------------------------------- models and helpers
@pytest.mark.parametrize("kind", list(LAYERS))
def test_builders_give_the_described_shapes(kind):
    reg = rnn.build_sequence_regressor(kind, 4, length=10, features=2)
    assert reg.output_shape == (None, 1)
    clf = rnn.build_sequence_classifier(kind, 4, length=40, features=1, num_classes=10)
    assert clf.output_shape == (None, 10)
    assert clf.count_params() == rnn.recurrent_param_count(kind, 1, 4) + (4 + 1) * 10
    X = sequences(2, 40, 1)
    np.testing.assert_allclose(np.asarray(clf(X)).sum(axis=1), 1.0, rtol=1e-5)


def test_char_model_predicts_a_distribution_at_every_step():
    model = rnn.build_char_model(7, 8)
    out = np.asarray(model(np.eye(7, dtype=np.float32)[None, [0, 3, 5, 1]]))
    assert out.shape == (1, 4, 7)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_generate_text_follows_the_numpy_lstm_and_is_seeded():
    keras.utils.set_random_seed(0)
    vocab = list("abc ")
    model = rnn.build_char_model(len(vocab), 5, compile=False)
    lw, dw = model.layers[0].get_weights(), model.layers[1].get_weights()
    a = rnn.generate_text(lw, dw, vocab, "ab", 20, seed=1)
    assert a.startswith("ab") and len(a) == 22 and set(a) <= set(vocab)
    assert a == rnn.generate_text(lw, dw, vocab, "ab", 20, seed=1)
    # near-zero temperature picks the model's most likely next character
    probs = np.asarray(model(np.eye(4, dtype=np.float32)[None, [0, 1]]))[0, -1]
    greedy = rnn.generate_text(lw, dw, vocab, "ab", 1, temperature=1e-6)
    assert greedy[-1] == vocab[int(probs.argmax())]


def test_gradient_by_lag_is_zero_for_inputs_a_model_ignores():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6, 2))
    last = keras.layers.Lambda(lambda x: x[:, -1, :1] * 3.0)(inputs)   # depends on x[T-1, 0] only
    model = keras.Model(inputs, last)
    g = rnn.gradient_by_lag(model, sequences(4, 6, 2))
    np.testing.assert_allclose(g, [3, 0, 0, 0, 0, 0])
    mask = np.zeros((4, 6))
    mask[:, 0] = 1
    g = rnn.gradient_by_lag(model, sequences(4, 6, 2), feature=0, mask=mask)
    assert np.isnan(g[0]) and g[-1] == 0


def test_plot_unrolled_rnn_draws_a_titled_figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = rnn.plot_unrolled_rnn(3)
    assert ax.get_title() and ax.get_xlabel() == "time step"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t = 1", "t = 2", "t = 3"]
    plt.close("all")


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, words", [
    (lambda: rnn.adding_problem(0, 10), "num_samples"),
    (lambda: rnn.adding_problem(10, 1), "length"),
    (lambda: rnn.adding_problem(10, 10, seed=-1), "seed"),
    (lambda: rnn.dna_sequences(10, 5, motif="TATAAT"), "motif"),
    (lambda: rnn.dna_sequences(10, motif="TAXA"), "motif"),
    (lambda: rnn.dna_sequences(10, with_motif=1.5), "with_motif"),
    (lambda: rnn.one_hot_dna(["ACGT", "AC"]), "same length"),
    (lambda: rnn.one_hot_dna(["ACGN"]), "A, C, G, T"),
    (lambda: rnn.synthetic_series(10, "stocks"), "kind"),
    (lambda: rnn.synthetic_series(10, volatility=0), "volatility"),
    (lambda: rnn.sliding_windows(np.arange(5.0), 5), "too short"),
    (lambda: rnn.encode_text("xyz", ["x", "y"]), "vocabulary"),
    (lambda: rnn.next_char_windows(np.arange(3), 3), "window"),
    (lambda: rnn.rnn_step(np.ones(3), np.ones(4), np.ones((3, 4)), np.ones((4, 4)), activation="softsign"), "activation"),
    (lambda: rnn.rnn_forward(np.ones((5, 2)), np.ones((3, 4)), np.ones((4, 4))), "features"),
    (lambda: rnn.lstm_step(np.ones(3), np.ones(4), np.ones(4), np.ones((3, 4)), np.ones((4, 4))), "recurrent_kernel"),
    (lambda: rnn.lstm_step(np.ones(3), np.ones(4), np.ones(4), np.ones((3, 16)), np.ones((4, 16)), np.ones(4)), "bias"),
    (lambda: rnn.lstm_step(np.ones(3), np.ones(5), np.ones(4), np.ones((3, 16)), np.ones((4, 16))), "h_prev"),
    (lambda: rnn.gru_step(np.ones(3), np.ones(4), np.ones((3, 12)), np.ones((4, 12)), np.ones(12)), "bias"),
    (lambda: rnn.recurrent_param_count("transformer", 1, 1), "kind"),
    (lambda: rnn.build_sequence_regressor("lstm", 0), "units"),
    (lambda: rnn.build_sequence_classifier("gru", 4, num_classes=1), "num_classes"),
    (lambda: rnn.build_sequence_regressor("lstm", 4, learning_rate=-1), "learning_rate"),
    (lambda: rnn.plot_unrolled_rnn(0), "steps"),
])
def test_bad_arguments_raise_clear_value_errors(call, words):
    with pytest.raises(ValueError, match=words):
        call()
