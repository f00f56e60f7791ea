"""nbgrader's execution step, sandboxed and watched.

``GuardedExecute`` replaces nbgrader's ``Execute`` preprocessor in ``Autograde``. It behaves the
same for a well-behaved notebook, and in addition

- starts the kernel through ``SandboxedKernelManager``: ``python -m dlcourse.grading.kernel``
  inside bubblewrap, talking to the grader over Unix sockets in the sandbox's scratch folder;
- watches the kernel while each cell runs (CPU seconds of the cell, resident memory, number of
  processes and threads, size of the scratch folder, wall time) and kills the sandbox when a
  limit is passed;
- keeps at most ``Limits.output`` bytes of output (the rest is dropped, with a note);
- when the kernel dies (killed, crashed, exited), stops executing: every test cell that did not
  run gets an error output, so nbgrader scores it zero instead of full marks;
- records what happened (``execution.json``) for the worker, which decides whether to grade a
  cell as unanswered and run again.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty

import psutil
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Float, Integer, List, Unicode

from . import cgroups, sandbox
from .checker import CHECKER_NAME, NO_ANSWER
from .kernel import code_hash


class SandboxedKernelManager(AsyncKernelManager):
    """Starts ``dlcourse.grading.kernel`` in bubblewrap, over Unix sockets."""

    scratch = Unicode("", help="the sandbox's scratch folder").tag(config=True)
    log_path = Unicode("", help="where the kernel's stdout and stderr go").tag(config=True)
    use_sandbox = Bool(True).tag(config=True)
    guard = Dict({}, help="the kernel's configuration (limits, user id, modules to preload)").tag(config=True)
    forbidden = List(Unicode(), help="folders that must not be visible in the sandbox").tag(config=True)
    threads = Integer(1).tag(config=True)
    extra_ro_binds = List(Unicode(), help="folders visible read-only in the sandbox (the checker's socket)").tag(config=True)
    package = Unicode("", help="a copy of dlcourse without the assignment's off-limits reference answers").tag(config=True)
    cgroup_cpus = Float(0.0, help="cores the sandbox may use (a control group of its own; 0: none)").tag(config=True)
    cgroup_memory = Integer(0, help="memory bound of the sandbox's control group, in bytes").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        run = Path(self.scratch) / "run"
        run.mkdir(exist_ok=True)
        uid = self.guard.get("uid")
        if uid is not None:
            os.chown(run, uid, uid)
        os.chmod(run, 0o700)
        self.transport = "ipc"
        self.ip = str(run / "k")
        self.connection_file = str(run / "connection.json")

    def write_connection_file(self, **kwargs):
        result = super().write_connection_file(**kwargs)
        uid = self.guard.get("uid")
        if uid is not None and os.path.exists(self.connection_file):
            os.chown(self.connection_file, uid, uid)
        return result

    def format_kernel_cmd(self, extra_arguments=None):
        inner = [sys.executable, "-m", "dlcourse.grading.kernel", "-f", self.connection_file,
                 *(extra_arguments or [])]
        if not self.use_sandbox:
            return inner
        scratch = Path(self.scratch)
        env = sandbox.sandbox_env(scratch, self.threads)
        env["DLCOURSE_GUARD_FILE"] = str(scratch / "run" / "guard.json")
        cmd = sandbox.bwrap_command(inner, scratch=scratch, forbidden=[Path(p) for p in self.forbidden], env=env,
                                    extra_ro_binds=[Path(p) for p in self.extra_ro_binds],
                                    package=Path(self.package) if self.package else None)
        if self.cgroup_cpus > 0 and cgroups.unavailable() is None:
            self._group = cgroups.Group(f"{os.getpid()}-{scratch.name}", self.cgroup_cpus,
                                        self.cgroup_memory or 2**40)
            try:
                self._group.create()
                cmd = self._group.wrap(cmd)
            except OSError:
                self._group.remove()
                self._group = None
        return cmd

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        group = getattr(self, "_group", None)
        if group is not None:
            group.remove()
            self._group = None

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        scratch = Path(self.scratch)
        guard_file = scratch / "run" / "guard.json"
        guard_file.write_text(json.dumps(self.guard))
        uid = self.guard.get("uid")
        if uid is not None:
            os.chown(guard_file, uid, uid)
        os.chmod(guard_file, 0o600)
        # The assignment's other files (data, in subfolders too), which nbgrader put next to the
        # notebook: copied into the kernel's working folder (never following a symbolic link).
        cwd = kw.get("cwd")
        if cwd and Path(cwd).is_dir():
            base = Path(cwd)
            for root, dirs, files in os.walk(base, followlinks=False):
                dirs[:] = [d for d in dirs if d != ".ipynb_checkpoints"]
                rel = Path(root).relative_to(base)
                for name in files:
                    item = Path(root) / name
                    if item.suffix == ".ipynb" or (rel == Path(".") and name == "timestamp.txt") \
                            or item.is_symlink() or not item.is_file():
                        continue
                    target = scratch / "work" / rel / name
                    if not target.parent.exists():
                        target.parent.mkdir(parents=True)
                        if uid is not None:
                            for part in reversed(target.relative_to(scratch / "work").parents[:-1]):
                                os.chown(scratch / "work" / part, uid, uid)
                    target.write_bytes(item.read_bytes())
                    if uid is not None:
                        os.chown(target, uid, uid)
        # The kernel's own stdout and stderr (what its code writes to file descriptors 1 and 2
        # directly, and the kernel's start-up messages) go through a pipe to a log of bounded size:
        # the bound holds where the bytes are written, whatever the student's code does.
        log = BoundedLog(self.log_path, LOG_CAP)
        kw["stdout"] = log.writer
        kw["stderr"] = log.writer
        kw["cwd"] = str(scratch / "work") if not self.use_sandbox else str(scratch)
        env = dict(kw.get("env") or os.environ)
        if not self.use_sandbox:
            env.update(sandbox.sandbox_env(scratch, self.threads))
            env["DLCOURSE_GUARD_FILE"] = str(guard_file)
        kw["env"] = env
        try:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            log.close()

    async def _async_interrupt_kernel(self):
        """SIGINT to the kernel's own process, found by its real PID.

        jupyter_client would signal the process it started, which is bubblewrap: bubblewrap does
        not pass SIGINT on. ipykernel's ``interrupt_request`` message is no better: its control
        thread signals its own process, so the signal lands on that thread, and CPython does not
        reliably interrupt a main thread that is busy in a loop (``while True: pass`` runs on).
        A signal sent from outside is delivered to the kernel's main thread, which raises
        KeyboardInterrupt in the cell."""
        pid = self.kernel_process_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)
                return
            except OSError:
                pass
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel

    def kill_sandbox(self) -> None:
        """Kill the kernel and everything it started, at once.

        In the sandbox: SIGKILL to bubblewrap's init process in the kernel's PID namespace, which
        takes every process of the namespace with it; the outer bubblewrap then exits by itself
        and is reaped. (Killing the outer one first would orphan the inner one.) Without the
        sandbox: the kernel's process group."""
        pid = self.kernel_pid
        if pid is None:
            return
        if self.use_sandbox:
            try:
                inner = psutil.Process(pid).children()
            except psutil.Error:
                inner = []
            for proc in inner:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            if inner:
                return
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    async def _async_kill_kernel(self, restart: bool = False) -> None:
        self.kill_sandbox()
        if self.has_kernel:
            try:
                await asyncio.wait_for(self._async_wait(), timeout=5.0)
            except asyncio.TimeoutError:
                pass
        await super()._async_kill_kernel(restart=restart)

    def kernel_process_pid(self) -> int | None:
        """The real PID of the Python process running the kernel (inside bubblewrap's PID
        namespace it has another one)."""
        pid = self.kernel_pid
        if pid is None:
            return None
        try:
            level = [psutil.Process(pid)]
            for _ in range(4):          # breadth first: the kernel, not a process it started
                for proc in level:
                    cmd = proc.cmdline()
                    if cmd[1:3] == ["-m", "dlcourse.grading.kernel"]:
                        return proc.pid
                level = [c for p in level for c in p.children()]
        except psutil.Error:
            return None
        return None

    @property
    def kernel_pid(self) -> int | None:
        provisioner = self.provisioner
        return getattr(provisioner, "pid", None) if provisioner is not None else None


