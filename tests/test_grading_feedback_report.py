"""Feedback pages and reports of ``dlcourse grade`` on an nbgrader course it did not write (issue 18).

- A failed test shows the traceback nbgrader shows (the failing line of a visible test included),
  with every line of the hidden tests replaced, however the failure reaches them.
- Hidden tests are found by nbgrader's own rule (``ClearHiddenTests``: the delimiter anywhere in a
  line, so ``# BEGIN HIDDEN TESTS`` too) and with the delimiters the course configures.
- Task cells (``task: true``: points, graded by hand) are in grades.csv, the summary and the figure.
- Grade ids of any length keep the summary's columns aligned.

The notebooks are small and built here, with nbgrader's metadata; they run in a plain IPython
kernel (nbclient), which formats tracebacks as the grader's checker kernel does.
"""
from __future__ import annotations

import copy
import csv
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlcourse.grading import feedback, report

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


def meta(gid: str, *, grade=False, solution=False, task=False, locked=False, points=None) -> dict:
    m = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3, "solution": solution,
         "task": task}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def grade_cell(gid: str, source: str, points: float = 1) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata=meta(gid, grade=True, locked=True, points=points))


# The student's squares forgets the last number: squares(1) == [], squares(3) == [1, 4].
ANSWER_SOURCE = '''def squares(n):
    """The squares of 1 to n."""
    ### BEGIN SOLUTION
    return [i * i for i in range(1, n + 1)]
    ### END SOLUTION'''
ANSWER_STUDENT = '''def squares(n):
    """The squares of 1 to n."""
    return [i * i for i in range(1, n)]'''

TASK_ID = "cell-938593c4a215c6cc-a-task-cell-with-a-long-grade-id"


