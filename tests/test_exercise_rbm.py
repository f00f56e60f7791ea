"""The RBM exercise's tests reject plausible wrong answers, with a helpful message, and accept
other correct answers, however they are written."""
import pytest

from nbtools import Exercise, assert_rejected, assert_same_results

ex = Exercise("rbm")
run_part = ex.run_part


# --- Part 1: the conditionals ---------------------------------------------------------------
GOOD_P1 = """
def hidden_probabilities(v, W, c):
    return sigmoid(np.asarray(v, dtype=float) @ W + c)

def visible_probabilities(h, W, b):
    return sigmoid(np.asarray(h, dtype=float) @ W.T + b)
"""


@pytest.mark.parametrize("wrong, words", [
    # transposed weights: crash on the visible 3 x 2 example, with the call named
    (GOOD_P1.replace("@ W + c", "@ W.T + c").replace("@ W.T + b", "@ W + b"), ["raised", "W"]),
    # a "transpose" that runs on every shape: right for non-square W, wrong for a square one
    (GOOD_P1.replace("np.asarray(v, dtype=float) @ W + c",
                     "(np.asarray(v, dtype=float) @ W if W.shape[0] != W.shape[1] else np.asarray(v, dtype=float) @ W.T) + c"),
     ["do not transpose W"]),
    # samples where probabilities are asked
    (GOOD_P1.replace("return sigmoid(np.asarray(v, dtype=float) @ W + c)",
                     "p = sigmoid(np.asarray(v, dtype=float) @ W + c)\n    return (np.random.default_rng(0).random(p.shape) < p).astype(float)"),
     ["only 0s and 1s", "not samples"]),
    (GOOD_P1.replace("return sigmoid(np.asarray(h, dtype=float) @ W.T + b)",
                     "p = sigmoid(np.asarray(h, dtype=float) @ W.T + b)\n    return (p > 0.5).astype(float)"),
     ["only 0s and 1s"]),
    # the wrong bias (square case only, so that it runs) and a missing bias
    (GOOD_P1.replace("@ W + c", "@ W"), ["hidden bias"]),
    (GOOD_P1.replace("@ W.T + b", "@ W.T - b"), ["visible bias"]),
    # the sigmoid's sign
    (GOOD_P1.replace("return sigmoid(np.asarray(v, dtype=float) @ W + c)",
                     "return 1 / (1 + np.exp(np.asarray(v, dtype=float) @ W + c))"), ["sigmoid"]),
])
def test_part1_rejects_plausible_wrong_conditionals(wrong, words):
    assert_rejected(run_part("part1", wrong), *words)


@pytest.mark.parametrize("answer", [
    GOOD_P1,
    """
def hidden_probabilities(v, W, c):
    return 1 / (1 + np.exp(-(np.dot(v, W) + c)))

def visible_probabilities(h, W, b):
    return 0.5 * (1 + np.tanh(0.5 * (np.einsum("nj,ij->ni", h, W) + b)))
""",
    """
def hidden_probabilities(v, W, c):
    return sigmoid((W.T @ np.asarray(v, float).T).T + c[None, :])

def visible_probabilities(h, W, b):
    from scipy.special import expit
    return expit(np.matmul(h, W.transpose()) + b)
""",
])
def test_part1_accepts_other_correct_answers(answer):
    outcome = run_part("part1", answer)
    assert outcome.passed, outcome.error


# --- Part 2: the free energy ----------------------------------------------------------------
GOOD_P2 = """
def free_energy(v, W, b, c):
    v = np.asarray(v, dtype=float)
    return -v @ b - np.logaddexp(0, v @ W + c).sum(axis=1)
"""


