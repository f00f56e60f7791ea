"""The shallow_deep exercise's tests reject plausible wrong answers, with a helpful message that
points at the mistake, and accept other correct answers, however they are written."""
import pytest

from nbtools import Exercise, assert_rejected, assert_same_results

ex = Exercise("shallow_deep")
run_part = ex.run_part


def dense_answer(body: str) -> str:
    return f"def dense_forward(x, W, b):\n    x, W, b = np.asarray(x, float), np.asarray(W, float), np.asarray(b, float)\n    {body}\n"


# --- Part 1: dense forward pass --------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ("return x @ W", ["expected", "got", "left out the bias"]),                                   # missing bias
    ("return x @ W.T + b", ["raised ValueError", "do not transpose W"]),       # transposed weights (crashes)
    ("return (W.T @ x.T).T.T + b", ["one row per example"]),                   # output transposed
    ("return np.maximum(x @ W + b, 0)", ["no activation"]),                    # ReLU applied too early
    ("return x @ W - b", ["x @ W + b"]),                                       # sign of the bias
])
def test_part1_rejects_plausible_wrong_answers(body, words):
    assert_rejected(run_part("part1", dense_answer(body)), *words)


def test_part1_hidden_tests_catch_transposed_weights_on_square_kernels():
    # x @ W.T + b crashes on the visible example; if it only ran on square kernels it would pass
    # nothing either: the hidden tests include square kernels and name the mistake.
    answer = dense_answer("return x @ (W.T if W.shape[0] == W.shape[1] else W) + b")
    assert_rejected(run_part("part1", answer), "not x @ W.T")


@pytest.mark.parametrize("body", [
    "return np.dot(x, W) + b",
    "return np.einsum('ni,iu->nu', x, W) + b[None, :]",
    "return np.array([[sum(row[i] * W[i, j] for i in range(len(row))) + b[j] for j in range(W.shape[1])] for row in x])",
])
def test_part1_accepts_other_correct_answers(body):
    outcome = run_part("part1", dense_answer(body))
    assert outcome.passed, outcome.error


# --- Part 2: ReLU -------------------------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ("return 1 / (1 + np.exp(-z))", ["sigmoid"]),                             # sigmoid for ReLU
    ("return np.abs(z)", ["absolute value"]),
    ("return np.where(z > 0, z, 0.01 * z)", ["max(0, z)"]),                    # leaky ReLU
    ("z[z < 0] = 0\n    return z", ["must not change its input"]),             # overwrites the input
])
def test_part2_rejects_plausible_wrong_answers(body, words):
    answer = f"def relu(z):\n    {body}\n"
    assert_rejected(run_part("part2", answer), *words)


@pytest.mark.parametrize("body", [
    "return z * (z > 0)",
    "return np.where(z > 0, z, 0.0)",
    "return np.clip(z, 0, None)",
    "out = np.array(z, dtype=float)\n    out[out < 0] = 0\n    return out",
])
def test_part2_accepts_other_correct_answers(body):
    outcome = run_part("part2", f"def relu(z):\n    {body}\n")
    assert outcome.passed, outcome.error


# --- Part 3: parameter counting ---------------------------------------------------------------
def count_answer(expression: str) -> str:
    return ("def count_parameters(layer_sizes):\n"
            "    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))\n"
            f"    return {expression}\n\n"
            "shallow_params = count_parameters([40, 298, 10])\n"
            "deep_params = count_parameters([40, 100, 100, 10])\n")


@pytest.mark.parametrize("expression, words", [
    ("sum(a * c for a, c in pairs)", ["each unit also has a bias"]),           # missing bias
    ("sum(a * (c + 1) for a, c in pairs)", ["one bias per unit"]),             # bias per input
    ("sum(layer_sizes)", ["connections"]),                                     # counts units
    ("float(sum((a + 1) * c for a, c in pairs))", ["int"]),                    # not an int
])
def test_part3_rejects_plausible_wrong_answers(expression, words):
    assert_rejected(run_part("part3", count_answer(expression)), *words)


def test_part3_hidden_tests_catch_an_answer_that_only_knows_the_visible_examples():
    answer = count_answer("{(40, 10): 410, (40, 100, 100, 10): 15210}.get(tuple(layer_sizes), 0)")
    assert ex.run({"part3_answer": answer}, stop_after="part3_answer")["part3_answer"].passed
    assert_rejected(run_part("part3", answer), "count_parameters([40, 298, 10])")


