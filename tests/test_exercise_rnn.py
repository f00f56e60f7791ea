"""The RNN exercise's tests reject plausible wrong answers (wrong nonlinearity, state not carried,
wrong concatenation order, wrong gate order, ...) with a helpful message, and accept other correct
answers, however they are written."""
import pytest

from nbtools import Exercise, assert_rejected, assert_same_results

ex = Exercise("rnn")
run_part = ex.run_part


# --- Part 1: one step of a simple recurrent layer -------------------------------------------
STEP = "def rnn_step(x_t, h_prev, W, U, b):\n    return {}\n"


@pytest.mark.parametrize("body, words", [
    ("1 / (1 + np.exp(-(x_t @ W + h_prev @ U + b)))", ["expected", "got", "tanh"]),    # sigmoid
    ("np.maximum(0, x_t @ W + h_prev @ U + b)", ["expected", "got", "tanh"]),          # ReLU
    ("np.tanh(x_t @ W + b)", ["expected", "got", "h_prev @ U"]),                       # no recurrence
    ("np.tanh(x_t @ U + h_prev @ W + b)", ["raised", "h_prev @ U"]),                   # W and U swapped
    ("np.tanh(x_t @ W + h_prev @ U)", ["expected", "got"]),                            # bias forgotten
    ("np.tanh(x_t @ W + h_prev @ U.T + b)", ["expected", "got"]),                      # U transposed
])
def test_part1_rejects_plausible_wrong_steps(body, words):
    assert_rejected(run_part("part1", STEP.format(body)), *words)


def test_part1_hidden_tests_catch_swapped_weights_when_shapes_agree():
    """With d == units the swap runs without an error; the hidden tests still catch it."""
    answer = STEP.format("np.tanh(x_t @ U + h_prev @ W + b) if W.shape[0] == U.shape[0] "
                         "else np.tanh(x_t @ W + h_prev @ U + b)")
    assert_rejected(run_part("part1", answer), "x_t @ W")


@pytest.mark.parametrize("body", [
    "np.tanh(np.dot(x_t, W) + np.dot(h_prev, U) + b)",
    "np.tanh(np.einsum('nd,du->nu', x_t, W) + np.einsum('nv,vu->nu', h_prev, U) + b[None, :])",
    "np.tanh(np.concatenate([x_t, h_prev], axis=1) @ np.vstack([W, U]) + b)",
    "np.array([np.tanh(x @ W + h @ U + b) for x, h in zip(x_t, h_prev)])",
])
def test_part1_accepts_other_correct_answers(body):
    outcome = run_part("part1", STEP.format(body))
    assert outcome.passed, outcome.error


# --- Part 2: unrolling over time ----------------------------------------------------------
FORWARD = """
def rnn_forward(X, W, U, b):
    n, T, _ = X.shape
    h = np.zeros((n, U.shape[0]))
    states = []
    for t in range(T):
        h = rnn_step(X[:, t], h, W, U, b)
        states.append(h)
    return np.stack(states, axis=1)
"""


@pytest.mark.parametrize("wrong, words", [
    (FORWARD.replace("h = rnn_step(X[:, t], h, W, U, b)",
                     "h = rnn_step(X[:, t], np.zeros((n, U.shape[0])), W, U, b)"), ["carry the state"]),  # state not carried
    (FORWARD.replace("return np.stack(states, axis=1)", "return h"), ["shape", "every state"]),          # last state only
    (FORWARD.replace("np.stack(states, axis=1)", "np.stack(states)"), ["shape"]),                       # (T, n, units)
    (FORWARD.replace("h = rnn_step(X[:, t], h", "h = rnn_step(X[t], h"), ["rnn_forward"]),              # wrong axis
    (FORWARD.replace("states = []", "states = [h]"), ["shape"]),                                        # h_0 included
    (FORWARD.replace("for t in range(T):", "for t in reversed(range(T)):"), ["expected", "got"]),       # read backwards
])
def test_part2_rejects_plausible_wrong_unrolling(wrong, words):
    assert_rejected(run_part("part2", wrong), *words)


def test_part2_hidden_tests_catch_the_time_axis_mixed_up_with_the_batch_axis():
    """X[t] instead of X[:, t] crashes on the visible example; when n == T it silently runs."""
    wrong = FORWARD.replace("h = rnn_step(X[:, t], h", "h = rnn_step(X[t] if n == T else X[:, t], h")
    assert_rejected(run_part("part2", wrong), "X[:, t] is step t")


