"""Grading on several machines: one job per submission on a Celery queue (Redis as the broker).

``dlcourse grade ... --queue redis://:PASSWORD@HOST:PORT/DB`` (the *coordinator*) puts one
:class:`Parcel` per submission on the queue and merges each :class:`Reply` as it comes back;
``dlcourse worker --queue URL --work DIR`` on each grading machine takes one parcel at a time,
turns it into an ordinary :class:`~dlcourse.grading.messages.Job` with paths on its own disk and
grades it exactly as the local run does (:func:`dlcourse.grading.worker.run_job`, in a process of
its own, in the same bubblewrap sandbox). Only the coordinator writes the course's gradebook.

What travels:

- a :class:`Parcel`: the student's id and the rebuilt notebooks of *this* submission (their text),
  the job's key, the assignment's grading settings (limits, trusted code hashes, released stubs),
  and the content hash of the assignment's *bundle*;
- the bundle, once per assignment and stored in Redis under its SHA-256: the template gradebook
  (only this assignment, as ``nbgrader generate_assignment`` made it), the course's
  ``nbgrader_config.py``, the source folder's data files (no notebook) and the filtered
  ``dlcourse`` package the sandbox sees. A worker fetches it once and keeps it by its hash;
- a :class:`Reply`: the :class:`~dlcourse.grading.messages.Result` and the text of the
  autograded notebooks.

Never: other students' files, the course's gradebook, the solutions' notebooks beyond what the
template gradebook holds, or a path of the coordinator's machine.

Faults:

- a worker killed mid-job: the message is acknowledged only after the reply is stored
  (``acks_late``, ``reject_on_worker_lost``); Redis gives it to another worker after the
  *visibility timeout*. A job is graded once: a worker holds ``dlcourse:lock:KEY`` (renewed while
  it grades, expiring soon after it dies) and stores ``dlcourse:done:KEY``; a second delivery
  waits for the lock and returns the stored reply instead of grading again;
- a coordinator stopped and started again: ``dlcourse:queued:KEY`` says the job is already on
  the queue (not sent again); replies that arrived meanwhile are merged at once;
- a job whose worker never answers: once a worker has held it for ``job_timeout`` seconds without
  a reply, its row is an error that says so (the next run waits for it again, or takes its reply).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .messages import MAX_RERUNS, Job, MessageError, Result, _Message

QUEUE = "dlcourse-grade"
TASK = "dlcourse.grade"
PREFIX = "dlcourse:"
KEEP = 7 * 24 * 3600          # seconds replies, bundles and markers are kept in Redis
LOCK_TTL = 30                 # seconds a dead worker's lock outlives it
VISIBILITY_TIMEOUT = 3600     # seconds before an unacknowledged job is given to another worker


@dataclass
class Parcel(_Message):
    """One submission as it travels on the queue: no path, nothing of another student."""
    student: str
    assignment: str
    notebooks: dict[str, str]                # notebook name -> the rebuilt notebook (its text)
    key: str                                 # the job's key (also the Celery task id)
    bundle: str                              # SHA-256 of the assignment's shared files
    limits: dict[str, int]
    sandbox: bool                            # the coordinator's wish; a worker never grades unsandboxed unless started so
    trusted: dict[str, str]
    preload: list[str]
    stubs: dict[str, dict[str, str]]
    interface: list[str]
    max_reruns: int = MAX_RERUNS
    timeout: float = 0.0                     # wall seconds the grading process may take (0: from the limits)
    files: dict[str, str] = field(default_factory=dict)   # other files handed in: relative path -> base64
    preprocessors: list[str] = field(default_factory=list)   # autograde's (runner.autograde_preprocessors)


@dataclass
class Reply(_Message):
    """What a worker sends back."""
    result: dict                             # a Result, its `autograded` paths left empty
    autograded: dict[str, str]               # notebook name -> the autograded notebook (its text)
    worker: str                              # which worker graded it


def hard_limit(limits: dict, max_reruns: int) -> float:
    """The wall time a grading process may take (as the local runner allows)."""
    return limits["notebook_timeout"] * (max_reruns + 2) + 120


def make_app(url: str, *, visibility_timeout: float = VISIBILITY_TIMEOUT, restore_interval: float = 10):
    """The Celery application on ``url`` (JSON only: no pickle crosses the queue)."""
    from celery import Celery

    app = Celery("dlcourse", broker=url, set_as_current=False)
    transport = {"visibility_timeout": visibility_timeout, "unacked_restore_interval": restore_interval,
                 "unacked_restore_throttle": 1}
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_ignore_result=True,              # replies are kept under dlcourse:done:KEY (see the module)
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=QUEUE, broker_transport_options=transport,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_send_task_events=False, task_send_sent_event=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(_grade_task)
    return app


def _redis(url: str):
    import redis
    return redis.Redis.from_url(url)


# --- the assignment's bundle ------------------------------------------------------------------

def make_bundle(template_dir: Path, config: Path | None, source_dir: Path, package: str | None) -> bytes:
    """A reproducible tar.gz of what every job of the assignment shares (same files, same bytes)."""
    members: list[tuple[str, Path]] = [("gradebook.db", template_dir / "gradebook.db")]
    if config:
        members.append(("nbgrader_config.py", config))
    for item in sorted(source_dir.iterdir()):
        if item.is_file() and item.suffix != ".ipynb":      # as worker.grade copies them
            members.append((f"source/{item.name}", item))
    if package:
        root = Path(package)
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                members.append((f"package/{p.relative_to(root.parent)}", p))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, path in members:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    import gzip
    return gzip.compress(raw.getvalue(), mtime=0)


def fetch_bundle(r, digest: str, root: Path) -> Path:
    """The bundle ``digest``, unpacked under ``root/bundles`` (fetched from Redis once)."""
    dest = root / "bundles" / digest
    if (dest / "ok").exists():
        return dest
    data = r.get(PREFIX + "bundle:" + digest)
    if data is None:
        raise RuntimeError(f"the assignment's files (bundle {digest[:12]}) are not in the queue's store")
    if hashlib.sha256(data).hexdigest() != digest:
        raise RuntimeError(f"bundle {digest[:12]}: its content does not match its hash")
    tmp = Path(tempfile.mkdtemp(dir=root / "bundles", prefix=".tmp"))
    import gzip
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r") as tar:
        tar.extractall(tmp, filter="data")
    (tmp / "ok").write_text("")
    try:
        os.replace(tmp, dest)
    except OSError:          # another worker in the same folder got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --- the worker -------------------------------------------------------------------------------

class _WorkerState:
    root: Path = Path(".")
    name: str = ""
    sandbox: bool = True
    url: str = ""


STATE = _WorkerState()


def _queue_entry(job_path: str, log_path: str, cwd: str, env: dict) -> None:
    """A grading process started by a queue worker: it dies with the worker (a machine that is
    lost takes its jobs with it; the queue gives them to another worker)."""
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)    # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    from .runner import _worker_entry
    _worker_entry(job_path, log_path, cwd, env)


def _log(line: str) -> None:
    with open(STATE.root / "graded.log", "a") as f:
        f.write(f"{time.time():.3f} {line}\n")


def _grade_task(task, payload: dict) -> None:
    parcel = Parcel.from_dict(payload)
    r = _redis(STATE.url)
    done_key, lock_key = PREFIX + "done:" + parcel.key, PREFIX + "lock:" + parcel.key
    me = f"{STATE.name} {time.time():.3f}"
    while True:
        if r.exists(done_key):          # delivered again after its reply was stored: graded once
            _log(f"{parcel.key} {parcel.student} already-done")
            return None
        if r.set(lock_key, me, nx=True, ex=LOCK_TTL):
            break
        time.sleep(1)                   # another worker is grading it: wait for its reply or its death
    stop = threading.Event()

    def renew():
        while not stop.wait(LOCK_TTL / 3):
            r.set(lock_key, me, ex=LOCK_TTL)

    beat = threading.Thread(target=renew, daemon=True)
    beat.start()
    try:
        _log(f"{parcel.key} {parcel.student} start")
        reply = grade_parcel(parcel, r)
        r.set(done_key, reply.to_json(), ex=KEEP)
        _log(f"{parcel.key} {parcel.student} done {reply.result['status']}")
    finally:
        stop.set()
        beat.join()
        if r.get(lock_key) == me.encode():
            r.delete(lock_key)
    return None


def _encode_files(folder: str | None) -> dict[str, str]:
    """A submission's other files (written by the runner under ``folder``) for a Parcel."""
    if not folder:
        return {}
    root = Path(folder)
    return {p.relative_to(root).as_posix(): base64.b64encode(p.read_bytes()).decode()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def grade_parcel(parcel: Parcel, r) -> Reply:
    """Grade one parcel on this machine, as the local runner grades a job."""
    from ..release import nbgrader_env
    from . import sandbox
    from .runner import _context, _killpg

    root = STATE.root
    bundle = fetch_bundle(r, parcel.bundle, root)
    work = root / "jobs" / parcel.key[:24]
    if work.exists():
        shutil.rmtree(work)
    (work / "prepared").mkdir(parents=True)
    notebooks = {}
    for name, text in parcel.notebooks.items():
        if "/" in name or name.startswith("."):
            raise MessageError(f"Parcel.notebooks: not a notebook name: {name!r}")
        p = work / "prepared" / f"{name}.ipynb"
        p.write_text(text)
        notebooks[name] = str(p)
    files_dir = None
    if parcel.files:
        from .intake import write_files
        files_dir = work / "prepared-files"
        try:
            write_files({k: base64.b64decode(v, validate=True) for k, v in parcel.files.items()}, files_dir)
        except (ValueError, TypeError) as exc:
            raise MessageError(f"Parcel.files: not base64 ({exc})") from None
    scratch_root = Path(tempfile.mkdtemp(prefix="dlq", dir="/tmp" if Path("/tmp").is_dir() else None))
    os.chmod(scratch_root, 0o711)
    use_sandbox = STATE.sandbox or parcel.sandbox     # the queue is no way around the sandbox
    job = Job(student=parcel.student, assignment=parcel.assignment, notebooks=notebooks, timestamp=None,
              key=parcel.key, work=str(work), scratch=str(scratch_root / "s0"),
              uid=sandbox.sandbox_uid(0) if use_sandbox else None, template_db=str(bundle / "gradebook.db"),
              course_config=str(bundle / "nbgrader_config.py") if (bundle / "nbgrader_config.py").exists() else None,
              source_dir=str(bundle / "source"), limits=parcel.limits, sandbox=use_sandbox,
              forbidden=[str(root)], threads=max(1, os.cpu_count() or 1), trusted=parcel.trusted,
              preload=parcel.preload, stubs=parcel.stubs, interface=parcel.interface,
              package=str(bundle / "package" / "dlcourse") if (bundle / "package").exists() else None,
              max_reruns=parcel.max_reruns, files=str(files_dir) if files_dir else None,
              preprocessors=parcel.preprocessors)
    (bundle / "source").mkdir(exist_ok=True)
    job_path = work / "job.json"
    job_path.write_text(job.to_json())
    proc = _context().Process(target=_queue_entry, args=(str(job_path), str(work / "worker.log"), str(work),
                                                         nbgrader_env()), daemon=False)
    try:
        proc.start()
        (root / "running.json").write_text(json.dumps({"key": parcel.key, "pid": proc.pid}))
        proc.join(timeout=parcel.timeout or hard_limit(parcel.limits, parcel.max_reruns))
        if proc.exitcode is None:
            _killpg(proc)
            proc.join()
        _killpg(proc)
    finally:
        (root / "running.json").unlink(missing_ok=True)
        shutil.rmtree(scratch_root, ignore_errors=True)
    try:
        result = Result.from_json((work / "result.json").read_text())
    except (OSError, MessageError):
        result = Result(student=parcel.student, status="error", scores={}, autograded={},
                        problems=[f"the grader stopped on this submission (exit code {proc.exitcode})"])
    texts = {name: Path(path).read_text() for name, path in result.autograded.items() if Path(path).exists()}
    result.autograded, result.key = {}, parcel.key
    shutil.rmtree(work / "course", ignore_errors=True)      # the student's files leave with the reply
    shutil.rmtree(work / "prepared", ignore_errors=True)
    return Reply(result=asdict(result), autograded=texts, worker=STATE.name)


def run_worker(url: str, work: Path, *, name: str | None = None, use_sandbox: bool = True,
               visibility_timeout: float = VISIBILITY_TIMEOUT, restore_interval: float = 10,
               loglevel: str = "INFO") -> None:
    """``dlcourse worker``: take jobs from the queue at ``url`` one at a time, until stopped."""
    from . import sandbox
    from .worker import _cache_alembic_version

    if use_sandbox:
        sandbox.check_sandbox()
    STATE.root = work.resolve()
    (STATE.root / "bundles").mkdir(parents=True, exist_ok=True)
    os.chmod(STATE.root, 0o711)
    STATE.name = name or f"{socket.gethostname()}-{os.getpid()}"
    STATE.sandbox, STATE.url = use_sandbox, url
    _cache_alembic_version()
    _redis(url).ping()
    app = make_app(url, visibility_timeout=visibility_timeout, restore_interval=restore_interval)
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", QUEUE, "-n", f"{STATE.name}@%h",
                     f"--loglevel={loglevel}", "--without-gossip", "--without-mingle", "--prefetch-multiplier=1"])


