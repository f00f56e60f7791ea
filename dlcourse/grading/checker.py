"""The checker: the trusted process where a notebook's test cells and locked cells run while grading.

Student code and the tests that grade it never share a process. The grader (:mod:`.execute`)
runs each *answer* cell in the student's sandboxed kernel and each *locked* cell (test cells and
the locked cells that load data) here, in an IPython kernel that no student code ever runs in.
A test cell names the student's functions and variables as usual (``convolve2d(image, kernel)``,
``check_at_least(test_accuracy, 0.9, ...)``); this kernel's namespace resolves those names through
the channel to the student's kernel (:mod:`.agent`), where the student's kernel runs ``serve``
while the cell runs:

- reading a variable brings back its value as plain data (:mod:`.wire`), a fresh copy per cell;
- a function comes back as :class:`StudentFunction`: calling it sends the arguments there and
  brings the result back (and the new contents of array or random-generator arguments it changed);
- only the names that the assignment's answer cells define are looked up there, never a name
  starting with ``_`` (the test's own) nor a builtin; everything else is this kernel's own.

What decides a grade (the test code, hidden inputs' expected values, held-out labels) stays here.
After a locked data cell runs here, the names it bound are sent to the student's kernel (arrays,
numbers, Keras models, random generators as data; modules and library functions as imports; a
function the cell defines as its source; anything else as a placeholder that says it is not
available while grading).

The worker starts one checker per submission, forked from the preloaded grading process (so it
costs no second import of TensorFlow), and resets it before each notebook run (:func:`main`).
"""
from __future__ import annotations

import ast
import builtins
import json
import os
import re
import socket
import sys
import time
import types

import numpy as np

from . import wire
from .kernel import code_hash as cell_hash

CHECKER_NAME = "__dlcourse_checker__"
CONNECT_TIMEOUT = 15.0      # seconds the student's kernel has to connect when a test needs it
NO_ANSWER = "the notebook's kernel did not answer the grader (its code stopped it from serving the tests)"


class StudentError(Exception):
    """An exception raised by the student's code, re-raised here under the student's exception's
    name (``ValueError``, ...) with its message."""


class UncheckableValue(TypeError):
    """The student's code handed over something that is not plain data."""


class StudentUnavailable(RuntimeError):
    """The student's kernel did not answer (it is busy, stuck, or gone)."""


_ERROR_TYPES: dict[str, type] = {}


def _student_error(info: dict) -> StudentError:
    name = info.get("type") if isinstance(info, dict) else None
    name = name if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,79}", name) else "Error"
    cls = _ERROR_TYPES.get(name)
    if cls is None:
        # A built-in exception's name gives a class that is also that built-in exception, so that a
        # test's ``except ValueError:`` or ``except NameError:`` catches the student's error as it
        # would in one process (nbgrader's documentation course tests ``squares(0)`` that way).
        # Only subclasses of Exception: a student's error is never a SystemExit or KeyboardInterrupt;
        # nor one that steers iteration: a StopIteration out of a student's function would end a
        # test's ``all(map(check, cases))`` early, with True.
        builtin = getattr(builtins, name, None)
        bases: tuple = (StudentError,)
        if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin is not Exception \
                and not issubclass(builtin, (StopIteration, StopAsyncIteration)):
            bases = (StudentError, builtin)
        try:
            cls = type(name, bases, {"__module__": "student", "__init__": Exception.__init__,
                                     "__str__": Exception.__str__})
        except TypeError:       # a layout that cannot be combined
            cls = type(name, (StudentError,), {"__module__": "student"})
        _ERROR_TYPES[name] = cls
    message = str(info.get("message", ""))[:2000] if isinstance(info, dict) else ""
    where = str(info.get("where", ""))[:300] if isinstance(info, dict) else ""
    return cls(message + (f" ({where})" if where else ""))


