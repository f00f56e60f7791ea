"""The CNN exercise's tests reject plausible wrong answers, with a helpful message, and accept
other correct answers, however they are written."""
import pytest

from nbtools import Exercise, assert_rejected, assert_same_results

ex = Exercise("cnn")
run_part = ex.run_part


# --- Part 1: convolution -------------------------------------------------------------------
FLIPPED_KERNEL = """
def convolve2d(image, kernel, stride=1):
    kernel = np.flip(np.asarray(kernel, float))           # true convolution: flipped
    kh, kw = kernel.shape
    oh, ow = (image.shape[0] - kh) // stride + 1, (image.shape[1] - kw) // stride + 1
    return np.array([[np.sum(image[i*stride:i*stride+kh, j*stride:j*stride+kw] * kernel)
                      for j in range(ow)] for i in range(oh)])
"""
STRIDE_IGNORED = FLIPPED_KERNEL.replace("kernel = np.flip(np.asarray(kernel, float))", "kernel = np.asarray(kernel, float)") \
    .replace("// stride + 1", "+ 1").replace("i*stride", "i").replace("j*stride", "j")
OFF_BY_ONE = FLIPPED_KERNEL.replace("kernel = np.flip(np.asarray(kernel, float))", "kernel = np.asarray(kernel, float)") \
    .replace("// stride + 1", "// stride")
SQUARE_ONLY = FLIPPED_KERNEL.replace("kernel = np.flip(np.asarray(kernel, float))", "kernel = np.asarray(kernel, float)") \
    .replace("kh, kw = kernel.shape", "kh = kw = kernel.shape[0]")
SCIPY_ANSWER = """
from scipy.signal import correlate2d
def convolve2d(image, kernel, stride=1):
    return correlate2d(image, kernel, mode="valid")[::stride, ::stride]
"""


@pytest.mark.parametrize("answer, words", [
    (FLIPPED_KERNEL, "do not flip"),
    (STRIDE_IGNORED, "shape"),
    (OFF_BY_ONE, "shape"),
])
def test_part1_rejects_plausible_wrong_convolutions(answer, words):
    outcome = run_part("part1", answer)
    assert not outcome.passed
    assert "expected" in outcome.error and "got" in outcome.error and "Hint:" in outcome.error
    assert words in outcome.error


def test_part1_hidden_tests_catch_a_square_only_kernel():
    outcome = run_part("part1", SQUARE_ONLY)
    assert not outcome.passed and "non-square" in outcome.error


def test_part1_accepts_a_vectorised_answer():
    assert run_part("part1", SCIPY_ANSWER).passed


# --- Part 2: output size -------------------------------------------------------------------
@pytest.mark.parametrize("answer", [
    "def output_size(n, kernel_size, stride=1, padding='valid'):\n    return (n - kernel_size) / stride + 1",  # float
    "def output_size(n, kernel_size, stride=1, padding='valid'):\n    return n if padding == 'same' else (n - kernel_size) // stride + 1",  # same ignores stride
    "def output_size(n, kernel_size, stride=1, padding='valid'):\n    return n // stride if padding == 'same' else (n - kernel_size) // stride + 1",  # floor for same
    "def output_size(n, kernel_size, stride=1, padding='valid'):\n    return -(-n // stride) if padding == 'same' else (n - kernel_size) // stride",  # off by one
])
def test_part2_rejects_plausible_wrong_formulas(answer):
    outcome = run_part("part2", answer)
    assert not outcome.passed and "Hint:" in outcome.error


def test_part2_accepts_math_ceil():
    answer = ("import math\ndef output_size(n, kernel_size, stride=1, padding='valid'):\n"
              "    return math.ceil(n / stride) if padding == 'same' else math.floor((n - kernel_size) / stride) + 1")
    assert run_part("part2", answer).passed


# --- Part 3: pooling -----------------------------------------------------------------------
GOOD_POOL = """
def _windows(x, p, s):
    x = np.asarray(x, float)
    return np.array([[x[i:i+p, j:j+p] for j in range(0, x.shape[1] - p + 1, s)]
                     for i in range(0, x.shape[0] - p + 1, s)])
def max_pool(feature_map, pool_size=2, stride=2):
    return _windows(feature_map, pool_size, stride).max(axis=(2, 3))
def average_pool(feature_map, pool_size=2, stride=2):
    return _windows(feature_map, pool_size, stride).mean(axis=(2, 3))
"""


def test_part3_accepts_a_different_correct_answer():
    assert run_part("part3", GOOD_POOL).passed


@pytest.mark.parametrize("wrong, words", [
    (GOOD_POOL.replace(".max(axis=(2, 3))", ".mean(axis=(2, 3))"), "max_pool(fmap)"),          # max and average swapped
    (GOOD_POOL.replace("range(0, x.shape[1] - p + 1, s)", "range(0, x.shape[1] - p + 1, p)")
              .replace("range(0, x.shape[0] - p + 1, s)", "range(0, x.shape[0] - p + 1, p)"), "stride"),  # stride = pool size
    (GOOD_POOL.replace("x.shape[1] - p + 1", "x.shape[1] - p").replace("x.shape[0] - p + 1", "x.shape[0] - p"), "shape"),
])
def test_part3_rejects_plausible_wrong_pooling(wrong, words):
    outcome = run_part("part3", wrong)
    assert not outcome.passed and words in outcome.error


