"""Unit tests of dlcourse.rbm: NumPy and TensorFlow against scikit-learn's BernoulliRBM, against
brute-force enumeration of small RBMs, and bad arguments."""
import dlcourse  # noqa: F401  (quiet TensorFlow before it is imported)

import copy

import numpy as np
import pytest
from sklearn.neural_network import BernoulliRBM

from dlcourse import rbm as R
from dlcourse.data import load_digits


@pytest.fixture(scope="module")
def digits():
    """Flat digits in [0, 1] (train, test) from dlcourse.data."""
    X_train, X_test, y_train, y_test = load_digits(images=False)
    return X_train.astype(float), X_test.astype(float), y_train, y_test


@pytest.fixture(scope="module")
def sklearn_digits():
    """scikit-learn's own test data: all 1,797 digits, scaled to [0, 1] by the global min and max."""
    from sklearn.datasets import load_digits as sk_load

    X = sk_load().data.astype(float)
    X -= X.min()
    return X / X.max()


def random_rbm(n_visible, n_hidden, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (n_visible, n_hidden)), rng.normal(0, scale, n_visible),
            rng.normal(0, scale, n_hidden))


def sklearn_rbm(W, b, c, random_state=0):
    """A BernoulliRBM holding the given parameters (components_ is W transposed)."""
    s = BernoulliRBM(n_components=W.shape[1], random_state=random_state)
    s.components_, s.intercept_visible_, s.intercept_hidden_ = W.T.copy(), b.copy(), c.copy()
    s.n_features_in_ = W.shape[0]
    s._n_features_out = W.shape[1]
    return s


def tf_rbm(W, b, c, dtype="float64", random_state=0):
    return R.RBM(random_state=random_state, dtype=dtype).set_weights(W, b, c)


def all_states(n):
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[::-1]) & 1).astype(float)


# ----------------------------------------------------------------------------- the formulas
@pytest.mark.parametrize("grey", [False, True])
def test_numpy_conditionals_and_free_energy_match_bernoulli_rbm(grey):
    W, b, c = random_rbm(20, 7, seed=1)
    rng = np.random.default_rng(2)
    v = rng.uniform(size=(30, 20)) if grey else (rng.uniform(size=(30, 20)) < 0.5).astype(float)
    h = (rng.uniform(size=(30, 7)) < 0.5).astype(float)
    s = sklearn_rbm(W, b, c)
    np.testing.assert_allclose(R.hidden_probabilities(v, W, c), s.transform(v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(R.free_energy(v, W, b, c), s._free_energy(v), rtol=1e-12, atol=1e-12)
    # BernoulliRBM has no public p(v|h): its _sample_visibles thresholds it against uniforms
    expected = 1 / (1 + np.exp(-(h @ s.components_ + s.intercept_visible_)))
    np.testing.assert_allclose(R.visible_probabilities(h, W, b), expected, rtol=1e-12)


@pytest.mark.parametrize("grey", [False, True])
def test_tensorflow_float64_matches_bernoulli_rbm_to_1e_6(grey):
    W, b, c = random_rbm(64, 32, seed=3)
    rng = np.random.default_rng(4)
    v = rng.uniform(size=(50, 64)) if grey else (rng.uniform(size=(50, 64)) < 0.3).astype(float)
    h = (rng.uniform(size=(50, 32)) < 0.5).astype(float)
    s, ours = sklearn_rbm(W, b, c), tf_rbm(W, b, c)
    np.testing.assert_allclose(ours.transform(v), s.transform(v), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.free_energy(v), s._free_energy(v), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.visible_probabilities(h), R.visible_probabilities(h, W, b), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.components_, s.components_)


def test_tensorflow_float32_matches_numpy_within_float32_precision():
    W, b, c = random_rbm(64, 16, seed=5, scale=0.2)
    v = (np.random.default_rng(6).uniform(size=(40, 64)) < 0.5).astype(float)
    ours = tf_rbm(W, b, c, dtype="float32")
    np.testing.assert_allclose(ours.transform(v), R.hidden_probabilities(v, W, c), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.free_energy(v), R.free_energy(v, W, b, c), rtol=1e-5, atol=1e-4)


def test_free_energy_is_minus_log_sum_over_hidden_states_of_exp_minus_energy():
    W, b, c = random_rbm(5, 4, seed=7)
    V, H = all_states(5), all_states(4)
    for v in V:
        energies = R.energy(np.repeat(v[None], len(H), axis=0), H, W, b, c)
        brute = -np.log(np.exp(-energies).sum())
        assert R.free_energy(v[None], W, b, c)[0] == pytest.approx(brute, rel=1e-12)
    ours = tf_rbm(W, b, c)
    vv, hh = V[np.arange(32) % 32], H[np.arange(32) % 16]
    np.testing.assert_allclose(ours.energy(vv, hh), R.energy(vv, hh, W, b, c), rtol=1e-12)


def test_energy_is_the_formula():
    W, b, c = random_rbm(3, 2, seed=8)
    v, h = np.array([[1.0, 0, 1]]), np.array([[0.0, 1]])
    expected = -(b[0] + b[2]) - c[1] - (W[0, 1] + W[2, 1])
    assert R.energy(v, h, W, b, c)[0] == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (10, 10)])
