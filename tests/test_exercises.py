"""Checks every graded exercise must pass, for every assignment in solutions/.

- the instructor notebook is well formed (parts, points, hidden tests, no outputs);
- it passes all its own tests (visible and hidden) under nbval;
- `make release` reproduces the committed exercises/ exactly;
- the released notebook fails every test (`nbgrader validate --invert`);
- nbgrader's autograde scores simulated submissions as expected: full marks for the solution,
  zero for the blank notebook, and exactly the parts answered for a partial submission.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from nbtools import (ASSIGNMENTS, ROOT, Exercise, is_answer, is_autograded_test, is_manual, make_course,
                     nbgrader_meta, run_nbgrader, submission)

pytestmark = pytest.mark.parametrize("name", ASSIGNMENTS)


def test_at_least_one_assignment_exists(name):
    assert (ROOT / "solutions" / name / f"{name}.ipynb").exists()


def test_solution_notebook_is_well_formed(name):
    ex = Exercise(name)
    cells = ex.solution.cells
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c.cell_type == "code"), \
        "commit the instructor notebook without outputs"
    tests = [c for c in cells if is_autograded_test(c)]
    manual = [c for c in cells if is_manual(c)]
    assert 4 <= len(tests) <= 6, f"{len(tests)} autograded parts; the course asks for 4 to 6"
    assert len(manual) >= 1, "one manually graded written answer is expected"
    ids = [nbgrader_meta(c).get("grade_id") for c in cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for c in tests:
        assert nbgrader_meta(c).get("locked"), f"test cell {nbgrader_meta(c)['grade_id']} must be locked"
        assert "### BEGIN HIDDEN TESTS" in c.source, f"{nbgrader_meta(c)['grade_id']} has no hidden tests"
        assert nbgrader_meta(c)["points"] > 0
    for c in cells:
        if is_answer(c):
            assert "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source
    first_code = next(c for c in cells if c.cell_type == "code").source
    assert re.search(r"^import dlcourse\b", first_code, re.M), "the setup cell must import dlcourse first"
    assert first_code.index("import dlcourse") < min(
        (first_code.find(m) for m in ("import keras", "import tensorflow") if m in first_code), default=10**9), \
        "import dlcourse before keras/tensorflow (it silences TensorFlow's stderr)"
    # every answer cell is followed by its test cell before the next answer cell
    order = [("answer" if is_answer(c) else "test") for c in cells if is_answer(c) or is_autograded_test(c)]
    assert order[0] == "answer" and order[-1] == "test"


def test_solution_passes_all_its_tests_under_nbval(name):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", f"{name}.ipynb"],
                          cwd=ROOT / "solutions" / name, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """One throwaway course per assignment (release generated there), built on first use."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = make_course(tmp_path_factory.mktemp(f"course-{name}"), [name])
        return made[name]
    return get


def test_release_reproduces_committed_exercises(name, courses):
    course = courses(name)
    generated = sorted(p.relative_to(course / "exercises") for p in (course / "exercises" / name).rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "exercises") for p in (ROOT / "exercises" / name).rglob("*") if p.is_file())
    assert generated == committed, "exercises/ differs from what `make release` produces: run `make release`"
    for rel in generated:
        assert json.loads((course / "exercises" / rel).read_text()) == json.loads((ROOT / "exercises" / rel).read_text()), \
            f"exercises/{rel} is out of date with solutions/: run `make release` and commit the result"


def test_released_notebook_fails_every_test(name):
    proc = run_nbgrader("validate", "--invert", f"exercises/{name}/{name}.ipynb", cwd=ROOT)
    assert "Success! The notebook does not pass any tests." in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_autograde_scores_simulated_submissions(name, courses):
    from nbgrader.api import Gradebook

    ex = Exercise(name)
    course = courses(name)
    answer_ids = ex.answer_ids()
    solution_answers = {gid: ex.source(gid) for gid in answer_ids}
    half = answer_ids[: max(1, len(answer_ids) // 2)]
    students = {
        "full": solution_answers,
        "blank": {},
        "partial": {gid: solution_answers[gid] for gid in half},
    }
    for student, answers in students.items():
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(submission(ex, answers), folder / f"{name}.ipynb")
    proc = run_nbgrader("autograde", name, "--force", cwd=course)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Expected: a test cell scores full points when every answer cell before it is answered.
    expected = {s: {} for s in students}
    points = ex.points()
    answered_so_far = {s: True for s in students}
    for cell in ex.solution.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell):
            for s, answers in students.items():
                answered_so_far[s] = answered_so_far[s] and gid in answers
        elif is_autograded_test(cell):
            for s in students:
                expected[s][gid] = points[gid] if answered_so_far[s] else 0.0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook(name, name, student)
            got = {g.name: g.score for g in nb.grades if g.name in expected[student]}
            assert got == expected[student], f"{student}: expected {expected[student]}, got {got}"