class StudentFunction:
    """A student's function, called through the channel."""

    __slots__ = ("_channel", "_name", "_ref")

    def __init__(self, channel: "Channel", name: str, ref: int | None = None):
        # ``ref`` names the function object in the student's kernel (the name may be rebound or
        # deleted by a test, as ``orig = squares; del squares; ...; squares = orig`` does)
        self._channel, self._name, self._ref = channel, name, ref

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 - IPython hides this frame in tracebacks
        return self._channel.call(self._name, args, kwargs, ref=self._ref)

    def call_reporting_changes(self, *args, **kwargs):
        """(result, the arguments the call changed in place): see ``dlcourse.checks.check_unchanged``."""
        __tracebackhide__ = True  # noqa: F841
        return self._channel.call(self._name, args, kwargs, report_changes=True, ref=self._ref)

    def __repr__(self):
        return f"<the student's function {self._name}>"


class Channel:
    """The checker's end of the connection to the student's kernel."""

    def __init__(self, path: str, timeout: float):
        self.path, self.timeout = path, timeout
        if os.path.exists(path) or os.path.islink(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o666)            # the student's kernel runs as another user
        self.listener.listen(4)
        self.conn: socket.socket | None = None
        self.broken: str | None = None
        self.active = False
        self.cache: dict[str, object] = {}
        self.calls = 0

    # -- cells ---------------------------------------------------------------------------------
    def begin_cell(self) -> None:
        self.close_connection()
        self.cache, self.broken, self.active = {}, None, True

    def end_cell(self) -> None:
        self.active = False
        self.cache = {}
        self.close_connection(say_done=True)

    def close_connection(self, say_done: bool = False) -> None:
        if self.conn is not None:
            if say_done and self.broken is None:
                try:
                    self.conn.settimeout(2)
                    wire.send(self.conn, {"op": "done"})
                except OSError:
                    pass
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def _connection(self) -> socket.socket:
        if self.broken:
            raise StudentUnavailable(self.broken)
        if self.conn is not None:
            return self.conn
        # The student's kernel was asked to serve before this cell started: it connects at once
        # unless its own code stopped it (or it is stuck).
        deadline = time.monotonic() + min(self.timeout, CONNECT_TIMEOUT)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.broken = NO_ANSWER
                raise StudentUnavailable(self.broken)
            self.listener.settimeout(left)
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(min(left, 2))    # the agent says hello at once; a silent connection is not it
            try:
                header, _ = wire.recv(conn)
            except (EOFError, OSError, wire.BadMessage):
                conn.close()
                continue
            if header.get("op") != "hello":
                conn.close()
                continue
            self.conn = conn
            return conn

    def request(self, header: dict, buffers: list | None = None) -> tuple[dict, list]:
        __tracebackhide__ = True  # noqa: F841
        conn = self._connection()
        ok = False
        try:
            conn.settimeout(self.timeout)
            wire.send(conn, header, buffers or [])
            reply, out = wire.recv(conn)
            ok = True
            return reply, out
        except socket.timeout:
            self.broken = f"the notebook's code did not return within {self.timeout:g} s"
            raise StudentUnavailable(self.broken) from None
        except (EOFError, OSError) as exc:
            self.broken = f"the notebook's kernel stopped answering ({type(exc).__name__})"
            raise StudentUnavailable(self.broken) from None
        except wire.BadMessage as exc:
            self.broken = f"the notebook's kernel sent something that is not a valid answer ({exc})"
            raise UncheckableValue(self.broken) from None
        finally:
            if not ok:
                self.close_connection()

    # -- what test cells use -------------------------------------------------------------------
    def has(self, name: str) -> bool:
        if name in self.cache:
            return True
        reply, _ = self.request({"op": "has", "name": name})
        return reply.get("has") is True

    def get(self, name: str):
        """The student's value (a copy) or function (a proxy); KeyError if it is not defined."""
        __tracebackhide__ = True  # noqa: F841
        if name in self.cache:
            return self.cache[name]
        reply, buffers = self.request({"op": "get", "name": name})
        if reply.get("missing"):
            raise KeyError(name)
        if reply.get("callable"):
            ref = reply.get("ref")
            value = StudentFunction(self, name, ref if type(ref) is int else None)
        elif "unsupported" in reply:
            raise UncheckableValue(f"{name} is {str(reply['unsupported'])[:200]}, which the grader cannot check: "
                                   "use numbers, strings, lists, tuples, dicts, NumPy arrays or Keras models")
        elif "value" in reply:
            value = self._decode(reply["value"], buffers, name)
        else:
            raise UncheckableValue(f"the notebook's kernel gave no value for {name}")
        self.cache[name] = value
        return value

    def delete(self, name: str) -> None:
        """``del name`` in the student's kernel (a test checks that a function uses another);
        KeyError if it is not defined there."""
        self.cache.pop(name, None)
        reply, _ = self.request({"op": "delete", "name": name})
        if reply.get("missing"):
            raise KeyError(name)

    def bind(self, name: str, value) -> bool:
        """``name = value`` in the student's kernel, for a test that rebinds one of the student's
        names: one of the student's own functions (by reference) or plain data. False if the value
        cannot be given to the student's kernel (an object of the test's own)."""
        self.cache.pop(name, None)
        out: list = []
        if isinstance(value, StudentFunction) and value._channel is self and value._ref is not None:
            header = {"op": "bind", "name": name, "ref": value._ref}
        else:
            try:
                header = {"op": "bind", "name": name, "value": wire.encode(value, out)}
            except wire.NotPlainData:
                return False
        reply, _ = self.request(header, out)
        return bool(reply.get("ok"))

    def call(self, name: str, args: tuple, kwargs: dict, report_changes: bool = False, ref: int | None = None):
        """Call the student's function on copies of the arguments. What the call did to a random
        generator argument (its state) comes back into the test's generator; what it did to an
        array argument never does (a student's function could otherwise rewrite the test's own
        inputs, and with them an expected value computed from them after the call): with
        ``report_changes`` the positions of the changed arguments are returned with the result."""
        __tracebackhide__ = True  # noqa: F841
        out: list = []
        try:
            header = {"op": "call", "name": name, "args": wire.encode(list(args), out),
                      "kwargs": wire.encode(dict(kwargs), out)}
            if ref is not None:
                header["ref"] = ref
        except wire.NotPlainData as exc:
            raise UncheckableValue(f"the test cannot pass {exc} to {name}") from None
        self.calls += 1
        reply, buffers = self.request(header, out)
        changed = reply.get("changed") or {}
        changed_keys: list = []
        if isinstance(changed, dict):
            for key, tree in changed.items():
                if isinstance(key, str) and key.isdigit() and int(key) < len(args):
                    original, position = args[int(key)], int(key)
                elif isinstance(key, str) and key in kwargs:
                    original, position = kwargs[key], key
                else:
                    continue
                if type(original) is np.ndarray:
                    changed_keys.append(position)
                elif type(original) is np.random.Generator:
                    try:
                        wire.sync_back(original, wire.decode(tree, buffers))
                    except (wire.BadMessage, wire.NotPlainData):
                        continue
        if "raised" in reply:
            raise _student_error(reply["raised"])
        if reply.get("missing"):
            raise NameError(f"name {name!r} is not defined")
        if "unsupported" in reply:
            raise UncheckableValue(f"{name} returned {str(reply['unsupported'])[:200]}, which the grader cannot "
                                   "check: return numbers, strings, lists, tuples, dicts, NumPy arrays or Keras models")
        if "value" not in reply:
            raise UncheckableValue(f"the notebook's kernel gave no result for {name}")
        result = self._decode(reply["value"], buffers, f"the result of {name}")
        return (result, changed_keys) if report_changes else result

    def _decode(self, tree, buffers, what: str):
        try:
            return wire.decode(tree, buffers)
        except (wire.BadMessage, wire.NotPlainData) as exc:
            raise UncheckableValue(f"{what} could not be read: {exc}") from None

    def put(self, name: str, value, cell_source: str) -> None:
        """Bind ``name`` in the student's kernel to what a locked cell computed here."""
        out: list = []
        imported = _imports(cell_source).get(name)
        if imported is not None and imported[1] is None:
            header = {"op": "put", "kind": "module", "name": name, "module": imported[0]}
        elif imported is not None:
            header = {"op": "put", "kind": "import", "name": name, "module": imported[0], "qualname": imported[1],
                      "what": wire.describe(value)}
        elif isinstance(value, types.ModuleType):
            header = {"op": "put", "kind": "module", "name": name, "module": value.__name__}
        elif isinstance(value, (types.FunctionType, type, types.BuiltinFunctionType)) or callable(value) \
                and not wire._is_keras_model(value) and hasattr(value, "__qualname__"):
            module = getattr(value, "__module__", None)
            source = _definition(cell_source, name) if module in (None, "__main__") else None
            if source is not None:
                header = {"op": "put", "kind": "code", "name": name, "source": source}
            elif module not in (None, "__main__"):
                header = {"op": "put", "kind": "import", "name": name, "module": module,
                          "qualname": value.__qualname__, "what": "function"}
            else:
                header = {"op": "put", "kind": "placeholder", "name": name, "what": wire.describe(value)}
        else:
            try:
                header = {"op": "put", "kind": "value", "name": name, "value": wire.encode(value, out)}
            except wire.NotPlainData:
                out = []
                header = {"op": "put", "kind": "placeholder", "name": name, "what": wire.describe(value)}
        try:
            self.request(header, out)
        except wire.NotPlainData:       # too big to send
            self.request({"op": "put", "kind": "placeholder", "name": name, "what": wire.describe(value)})