def test_log_partition_normalises_the_distribution_either_way_it_is_enumerated(shape):
    W, b, c = random_rbm(*shape, seed=9)
    logZ = R.log_partition(W, b, c)
    V = all_states(shape[0])
    p = np.exp(-R.free_energy(V, W, b, c) - logZ)
    assert p.sum() == pytest.approx(1.0, rel=1e-10)
    np.testing.assert_allclose(np.exp(R.log_likelihood(V, W, b, c)), p, rtol=1e-10)
    # enumerating the other layer (the transposed RBM has the same Z) gives the same number
    assert R.log_partition(W.T, c, b) == pytest.approx(logZ, rel=1e-12)


def test_conditionals_agree_with_the_joint_distribution_by_enumeration():
    W, b, c = random_rbm(4, 3, seed=10)
    V, H = all_states(4), all_states(3)
    joint = np.exp(-np.array([[R.energy(v[None], h[None], W, b, c)[0] for h in H] for v in V]))
    joint /= joint.sum()
    p_h_given_v = joint / joint.sum(axis=1, keepdims=True)          # (16 v, 8 h)
    np.testing.assert_allclose(p_h_given_v @ H, R.hidden_probabilities(V, W, c), rtol=1e-10)
    p_v_given_h = joint / joint.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(p_v_given_h.T @ V, R.visible_probabilities(H, W, b), rtol=1e-10)


# ----------------------------------------------------------------------------- pseudo-likelihood
def test_stochastic_pseudo_likelihood_equals_score_samples_with_the_same_random_state(sklearn_digits):
    W, b, c = random_rbm(64, 20, seed=11, scale=0.1)
    X = sklearn_digits[:300]
    for seed in (0, 9):
        s = sklearn_rbm(W, b, c, random_state=seed)
        expected = s.score_samples(X)
        np.testing.assert_allclose(R.pseudo_likelihood(X, W, b, c, exact=False, random_state=seed),
                                   expected, rtol=1e-12)
        np.testing.assert_allclose(tf_rbm(W, b, c, random_state=seed).score_samples(X), expected,
                                   rtol=1e-6, atol=1e-6)


def test_exact_pseudo_likelihood_is_the_sum_of_one_bit_conditionals():
    W, b, c = random_rbm(6, 5, seed=12)
    V = all_states(6)
    logp = R.log_likelihood(V, W, b, c)
    index = {tuple(v): i for i, v in enumerate(V)}
    expected = np.zeros(len(V))
    for i, v in enumerate(V):
        for j in range(6):
            u = v.copy()
            u[j] = 1 - u[j]
            expected[i] += logp[i] - np.logaddexp(logp[i], logp[index[tuple(u)]])
    np.testing.assert_allclose(R.pseudo_likelihood(V, W, b, c), expected, rtol=1e-10)
    np.testing.assert_allclose(tf_rbm(W, b, c).pseudo_likelihood(V), expected, rtol=1e-10)


