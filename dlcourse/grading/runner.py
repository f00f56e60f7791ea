"""``dlcourse grade``: grade a whole class, in parallel, sandboxed, into the course's gradebook.

1. A *template* course is made once per run: the assignment's instructor notebook released by
   ``nbgrader generate_assignment`` into a throwaway gradebook. It gives the released notebook
   (to rebuild submissions from) and the locked cells (which the guard trusts).
2. Each submission is found, rebuilt from the release (:mod:`~dlcourse.grading.intake`) and handed
   to a worker process (:mod:`~dlcourse.grading.worker`), at most ``jobs`` at a time. A worker
   grades in its own copy of the template gradebook, so no two processes write one SQLite file.
3. As each worker finishes, this process alone merges its result into the course's gradebook
   (:mod:`~dlcourse.grading.gradebook`) and copies the autograded notebook to
   ``<course>/autograded/`` for the formgrader.
4. Feedback pages, ``grades.csv``, the summary table and the figure are written last.

Every worker's result is kept in ``OUT/.work/<student>/result.json`` with a key made of the
rebuilt notebook, the assignment and the limits: a second run reuses it (re-running is cheap and
idempotent), and a run that was interrupted resumes with the students it had not finished.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import feedback as fb
from . import gradebook as gbm
from . import caps, intake, neutral, report, sandbox
from ..release import nbgrader_env
from .checker import bound_names
from .kernel import code_hash, setup_imports
from .messages import MAX_RERUNS, Job, MessageError, Result

GRADER_VERSION = "2"


@dataclass
class Options:
    assignment: str
    submissions: Path
    out: Path
    jobs: int = 0
    course: Path = field(default_factory=Path.cwd)
    db_url: str | None = None
    use_sandbox: bool = True
    show_hidden: bool = False
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    force: bool = False
    quiet: bool = False
    feedback: bool = True
    max_reruns: int = MAX_RERUNS
    queue: str | None = None            # a Redis URL: graded by `dlcourse worker`s (see jobqueue)
    job_timeout: float | None = None    # with queue: seconds a worker may hold a job without answering
    autograded_directory: str = "autograded"   # the course's (set by grade from nbgrader_config.py)


@dataclass
class Outcome:
    rows: list[dict]
    summary: str
    csv: Path
    figure: Path
    graded: int
    reused: int
    seconds: float


def _is_note(problem: str) -> bool:
    """A message that is not a problem: "note: ...", or "problem1.ipynb: note: ..." in an
    assignment of several notebooks."""
    text = problem.split(".ipynb: ", 1)[1] if re.match(r"[^:\n]{1,200}\.ipynb: ", problem) else problem
    return text.startswith(("note:", "output truncated"))


def load_config(config_file: Path | None):
    """The course's nbgrader configuration (a traitlets Config; empty without a file)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = Config()
    if config_file:
        cfg.merge(PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config())
    return cfg


def course_settings(course: Path) -> dict:
    """source/release folders, course id and gradebook URL from the course's nbgrader_config.py."""
    path = course / "nbgrader_config.py"
    cfg = load_config(path if path.exists() else None)
    cd = cfg.get("CourseDirectory", {})
    return {"source": cd.get("source_directory", "source"), "release": cd.get("release_directory", "release"),
            "course_id": cd.get("course_id", "default_course"),
            "db_url": cd.get("db_url", f"sqlite:///{course / 'gradebook.db'}"),
            "config": path if path.exists() else None,
            "cfg": cfg,                          # the whole configuration, read once per run
            "timeout": cfg.get("Execute", {}).get("timeout"),
            "autograded": cd.get("autograded_directory", "autograded"),
            "preprocessors": autograde_preprocessors(cfg),
            # files the release is built from besides the source folder (part of the template's key)
            "extra_sources": [course / v for v in (cfg.get("IncludeHeaderFooter", {}).get(t) for t in ("header", "footer"))
                              if isinstance(v, str) and v and (course / v).is_file()]}


