"""Grade one student's submission: ``python -m dlcourse.grading.worker SPEC.json``.

Each submission is graded by its own process in its own throwaway nbgrader course (a copy of a
template gradebook that holds only this assignment), so parallel workers never write to the same
SQLite file; the main process merges the results into the course's gradebook afterwards.

The worker runs nbgrader's ``autograde`` with :class:`~dlcourse.grading.execute.GuardedExecute`.
When a student's cell tampered with the grading machinery, killed or crashed the kernel, or
passed a resource limit, the worker replaces that cell with the released (unanswered) version,
and grades the notebook again: the submission scores exactly as if that cell had been left
unanswered, and every other answer keeps its points. The outcome goes to ``result.json``.
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
# What grading needs, imported at the top: the runner forks workers from a process that has
# imported this module once (see serve()).
import IPython  # noqa: F401,E402  (jupyter_client imports it to find kernel specs)
import nbclient  # noqa: F401,E402
import nbconvert.exporters  # noqa: F401,E402
import nbgrader.converters  # noqa: F401,E402
import sqlalchemy  # noqa: F401,E402
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.apps.api import NbGraderAPI  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402

from . import execute  # noqa: F401,E402
from . import sandbox as sb  # noqa: E402

GUARD_PREFIX = "DLCOURSE-GUARD "


def _config(spec: dict, course: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = Config()
    if spec.get("course_config"):
        path = Path(spec["course_config"])
        cfg.merge(PyFileConfigLoader(path.name, path=str(path.parent)).load_config())
    work = Path(spec["work"])
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = "feedback"
    cfg.CourseDirectory.release_directory = "release"
    cfg.Autograde.autograde_preprocessors = [
        "dlcourse.grading.execute.GuardedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    cfg.GuardedExecute.limits = spec["limits"]
    cfg.GuardedExecute.trusted = spec["trusted"]
    cfg.GuardedExecute.work_dir = str(work)
    cfg.SandboxedKernelManager.scratch = spec["scratch"]
    cfg.SandboxedKernelManager.log_path = str(work / "kernel.log")
    cfg.SandboxedKernelManager.use_sandbox = spec["sandbox"]
    cfg.SandboxedKernelManager.forbidden = spec["forbidden"]
    cfg.SandboxedKernelManager.threads = spec["threads"]
    cfg.SandboxedKernelManager.guard = {
        "nonce": spec["nonce"], "trusted": spec["trusted"], "preload": spec.get("preload", []),
        "uid": spec.get("uid"), "gid": spec.get("uid"),
        "limits": {"cpu_total": spec["limits"]["notebook_timeout"] * 4,
                   "address_space": spec["limits"]["memory"] + 6 * 2**30,
                   "processes": spec["limits"]["processes"] + 64,
                   "file_size": spec["limits"]["file_size"], "open_files": spec["limits"]["open_files"],
                   "uid": spec.get("uid")},
    }
    return cfg


def _guard_events(log: Path, nonce: str, start: int) -> list[dict]:
    events = []
    if not log.exists():
        return events
    with open(log, "rb") as f:
        f.seek(start)
        for raw in f:
            line = raw.decode("utf-8", "replace")
            if line.startswith(GUARD_PREFIX):
                try:
                    event = json.loads(line[len(GUARD_PREFIX):])
                except ValueError:
                    continue
                if event.get("nonce") == nonce:
                    events.append(event)
    return events


def _log_tail(log: Path, start: int, lines: int = 6) -> str:
    if not log.exists():
        return ""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read()[-20000:].decode("utf-8", "replace")
    keep = [line for line in text.splitlines() if line.strip() and not line.startswith(GUARD_PREFIX)]
    return "\n".join(keep[-lines:])


def find_culprit(record: dict, events: list[dict]) -> tuple[int, str] | None:
    """The student cell to grade as unanswered, and why; None if the run was clean."""
    sent = [c for c in record["cells"] if c["ran"]]
    before = {e["n"]: e for e in events if e.get("event") == "before"}
    after = {e["n"]: e for e in events if e.get("event") == "after"}
    stopped = record.get("stopped")

    def last_student_cell(upto: int) -> dict | None:
        for c in reversed(sent[:upto + 1]):
            if c["trusted"] is None:
                return c
        return None

    for n, cell in enumerate(sent, start=1):
        died_here = stopped is not None and stopped["index"] == cell["index"]
        event = before.get(n)
        if event is None or event.get("hash") != cell["hash"]:
            if died_here:
                break
            culprit = last_student_cell(n - 2) if cell["trusted"] else cell
            if culprit is not None:
                return culprit["index"], "it switched off the grader's checks (a test cell was not confirmed)"
            continue
        if event.get("flags"):
            culprit = last_student_cell(n - 2)
            if culprit is not None:
                return culprit["index"], "it changed the grading machinery (" + _summarise(event["flags"]) + ")"
        done = after.get(n)
        if done is not None and done.get("flags") and cell["trusted"] == "test":
            culprit = last_student_cell(n - 1)
            if culprit is not None:
                return culprit["index"], ("its code changed the grading machinery while the tests ran ("
                                          + _summarise(done["flags"]) + ")")
        if cell.get("timed_out") and cell["trusted"] is None:
            return cell["index"], cell["timed_out"]
        if died_here:
            break
    if stopped is not None and not stopped["reason"].startswith("the notebook ran out of time"):
        cell = next((c for c in sent if c["index"] == stopped["index"]), None)
        if cell is not None:
            culprit = cell if cell["trusted"] is None else last_student_cell(sent.index(cell))
            if culprit is not None:
                return culprit["index"], stopped["reason"]
    return None


def _summarise(flags: list[str]) -> str:
    shown = "; ".join(flags[:3])
    return shown + (f"; and {len(flags) - 3} more" if len(flags) > 3 else "")


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


def _interrupted_cells(path: Path, timeout: int) -> list[str]:
    """Cells stopped by the time limit (interrupted, then graded as they stood)."""
    nb = nbformat.read(path, as_version=4)
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" and o.get("ename") in ("KeyboardInterrupt", "CellTimeoutError")
               for o in cell.get("outputs", [])):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {i + 1}"
            out.append(f"{gid}: stopped by the time limit ({timeout} s per cell)")
    return out


def _cache_alembic_version() -> None:
    """nbgrader runs `alembic heads` in a subprocess every time it opens a gradebook (about a
    second each, several times per submission); the answer never changes within a run."""
    import functools
    import nbgrader.api
    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.lru_cache(maxsize=1)(nbgrader.api.get_alembic_version)


def grade(spec: dict) -> dict:
    t0 = time.monotonic()
    import warnings
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)
    _cache_alembic_version()
    work = Path(spec["work"])
    course = work / "course"
    if course.exists():
        shutil.rmtree(course)
    student, assignment = spec["student"], spec["assignment"]
    submitted = course / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    shutil.copy(spec["template_db"], course / "gradebook.db")
    source = course / "source" / assignment
    source.mkdir(parents=True)
    for item in Path(spec["source_dir"]).iterdir():
        if item.is_file() and item.suffix != ".ipynb":
            shutil.copy(item, source / item.name)
    for nb_name, path in spec["notebooks"].items():
        shutil.copy(path, submitted / f"{nb_name}.ipynb")
    if spec.get("timestamp"):
        (submitted / "timestamp.txt").write_text(spec["timestamp"])
    for old in list(work.glob("kernel-*.log")) + list(work.glob("execution-*.json")):
        old.unlink()

    problems: list[str] = []
    runs = 0
    deadline = t0 + spec["limits"]["notebook_timeout"] * (2 + spec.get("max_reruns", 3))
    result_status = "ok"
    offsets: dict[str, int] = {}
    while True:
        runs += 1
        for nb_name in spec["notebooks"]:
            log = work / f"kernel-{nb_name}.log"
            offsets[nb_name] = log.stat().st_size if log.exists() else 0
            (work / f"execution-{nb_name}.json").unlink(missing_ok=True)
        sb.make_scratch(Path(spec["scratch"]), spec.get("uid"))
        cfg = _config(spec, course)
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        outcome = api.autograde(assignment, student, force=True, create=True)
        if not outcome.get("success"):
            result_status = "error"
            tail = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()[-3:]
            problems.append("nbgrader could not grade it: " + " / ".join(tail))
            break
        found = None
        final_notes: list[str] = []
        for nb_name in spec["notebooks"]:
            record_path = work / f"execution-{nb_name}.json"
            record = json.loads(record_path.read_text()) if record_path.exists() else {"cells": [], "stopped": None}
            log = work / f"kernel-{nb_name}.log"
            events = _guard_events(log, spec["nonce"], offsets[nb_name])
            culprit = find_culprit(record, events)
            if culprit is not None:
                found = (nb_name, *culprit)
                break
            prefix = f"{nb_name}.ipynb: " if len(spec["notebooks"]) > 1 else ""
            stopped = record.get("stopped")
            if stopped:
                final_notes.append(f"{prefix}stopped: {stopped['reason']}; the cells after it were not run and score zero")
                ran = [c for c in record["cells"] if c["ran"]]
                if len(ran) <= 1:
                    final_notes.append(f"{prefix}kernel log: " + _log_tail(log, offsets[nb_name]).replace("\n", " / ")[-400:])
            for note in sorted({n for e in events for n in e.get("notes", [])}):
                final_notes.append(f"note: {prefix}a cell {note} (a check function); it was restored before the tests")
            if record.get("output_truncated"):
                final_notes.append(f"{prefix}output truncated at {spec['limits']['output'] // 1024} KiB")
        if found is None:
            problems.extend(final_notes)
            break
        nb_name, index, reason = found
        label = neutralise(submitted / f"{nb_name}.ipynb", index, spec["stubs"].get(nb_name, {}), reason)
        problems.append(f"{label}: {reason}; graded as unanswered")
        if runs > spec.get("max_reruns", 3) or time.monotonic() > deadline:
            problems.append("too many problems: gave up re-running; the last run's grades stand")
            break

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
    for nb_name in spec["notebooks"]:
        path = course / "autograded" / student / assignment / f"{nb_name}.ipynb"
        if path.exists():
            autograded[nb_name] = str(path)
            problems.extend(_interrupted_cells(path, spec["limits"]["cell_timeout"]))
    if result_status == "ok" and any(p for p in problems if not p.startswith(("note:", "output truncated"))):
        result_status = "problem"
    return {"student": student, "status": result_status, "problems": problems, "scores": scores,
            "timestamp": timestamp, "autograded": autograded, "runs": runs,
            "seconds": round(time.monotonic() - t0, 1)}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    out = Path(spec["work"]) / "result.json"
    try:
        result = grade(spec)
    except Exception:  # noqa: BLE001 - the batch must go on; the reason goes in the row
        result = {"student": spec["student"], "status": "error", "scores": {}, "autograded": {},
                  "problems": ["the grader failed on this submission: " + traceback.format_exc(limit=3).strip().splitlines()[-1]],
                  "runs": 0, "seconds": 0}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out)
    return 0


# --------------------------------------------------------------------------------------------
# the fork server: ``python -m dlcourse.grading.worker --serve``
# --------------------------------------------------------------------------------------------
def serve() -> int:
    """Fork a worker for every request: one JSON line on stdin, ``{"id", "spec", "log", "cwd",
    "env"}``. Answers on stdout, one JSON line each: ``{"id", "pid"}`` when the worker has
    started, ``{"pid", "code"}`` when it has ended. Ends when stdin closes and its workers have.

    This process has imported nbgrader and the grading modules once; each worker is a fresh
    fork of it (no student code ever runs here or in a worker: only in the sandboxed kernel), so
    a submission does not pay for starting Python and importing nbgrader again."""
    import select

    sb.clean_sys_path()          # computed once (a subprocess), inherited by every worker
    _cache_alembic_version()
    stdin = sys.stdin.buffer.fileno()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    children: set[int] = set()
    buffer, reading = b"", True
    while reading or children:
        if reading and select.select([stdin], [], [], 0.1)[0]:
            chunk = os.read(stdin, 65536)
            reading = bool(chunk)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _run_forked(request, [stdin, out.fileno()])
                children.add(pid)
                out.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
        elif not reading:
            time.sleep(0.1)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            out.write(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n")
    return 0


def _run_forked(request: dict, close: list[int]) -> None:
    """The worker, in the forked child: its own session, its log, its environment; never returns."""
    import signal

    code = 1
    try:
        os.setsid()                      # the runner kills the whole group at the end
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        code = main([request["spec"]])
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # the runner ends it (closes its stdin)
        sys.exit(serve())
    sys.exit(main())