@pytest.mark.parametrize("answer", [
    """
def rnn_forward(X, W, U, b):
    H = np.zeros((X.shape[0], X.shape[1], W.shape[1]))
    h = np.zeros((X.shape[0], W.shape[1]))
    for t in range(X.shape[1]):
        h = np.tanh(X[:, t, :] @ W + h @ U + b)
        H[:, t, :] = h
    return H
""",
    """
def rnn_forward(X, W, U, b):
    h, out = 0, []
    for x_t in np.transpose(X, (1, 0, 2)):       # time first
        h = np.tanh(x_t @ W + h @ U + b) if np.ndim(h) else np.tanh(x_t @ W + b)
        out.append(h)
    return np.transpose(np.array(out), (1, 0, 2))
""",
])
def test_part2_accepts_other_correct_answers(answer):
    outcome = run_part("part2", answer)
    assert outcome.passed, outcome.error


# --- Part 3: one LSTM step ----------------------------------------------------------------
LSTM = """
def lstm_step(x_t, h_prev, c_prev, W, b):
    sig = lambda z: 1 / (1 + np.exp(-z))
    z = np.concatenate([x_t, h_prev], axis=1) @ W + b
    u = h_prev.shape[1]
    z_i, z_f, z_g, z_o = z[:, :u], z[:, u:2*u], z[:, 2*u:3*u], z[:, 3*u:]
    i, f, g, o = sig(z_i), sig(z_f), np.tanh(z_g), sig(z_o)
    c_t = f * c_prev + i * g
    h_t = o * np.tanh(c_t)
    return h_t, c_t
"""


@pytest.mark.parametrize("wrong, words", [
    (LSTM.replace("sig(z_i), sig(z_f), np.tanh(z_g), sig(z_o)",
                  "np.tanh(z_i), np.tanh(z_f), np.tanh(z_g), np.tanh(z_o)"), ["sigmoid"]),        # tanh gates
    (LSTM.replace("np.tanh(z_g)", "sig(z_g)"), ["tanh"]),                                           # sigmoid candidate
    (LSTM.replace("[x_t, h_prev]", "[h_prev, x_t]"), ["[x_t, h_prev] in this order"]),               # concatenation order
    (LSTM.replace("z_i, z_f, z_g, z_o = z[:, :u]", "z_i, z_f, z_o, z_g = z[:, :u]"), ["i, f, g, o"]),  # gate order i, f, o, g
    (LSTM.replace("z_i, z_f, z_g, z_o = z[:, :u]", "z_i, z_g, z_f, z_o = z[:, :u]"), ["i, f, g, o"]),  # TF1's order i, g, f, o
    (LSTM.replace("h_t = o * np.tanh(c_t)", "h_t = o * c_t"), ["h_t = o * tanh(c_t)"]),             # no tanh on the cell
    (LSTM.replace("c_t = f * c_prev + i * g", "c_t = c_prev + i * g"), ["c_t with zero weights"]),  # no forget gate
    (LSTM.replace("c_t = f * c_prev + i * g", "c_t = f * c_prev + g"), ["expected", "got"]),        # no input gate
    (LSTM.replace("return h_t, c_t", "return c_t, h_t"), ["c_t with zero weights"]),                # outputs swapped
])
def test_part3_rejects_plausible_wrong_lstm_steps(wrong, words):
    assert_rejected(run_part("part3", wrong), *words)


def test_part3_hidden_tests_catch_the_wrong_concatenation_order_on_their_own():
    """An answer that gets the visible examples right by special-casing them still fails."""
    wrong = LSTM.replace("[x_t, h_prev]", "[x_t, h_prev] if x_t.shape[0] == 1 else [h_prev, x_t]")
    assert_rejected(run_part("part3", wrong), "first d rows of W multiply x_t")


