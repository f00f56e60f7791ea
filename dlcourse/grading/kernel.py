"""The kernel that runs a student's notebook, inside the sandbox.

``python -m dlcourse.grading.kernel -f CONNECTION_FILE`` is what the grader starts inside
bubblewrap instead of the usual IPython kernel. Before any student code runs it

- sets the resource limits (CPU seconds, address space, processes, file size, open files);
- drops root privileges to the sandbox's own user id when it was started as root;
- imports what the locked setup cells will import (TensorFlow takes seconds), so that this time
  is not counted against the first cell's limit;
- starts an ordinary IPython kernel.

Nothing in this kernel is trusted: the test cells do not run here but in the grader's checker
(:mod:`~dlcourse.grading.checker`), which reaches the student's names through
:mod:`~dlcourse.grading.agent`. The sandbox is what protects the machine, the other students and
the course's files; the checker is what protects the grades.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import sys



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


def main(argv=None) -> None:
    config: dict = {}
    path = os.environ.pop("DLCOURSE_GUARD_FILE", None)
    if path and os.path.exists(path):
        with open(path) as f:
            config = json.load(f)
        os.unlink(path)
    apply_limits(config.get("limits", {}))
    drop_privileges(config.get("uid"), config.get("gid"))
    import numpy  # noqa: F401
    import dlcourse  # noqa: F401
    import dlcourse.grading.agent  # noqa: F401
    preload(config.get("preload", []))
    from ipykernel.kernelapp import IPKernelApp

    # What was imported (TensorFlow: over a million objects) is never scanned by the garbage
    # collector again: each full collection would cost most of a CPU-second of the notebook's time.
    import gc
    gc.collect()
    gc.freeze()

    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:] if argv is None else argv)
    app.start()


if __name__ == "__main__":
    main()