@pytest.mark.parametrize("answer", [
    count_answer("int(np.sum([(a + 1) * c for a, c in pairs]))"),
    count_answer("np.sum([(a + 1) * c for a, c in pairs])"),                  # a NumPy integer is fine
    """
def count_parameters(layer_sizes):
    total = 0
    for i in range(1, len(layer_sizes)):
        total += layer_sizes[i - 1] * layer_sizes[i]   # weights
        total += layer_sizes[i]                        # biases
    return total

shallow_params, deep_params = count_parameters([40, 298, 10]), count_parameters([40, 100, 100, 10])
""",
])
def test_part3_accepts_other_correct_answers(answer):
    outcome = run_part("part3", answer)
    assert outcome.passed, outcome.error


# --- Part 4: gradient norms ---------------------------------------------------------------------
SOLUTION4 = ex.source("part4_answer")


def norms_answer(norm: str, rest: str = "") -> str:
    body = SOLUTION4.split("### BEGIN SOLUTION")[2].split("### END SOLUTION")[0]
    return (f"def kernel_gradient_norms(grads):\n    return np.array([{norm} for dW, db in grads])\n"
            + body + rest)


@pytest.mark.parametrize("answer, words", [
    (norms_answer("np.linalg.norm(db)"), ["bias gradient"]),                   # bias instead of kernel
    (norms_answer("np.linalg.norm(dW)").replace(
        "return np.array([np.linalg.norm(dW) for dW, db in grads])",
        "return np.array([np.linalg.norm(dW) for dW, db in grads][::-1])"), ["first to last"]),
    (norms_answer("np.abs(dW).sum()"), ["square root"]),                       # L1 instead of L2
    (norms_answer("np.linalg.norm(dW)", "\nvanishing_activation = 'relu'\n"), ["vanishing_activation"]),
    (norms_answer("np.linalg.norm(dW)", "\nratio_sigmoid = sigmoid_norms[-1] / sigmoid_norms[0]\n"),
     ["ratio_sigmoid", "sigmoid_norms[0] / sigmoid_norms[-1]"]),
    (norms_answer("np.linalg.norm(dW)", "\nrelu_norms = kernel_gradient_norms(sigmoid_grads)\n"), ["relu_norms"]),
])
def test_part4_rejects_plausible_wrong_answers(answer, words):
    assert_rejected(run_part("part4", answer), *words)


def test_part4_visible_test_does_not_print_the_answer_to_a_wrong_guess():
    # the visible checks come first, so the failure is the visible test's message
    outcome = run_part("part4", norms_answer("np.linalg.norm(dW)", "\nvanishing_activation = 'relu'\n"))
    assert_rejected(outcome, "vanishing_activation", "expected True, got False")
    assert "'sigmoid'" not in outcome.error and '"sigmoid"' not in outcome.error, outcome.error


@pytest.mark.parametrize("answer", [
    norms_answer("np.sqrt(np.sum(dW ** 2))"),
    norms_answer("np.linalg.norm(dW, 'fro')", "\nvanishing_activation = 'Sigmoid'\n"),
    """
def kernel_gradient_norms(grads):
    return [float(np.sqrt((pair[0] * pair[0]).sum())) for pair in grads]   # a list is fine

sigmoid_norms = np.array(kernel_gradient_norms(sigmoid_grads))
relu_norms = np.array(kernel_gradient_norms(relu_grads))
ratio_sigmoid, ratio_relu = sigmoid_norms[0] / sigmoid_norms[9], relu_norms[0] / relu_norms[9]
vanishing_activation = "sigmoid"
""",
])
def test_part4_accepts_other_correct_answers(answer):
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


# --- Part 5: a deep MLP in Keras ------------------------------------------------------------------
SOLUTION5 = ex.source("part5_answer")


@pytest.mark.parametrize("old, new, words", [
    ('keras.layers.Dense(100, activation="relu"),\n        keras.layers.Dense(100, activation="relu")',
     'keras.layers.Dense(100, activation="sigmoid"),\n        keras.layers.Dense(100, activation="sigmoid")',
     ["not sigmoid"]),                                                          # sigmoid for ReLU
    ('        keras.layers.Dense(100, activation="relu"),\n        keras.layers.Dense(100, activation="relu"),\n',
     '        keras.layers.Dense(300, activation="relu"),\n', ["at least two"]),  # shallow
    ('keras.layers.Dense(10, activation="softmax")', 'keras.layers.Dense(10)', ["softmax"]),
    ('loss="sparse_categorical_crossentropy"', 'loss="categorical_crossentropy"', ["integers"]),
    ("mlp_test_accuracy = float(deep_mlp.evaluate(X_test, y_test, verbose=0)[1])",
     "mlp_test_accuracy = float(deep_mlp.evaluate(X_train, y_train, verbose=0)[1])", ["test set"]),
    ("deep_mlp.fit(X_train, y_train,", "deep_mlp.fit(X_test, y_test,", ["new MNIST-1D sequences"]),  # trained on the test set
    ('keras.layers.Dense(100, activation="relu"),\n        keras.layers.Dense(100, activation="relu")',
     'keras.layers.Dense(400, activation="relu"),\n        keras.layers.Dense(400, activation="relu")',
     ["parameters"]),                                                           # over the budget
])
def test_part5_rejects_plausible_wrong_answers(old, new, words):
    assert old in SOLUTION5
    assert_rejected(run_part("part5", SOLUTION5.replace(old, new)), *words)


