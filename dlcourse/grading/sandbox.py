"""The sandbox a student's kernel runs in: bubblewrap, resource limits and a watchdog.

Inside the sandbox the kernel sees, read-only, only the system's ``/usr`` (and ``/etc``'s few
files a program needs), the Python installation, and the ``dlcourse`` package; read-write, only
its own scratch folder (which is also its working folder, ``HOME`` and ``TMPDIR``). It has no
network (a new, empty network namespace), its own process-id namespace (everything it starts
dies with it) and, when the grader runs as root, its own unprivileged user id. The course folder,
``solutions/``, the gradebook, the hidden tests and other students' folders are not there at all.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

GiB = 1024 ** 3
MiB = 1024 ** 2


@dataclass
class Limits:
    """What one submission may use. Times in seconds, sizes in bytes."""
    cell_timeout: int = 180            # wall time per cell (then the cell is interrupted)
    cell_cpu: int = 300                # CPU seconds per cell (all threads; then the kernel is killed)
    notebook_timeout: int = 600        # wall time per notebook run
    memory: int = 3 * GiB              # resident memory of the whole sandbox
    processes: int = 512               # processes and threads (TensorFlow starts many threads)
    file_size: int = 200 * MiB         # largest file it may write
    scratch: int = 500 * MiB           # total size of its scratch folder
    output: int = 2 * MiB              # notebook output kept (the rest is dropped)
    open_files: int = 1024

    def to_dict(self) -> dict:
        return asdict(self)


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_sandbox() -> str:
    """The path of ``bwrap`` once it has been seen to work here, or a clear error saying how to
    install it or why it does not work."""
    path = bwrap_path()
    if not path:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so student code cannot be sandboxed. Install it "
            "(Debian/Ubuntu: `sudo apt-get install bubblewrap`; `make test` does it as root), or pass "
            "--no-sandbox to grade without a sandbox (only for code you trust).")
    problem = _try_bwrap(path)
    if problem:
        raise SandboxUnavailable(
            f"bubblewrap ({path}) is installed but cannot make a sandbox on this machine: {problem}. "
            "It needs user namespaces when not run as root (Ubuntu 24.04 restricts them with AppArmor: "
            "see `sysctl kernel.apparmor_restrict_unprivileged_userns`), or run the grader as root; or "
            "pass --no-sandbox to grade without a sandbox (only for code you trust).")
    return path


@functools.lru_cache(maxsize=None)
def _try_bwrap(path: str) -> str:
    """'' if bubblewrap can make the namespaces the kernel's sandbox uses, else its error."""
    cmd = [path, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    if os.getuid() != 0:
        cmd.append("--unshare-user")
    cmd += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return ""


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), f"/{name}"]
        elif p.is_dir():
            args += ["--ro-bind", str(p), f"/{name}"]
    for name in ("passwd", "group", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
                 "nsswitch.conf", "alternatives", "mime.types"):
        p = Path("/etc") / name
        if p.exists():
            args += ["--ro-bind", str(p), str(p)]
    return args


@functools.lru_cache(maxsize=1)
def clean_sys_path() -> tuple[str, ...]:
    """``sys.path`` of this interpreter started afresh, as the kernel is: without PYTHONPATH and
    the user's site folder, and without what this process added (pytest adds the tests folder
    and the repository; the grader's worker processes inherit this process's ``sys.path``)."""
    out = subprocess.run([sys.executable, "-E", "-s", "-c", "import json, sys; print(json.dumps(sys.path))"],
                         capture_output=True, text=True, cwd="/", check=True)
    return tuple(p for p in json.loads(out.stdout.strip().splitlines()[-1]) if p and p != "/")