# --- the coordinator --------------------------------------------------------------------------

def run_queued(opts, tmpl, settings, pending, copies, state, progress, gb, db_url) -> int:
    """Like :func:`runner._run_pending`, with the jobs graded by queue workers."""
    from . import runner

    url = opts.queue
    r = _redis(url)
    r.ping()
    if not pending:
        return 0
    app = make_app(url)
    data = make_bundle(tmpl["dir"], settings["config"], opts.course / settings["source"] / opts.assignment,
                       tmpl["package"])
    digest = hashlib.sha256(data).hexdigest()
    r.set(PREFIX + "bundle:" + digest, data, ex=KEEP)
    timeout = hard_limit(opts.limits.to_dict(), opts.max_reruns)
    job_timeout = opts.job_timeout or timeout + 60
    waiting: dict[str, str] = {}          # key -> first student
    for sid, spec in pending:
        key = spec["key"]
        waiting[key] = sid
        if opts.force:
            r.delete(PREFIX + "done:" + key, PREFIX + "queued:" + key)
        if r.exists(PREFIX + "done:" + key):
            continue
        parcel = Parcel(student=sid, assignment=opts.assignment, key=key, bundle=digest,
                        notebooks={n: Path(p).read_text() for n, p in spec["notebooks"].items()},
                        limits=opts.limits.to_dict(), sandbox=opts.use_sandbox, trusted=tmpl["trusted"],
                        preload=tmpl["preload"], stubs=tmpl["stubs"], interface=tmpl["interface"],
                        max_reruns=opts.max_reruns, timeout=timeout, files=_encode_files(spec.get("files")),
                        preprocessors=settings["preprocessors"])
        if r.set(PREFIX + "queued:" + key, str(time.time()), nx=True, ex=KEEP):
            app.send_task(TASK, args=[asdict(parcel)], task_id=key, queue=QUEUE)
        # else: an earlier run put it on the queue; wait for its reply
    seen: dict[str, tuple[bytes, float]] = {}     # key -> (the lock's holder, since when)
    count = 0
    while waiting:
        for key, first in list(waiting.items()):
            raw = r.get(PREFIX + "done:" + key)
            if raw is not None:
                result = _accept(opts, first, key, raw)
                if result["status"] == "error":       # try again next run
                    r.delete(PREFIX + "done:" + key, PREFIX + "queued:" + key)
            else:
                holder = r.get(PREFIX + "lock:" + key)
                if holder is None or seen.get(key, (None,))[0] != holder:
                    if holder is not None:
                        seen[key] = (holder, time.monotonic())
                    continue
                if time.monotonic() - seen[key][1] < job_timeout:
                    continue
                who = holder.decode(errors="replace").split()[0]
                result = {"student": first, "status": "error", "scores": {}, "autograded": {}, "key": key,
                          "problems": [f"timed out: the grading worker {who} gave no answer in {job_timeout:.0f} s "
                                       "(run the command again to wait for it or grade it again)"]}
                r.delete(PREFIX + "queued:" + key)
            del waiting[key]
            count += _record(opts, runner, result, first, copies, state, gb, progress)
        if waiting:
            time.sleep(0.3)
    return count


