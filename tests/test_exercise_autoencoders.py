"""The autoencoders exercise's tests reject plausible wrong answers, with a helpful message, and
accept other correct answers, however they are written."""
import pytest

from nbtools import Exercise, assert_rejected, assert_same_results

ex = Exercise("autoencoders")
run_part = ex.run_part


# --- Part 1: reconstruction error -----------------------------------------------------------
ERROR = "def reconstruction_error(X, X_hat):\n    return {}\n"


@pytest.mark.parametrize("body, words", [
    ("float(np.sqrt(np.mean((X - X_hat) ** 2)))", "no square root"),                  # RMSE
    ("float(np.mean(np.abs(X - X_hat)))", "square the differences"),                   # mean absolute error
    ("float(np.mean(np.sum((X - X_hat) ** 2, axis=1)))", "square the differences"),    # sum per image
    ("np.mean((X - X_hat) ** 2, axis=1)", "shape"),                                    # one value per image
    ("float(np.mean(X - X_hat) ** 2)", "square the differences"),                      # squared mean difference
])
def test_part1_rejects_plausible_wrong_errors(body, words):
    assert_rejected(run_part("part1", ERROR.format(body)), words)


def test_part1_hidden_tests_catch_an_answer_that_only_works_for_flat_batches():
    answer = ERROR.format("float(np.mean(np.sum((X - X_hat) ** 2, axis=-1)) / X.shape[1])")  # wrong for (n, 8, 8, 1)
    assert_rejected(run_part("part1", answer), "images")


@pytest.mark.parametrize("body", [
    "float(keras.ops.mean(keras.losses.mean_squared_error(np.reshape(X, (len(X), -1)), np.reshape(X_hat, (len(X_hat), -1)))))",
    "((np.asarray(X) - np.asarray(X_hat)) ** 2).mean().item()",
    "float(np.square(np.subtract(X_hat, X)).sum() / np.size(X))",
])
def test_part1_accepts_other_correct_answers(body):
    outcome = run_part("part1", ERROR.format(body))
    assert outcome.passed, outcome.error


# --- Part 2: encoder and decoder ------------------------------------------------------------
TAUGHT_MODELS = ex.source("part2_answer")


@pytest.mark.parametrize("wrong, words", [
    (TAUGHT_MODELS.replace('Dense(output_dim, activation="sigmoid")', "Dense(output_dim)"), "sigmoid"),       # range
    (TAUGHT_MODELS.replace('Dense(output_dim, activation="sigmoid")', 'Dense(output_dim, activation="relu")'), "sigmoid"),
    (TAUGHT_MODELS.replace('Dense(output_dim, activation="sigmoid")', 'Dense(output_dim, activation="tanh")'), "sigmoid"),
    (TAUGHT_MODELS.replace("keras.layers.Dense(code_size),", "keras.layers.Dense(4),"), "code_size"),        # size ignored
    (TAUGHT_MODELS.replace("keras.layers.Dense(code_size),", 'keras.layers.Dense(code_size, activation="relu"),'), "no activation"),
    (TAUGHT_MODELS.replace("keras.layers.Dense(output_dim, ", "keras.layers.Dense(64, "), "output_dim"),
    (TAUGHT_MODELS.replace("keras.Input(shape=(input_dim,))", "keras.Input(shape=(64,))"), "input_dim"),
    (TAUGHT_MODELS.replace('keras.layers.Dense(64, activation="relu"),\n        keras.layers.Dense(output_dim',
                           'keras.layers.Dense(128, activation="relu"),\n        keras.layers.Dense(output_dim'), "64 ReLU units"),
])
def test_part2_rejects_plausible_wrong_models(wrong, words):
    assert wrong != TAUGHT_MODELS
    assert_rejected(run_part("part2", wrong), words)