class KernelStopped(Exception):
    pass


LOG_CAP = 1 * 2**20      # bytes of a kernel's log kept (the rest is counted, not written)


class BoundedLog:
    """A pipe whose reader (a thread of this process) appends at most ``cap`` bytes to ``path``
    and drops the rest, with a last line that says how much was dropped. The writer end goes to
    the child process; this process closes its copy once the child has it."""

    def __init__(self, path: str, cap: int, start: bool = True):
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        self.writer = open(write_fd, "wb", buffering=0)
        self._thread = threading.Thread(target=self._pump, args=(read_fd, path, cap), daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Start reading (after a fork, so that the child is forked from a process of one thread)."""
        self._thread.start()

    @staticmethod
    def _pump(read_fd: int, path: str, cap: int) -> None:
        written = dropped = 0
        with open(path, "ab") as out:
            while True:
                try:
                    chunk = os.read(read_fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                keep = chunk[:max(0, cap - written)]
                if keep:
                    out.write(keep)
                    out.flush()
                    written += len(keep)
                dropped += len(chunk) - len(keep)
            if dropped:
                out.write(f"\n[log truncated: {dropped} more bytes were not kept]\n".encode())
        os.close(read_fd)

    def close(self) -> None:
        self.writer.close()


class CheckerClient(AsyncKernelClient):
    """A client of the checker kernel, which knows whether the checker lives by its process id (a
    heartbeat missed on a busy machine would count it as dead)."""

    checker_pid = Integer(0)

    async def _async_is_alive(self) -> bool:
        try:
            os.kill(self.checker_pid, 0)
            return True
        except OSError:
            return False

    is_alive = _async_is_alive


class CheckerHandle:
    """What nbclient needs of a kernel manager, for the checker kernel while it runs a cell."""

    def __init__(self, pid: int):
        self.pid = pid

    async def interrupt_kernel(self) -> None:
        try:
            os.kill(self.pid, signal.SIGINT)
        except OSError:
            pass

    async def is_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False


class CheckerProcess:
    """A checker kernel (:mod:`.checker`) of its own: forked from this process (the grader's
    worker, which has imported what the checker needs) or, where forking is not safe (a process
    with threads, such as a test runner), started as a new Python process."""

    def __init__(self, pid: int, folder: Path, connection_file: str, popen=None):
        self.pid, self.folder, self.connection_file, self.popen = pid, folder, connection_file, popen

    @property
    def socket(self) -> str:
        return str(self.folder / "chan" / "checker.sock")

    def info(self) -> dict:
        return {"pid": self.pid, "connection_file": self.connection_file, "socket": self.socket}

    @classmethod
    def _prepare(cls, folder: Path, uid: int | None) -> str:
        from jupyter_client.connect import write_connection_file

        for sub, mode in (("", 0o711), ("run", 0o700), ("chan", 0o711), ("home", 0o700)):
            d = folder / sub
            d.mkdir(parents=True, exist_ok=True)
            if uid is not None:
                os.chown(d, uid, uid)
            os.chmod(d, mode)
        fname, _ = write_connection_file(fname=str(folder / "run" / "checker.json"), transport="ipc",
                                         ip=str(folder / "run" / "k"))
        if uid is not None:
            os.chown(fname, uid, uid)
        return fname

    @classmethod
    def fork(cls, folder: Path, log: Path, privileges: dict | None = None) -> "CheckerProcess":
        privileges = privileges or {}
        fname = cls._prepare(folder, privileges.get("uid"))
        env = _checker_env(folder, privileges.get("threads", 1))
        bounded = BoundedLog(str(log), LOG_CAP, start=False)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(bounded.writer.fileno(), 1)
                os.dup2(bounded.writer.fileno(), 2)
                os.environ.clear()
                os.environ.update(env)
                os.chdir(folder / "home")
                from . import checker
                checker.main(fname, privileges)
                code = 0
            except BaseException:  # noqa: BLE001 - the child must never return into the worker
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        bounded.start()
        bounded.close()
        return cls(pid, folder, fname)

    @classmethod
    def spawn(cls, folder: Path, privileges: dict | None = None, log: Path | None = None) -> "CheckerProcess":
        privileges = privileges or {}
        folder = folder / "checker"
        fname = cls._prepare(folder, privileges.get("uid"))
        bounded = BoundedLog(str(log or folder / "checker.log"), LOG_CAP)
        arg = json.dumps({"connection_file": fname, "privileges": privileges})
        popen = subprocess.Popen([sys.executable, "-m", "dlcourse.grading.checker", arg], cwd=str(folder / "home"),
                                 env={**os.environ, **_checker_env(folder, privileges.get("threads", 1))},
                                 stdin=subprocess.DEVNULL, stdout=bounded.writer, stderr=bounded.writer,
                                 start_new_session=True)
        bounded.close()
        return cls(popen.pid, folder, fname, popen)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as f:      # a zombie is not alive
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True

    cpu_seconds = 0.0      # CPU time the checker used, known once it has been stopped (forked only)

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _, status, usage = os.wait4(self.pid, 0)
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
            if self.popen is not None:
                self.popen.returncode = os.waitstatus_to_exitcode(status)
        except (ChildProcessError, OSError):
            pass


def _checker_env(folder: Path, threads: int) -> dict[str, str]:
    """The environment of the student's kernel (``sandbox.sandbox_env``: threads, TensorFlow's and
    Matplotlib's settings, a home of its own), with that home as the checker's temporary folder and
    the grader's processor settings for OpenBLAS."""
    env = sandbox.sandbox_env(folder, threads)
    env["TMPDIR"] = env["HOME"]
    env.update({k: v for k, v in os.environ.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")})
    return env


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, a watchdog and an output cap."""

    limits = Dict({}, help="sandbox.Limits as a dict").tag(config=True)
    work_dir = Unicode("", help="where to write execution-<notebook>.json and kernel-<notebook>.log").tag(config=True)
    trusted = Dict({}, help="code hash -> 'given' or 'test' for the locked code cells").tag(config=True)
    checker = Dict({}, help="the checker kernel: connection_file, pid, socket, interface, given").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self._limits = sandbox.Limits(**self.limits) if self.limits else sandbox.Limits()
        self.record = {"cells": [], "stopped": None, "output_truncated": False}
        self._output_bytes = 0
        self._deadline = None
        self._nb_dir: str | None = None
        self._stopped: dict | None = None
        self._kill_reason: str | None = None
        self._timed_out_before: dict | None = None   # the previous cell, if the time limit stopped it

    # nbconvert's preprocess() initialises the client again from the configuration, where the
    # course's Execute.timeout would win over the sandbox's limit: both are decided here.
    def _get_timeout(self, cell):
        return self._limits.cell_timeout

    async def async_start_new_kernel_client(self):
        # The kernel imports what the setup cells need (TensorFlow) before it reports ready: give
        # a busy machine time for that (the notebook's own time limit still counts it).
        self.startup_timeout = max(self.startup_timeout, 180)
        # After a cell's reply its last output may come late on a busy machine (nbgrader would
        # fail the cell after 4 s); after an interrupt this is also how long the kernel has to
        # come back before it counts as stuck.
        self.iopub_timeout = max(self.iopub_timeout, 10)
        return await super().async_start_new_kernel_client()

    # -- the checker ---------------------------------------------------------------------------
    async def _connect_checker(self) -> None:
        """Connect to the checker kernel (started by the worker, or here for a single notebook)
        and give it a fresh namespace for this notebook."""
        info = dict(self.checker)
        if not info.get("connection_file"):
            self._own_checker = CheckerProcess.spawn(self._own_checker_folder)
            info.update(self._own_checker.info())
        self._checker_km = CheckerHandle(int(info["pid"]))
        client = CheckerClient(checker_pid=int(info["pid"]))
        client.load_connection_file(info["connection_file"])
        client.start_channels(hb=False)
        await client.wait_for_ready(timeout=120)
        self._checker_kc = client
        config = {"interface": info.get("interface", []), "given": info.get("given", []),
                  "socket": info["socket"], "timeout": self._limits.cell_timeout, "cwd": self._nb_dir}
        self._checker_socket = info["socket"]
        reply = await self._run_quiet(client, f"{CHECKER_NAME}.reset(__import__('json').loads({json.dumps(config)!r}))", 60)
        if reply is None or reply["content"].get("status") != "ok":
            raise RuntimeError(f"the grader's checker could not be reset: {reply and reply['content'].get('evalue')}")

    async def _run_quiet(self, client, code: str, timeout: float) -> dict | None:
        """Execute ``code`` silently; the reply, or None after ``timeout`` seconds."""
        msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        return await self._reply(client, msg_id, timeout)

    @staticmethod
    async def _reply(client, msg_id: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await client.get_shell_msg(timeout=left)
            except Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def _async_cleanup_kernel(self) -> None:
        kc = getattr(self, "_checker_kc", None)
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:  # noqa: BLE001
                pass
            self._checker_kc = None
        own = getattr(self, "_own_checker", None)
        if own is not None:
            own.stop()
            self._own_checker = None
        await super()._async_cleanup_kernel()

    async def _checker_cell(self, cell, cell_index, execution_count, store_history, given: bool):
        """Run a locked cell in the checker while the student's kernel answers its requests."""
        student_km, student_kc = self.km, self.kc
        if getattr(self, "_checker_kc", None) is None:
            await self._connect_checker()
        if given:
            # The student's kernel runs it too, for its side effects (seeds, imports); the names it
            # binds come from the checker's run.
            await self._student_quiet(f"__import__('dlcourse.grading.agent', fromlist=['run_locked'])"
                                      f".run_locked({cell.source!r})")
        serve_id = student_kc.execute(
            f"__import__('dlcourse.grading.agent', fromlist=['serve']).serve({self._checker_socket!r})",
            silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        # What the student's code prints or displays while the tests call it is read and dropped
        # as it comes: unread, it would pile up in this process's memory.
        drain = asyncio.ensure_future(self._drain(student_kc))
        self.km, self.kc = self._checker_km, self._checker_kc
        try:
            result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            self.km, self.kc = student_km, student_kc
            try:
                await self._finish_student(serve_id)
            finally:
                drain.cancel()
        if self._entry.get("timed_out") and await self._run_quiet(self._checker_kc, "pass", 10) is None:
            # The checker did not come back from the interrupt (stuck in a library call on data the
            # student's code handed over): stop it; the worker starts a new one, grades the
            # student's cell before as unanswered and runs again.
            try:
                os.kill(self._checker_km.pid, signal.SIGKILL)
            except OSError:
                pass
            self._kill_reason = self._kill_reason or (
                f"a test ran for more than {self._limits.cell_timeout} s on what the notebook's code handed over, "
                "and the grader's checker had to be stopped")
        if any(o.get("output_type") == "error" and NO_ANSWER in str(o.get("evalue", "")) for o in cell.outputs):
            # The student's code stopped its kernel from answering (an input transformer that
            # rewrites the grader's request, say): every later test would wait for it in vain.
            # Stop here; the worker grades the cell before as unanswered and runs again.
            self._kill_reason = self._kill_reason or NO_ANSWER
        return result

    @staticmethod
    async def _drain(client) -> None:
        while True:
            try:
                await client.get_iopub_msg(timeout=1)
            except Empty:
                pass

    async def _student_quiet(self, code: str) -> None:
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        await self._finish_student(msg_id, wait=self._limits.cell_timeout)

    async def _finish_student(self, msg_id: str, wait: float = 10) -> None:
        """Wait for the student's kernel to finish ``msg_id``; interrupt it, then kill it, if it
        does not (its code is stuck in a loop, say)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if await self._reply(self.kc, msg_id, min(1.0, max(0.05, deadline - time.monotonic()))) is not None:
                return
            if not await ensure_async(self.km.is_alive()):
                self._kill_reason = self._kill_reason or "the kernel died (the code exited or crashed Python)"
                return
        await ensure_async(self.km.interrupt_kernel())
        if await self._reply(self.kc, msg_id, 10) is not None:
            return
        self._kill_reason = self._kill_reason or (
            f"the notebook's code did not stop when the grader asked it to (after {wait:g} s)")
        self._kill()

    # -- notebook ------------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._key = (resources or {}).get("unique_key") or "notebook"
        # the notebook's folder (nbgrader's autograded folder, with the assignment's data files):
        # the test cells run there, as they do in nbgrader
        self._nb_dir = ((resources or {}).get("metadata") or {}).get("path") or None
        self._deadline = time.monotonic() + self._limits.notebook_timeout
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._write_record()

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        self._student_km = km
        if not self.checker.get("connection_file") and isinstance(km, SandboxedKernelManager):
            # No checker from the worker (a single notebook run, as in the tests): one of our own,
            # started when the first locked cell runs, its socket folder visible in the sandbox.
            self._own_checker_folder = Path((km.scratch or tempfile.mkdtemp(prefix="dlchk")) + "-own")
            (self._own_checker_folder / "checker" / "chan").mkdir(parents=True, exist_ok=True)
            km.extra_ro_binds = [*km.extra_ro_binds, str(self._own_checker_folder / "checker" / "chan")]
        if self.work_dir and isinstance(km, SandboxedKernelManager):
            km.log_path = str(Path(self.work_dir) / f"kernel-{self._key}.log")
        return km

    def _write_record(self):
        if self.work_dir:
            self.record["stopped"] = self._stopped
            Path(self.work_dir, f"execution-{self._key}.json").write_text(json.dumps(self.record, indent=1))

    # -- cells ---------------------------------------------------------------------------------
    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        meta = cell.metadata.get("nbgrader", {})
        entry = {"index": cell_index, "grade_id": meta.get("grade_id"), "hash": code_hash(cell.source)[:16],
                 "trusted": self.trusted.get(code_hash(cell.source)), "ran": False}
        self.record["cells"].append(entry)
        if self._stopped is None and time.monotonic() > self._deadline:
            self._stop(cell_index, f"the notebook ran out of time ({self._limits.notebook_timeout} s per notebook)",
                       kill=True)
        if self._stopped is not None:
            self._mark_not_run(cell)
            return cell
        watchdog = asyncio.ensure_future(self._watch(cell_index, self.km))
        self._entry = entry
        try:
            if entry["trusted"] in ("test", "given"):
                result = await self._checker_cell(cell, cell_index, execution_count, store_history,
                                                  given=entry["trusted"] == "given")
            else:
                result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            entry["ran"] = True
            self._timed_out_before = entry if entry.get("timed_out") else None
            if self._kill_reason:      # killed just as the cell ended
                self._stop(cell_index, self._kill_reason)
                self._mark_not_run(cell)
            return result
        except Exception as exc:  # noqa: BLE001 - DeadKernelError, timeouts, broken channels
            entry["ran"] = True
            reason = self._kill_reason or _describe_death(exc)
            if entry.get("timed_out") and not self._kill_reason:
                # Interrupted, but the kernel did not come back (its code catches KeyboardInterrupt).
                limit = self._limits.cell_timeout
                entry["timed_out"] = (f"it ran for more than {limit} s, the time limit per cell, "
                                      "and could not be interrupted")
                reason = f"a cell ran for more than {limit} s and could not be interrupted"
            self._stop(cell_index, reason, kill=True)
            self._mark_not_run(cell, reason)
            return cell
        finally:
            watchdog.cancel()

    execute_cell = run_sync(async_execute_cell)

    async def _async_handle_timeout(self, timeout, cell=None):
        # nbclient interrupts the kernel (SandboxedKernelManager.interrupt_kernel: KeyboardInterrupt
        # in the cell) and nbgrader's Execute records a CellTimeoutError for it at once. Recorded
        # here so that the worker grades a student's cell that ran out of time as unanswered.
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry["timed_out"] = (f"it ran for more than {timeout} s, the time limit per cell, "
                                  "and was interrupted")
        if isinstance(self.km, CheckerHandle):
            # A locked cell in the checker: the interrupt goes to the checker (see _checker_cell).
            return await super()._async_handle_timeout(timeout, cell)
        if self._timed_out_before is not None:
            # Two cells in a row out of time: the interrupt did not stop the first one (its code
            # catches KeyboardInterrupt, say), and every later cell would wait behind it.
            self._timed_out_before["timed_out"] = (f"it ran for more than {timeout} s, the time limit per "
                                                   "cell, and could not be interrupted")
            self._kill_reason = f"a cell ran for more than {timeout} s and could not be interrupted"
            self._kill()
        return await super()._async_handle_timeout(timeout, cell)

    def _stop(self, cell_index: int, reason: str, kill: bool = False):
        if self._stopped is None:
            self._stopped = {"index": cell_index, "reason": reason}
        if kill:
            self._kill()

    def _kill(self):
        km = self.km if isinstance(self.km, SandboxedKernelManager) else getattr(self, "_student_km", None)
        if isinstance(km, SandboxedKernelManager):
            km.kill_sandbox()

    def _mark_not_run(self, cell, reason: str | None = None):
        reason = reason or (self._stopped or {}).get("reason", "the kernel stopped")
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
            cell.outputs.append(NotebookNode(output_type="error", ename="NotRun",
                                             evalue=f"this cell was not run: {reason}",
                                             traceback=[f"NotRun: this cell was not run: {reason}"]))

    async def _watch(self, cell_index: int, km):
        """Kill the sandbox when the running cell passes a limit."""
        lim = self._limits
        pid = getattr(km, "kernel_pid", None)
        if not pid:
            return
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        start_cpu = _tree_cpu(root)
        start = time.monotonic()
        scratch = Path(getattr(self.km, "scratch", "") or ".")
        tick = 0
        while True:
            await asyncio.sleep(0.25)
            tick += 1
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            cpu, rss, tasks = 0.0, 0, 0
            for p in procs:
                try:
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
                    rss += p.memory_info().rss
                    tasks += p.num_threads()
                except psutil.Error:
                    pass
            reason = None
            if cpu - start_cpu > lim.cell_cpu:
                reason = f"a cell used more than {lim.cell_cpu} s of CPU time"
            elif tasks > lim.processes:
                reason = f"the notebook started more than {lim.processes} processes and threads"
            elif rss > lim.memory and (len(procs) <= 3 or _tree_pss(procs) > lim.memory):
                # Forked processes share their parent's pages, which RSS counts again in every
                # child; the proportional set size (PSS) counts each page once.
                reason = f"the notebook used more than {lim.memory / 2**30:.1f} GiB of memory"
            elif time.monotonic() - start > lim.cell_timeout + 20:
                reason = f"a cell ran for more than {lim.cell_timeout} s and could not be interrupted"
            elif time.monotonic() > self._deadline + 5:
                reason = f"the notebook ran out of time ({lim.notebook_timeout} s per notebook)"
            elif tick % 8 == 0 and _folder_size(scratch, lim.scratch) > lim.scratch:
                reason = f"the notebook wrote more than {lim.scratch / 2**20:.0f} MiB of files"
            if reason:
                self._kill_reason = reason
                self._kill()
                return

    # -- outputs -------------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        self._output_bytes += size
        if self._output_bytes > self._limits.output:
            if not self.record["output_truncated"]:
                self.record["output_truncated"] = True
                note = NotebookNode(output_type="stream", name="stdout",
                                    text=f"\n[output truncated: more than {self._limits.output // 1024} KiB]\n")
                outs.append(note)
            return None
        return super().output(outs, msg, display_id, cell_index)


def _describe_death(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "DeadKernelError":
        return "the kernel died (the code exited or crashed Python)"
    if "Timeout" in name:
        return "a cell stopped responding"
    return f"the kernel stopped ({name}: {exc})"


def _tree_cpu(root) -> float:
    total = 0.0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _tree_pss(procs) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


def _folder_size(path: Path, cap: int) -> int:
    total, seen = 0, 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    seen += 1
                    if seen > 200_000:
                        return cap + 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        pass
        except OSError:
            pass
        if total > cap:
            return total
    return total