def autograde_preprocessors(cfg) -> list[str]:
    """The course's ``Autograde.autograde_preprocessors`` (nbgrader's own list if it sets none), as
    the worker runs them: nbgrader's ``Execute`` replaced by the sandboxed
    :class:`~dlcourse.grading.execute.GuardedExecute`, every other preprocessor kept in its
    place with the course's settings. A list without ``Execute``, or with a subclass of it of the
    course's own (which would run the student's code its own way), is refused."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    listed = cfg.get("Autograde", {}).get("autograde_preprocessors")
    if listed is None:
        listed = Autograde.class_traits()["autograde_preprocessors"].default()
    out = []
    for item in listed:
        if isinstance(item, str):
            from traitlets.utils.importstring import import_item
            try:
                cls = import_item(item)
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"nbgrader_config.py: Autograde.autograde_preprocessors names {item!r}, which "
                                 f"cannot be imported ({type(exc).__name__}: {exc})") from None
        else:
            cls = item
        if cls is Execute:
            out.append("dlcourse.grading.execute.GuardedExecute")
        elif isinstance(cls, type) and issubclass(cls, Execute):
            raise ValueError(f"nbgrader_config.py: Autograde.autograde_preprocessors runs {cls.__module__}."
                             f"{cls.__qualname__}, an Execute of the course's own: dlcourse grade runs the "
                             "student's code only in its sandbox; grade this course with nbgrader autograde, or "
                             "list nbgrader.preprocessors.Execute instead")
        else:
            out.append(f"{cls.__module__}.{cls.__qualname__}")
    if "dlcourse.grading.execute.GuardedExecute" not in out:
        raise ValueError("nbgrader_config.py: Autograde.autograde_preprocessors has no Execute: dlcourse grade "
                         "runs the notebooks; list nbgrader.preprocessors.Execute, or grade with nbgrader autograde")
    return out


def check_kernels(release: dict) -> None:
    """dlcourse grade runs Python notebooks: a notebook for another language is refused (nbgrader
    would start that language's kernel). A Python notebook's own kernel (a conda environment's,
    say) is replaced by the course's Python in the sandbox, which has the course's packages."""
    for name, nb in release.items():
        spec = nb.metadata.get("kernelspec") or {}
        language = spec.get("language") or (nb.metadata.get("language_info") or {}).get("name") or "python"
        if str(language).lower() != "python":
            raise ValueError(f"{name}.ipynb is a {language} notebook (kernel {spec.get('name')!r}): dlcourse grade "
                             "grades Python notebooks only; grade this assignment with nbgrader autograde")


class Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.done, self.quiet = total, 0, quiet
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()

    def update(self, student: str, text: str):
        self.done += 1
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] {self.done}/{self.total}  {student}: {text}  ({elapsed:.0f} s, about {eta:.0f} s left)"
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line[:200])
            if self.done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def make_template(opts: Options, settings: dict, work: Path) -> dict:
    """Release the assignment into a throwaway course; return what grading needs from it."""
    src = opts.course / settings["source"] / opts.assignment
    if not src.is_dir() or not any(src.glob("*.ipynb")):
        known = sorted(p.name for p in (opts.course / settings["source"]).iterdir()
                       if p.is_dir() and any(p.glob("*.ipynb"))) if (opts.course / settings["source"]).is_dir() else []
        raise ValueError(f"assignment: expected one of {', '.join(known) or '(none)'} "
                         f"(folders of {opts.course / settings['source']}), got {opts.assignment!r}")
    key = intake.digest(*(p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()),
                        (settings["config"].read_bytes() if settings["config"] else b""),
                        *(p.read_bytes() for p in settings.get("extra_sources", [])), GRADER_VERSION)[:16]
    tmpl = work / "_template" / key
    if not (tmpl / "ok").exists():
        if tmpl.exists():
            shutil.rmtree(tmpl)
        (tmpl / "source").mkdir(parents=True)
        shutil.copytree(src, tmpl / "source" / opts.assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if settings["config"]:
            shutil.copy(settings["config"], tmpl / "nbgrader_config.py")
        _generate(tmpl, opts.assignment, settings["config"], source_directory="source",
                  release_directory="release", db_url=f"sqlite:///{tmpl / 'gradebook.db'}")
        (tmpl / "ok").write_text("")
    release = {p.stem: nbformat.read(p, as_version=4) for p in sorted((tmpl / "release" / opts.assignment).glob("*.ipynb"))}
    source = {p.stem: nbformat.read(p, as_version=4) for p in sorted((tmpl / "source" / opts.assignment).glob("*.ipynb"))}
    trusted: dict[str, str] = {}
    secret_lines: list[str] = []
    imports: list[str] = []
    from nbgrader.api import Gradebook
    delims = fb.delimiters(settings["config"])
    with Gradebook(f"sqlite:///{tmpl / 'gradebook.db'}") as gb:
        for nb in gb.find_assignment(opts.assignment).notebooks:
            answers = {c.name for c in nb.solution_cells}
            for cell in nb.source_cells:
                secret_lines += fb.hidden_lines(cell.source, *delims)
                graded = any(g.name == cell.name for g in nb.grade_cells)
                # a test cell runs in the checker even when the course leaves it unlocked
                # (LockCells.lock_grade_cells = False): the rebuilt notebook has the release's
                # source for every cell that is not an answer cell
                if cell.cell_type == "code" and (cell.locked or (graded and cell.name not in answers)):
                    trusted[code_hash(cell.source)] = "test" if graded else "given"
                    if not graded:
                        imports += setup_imports(cell.source)
    stubs = {name: {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                    if intake.is_answer_cell(c)} for name, nb in release.items()}
    # The names a test may look up in the student's kernel: those the answer cells define.
    interface: set[str] = set()
    off_limits: list[str] = []
    for nb in source.values():
        off_limits += list(nb.metadata.get("dlcourse", {}).get("off_limits", []))
        for c in nb.cells:
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"):
                interface |= bound_names(c.source)
    package = None
    if off_limits:
        package = str(sandbox.filtered_package(sorted(set(off_limits)), tmpl / "package"))
    cells = []
    for name, nb in source.items():
        for c in nb.cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells.append((name, meta["grade_id"], float(meta.get("points", 0)), not meta.get("solution", False)))
            elif meta.get("task"):      # graded by hand, like a written answer
                cells.append((name, meta["grade_id"], float(meta.get("points", 0)), False))
    return {"dir": tmpl, "key": key, "release": release, "trusted": trusted, "stubs": stubs, "cells": cells,
            "preload": list(dict.fromkeys(imports)), "interface": sorted(interface), "package": package,
            "secret_lines": sorted(set(secret_lines))}


def ensure_assignment(opts: Options, settings: dict, db_url: str, tmpl: dict) -> None:
    """Add the assignment to the course's gradebook as ``nbgrader generate_assignment`` does, if
    it is not there yet (the release goes to the template's folder, not the course's)."""
    if gbm.has_assignment(db_url, settings["course_id"], opts.assignment):
        return
    _generate(tmpl["dir"], opts.assignment, settings["config"], source_directory="source",
              release_directory="release-course", db_url=db_url, course_id=settings["course_id"])


def _generate(root: Path, assignment: str, config_file: Path | None, **coursedir) -> None:
    """nbgrader's generate_assignment in this process (a subprocess would import nbgrader again:
    seconds of CPU before any submission is graded)."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = load_config(config_file)
    if config_file:
        # nbgrader reads a relative header or footer from the folder it runs in, the course's: this
        # release is made in another folder.
        for trait in ("header", "footer"):
            value = cfg.get("IncludeHeaderFooter", {}).get(trait)
            if isinstance(value, str) and value and not os.path.isabs(value):
                setattr(cfg.IncludeHeaderFooter, trait, str(config_file.parent / value))
    cfg.CourseDirectory.root = str(root)
    for key, value in coursedir.items():
        setattr(cfg.CourseDirectory, key, value)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        where = coursedir.get("db_url", "")
        # nbgrader's error says "see the above traceback": the traceback is in its log
        raise RuntimeError(f"nbgrader generate_assignment {assignment} ({where}) failed:\n"
                           + (result.get("log") or "")[-3000:] + "\n" + (result.get("error") or "")[-1000:])


