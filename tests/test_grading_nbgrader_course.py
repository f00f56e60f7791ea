"""``dlcourse grade`` as a drop-in for a course it did not write: nbgrader's own documentation course.

The course is ``ps1`` of nbgrader's user guide (``problem1.ipynb``, ``problem2.ipynb``, the students
``bitdiddle`` and ``hacker``), as the installed nbgrader ships it (BSD-licensed, read from
``nbgrader/docs/source/user_guide``), with what a real course adds: a header notebook configured by
a relative path (as nbgrader's documentation shows), a due date with nbgrader's "zero" late
penalty, a data file in a subfolder of the assignment and a test that reads it and a file the
student hands in. Its tests delete and restore the student's ``squares`` and catch the student's
``ValueError``: ordinary nbgrader practice.

It is graded by ``nbgrader autograde`` and by ``dlcourse grade`` in each submission layout
(nbgrader's ``submitted/``, a folder per student, a zip per student), and every cell's score, every
"needs manual grade" flag, the late penalty and the total must be the same. A second run reuses
every result. A student whose folder holds only another assignment has not handed this one in.

Then nothing stored is lost: a manual grade and the stored scores survive a run where the student's
new file cannot be read, a run where the student is missing, and a single loose notebook handed in
for this two-notebook assignment.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbgrader
import pytest
from nbgrader.api import Gradebook

from test_grading import require_bwrap

USER_GUIDE = Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide"
STUDENTS = ("bitdiddle", "hacker")
DUE = "2015-02-02 09:00:00 America/Los_Angeles"      # bitdiddle handed in at 14:58 that day: late
CONFIG = '''c = get_config()
c.CourseDirectory.course_id = "example"
c.IncludeHeaderFooter.header = "source/header.ipynb"
c.LateSubmissionPlugin.penalty_method = "zero"
'''
DATA_TEST = ("import graphlib\n"
             "assert list(graphlib.TopologicalSorter({'b': {'a'}}).static_order()) == ['a', 'b']\n"
             "with open('data/squares_10.txt') as f:\n"
             "    assert squares(10) == [int(x) for x in f.read().split()]\n"
             "with open('notes/mine.txt') as f:\n"
             "    assert f.read().strip() == 'mine'\n")


def _env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], TF_CPP_MIN_LOG_LEVEL="3")


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _add_data_test(nb_path: Path) -> None:
    nb = json.loads(nb_path.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "outputs": [], "source": DATA_TEST,
                        "metadata": {"nbgrader": {"grade": True, "grade_id": "uses_data", "locked": True,
                                                  "points": 1, "schema_version": 3, "solution": False}}})
    nb_path.write_text(json.dumps(nb))


def make_course(root: Path) -> Path:
    """nbgrader's documentation course, with a due date, the late penalty and a data file."""
    course = root / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(USER_GUIDE / "source" / "ps1", course / "source" / "ps1")
    shutil.copy(USER_GUIDE / "source" / "header.ipynb", course / "source" / "header.ipynb")
    (course / "source" / "ps1" / "data").mkdir()
    (course / "source" / "ps1" / "data" / "squares_10.txt").write_text(" ".join(str(i * i) for i in range(1, 11)))
    _add_data_test(course / "source" / "ps1" / "problem1.ipynb")
    (course / "nbgrader_config.py").write_text(CONFIG)
    nbg = [sys.executable, "-m", "nbgrader"]
    _run(nbg + ["db", "assignment", "add", "ps1", f"--duedate={DUE}"], course)
    for sid in STUDENTS:
        _run(nbg + ["db", "student", "add", sid], course)
    _run(nbg + ["generate_assignment", "ps1", "--force"], course)
    return course


# A module handed in beside the notebook, named like one the test imports: in nbgrader it would
# run in the test's process; here the test cells run in the checker, which must read the student's
# files as data, never import them.
EVIL_MODULE = """
open({marker!r}, "w").write("the student's module ran")
class TopologicalSorter:
    def __init__(self, graph):
        pass
    def static_order(self):
        return ['a', 'b']
"""


def submitted(dest: Path, evil: Path | None = None) -> Path:
    """nbgrader's submitted/ layout: the students' own notebooks, timestamp.txt, the data test
    added to the student's copy as nbgrader's release would have it, a file of the student's
    (and, with ``evil``, a module of hacker's that writes that file if it is ever imported)."""
    for sid in STUDENTS:
        src = USER_GUIDE / "submitted" / sid / "ps1"
        folder = dest / sid / "ps1"
        shutil.copytree(src, folder)
        _add_data_test(folder / "problem1.ipynb")
        (folder / "notes").mkdir()
        (folder / "notes" / "mine.txt").write_text("mine\n")
        if evil is not None and sid == "hacker":
            (folder / "graphlib.py").write_text(EVIL_MODULE.format(marker=str(evil)))
    # a student with a folder for another assignment only: not a submission of ps1
    (dest / "ghost" / "ps0").mkdir(parents=True)
    shutil.copy(dest / "hacker" / "ps1" / "problem1.ipynb", dest / "ghost" / "ps0" / "problem1.ipynb")
    shutil.copy(dest / "hacker" / "ps1" / "problem2.ipynb", dest / "ghost" / "ps0" / "problem2.ipynb")
    return dest


