"""``dlcourse grade`` on a corpus of honest, broken and cheating CNN submissions.

The whole corpus (tests/grading/corpus.py) is graded once, in parallel, in a throwaway course;
each test then checks one row of the result. Fair means: a cheat scores exactly what the same
submission scores with that cell unanswered (graded in the same run), and no submission changes
another's grade. Safe means: the sandbox's probes were all blocked, and nothing is left running.
"""
from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nbtools import ROOT

sys.path.insert(0, str(Path(__file__).parent / "grading"))
import corpus  # noqa: E402

from dlcourse.grading import runner, sandbox  # noqa: E402

MARKER = str(900000 + os.getpid() % 99999)   # digits: the probes run `sleep MARKER`


def require_bwrap():
    """Fail (never skip) when bubblewrap is missing or cannot make a sandbox here."""
    if not sandbox.bwrap_path():
        pytest.fail("bubblewrap (bwrap) is not installed: `make test` installs it as root "
                    "(.ci/system-deps.sh); otherwise `sudo apt-get install bubblewrap`")
    try:
        sandbox.check_sandbox()
    except sandbox.SandboxUnavailable as exc:
        pytest.fail(str(exc))


class Listener:
    """A TCP server on loopback that records whether anything connected (it must not)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()


def make_course(tmp: Path) -> Path:
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions" / "cnn", course / "solutions" / "cnn")
    return course


# Small limits, so that the fork bomb and the memory hog are stopped quickly even on a busy
# machine (a kernel with TensorFlow imported has about 40 threads and uses about 0.5 GiB).
LIMITS = sandbox.Limits(cell_timeout=corpus.CELL_TIMEOUT, cell_cpu=120, notebook_timeout=240, memory=2 * 2**30,
                        processes=120)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require_bwrap()
    tmp = tmp_path_factory.mktemp("grading")
    course = make_course(tmp)
    subs = tmp / "submissions"
    listener = Listener()
    paths = {"solutions": str(course / "solutions" / "cnn" / "cnn.ipynb"), "gradebook": str(course / "gradebook.db"),
             "other": str(subs / "honest" / "cnn" / "cnn.ipynb"), "tests": str(ROOT / "tests" / "nbtools.py"),
             "course": str(course), "repository": str(ROOT / "solutions" / "cnn" / "cnn.ipynb")}
    corpus.build(subs, MARKER, listener.port, paths)
    # A student of the class who submitted nothing: known to the gradebook.
    from nbgrader.api import Gradebook
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "dlcourse") as gb:
        gb.add_student("missing")
    opts = runner.Options(assignment="cnn", submissions=subs, out=tmp / "out", jobs=2, course=course,
                          limits=LIMITS, quiet=True)
    start, started = time.monotonic(), time.time()
    outcome = runner.grade(opts)
    elapsed = time.monotonic() - start
    listener.close()
    rows = {r["export"]["student_id"]: r for r in outcome.rows}
    yield {"outcome": outcome, "rows": rows, "opts": opts, "course": course, "subs": subs, "tmp": tmp,
           "listener": listener, "elapsed": elapsed, "started": started}


def cell_scores(row):
    return {gid: score for gid, (score, _, manual) in row["cells"].items() if not manual}


@pytest.mark.parametrize("student", sorted(corpus.CASES))
def test_corpus_outcome(graded, student):
    how, status, score, reference, words = corpus.CASES[student]
    rows = graded["rows"]
    assert student in rows, f"{student} ({how}) has no row"
    row = rows[student]
    problems = " | ".join(row["problems"])
    assert row["status"] == status, f"{student} ({how}): status {row['status']}, problems: {problems}"
    assert float(row["export"]["score"]) == score, f"{student} ({how}): score {row['export']['score']}, problems: {problems}"
    for word in words:
        assert word in problems, f"{student} ({how}): {word!r} not in problems: {problems}"
    if reference is not None:
        assert cell_scores(row) == cell_scores(rows[reference]), \
            f"{student} ({how}) is not graded as {reference}: {cell_scores(row)} vs {cell_scores(rows[reference])}"


def test_corpus_has_at_least_15_kinds_of_bad_submissions():
    bad = [s for s, case in corpus.CASES.items() if case[1] != "ok" or case[3] not in (None, "honest")
           or s in ("huge_output", "sandbox_probes", "renamed", "zipped", "loose")]
    assert len(bad) >= 15, bad


def test_honest_scores_are_nbgraders(graded):
    """Part by part, what nbgrader gives: full points for an answered part, zero otherwise."""
    rows = graded["rows"]
    points = corpus.POINTS
    expected = {gid: points[gid] if gid in ("part1_tests", "part2_tests", "part3_tests") else 0.0
                for gid in points if gid != "written_answer"}
    assert cell_scores(rows["honest"]) == expected
    assert rows["honest"]["cells"]["written_answer"][2] is True, "a written answer waits for manual grading"
    # nbgrader gives an unchanged written answer 0 points at once, with no manual grading.
    assert cell_scores(rows["blank"]) == {gid: 0.0 for gid in points}


def test_sandbox_blocked_every_probe_and_nothing_is_left_running(graded):
    import nbformat
    nb = nbformat.read(graded["course"] / "autograded" / "sandbox_probes" / "cnn" / "cnn.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for probe in ("read-solutions", "read-gradebook", "read-other-students", "read-tests",
                  "read-repository-solutions", "list-course",
                  "network", "write-outside", "write-package"):
        assert f"{probe} blocked" in text, f"{probe}: {text[:2000]}"
    assert "ESCAPED" not in text
    assert "started background processes" in text
    assert graded["listener"].connections == 0
    assert not Path(f"/var/tmp/{MARKER}-escape").exists()
    leftovers = subprocess.run(["pgrep", "-f", f"sleep {MARKER[-6:]}"], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
    assert leftover_sandboxes(since=graded["started"]) == []


def leftover_sandboxes(scratch: Path | None = None, since: float | None = None) -> list[str]:
    """Kernels (and their bubblewrap) whose scratch folder is gone, or is ``scratch``: the run that
    started them has finished, so they should not exist (a run in progress elsewhere is not
    counted). With ``since`` (a time.time()), also bubblewrap processes started since then that
    were never reaped (zombies left to an init that may not reap them)."""
    import psutil
    found = []
    for proc in psutil.process_iter(["cmdline", "name", "status", "create_time"]):
        cmd = proc.info["cmdline"] or []
        if "dlcourse.grading.kernel" in cmd and "-f" in cmd[:-1]:
            connection = cmd[cmd.index("-f") + 1]
            if not os.path.exists(connection) or (scratch and connection.startswith(str(scratch))):
                found.append(f"{proc.pid}: {' '.join(cmd)[:200]}")
        elif since and proc.info["name"] == "bwrap" and proc.info["status"] == psutil.STATUS_ZOMBIE \
                and proc.info["create_time"] >= since:
            found.append(f"{proc.pid}: bwrap, never reaped")
    return found


def test_grades_csv_has_a_row_per_student_with_export_columns(graded):
    with open(graded["outcome"].csv) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["student_id"] for r in rows) == sorted(corpus.CASES)
    for col in ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                "raw_score", "late_submission_penalty", "score", "max_score", "status", "problems"):
        assert col in rows[0]
    by = {r["student_id"]: r for r in rows}
    assert by["malformed_json"]["status"] == "broken" and "not valid JSON" in by["malformed_json"]["problems"]
    assert by["honest"]["score"] == "5.0" and by["honest"]["max_score"] == f"{sum(corpus.POINTS.values()):.1f}" == "14.0"


def test_gradebook_has_every_submitted_student(graded):
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", "dlcourse") as gb:
        assert gb.find_submission("cnn", "honest").score == 5
        assert gb.find_submission("cnn", "malformed_json").score == 0
        with pytest.raises(MissingEntry):
            gb.find_submission("cnn", "missing")


def page_text(path: Path) -> str:
    """A feedback page as its reader sees it: no tags (code is highlighted token by token)."""
    import html
    import re
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_feedback_hides_hidden_tests_and_shows_failures(graded):
    out = graded["opts"].out / "feedback"
    page = page_text(out / "wrong_answer" / "cnn" / "cnn.html")
    assert "do not flip the kernel" in page                      # the failed check's hint
    assert "BEGIN HIDDEN TESTS" not in page
    assert "_rng = np.random.default_rng(12)" not in page         # a hidden line of part 1
    assert "lines of hidden tests (not shown)" in page
    # print(In) in the student's kernel shows the cells it ran: the hidden tests never ran there.
    assert "print(In)" in page and "default_rng(12)" not in page
    broken = (out / "malformed_json" / "cnn" / "index.html").read_text()
    assert "not valid JSON" in broken
    assert (out / "missing" / "cnn" / "index.html").exists()


def test_feedback_can_show_hidden_tests(graded, tmp_path):
    from dlcourse.grading import feedback
    settings = runner.course_settings(graded["course"])
    res = feedback.generate(graded["course"], f"sqlite:///{graded['course'] / 'gradebook.db'}", "dlcourse", "cnn",
                            "wrong_answer", tmp_path, show_hidden=True, config_file=settings["config"], secret_lines=[])
    assert res["success"], res
    assert "_rng = np.random.default_rng(12)" in page_text(tmp_path / "wrong_answer" / "cnn" / "cnn.html")


def test_report_summary_and_figure(graded):
    outcome = graded["outcome"]
    assert outcome.figure.exists() and outcome.figure.stat().st_size > 10_000
    assert "part1_tests" in outcome.summary and "students with problems" in outcome.summary


def test_rerun_is_idempotent_and_keeps_manual_grades(graded):
    """Grade a manual answer and comment in the gradebook (as the formgrader does), change one
    student's submission, run again: only that one is regraded, manual work survives."""
    from nbgrader.api import Gradebook
    course, opts = graded["course"], graded["opts"]
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db, "dlcourse") as gb:
        grade = gb.find_grade("written_answer", "cnn", "cnn", "honest")
        grade.manual_score = 1.5
        comment = gb.find_comment("written_answer", "cnn", "cnn", "honest")
        comment.manual_comment = "Good, but say where 208 comes from."
        gb.db.commit()
    before = (opts.out / "grades.csv").read_text()
    import nbformat
    path = graded["subs"] / "blank" / "cnn" / "cnn.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("I ran out of time."))
    nbformat.write(nb, path)
    again = runner.grade(opts)
    assert again.graded == 1 and again.reused >= 20
    with Gradebook(db, "dlcourse") as gb:
        assert gb.find_grade("written_answer", "cnn", "cnn", "honest").manual_score == 1.5
        assert gb.find_comment("written_answer", "cnn", "cnn", "honest").manual_comment.startswith("Good")
        assert gb.find_submission("cnn", "honest").score == 6.5
        assert len(gb.find_assignment("cnn").submissions) == len(corpus.CASES) - 1
    after = {r["student_id"]: r for r in csv.DictReader(open(opts.out / "grades.csv"))}
    old = {r["student_id"]: r for r in csv.DictReader(before.splitlines())}
    for sid in old:
        if sid != "honest":
            assert after[sid]["score"] == old[sid]["score"], sid
    assert "Good, but" in (opts.out / "feedback" / "honest" / "cnn" / "cnn.html").read_text()


