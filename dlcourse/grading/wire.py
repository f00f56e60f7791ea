"""The only format in which values cross between a student's kernel and the grader's checker.

Test cells run in a trusted *checker* process; a student's functions and variables stay in the
student's sandboxed kernel (:mod:`~dlcourse.grading.checker`, :mod:`~dlcourse.grading.agent`).
What crosses between the two is plain data, and nothing else:

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``;
- NumPy arrays and NumPy scalars of a numeric or boolean dtype (never ``object``);
- ``list``, ``tuple`` and ``dict`` (keys: ``str``, ``int`` or ``float``) of these;
- ``numpy.random.Generator``, as its bit generator's state (a new generator with that state is
  made on the other side, and the state comes back after a call);
- Keras models, as their architecture (a JSON configuration whose every class is one of Keras's
  own built-in layers, initializers, optimizers, losses, metrics, regularizers or constraints),
  their weights (arrays) and their compile settings; the receiver rebuilds the model with Keras's
  safe mode. No pickle, no code, no object whose methods would run on the receiving side.

Everything else is refused with :class:`NotPlainData`, which says what was found. Decoding checks
types, sizes and nesting, so a malformed or hostile message is a clear error, never a crash or a
hang of the grader.

Messages: ``frame(header, buffers)`` sends a JSON header and raw array buffers, each message
bounded by ``MAX_MESSAGE`` bytes.
"""
from __future__ import annotations

import json
import math
import socket
import struct

import numpy as np

MAX_MESSAGE = 256 * 2**20        # bytes in one message (a model of 60 M parameters, say)
MAX_DEPTH = 32                   # nesting of lists, tuples and dicts
MAX_ITEMS = 1_000_000            # values in one message
MAX_CONFIG = 4 * 2**20           # bytes of a Keras model's JSON configuration
_HEADER = struct.Struct("!II")   # header length, number of buffers


class NotPlainData(TypeError):
    """A value that cannot cross: it is not plain data (see the module's docstring)."""


class BadMessage(ValueError):
    """A message that does not follow the format (malformed, too big, too deep)."""


def describe(value) -> str:
    """A short, safe description of a value's type, for messages."""
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ not in ("builtins", None) else kind.__qualname__
    return name[:120]


# --------------------------------------------------------------------------------------------
# values <-> (JSON-able tree, buffers)
# --------------------------------------------------------------------------------------------
_ARRAY_KINDS = "biufc"          # bool, signed, unsigned, float, complex


