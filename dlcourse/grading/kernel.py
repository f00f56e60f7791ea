"""The kernel that runs a student's notebook, inside the sandbox.

``python -m dlcourse.grading.kernel -f CONNECTION_FILE`` is what the grader starts inside
bubblewrap instead of the usual IPython kernel. Before any student code runs it

- sets the resource limits (CPU seconds, address space, processes, file size, open files);
- drops root privileges to the sandbox's own user id when it was started as root;
- starts an IPython kernel whose ``do_execute`` goes through a *guard*.

The guard keeps the test cells honest. Student code and test code share one Python process, so a
student's cell can rebind ``check_array``, replace ``numpy.isclose``, add an IPython input
transformer that rewrites the next cell, or set a custom exception handler that swallows the
test's ``AssertionError``. The guard takes a snapshot of that machinery before the first cell and,
before every cell, compares:

- the attributes of the modules and classes of numpy, dlcourse, keras, IPython, ipykernel,
  jupyter_client and builtins (changed or deleted entries; additions are imports);
- IPython's input transformers, AST transformers, event callbacks, custom exception handlers,
  traceback printers and method overrides on the shell, the kernel and its session;
- ``sys`` hooks (trace, profile, display, except, meta path, path hooks) and the protected
  modules in ``sys.modules``.

Whatever changed is reported ("flags") and put back before every trusted (locked) cell; the
names that locked setup cells bound (``check_array``, ``X_test``, ...) are also put back, silently.
Each report line carries a secret nonce, so the grader notices if a student's code bypassed the
guard (no confirmation for a trusted cell). The grader then grades the offending cell as
unanswered and runs the notebook again (:mod:`dlcourse.grading.worker`).

This is defence in depth, not a proof: code in the same process can in principle reach anything.
The sandbox, not the guard, is what protects the machine and the hidden tests on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import types

PROTECTED_PREFIXES = ("numpy", "dlcourse", "keras", "IPython", "ipykernel", "jupyter_client", "builtins")
# Names in builtins that IPython itself changes while it runs.
_BUILTINS_VOLATILE = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "__IPYTHON__"}
_SYS_HOOKS = ("displayhook", "excepthook", "breakpointhook", "unraisablehook")


def code_hash(code: str) -> str:
    """How the grader and the guard name a cell's code: sha256 of the stripped source."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


def setup_imports(code: str) -> list[str]:
    """The modules a locked setup cell imports at its top level (``import keras``,
    ``from dlcourse import data`` gives ``dlcourse`` and ``dlcourse.data``), in order."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return list(dict.fromkeys(names))


def preload(names: list[str]) -> None:
    """Import what the locked setup cells will import, before the first cell.

    Importing TensorFlow takes seconds: done here, it is not counted against the setup cell's
    time limit, and whatever it prints goes to the kernel's log instead of the notebook. Names
    that are not modules (``from dlcourse.checks import check_array``) are skipped."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the setup cell reports its own errors
            pass


# --------------------------------------------------------------------------------------------
# limits and privileges
# --------------------------------------------------------------------------------------------
def apply_limits(limits: dict) -> None:
    def setl(which, value):
        if value is None:
            return
        value = int(value)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(which)
            value = min(value, hard) if hard != resource.RLIM_INFINITY else value
            resource.setrlimit(which, (value, value))

    setl(resource.RLIMIT_CORE, 0)
    setl(resource.RLIMIT_CPU, limits.get("cpu_total"))
    setl(resource.RLIMIT_AS, limits.get("address_space"))
    setl(resource.RLIMIT_FSIZE, limits.get("file_size"))
    setl(resource.RLIMIT_NOFILE, limits.get("open_files"))
    nproc = limits.get("processes")
    if nproc:
        if limits.get("uid") is None and os.getuid() != 0:
            # Counted per user: allow for the instructor's own processes.
            nproc += _count_own_processes()
        setl(resource.RLIMIT_NPROC, nproc)


def _count_own_processes() -> int:
    uid, n = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n


def drop_privileges(uid: int | None, gid: int | None) -> None:
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)


# --------------------------------------------------------------------------------------------
# the guard
# --------------------------------------------------------------------------------------------
def _is_protected(name: str) -> bool:
    return name.split(".")[0] in PROTECTED_PREFIXES and not name.startswith("dlcourse.grading")


