"""Every assignment graded by ``dlcourse grade`` as nbgrader would grade it: the split design (tests in
the checker, answers in the sandboxed student's kernel, reference answers off limits) changes no
honest grade. For each of the five assignments, one class: the full solution (every automatic
point), the released notebook (zero) and a notebook with only part 1 answered (exactly part 1's
points).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from nbtools import ROOT, Exercise, submission
from test_grading import require_bwrap

from dlcourse.grading import runner, sandbox

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_honest_submissions_score_what_nbgrader_gives(assignment, tmp_path):
    require_bwrap()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    ex = Exercise(assignment)
    solution = {gid: ex.source(gid) for gid in ex.answer_ids()}
    part1 = {gid: code for gid, code in solution.items() if gid.startswith("part1")}
    subs = tmp_path / "submissions"
    for student, answers in (("full", solution), ("blank", {}), ("part1", part1)):
        folder = subs / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(submission(ex, answers), folder / f"{assignment}.ipynb")
    limits = sandbox.Limits(cell_timeout=120, notebook_timeout=600)
    outcome = runner.grade(runner.Options(assignment=assignment, submissions=subs, out=tmp_path / "out", jobs=2,
                                          course=course, limits=limits, quiet=True, feedback=False))
    rows = {r["export"]["student_id"]: r for r in outcome.rows}
    auto = {gid: points for gid, points in ex.points().items() if gid != "written_answer"}
    expected = {"full": auto, "blank": {gid: 0.0 for gid in auto},
                "part1": {gid: (points if gid.startswith("part1") else 0.0) for gid, points in auto.items()}}
    for student, want in expected.items():
        row = rows[student]
        got = {gid: score for gid, (score, _, manual) in row["cells"].items() if gid in auto}
        assert got == want, f"{assignment}/{student}: {got} != {want}; {row['status']}: {row['problems']}"
        assert row["status"] == "ok", f"{assignment}/{student}: {row['problems']}"