def _accept(opts, sid: str, key: str, raw: bytes) -> dict:
    """A worker's reply, written where the local run keeps a result (so a later run reuses it)."""
    reply = Reply.from_json(raw.decode())
    result = Result.from_dict(reply.result)
    folder = opts.out / ".work" / sid
    dest = folder / "course" / "autograded" / sid / opts.assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name, text in reply.autograded.items():
        if "/" in name or name.startswith("."):
            continue
        (dest / f"{name}.ipynb").write_text(text)
        result.autograded[name] = str(dest / f"{name}.ipynb")
    result.key = key
    result.student = sid
    if result.status != "error":
        (folder / "result.json").write_text(result.to_json())
    else:
        (folder / "result.json").unlink(missing_ok=True)
    return json.loads(result.to_json())


def _record(opts, runner, graded: dict, first: str, copies, state, gb, progress) -> int:
    """Merge one result, and its copies for identical submissions (as runner._run_pending does)."""
    count = 0
    for sid in [first, *copies.get(first, [])]:
        result = graded if sid == first else runner._copy_result(opts, graded, sid, graded["key"])
        st = state[sid]
        st["result"] = result
        st["status"] = result["status"]
        st["problems"] = st["problems"] + result["problems"]
        runner._merge_result(gb, opts, sid, result, st.get("keep", set()))
        count += 1
        total = sum((g.get("auto_score") or 0) for nb in result.get("scores", {}).values()
                    for g in nb["grades"].values())
        progress.update(sid, f"{total:g} points, {result['status']}")
    return count