def course_notebook(begin: str = BEGIN, end: str = END, student: bool = False) -> nbformat.NotebookNode:
    """problem1 in the style of nbgrader's documentation course: an answer, four test cells, a task."""
    cells = [
        new_markdown_cell("Write `squares(n)`.", metadata=meta("intro", locked=True)),
        new_code_cell(ANSWER_STUDENT if student else ANSWER_SOURCE, metadata=meta("squares", solution=True)),
        # fails on a visible bare assert, just before a hidden region (one '#', as nbgrader allows)
        grade_cell("correct_squares", f'''"""Check that squares returns the correct output for several inputs"""
assert squares(0) == []
assert squares(1) == [1]
# {begin}
assert squares(12)[-1] == 144, "the last square of 12"
assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
# {end}'''),
        # fails on a hidden line
        grade_cell("squares_hidden", f'''"""Check squares on larger inputs"""
assert len(squares(0)) == 0
### {begin}
assert squares(7) == [1, 4, 9, 16, 25, 36, 49]
### {end}'''),
        # a visible line calls a helper of the hidden tests, which fails
        grade_cell("squares_helper", f'''x_visible_marker = 1
    # {begin} (indented, text after it: still a delimiter for nbgrader)
def _secret_check(f):
    expected_values = [1, 4, 9, 16, 25]
    assert f(5) == expected_values
#   {end}
_secret_check(squares)'''),
        # a hidden statement over several lines fails, with a message
        grade_cell("squares_multiline", f'''assert squares(2) is not None
x = 1  # {begin}
assert squares(3) == [
    1, 4, 9], "squares(3) should be three numbers"
# {end}'''),
        new_markdown_cell("---\n## Part E (2 points)\n\nState the formula for the sum of squares.",
                          metadata=meta(TASK_ID, task=True, locked=True, points=2)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# Every line of the hidden tests above (stripped), delimiter lines left out: none may reach a page.
SECRETS = ['assert squares(12)[-1] == 144, "the last square of 12"',
           "assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]",
           "assert squares(7) == [1, 4, 9, 16, 25, 36, 49]",
           "def _secret_check(f):", "expected_values = [1, 4, 9, 16, 25]", "assert f(5) == expected_values",
           "assert squares(3) == [", '1, 4, 9], "squares(3) should be three numbers"']


def run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return nb


@pytest.fixture(scope="module")
def executed():
    """The student's notebook as autograding leaves it: the tests' full source, with outputs."""
    return run(course_notebook(student=True))


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def hide(nb, **traits):
    nb = copy.deepcopy(nb)
    pre = feedback.HideHiddenTests(**traits)
    nb, _ = pre.preprocess(nb, {})
    return nb


def by_id(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def error_text(cell) -> str:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1, cell.outputs
    return plain("\n".join(errors[0].traceback))


def assert_no_secret(text: str):
    squeezed = re.sub(r"\s+", "", text)
    shown = [s for s in SECRETS if re.sub(r"\s+", "", s) in squeezed]
    assert not shown, shown


# --- item 1: a failed assert shows its line -------------------------------------------------------

def test_failed_visible_assert_shows_its_line_and_no_hidden_line(executed):
    raw = error_text(by_id(executed, "correct_squares"))
    assert "squares(12)[-1] == 144" in raw          # IPython quotes the hidden lines after the failing one
    cell = by_id(hide(executed), "correct_squares")
    tb = error_text(cell)
    assert re.search(r"----> 3 assert squares\(1\) == \[1\]", tb), tb      # nbgrader shows this line
    assert re.search(r"\s2 assert squares\(0\) == \[\]", tb), tb             # and the visible context
    assert "AssertionError" in tb and "Traceback" in tb
    assert "a line of the hidden tests, not shown" in tb
    assert BEGIN not in tb
    assert_no_secret(tb)
    assert_no_secret(cell.source)
    assert "2 lines of hidden tests (not shown)" in cell.source


def test_failure_in_hidden_lines_shows_the_error_but_not_the_lines(executed):
    for gid in ("squares_hidden", "squares_helper", "squares_multiline"):
        cell = by_id(hide(executed), gid)
        tb = error_text(cell)
        assert "AssertionError" in tb, (gid, tb)
        assert "not shown" in tb, (gid, tb)
        assert_no_secret(tb)
        assert_no_secret(cell.source)
    # the check's message stays: it is what the student needs
    assert "squares(3) should be three numbers" in error_text(by_id(hide(executed), "squares_multiline"))
    # the visible line that called the hidden helper stays; the helper's frame is not named
    helper = error_text(by_id(hide(executed), "squares_helper"))
    assert "----> 7 _secret_check(squares)" in helper
    assert "in (a function of the hidden tests)" in helper and "in _secret_check" not in helper
    assert "in _secret_check" in error_text(by_id(executed, "squares_helper"))


def test_nothing_of_the_hidden_tests_anywhere_in_the_processed_notebook(executed):
    shown = hide(executed)
    text = plain(nbformat.writes(shown))
    assert_no_secret(text.replace("\\n", "\n").replace('\\"', '"'))
    assert feedback.leaked_lines(nbformat.writes(shown),
                                 [s for c in executed.cells for s in feedback.hidden_lines(c.source)]) == []


def test_a_traceback_the_redaction_misses_falls_back_to_the_message():
    """A hidden line shown in a form the line-by-line redaction does not recognise (here, two
    lines run together): the traceback is cut to the error's message, and an output quoting a
    hidden line is withheld, as before."""
    secret = "assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]"
    cell = grade_cell("t", f"x = 1\n### {BEGIN}\n{secret}\n### {END}")
    cell.outputs = [nbformat.from_dict({"output_type": "error", "ename": "AssertionError", "evalue": "oops",
                                        "traceback": [f"weird frame: {secret} ; and more"]}),
                    nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": f"{secret}\n"})]
    out = hide(new_notebook(cells=[cell])).cells[0]
    assert out.outputs[0].traceback == ["AssertionError: oops"]
    assert "withheld" in out.outputs[1].text


def test_answer_cells_and_their_errors_are_left_as_they_are():
    cell = new_code_cell("def f():\n    # BEGIN HIDDEN TESTS is what I call this part\n    return 1",
                         metadata=meta("answer", solution=True))
    cell.outputs = [nbformat.from_dict({"output_type": "error", "ename": "ValueError", "evalue": "bad",
                                        "traceback": ["----> 1 def f():", "ValueError: bad"]})]
    out = hide(new_notebook(cells=[cell])).cells[0]
    assert out.source == cell.source
    assert out.outputs[0].traceback == ["----> 1 def f():", "ValueError: bad"]


# --- item 2: nbgrader's rule and the course's delimiters ------------------------------------------

SOURCES = [
    f"a = 1\n### {BEGIN}\nassert a == 1\n### {END}\nb = 2",
    f"a = 1\n# {BEGIN}\nassert a == 1\n# {END}",
    f"a = 1\n    #{BEGIN}   \n    assert a == 1\n    # {END} done\nb = 2",
    f"a = 1  # {BEGIN}\nassert a == 1\nc = 3 # {END}\nb = 2",
    f"# {BEGIN}\nx = 1\n# {END}\ny = 2\n# {BEGIN}\nz = 3\n# {END}",
    f"a = 1\n# {END} (a stray end line: nbgrader drops it)\nb = 2",
    "nothing hidden here\n#  BEGIN  HIDDEN TESTS (not the delimiter: two spaces)",
]


@pytest.mark.parametrize("source", SOURCES)
def test_regions_are_nbgraders(source):
    """What the feedback shows of a test cell is what nbgrader releases, plus one line per region."""
    from nbgrader.preprocessors import ClearHiddenTests
    cell = grade_cell("t", source)
    ClearHiddenTests().preprocess_cell(cell, {}, 0)
    shown = feedback.strip_hidden(source)
    assert [line for line in shown.split("\n") if "lines of hidden tests (not shown)" not in line] \
        == cell.source.rstrip().split("\n")
    assert len(re.findall("lines of hidden tests", shown)) == len(feedback.hidden_regions(source))


def test_single_hash_delimiters_are_hidden_and_lines_recognised():
    source = f"x = 1\n# {BEGIN}\nassert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\n# {END}\n"
    assert feedback.hidden_lines(source) == ["assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]"]
    assert feedback.strip_hidden(source) == "x = 1\n# ... 1 lines of hidden tests (not shown) ..."
    # the three-hash form is unchanged
    assert feedback.hidden_lines(source.replace("# ", "### ")) == feedback.hidden_lines(source)


def test_a_region_never_closed_hides_the_rest_of_the_cell():
    source = f"x = 1\n### {BEGIN}\nassert secret_function(1) == 2\n### {BEGIN}\nassert secret_function(2) == 3"
    assert feedback.hidden_regions(source) == [(1, 4, False)]
    assert feedback.strip_hidden(source) == "x = 1\n# ... 3 lines of hidden tests (not shown) ..."
    assert feedback.hidden_lines(source) == ["assert secret_function(1) == 2", "assert secret_function(2) == 3"]


def test_configured_delimiters(tmp_path):
    config = tmp_path / "nbgrader_config.py"
    config.write_text('c = get_config()\nc.ClearHiddenTests.begin_test_delimeter = "SECRET START"\n'
                      'c.ClearHiddenTests.end_test_delimeter = "SECRET STOP"\n')
    assert feedback.delimiters(config) == ("SECRET START", "SECRET STOP")
    assert feedback.delimiters(None) == (BEGIN, END)
    assert feedback.delimiters(tmp_path / "absent.py") == (BEGIN, END)
    source = ("x = 1\n# SECRET START\nassert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\n"
              f"# SECRET STOP\n### {BEGIN}\nassert squares(3) == [1, 4, 9]\n### {END}")
    assert feedback.hidden_lines(source, "SECRET START", "SECRET STOP") == [
        "assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]"]
    cell = hide(new_notebook(cells=[grade_cell("t", source)]),
                begin_test_delimeter="SECRET START", end_test_delimeter="SECRET STOP").cells[0]
    assert "squares(10)" not in cell.source
    assert "squares(3) == [1, 4, 9]" in cell.source      # not hidden for this course: released as is


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with nbgrader's gradebook (generate_assignment, one submission) whose config sets
    its own delimiters, and the student's autograded notebook; feedback.generate writes the page."""
    from nbgrader.api import Gradebook
    from dlcourse.grading import runner
    root = tmp_path_factory.mktemp("fbcourse") / "course"
    (root / "source" / "ps1").mkdir(parents=True)
    config = root / "nbgrader_config.py"
    config.write_text('c = get_config()\nc.CourseDirectory.course_id = "demo"\n'
                      'c.ClearHiddenTests.begin_test_delimeter = "BEGIN SECRET TESTS"\n'
                      'c.ClearHiddenTests.end_test_delimeter = "END SECRET TESTS"\n')
    nbformat.write(course_notebook("BEGIN SECRET TESTS", "END SECRET TESTS"), root / "source" / "ps1" / "problem1.ipynb")
    db = f"sqlite:///{root / 'gradebook.db'}"
    mp = pytest.MonkeyPatch()       # nbgrader's Gradebook runs `alembic` from the environment's bin
    mp.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    try:
        runner._generate(root, "ps1", config, source_directory="source", release_directory="release",
                         db_url=db, course_id="demo")
    finally:
        mp.undo()
    with Gradebook(db, "demo") as gb:
        gb.update_or_create_student("bitdiddle")
        gb.add_submission("ps1", "bitdiddle")
    released = nbformat.read(root / "release" / "ps1" / "problem1.ipynb", as_version=4)
    autograded = root / "autograded" / "bitdiddle" / "ps1"
    autograded.mkdir(parents=True)
    nbformat.write(run(course_notebook("BEGIN SECRET TESTS", "END SECRET TESTS", student=True)),
                   autograded / "problem1.ipynb")
    out = root / "feedback-out"
    res = feedback.generate(root, db, "demo", "ps1", "bitdiddle", out, show_hidden=False, config_file=config,
                            secret_lines=[])
    assert res["success"], res
    return {"root": root, "db": db, "released": released, "page": out / "bitdiddle" / "ps1" / "problem1.html"}


def page_text(path) -> str:
    import html
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_generate_uses_the_courses_delimiters_and_shows_the_failing_line(course):
    released = "\n".join(c.source for c in course["released"].cells)
    assert "squares(7)" not in released                 # nbgrader hid them with the course's delimiters
    page = page_text(course["page"])
    assert_no_secret(page)
    assert "SECRET TESTS" not in page
    assert "lines of hidden tests (not shown)" in page
    assert re.search(r"----&gt;|---->", page) and "assert squares(1) == [1]" in page
    assert "a line of the hidden tests, not shown" in page
    assert feedback.leaked_lines(course["page"].read_text(), [s for s in SECRETS if len(s) >= 16]) == []


# --- item 3: task cells ---------------------------------------------------------------------------

def template_cells(nb, name="problem1"):
    """(notebook, grade_id, points, autograded?) as runner.make_template lists them, task cells
    included as cells graded by hand (the change asked of runner.make_template)."""
    cells = []
    for c in nb.cells:
        m = c.metadata.get("nbgrader", {})
        if m.get("grade") or m.get("task"):
            cells.append((name, m["grade_id"], float(m.get("points", 0)), bool(m.get("grade")) and not m.get("solution")))
    return cells


def test_gradebook_export_has_the_task_grade(course):
    from dlcourse.grading import gradebook
    from nbgrader.api import Gradebook
    with Gradebook(course["db"], "demo") as gb:
        rows = gradebook.export_rows(gb, "ps1", ["bitdiddle"])
        assert rows["bitdiddle"]["cells"][TASK_ID] == (0.0, 2.0, True)       # waits for a grade by hand
        # merged as a worker reports it (its own gradebook's task grade: no score, to grade by hand)
        gradebook.merge(gb, "ps1", "bitdiddle", {"scores": {"problem1": {
            "grades": {"correct_squares": {"auto_score": 0.0, "max_score": 1.0, "needs_manual_grade": False},
                       TASK_ID: {"auto_score": None, "max_score": 2.0, "needs_manual_grade": True}},
            "comments": {}}}})
        rows = gradebook.export_rows(gb, "ps1", ["bitdiddle"])
        assert rows["bitdiddle"]["cells"][TASK_ID] == (0.0, 2.0, True)
        assert rows["bitdiddle"]["cells"]["correct_squares"] == (0.0, 1.0, False)
        grade = gb.find_grade(TASK_ID, "problem1", "ps1", "bitdiddle")
        grade.manual_score = 1.5
        grade.needs_manual_grade = False
        gb.db.commit()
        assert gradebook.export_rows(gb, "ps1", ["bitdiddle"])["bitdiddle"]["cells"][TASK_ID] == (1.5, 2.0, False)
        grade.manual_score = None
        grade.needs_manual_grade = True
        gb.db.commit()


def row(sid: str, cells: dict, score: float = 0.0, status: str = "ok") -> dict:
    export = {k: "" for k in report.EXPORT_COLUMNS} | {"student_id": sid, "score": score, "max_score": 6.0,
                                                       "assignment": "ps1"}
    return {"export": export, "status": status, "problems": [], "cells": cells}


def test_task_cells_in_csv_summary_and_figure(tmp_path):
    cells = template_cells(course_notebook())
    assert (("problem1", TASK_ID, 2.0, False)) in cells
    rows = [row("bitdiddle", {"correct_squares": (0.0, 1.0, False), TASK_ID: (0.0, 2.0, True)}),
            row("hacker", {"correct_squares": (1.0, 1.0, False), TASK_ID: (1.5, 2.0, False)})]
    report.write_csv(tmp_path / "grades.csv", rows, cells)
    with open(tmp_path / "grades.csv", newline="") as f:
        got = {r["student_id"]: r for r in csv.DictReader(f)}
    assert got["bitdiddle"][TASK_ID] == "" and got["hacker"][TASK_ID] == "1.5"
    text = report.summary(rows, cells, "ps1")
    line = next(line for line in text.splitlines() if line.startswith(TASK_ID[:20]))
    assert "by hand" in line and line.split()[-1] == "1"         # one answer to grade by hand
    assert "1 answers wait for grading by hand" in text
    assert re.search(r"correct_squares\s+auto\s", text)
    report.figure(tmp_path / "scores.png", rows, cells, "ps1")
    assert (tmp_path / "scores.png").stat().st_size > 5_000


# --- item 4: long grade ids -----------------------------------------------------------------------

def table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("question"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("long_id", ["sum_of_squares_application", "x" * 31,
                                     "a_really_long_grade_id_for_the_test_of_part_one_" * 4,
                                     "题目一的自动测试题目一的自动测试题目一的自动测试"])
def test_summary_columns_align_for_any_grade_id(long_id):
    cells = [("problem1", "q1", 1.0, True), ("problem1", long_id, 2.0, False), ("problem1", "correct_squares", 1.0, True)]
    rows = [row("a", {"q1": (1.0, 1.0, False), long_id: (2.0, 2.0, False), "correct_squares": (0.0, 1.0, False)}),
            row("b", {"q1": (0.5, 1.0, False), long_id: (0.0, 2.0, False), "correct_squares": (1.0, 1.0, False)})]
    lines = table(report.summary(rows, cells, "ps1"))
    header = lines[0]
    numbered = [line for line in lines[2:] if re.search(r"(auto|by hand)\s+\d", line)]
    assert len(numbered) == 3
    col = header.index("graded")
    width = lambda s: report._width(s)   # noqa: E731 - terminal columns (wide characters take two)
    for line in numbered:
        m = re.search(r" (auto|by hand) ", line)
        assert width(line[:m.start() + 1]) == col, (line, header)
        assert width(line) == len(header), (line, header)
    assert max(width(line) for line in lines) <= 100
    # the whole id can be read: wrapped pieces, in order
    joined = "".join(re.split(r"\s(?:auto|by hand)\s", line)[0].strip() for line in lines[2:])
    assert joined == "q1" + long_id + "correct_squares"


def test_ids_shared_by_two_notebooks_are_told_apart(tmp_path):
    cells = [("problem1", "q1", 1.0, True), ("problem2", "q1", 2.0, True)]
    rows = [row("a", {("problem1", "q1"): (1.0, 1.0, False), ("problem2", "q1"): (0.0, 2.0, False)})]
    report.write_csv(tmp_path / "grades.csv", rows, cells)
    with open(tmp_path / "grades.csv", newline="") as f:
        got = next(csv.DictReader(f))
    assert got["problem1/q1"] == "1" and got["problem2/q1"] == "0"
    text = report.summary(rows, cells, "ps1")
    assert re.search(r"problem1/q1\s+auto\s+1\s+1\.00", text) and re.search(r"problem2/q1\s+auto\s+2\s+0\.00", text)


def test_frames_of_the_grader_are_left_out_and_the_course_checks_stay():
    """A test calls the student's function through the checker's channel: the channel's frame
    (dlcourse/grading/checker.py, wherever the sandbox mounts it) is the grader's, not the course's."""
    tb = ["\x1b[31m------\x1b[39m", "\x1b[31mNotImplementedError\x1b[39m    Traceback (most recent call last)",
          "Cell \x1b[32mIn[5], line 1\x1b[39m\n\x1b[32m----> 1\x1b[39m model = build_model((128, 128, 3), 10)\n",
          "    [... skipping hidden 1 frame]\n",
          "File \x1b[32m/tmp/fresh/dlcourse/grading/checker.py:249\x1b[39m, in \x1b[36mChannel.call\x1b[39m(self)\n"
          "\x1b[32m--> 249\x1b[39m     raise _student_error(reply[\"raised\"])\n",
          "File \x1b[32m/tmp/fresh/dlcourse/checks.py:18\x1b[39m, in \x1b[36m_fail\x1b[39m(what)\n"
          "\x1b[32m---> 18\x1b[39m raise AssertionError(message)\n",
          "NotImplementedError:  (in build_model, line 4: raise NotImplementedError())"]
    out = plain("\n".join(feedback.redact_traceback(tb, set())))
    assert "checker.py" not in out and "_student_error" not in out
    assert "----> 1 model = build_model((128, 128, 3), 10)" in out and "dlcourse/checks.py:18" in out
    assert out.endswith("NotImplementedError:  (in build_model, line 4: raise NotImplementedError())")


def test_hidden_lines_in_a_traceback_are_recognised_however_spaced():
    hidden = {"assert f(3) ==\t9", "assert f(4) == 16"}
    tb = ["Cell In[3], line 2\n      1 x = 1\n----> 2 assert f(3) ==    9\n      3 assert  f(4)  ==  16\n",
          "  File \"<cell>\", line 2\n    assert f(3) == 9\n              ^\nAssertionError"]
    out = plain("\n".join(feedback.redact_traceback(tb, hidden)))
    assert "f(3)" not in out and "f(4)" not in out
    assert "----> 2 # (a line of the hidden tests, not shown)" in out and "      1 x = 1" in out