def grade(opts: Options) -> Outcome:
    t0 = time.monotonic()
    import warnings
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)   # nbgrader's own, harmless
    from .worker import _cache_alembic_version
    _cache_alembic_version()
    # nbgrader's Gradebook runs `alembic` from PATH: this interpreter's bin first.
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    opts.course = opts.course.resolve()
    opts.out = opts.out.resolve()
    opts.submissions = opts.submissions.resolve()
    if opts.use_sandbox and not opts.queue:     # with a queue, each worker checks its own
        sandbox.check_sandbox()
    jobs = opts.jobs or os.cpu_count() or 1
    if not opts.queue:
        # The forkserver imports nbgrader and TensorFlow (seconds): start it now, so that it does
        # so while the assignment is released and the submissions are read.
        import multiprocessing.forkserver
        _context()
        multiprocessing.forkserver.ensure_running()
    settings = course_settings(opts.course)
    opts.autograded_directory = settings["autograded"]
    db_url = opts.db_url or settings["db_url"]
    if db_url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the course installs psycopg2.
        import importlib.util
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            db_url = "postgresql+psycopg2://" + db_url.split("://", 1)[1]
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{(opts.course / db_url[len('sqlite:///'):]).resolve()}"
    work = opts.out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    tmpl = make_template(opts, settings, work)
    ensure_assignment(opts, settings, db_url, tmpl)
    check_kernels(tmpl["release"])
    names = list(tmpl["release"])
    release_ids = {name: {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                          if c.metadata.get("nbgrader", {}).get("grade_id")} for name, nb in tmpl["release"].items()}
    source_root = opts.course / settings["source"]
    others = {p.name for p in source_root.iterdir() if p.is_dir()} if source_root.is_dir() else set()
    others |= set(gbm.assignments(db_url, settings["course_id"]))
    subs = intake.collect(opts.submissions, opts.assignment, names, release_ids=release_ids,
                          other_assignments=others)
    enrolled = set(gbm.roster(db_url, settings["course_id"]))
    students = sorted(set(subs) | enrolled)
    # nbgrader's Autograde.create_student = False: a submission of someone not in the gradebook is
    # not graded (nbgrader autograde refuses it)
    create_student = settings["cfg"].get("Autograde", {}).get("create_student", True)
    limits = opts.limits
    state: dict[str, dict] = {}
    pending: list[tuple[str, dict]] = []
    # Submissions whose rebuilt notebooks are identical (untouched releases, one file submitted
    # twice) are graded once: first student -> the others.
    copies: dict[str, list[str]] = {}
    first_with_key: dict[str, str] = {}
    for sid in students:
        sub = subs.get(sid)
        if sub is None:
            state[sid] = {"status": "missing", "problems": ["no submission"]}
            continue
        problems = list(sub.problems)
        if not create_student and sid not in enrolled:
            state[sid] = {"status": "unknown", "problems": problems + [
                f"{sid} is not a student in the gradebook and nbgrader_config.py sets Autograde.create_student = "
                f"False, so (as with nbgrader autograde) it was not graded: add the student (nbgrader db student "
                f"add {sid}) and run again"]}
            continue
        if sub.conflict:    # two submissions claim this id: the instructor decides, nothing is graded
            state[sid] = {"status": "conflict", "problems": problems}
            continue
        prepared: dict[str, bytes] = {}
        keep: set[str] = set()      # notebooks whose stored grades stay (handed in, but not readable)
        for name in names:
            raw = sub.files.get(name)
            if raw is None:
                if sub.named_by_student and len(names) > 1:
                    # one loose file cannot hold several notebooks: the others were not handed in
                    # here, which says nothing about them
                    keep.add(name)
                    problems.append(f"{name}.ipynb is not in the single notebook file handed in (one file "
                                    f"holds one notebook; hand in a folder or a zip): its stored grades stay")
                else:
                    problems.append(f"{name}.ipynb is missing from the submission")
                continue
            try:
                nb, why = intake.rebuild(raw, tmpl["release"][name])
                data = nbformat.writes(nb).encode() if nb is not None else None
            except Exception as exc:  # noqa: BLE001 -- one file must never stop the class
                nb, data, why = None, None, [f"the notebook could not be read ({type(exc).__name__})"]
            problems += [f"{name}.ipynb: {w}" if len(names) > 1 else w for w in why]
            if data is not None:
                prepared[name] = data
            else:
                keep.add(name)
        state_time = {"timestamp": sub.timestamp, "keep": keep}     # time as collected, set in _finish
        if not prepared:
            state[sid] = {"status": "broken", "problems": problems, **state_time}
            continue
        # (the submission time is not part of the key: identical notebooks are graded once)
        others = sorted(sub.other_files.items())
        key = intake.digest(*(prepared[n] for n in sorted(prepared)), tmpl["key"], json.dumps(limits.to_dict()),
                            str(opts.use_sandbox), GRADER_VERSION, *(x for item in others for x in item))
        folder = work / sid
        result_path = folder / "result.json"
        if not opts.force and result_path.exists():
            try:
                cached = json.loads(result_path.read_text())
            except ValueError:
                cached = {}
            if cached.get("key") == key and all(Path(p).exists() for p in cached.get("autograded", {}).values()):
                state[sid] = {"status": cached["status"], "problems": problems + cached["problems"],
                              "result": cached, "reused": True, **state_time}
                continue
        state[sid] = {"status": "pending", "problems": problems, **state_time}
        if key in first_with_key:
            copies[first_with_key[key]].append(sid)
            continue
        first_with_key[key] = sid
        copies[sid] = []
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prepared").mkdir(exist_ok=True)
        paths = {}
        for name, data in prepared.items():
            p = folder / "prepared" / f"{name}.ipynb"
            p.write_bytes(data)
            paths[name] = str(p)
        files_dir = folder / "prepared-files"
        if files_dir.exists():
            shutil.rmtree(files_dir)
        if others:
            intake.write_files(dict(others), files_dir)
        pending.append((sid, {"student": sid, "assignment": opts.assignment, "notebooks": paths,
                              "timestamp": None, "key": key, "files": str(files_dir) if others else None}))

    progress = Progress(len(students), opts.quiet)
    for sid in students:
        if state[sid]["status"] != "pending":
            progress.update(sid, _short(state[sid]))
    with gbm.open_gradebook(db_url, settings["course_id"]) as gb:
        for sid in students:     # reused and broken submissions: (re)merge, cheap and idempotent
            st = state[sid]
            if st["status"] == "broken":
                if gbm.has_grades(gb, opts.assignment, sid):
                    # never a lower grade because a new file could not be read
                    st["kept"] = True
                    st["problems"].append("the grades stored before in the gradebook stay (this submission "
                                          "could not be graded)")
                else:
                    gbm.merge(gb, opts.assignment, sid, None)
            elif st.get("reused"):
                _merge_result(gb, opts, sid, st["result"], st.get("keep", set()))
        if opts.queue:
            from .jobqueue import run_queued
            graded = run_queued(opts, tmpl, settings, pending, copies, state, progress, gb, db_url)
        else:
            graded = _run_pending(opts, tmpl, settings, pending, copies, state, jobs, progress, gb, db_url)

    rows = _finish(opts, settings, db_url, tmpl, students, state)
    return Outcome(rows=rows["rows"], summary=rows["summary"], csv=opts.out / "grades.csv",
                   figure=opts.out / "scores.png", graded=graded,
                   reused=sum(1 for s in state.values() if s.get("reused")), seconds=time.monotonic() - t0)