def _timestamps_csv(nbgrader_layout: Path, dest: Path) -> None:
    rows = ["student_id,timestamp"] + [f"{sid},{(nbgrader_layout / sid / 'ps1' / 'timestamp.txt').read_text().strip()}"
                                       for sid in STUDENTS]
    (dest / "timestamps.csv").write_text("\n".join(rows) + "\n")


def folder_per_student(nbgrader_layout: Path, dest: Path) -> Path:
    dest.mkdir()
    for sid in STUDENTS:
        shutil.copytree(nbgrader_layout / sid / "ps1", dest / sid, ignore=shutil.ignore_patterns("timestamp.txt"))
    _timestamps_csv(nbgrader_layout, dest)
    return dest


def zip_per_student(nbgrader_layout: Path, dest: Path) -> Path:
    dest.mkdir()
    for sid in STUDENTS:
        inner = nbgrader_layout / sid / "ps1"
        with zipfile.ZipFile(dest / f"{sid}.zip", "w") as zf:
            for p in sorted(inner.rglob("*")):
                if p.is_file() and p.name != "timestamp.txt":
                    zf.write(p, f"{sid}-ps1/{p.relative_to(inner)}")    # in a folder inside the zip
    _timestamps_csv(nbgrader_layout, dest)
    return dest


def table(db: Path, students=STUDENTS) -> dict:
    """Every cell's (auto score, manual score, needs manual grade), the penalty and the score."""
    out = {}
    with Gradebook(f"sqlite:///{db}", "example") as gb:
        for sid in students:
            sub = gb.find_submission("ps1", sid)
            row = {"penalty": sub.late_submission_penalty, "score": sub.score, "timestamp": str(sub.timestamp)}
            for nb in sub.notebooks:
                for g in nb.grades:
                    row[f"{nb.name}/{g.name}"] = (g.auto_score, g.manual_score, g.needs_manual_grade)
            out[sid] = row
    return out


def dlcourse_grade(course: Path, subs: Path, out: Path, *extra: str) -> str:
    return _run([sys.executable, "-m", "dlcourse", "grade", "ps1", "--submissions", str(subs), "--out", str(out),
                 "--jobs", "2", "--quiet", *extra], course)


@pytest.fixture(scope="module")
def nbgrader_grades(tmp_path_factory):
    require_bwrap()
    root = tmp_path_factory.mktemp("nbgrader-course")
    course = make_course(root)
    submitted(course / "submitted")
    shutil.rmtree(course / "submitted" / "ghost")      # nbgrader would grade it as ps1's missing notebooks
    _run([sys.executable, "-m", "nbgrader", "autograde", "ps1", "--force"], course)
    grades = table(course / "gradebook.db")
    # what the comparison rests on: the penalty applies, the namespace and data tests pass
    assert grades["bitdiddle"]["penalty"] > 0 and grades["hacker"]["penalty"] == 0, grades
    assert grades["hacker"]["problem1/sum_of_squares_uses_squares"][0] == 0.5, grades
    assert grades["hacker"]["problem1/squares_invalid_input"][0] == 1.0, grades
    assert grades["hacker"]["problem1/uses_data"][0] == 1.0, grades
    return grades


@pytest.mark.parametrize("layout", ["submitted", "folder", "zip"])
def test_every_cell_scores_as_nbgrader_autograde_in_every_layout(layout, nbgrader_grades, tmp_path):
    course = make_course(tmp_path)
    marker = tmp_path / "imported-in-the-checker"
    nbg = submitted(tmp_path / "nbgrader-layout", evil=marker)
    subs = {"submitted": lambda: nbg,
            "folder": lambda: folder_per_student(nbg, tmp_path / "subs"),
            "zip": lambda: zip_per_student(nbg, tmp_path / "subs")}[layout]()
    if layout == "zip":
        # graded from a copy of a course with its own dlcourse/ folder (python -m dlcourse in it
        # imports that copy), while the installed dlcourse is an editable install elsewhere: the
        # sandboxed kernels must use the copy the grader runs
        shutil.copytree(Path(__file__).resolve().parents[1] / "dlcourse", course / "dlcourse",
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    dlcourse_grade(course, subs, out)
    got = table(course / "gradebook.db")
    assert not marker.exists(), "a module the student handed in was imported by the grader"
    assert got == nbgrader_grades
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "example") as gb:
        assert "ghost" not in [s.id for s in gb.students] or not gb.find_student("ghost").submissions
    header = (out / "grades.csv").read_text().splitlines()[0]
    assert "cell-938593c4a215c6cc" in header, header      # the task cell (Part E) is a column too
    # a second run grades nothing again and changes nothing
    text = dlcourse_grade(course, subs, out)
    assert "graded 0, reused 2" in text, text[-2000:]
    assert table(course / "gradebook.db") == nbgrader_grades