def encode(value, buffers: list, *, _depth: int = 0, _count: list | None = None):
    """The JSON-able form of ``value``, its arrays appended to ``buffers``."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise NotPlainData(f"more than {MAX_ITEMS} values")
    if _depth > MAX_DEPTH:
        raise NotPlainData(f"nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)) and type(value) in (bool, str):
        return value
    if type(value) is int:
        return {"t": "int", "v": str(value)} if abs(value) >= 2**53 else value
    if type(value) is float:
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    if type(value) is complex:
        return {"t": "complex", "v": [repr(value.real), repr(value.imag)]}
    if type(value) is bytes:
        buffers.append(value)
        return {"t": "bytes", "b": len(buffers) - 1}
    if type(value) in (list, tuple):
        items = [encode(v, buffers, _depth=_depth + 1, _count=count) for v in value]
        return {"t": "list" if type(value) is list else "tuple", "v": items}
    if type(value) is dict:
        keys, vals = [], []
        for k, v in value.items():
            if type(k) not in (str, int, float):
                raise NotPlainData(f"a dict with a key of type {describe(k)}")
            keys.append(encode(k, buffers, _depth=_depth + 1, _count=count))
            vals.append(encode(v, buffers, _depth=_depth + 1, _count=count))
        return {"t": "dict", "k": keys, "v": vals}
    if isinstance(value, np.ndarray) and type(value) is np.ndarray:
        return _encode_array(value, buffers, "array")
    if isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
        return _encode_array(np.asarray(value), buffers, "scalar")
    if type(value) is np.random.Generator:
        state = value.bit_generator.state
        return {"t": "rng", "v": encode(state, buffers, _depth=_depth + 1, _count=count)}
    if _is_keras_model(value):
        return encode_model(value, buffers)
    if isinstance(value, np.ndarray):
        raise NotPlainData(f"an array subclass {describe(value)}")
    raise NotPlainData(describe(value))


def _encode_array(arr: np.ndarray, buffers: list, tag: str) -> dict:
    if arr.dtype.kind not in _ARRAY_KINDS or arr.dtype.fields is not None or arr.dtype.subdtype is not None:
        raise NotPlainData(f"an array of dtype {arr.dtype} (only numbers and booleans cross)")
    data = arr if arr.flags.c_contiguous else arr.copy(order="C")   # (ascontiguousarray makes 0-d 1-d)
    buffers.append(data.tobytes())
    return {"t": tag, "dtype": data.dtype.str, "shape": list(data.shape), "b": len(buffers) - 1}


def decode(tree, buffers: list, *, _depth: int = 0, _count: list | None = None):
    """The value that :func:`encode` encoded; :class:`BadMessage` for anything else."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise BadMessage(f"more than {MAX_ITEMS} values")
    if _depth > MAX_DEPTH:
        raise BadMessage(f"nested more than {MAX_DEPTH} levels deep")
    if tree is None or type(tree) in (bool, str, float):
        return tree
    if type(tree) is int:
        if abs(tree) >= 2**53:
            raise BadMessage("a large integer outside its tag")
        return tree
    if type(tree) is not dict:
        raise BadMessage(f"unexpected {describe(tree)} in a message")
    tag = tree.get("t")
    try:
        if tag == "int":
            text = _str(tree["v"], 400)
            return int(text)
        if tag == "float":
            return float(_str(tree["v"], 40))
        if tag == "complex":
            re_, im = tree["v"]
            return complex(float(_str(re_, 40)), float(_str(im, 40)))
        if tag == "bytes":
            return bytes(_buffer(tree, buffers))
        if tag in ("list", "tuple"):
            items = tree["v"]
            if type(items) is not list:
                raise BadMessage("a list that is not a list")
            out = [decode(v, buffers, _depth=_depth + 1, _count=count) for v in items]
            return out if tag == "list" else tuple(out)
        if tag == "dict":
            keys, vals = tree["k"], tree["v"]
            if type(keys) is not list or type(vals) is not list or len(keys) != len(vals):
                raise BadMessage("a dict whose keys and values do not match")
            out = {}
            for k, v in zip(keys, vals):
                key = decode(k, buffers, _depth=_depth + 1, _count=count)
                if type(key) not in (str, int, float):
                    raise BadMessage(f"a dict key of type {describe(key)}")
                out[key] = decode(v, buffers, _depth=_depth + 1, _count=count)
            return out
        if tag in ("array", "scalar"):
            return _decode_array(tree, buffers, scalar=(tag == "scalar"))
        if tag == "rng":
            return _decode_rng(decode(tree["v"], buffers, _depth=_depth + 1, _count=count))
        if tag == "keras":
            return decode_model(tree, buffers)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, (BadMessage, NotPlainData)):
            raise
        raise BadMessage(f"a malformed {str(tag)[:20]!r} value ({type(exc).__name__}: {str(exc)[:200]})") from None
    raise BadMessage(f"an unknown value tag {str(tag)[:20]!r}")


def _str(value, limit: int) -> str:
    if type(value) is not str or len(value) > limit:
        raise BadMessage("a malformed number")
    return value


def _buffer(tree: dict, buffers: list):
    index = tree["b"]
    if type(index) is not int or not 0 <= index < len(buffers):
        raise BadMessage("a reference to a missing buffer")
    return buffers[index]


def _decode_array(tree: dict, buffers: list, scalar: bool):
    dtype = np.dtype(_str(tree["dtype"], 16))
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise BadMessage(f"an array of dtype {dtype}")
    shape = tree["shape"]
    if type(shape) is not list or len(shape) > 32 or any(type(n) is not int or n < 0 for n in shape):
        raise BadMessage("a malformed array shape")
    data = _buffer(tree, buffers)
    size = math.prod(shape) * dtype.itemsize
    if size != len(data):
        raise BadMessage(f"an array of shape {tuple(shape)} and dtype {dtype} with {len(data)} bytes")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if scalar:
        if arr.shape != ():
            raise BadMessage("a scalar with a shape")
        return arr[()]
    return arr


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _decode_rng(state) -> np.random.Generator:
    if type(state) is not dict or state.get("bit_generator") not in _BIT_GENERATORS:
        raise BadMessage("a random generator with an unknown bit generator")
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


def sync_back(original, returned) -> bool:
    """Copy what a call did to an argument back into the caller's object: the contents of an
    array (modified in place), the state of a random generator. True if anything was copied."""
    if type(original) is np.ndarray and type(returned) is np.ndarray:
        if original.shape == returned.shape and original.dtype == returned.dtype and original.flags.writeable:
            np.copyto(original, returned)
            return True
        return False
    if type(original) is np.random.Generator and type(returned) is np.random.Generator:
        try:
            original.bit_generator.state = returned.bit_generator.state
            return True
        except (TypeError, ValueError):
            return False
    return False


