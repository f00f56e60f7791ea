"""dlcourse.data: the offline data sets have the shapes, types, ranges and splits the docstrings
promise, are reproducible, and bad arguments are rejected with a ValueError naming the argument."""
import numpy as np
import pytest

from dlcourse import data


# ---------------------------------------------------------------- digits
def test_load_digits_shapes_types_and_range():
    X_train, X_test, y_train, y_test = data.load_digits()
    assert X_train.shape == (1347, 8, 8, 1) and X_test.shape == (450, 8, 8, 1)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0     # 0..16 scaled to [0, 1]
    assert set(np.unique(np.concatenate([y_train, y_test]))) == set(range(10))


def test_load_digits_flat_vectors_hold_the_same_pixels():
    X_img, _, y_img, _ = data.load_digits()
    X_flat, _, y_flat, _ = data.load_digits(images=False)
    assert X_flat.shape == (1347, 64)
    np.testing.assert_array_equal(X_flat, X_img.reshape(len(X_img), 64))
    np.testing.assert_array_equal(y_flat, y_img)


def test_load_digits_split_is_stratified_and_sized_by_test_size():
    _, X_test, y_train, y_test = data.load_digits(test_size=0.5)
    assert len(X_test) == 899
    train_share, test_share = np.bincount(y_train) / len(y_train), np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.005)


def test_load_digits_is_reproducible_and_the_seed_changes_the_split():
    a, b, c = data.load_digits(seed=0), data.load_digits(seed=0), data.load_digits(seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


# ---------------------------------------------------------------- MNIST-1D
@pytest.fixture(scope="module")
def mnist1d():
    return data.load_mnist1d()


def test_load_mnist1d_has_the_published_benchmark_sizes(mnist1d):
    X_train, X_test, y_train, y_test = mnist1d
    assert X_train.shape == (4000, 40) and X_test.shape == (1000, 40)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(y_train, minlength=10).min() > 300 and set(np.unique(y_test)) == set(range(10))
    assert np.all(np.isfinite(X_train))


def test_load_mnist1d_channels_last_adds_one_channel(mnist1d):
    X_train, X_test, y_train, _ = data.load_mnist1d(channels_last=True)
    assert X_train.shape == (4000, 40, 1) and X_test.shape == (1000, 40, 1)
    np.testing.assert_array_equal(X_train[..., 0], mnist1d[0])
    np.testing.assert_array_equal(y_train, mnist1d[2])


def test_load_mnist1d_sizes_follow_num_samples_and_train_split():
    X_train, X_test, _, _ = data.load_mnist1d(num_samples=200, train_split=0.75)
    assert (len(X_train), len(X_test)) == (150, 50)


def test_load_mnist1d_is_reproducible_and_leaves_numpy_global_state_alone():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = data.load_mnist1d(num_samples=100, seed=3)
    assert np.array_equal(np.random.get_state()[1], state)
    b = data.load_mnist1d(num_samples=100, seed=3)
    c = data.load_mnist1d(num_samples=100, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


# ---------------------------------------------------------------- photographs
@pytest.mark.parametrize("name", data.PHOTOS)
def test_load_sample_photo_is_a_colour_image_in_0_1(name):
    photo = data.load_sample_photo(name)
    assert photo.shape == (427, 640, 3) and photo.dtype == np.float32
    assert 0.0 <= photo.min() and photo.max() <= 1.0 and photo.max() > 0.9


def test_load_sample_photo_shrink_averages_blocks():
    full, half = data.load_sample_photo(), data.load_sample_photo(shrink=2)
    assert half.shape == (213, 320, 3)
    np.testing.assert_allclose(half[5, 7], full[10:12, 14:16].mean(axis=(0, 1)), rtol=1e-6)


# ---------------------------------------------------------------- bad arguments
BAD_ARGUMENTS = [
    (data.load_digits, {"test_size": 0}, "test_size"),
    (data.load_digits, {"test_size": 1.5}, "test_size"),
    (data.load_digits, {"test_size": "0.2"}, "test_size"),
    (data.load_digits, {"seed": -1}, "seed"),
    (data.load_digits, {"seed": 1.5}, "seed"),
    (data.load_mnist1d, {"num_samples": 0}, "num_samples"),
    (data.load_mnist1d, {"num_samples": 5}, "num_samples"),
    (data.load_mnist1d, {"num_samples": 2.5}, "num_samples"),
    (data.load_mnist1d, {"train_split": 1}, "train_split"),
    (data.load_mnist1d, {"train_split": 0}, "train_split"),
    (data.load_mnist1d, {"seed": -2}, "seed"),
    (data.load_mnist1d, {"seed": True}, "seed"),
    (data.load_sample_photo, {"name": "x.png"}, "name"),
    (data.load_sample_photo, {"shrink": 0}, "shrink"),
    (data.load_sample_photo, {"shrink": 2.0}, "shrink"),
]


@pytest.mark.parametrize("function,kwargs,name", BAD_ARGUMENTS,
                         ids=[f"{f.__name__}-{k}" for f, k, _ in BAD_ARGUMENTS])
def test_bad_arguments_raise_a_value_error_naming_the_argument(function, kwargs, name):
    with pytest.raises(ValueError, match=name):
        function(**kwargs)


def test_unknown_photo_lists_the_available_ones():
    with pytest.raises(ValueError, match="china.jpg") as info:
        data.load_sample_photo("x.png")
    assert "flower.jpg" in str(info.value) and "x.png" in str(info.value)


def test_every_public_function_is_checked_for_bad_arguments():
    public = {name for name in dir(data) if not name.startswith("_") and callable(getattr(data, name))
              and getattr(getattr(data, name), "__module__", None) == data.__name__}
    assert public == {f.__name__ for f, _, _ in BAD_ARGUMENTS}