@pytest.mark.parametrize("answer", [
    """
from scipy.special import expit
def lstm_step(x_t, h_prev, c_prev, W, b):
    d = x_t.shape[1]
    z = x_t @ W[:d] + h_prev @ W[d:] + b
    i, f, g, o = np.split(z, 4, axis=-1)
    c = expit(f) * c_prev + expit(i) * np.tanh(g)
    return expit(o) * np.tanh(c), c
""",
    """
def lstm_step(x_t, h_prev, c_prev, W, b):
    sigmoid = lambda z: 0.5 * (1 + np.tanh(z / 2))          # the same function, written differently
    gates = np.hstack((x_t, h_prev)).dot(W) + b
    units = c_prev.shape[-1]
    blocks = [gates[:, k * units:(k + 1) * units] for k in range(4)]
    c_t = sigmoid(blocks[1]) * c_prev + sigmoid(blocks[0]) * np.tanh(blocks[2])
    h_t = sigmoid(blocks[3]) * np.tanh(c_t)
    return (h_t, c_t)
""",
    # a list of the two, as the task allows
    ex.source("part3_answer").replace("return h_t, c_t", "return [h_t, c_t]"),
])
def test_part3_accepts_other_correct_answers(answer):
    outcome = run_part("part3", answer)
    assert outcome.passed, outcome.error


# --- Part 4: a Keras LSTM on the adding problem (each run trains for a few seconds) ----------
TAUGHT = ex.source("part4_answer")


def test_part4_rejects_an_untrained_model():
    wrong = TAUGHT.replace("history = adding_model.fit(", "history = None and adding_model.fit(")
    assert_rejected(run_part("part4", wrong), "val_mse", "at most 0.05")


def test_part4_rejects_a_number_not_measured_on_the_validation_set():
    wrong = TAUGHT.replace("history = adding_model.fit(", "history = None and adding_model.fit(") \
        .replace("val_mse = float(adding_model.evaluate(X_val, y_val, verbose=0))", "val_mse = 0.001")
    assert_rejected(run_part("part4", wrong), "validation set")


def test_part4_rejects_a_list_of_losses():
    wrong = TAUGHT.replace("epochs=10", "epochs=1") \
        .replace("val_mse = float(adding_model.evaluate(X_val, y_val, verbose=0))",
                 "val_mse = history.history['val_loss']")
    assert_rejected(run_part("part4", wrong), "a number")


def test_part4_requires_an_lstm():
    wrong = TAUGHT.replace("keras.layers.LSTM(16)", "keras.layers.Flatten(), keras.layers.Dense(16, activation='relu')")
    assert_rejected(run_part("part4", wrong), "LSTM")


def test_part4_accepts_the_functional_api_and_a_loss_object():
    answer = """
inputs = keras.Input(shape=(LENGTH, 2))
outputs = keras.layers.Dense(units=1)(keras.layers.LSTM(units=16)(inputs))
adding_model = keras.Model(inputs, outputs)
adding_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss=keras.losses.MeanSquaredError())
adding_model.fit(X_train, y_train, batch_size=64, epochs=10, verbose=0)
val_mse = float(np.mean((adding_model.predict(X_val, verbose=0)[:, 0] - y_val) ** 2))
print(val_mse)
"""
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


# --- The written answer ----------------------------------------------------------------------
def test_written_answer_is_graded_by_hand_and_blank_in_the_release():
    points = ex.points()
    assert points["written_answer"] > 0
    released = ex.source("written_answer", "release")
    assert "gradient" not in released.lower()


# --- the whole notebook ---------------------------------------------------------------------
def test_answers_that_rebind_builtins_scratch_names_and_the_seed_lose_no_points():
    """`from numpy import *` (sum, any, all, max, bool, ...), scratch variables and a seed of the
    student's own at the end of every answer cell change no test's verdict and no graded training
    run: each training starts from the seed its locked part sets."""
    assert_same_results(ex, ["val_mse"])


# --- Part 5: the length where the SimpleRNN gives up (graded on new sequences) -------------------
def test_part5_rejects_a_length_where_the_simple_layer_still_learns():
    assert_rejected(run_part("part5", "long_length = 10\n"), "try longer sequences")


def test_part5_says_what_kind_of_number():
    assert_rejected(run_part("part5", "long_length = 100\n"), "from 5 to 60")


def test_part4_rejects_an_lstm_of_another_size():
    """LSTM(17) learns the adding problem too, but the task asks for 16 units (a surviving mutant)."""
    answer = ex.source("part4_answer").replace("keras.layers.LSTM(16)", "keras.layers.LSTM(17)")
    assert answer != ex.source("part4_answer")
    assert_rejected(run_part("part4", answer), "16 units")