def test_refuses_without_bubblewrap_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    from dlcourse.__main__ import main
    code = main(["grade", "cnn", "--submissions", str(tmp_path), "--out", str(tmp_path / "out"), "--course", str(ROOT)])
    assert code == 2


def test_unknown_assignment_is_a_clear_error(tmp_path, capsys):
    require_bwrap()
    from dlcourse.__main__ import main
    code = main(["grade", "nope", "--submissions", str(tmp_path), "--out", str(tmp_path / "out"), "--course", str(ROOT)])
    assert code == 1
    err = capsys.readouterr().err
    assert "assignment" in err and "cnn" in err and "'nope'" in err


# --- the kernel's time limit, without TensorFlow: a notebook of plain Python cells -------------
def run_guarded(tmp_path, sources, cell_timeout=3, cgroup_cpus=0.0):
    """Run code cells in the sandboxed, guarded kernel as the worker does; return the executed
    notebook and the execution record."""
    import json

    import nbformat
    from traitlets.config import Config

    from dlcourse.grading.execute import GuardedExecute
    require_bwrap()
    scratch = sandbox.make_scratch(tmp_path / "scratch", None)
    cfg = Config()
    cfg.SandboxedKernelManager.scratch = str(scratch)
    cfg.SandboxedKernelManager.log_path = str(tmp_path / "kernel.log")
    cfg.SandboxedKernelManager.forbidden = [str(ROOT)]
    cfg.SandboxedKernelManager.guard = {"limits": {}}
    cfg.SandboxedKernelManager.cgroup_cpus = cgroup_cpus
    limits = sandbox.Limits(cell_timeout=cell_timeout, notebook_timeout=120)
    ex = GuardedExecute(config=cfg, limits=limits.to_dict(), work_dir=str(tmp_path))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start, started = time.monotonic(), time.time()
    nb, _ = ex.preprocess(nb, {"unique_key": "t"})
    record = json.loads((tmp_path / "execution-t.json").read_text())
    record["seconds"] = time.monotonic() - start
    record["started"] = started
    return nb, record