def test_part2_accepts_functional_models_and_separate_activation_layers():
    answer = """
def build_encoder(input_dim, code_size):
    inputs = keras.Input(shape=(input_dim,))
    hidden = keras.layers.ReLU()(keras.layers.Dense(64)(inputs))
    return keras.Model(inputs, keras.layers.Dense(code_size, activation=None)(hidden))


def build_decoder(code_size, output_dim):
    model = keras.Sequential()
    model.add(keras.Input(shape=(code_size,)))
    model.add(keras.layers.Dense(64, activation=keras.activations.relu))
    model.add(keras.layers.Dense(output_dim))
    model.add(keras.layers.Activation("sigmoid"))
    return model
"""
    outcome = run_part("part2", answer)
    assert outcome.passed, outcome.error


# --- Part 3: masking noise ------------------------------------------------------------------
NOISE = "def add_masking_noise(X, fraction, rng):\n{}\n"


@pytest.mark.parametrize("body, words", [
    ("    X = np.asarray(X)\n    return X * (rng.random(X.shape) >= fraction) / (1 - fraction)", "dropout"),   # rescaled
    ("    X = np.asarray(X)\n    X[rng.random(X.shape) < fraction] = 0\n    return X", "in place"),            # modifies X
    ("    X = np.asarray(X)\n    return X * (rng.random(X.shape) < fraction)", "fraction"),                     # keeps `fraction`
    ("    X = np.asarray(X)\n    return X * (np.random.random(X.shape) >= fraction)", "rng"),                   # ignores rng
    ("    X = np.asarray(X)\n    keep = rng.random((X.shape[0],) + (1,) * (X.ndim - 1)) >= fraction\n    return X * keep",
     "independently"),                                                                                         # whole images
])
def test_part3_rejects_plausible_wrong_noise(body, words):
    assert_rejected(run_part("part3", NOISE.format(body)), words)


@pytest.mark.parametrize("body", [
    "    mask = rng.binomial(1, 1 - fraction, size=np.shape(X))\n    return np.asarray(X) * mask",
    "    noisy = np.array(X, dtype=float, copy=True)\n    noisy[rng.uniform(size=noisy.shape) < fraction] = 0.0\n    return noisy",
    # exactly round(fraction * size) pixels, chosen without replacement: also a random fraction
    "    X = np.asarray(X)\n    flat = X.reshape(-1).copy()\n"
    "    flat[rng.choice(flat.size, int(round(fraction * flat.size)), replace=False)] = 0\n    return flat.reshape(X.shape)",
])
def test_part3_accepts_other_correct_noise(body):
    outcome = run_part("part3", NOISE.format(body))
    assert outcome.passed, outcome.error


# --- Part 4: beating PCA (each run trains a small model: a few seconds) ---------------------
TAUGHT_TRAINING = ex.source("part4_answer")


def test_part4_rejects_a_code_size_that_ignores_the_task():
    wrong = TAUGHT_TRAINING.replace("build_encoder(64, CODE_SIZE)", "build_encoder(64, 16)") \
                           .replace("build_decoder(CODE_SIZE, 64)", "build_decoder(16, 64)")
    assert_rejected(run_part("part4", wrong), "CODE_SIZE")


def test_part4_rejects_an_error_measured_on_the_training_images():
    wrong = TAUGHT_TRAINING.replace("reconstruction_error(X_test, autoencoder.predict(X_test, verbose=0))",
                                    "reconstruction_error(X_train, autoencoder.predict(X_train, verbose=0))")
    assert wrong != TAUGHT_TRAINING
    assert_rejected(run_part("part4", wrong), "test images")


def test_part4_rejects_an_undertrained_autoencoder():
    wrong = TAUGHT_TRAINING.replace("epochs=50", "epochs=2")
    assert_rejected(run_part("part4", wrong), "90 %")