@pytest.mark.parametrize("wrong", [
    GOOD_P2.replace("-v @ b - ", "-"),                                 # no visible-bias term
    GOOD_P2.replace("-v @ b - np.logaddexp", "v @ b - np.logaddexp"),  # sign of the visible term
    GOOD_P2.replace("-v @ b - np.logaddexp", "-v @ b + np.logaddexp"),  # sign of the hidden term
    GOOD_P2.replace("np.logaddexp(0, v @ W + c)", "np.exp(v @ W + c)"),  # forgot log(1 + ...)
])
def test_part2_rejects_plausible_wrong_free_energies(wrong):
    assert_rejected(run_part("part2", wrong), "free_energy", "F(v)")


def test_part2_rejects_summing_over_the_wrong_axis():
    outcome = run_part("part2", GOOD_P2.replace("sum(axis=1)", "sum(axis=0)"))
    assert not outcome.passed and "Hint:" in outcome.error


@pytest.mark.parametrize("answer", [
    GOOD_P2,
    """
def free_energy(v, W, b, c):
    x = v @ W + c
    return -(v @ b) - np.sum(np.log1p(np.exp(x)), axis=1)
""",
    """
def free_energy(v, W, b, c):
    return np.array([-row @ b - sum(np.log(1 + np.exp(row @ W[:, j] + c[j])) for j in range(W.shape[1]))
                     for row in np.asarray(v, float)])
""",
])
def test_part2_accepts_other_correct_answers(answer):
    outcome = run_part("part2", answer)
    assert outcome.passed, outcome.error


# --- Part 3: Gibbs sampling -----------------------------------------------------------------
GOOD_P3 = """
def gibbs_step(v, W, b, c, rng):
    p_h = hidden_probabilities(v, W, c)
    h = (rng.random(p_h.shape) < p_h).astype(float)
    p_v = visible_probabilities(h, W, b)
    return (rng.random(p_v.shape) < p_v).astype(float)
"""


@pytest.mark.parametrize("wrong, words", [
    # probabilities where a sample is asked
    (GOOD_P3.replace("return (rng.random(p_v.shape) < p_v).astype(float)", "return p_v"), ["only 0s and 1s"]),
    # the hidden units not sampled (mean field): a different distribution
    (GOOD_P3.replace("h = (rng.random(p_h.shape) < p_h).astype(float)", "h = p_h"), ["sample h"]),
    # on with probability 1 - p
    (GOOD_P3.replace("rng.random(p_v.shape) < p_v", "rng.random(p_v.shape) > p_v"), ["how often"]),
    # stopped half way: returns the hidden sample
    (GOOD_P3.replace("p_v = visible_probabilities(h, W, b)\n    return (rng.random(p_v.shape) < p_v).astype(float)",
                     "return h"), ["shape"]),
])
def test_part3_rejects_plausible_wrong_gibbs_steps(wrong, words):
    assert_rejected(run_part("part3", wrong), *words)


@pytest.mark.parametrize("answer", [
    GOOD_P3,
    """
def gibbs_step(v, W, b, c, rng):
    h = rng.binomial(1, hidden_probabilities(v, W, c))
    return rng.binomial(1, visible_probabilities(h, W, b)).astype(float)
""",
    """
def gibbs_step(v, W, b, c, rng):
    # the global NumPy generator instead of rng, and '1 - u < p' (the same distribution)
    p_h = hidden_probabilities(v, W, c)
    h = 1.0 * (1 - np.random.uniform(size=p_h.shape) < p_h)
    p_v = visible_probabilities(h, W, b)
    return np.where(np.random.uniform(size=p_v.shape) < p_v, 1, 0)
""",
])
def test_part3_accepts_other_correct_answers(answer):
    outcome = run_part("part3", answer)
    assert outcome.passed, outcome.error


# --- Part 4: one CD-1 update ----------------------------------------------------------------
GOOD_P4 = """
def cd1_update(v_data, W, b, c, learning_rate, rng):
    v_data = np.asarray(v_data, dtype=float)
    n = len(v_data)
    h_data = hidden_probabilities(v_data, W, c)
    v_model = gibbs_step(v_data, W, b, c, rng)
    h_model = hidden_probabilities(v_model, W, c)
    W_new = W + learning_rate * (v_data.T @ h_data - v_model.T @ h_model) / n
    b_new = b + learning_rate * (v_data - v_model).sum(axis=0) / n
    c_new = c + learning_rate * (h_data - h_model).sum(axis=0) / n
    return W_new, b_new, c_new
"""