class Guard:
    """Snapshot, compare and restore the machinery test cells rely on."""

    def __init__(self, shell, kernel, trusted: dict, report):
        self.shell, self.kernel = shell, kernel
        self.trusted = trusted            # code hash -> "given" (setup/data cell) or "test"
        self.report = report
        self.modules: dict[str, tuple[types.ModuleType, dict]] = {}
        self.classes: dict[type, dict] = {}
        self.functions: dict[int, tuple] = {}   # id -> (function, code, defaults, kwdefaults)
        self.given: dict[str, object] = {}   # names bound by trusted setup cells
        self.counter = 0
        self._snapshot_modules()
        self._snapshot_machinery()

    # -- snapshots ---------------------------------------------------------------------------
    def _snapshot_modules(self) -> None:
        for name, module in list(sys.modules.items()):
            if name in self.modules or not isinstance(module, types.ModuleType) or not _is_protected(name):
                continue
            try:
                entries = dict(vars(module))
            except TypeError:
                continue
            self.modules[name] = (module, entries)
            for value in entries.values():
                self._remember_function(value)
                if isinstance(value, type) and getattr(value, "__module__", None) == name and value not in self.classes:
                    try:
                        self.classes[value] = dict(vars(value))
                    except TypeError:
                        continue
                    for member in self.classes[value].values():
                        self._remember_function(getattr(member, "__func__", member))

    def _remember_function(self, value) -> None:
        if isinstance(value, types.FunctionType) and id(value) not in self.functions:
            self.functions[id(value)] = (value, value.__code__, value.__defaults__, value.__kwdefaults__)

    def _machinery(self) -> dict:
        shell, kernel = self.shell, self.kernel
        itm = shell.input_transformer_manager
        state = {
            "IPython input_transformers_cleanup": list(shell.input_transformers_cleanup),
            "IPython input_transformers_post": list(shell.input_transformers_post),
            "IPython ast_transformers": list(shell.ast_transformers),
            "IPython input transformer manager": itm,
            "IPython cleanup transforms": list(itm.cleanup_transforms),
            "IPython line transforms": list(itm.line_transforms),
            "IPython token transformers": list(itm.token_transformers),
            "IPython custom exception handler": (tuple(shell.custom_exceptions), shell.CustomTB),
            "IPython traceback printer": (shell.InteractiveTB, shell.SyntaxTB),
            "IPython display hook": (shell.displayhook, shell.display_pub),
            "IPython compiler": shell.compile,
            "IPython user namespace": shell.user_ns,
            "kernel message handlers": dict(kernel.shell_handlers),
            "kernel session": kernel.session,
            "sys.meta_path": list(sys.meta_path),
            "sys.path_hooks": list(sys.path_hooks),
            "sys trace function": sys.gettrace(),
            "sys profile function": sys.getprofile(),
        }
        for event, callbacks in shell.events.callbacks.items():
            state[f"IPython {event} event callbacks"] = list(callbacks)
        for hook in _SYS_HOOKS:
            state[f"sys.{hook}"] = getattr(sys, hook)
        for label, obj in (("shell", shell), ("kernel", kernel), ("session", kernel.session),
                           ("display hook", shell.displayhook), ("display publisher", shell.display_pub),
                           ("traceback printer", shell.InteractiveTB)):
            overrides = {k: v for k, v in vars(obj).items() if callable(v) and hasattr(type(obj), k)
                         and not isinstance(v, type)}
            state[f"{label} method overrides"] = overrides
        return state

    def _snapshot_machinery(self) -> None:
        self.machinery = self._machinery()

    # -- comparing ---------------------------------------------------------------------------
    def diff(self) -> list[str]:
        """What differs from the snapshot, in words."""
        flags = []
        for name, (module, entries) in self.modules.items():
            try:
                current = vars(module)
            except TypeError:
                continue
            for key, value in entries.items():
                if name == "builtins" and key in _BUILTINS_VOLATILE:
                    continue
                now = current.get(key, _MISSING)
                if now is not value:
                    if isinstance(value, types.ModuleType) and isinstance(now, types.ModuleType):
                        continue
                    if key in ("__loader__", "__spec__", "__cached__", "__warningregistry__"):
                        continue
                    flags.append(f"{'deleted' if now is _MISSING else 'replaced'} {name}.{key}")
        for cls, entries in self.classes.items():
            current = vars(cls)
            for key, value in entries.items():
                if key in ("__dict__", "__weakref__", "__doc__", "_abc_impl"):
                    continue
                now = current.get(key, _MISSING)
                if now is not value:
                    flags.append(f"{'deleted' if now is _MISSING else 'replaced'} {cls.__module__}.{cls.__qualname__}.{key}")
            for key in current.keys() - entries.keys():
                if not key.startswith("_abc") and callable(current[key]) and any(
                        key in vars(base) for base in cls.__mro__[1:]):
                    flags.append(f"overrode {cls.__module__}.{cls.__qualname__}.{key}")
        for func, code, defaults, kwdefaults in self.functions.values():
            if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
                flags.append(f"changed the code of {func.__module__}.{func.__qualname__}")
        for name, (module, _) in self.modules.items():
            current = sys.modules.get(name)
            if current is not None and current is not module:
                flags.append(f"replaced sys.modules[{name!r}]")
        now = self._machinery()
        for key, before in self.machinery.items():
            after = now.get(key)
            if not _same(before, after):
                flags.append(f"changed {key}")
        return flags

    # -- restoring ---------------------------------------------------------------------------
    def restore(self) -> None:
        for name, (module, entries) in self.modules.items():
            current = vars(module)
            for key, value in entries.items():
                if name == "builtins" and key in _BUILTINS_VOLATILE:
                    continue
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        for cls, entries in self.classes.items():
            current = vars(cls)
            for key, value in entries.items():
                if key in ("__dict__", "__weakref__", "__doc__", "_abc_impl"):
                    continue
                if current.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (TypeError, AttributeError):
                        pass
            for key in list(current.keys() - entries.keys()):
                if callable(current[key]) and any(key in vars(base) for base in cls.__mro__[1:]):
                    try:
                        delattr(cls, key)
                    except (TypeError, AttributeError):
                        pass
        for func, code, defaults, kwdefaults in self.functions.values():
            try:
                func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults
            except (TypeError, ValueError, AttributeError):
                pass
        m, shell, kernel = self.machinery, self.shell, self.kernel
        shell.input_transformers_cleanup[:] = m["IPython input_transformers_cleanup"]
        shell.input_transformers_post[:] = m["IPython input_transformers_post"]
        shell.ast_transformers[:] = m["IPython ast_transformers"]
        itm = shell.input_transformer_manager = m["IPython input transformer manager"]
        itm.cleanup_transforms[:] = m["IPython cleanup transforms"]
        itm.line_transforms[:] = m["IPython line transforms"]
        itm.token_transformers[:] = m["IPython token transformers"]
        shell.custom_exceptions, shell.CustomTB = m["IPython custom exception handler"]
        shell.InteractiveTB, shell.SyntaxTB = m["IPython traceback printer"]
        shell.displayhook, shell.display_pub = m["IPython display hook"]
        shell.compile = m["IPython compiler"]
        kernel.shell_handlers.clear()
        kernel.shell_handlers.update(m["kernel message handlers"])
        kernel.session = m["kernel session"]
        for name, (module, _) in self.modules.items():
            if sys.modules.get(name) is not None and sys.modules[name] is not module:
                sys.modules[name] = module
        sys.meta_path[:] = m["sys.meta_path"]
        sys.path_hooks[:] = m["sys.path_hooks"]
        sys.settrace(m["sys trace function"])
        sys.setprofile(m["sys profile function"])
        for event in list(shell.events.callbacks):
            shell.events.callbacks[event][:] = m.get(f"IPython {event} event callbacks", [])
        for hook in _SYS_HOOKS:
            setattr(sys, hook, m[f"sys.{hook}"])
        for label, obj in (("shell", shell), ("kernel", kernel), ("session", kernel.session),
                           ("display hook", shell.displayhook), ("display publisher", shell.display_pub),
                           ("traceback printer", shell.InteractiveTB)):
            allowed = m[f"{label} method overrides"]
            for k, v in list(vars(obj).items()):
                if callable(v) and hasattr(type(obj), k) and not isinstance(v, type) and allowed.get(k, _MISSING) is not v:
                    if k in allowed:
                        vars(obj)[k] = allowed[k]
                    else:
                        del vars(obj)[k]

    def restore_given(self) -> list[str]:
        """Put back the names the locked setup cells bound; returns the check functions that
        had been rebound (a note for the instructor, not a penalty)."""
        ns, notes = self.shell.user_ns, []
        for name, value in self.given.items():
            if ns.get(name, _MISSING) is not value:
                if callable(value) and (getattr(value, "__module__", "") or "").split(".")[0] in PROTECTED_PREFIXES \
                        and not isinstance(value, type):
                    notes.append(f"rebound {name}")
                ns[name] = value
        return notes

    # -- the hook around every cell ------------------------------------------------------------
    def before(self, code: str) -> tuple[str, str | None]:
        self.counter += 1
        digest = code_hash(code)
        kind = self.trusted.get(digest)
        flags = self.diff()
        notes: list[str] = []
        if kind is not None:
            if flags:
                self.restore()
            notes = self.restore_given()
            self._ns_before = {k: id(v) for k, v in self.shell.user_ns.items()}
        else:
            # Modules a student imports are protected from now on too.
            self._snapshot_modules()
        self.report({"event": "before", "n": self.counter, "hash": digest[:16], "trusted": kind,
                     "flags": flags, "notes": notes})
        return digest, kind

    def after(self, digest: str, kind: str | None) -> None:
        if kind is None:
            return
        flags = self.diff()
        if kind == "given":
            ns = self.shell.user_ns
            for key, value in ns.items():
                if not key.startswith("_") and self._ns_before.get(key) != id(value):
                    self.given[key] = value
            # Whatever the locked setup cell imported (keras, ...) is part of the baseline.
            if flags:
                self.restore()
            self._snapshot_modules()
            self._snapshot_machinery()
            flags = []
        else:
            self._snapshot_modules()
            if flags:
                self.restore()
        self.report({"event": "after", "n": self.counter, "hash": digest[:16], "trusted": kind, "flags": flags})