def test_part4_accepts_a_functional_chain_and_another_training_recipe():
    answer = """
encoder = build_encoder(64, CODE_SIZE)
decoder = build_decoder(CODE_SIZE, 64)
inputs = keras.Input(shape=(64,))
autoencoder = keras.Model(inputs, decoder(encoder(inputs)))
autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss=keras.losses.MeanSquaredError())
autoencoder.fit(X_train, X_train, epochs=40, batch_size=64, shuffle=True, verbose=0)
ae_error = reconstruction_error(X_test, autoencoder(X_test))
"""
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


# --- Part 5: denoising ----------------------------------------------------------------------
TAUGHT_DENOISER = ex.source("part5_answer")


def test_part5_rejects_noisy_targets():
    wrong = TAUGHT_DENOISER.replace("denoiser.fit(noisy_inputs, clean_targets", "denoiser.fit(noisy_inputs, noisy_inputs")
    assert wrong != TAUGHT_DENOISER
    assert_rejected(run_part("part5", wrong), "CLEAN")


def test_part5_rejects_a_plain_autoencoder_trained_on_clean_images_only():
    wrong = TAUGHT_DENOISER.replace("denoiser.fit(noisy_inputs, clean_targets", "denoiser.fit(clean_targets, clean_targets")
    assert_rejected(run_part("part5", wrong), "noisy")


def test_part5_rejects_an_error_measured_against_the_noisy_images():
    wrong = TAUGHT_DENOISER.replace("reconstruction_error(X_test, denoiser.predict(X_test_noisy",
                                    "reconstruction_error(X_test_noisy, denoiser.predict(X_test_noisy")
    assert wrong != TAUGHT_DENOISER
    assert_rejected(run_part("part5", wrong), "measure against X_test")


def test_part5_accepts_a_denoiser_trained_on_one_noisy_copy_with_fresh_models():
    answer = """
rng = np.random.default_rng(7)
noisy_inputs = add_masking_noise(X_train, MASK_FRACTION, rng)
enc, dec = build_encoder(64, 16), build_decoder(16, 64)
inputs = keras.Input(shape=(64,))
denoiser = keras.Model(inputs, dec(enc(inputs)))
denoiser.compile(optimizer="adam", loss="mse")
denoiser.fit(noisy_inputs, X_train, epochs=40, batch_size=32, verbose=0)
denoised_error = reconstruction_error(X_test, denoiser.predict(X_test_noisy, verbose=0))
"""
    outcome = run_part("part5", answer)
    assert outcome.passed, outcome.error


def test_part4_says_which_variable_is_missing():
    answer = TAUGHT_TRAINING.replace("autoencoder = keras.Sequential", "model = keras.Sequential") \
                            .replace("autoencoder.compile", "model.compile").replace("autoencoder.fit", "model.fit") \
                            .replace("autoencoder.predict", "model.predict")
    assert_rejected(run_part("part4", answer), "'autoencoder' is not defined")


# --- the whole notebook ---------------------------------------------------------------------
def test_answers_that_rebind_builtins_scratch_names_and_the_seed_lose_no_points():
    """`from numpy import *` (sum, any, all, max, bool, ...), scratch variables and a seed of the
    student's own at the end of every answer cell change no test's verdict and no graded training
    run: each training starts from the seed its locked part sets."""
    assert_same_results(ex, ["ae_error", "denoised_error"])


# --- Part 6: the largest code size at which the autoencoder wins (graded on the test digits) ------
@pytest.mark.parametrize("size, words", [
    (4, "try larger codes"),      # part 4's size: it wins there, and still at 8
    (16, "try smaller codes"),    # PCA is about as good there
    (32, "try smaller codes"),
])
def test_part6_rejects_sizes_that_are_not_the_largest(size, words):
    assert_rejected(run_part("part6", f"largest_code_size = {size}\n"), words)


def test_part6_accepts_the_size_as_a_numpy_integer():
    outcome = run_part("part6", "largest_code_size = np.int64(8)\n")
    assert outcome.passed, outcome.error


def test_part6_says_what_kind_of_number():
    assert_rejected(run_part("part6", "largest_code_size = 64\n"), "from 1 to 32")