def test_an_infinite_loop_is_interrupted_and_the_notebook_goes_on(tmp_path):
    """A cell over its wall-time limit gets KeyboardInterrupt (the kernel runs in bubblewrap's PID
    namespace, so the grader signals its real PID), and the next cells run."""
    nb, record = run_guarded(tmp_path, ["while True:\n    pass", "print('after the loop')"])
    first, second = record["cells"]
    assert "interrupted" in first["timed_out"] and "could not" not in first["timed_out"], first
    assert record["stopped"] is None and "timed_out" not in second
    assert "after the loop" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert leftover_sandboxes(tmp_path, since=record["started"]) == []


def test_a_loop_that_ignores_interrupts_is_killed(tmp_path):
    """A loop that catches KeyboardInterrupt keeps the kernel busy: when the next cell runs out of
    time too, the sandbox is killed and the rest of the notebook is not run."""
    loop = "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass"
    nb, record = run_guarded(tmp_path, [loop, "x = 1", "print('never')"])
    assert "could not be interrupted" in record["cells"][0]["timed_out"]
    assert "could not be interrupted" in record["stopped"]["reason"]
    assert "NotRun" in [o.get("ename") for o in nb.cells[2].outputs]
    assert record["seconds"] < 60
    assert leftover_sandboxes(tmp_path, since=record["started"]) == []


