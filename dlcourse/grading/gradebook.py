"""The course's nbgrader gradebook: merging the workers' results, and exporting grades.

Only the main process writes here, one submission at a time, so SQLite is safe; any ``db_url``
nbgrader supports (PostgreSQL, say) works the same. Merging touches only what autograding owns
(``auto_score``, ``auto_comment``, ``needs_manual_grade`` while no manual grade exists, the
timestamp): manual grades, manual comments and extra credit from the formgrader are kept, so
re-running is idempotent and regrading never loses the instructor's work.
"""
from __future__ import annotations

from datetime import datetime, timezone

from nbgrader.api import Gradebook, MissingEntry, TaskCell

EXPORT_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                  "raw_score", "late_submission_penalty", "score", "max_score"]


def open_gradebook(db_url: str, course_id: str) -> Gradebook:
    return Gradebook(db_url, course_id)


def roster(db_url: str, course_id: str) -> list[str]:
    with open_gradebook(db_url, course_id) as gb:
        return [s.id for s in gb.students]


def assignments(db_url: str, course_id: str) -> list[str]:
    with open_gradebook(db_url, course_id) as gb:
        return [a.name for a in gb.assignments]


def has_assignment(db_url: str, course_id: str, assignment: str) -> bool:
    with open_gradebook(db_url, course_id) as gb:
        try:
            gb.find_assignment(assignment)
            return True
        except MissingEntry:
            return False


def has_grades(gb: Gradebook, assignment: str, student: str, notebooks: set[str] | None = None) -> bool:
    """Whether a grade is stored for this student's submission (in ``notebooks``, if given): an
    automatic or manual score, or a flag that asks for grading by hand."""
    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return False
    return any(g.auto_score is not None or g.manual_score is not None or g.needs_manual_grade
               or g.extra_credit for nb in sub.notebooks if notebooks is None or nb.name in notebooks
               for g in nb.grades)


def merge(gb: Gradebook, assignment: str, student: str, result: dict | None,
          keep: set[str] = frozenset()) -> None:
    """Record one student's autograded scores. ``result`` None: a submission that could not be
    graded at all (unreadable notebook): every grade is an automatic zero, as nbgrader does for
    a missing notebook. The notebooks named in ``keep`` (handed in but unreadable) keep what is
    stored: a run never lowers a grade because it could not read the new file."""
    gb.update_or_create_student(student)
    # The submission time is not taken from the result (nor from anything a grading process
    # says): ``set_timestamps`` records where the submission was collected.
    sub = gb.update_or_create_submission(assignment, student)
    scores = (result or {}).get("scores", {})
    for nb in sub.notebooks:
        if nb.name in keep:
            continue
        got = scores.get(nb.name)
        for grade in nb.grades:
            if isinstance(grade.cell, TaskCell):    # graded by hand only; autograding never touches it
                continue
            auto = (got or {}).get("grades", {}).get(grade.name)
            if auto is None:
                grade.auto_score = 0.0
                if grade.manual_score is None:
                    grade.needs_manual_grade = False
                continue
            grade.auto_score = auto["auto_score"]
            grade.needs_manual_grade = bool(auto["needs_manual_grade"]) and grade.manual_score is None
        for comment in nb.comments:
            text = (got or {}).get("comments", {}).get(comment.name)
            comment.auto_comment = text
    gb.db.commit()


def set_timestamps(gb: Gradebook, assignment: str, times: dict[str, str | None]) -> None:
    """Record each student's submission time as collected (nbgrader's ``timestamp.txt``, the
    file's modification time or the instructor's ``timestamps.csv``; see intake), as a naive UTC
    time like nbgrader's. Students without a submission in the gradebook are left out."""
    for sid, text in times.items():
        try:
            sub = gb.find_submission(assignment, sid)
        except MissingEntry:
            continue
        when = None
        if text:
            when = datetime.fromisoformat(text)
            if when.tzinfo is not None:
                when = when.astimezone(timezone.utc).replace(tzinfo=None)
        sub.timestamp = when
    gb.db.commit()


def apply_late_penalties(gb: Gradebook, assignment: str, students: list[str], config) -> None:
    """nbgrader's late penalty for each notebook of these students' submissions, as its
    ``AssignLatePenalties`` computes it while autograding (the same plugin, from the course's
    configuration: ``LateSubmissionPlugin.penalty_method``, ``AssignLatePenalties.plugin_class``),
    from the due date in the course's gradebook and the submission time as collected. (Each
    worker grades in a gradebook of its own, which has neither.)"""
    from nbgrader.preprocessors import AssignLatePenalties

    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    for sid in students:
        try:
            sub = gb.find_submission(assignment, sid)
        except MissingEntry:
            continue
        late = sub.total_seconds_late
        for nb in sub.notebooks:
            nb.late_submission_penalty = None
            if late > 0:
                penalty = assigner.plugin_inst.late_submission_penalty(sid, nb.score, late)
                if penalty is not None:
                    nb.late_submission_penalty = assigner._check_late_penalty(nb, penalty)
    gb.db.commit()


def export_rows(gb: Gradebook, assignment: str, students: list[str]) -> dict[str, dict]:
    """nbgrader's CSV export columns for each student, plus the score of every graded cell."""
    a = gb.find_assignment(assignment)
    rows = {}
    for sid in students:
        try:
            student = gb.find_student(sid)
            names = (student.last_name, student.first_name, student.email)
        except MissingEntry:
            names = (None, None, None)
        row = {"assignment": assignment, "duedate": a.duedate, "student_id": sid,
               "last_name": names[0], "first_name": names[1], "email": names[2], "max_score": a.max_score}
        cells = {}
        try:
            sub = gb.find_submission(assignment, sid)
        except MissingEntry:
            row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0)
        else:
            penalty = sub.late_submission_penalty
            row.update(timestamp=sub.timestamp, raw_score=sub.score, late_submission_penalty=penalty,
                       score=max(0.0, sub.score - penalty))
            for nb in sub.notebooks:
                for grade in nb.grades:
                    cells[grade.name] = (grade.score, grade.max_score, grade.needs_manual_grade)
        rows[sid] = {"export": {k: ("" if row.get(k) is None else row.get(k)) for k in EXPORT_COLUMNS},
                     "cells": cells}
    return rows


def graded_cells(gb: Gradebook, assignment: str) -> list[tuple[str, str, float, bool]]:
    """(notebook, grade_id, max points, autograded?) of every graded cell, in notebook order."""
    a = gb.find_assignment(assignment)
    out = []
    for nb in a.notebooks:
        order = {c.name: i for i, c in enumerate(nb.source_cells)}
        for cell in sorted(nb.grade_cells, key=lambda c: order.get(c.name, 0)):
            out.append((nb.name, cell.name, float(cell.max_score), cell.cell_type == "code"))
    return out