def python_binds(forbidden: list[Path]) -> list[str]:
    """Read-only binds for this interpreter, its packages and ``dlcourse``; never a folder that
    contains one of ``forbidden`` (the course root, the submissions, the grader's work folder)."""
    import dlcourse

    forbidden = [p.resolve() for p in forbidden]
    package = Path(dlcourse.__file__).resolve().parent
    wanted: list[Path] = [package]
    for entry in {sys.prefix, sys.base_prefix, sys.exec_prefix, *clean_sys_path()}:
        if not entry:
            continue
        p = Path(entry).resolve()
        if p.is_dir():
            wanted.append(p)
    binds: list[Path] = []
    for p in wanted:
        if any(f == p or f.is_relative_to(p) for f in forbidden):
            continue  # e.g. the repository root on sys.path of an editable install
        if any(p.is_relative_to(b) for b in binds):
            continue
        binds = [b for b in binds if not b.is_relative_to(p)] + [p]
    args = []
    for b in sorted(binds):
        args += ["--ro-bind", str(b), str(b)]
    # The interpreter itself may be a symlink into another folder (pyenv, a venv).
    exe = Path(sys.executable)
    real = exe.resolve()
    if not any(real.is_relative_to(b) for b in binds):
        args += ["--ro-bind", str(real), str(real)]
    return args


def bwrap_command(inner: list[str], *, scratch: Path, forbidden: list[Path], env: dict[str, str],
                  extra_ro_binds: list[Path] = (), package: Path | None = None) -> list[str]:
    """The bubblewrap command that runs ``inner`` with ``scratch`` as its only writable folder
    (its ``run/`` subfolder holds the kernel's connection file and sockets). ``extra_ro_binds``
    are also visible, read-only (the checker's socket folder); ``package``, a copy of
    ``dlcourse`` without the assignment's off-limits reference answers (:func:`filtered_package`),
    is what the sandbox sees in place of the real package."""
    bwrap = check_sandbox()
    cmd = [bwrap, "--die-with-parent", "--new-session",
           "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if os.getuid() != 0:
        cmd.append("--unshare-user")
    cmd += ["--hostname", "sandbox"]
    cmd += _system_binds()
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--bind", str(scratch / "tmp"), "/tmp"]          # first: the scratch folder may be under /tmp
    binds = python_binds(forbidden)
    # Folders bwrap creates on the way to a bind are 0700 by default: the sandbox's own user
    # could not get through them.
    ancestors = set()
    for target in [binds[i + 2] for i in range(0, len(binds), 3)] + [str(scratch)] + [str(p) for p in extra_ro_binds]:
        for parent in Path(target).parents:
            if str(parent) not in ("/", "/usr", "/tmp"):
                ancestors.add(parent)
    for parent in sorted(ancestors, key=lambda p: len(p.parts)):
        cmd += ["--perms", "0755", "--dir", str(parent)]
    cmd += binds
    if package is not None:
        import dlcourse
        cmd += ["--ro-bind", str(package), str(Path(dlcourse.__file__).resolve().parent)]
    for extra in extra_ro_binds:
        cmd += ["--ro-bind", str(extra), str(extra)]
    cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch / "work")]
    cmd += ["--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", *inner]


def sandbox_env(scratch: Path, threads: int) -> dict[str, str]:
    home = str(scratch / "home")
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp", "MPLCONFIGDIR": f"{home}/.matplotlib", "MPLBACKEND": "Agg",
        "KERAS_HOME": f"{home}/.keras", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
        "KERAS_BACKEND": "tensorflow", "NBGRADER_EXECUTION": "autograde",
        "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
        "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        **_package_pythonpath(),
    }


def _package_pythonpath() -> dict[str, str]:
    """PYTHONPATH for the kernels: the folder that holds the ``dlcourse`` the grader itself runs,
    of which the sandbox sees only the package (bound read-only). Without it, a kernel would find
    the installed ``dlcourse`` (an editable install of another checkout, say), which the sandbox
    does not show: grading from a copy of the course (``python -m dlcourse grade`` in it) or from
    a developer's git worktree must use that copy's package."""
    import dlcourse
    return {"PYTHONPATH": str(Path(dlcourse.__file__).resolve().parent.parent)}