def _short(st: dict) -> str:
    if st["status"] in ("missing", "broken"):
        return st["status"] + ": " + (st["problems"][0] if st["problems"] else "")
    return st["status"] + (" (reused)" if st.get("reused") else "")


def _merge_result(gb, opts: Options, sid: str, result: dict, keep: set[str] = frozenset()) -> None:
    if not result.get("scores") and gbm.has_grades(gb, opts.assignment, sid):
        # the grader could not grade it (its own failure, or nothing readable): what is stored stays
        result["kept"] = True
        result["problems"].append("the grades stored before in the gradebook stay (this submission could not "
                                  "be graded)")
    else:
        gbm.merge(gb, opts.assignment, sid, result if result.get("scores") else None, keep)
    dest = opts.course / opts.autograded_directory / sid / opts.assignment
    for name, path in result.get("autograded", {}).items():
        dest.mkdir(parents=True, exist_ok=True)
        if Path(path).resolve() != (dest / f"{name}.ipynb").resolve():
            note = caps.copy_notebook(Path(path), dest / f"{name}.ipynb")   # bounded where it is written
            if note and note not in result["problems"]:
                result["problems"].append(note)


def _copy_result(opts: Options, result: dict, sid: str, key: str) -> dict:
    """The result of an identical notebook, for student ``sid``, with its own autograded copy."""
    folder = opts.out / ".work" / sid
    dest = folder / "course" / "autograded" / sid / opts.assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    autograded = {}
    for name, path in result.get("autograded", {}).items():
        shutil.copy(path, dest / f"{name}.ipynb")
        autograded[name] = str(dest / f"{name}.ipynb")
    copy = dict(json.loads(json.dumps(result)), student=sid, autograded=autograded, key=key)
    if copy["status"] != "error":
        (folder / "result.json").write_text(json.dumps(copy, indent=1))
    else:
        (folder / "result.json").unlink(missing_ok=True)
    return copy