def mutable(value) -> bool:
    """Whether a call could change ``value`` in place in a way the caller sees (arrays, generators)."""
    return type(value) in (np.ndarray, np.random.Generator)


def fingerprint(value):
    """What :func:`sync_back` compares to know whether a call changed an argument."""
    if type(value) is np.ndarray:
        return (value.shape, value.dtype.str, value.tobytes())
    if type(value) is np.random.Generator:
        return json.dumps(value.bit_generator.state, sort_keys=True, default=str)
    return None


# --------------------------------------------------------------------------------------------
# Keras models
# --------------------------------------------------------------------------------------------
def _is_keras_model(value) -> bool:
    import sys
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


# Modules a model's configuration may name, and the kinds of class each may provide. A class that
# loads files or runs code (Lambda, TFSMLayer) is refused wherever it appears.
_MODULES = ("keras", "keras.layers", "keras.models", "keras.initializers", "keras.optimizers",
            "keras.optimizers.schedules", "keras.losses", "keras.metrics", "keras.regularizers",
            "keras.constraints", "keras.activations", "keras.src.models.functional",
            "keras.src.models.sequential", "keras.src.models.model")
_FUNCTION_MODULES = ("keras.activations", "keras.losses", "keras.metrics")
_REFUSED = ("Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer", "function_type", "__lambda__")
MAX_DIMENSION = 2**24        # a model's sizes (units, filters, input lengths): larger ones would exhaust memory


def _allowed_base_classes():
    import keras
    return (keras.layers.Layer, keras.Model, keras.initializers.Initializer, keras.optimizers.Optimizer,
            keras.losses.Loss, keras.metrics.Metric, keras.regularizers.Regularizer,
            keras.constraints.Constraint, keras.optimizers.schedules.LearningRateSchedule,
            keras.DTypePolicy)