def _imports(source: str) -> dict[str, tuple[str, str | None]]:
    """What a cell's import statements bind: name -> (module, attribute or None for the module)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    out[top] = (top, None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = (node.module, alias.name)
    return out


def _definition(source: str, name: str) -> str | None:
    """The source of the top-level ``def name`` or ``class name`` in a cell's code."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return ast.get_source_segment(source, node, padded=True)
    return None


def bound_names(code: str) -> set[str]:
    """The names a cell's code binds at its top level (assignments, ``def``, ``class``, imports,
    ``for`` and ``with`` targets): what a test may look up in the student's kernel."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()

    def targets(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return {n for n in names if not n.startswith("_")}


_NOTHING = object()
_PRIVATE_IPYTHON = re.compile(r"_(i\d*|ii*|iii|oh|dh|\d+|_*)$")


class StudentNamespace(dict):
    """The checker's namespace: a name it does not have and the assignment's answer cells define
    is looked up in the student's kernel (for this cell only)."""

    checker: "Checker | None" = None

    def _student_name(self, key) -> bool:
        checker = self.checker
        return (checker is not None and checker.channel is not None and checker.channel.active
                and isinstance(key, str) and key in checker.interface and not key.startswith("_")
                and not hasattr(builtins, key))

    def __missing__(self, key):
        __tracebackhide__ = True  # noqa: F841
        if self._student_name(key):
            return self.checker.channel.get(key)
        raise KeyError(key)

    def _writes_through(self, key) -> bool:
        """A test cell (not a locked data cell) that binds or deletes one of the student's names
        changes the student's kernel, as it would in one process."""
        return self._student_name(key) and self.checker.tests_running

    def __setitem__(self, key, value):
        if self._writes_through(key):
            if self.checker.channel.bind(key, value):
                dict.pop(self, key, None)
                return
            # an object of the test's own (a mock, say): it cannot be given to the student's code
            raise UncheckableValue(
                f"this test binds {key}, one of the notebook's names, to {wire.describe(value)}: the student's "
                f"code runs in another process while grading and can be given only plain data or its own "
                f"functions (dlcourse grade; see the instructors' page)")
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        __tracebackhide__ = True  # noqa: F841
        if self._writes_through(key):
            had_own = dict.pop(self, key, _NOTHING) is not _NOTHING
            try:
                self.checker.channel.delete(key)
            except KeyError:
                if not had_own:
                    raise
            return
        dict.__delitem__(self, key)

    def __contains__(self, key):
        if dict.__contains__(self, key):
            return True
        if self._student_name(key):
            try:
                return self.checker.channel.has(key)
            except (StudentUnavailable, UncheckableValue):
                return False
        return False