BURN = """
import threading, time
import numpy as np
a = np.random.default_rng(0).random((300, 300))
def burn():
    end = time.perf_counter() + 4
    while time.perf_counter() < end:
        a @ a
threads = [threading.Thread(target=burn) for _ in range(3)]
cpu, wall = time.process_time(), time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
print("cores used:", (time.process_time() - cpu) / (time.perf_counter() - wall))
"""


def test_each_sandbox_gets_its_share_of_the_cores_and_no_more(tmp_path):
    """A notebook that burns three cores gets the one core its control group allows, so it cannot
    take a neighbour's share (root, with cgroups; elsewhere the reason is known and said)."""
    from dlcourse.grading import cgroups
    if cgroups.unavailable():
        pytest.skip(f"no control groups here: {cgroups.unavailable()}")
    nb, record = run_guarded(tmp_path, [BURN], cell_timeout=30, cgroup_cpus=1.0)
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    used = float(text.split("cores used:")[1].split()[0])
    assert used < 1.3, f"the sandbox used {used:.2f} cores with a share of 1"
    assert not list(Path("/sys/fs/cgroup").glob(f"*/dlcourse-{os.getpid()}-*")), "control groups left behind"


def test_what_the_kernel_writes_to_its_own_log_is_bounded_where_it_is_written(tmp_path):
    """os.write to file descriptors 1 and 2 bypasses the notebook's output cap: it goes to the
    kernel's log, outside the scratch folder, which keeps at most execute.LOG_CAP bytes."""
    from dlcourse.grading import execute
    cell = "import os, sys\nfor _ in range(40):\n    os.write(1, b'x' * 2**18)\n    os.write(2, b'y' * 2**18)\n    sys.__stderr__.write('z' * 2**18)"
    nb, record = run_guarded(tmp_path, [cell], cell_timeout=30)
    log = tmp_path / "kernel-t.log"
    assert log.exists() and log.stat().st_size <= execute.LOG_CAP + 200, log.stat().st_size
    assert b"log truncated" in log.read_bytes()[-200:]