def check_model_config(config) -> None:
    """Refuse a model configuration that names anything but Keras's own built-in classes."""
    import importlib
    import types

    bases = _allowed_base_classes()
    stack = [(config, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > 200_000 or depth > 200:
            raise BadMessage("a model configuration that is too large or too deep")
        if isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
            continue
        if isinstance(node, str):
            if node in _REFUSED:
                raise BadMessage(f"a model with {node!r}, which the grader does not load")
            continue
        if isinstance(node, (int, float)) and not isinstance(node, bool) and abs(node) > MAX_DIMENSION \
                and float(node).is_integer():
            raise BadMessage(f"a model with a size of {int(node)} (at most {MAX_DIMENSION} can be checked)")
        if not isinstance(node, dict):
            continue
        for key in node:
            if key in _REFUSED:
                raise BadMessage(f"a model with {key!r}, which the grader does not load")
        if "class_name" in node or "module" in node:
            module, name = node.get("module"), node.get("class_name")
            if name in _REFUSED or not isinstance(name, str):
                raise BadMessage(f"a model with a layer of kind {str(name)[:60]!r}, which the grader does not load")
            registered = node.get("registered_name")
            if module not in _MODULES:
                raise BadMessage(f"a model that uses {str(module)[:60]}.{name[:60]}: only Keras's built-in layers "
                                 "and settings can be checked (no custom classes or functions)")
            obj = getattr(importlib.import_module(module), name, None)
            if name == "function":
                target = node.get("config")
                func = getattr(importlib.import_module(module), target, None) if isinstance(target, str) else None
                if module not in _FUNCTION_MODULES or not isinstance(func, types.FunctionType) \
                        or registered not in (None, "function", target):
                    raise BadMessage(f"a model that uses the function {str(target)[:60]!r} of {module}")
            elif not (isinstance(obj, type) and issubclass(obj, bases)) or registered not in (None, name):
                raise BadMessage(f"a model that uses {module}.{name[:60]}: only Keras's built-in layers "
                                 "and settings can be checked")
        stack.extend((v, depth + 1) for v in node.values())


MAX_PARAMETERS = 64 * 2**20     # weights of one model the checker builds (256 MiB of float32)


def _layer_sizes(config) -> list[int]:
    """For each layer of a model configuration, an upper bound on its number of weights, from its
    configuration alone (before Keras allocates them): the product of its input's known sizes and
    its own size (units, filters, output_dim, input_dim, kernel size), plus the square of its own
    size (recurrent weights)."""
    bounds = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            inner = node.get("config")
            if "class_name" in node and isinstance(inner, dict):
                size = 1
                for key in ("units", "filters", "output_dim", "input_dim", "depth_multiplier", "num_heads", "key_dim"):
                    if isinstance(inner.get(key), int) and inner[key] > 0:
                        size *= inner[key]
                kernel = inner.get("kernel_size")
                for k in (kernel if isinstance(kernel, list) else [kernel] if isinstance(kernel, int) else []):
                    if isinstance(k, int) and k > 0:
                        size *= k
                inputs = 1
                shape = (node.get("build_config") or {}).get("input_shape") if isinstance(node.get("build_config"), dict) else None
                shape = shape or inner.get("batch_shape")
                if isinstance(shape, list):
                    for dim in shape:
                        if isinstance(dim, int) and dim > 0:
                            inputs *= dim
                bounds.append(inputs * size + 4 * size * size)
    return bounds


def _check_sizes(config, received: int) -> None:
    total = sum(_layer_sizes(config))
    if received > MAX_PARAMETERS or total > 2 * MAX_PARAMETERS:
        raise BadMessage(f"a model of about {max(received, total):,} weights (at most {MAX_PARAMETERS:,} can be checked)")


_ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}


def _zero_initializers(config) -> None:
    """Every initializer becomes Zeros before the model is built: the weights are set from the
    message right after, and an initializer's own work (an orthogonal matrix of a huge layer, say)
    would be the sender's choice of how much of the checker's time to spend."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in list(node.items()):
                if key.endswith("_initializer") and value is not None:
                    node[key] = dict(_ZEROS)
                else:
                    stack.append(value)


def encode_model(model, buffers: list) -> dict:
    import keras

    try:
        config = keras.saving.serialize_keras_object(model)
        text = json.dumps(config)
        compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
        compile_text = json.dumps(compile_config) if compile_config else None
        weights = [np.asarray(w) for w in model.get_weights()]
    except Exception as exc:  # noqa: BLE001 - a model keras cannot describe
        raise NotPlainData(f"a Keras model that cannot be saved ({type(exc).__name__}: {str(exc)[:200]})") from None
    return {"t": "keras", "config": text, "compile": compile_text,
            "weights": [_encode_array(w, buffers, "array") for w in weights]}


def decode_model(tree: dict, buffers: list):
    """A Keras model rebuilt from its configuration with Keras's safe mode, after
    :func:`check_model_config` has accepted every class it names."""
    import keras

    text = _str(tree["config"], MAX_CONFIG)
    config = json.loads(text)
    check_model_config(config)
    weights = [_decode_array(w, buffers, scalar=False) for w in tree["weights"]]
    _check_sizes(config, sum(w.size for w in weights))
    _zero_initializers(config)
    compile_config = None
    if tree.get("compile") is not None:
        compile_config = json.loads(_str(tree["compile"], MAX_CONFIG))
        check_model_config(compile_config)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        if not isinstance(model, keras.Model):
            raise BadMessage("a model configuration that is not a model")
        model.set_weights(weights)
        if compile_config:
            model.compile_from_config(compile_config)
    except BadMessage:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild is the message's
        raise BadMessage(f"a Keras model that could not be rebuilt ({type(exc).__name__}: {str(exc)[:300]})") from None
    return model


# --------------------------------------------------------------------------------------------
# messages on a stream socket
# --------------------------------------------------------------------------------------------
def pack(header: dict, buffers: list) -> bytes:
    head = json.dumps(header, allow_nan=False).encode()
    sizes = struct.pack(f"!{len(buffers)}Q", *(len(b) for b in buffers))
    total = _HEADER.size + len(head) + len(sizes) + sum(len(b) for b in buffers)
    if total > MAX_MESSAGE:
        raise NotPlainData(f"a value of {total / 2**20:.0f} MiB (at most {MAX_MESSAGE // 2**20} MiB cross)")
    return b"".join([_HEADER.pack(len(head), len(buffers)), head, sizes, *buffers])


def send(sock: socket.socket, header: dict, buffers: list | None = None) -> None:
    sock.sendall(pack(header, buffers or []))


def recv(sock: socket.socket) -> tuple[dict, list]:
    """One message: (header, buffers). EOFError when the other side has gone; BadMessage when
    what came is not a message."""
    head_len, count = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if head_len > MAX_CONFIG * 4 or count > MAX_ITEMS:
        raise BadMessage("a message header that is too large")
    head = _recv_exact(sock, head_len)
    sizes = struct.unpack(f"!{count}Q", _recv_exact(sock, 8 * count)) if count else ()
    if head_len + sum(sizes) > MAX_MESSAGE:
        raise BadMessage(f"a message of more than {MAX_MESSAGE // 2**20} MiB")
    buffers = [_recv_exact(sock, n) for n in sizes]
    try:
        header = json.loads(head)
    except (ValueError, RecursionError):
        raise BadMessage("a message header that is not JSON") from None
    if type(header) is not dict:
        raise BadMessage("a message header that is not an object")
    return header, buffers


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 4 * 2**20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
