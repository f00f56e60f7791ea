"""The student's side of the grading channel: runs in the student's sandboxed kernel.

While the checker (:mod:`~dlcourse.grading.checker`) runs a test cell, the grader has the student's
kernel run ``serve(path)``: it connects to the checker's socket and answers its requests, one at a
time, in the kernel's main thread, until the checker says the cell is over:

- ``get NAME``: the value of the student's variable as plain data (:mod:`~dlcourse.grading.wire`),
  or "callable" for a function;
- ``has NAME``: whether the student defined it;
- ``delete NAME``, ``bind NAME (REF | VALUE)``: a test cell's ``del name`` or ``name = ...`` of one
  of the student's names (to one of the student's functions it looked up, or to plain data);
- ``call NAME ARGS KWARGS``: call the student's function; the result, and every array or random
  generator argument that the call changed, go back;
- ``put ...``: bind a name the grader's locked cells computed (data, a module, an importable
  function, the source of a function defined in the locked cell, or a placeholder).

Nothing here is trusted by the grader: the student's code can replace or imitate all of it, which
only changes the answers the checker gets, and those the checker treats as the student's answers.
"""
from __future__ import annotations

import importlib
import socket
import time
import traceback

from . import wire


class NotAvailableWhileGrading:
    """What a name bound by a locked cell stands for in the student's kernel when its value cannot
    be sent there (it is not plain data): using it says so."""

    def __init__(self, name: str, kind: str):
        object.__setattr__(self, "_message", (
            f"{name} (a {kind}) is computed by the grader's locked cells and is not available to your "
            "code while the notebook is graded; use the plain values (arrays, numbers) the cells provide"))

    def __getattr__(self, attr):
        raise NameError(object.__getattribute__(self, "_message"))

    def __call__(self, *args, **kwargs):
        raise NameError(object.__getattribute__(self, "_message"))

    def __repr__(self):
        return f"<not available while grading: {object.__getattribute__(self, '_message')[:60]}...>"


def _namespace():
    from IPython import get_ipython
    shell = get_ipython()
    return shell.user_ns if shell is not None else globals()


def serve(path: str, *, connect_timeout: float = 30.0) -> None:
    """Answer the checker's requests until it ends the cell (or closes the connection)."""
    deadline = time.monotonic() + connect_timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            break
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
    try:
        wire.send(sock, {"op": "hello"})
        ns = _namespace()
        while True:
            try:
                header, buffers = wire.recv(sock)
            except EOFError:
                return
            if header.get("op") == "done":
                return
            reply, out = _handle(ns, header, buffers)
            try:
                wire.send(sock, reply, out)
            except wire.NotPlainData as exc:
                wire.send(sock, {"unsupported": str(exc)})
    finally:
        sock.close()


def _handle(ns: dict, header: dict, buffers: list) -> tuple[dict, list]:
    op, name = header.get("op"), header.get("name")
    out: list = []
    try:
        if op == "has":
            return {"has": name in ns}, out
        if op == "get":
            if name not in ns:
                return {"missing": True}, out
            value = ns[name]
            if callable(value) and not wire._is_keras_model(value):
                return {"callable": True, "kind": wire.describe(value), "ref": _remember(value)}, out
            return {"value": wire.encode(value, out)}, out
        if op == "delete":
            if name not in ns:
                return {"missing": True}, out
            del ns[name]
            return {"ok": True}, out
        if op == "bind":
            ref = header.get("ref")
            if ref is not None:
                if ref not in _REFS:
                    return {"missing": True}, out
                ns[name] = _REFS[ref]
            else:
                ns[name] = wire.decode(header["value"], buffers)
            return {"ok": True}, out
        if op == "call":
            ref = header.get("ref")
            function = _REFS.get(ref) if ref is not None else ns.get(name)
            if function is None:
                return {"missing": True}, out
            args = wire.decode(header["args"], buffers)
            kwargs = wire.decode(header["kwargs"], buffers)
            before = {i: wire.fingerprint(a) for i, a in enumerate(args) if wire.mutable(a)}
            before.update({k: wire.fingerprint(v) for k, v in kwargs.items() if wire.mutable(v)})
            try:
                result = function(*args, **kwargs)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - the student's error goes back as a message
                return {"raised": _describe_exception(exc)}, out
            changed = {}
            for key, old in before.items():
                value = args[key] if isinstance(key, int) else kwargs[key]
                if wire.fingerprint(value) != old:
                    changed[str(key)] = wire.encode(value, out)
            try:
                encoded = wire.encode(result, out)
            except wire.NotPlainData as exc:
                return {"unsupported": str(exc), "changed": changed}, out
            return {"value": encoded, "changed": changed}, out
        if op == "put":
            kind = header.get("kind")
            if kind == "value":
                ns[name] = wire.decode(header["value"], buffers)
            elif kind == "module":
                try:
                    ns[name] = importlib.import_module(header["module"])
                except ImportError:
                    ns[name] = NotAvailableWhileGrading(name, "module")
            elif kind == "import":
                try:
                    ns[name] = _import(header["module"], header["qualname"])
                except (ImportError, AttributeError):
                    ns[name] = NotAvailableWhileGrading(name, header.get("what", "function"))
            elif kind == "code":
                exec(compile(header["source"], "<locked cell>", "exec"), ns)  # noqa: S102 - the instructor's code
            else:
                ns[name] = NotAvailableWhileGrading(name, str(header.get("what", "value")))
            return {"ok": True}, out
        return {"error": f"unknown request {str(op)[:40]!r}"}, out
    except KeyboardInterrupt:
        raise
    except wire.NotPlainData as exc:
        return {"unsupported": str(exc)}, []
    except BaseException as exc:  # noqa: BLE001
        return {"raised": _describe_exception(exc)}, []


# The functions a test has looked up, by number: a test may keep one (``orig = squares``), delete
# or rebind the name, and call or restore the function itself later. Kept for the kernel's life.
_REFS: dict[int, object] = {}


def _remember(value) -> int:
    for ref, known in _REFS.items():
        if known is value:
            return ref
    _REFS[len(_REFS) + 1] = value
    return len(_REFS)


def _import(module: str, qualname: str):
    """``from module import qualname`` (a submodule, or an attribute path)."""
    obj = importlib.import_module(module)
    for i, part in enumerate(qualname.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if i or not isinstance(obj, type(importlib)):
                raise
            obj = importlib.import_module(f"{module}.{part}")
    return obj


def _describe_exception(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if frame.filename.startswith("<ipython-input") or "ipykernel_" in frame.filename:
            where = f"in {frame.name}, line {frame.lineno}: {(frame.line or '').strip()[:120]}"
            break
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "(the error's message could not be shown)"
    return {"type": type(exc).__name__[:80], "message": message[:2000], "where": where}


def run_locked(source: str) -> None:
    """Run a locked cell's code in the student's kernel, statement by statement, for its side
    effects (seeding the random generators, imports, settings); a statement that fails (it needs
    a reference implementation that is off limits while grading, say) is skipped. The names the
    cell binds are then sent by the checker, which ran the same cell (see ``checker.Checker``)."""
    import ast

    ns = _namespace()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    for node in tree.body:
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), "<locked cell>", "exec"), ns)  # noqa: S102
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - skipped: the checker's run is the one that counts
            pass