class Checker:
    """State of the checker kernel for one notebook run (see :meth:`reset`)."""

    def __init__(self, shell):
        self.shell = shell
        self.channel: Channel | None = None
        self.interface: frozenset[str] = frozenset()
        self.given: frozenset[str] = frozenset()
        self._before: dict[str, int] | None = None
        self._cell = ""
        self._used = False
        self.tests_running = False      # a cell that is not a locked data cell is running
        shell.events.register("pre_run_cell", self._pre)
        shell.events.register("post_run_cell", self._post)

    def reset(self, config: dict) -> None:
        """A fresh namespace and settings for the next notebook: ``interface`` (names the answer
        cells define), ``given`` (hashes of the locked data cells), ``socket``, ``timeout``."""
        import sys as _sys
        if self._used:
            # Only a checker that ran a notebook needs this (each full collection of garbage
            # costs most of a CPU-second in a process that has imported TensorFlow).
            keras = _sys.modules.get("keras")
            self.shell.reset(new_session=False, aggressive=False)
            if keras is not None:
                keras.backend.clear_session()
        self._used = True
        cwd = config.get("cwd")
        if isinstance(cwd, str) and os.path.isdir(cwd):
            # The test cells open the assignment's files from the notebook's folder, as in
            # nbgrader; the student's files may be there too, so that folder (and the
            # current-folder entry IPython puts on the path) is never where an import looks: a
            # student's ``numpy.py`` handed in beside the notebook is a file here, not code.
            os.chdir(cwd)
            here = os.path.realpath(cwd)
            sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here]
            import importlib
            importlib.invalidate_caches()
        self.interface = frozenset(config.get("interface", ()))
        self.given = frozenset(config.get("given", ()))
        if self.channel is None or self.channel.path != config["socket"]:
            self.channel = Channel(config["socket"], float(config.get("timeout", 60)))
        self.channel.timeout = float(config.get("timeout", 60))
        self.shell.user_ns[CHECKER_NAME] = self
        self.shell.execution_count = 1

    def _pre(self, info) -> None:
        self._cell = info.raw_cell or ""
        if self.channel is None:
            return
        self.channel.begin_cell()
        if cell_hash(self._cell) in self.given:
            self._before = {k: id(v) for k, v in dict.items(self.shell.user_ns)}
            self.tests_running = False
        else:
            self._before = None
            self.tests_running = True

    def _post(self, result) -> None:
        if self.channel is None:
            return
        try:
            if self._before is not None and result.success:
                ns = self.shell.user_ns
                for key, value in list(dict.items(ns)):
                    if key.startswith("_") or key in ("In", "Out", "exit", "quit", "get_ipython") \
                            or self._before.get(key) == id(value):
                        continue
                    try:
                        self.channel.put(key, value, self._cell)
                    except (StudentUnavailable, UncheckableValue):
                        break
        finally:
            self._before = None
            self.tests_running = False
            self.channel.end_cell()