def make_scratch(root: Path, uid: int | None) -> Path:
    """A fresh scratch folder: work/ (the kernel's working folder), home/ and tmp/."""
    if root.exists():
        shutil.rmtree(root)
    for sub in ("", "work", "home", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(root / sub, uid, uid)
        os.chmod(root / sub, 0o700)
    return root


def sandbox_uid(slot: int) -> int | None:
    """A user id of its own for each parallel job when the grader runs as root (so the process
    limit counts only that sandbox's processes); None otherwise."""
    if os.getuid() != 0:
        return None
    return 3_000_000 + (os.getpid() % 10_000) * 16 + slot % 16


OFF_LIMITS_MESSAGE = "is off limits while grading"


def filtered_package(off_limits: list[str], dest: Path) -> Path:
    """A copy of the ``dlcourse`` package without the reference answers an assignment asks the
    student to write: ``dest/dlcourse``, which the sandbox sees in place of the real package.

    ``off_limits`` names modules (``dlcourse.cnn``: the whole module is gone; importing it raises
    ImportError) or top-level functions, classes and methods (``dlcourse.rbm.gibbs_step``,
    ``dlcourse.rbm.RBM.impute``: the definition stays, its body is replaced by a ``raise``). The
    copy holds no other trace of them: only ``.py`` files are copied, rewritten from their syntax
    tree (no comments, no ``__pycache__``), so the code is nowhere in the sandbox."""
    import ast
    import dlcourse

    src = Path(dlcourse.__file__).resolve().parent
    out = dest / "dlcourse"
    if out.exists():
        shutil.rmtree(out)
    modules = {n for n in off_limits if _is_module(n)}
    members: dict[str, list[list[str]]] = {}
    for name in off_limits:
        if name in modules:
            continue
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            if _is_module(".".join(parts[:cut])):
                members.setdefault(".".join(parts[:cut]), []).append(parts[cut:])
                break
        else:
            raise ValueError(f"off_limits: {name!r} is neither a module of dlcourse nor a function or class in one")
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts:
            continue
        modname = ".".join(("dlcourse", *rel.with_suffix("").parts)).removesuffix(".__init__")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if modname in modules or any(modname.startswith(m + ".") for m in modules):
            target.write_text(f"raise ImportError({(modname + ' ' + OFF_LIMITS_MESSAGE + ': write your own code').__repr__()})\n")
            continue
        if modname not in members:
            shutil.copyfile(path, target)
            continue
        tree = ast.parse(path.read_text())
        for dotted in members[modname]:
            if not _blank(tree.body, dotted, f"{modname}.{'.'.join(dotted)}"):
                raise ValueError(f"off_limits: {modname}.{'.'.join(dotted)} is not defined in {modname}")
        target.write_text(ast.unparse(tree) + "\n")
    for folder in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        folder.chmod(0o755)
    for file in out.rglob("*.py"):
        file.chmod(0o644)
    return out


def _is_module(name: str) -> bool:
    import dlcourse

    if name == "dlcourse" or not name.startswith("dlcourse."):
        return name == "dlcourse"
    base = Path(dlcourse.__file__).resolve().parent.joinpath(*name.split(".")[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _blank(body: list, dotted: list[str], full: str) -> bool:
    import ast

    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == dotted[0]:
            if len(dotted) > 1:
                return isinstance(node, ast.ClassDef) and _blank(node.body, dotted[1:], full)
            message = f"{full} {OFF_LIMITS_MESSAGE}: it is the course's reference answer; write your own code"
            stub = ast.parse(f"raise ImportError({message!r})").body
            if isinstance(node, ast.ClassDef):
                node.body = [ast.FunctionDef(name="__init__", args=ast.arguments(
                    posonlyargs=[], args=[ast.arg("self")], vararg=ast.arg("args"), kwonlyargs=[], kw_defaults=[],
                    kwarg=ast.arg("kwargs"), defaults=[]), body=stub, decorator_list=[], returns=None,
                    type_params=[])]
                node.bases, node.keywords = [], []
            else:
                node.body = stub
            ast.fix_missing_locations(node)
            return True
    return False