@pytest.mark.parametrize("wrong, words", [
    # positive and negative phases swapped
    (GOOD_P4.replace("(v_data.T @ h_data - v_model.T @ h_model)", "(v_model.T @ h_model - v_data.T @ h_data)")
            .replace("(v_data - v_model)", "(v_model - v_data)").replace("(h_data - h_model)", "(h_model - h_data)"),
     ["visible bias", "positive phase"]),
    (GOOD_P4.replace("(v_data.T @ h_data - v_model.T @ h_model)", "(v_model.T @ h_model - v_data.T @ h_data)"),
     ["change of W"]),
    # transposed weight update
    (GOOD_P4.replace("(v_data.T @ h_data - v_model.T @ h_model)", "(h_data.T @ v_data - h_model.T @ v_model)"),
     ["shape"]),
    # summed over the batch instead of averaged
    (GOOD_P4.replace(") / n", ")"), ["averaged over the rows"]),
    # the learning rate forgotten in the weights
    (GOOD_P4.replace("W + learning_rate * (", "W + ("), ["change of W"]),
    # the negative phase from a fresh random vector instead of a Gibbs step from the data
    (GOOD_P4.replace("v_model = gibbs_step(v_data, W, b, c, rng)",
                     "v_model = (rng.random(v_data.shape) < 0.5).astype(float)"), ["change of W"]),
])
def test_part4_rejects_plausible_wrong_updates(wrong, words):
    assert_rejected(run_part("part4", wrong), *words)


@pytest.mark.parametrize("answer", [
    GOOD_P4,
    # v_model as probabilities p(v | h) (a common variant) and in-place updates
    """
def cd1_update(v_data, W, b, c, learning_rate, rng):
    n = v_data.shape[0]
    p_h0 = hidden_probabilities(v_data, W, c)
    h0 = (rng.random(p_h0.shape) < p_h0).astype(float)
    v1 = visible_probabilities(h0, W, b)
    p_h1 = hidden_probabilities(v1, W, c)
    W += learning_rate * (v_data.T @ p_h0 - v1.T @ p_h1) / n
    b += learning_rate * np.mean(v_data - v1, axis=0)
    c += learning_rate * np.mean(p_h0 - p_h1, axis=0)
    return W, b, c
""",
    # sampled hidden states in the statistics (same expectation, more noise), einsum
    """
def cd1_update(v_data, W, b, c, learning_rate, rng):
    p0 = hidden_probabilities(v_data, W, c)
    h0 = rng.binomial(1, p0).astype(float)
    v1 = rng.binomial(1, visible_probabilities(h0, W, b)).astype(float)
    p1 = hidden_probabilities(v1, W, c)
    h1 = rng.binomial(1, p1).astype(float)
    n = len(v_data)
    dW = (np.einsum("ni,nj->ij", v_data, h0) - np.einsum("ni,nj->ij", v1, h1)) / n
    return W + learning_rate * dW, b + learning_rate * (v_data.mean(0) - v1.mean(0)), c + learning_rate * (h0.mean(0) - h1.mean(0))
""",
])
def test_part4_accepts_other_correct_updates(answer):
    outcome = run_part("part4", answer)
    assert outcome.passed, outcome.error


# --- Part 5: imputation ---------------------------------------------------------------------
GOOD_P5 = ex.source("part5_answer")