def main(connection_file: str, privileges: dict | None = None) -> None:
    """Run the checker kernel (in a process of its own): ``connection_file`` as written by the
    worker; its stdout and stderr are the worker's bounded log (``execute.BoundedLog``). Never
    returns."""
    from ipykernel.kernelapp import IPKernelApp

    from .kernel import apply_limits, drop_privileges

    privileges = privileges or {}
    apply_limits(privileges.get("limits", {}))
    drop_privileges(privileges.get("uid"), privileges.get("uid"))
    ns = StudentNamespace()
    app = IPKernelApp.instance(user_ns=ns, connection_file=connection_file)
    app.initialize(["--HistoryManager.hist_file=:memory:", "--IPKernelApp.parent_handle=0"])
    checker = Checker(app.shell)
    StudentNamespace.checker = checker
    app.shell.user_ns[CHECKER_NAME] = checker
    app.start()


# Imported by the grading process before it forks workers, so that a checker forked from a worker
# starts without importing these again (see worker.start_checker).
PRELOAD = ("numpy", "keras", "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
           "IPython.core.magics", "dlcourse", "dlcourse.checks", "dlcourse.data", "dlcourse.grading.wire",
           "scipy.special", "sklearn.decomposition", "sklearn.datasets")


def preload() -> None:
    """Import what the checker needs, then freeze the garbage collector's view of it: the
    objects imported so far are never scanned again by a collection (IPython and Keras collect
    garbage when a kernel starts or resets), in the process that preloads or any fork of it."""
    import gc
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a checker cell that needs it will say why
            pass
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    preload()
    main(args["connection_file"], args.get("privileges"))
