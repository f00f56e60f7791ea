"""`dlcourse export`: grades in the import formats of Canvas and Moodle gradebooks.

The expected columns are the platforms' documented ones (dlcourse/export.py cites the pages):
Canvas imports "Student, ID, SIS User ID, SIS Login ID, Section", then one column per assignment,
with a "Points Possible" row second; Moodle imports one identifier column (mapped to "Email
address" or "ID number") and one column of plain numbers per grade item.
"""
import csv
import io

import pytest

from dlcourse import export
from dlcourse.__main__ import main

GRADES_HEADER = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                 "raw_score", "late_submission_penalty", "score", "max_score", "status", "problems"]


def _grades(tmp_path, name, rows, max_score=12):
    path = tmp_path / f"{name}-grades.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(GRADES_HEADER)
        for sid, score in rows:
            w.writerow([name, "", "2026-11-29 20:00:00", sid, "", "", "", score, 0, score, max_score, "ok", ""])
    return path


ROSTER = """student_id,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber
ada,"Lovelace, Ada",1001,S1,ada@uni.example,Section A,ada@uni.example,S1
alan,"Turing, Alan",1002,S2,alan@uni.example,Section A,alan@uni.example,S2
grace,"Hopper, Grace",1003,S3,grace@uni.example,Section B,grace@uni.example,S3
"""


@pytest.fixture
def files(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    g1 = _grades(tmp_path, "shallow_deep", [("ada", 11.5), ("alan", 5)])
    g2 = _grades(tmp_path, "cnn", [("ada", 9), ("alan", 0), ("grace", 7)], max_score=10)
    return roster, g1, g2


def _rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_canvas_import_has_canvas_columns_points_possible_and_one_column_per_assignment(files, tmp_path):
    roster, g1, g2 = files
    out = tmp_path / "canvas.csv"
    assert main(["export", "--format", "canvas", "--roster", str(roster), str(g1), str(g2), "--out", str(out)]) == 0
    rows = _rows(out.read_text())
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "shallow_deep", "cnn"]
    assert rows[1][0] == "Points Possible" and rows[1][5:] == ["12", "10"]
    by_id = {r[1]: r for r in rows[2:]}
    assert by_id["1001"] == ["Lovelace, Ada", "1001", "S1", "ada@uni.example", "Section A", "11.5", "9"]
    assert by_id["1002"][5:] == ["5", "0"]
    # no grade for this assignment: an empty cell, which Canvas leaves unchanged
    assert by_id["1003"][5:] == ["", "7"]
    assert len(rows) == 2 + 3


def test_moodle_import_has_an_identifier_column_and_numeric_grades(files):
    roster, g1, _ = files
    text = export.export([export.read_grades(g1)], export.read_roster(roster, "moodle"), "moodle")
    rows = _rows(text)
    assert rows[0] == ["ID number", "Email address", "shallow_deep"]
    assert rows[1] == ["S1", "ada@uni.example", "11.5"]
    assert rows[2] == ["S2", "alan@uni.example", "5"]
    assert rows[3] == ["S3", "grace@uni.example", ""]
    for row in rows[1:]:
        if row[2]:
            float(row[2])


def test_a_graded_student_missing_from_the_roster_is_an_error_not_a_lost_grade(files, tmp_path):
    roster, _, _ = files
    extra = _grades(tmp_path, "rnn", [("ada", 3), ("mallory", 4)])
    with pytest.raises(ValueError, match="mallory"):
        export.export([export.read_grades(extra)], export.read_roster(roster, "canvas"), "canvas")


def test_a_roster_without_the_platforms_ids_is_refused(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\nada,Ada\n")
    with pytest.raises(ValueError, match="canvas_id"):
        export.read_roster(roster, "canvas")
    with pytest.raises(ValueError, match="email"):
        export.read_roster(roster, "moodle")


def test_the_command_reports_bad_input_clearly(files, tmp_path, capsys):
    roster, _, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_text("name,points\nada,3\n")
    assert main(["export", "--format", "moodle", "--roster", str(roster), str(bad)]) == 1
    assert "expected the columns" in capsys.readouterr().err
    assert main(["export", "--format", "moodle", "--roster", str(roster), str(tmp_path / "none.csv")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_name_that_looks_like_a_formula_is_not_one(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text('student_id,name,canvas_id\nada,"=HYPERLINK(""x"")",1001\n')
    g = _grades(tmp_path, "cnn", [("ada", 1)])
    rows = _rows(export.export([export.read_grades(g)], export.read_roster(roster, "canvas"), "canvas"))
    assert rows[2][0].startswith("'=")