def test_part5_accepts_a_different_correct_model():
    answer = """
def build_deep_mlp():
    L = keras.layers
    model = keras.Sequential()
    model.add(keras.Input(shape=(40,)))
    for units in (128, 64, 32):
        model.add(L.Dense(units))
        model.add(L.ReLU())
    model.add(L.Dropout(0.05))
    model.add(L.Dense(10, activation=keras.activations.softmax))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model

keras.utils.set_random_seed(0)
deep_mlp = build_deep_mlp()
history = deep_mlp.fit(X_train, y_train, epochs=20, batch_size=100, verbose=0, validation_data=(X_test, y_test))
mlp_test_accuracy = history.history["val_accuracy"][-1]
"""
    outcome = run_part("part5", answer)
    assert outcome.passed, outcome.error


@pytest.mark.parametrize("answer", [
    # Dense -> BatchNormalization -> ReLU, in the functional API
    """
def build_deep_mlp():
    inputs = keras.Input(shape=(40,))
    x = inputs
    for _ in range(2):
        x = keras.layers.Dense(100)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

deep_mlp = build_deep_mlp()
deep_mlp.fit(X_train, y_train, epochs=20, batch_size=100, verbose=0)
mlp_test_accuracy = deep_mlp.evaluate(X_test, y_test, verbose=0)[1]
""",
    # Dense -> Dropout -> Activation("relu"), a Sequential built from a list comprehension
    """
def build_deep_mlp():
    hidden = [layer for _ in range(2) for layer in
              (keras.layers.Dense(100), keras.layers.Dropout(0.0), keras.layers.Activation("relu"))]
    model = keras.Sequential([keras.Input(shape=(40,)), *hidden, keras.layers.Dense(10), keras.layers.Softmax()])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

deep_mlp = build_deep_mlp()
deep_mlp.fit(X_train, y_train, epochs=20, batch_size=100, verbose=0)
mlp_test_accuracy = float(deep_mlp.evaluate(X_test, y_test, verbose=0)[1])
""",
])
def test_part5_accepts_normalisation_or_dropout_between_a_layer_and_its_relu(answer):
    outcome = run_part("part5", answer)
    assert outcome.passed, outcome.error


# --- the whole notebook ---------------------------------------------------------------------------
def test_answers_that_rebind_builtins_scratch_names_and_the_seed_lose_no_points():
    """`from numpy import *` (sum, any, all, max, bool, ...) and scratch variables at the end of
    every answer cell change no test's verdict."""
    assert_same_results(ex, ["mlp_test_accuracy"])


def test_solution_passes_every_test_and_the_blank_notebook_none():
    solved = ex.solved()
    assert not solved.failing(), {gid: solved.message(gid) for gid in solved.failing()}
    blank = ex.run(base="blank")
    assert all(not blank.passed(gid) for gid in ex.test_ids())


# --- Part 6: make ten layers learn (graded by the outcome on new sequences) ----------------------
def test_part6_rejects_sigmoid_layers_trained_with_sgd():
    """Ten sigmoid layers stay at chance (about 10 % for five seeds, with either initializer)."""
    outcome = run_part("part6", 'deep_activation = "sigmoid"\ndeep_initializer = "glorot_uniform"\n')
    assert_rejected(outcome, "part 4")


@pytest.mark.parametrize("answer", [
    'deep_activation = "tanh"\ndeep_initializer = "glorot_uniform"\n',     # tanh's slope is 1 at 0
    'deep_activation = " ReLU"[1:].lower()\ndeep_initializer = "glorot_uniform"\n',
])
def test_part6_accepts_other_designs_that_learn(answer):
    outcome = run_part("part6", answer)
    assert outcome.passed, outcome.error


def test_part6_says_which_names_there_are():
    assert_rejected(run_part("part6", 'deep_activation = "ReLU"\ndeep_initializer = "he_normal"\n'),
                    "'sigmoid', 'tanh' or 'relu'")
