"""The grading channel without kernels: what crosses between a student's kernel and the checker.

``wire`` (the only format values cross in), ``agent`` (the student's end) and ``checker.Channel``
(the checker's end) are tested here with a real Unix socket and the agent in a thread, on a plain
dict as the student's namespace. The whole design, with kernels and bubblewrap, is tested in
tests/test_grading.py and tests/test_grading_attacks.py.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from dlcourse.grading import agent, checker, messages, sandbox, wire


# --- wire -------------------------------------------------------------------------------------
PLAIN = [None, True, False, 0, -3, 2**70, 1.5, float("nan"), float("inf"), -0.0, 1 + 2j, "text", "é\u2603", b"\x00bytes",
         [1, [2, (3, 4)]], (1.0, "a"), {"a": 1, 2: [3]}, np.arange(6).reshape(2, 3), np.float64(2.5), np.int32(3),
         np.bool_(True), np.array(2.5), np.zeros((0, 3)), np.arange(12).reshape(3, 4).T, np.array([1 + 1j]),
         np.ones((2, 2), dtype=bool), np.float32(1.25)]


def roundtrip(value):
    """``value`` encoded, sent through a socket as a message, received and decoded."""
    buffers: list = []
    tree = wire.encode(value, buffers)
    a, b = socket.socketpair()
    sender = threading.Thread(target=wire.send, args=(a, {"v": tree}, buffers), daemon=True)
    sender.start()
    header, out = wire.recv(b)
    sender.join()
    a.close()
    b.close()
    return wire.decode(header["v"], out)


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_data_crosses_unchanged_with_its_type(value):
    got = roundtrip(value)
    assert type(got) is type(value)
    if isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and got.shape == value.shape and np.array_equal(got, value, equal_nan=True)
    elif isinstance(value, float) and value != value:
        assert got != got
    else:
        assert got == value


class Lying(float):
    def __eq__(self, other):
        return True


class LyingArray(np.ndarray):
    pass


@pytest.mark.parametrize("value", [Lying(1.0), np.arange(3).view(LyingArray), np.array([object()]), object(),
                                   np.zeros(2, dtype=[("a", "f8")]), {1, 2}, lambda: 1, np.ma.masked_array([1, 2]),
                                   type("X", (list,), {})([1]), {("tuple", "key"): 1}],
                         ids=lambda v: type(v).__name__)
def test_anything_else_is_refused(value):
    with pytest.raises(wire.NotPlainData):
        wire.encode(value, [])


def test_self_referencing_and_deep_values_are_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(wire.NotPlainData):
        wire.encode(loop, [])
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(wire.NotPlainData):
        wire.encode(deep, [])


@pytest.mark.parametrize("tree", [{"t": "array", "dtype": "|O", "shape": [1], "b": 0},
                                  {"t": "array", "dtype": "<f8", "shape": [10**6], "b": 0},
                                  {"t": "array", "dtype": "<f8", "shape": [-1], "b": 0},
                                  {"t": "array", "dtype": "<f8", "shape": [1], "b": 5},
                                  {"t": "int", "v": "9" * 5000}, {"t": "nope"}, {"t": "list", "v": "abc"},
                                  {"t": "dict", "k": [[1]], "v": [1]}, {"t": "rng", "v": {"bit_generator": "os.system"}},
                                  {"t": "keras", "config": "{}", "weights": []}, [1, 2], 2**60])
def test_malformed_messages_are_clear_errors(tree):
    with pytest.raises((wire.BadMessage, wire.NotPlainData)):
        wire.decode(tree, [b"\x00" * 8])


def test_a_random_generator_crosses_with_its_state():
    rng = np.random.default_rng(5)
    rng.random(3)
    got = roundtrip(rng)
    assert got is not rng and np.array_equal(got.random(4), rng.random(4))


def test_keras_models_cross_as_built_in_layers_only():
    import keras

    model = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Conv2D(4, 2, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    got = roundtrip(model)
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    assert np.allclose(got(x), model(x)) and type(got.optimizer).__name__ == "Adam" and got.loss == model.loss
    lam = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Lambda(lambda t: t * 2)])
    with pytest.raises((wire.BadMessage, wire.NotPlainData)):
        roundtrip(lam)

    class Custom(keras.layers.Layer):
        def call(self, x):
            return x

    custom = keras.Sequential([keras.Input(shape=(2,)), Custom()])
    with pytest.raises((wire.BadMessage, wire.NotPlainData)):
        roundtrip(custom)
    config = {"module": "keras.utils", "class_name": "get_file", "config": {}, "registered_name": None}
    with pytest.raises(wire.BadMessage):
        wire.check_model_config(config)


def test_sync_back_copies_changes_into_the_callers_arrays_and_generators():
    a = np.zeros(3)
    assert wire.sync_back(a, np.ones(3)) and np.array_equal(a, np.ones(3))
    assert not wire.sync_back(a, np.ones(4))
    rng, other = np.random.default_rng(1), np.random.default_rng(2)
    assert wire.sync_back(rng, other) and rng.random() == np.random.default_rng(2).random()


# --- the channel, with the agent in a thread ----------------------------------------------------
class Pair:
    """A checker Channel and an agent serving ``ns`` (the student's namespace) in a thread."""

    def __init__(self, tmp_path, ns, timeout=5.0):
        self.channel = checker.Channel(str(tmp_path / "c.sock"), timeout)
        self.ns = ns

    def cell(self, body):
        """Run ``body(channel)`` as one test cell while the agent serves."""
        errors = []

        def serve():
            try:
                agent.serve(self.channel.path, connect_timeout=5)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        original = agent._namespace
        agent._namespace = lambda: self.ns
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.channel.begin_cell()
        try:
            return body(self.channel)
        finally:
            self.channel.end_cell()
            thread.join(10)
            agent._namespace = original
            assert not thread.is_alive(), "the agent did not stop at the end of the cell"


def test_values_functions_and_missing_names(tmp_path):
    def double(x, factor=2):
        return x * factor

    pair = Pair(tmp_path, {"double": double, "accuracy": 0.93, "weights": np.arange(4.0)})

    def cell(ch):
        assert ch.get("accuracy") == 0.93
        assert np.array_equal(ch.get("weights"), np.arange(4.0))
        f = ch.get("double")
        assert isinstance(f, checker.StudentFunction)
        assert np.array_equal(f(np.arange(3), factor=3), np.arange(3) * 3)
        assert ch.has("double") and not ch.has("nothing")
        with pytest.raises(KeyError):
            ch.get("nothing")
    pair.cell(cell)


def test_student_errors_come_back_under_their_own_name(tmp_path):
    def broken(x):
        raise ValueError("shapes do not match")

    pair = Pair(tmp_path, {"broken": broken})

    def cell(ch):
        with pytest.raises(checker.StudentError) as info:
            ch.get("broken")(1)
        assert type(info.value).__name__ == "ValueError" and "shapes do not match" in str(info.value)
    pair.cell(cell)


def test_generators_advance_but_the_tests_arrays_never_change(tmp_path):
    """A call's changes to a random generator argument come back (a test passes one generator to
    many calls); its changes to an array argument never do (a student's function could rewrite the
    test's inputs, and with them an expected value computed after the call), but are reported to
    dlcourse.checks.check_unchanged."""
    from dlcourse.checks import check_unchanged

    def relu_in_place(z):
        np.maximum(z, 0, out=z)
        return z

    def zero_the_inputs(image, kernel):
        image[...] = 0
        kernel[...] = 0
        return np.zeros(2)

    def draw(rng):
        return rng.random()

    pair = Pair(tmp_path, {"relu_in_place": relu_in_place, "zero_the_inputs": zero_the_inputs, "draw": draw})

    def cell(ch):
        image, kernel = np.ones(3), np.ones(2)
        ch.get("zero_the_inputs")(image, kernel)
        assert image.sum() == 3 and kernel.sum() == 2, "the test's own arrays must not change"
        z = np.array([-1.0, 2.0])
        with pytest.raises(AssertionError, match="argument 1 changed in place"):
            check_unchanged(ch.get("relu_in_place"), z, what="relu(z)")
        assert np.array_equal(z, [-1.0, 2.0])
        rng = np.random.default_rng(0)
        check_unchanged(ch.get("draw"), rng, what="draw(rng)")      # a generator is meant to advance
        rng = np.random.default_rng(0)
        first, second = ch.get("draw")(rng), ch.get("draw")(rng)
        reference = np.random.default_rng(0)
        assert (first, second) == (reference.random(), reference.random()), "the generator must advance"
    pair.cell(cell)

    # The same verdict in the student's own kernel (Validate), where the call is direct.
    with pytest.raises(AssertionError, match="argument 1 changed in place"):
        check_unchanged(relu_in_place, np.array([-1.0, 2.0]), what="relu(z)")
    assert np.array_equal(check_unchanged(np.maximum, np.array([-1.0]), 0, what="max"), [0.0])


def test_what_is_not_plain_data_is_a_clear_failure(tmp_path):
    class Thing:
        pass

    pair = Pair(tmp_path, {"thing": Thing(), "make": lambda: Thing(), "big": lambda: np.zeros(2**26)})

    def cell(ch):
        with pytest.raises(checker.UncheckableValue, match="Thing"):
            ch.get("thing")
        with pytest.raises(checker.UncheckableValue, match="Thing"):
            ch.get("make")()
    pair.cell(cell)


def test_a_function_that_does_not_return_fails_within_the_time_limit(tmp_path):
    pair = Pair(tmp_path, {"slow": lambda: time.sleep(3) or 1}, timeout=0.5)

    def cell(ch):
        start = time.monotonic()
        with pytest.raises(checker.StudentUnavailable, match="did not return"):
            ch.get("slow")()
        assert time.monotonic() - start < 2
        with pytest.raises(checker.StudentUnavailable):   # the rest of the cell fails fast
            ch.get("slow")()
    pair.cell(cell)


def test_a_fake_agent_that_lies_about_frames_cannot_crash_the_checker(tmp_path):
    ch = checker.Channel(str(tmp_path / "c.sock"), 2.0)
    ch.begin_cell()

    def fake():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(ch.path)
        wire.send(s, {"op": "hello"})
        s.recv(65536)
        s.sendall(wire._HEADER.pack(10, 2**31) + b"x" * 100)   # absurd buffer count
        time.sleep(0.5)
        s.close()

    thread = threading.Thread(target=fake, daemon=True)
    thread.start()
    with pytest.raises((checker.UncheckableValue, checker.StudentUnavailable)):
        ch.get("anything")
    ch.end_cell()
    thread.join(5)


def test_names_resolved_in_the_student_kernel_are_only_the_interface():
    ns = checker.StudentNamespace()

    class FakeChannel:
        active = True

        def get(self, name):
            return f"student's {name}"

        def has(self, name):
            return True

    fake = type("C", (), {"channel": FakeChannel(), "interface": frozenset({"convolve2d", "len", "_private"})})()
    checker.StudentNamespace.checker = fake
    try:
        exec("got = convolve2d", ns, ns)
        assert ns["got"] == "student's convolve2d"
        exec("n = len([1, 2])", ns, ns)            # a builtin is never the student's
        assert ns["n"] == 2
        with pytest.raises(NameError):
            exec("_private", ns, ns)                # nor a name starting with _
        with pytest.raises(NameError):
            exec("check_array", ns, ns)             # nor a name the answer cells do not define
        assert "convolve2d" in ns and "check_array" not in ns
    finally:
        checker.StudentNamespace.checker = None


STUDENT_CODE = """
def squares(n):
    if n < 1:
        raise ValueError("n must be at least 1")
    return [i ** 2 for i in range(1, n + 1)]

def sum_of_squares(n):
    return sum(squares(n))

def stopper(x):
    raise StopIteration
"""

# nbgrader's documentation course's tests (problem1.ipynb), and what else a test may do to the
# student's names
NAMESPACE_TEST = """
try:
    squares(0)
except ValueError:
    caught = True
orig_squares = squares
del squares
try:
    sum_of_squares(1)
except NameError:
    uses_squares = True
finally:
    squares = orig_squares
restored = sum_of_squares(10)
limit = [1, 2, 3]
"""


def test_a_test_deletes_rebinds_and_catches_as_in_one_process(tmp_path):
    student: dict = {}
    exec(STUDENT_CODE, student)
    pair = Pair(tmp_path, student)
    ns = checker.StudentNamespace()
    fake = type("C", (), {"channel": pair.channel, "tests_running": True,
                          "interface": frozenset({"squares", "sum_of_squares", "stopper", "limit"})})()
    checker.StudentNamespace.checker = fake
    try:
        pair.cell(lambda ch: exec(NAMESPACE_TEST, ns, ns))
        assert ns["caught"] and ns["uses_squares"] and ns["restored"] == 385
        assert student["squares"] is not None and student["sum_of_squares"](3) == 14   # restored there
        assert student["limit"] == [1, 2, 3]                # plain data bound by a test reaches the student

        def mock(ch):
            exec("before = squares(1)", ns, ns)
            with pytest.raises(checker.UncheckableValue, match="binds squares"):
                exec("squares = lambda n: [0] * n", ns, ns)   # an object of the test's own cannot
        pair.cell(mock)
        assert student["squares"](2) == [1, 4]

        def stop(ch):
            # a student's StopIteration is not one in the checker: it cannot end a test's
            # iteration early (all(map(...)) of nothing is True)
            with pytest.raises(checker.StudentError) as info:
                exec("ok = all(map(stopper, [1, 2]))", ns, ns)
            assert not isinstance(info.value, StopIteration)
        pair.cell(stop)
    finally:
        checker.StudentNamespace.checker = None


def test_bound_names_are_what_answer_cells_define():
    code = "import numpy as np\nfrom x import y as z\ndef f():\n    inner = 1\nclass C: pass\na, (b, c) = 1, (2, 3)\n_h = 1\nfor i in []: pass"
    assert checker.bound_names(code) == {"np", "z", "f", "C", "a", "b", "c", "i"}


# --- the off-limits reference answers --------------------------------------------------------
def test_off_limits_reference_answers_are_not_in_the_sandboxes_package(tmp_path):
    import dlcourse

    out = sandbox.filtered_package(["dlcourse.cnn", "dlcourse.rbm.gibbs_step", "dlcourse.rbm.RBM"], tmp_path)
    assert (out / "cnn.py").read_text().startswith("raise ImportError")
    rbm = (out / "rbm.py").read_text()
    original = (dlcourse.__path__[0] + "/rbm.py")
    body = open(original).read()
    assert "def gibbs_step" in rbm and "sample_bernoulli(hidden_probabilities(v, W, c), rng)" in body
    assert "sample_bernoulli(hidden_probabilities(v, W, c), rng)" not in rbm.split("def gibbs_step")[1].split("def ")[0]
    assert "class RBM" in rbm and "def impute" not in rbm.split("class RBM")[1]
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pyc"))
    with pytest.raises(ValueError, match="off_limits"):
        sandbox.filtered_package(["dlcourse.nothing_here"], tmp_path)


# --- the messages between processes ----------------------------------------------------------
def test_job_and_result_messages_refuse_what_they_do_not_declare():
    result = messages.Result(student="s", status="ok", problems=[], scores={}, autograded={})
    assert messages.Result.from_json(result.to_json()) == result
    data = json.loads(result.to_json())
    with pytest.raises(messages.MessageError, match="unknown"):
        messages.Result.from_dict({**data, "nonce": "x"})
    with pytest.raises(messages.MessageError, match="missing"):
        messages.Result.from_dict({k: v for k, v in data.items() if k != "status"})
    with pytest.raises(messages.MessageError, match="runs"):
        messages.Result.from_dict({**data, "runs": "3"})
    assert "max_reruns" in messages.Job.__dataclass_fields__
    assert messages.Job.__dataclass_fields__["max_reruns"].default == messages.MAX_RERUNS