# --- intake, without a kernel -----------------------------------------------------------------
def test_rebuilt_notebook_is_the_same_every_time():
    """Cells a student added get ids from their position, not random ones: the rebuilt notebook
    is the key of the saved results, so an unchanged submission is never graded twice."""
    import nbformat

    from dlcourse.grading import intake
    release = nbformat.read(ROOT / "exercises" / "cnn" / "cnn.ipynb", as_version=4)
    nb = corpus._nb(corpus.FAST)
    nb.cells.insert(3, nbformat.v4.new_code_cell("print('my own cell')"))
    nb.cells.append(nbformat.v4.new_markdown_cell("my notes"))
    raw = nbformat.writes(nb).encode()
    first, second = (nbformat.writes(intake.rebuild(raw, release)[0]) for _ in range(2))
    assert first == second
    assert "my own cell" in first and "my notes" in first


def test_intake_reads_every_layout_and_names_problems_plainly(tmp_path):
    import io
    import zipfile

    import nbformat

    from dlcourse.grading import intake
    text = nbformat.writes(corpus._nb(corpus.FAST))
    (tmp_path / "ann" / "cnn").mkdir(parents=True)
    (tmp_path / "ann" / "cnn" / "cnn.ipynb").write_text(text)
    (tmp_path / "ben" / "cnn").mkdir(parents=True)
    (tmp_path / "ben" / "cnn" / "Copy of cnn.ipynb").write_text(text)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cal/cnn.ipynb", text)
    (tmp_path / "cal.zip").write_bytes(buf.getvalue())
    (tmp_path / "dee.ipynb").write_text(text)
    (tmp_path / "eve_cnn.ipynb").write_text(text[:3000])
    subs = intake.collect(tmp_path, "cnn", ["cnn"])
    assert sorted(subs) == ["ann", "ben", "cal", "dee", "eve"]
    assert all(list(s.files) == ["cnn"] for s in subs.values())
    assert subs["ben"].problems == ["note: the notebook was renamed to Copy of cnn.ipynb; graded as cnn.ipynb"]
    assert subs["ann"].problems == subs["cal"].problems == subs["dee"].problems == []   # a loose file is named by student
    release = nbformat.read(ROOT / "exercises" / "cnn" / "cnn.ipynb", as_version=4)
    nb, why = intake.rebuild(subs["eve"].files["cnn"], release)
    assert nb is None and why[0].startswith("the notebook is not valid JSON (") and why[0].endswith("looks cut off)")
    assert " at at " not in why[0]