def test_nothing_stored_is_lost(tmp_path):
    """A manual grade, the stored scores and the feedback survive runs that cannot grade the new file."""
    require_bwrap()
    course = make_course(tmp_path)
    subs = submitted(tmp_path / "subs")
    shutil.rmtree(subs / "ghost")
    out = tmp_path / "out"
    dlcourse_grade(course, subs, out)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "example") as gb:   # the formgrader's work
        grade = gb.find_grade("part-a", "problem2", "ps1", "hacker")
        grade.manual_score = 1.0
        grade.needs_manual_grade = False        # as the formgrader's grade handler does
        comment = gb.find_comment("part-a", "problem2", "ps1", "hacker")
        comment.manual_comment = "Well explained."
        gb.db.commit()
    before = table(course / "gradebook.db")
    assert before["hacker"]["problem2/part-a"] == (None, 1.0, False)
    page = out / "feedback" / "hacker" / "ps1" / "problem1.html"
    page_text = page.read_text()

    def hacker_row():
        import csv
        rows = list(csv.DictReader((out / "grades.csv").open()))
        return next(r for r in rows if r["student_id"] == "hacker")

    # 1. hacker's new notebooks cannot be read
    for name in ("problem1", "problem2"):
        (subs / "hacker" / "ps1" / f"{name}.ipynb").write_text('{"cells": [')
    dlcourse_grade(course, subs, out)
    assert table(course / "gradebook.db") == before
    row = hacker_row()
    assert row["status"] == "broken" and "stored before" in row["problems"], row
    assert page.read_text() == page_text

    # 2. hacker is missing from this run's folder
    shutil.rmtree(subs / "hacker")
    dlcourse_grade(course, subs, out)
    assert table(course / "gradebook.db") == before
    row = hacker_row()
    assert row["status"] == "missing" and "stored before" in row["problems"], row
    assert float(row["score"]) == before["hacker"]["score"]
    assert page.read_text() == page_text

    # 3. one loose notebook, named by the student, for this two-notebook assignment: it is matched
    # to problem1 by its cells; problem2's stored grades (and the manual grade) stay
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(USER_GUIDE / "submitted" / "hacker" / "ps1" / "problem1.ipynb", loose / "hacker.ipynb")
    _add_data_test(loose / "hacker.ipynb")
    dlcourse_grade(course, loose, out)
    after = table(course / "gradebook.db", students=("hacker",))["hacker"]
    for key, value in before["hacker"].items():
        if key.startswith("problem2/"):
            assert after[key] == value, key
    assert after["problem1/correct_squares"] == before["hacker"]["problem1/correct_squares"]
    row = hacker_row()
    assert "problem2.ipynb is not in the single notebook file" in row["problems"], row


def test_settings_it_cannot_follow_are_refused_with_a_message(tmp_path):
    """A course's autograde preprocessors are run with nbgrader's Execute replaced by the sandboxed
    one; an Execute of the course's own, a list without Execute and a notebook in another language
    are refused, each with a message that says what to do."""
    import nbformat
    from traitlets.config import Config

    from dlcourse.grading import runner

    cfg = Config()
    cfg.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.LimitOutput",
                                             "nbgrader.preprocessors.SaveAutoGrades"]
    assert runner.autograde_preprocessors(cfg) == [
        "dlcourse.grading.execute.GuardedExecute", "nbgrader.preprocessors.limitoutput.LimitOutput",
        "nbgrader.preprocessors.saveautogrades.SaveAutoGrades"]
    assert runner.autograde_preprocessors(Config())[0] == "dlcourse.grading.execute.GuardedExecute"
    cfg.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.SaveAutoGrades"]
    with pytest.raises(ValueError, match="has no Execute"):
        runner.autograde_preprocessors(cfg)
    cfg.Autograde.autograde_preprocessors = ["dlcourse.grading.execute.GuardedExecute"]   # an Execute subclass
    with pytest.raises(ValueError, match="Execute of the course's own"):
        runner.autograde_preprocessors(cfg)
    cfg.Autograde.autograde_preprocessors = ["no_such_module.Preprocessor"]
    with pytest.raises(ValueError, match="cannot be imported"):
        runner.autograde_preprocessors(cfg)

    python = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "conda-env-py", "display_name": "Python (conda)", "language": "python"}})
    runner.check_kernels({"problem1": python})
    r_notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}})
    with pytest.raises(ValueError, match="grade this assignment with nbgrader autograde"):
        runner.check_kernels({"problem1": python, "problem2": r_notebook})