def test_stochastic_pseudo_likelihood_is_unbiased_for_the_exact_one():
    W, b, c = random_rbm(12, 6, seed=13)
    v = (np.random.default_rng(14).uniform(size=(1, 12)) < 0.5).astype(float)
    exact = R.pseudo_likelihood(v, W, b, c)[0]
    estimates = [R.pseudo_likelihood(v, W, b, c, exact=False, random_state=s)[0] for s in range(3000)]
    assert np.mean(estimates) == pytest.approx(exact, abs=4 * np.std(estimates) / np.sqrt(3000))


# ----------------------------------------------------------------------------- learning rules
def test_pcd_update_reproduces_one_bernoulli_rbm_step(sklearn_digits):
    X = sklearn_digits[:10]
    s = BernoulliRBM(n_components=16, learning_rate=0.1, batch_size=10, random_state=0)
    s.partial_fit(sklearn_digits[10:40])          # a few updates so the chains are not all zero
    W, b, c, h = s.components_.T.copy(), s.intercept_visible_.copy(), s.intercept_hidden_.copy(), s.h_samples_.copy()
    rng = copy.deepcopy(s.random_state_)
    s._fit(X, s.random_state_)
    W2, b2, c2, h2 = R.pcd_update(X, h, W, b, c, learning_rate=0.1, random_state=rng)
    np.testing.assert_allclose(W2, s.components_.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b2, s.intercept_visible_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c2, s.intercept_hidden_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(h2, s.h_samples_)


def test_cd_gradients_are_minus_the_gradient_of_the_free_energy_difference():
    import tensorflow as tf

    W, b, c = random_rbm(10, 6, seed=15)
    rng = np.random.default_rng(16)
    v_data, v_model = rng.uniform(size=(8, 10)), (rng.uniform(size=(5, 10)) < 0.5).astype(float)
    dW, db, dc = R.cd_gradients(v_data, v_model, W, c)
    Wt, bt, ct = (tf.Variable(a) for a in (W, b, c))
    with tf.GradientTape() as tape:
        def F(v):
            return -tf.linalg.matvec(v, bt) - tf.reduce_sum(tf.math.softplus(v @ Wt + ct), axis=1)
        loss = (tf.reduce_sum(F(tf.constant(v_data))) - tf.reduce_sum(F(tf.constant(v_model)))) / len(v_data)
    gW, gb, gc = tape.gradient(loss, [Wt, bt, ct])
    np.testing.assert_allclose(dW, -gW.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, -gb.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc, -gc.numpy(), rtol=1e-10, atol=1e-12)


def test_cd_gradients_have_positive_minus_negative_phase_by_hand():
    W, b, c = random_rbm(3, 2, seed=17)
    v_data, v_model = np.array([[1.0, 0, 1]]), np.array([[0.0, 1, 1]])
    dW, db, dc = R.cd_gradients(v_data, v_model, W, c)
    h_data, h_model = R.hidden_probabilities(v_data, W, c), R.hidden_probabilities(v_model, W, c)
    np.testing.assert_allclose(dW, np.outer(v_data[0], h_data[0]) - np.outer(v_model[0], h_model[0]))
    np.testing.assert_allclose(db, [1, -1, 0])
    np.testing.assert_allclose(dc, h_data[0] - h_model[0])


def test_cd_update_moves_parameters_along_the_gradients():
    W, b, c = random_rbm(8, 4, seed=18, scale=0.1)
    v = (np.random.default_rng(19).uniform(size=(6, 8)) < 0.5).astype(float)
    W2, b2, c2, v_model = R.cd_update(v, W, b, c, learning_rate=0.5, k=3, random_state=0)
    dW, db, dc = R.cd_gradients(v, v_model, W, c)
    np.testing.assert_allclose(W2, W + 0.5 * dW)
    np.testing.assert_allclose(b2, b + 0.5 * db)
    np.testing.assert_allclose(c2, c + 0.5 * dc)
    assert set(np.unique(v_model)) <= {0.0, 1.0}


# ----------------------------------------------------------------------------- training
def test_training_like_scikit_learns_test_reaches_pseudo_likelihood_about_minus_21(sklearn_digits):
    X = sklearn_digits
    ours = R.RBM(64, learning_rate=0.1, batch_size=10, n_iter=7, random_state=9).fit(X)
    theirs = BernoulliRBM(64, learning_rate=0.1, batch_size=10, n_iter=7, random_state=9).fit(X)
    assert ours.score_samples(X).mean() == pytest.approx(-21.0, abs=1.5)
    assert theirs.score_samples(X).mean() == pytest.approx(-21.0, abs=1.5)
    assert ours.pseudo_likelihood(X).mean() == pytest.approx(
        R.pseudo_likelihood(X, theirs.components_.T, theirs.intercept_visible_, theirs.intercept_hidden_).mean(),
        abs=1.5)
    pl = ours.history_["pseudo_likelihood"]
    assert len(pl) == 7 and pl[-1] > pl[0] + 2
    assert ours.history_["reconstruction_error"][-1] < ours.history_["reconstruction_error"][0]


def test_fit_is_deterministic_and_starts_from_bernoulli_rbms_initial_weights(sklearn_digits):
    X = sklearn_digits[:200]
    a = R.RBM(8, n_iter=2, random_state=3).fit(X)
    b = R.RBM(8, n_iter=2, random_state=3).fit(X)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    start = R.RBM(8, n_iter=0, random_state=3, dtype="float64").fit(X)
    sk_start = np.random.RandomState(3).normal(0, 0.01, (8, 64))
    np.testing.assert_allclose(start.components_, sk_start)
    assert not np.allclose(R.RBM(8, n_iter=2, random_state=4).fit(X).weights_, a.weights_)


@pytest.mark.parametrize("method,k", [("cd", 1), ("cd", 3), ("pcd", 2)])
def test_cd_and_pcd_both_learn_the_digits(sklearn_digits, method, k):
    X = sklearn_digits
    before = R.RBM(32, n_iter=0, random_state=0).fit(X).pseudo_likelihood(X).mean()
    model = R.RBM(32, learning_rate=0.05, n_iter=5, method=method, k=k, shuffle=True, random_state=0).fit(X)
    assert model.pseudo_likelihood(X).mean() > before + 15      # from about -44 to about -23


def test_training_raises_the_exact_log_likelihood_of_a_small_rbm(digits):
    X_train, X_test = (digits[0] > 0.5).astype(float), (digits[1] > 0.5).astype(float)
    model = R.RBM(10, learning_rate=0.05, n_iter=10, method="cd", random_state=0).fit(X_train)
    untrained = R.RBM(10, n_iter=0, random_state=0).fit(X_train)
    ll = lambda m: R.log_likelihood(X_test, m.weights_, m.intercept_visible_, m.intercept_hidden_).mean()
    assert ll(untrained) == pytest.approx(-64 * np.log(2), abs=1.0)   # near-uniform at the start
    assert ll(model) > ll(untrained) + 15


def test_rbm_works_in_a_scikit_learn_pipeline(digits):
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    X_train, X_test, y_train, y_test = digits
    with threadpool_limits(1):      # OpenBLAS threads spin for minutes on a busy machine
        pipe = Pipeline([("rbm", R.RBM(64, learning_rate=0.05, n_iter=5, random_state=0)),
                         ("logistic", LogisticRegression(C=1000, max_iter=3000))]).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.88      # 0.93 measured
    copy_ = clone(pipe.named_steps["rbm"])
    assert copy_.get_params() == pipe.named_steps["rbm"].get_params()
    assert pipe.named_steps["rbm"].transform(X_test).shape == (len(X_test), 64)


# ----------------------------------------------------------------------------- sampling, imputation
def _tv_distance(samples, probs, n):
    codes = samples.astype(int) @ (1 << np.arange(n)[::-1])
    freq = np.bincount(codes, minlength=2 ** n) / len(codes)
    return 0.5 * np.abs(freq - probs).sum()


def test_gibbs_sampling_reaches_the_exact_distribution():
    W, b, c = random_rbm(4, 3, seed=20, scale=1.0)
    p = np.exp(R.log_likelihood(all_states(4), W, b, c))
    start = np.zeros((4000, 4))
    ours = tf_rbm(W, b, c, random_state=1)
    assert _tv_distance(ours.gibbs(start, n_steps=30), p, 4) < 0.04
    v = start
    rng = np.random.default_rng(2)
    for _ in range(30):
        v, h = R.gibbs_step(v, W, b, c, rng)
    assert _tv_distance(v, p, 4) < 0.04
    assert h.shape == (4000, 3)


def test_gibbs_chain_records_and_sample_shapes(digits):
    model = R.RBM(16, n_iter=2, random_state=0).fit(digits[0])
    chain = model.gibbs_chain(digits[1][:3], 20, record_every=5)
    assert chain.shape == (4, 3, 64) and chain.min() >= 0 and chain.max() <= 1
    samples = model.sample(5, n_steps=50)
    assert samples.shape == (5, 64)
    assert model.gibbs(digits[1][:2], n_steps=3).shape == (2, 64)
    assert set(np.unique(model.gibbs(digits[1][:2]))) <= {0.0, 1.0}


def test_hide_pixels_hides_the_given_fraction_of_each_row(digits):
    X = digits[1]
    hidden, mask = R.hide_pixels(X, 0.25, random_state=0)
    assert mask.sum(axis=1).tolist() == [16] * len(X)
    assert np.isnan(hidden[mask]).all() and np.array_equal(hidden[~mask], X[~mask])
    assert not np.array_equal(mask[0], mask[1])


def test_imputation_keeps_observed_values_and_beats_mean_imputation(digits):
    X_train, X_test = digits[0], digits[1][:200]
    model = R.RBM(64, learning_rate=0.05, n_iter=10, random_state=0).fit(X_train)
    hidden, mask = R.hide_pixels(X_test, 0.5, random_state=1)
    mean_error = ((X_train.mean(axis=0) - X_test)[mask] ** 2).mean()
    for method in ("gibbs", "mean-field"):
        filled = model.impute(hidden, method=method)
        np.testing.assert_array_equal(filled[~mask], X_test[~mask])
        assert 0 <= filled.min() and filled.max() <= 1
        assert ((filled - X_test)[mask] ** 2).mean() < 0.85 * mean_error
    np.testing.assert_array_equal(model.impute(hidden, method="mean-field"), model.impute(hidden, method="mean-field"))


def test_nudge_images_matches_scikit_learns_example():
    from scipy.ndimage import convolve

    X = np.random.default_rng(21).uniform(size=(5, 64))
    y = np.arange(5)
    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]
    expected = np.concatenate([X] + [np.array([convolve(x.reshape(8, 8), mode="constant", weights=w).ravel()
                                               for x in X]) for w in directions])
    X5, y5 = R.nudge_images(X, y)
    np.testing.assert_allclose(X5, expected)
    assert y5.tolist() == list(range(5)) * 5