def _context():
    """multiprocessing's forkserver: a process that imports the grading modules (nbgrader, and
    TensorFlow for the checker) once and forks every worker from there, so a submission does not
    pay for those imports. Not "fork" (this process has threads), not "spawn" (imports again)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dlcourse.grading.preload"])
    return ctx


def _run_pending(opts, tmpl, settings, pending, copies, state, jobs, progress, gb, db_url) -> int:
    if not pending:
        return 0
    scratch_root = Path(tempfile.mkdtemp(prefix="dlg", dir="/tmp" if Path("/tmp").is_dir() else None))
    os.chmod(scratch_root, 0o711)
    slots: queue.Queue[int] = queue.Queue()
    for i in range(jobs):
        slots.put(i)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    forbidden = [opts.course, opts.submissions, opts.out, Path(db_url[len("sqlite:///"):]).parent
                 if db_url.startswith("sqlite:///") else opts.course]
    running: dict = {}
    lock = threading.Lock()
    hard_limit = opts.limits.notebook_timeout * (opts.max_reruns + 2) + 120
    ctx = _context()
    env = nbgrader_env()

    def run_one(sid: str, spec: dict) -> Result:
        slot = slots.get()
        try:
            folder = opts.out / ".work" / sid
            job = Job(**spec, work=str(folder), scratch=str(scratch_root / f"s{slot}"),
                      uid=sandbox.sandbox_uid(slot) if opts.use_sandbox else None,
                      template_db=str(tmpl["dir"] / "gradebook.db"),
                      course_config=str(settings["config"]) if settings["config"] else None,
                      source_dir=str(opts.course / settings["source"] / opts.assignment),
                      limits=opts.limits.to_dict(), sandbox=opts.use_sandbox, forbidden=[str(p) for p in forbidden],
                      threads=threads, trusted=tmpl["trusted"], preload=tmpl["preload"], stubs=tmpl["stubs"],
                      interface=tmpl["interface"], package=tmpl["package"], max_reruns=opts.max_reruns,
                      preprocessors=settings["preprocessors"])
            job_path = folder / "job.json"
            job_path.write_text(job.to_json())
            (folder / "result.json").unlink(missing_ok=True)
            proc = ctx.Process(target=_worker_entry, args=(str(job_path), str(folder / "worker.log"), str(folder), env),
                               daemon=False)
            with _main_hidden():
                proc.start()
            with lock:
                running[sid] = proc
            try:
                proc.join(timeout=hard_limit)
                if proc.exitcode is None:
                    _killpg(proc)
                    proc.join()
            finally:
                with lock:
                    running.pop(sid, None)
            _killpg(proc)   # nothing may outlive its worker
            try:
                result = Result.from_json((folder / "result.json").read_text())
            except (OSError, MessageError):
                tail = (folder / "worker.log").read_text(errors="replace").strip().splitlines()[-1:] \
                    if (folder / "worker.log").exists() else []
                result = Result(student=sid, status="error", scores={}, autograded={},
                                problems=[f"the grader stopped on this submission (exit code {proc.exitcode})"
                                          + (f": {tail[0][:200]}" if tail else "")])
            result.key = spec["key"]
            if result.status != "error":
                (folder / "result.json").write_text(result.to_json())
            else:
                (folder / "result.json").unlink(missing_ok=True)   # try again next time
            return result
        finally:
            shutil.rmtree(scratch_root / f"s{slot}", ignore_errors=True)
            shutil.rmtree(scratch_root / f"s{slot}-checker", ignore_errors=True)
            slots.put(slot)

    count = 0
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(run_one, sid, spec): sid for sid, spec in pending}
    try:
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in done:
                first = futures[fut]
                graded = json.loads(fut.result().to_json())
                for sid in [first, *copies.get(first, [])]:
                    result = graded if sid == first else _copy_result(opts, graded, sid, graded["key"])
                    st = state[sid]
                    st["result"] = result
                    st["status"] = result["status"]
                    st["problems"] = st["problems"] + result["problems"]
                    _merge_result(gb, opts, sid, result, st.get("keep", set()))
                    count += 1
                    total = sum((g.get("auto_score") or 0) for nb in result.get("scores", {}).values()
                                for g in nb["grades"].values())
                    progress.update(sid, f"{total:g} points, {result['status']}")
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        with lock:
            for proc in running.values():
                _killpg(proc)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        shutil.rmtree(scratch_root, ignore_errors=True)
    return count


_MAIN_LOCK = threading.Lock()


class _main_hidden:
    """While a worker is started, hide the caller's main module from multiprocessing.

    multiprocessing's forkserver makes every child import the parent's ``__main__`` script again
    (as ``__mp_main__``) unless that script guards its code with ``if __name__ == "__main__"``.
    Measured here: an instructor's unguarded script that calls ``runner.grade`` was re-run in
    every worker, deleting the folders the first run had made. The workers need nothing from
    ``__main__`` (their target is :func:`_worker_entry`), so the parent's main module is hidden
    from ``multiprocessing.spawn.get_preparation_data`` while a worker starts."""

    def __enter__(self):
        _MAIN_LOCK.acquire()
        main = sys.modules.get("__main__")
        self.saved = {}
        if main is not None:
            for attr in ("__file__", "__spec__"):
                if attr in vars(main):
                    self.saved[attr] = vars(main)[attr]
            vars(main).pop("__file__", None)
            vars(main)["__spec__"] = None
        return self

    def __exit__(self, *exc):
        main = sys.modules.get("__main__")
        try:
            if main is not None:
                vars(main).pop("__spec__", None)
                vars(main).update(self.saved)
        finally:
            _MAIN_LOCK.release()


def _worker_entry(job_path: str, log_path: str, cwd: str, env: dict) -> None:
    from .worker import run_job
    run_job(job_path, log_path, cwd, env)


def _killpg(proc) -> None:
    if proc.pid is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass


MAX_PROBLEMS = 20      # messages kept per row (each is cut to neutral.MAX_MESSAGE characters)


def _bound_feedback(folder: Path, assignment: str, row: dict, secret_lines: list[str]) -> list[str]:
    """Check the written feedback pages: a page that shows a line of the hidden tests, or is over
    caps.MAX_PAGE_BYTES, is replaced by a page with the scores. Returns messages for the row."""
    problems = []
    scores = [(gid, "to grade by hand" if manual else f"{score:g} of {points:g}")
              for gid, (score, points, manual) in row["cells"].items()]
    title = f"{assignment}: feedback for {row['export']['student_id']}"
    for page in sorted(folder.glob("*.html")):
        if page.stat().st_size <= caps.MAX_PAGE_BYTES and \
                fb.leaked_lines(page.read_text(errors="replace"), secret_lines):
            caps.bound_page(page, title, "Your feedback page was withheld: it would have shown the hidden tests.",
                            scores, cap=-1)
            problems.append(f"{page.name}: feedback withheld (it showed lines of the hidden tests)")
        elif caps.bound_page(page, title, f"Your feedback page was more than {caps.MAX_PAGE_BYTES // 2**20} MiB; "
                                          "here are your scores.", scores):
            problems.append(f"{page.name}: feedback page over {caps.MAX_PAGE_BYTES // 2**20} MiB, replaced by the scores")
    return problems


def _finish(opts, settings, db_url, tmpl, students, state) -> dict:
    out = opts.out
    # the students whose submission this run recorded (not missing ones, not conflicts, not those
    # whose new file could not be graded and whose stored grades stay)
    recorded = [sid for sid in students if state[sid]["status"] not in ("missing", "conflict", "unknown")
                and not state[sid].get("kept") and not state[sid].get("result", {}).get("kept")]
    with gbm.open_gradebook(db_url, settings["course_id"]) as gb:
        # the submission time as collected, never one a grading process reported
        gbm.set_timestamps(gb, opts.assignment, {sid: state[sid].get("timestamp") for sid in recorded})
        gbm.apply_late_penalties(gb, opts.assignment, recorded, settings["cfg"])
        stored = {sid for sid in students if state[sid]["status"] == "missing"
                  and gbm.has_grades(gb, opts.assignment, sid)}
        exported = gbm.export_rows(gb, opts.assignment, students)
    visible = {line.strip() for nb in tmpl["release"].values() for c in nb.cells for line in c.source.splitlines()}
    secret_lines = [line for line in tmpl["secret_lines"] if line not in visible]
    rows = []
    for sid in students:
        st = state[sid]
        status = st["status"]
        problems = [neutral.printable(p) for p in dict.fromkeys(st["problems"] + st.get("result", {}).get("problems", []))
                    if p]
        problems = problems[:MAX_PROBLEMS] + ([f"... and {len(problems) - MAX_PROBLEMS} more"]
                                             if len(problems) > MAX_PROBLEMS else [])
        if sid in stored:
            problems.append("the grades stored before in the gradebook stay; the feedback page is the one "
                            "released before, if any")
        if status == "ok" and any(not _is_note(p) for p in problems):
            status = "problem"
        rows.append({**exported[sid], "status": status, "problems": problems})
    if opts.feedback:
        fb_root = out / "feedback"
        for row in rows:
            sid = row["export"]["student_id"]
            folder = fb_root / sid / opts.assignment
            if sid in stored or state[sid].get("kept") or state[sid].get("result", {}).get("kept"):
                continue        # its grades were not changed: nor is the feedback it was given
            if folder.exists():
                shutil.rmtree(folder)
            if row["status"] == "unknown":
                continue
            if row["status"] == "conflict":     # the other submission's name is not this student's to see
                fb.write_problem_page(fb_root, sid, opts.assignment, [
                    "more than one submission carries your student id; your instructor decides which is yours"])
                continue
            if row["status"] in ("missing", "broken", "error") and not state[sid].get("result", {}).get("autograded"):
                fb.write_problem_page(fb_root, sid, opts.assignment, row["problems"])
                continue
            res = fb.generate(opts.course, db_url, settings["course_id"], opts.assignment, sid, fb_root,
                              show_hidden=opts.show_hidden, config_file=settings["config"],
                              secret_lines=secret_lines)
            if not res.get("success"):
                row["problems"].append("feedback could not be generated: "
                                       + (res.get("error") or "").strip().splitlines()[-1:][0][:200]
                                       if res.get("error") else "feedback could not be generated")
            elif not opts.show_hidden:
                row["problems"] += _bound_feedback(folder, opts.assignment, row, secret_lines)
    report.write_csv(out / "grades.csv", rows, tmpl["cells"])
    report.figure(out / "scores.png", rows, tmpl["cells"], opts.assignment)
    text = report.summary(rows, tmpl["cells"], opts.assignment)
    (out / "summary.txt").write_text(text + "\n")
    return {"rows": rows, "summary": text}
