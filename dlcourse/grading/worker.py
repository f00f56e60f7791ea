"""Grade one student's submission: a :class:`~dlcourse.grading.messages.Job` in, a
:class:`~dlcourse.grading.messages.Result` out.

Each submission is graded by its own process in its own throwaway nbgrader course (a copy of a
template gradebook that holds only this assignment), so parallel workers never write to the same
SQLite file; the coordinating process merges the results into the course's gradebook afterwards.

The worker first forks its *checker* (:mod:`~dlcourse.grading.checker`), the trusted kernel in
which the test cells and locked cells run, then runs nbgrader's ``autograde`` with
:class:`~dlcourse.grading.execute.GuardedExecute`, which runs the answer cells in the student's
sandboxed kernel. When a student's cell killed or crashed the kernel or passed a resource or time
limit, the worker replaces that cell with the released (unanswered) version and grades the
notebook again: the submission scores exactly as if that cell had been left unanswered, and
every other answer keeps its points.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import nbformat
# What grading needs, imported at the top: workers are forked from a process that has imported
# this module (multiprocessing's forkserver, see runner), and each worker forks its checker.
import IPython  # noqa: F401,E402  (jupyter_client imports it to find kernel specs)
import nbclient  # noqa: F401,E402
import nbconvert.exporters  # noqa: F401,E402
import nbgrader.converters  # noqa: F401,E402
import sqlalchemy  # noqa: F401,E402
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.apps.api import NbGraderAPI  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402

from . import checker as checker_module  # noqa: E402
from . import execute  # noqa: E402
from . import sandbox as sb  # noqa: E402
from .messages import Job, Result  # noqa: E402

def _config(job: Job, course: Path, checker: dict):
    cfg = _course_config(job)
    work = Path(job.work)
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = "feedback"
    cfg.CourseDirectory.release_directory = "release"
    # the course's list (nbgrader's by default), its Execute replaced by the sandboxed one
    cfg.Autograde.autograde_preprocessors = job.preprocessors or [
        "dlcourse.grading.execute.GuardedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    cfg.GuardedExecute.limits = job.limits
    cfg.GuardedExecute.trusted = job.trusted
    cfg.GuardedExecute.work_dir = str(work)
    cfg.GuardedExecute.checker = checker
    cfg.SandboxedKernelManager.scratch = job.scratch
    cfg.SandboxedKernelManager.log_path = str(work / "kernel.log")
    cfg.SandboxedKernelManager.use_sandbox = job.sandbox
    cfg.SandboxedKernelManager.forbidden = job.forbidden
    cfg.SandboxedKernelManager.threads = job.threads
    cfg.SandboxedKernelManager.extra_ro_binds = [str(Path(checker["socket"]).parent)]
    cfg.SandboxedKernelManager.package = job.package or ""
    # Each sandbox's share of the cores and a memory bound, where control groups can be had (the
    # watchdog's own memory limit, just below it, usually stops a notebook first, with a message).
    cfg.SandboxedKernelManager.cgroup_cpus = float(job.threads)
    cfg.SandboxedKernelManager.cgroup_memory = job.limits["memory"] + 2**29
    cfg.SandboxedKernelManager.guard = {"preload": job.preload, "uid": job.uid, "gid": job.uid,
                                        "limits": kernel_limits(job.limits, job.uid)}
    return cfg


def _course_ignore(job: Job) -> list[str]:
    """``CourseDirectory.ignore`` of the course (nbgrader's default without one)."""
    return list(CourseDirectory(config=_course_config(job)).ignore)


def _course_config(job: Job):
    from .runner import load_config
    return load_config(Path(job.course_config) if job.course_config else None)


def kernel_limits(limits: dict, uid: int | None) -> dict:
    """The rlimits of a kernel (the student's, or the checker's) from the job's limits."""
    return {"cpu_total": limits["notebook_timeout"] * 4, "address_space": limits["memory"] + 6 * 2**30,
            "processes": limits["processes"] + 64, "file_size": limits["file_size"],
            "open_files": limits["open_files"], "uid": uid}


def _log_tail(log: Path, start: int, lines: int = 6) -> str:
    if not log.exists():
        return ""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read()[-20000:].decode("utf-8", "replace")
    keep = [line for line in text.splitlines() if line.strip()]
    return "\n".join(keep[-lines:])


def find_culprit(record: dict) -> tuple[int, str] | None:
    """The student cell to grade as unanswered, and why; None if the run was clean.

    A student's cell that ran out of time is the culprit; so is the cell where the student's
    kernel died or passed a limit, or, when that happened while a locked cell ran (the test
    called the student's function, say), the last student cell before it."""
    sent = [c for c in record["cells"] if c["ran"]]
    stopped = record.get("stopped")

    def last_student_cell(upto: int) -> dict | None:
        for c in reversed(sent[:upto + 1]):
            if c["trusted"] is None:
                return c
        return None

    for cell in sent:
        if cell.get("timed_out") and cell["trusted"] is None:
            return cell["index"], cell["timed_out"]
        if stopped is not None and stopped["index"] == cell["index"]:
            break
    if stopped is not None and not stopped["reason"].startswith("the notebook ran out of time"):
        cell = next((c for c in sent if c["index"] == stopped["index"]), None)
        if cell is not None:
            culprit = cell if cell["trusted"] is None else last_student_cell(sent.index(cell))
            if culprit is not None:
                return culprit["index"], stopped["reason"]
    return None


def neutralise(nb_path: Path, index: int, stubs: dict, reason: str = "") -> str:
    """Replace cell ``index`` of the submitted notebook by its released stub, under a comment that
    says why (the feedback and the formgrader show it); returns the cell's label."""
    import textwrap

    nb = nbformat.read(nb_path, as_version=4)
    cell = nb.cells[index]
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    note = (f"Graded as unanswered: {reason}." if reason else "Graded as unanswered.") + (
        " The grader ran this cell as it was released instead; the code you wrote is unchanged in your"
        " own notebook.")
    header = "".join(f"# {line}\n" for line in textwrap.wrap(note, 88))
    if gid in stubs:
        cell.source = header + stubs[gid]
        label = f"answer cell {gid}"
    else:
        cell.source = header
        label = f"a cell the student added (cell {index + 1})"
    nbformat.write(nb, nb_path)
    return label


def _interrupted_cells(record: dict, timeout: int) -> list[str]:
    """Cells the time limit stopped (interrupted, then graded as they stood), from the grader's
    own record (never from an error's name, which the student's code chooses)."""
    return [f"{c.get('grade_id') or 'cell ' + str(c['index'] + 1)}: stopped by the time limit ({timeout} s per cell)"
            for c in record.get("cells", []) if c.get("timed_out")]


def _cache_alembic_version() -> None:
    """nbgrader runs `alembic heads` in a subprocess every time it opens a gradebook (about a
    second each, several times per submission); the answer never changes within a run."""
    import functools
    import nbgrader.api
    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.lru_cache(maxsize=1)(nbgrader.api.get_alembic_version)


def start_checker(job: Job, *, fork: bool = True) -> execute.CheckerProcess:
    """The checker kernel for this submission, in a folder beside the sandbox's scratch folder
    (its socket folder is the only part the sandbox sees, read-only).

    The checker runs as the grader's own user, outside bubblewrap: it runs only the course's own
    code (locked cells and tests) and reads only plain data (:mod:`.wire`), never student code.
    A sandbox of its own would have to start a new Python process and import TensorFlow again
    (about 4.5 CPU-seconds per submission, measured here), where a fork of this worker costs
    0.1 s; it keeps the address-space, file-size and open-file limits of a kernel, so that data
    sent to it cannot exhaust the machine's memory."""
    folder = Path(job.scratch + "-checker")
    if folder.exists():
        shutil.rmtree(folder)
    limits = {k: v for k, v in kernel_limits(job.limits, None).items() if k not in ("cpu_total", "processes", "uid")}
    privileges = {"uid": None, "threads": job.threads, "limits": limits}
    if fork:
        return execute.CheckerProcess.fork(folder, Path(job.work) / "checker.log", privileges)
    return execute.CheckerProcess.spawn(folder, privileges, Path(job.work) / "checker.log")


def _off_limits_used(path: Path) -> list[str]:
    """Reference answers the notebook's code tried to use (their stubs raise a message that says so)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = " ".join([str(out.get("evalue", "")), *map(str, out.get("traceback", []))]) \
                if out.get("output_type") == "error" else str(out.get("text", ""))
            for word in text.split():
                if word.startswith("dlcourse.") and f"{word} {sb.OFF_LIMITS_MESSAGE}" in text:
                    found.append(word.rstrip(".:,'\""))
    return sorted(set(found))


def grade(job: Job) -> Result:
    t0 = time.monotonic()
    import warnings
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)
    _cache_alembic_version()
    work = Path(job.work)
    course = work / "course"
    if course.exists():
        shutil.rmtree(course)
    student, assignment = job.student, job.assignment
    submitted = course / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    shutil.copy(job.template_db, course / "gradebook.db")
    source = course / "source" / assignment
    source.mkdir(parents=True)
    # The assignment's other files (data beside the notebook, in subfolders too): nbgrader's
    # autograde copies them over the student's, except those the course's
    # ``Autograde.exclude_overwriting`` names.
    ignore = _course_ignore(job)
    from nbgrader.utils import find_all_files
    for item in find_all_files(job.source_dir, ignore + ["*.ipynb"]):
        target = source / os.path.relpath(item, job.source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(item, target)
    if job.files:       # what the student handed in beside the notebooks
        shutil.copytree(job.files, submitted, dirs_exist_ok=True)
    for nb_name, path in job.notebooks.items():
        shutil.copy(path, submitted / f"{nb_name}.ipynb")
    if job.timestamp:
        (submitted / "timestamp.txt").write_text(job.timestamp)
    for old in list(work.glob("kernel-*.log")) + list(work.glob("execution-*.json")):
        old.unlink()

    checker = start_checker(job, fork=True)
    checker_seconds = 0.0
    problems: list[str] = []
    runs = 0
    deadline = t0 + job.limits["notebook_timeout"] * (2 + job.max_reruns)
    result_status = "ok"
    offsets: dict[str, int] = {}
    try:
        while True:
            runs += 1
            if runs > 1:
                # A fresh checker for every run: nothing of a run that was stopped (a checker stuck
                # on what the student's code handed over) carries on. Started as a new process, not
                # forked: after the first run this process has threads (nbclient's, the logs'), and
                # a fork of it was seen to hang before the checker started.
                checker.stop()
                checker_seconds += checker.cpu_seconds
                checker = start_checker(job, fork=False)
            for nb_name in job.notebooks:
                log = work / f"kernel-{nb_name}.log"
                offsets[nb_name] = log.stat().st_size if log.exists() else 0
                (work / f"execution-{nb_name}.json").unlink(missing_ok=True)
            sb.make_scratch(Path(job.scratch), job.uid)
            info = {**checker.info(), "interface": job.interface,
                    "given": [h for h, kind in job.trusted.items() if kind == "given"]}
            cfg = _config(job, course, info)
            api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
            outcome = api.autograde(assignment, student, force=True, create=True)
            if not outcome.get("success"):
                result_status = "error"
                tail = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()[-3:]
                problems.append("nbgrader could not grade it: " + " / ".join(tail))
                break
            found = None
            final_notes: list[str] = []
            for nb_name in job.notebooks:
                record_path = work / f"execution-{nb_name}.json"
                record = json.loads(record_path.read_text()) if record_path.exists() else {"cells": [], "stopped": None}
                log = work / f"kernel-{nb_name}.log"
                culprit = find_culprit(record)
                if culprit is not None:
                    found = (nb_name, *culprit)
                    break
                prefix = f"{nb_name}.ipynb: " if len(job.notebooks) > 1 else ""
                stopped = record.get("stopped")
                if stopped:
                    final_notes.append(f"{prefix}stopped: {stopped['reason']}; the cells after it were not run and score zero")
                    ran = [c for c in record["cells"] if c["ran"]]
                    if len(ran) <= 1:
                        final_notes.append(f"{prefix}kernel log: " + _log_tail(log, offsets[nb_name]).replace("\n", " / ")[-400:])
                if record.get("output_truncated"):
                    final_notes.append(f"{prefix}output truncated at {job.limits['output'] // 1024} KiB")
            if found is None:
                problems.extend(final_notes)
                break
            nb_name, index, reason = found
            label = neutralise(submitted / f"{nb_name}.ipynb", index, job.stubs.get(nb_name, {}), reason)
            problems.append(f"{label}: {reason}; graded as unanswered")
            if runs > job.max_reruns or time.monotonic() > deadline:
                problems.append("too many problems: gave up re-running; the last run's grades stand")
                break
    finally:
        checker.stop()
        checker_seconds += checker.cpu_seconds

    scores: dict = {}
    timestamp = None
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            sub = gb.find_submission(assignment, student)
            timestamp = sub.timestamp.isoformat() if sub.timestamp else None
            for nb in sub.notebooks:
                scores[nb.name] = {
                    "grades": {g.name: {"auto_score": g.auto_score, "max_score": g.max_score,
                                        "needs_manual_grade": g.needs_manual_grade} for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                }
        except Exception as exc:  # noqa: BLE001
            result_status = "error"
            problems.append(f"no grades recorded: {exc}")
    autograded = {}
    off_limits: list[str] = []
    for nb_name in job.notebooks:
        path = course / "autograded" / student / assignment / f"{nb_name}.ipynb"
        if path.exists():
            autograded[nb_name] = str(path)
            record_path = work / f"execution-{nb_name}.json"
            if record_path.exists():
                problems.extend(_interrupted_cells(json.loads(record_path.read_text()), job.limits["cell_timeout"]))
            off_limits += _off_limits_used(path)
    for name in off_limits:
        problems.append(f"its code tried to use {name}, the course's reference answer, which is off limits while grading")
    from .runner import _is_note
    if result_status == "ok" and any(p for p in problems if not _is_note(p)):
        result_status = "problem"
    return Result(student=student, status=result_status, problems=problems, scores=scores, timestamp=timestamp,
                  autograded=autograded, runs=runs, seconds=round(time.monotonic() - t0, 1), key=job.key,
                  off_limits=off_limits, checker_seconds=round(checker_seconds, 2))


def main(job_path: str) -> int:
    """Grade the job in ``job_path`` and write ``result.json`` beside it (atomically)."""
    job = Job.from_json(Path(job_path).read_text())
    out = Path(job.work) / "result.json"
    try:
        result = grade(job)
    except Exception:  # noqa: BLE001 - the batch must go on; the reason goes in the row
        result = Result(student=job.student, status="error", scores={}, autograded={}, key=job.key,
                        problems=["the grader failed on this submission: "
                                  + traceback.format_exc(limit=3).strip().splitlines()[-1]])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(result.to_json())
    os.replace(tmp, out)
    return 0


def run_job(job_path: str, log_path: str, cwd: str, env: dict) -> None:
    """The entry point of a worker process (started by the runner through multiprocessing's
    forkserver): its own session (the runner kills the whole group at the end), its log, its
    environment."""
    import signal

    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    code = 1
    try:
        code = main(job_path)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def preload() -> None:
    """What the forkserver imports once, before it forks any worker: this module (nbgrader), the
    checker's modules (TensorFlow, via Keras) and the sandbox's clean sys.path."""
    checker_module.preload()
    sb.clean_sys_path()
    _cache_alembic_version()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