_MISSING = object()


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is b


# --------------------------------------------------------------------------------------------
# the kernel
# --------------------------------------------------------------------------------------------
def _make_kernel_class(config: dict, report_fd: int):
    from ipykernel.ipkernel import IPythonKernel

    nonce = config["nonce"]
    trusted = dict(config.get("trusted", {}))

    def report(event: dict) -> None:
        event["nonce"] = nonce
        line = "DLCOURSE-GUARD " + json.dumps(event, default=str) + "\n"
        try:
            os.write(report_fd, line.encode())
        except OSError:
            pass

    class GuardedKernel(IPythonKernel):
        _guard = None

        async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                             allow_stdin=False, **kwargs):
            guard = GuardedKernel._guard
            if guard is None:
                guard = GuardedKernel._guard = Guard(self.shell, self, trusted, report)
            digest, kind = guard.before(code)
            try:
                return await IPythonKernel.do_execute(self, code, silent, store_history, user_expressions,
                                                      allow_stdin, **kwargs)
            finally:
                guard.after(digest, kind)

    return GuardedKernel


def main(argv=None) -> None:
    config: dict = {}
    path = os.environ.pop("DLCOURSE_GUARD_FILE", None)
    if path and os.path.exists(path):
        with open(path) as f:
            config = json.load(f)
        os.unlink(path)  # the nonce lives only in this process from now on
    apply_limits(config.get("limits", {}))
    drop_privileges(config.get("uid"), config.get("gid"))
    # Reports go to the kernel's own stdout (a log file outside the sandbox), saved before
    # ipykernel redirects file descriptors 1 and 2 into the notebook's outputs.
    report_fd = os.dup(1)
    os.set_inheritable(report_fd, False)
    # Import what the test cells check with before any student code can touch it.
    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401
    import dlcourse  # noqa: F401
    import dlcourse.checks  # noqa: F401
    preload(config.get("preload", []))
    from ipykernel.kernelapp import IPKernelApp

    kernel_class = _make_kernel_class(config, report_fd)
    app = IPKernelApp.instance(kernel_class=kernel_class)
    app.initialize(sys.argv[1:] if argv is None else argv)
    app.start()


if __name__ == "__main__":
    main()