# ----------------------------------------------------------------------------- bad arguments
def test_functions_reject_bad_arguments():
    W, b, c = random_rbm(4, 3)
    v, h = np.array([[1.0, 0, 1, 0]]), np.array([[0.0, 1, 0]])
    with pytest.raises(ValueError, match="v must be binary"):
        R.energy(np.array([[0.5, 0, 1, 0]]), h, W, b, c)
    with pytest.raises(ValueError, match="h must be binary"):
        R.energy(v, np.array([[0.2, 1, 0]]), W, b, c)
    with pytest.raises(ValueError, match="between 0 and 1"):
        R.hidden_probabilities(v * 16, W, c)
    with pytest.raises(ValueError, match=r"v must have 4 columns"):
        R.hidden_probabilities(np.ones((1, 3)), W, c)
    with pytest.raises(ValueError, match=r"h must have 3 columns"):
        R.visible_probabilities(np.ones((1, 4)), W, b)
    with pytest.raises(ValueError, match=r"hidden_bias must have shape \(3,\)"):
        R.hidden_probabilities(v, W, b)                     # the visible bias by mistake
    with pytest.raises(ValueError, match=r"visible_bias must have shape \(4,\)"):
        R.free_energy(v, W, c, c)
    with pytest.raises(ValueError, match="v must have 2 dimensions"):
        R.free_energy(v[0], W, b, c)
    with pytest.raises(ValueError, match="same number of rows"):
        R.energy(np.vstack([v, v]), h, W, b, c)
    with pytest.raises(ValueError, match="learning_rate"):
        R.cd_update(v, W, b, c, learning_rate=-1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        R.cd_update(v, W, b, c, k=0)
    with pytest.raises(ValueError, match="persistent_h must be binary"):
        R.pcd_update(v, np.full((1, 3), 0.5), W, b, c)
    with pytest.raises(ValueError, match="at most 20 units"):
        R.log_partition(*random_rbm(30, 30))
    with pytest.raises(ValueError, match="fraction"):
        R.hide_pixels(np.ones((2, 4)), 1.5)
    with pytest.raises(ValueError, match="random_state"):
        R.sample_bernoulli(np.ones(3) * 0.5, "seed")


def test_estimator_rejects_bad_arguments(digits):
    X = digits[0][:50]
    for params, match in [({"n_components": 0}, "n_components"), ({"learning_rate": 0}, "learning_rate"),
                          ({"batch_size": 2.5}, "batch_size"), ({"n_iter": -1}, "n_iter"),
                          ({"method": "cd-1"}, "method must be one of"), ({"k": 0}, "k must be"),
                          ({"dtype": "float16"}, "dtype"), ({"random_state": "x"}, "random_state"),
                          ({"shuffle": "yes"}, "shuffle")]:
        with pytest.raises(ValueError, match=match):
            R.RBM(**params).fit(X)
    with pytest.raises(ValueError, match="X must hold values between 0 and 1"):
        R.RBM(4).fit(X * 16)
    with pytest.raises(ValueError, match="X must have 2 dimensions"):
        R.RBM(4).fit(X.reshape(-1, 8, 8))
    with pytest.raises(ValueError, match="not fitted"):
        R.RBM(4).transform(X)
    model = R.RBM(4, n_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 63 columns, but this RBM has 64 visible units"):
        model.transform(X[:, :63])
    with pytest.raises(ValueError, match="h has 64 columns, but this RBM has 4 hidden units"):
        model.visible_probabilities(X)
    with pytest.raises(ValueError, match="v must be binary"):
        model.energy(X[:2], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="burn_in"):
        model.impute(X, n_steps=10, burn_in=10)
    with pytest.raises(ValueError, match="method must be one of"):
        model.impute(X, method="knn")
    with pytest.raises(ValueError, match="observed values"):
        model.impute(np.where(X > 0.5, np.nan, 2.0))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 64\)"):
        model.impute(X[:, :10])
    with pytest.raises(ValueError, match="start must have n_samples = 3 rows"):
        model.sample(3, start=X[:2])
    with pytest.raises(ValueError, match="record_every"):
        model.gibbs_chain(X[:2], 5, record_every=6)


@pytest.mark.parametrize("visible", ["sample", "probability"])
def test_expected_cd1_gradients_is_the_average_of_many_cd1_steps(visible):
    W, b, c = random_rbm(3, 2, seed=22, scale=1.5)
    v = all_states(3)
    rng = np.random.default_rng(23)
    total = [np.zeros_like(W), np.zeros(3), np.zeros(2)]
    n_steps = 4000
    for _ in range(n_steps):
        h0 = R.sample_bernoulli(R.hidden_probabilities(v, W, c), rng)
        p_v1 = R.visible_probabilities(h0, W, b)
        v1 = R.sample_bernoulli(p_v1, rng) if visible == "sample" else p_v1
        for t, g in zip(total, R.cd_gradients(v, v1, W, c)):
            t += g / n_steps
    for t, e in zip(total, R.expected_cd1_gradients(v, W, b, c, visible=visible)):
        np.testing.assert_allclose(t, e, atol=0.015)
    other = R.expected_cd1_gradients(v, W, b, c, visible="probability" if visible == "sample" else "sample")
    assert np.abs(other[0] - R.expected_cd1_gradients(v, W, b, c, visible=visible)[0]).max() > 0.01