@pytest.mark.parametrize("wrong, words", [
    # observed pixels not clamped
    (GOOD_P5.replace("v = np.where(hidden, p_v, X_missing)", "v = p_v"), ["observed pixels", "clamped"]),
    # mean imputation instead of the RBM
    (GOOD_P5.replace("    return v\n", "    return np.where(hidden, np.nanmean(X_missing, axis=0), X_missing)\n"),
     ["mean imputation"]),
    # NaNs left in place
    (GOOD_P5.replace("v = np.where(hidden, 0.5, X_missing)", "v = X_missing.copy()"), ["NaN"]),
    # an imputer that does not use the RBM: nearest neighbours beat the RBM on digits, but that is
    # not the task; an RBM with zero weights shows it
    ("""
from sklearn.impute import KNNImputer

def impute(X_missing, W, b, c, n_steps=50):
    return KNNImputer(n_neighbors=5).fit(X_train).transform(X_missing)

X_filled = impute(X_missing, W_digits, b_digits, c_digits)
""", ["W = 0", "sigmoid(b)"]),
    # the RBM's trained weights taken from the notebook instead of the arguments
    (GOOD_P5.replace("p_v = visible_probabilities(hidden_probabilities(v, W, c), W, b)",
                     "p_v = visible_probabilities(hidden_probabilities(v, W_digits, c_digits), W_digits, b_digits)"),
     ["W = 0"]),
])
def test_part5_rejects_plausible_wrong_imputations(wrong, words):
    assert_rejected(run_part("part5", wrong), *words)


@pytest.mark.parametrize("answer", [
    GOOD_P5,
    # Gibbs sampling with the observed pixels clamped, averaging p(v | h) after a burn-in
    """
def impute(X_missing, W, b, c, n_steps=50):
    gen = np.random.default_rng(0)
    hidden = np.isnan(X_missing)
    v = np.where(hidden, np.nanmean(X_missing, axis=0), X_missing)
    total = np.zeros_like(v)
    for step in range(200):
        h = (gen.random((len(v), W.shape[1])) < hidden_probabilities(v, W, c)).astype(float)
        p_v = visible_probabilities(h, W, b)
        v = np.where(hidden, (gen.random(v.shape) < p_v).astype(float), X_missing)
        if step >= 50:
            total += p_v
    return np.where(hidden, total / 150, X_missing)

X_filled = impute(X_missing, W_digits, b_digits, c_digits)
""",
    # the course's TensorFlow RBM with the same weights
    """
def impute(X_missing, W, b, c, n_steps=50):
    model = rbm.RBM(random_state=0).set_weights(W, b, c)
    return model.impute(X_missing, method="mean-field", n_steps=n_steps)

X_filled = impute(X_missing, W_digits, b_digits, c_digits)
""",
])
def test_part5_accepts_other_correct_imputations(answer):
    outcome = run_part("part5", answer)
    assert outcome.passed, outcome.error


# --- the whole notebook ---------------------------------------------------------------------
def test_answers_that_rebind_builtins_scratch_names_and_the_seed_lose_no_points():
    """`from numpy import *` (sum, any, all, max, bool, ...) and scratch variables (W, b, c, v, ...)
    at the end of every answer cell change no test's verdict."""
    assert_same_results(ex, ["X_filled"])


def test_solution_passes_every_test_and_blank_fails_every_test():
    solved = ex.solved()
    assert not solved.failing(), solved.failing()
    blank = ex.run(base="blank")
    assert all(not blank.passed(gid) for gid in ex.test_ids())


# --- Part 6: the smallest RBM that does the job (graded on held-out digits) ---------------------
@pytest.mark.parametrize("size, words", [
    (4, "too few hidden units"),            # no better than the pixel means
    (16, "a smaller RBM does the job"),     # works, but so does one of 8 units
    (100, "a smaller RBM does the job"),
])
def test_part6_rejects_sizes_that_are_not_the_smallest(size, words):
    assert_rejected(run_part("part6", f"n_hidden_needed = {size}\n"), words)


@pytest.mark.parametrize("size", ["7", "8", "np.int64(8)"])
def test_part6_accepts_the_smallest_sizes(size):
    outcome = run_part("part6", f"n_hidden_needed = {size}\n")
    assert outcome.passed, outcome.error


def test_part6_says_what_kind_of_number():
    assert_rejected(run_part("part6", "n_hidden_needed = 8.0\n"), "whole number")