# --- Part 4: the model ---------------------------------------------------------------------
TAUGHT = ex.source("part4_answer")


@pytest.mark.parametrize("wrong, words", [
    (TAUGHT.replace("MaxPooling2D", "AveragePooling2D"), "max pooling"),                      # same parameter count!
    (TAUGHT.replace('Dense(100, activation="relu")', 'Dense(100, activation="sigmoid")'), "ReLU"),
    (TAUGHT.replace('activation="softmax"', 'activation="sigmoid"'), "softmax"),
    (TAUGHT.replace('loss="categorical_crossentropy"', 'loss="sparse_categorical_crossentropy"'), "categorical_crossentropy"),
    (TAUGHT.replace("Conv2D(32, (2, 2)", "Conv2D(32, (3, 3)"), "parameters"),
    (TAUGHT.replace("keras.layers.Dense(num_classes", "keras.layers.Dense(10"), "num_classes"),
])
def test_part4_rejects_plausible_wrong_models(wrong, words):
    outcome = run_part("part4", wrong)
    assert not outcome.passed and words in outcome.error, outcome.error


def test_part4_accepts_separate_relu_layers_and_loss_objects():
    answer = """
def build_model(input_shape, num_classes):
    L = keras.layers
    model = keras.Sequential()
    model.add(keras.Input(shape=input_shape))
    model.add(L.Conv2D(16, 2)); model.add(L.ReLU())
    model.add(L.MaxPooling2D(2))
    model.add(L.Conv2D(32, kernel_size=2, strides=1)); model.add(L.Activation("relu"))
    model.add(L.MaxPooling2D(pool_size=2, strides=2))
    model.add(L.Flatten()); model.add(L.Dense(100, activation=keras.activations.relu))
    model.add(L.Dense(num_classes)); model.add(L.Softmax())
    model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model
"""
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


def test_part4_accepts_the_functional_api():
    answer = """
def build_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 2, activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dense(100, activation="relu")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
"""
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


# --- Part 5: training (slow parts avoided: only the checks on the reported number) ----------
def test_part5_rejects_training_accuracy_reported_as_test_accuracy():
    answer = ex.source("part5_answer").replace(
        "test_accuracy = float(digits_model.evaluate(X_test, Y_test, verbose=0)[1])",
        "test_accuracy = float(history.history['accuracy'][-1])")
    outcome = ex.run({"part5_answer": answer}, stop_after="part5_tests")["part5_tests"]
    assert not outcome.passed and "test set" in outcome.error


# --- the whole notebook ---------------------------------------------------------------------
def test_answers_that_rebind_builtins_scratch_names_and_the_seed_lose_no_points():
    """`from numpy import *` (sum, any, all, max, bool, ...), scratch variables and a seed of the
    student's own at the end of every answer cell change no test's verdict and no graded training
    run: each training starts from the seed its locked part sets."""
    assert_same_results(ex, ["test_accuracy"])


def test_part5_rejects_a_model_trained_on_the_test_set():
    answer = ex.source("part5_answer").replace("digits_model.fit(X_train, Y_train,", "digits_model.fit(X_test, Y_test,")
    assert answer != ex.source("part5_answer")
    assert_rejected(run_part("part5", answer), "X_train")


# --- Part 6: the design for small images (graded by the outcome on the test digits) ----------------
def test_part6_rejects_the_taught_padding_and_pooling_on_8x8_digits():
    """'valid' padding with two poolings leaves one pixel per filter: about 92 % (five seeds,
    benchmarks/mutation-report.md), under the 95 % the part asks for."""
    assert_rejected(run_part("part6", 'cnn_padding = "valid"\ncnn_pool_size = 2\n'), "one pixel")


def test_part6_accepts_another_design_that_keeps_the_image():
    """No pooling at all keeps a 6 x 6 map with 'valid' padding: a correct design too."""
    outcome = run_part("part6", 'cnn_padding = "valid"\ncnn_pool_size = 1\n')
    assert outcome.passed, outcome.error


@pytest.mark.parametrize("answer, words", [
    ('cnn_padding = "full"\ncnn_pool_size = 2\n', "'valid' or 'same'"),
    ('cnn_padding = "same"\ncnn_pool_size = "2"\n', "1 or 2"),
])
def test_part6_says_which_choices_there_are(answer, words):
    assert_rejected(run_part("part6", answer), words)


def test_part5_rejects_a_model_built_for_other_images():
    """build_model((9, 8, 1), 10) has the same layers and parameters and trains on 8 x 8 digits all
    the same: only its declared input shape tells it apart (a mutant that survived)."""
    answer = ex.source("part5_answer").replace("build_model((8, 8, 1), 10)", "build_model((9, 8, 1), 10)")
    assert answer != ex.source("part5_answer")
    assert_rejected(run_part("part5", answer), "input shape")
