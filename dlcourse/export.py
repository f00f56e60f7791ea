"""``dlcourse export``: the grades of ``dlcourse grade`` in the import format of a school's gradebook.

    dlcourse export --format canvas --roster roster.csv grading-out/grades.csv [more grades.csv ...] --out canvas.csv
    dlcourse export --format moodle --roster roster.csv grading-out/grades.csv --out moodle.csv

Each ``grades.csv`` (one per assignment, written by ``dlcourse grade``) gives one grade column: the
``score`` of each student (after any late penalty), out of ``max_score``. The roster maps the
course's student ids (nbgrader's, the hub's user names) to the platform's ids. It is a CSV file
with a header and these columns (only ``student_id`` and the platform's identifier are required):

    student_id   the id in grades.csv
    name         the student's name, as the platform shows it (Canvas's "Student" column)
    canvas_id    Canvas's user id ("ID" in a Canvas gradebook export)
    sis_user_id, sis_login_id, section   Canvas's SIS ids and section, as in its export
    email        Moodle: the user's email address
    idnumber     Moodle: the user's ID number

The simplest way to get the ids is the platform's own gradebook export: its first columns are these.

Canvas (Canvas Instructor Guide, "How do I import grades in the Gradebook?" and "How do I export
grades in the Gradebook?"): the columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then
one column per assignment; a second row whose ``Student`` cell is ``Points Possible`` gives each
assignment's points. Canvas matches students by ID, SIS User ID or SIS Login ID; an assignment
column whose name Canvas does not know creates a new assignment.

Moodle (Moodle docs, "Grade import", CSV import): one column identifies the user (mapped on import
to "Email address" or "ID number"), each other column is mapped to a grade item; grades are plain
numbers. The file has ``ID number``, ``Email address``, then one column per assignment.

Every student of the grades must be in the roster (a grade is never dropped); a roster student with
no grade for an assignment gets an empty cell, which both platforms read as "no grade" (it does not
overwrite one).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["ID number", "Email address"]
FORMATS = ("canvas", "moodle")


@dataclass
class Assignment:
    name: str
    max_score: float
    scores: dict[str, float]        # student_id -> score


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {text!r}") from None


def read_grades(path: Path) -> Assignment:
    """One assignment's scores from a grades.csv of `dlcourse grade` (or nbgrader's export)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grades file {path} does not exist")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        needed = {"assignment", "student_id", "score", "max_score"}
        if not needed <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: expected the columns of dlcourse grade's grades.csv "
                             f"({', '.join(sorted(needed))}), got {reader.fieldnames}")
        rows = list(reader)
    names = {r["assignment"] for r in rows}
    if len(names) != 1:
        raise ValueError(f"{path}: expected the grades of one assignment, got {sorted(names) or 'none'}")
    maxima = {r["max_score"] for r in rows}
    if len(maxima) != 1:
        raise ValueError(f"{path}: the max_score differs between rows: {sorted(maxima)}")
    scores = {}
    for r in rows:
        sid = r["student_id"]
        if sid in scores:
            raise ValueError(f"{path}: student {sid!r} has two rows")
        scores[sid] = _number(r["score"], f"{path}: score of {sid!r}")
    return Assignment(names.pop(), _number(maxima.pop(), f"{path}: max_score"), scores)


def read_roster(path: Path, fmt: str) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"roster {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        rows = [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]
    ids = {"canvas": ("canvas_id", "sis_user_id", "sis_login_id"), "moodle": ("email", "idnumber")}[fmt]
    if "student_id" not in columns or not columns & set(ids):
        raise ValueError(f"roster {path}: expected a student_id column and at least one of {', '.join(ids)} "
                         f"for {fmt}, got {sorted(columns)}")
    seen = set()
    for n, r in enumerate(rows, start=2):
        if not r.get("student_id"):
            raise ValueError(f"roster {path}, line {n}: no student_id")
        if r["student_id"] in seen:
            raise ValueError(f"roster {path}, line {n}: student_id {r['student_id']!r} appears twice")
        seen.add(r["student_id"])
        if not any(r.get(k) for k in ids):
            raise ValueError(f"roster {path}, line {n}: {r['student_id']!r} has none of {', '.join(ids)}")
    return rows


def _fmt(score: float | None) -> str:
    return "" if score is None else f"{score:g}"


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (names and ids come from people)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export(assignments: list[Assignment], roster: list[dict], fmt: str) -> str:
    """The gradebook import CSV, as text."""
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not assignments:
        raise ValueError("expected at least one grades.csv")
    names = [a.name for a in assignments]
    if len(set(names)) != len(names):
        raise ValueError(f"two grades files are for the same assignment: {names}")
    known = {r["student_id"] for r in roster}
    unknown = sorted({sid for a in assignments for sid in a.scores} - known)
    if unknown:
        raise ValueError(f"students in the grades but not in the roster (add them, so that no grade is lost): "
                         f"{', '.join(unknown)}")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if fmt == "canvas":
        w.writerow(CANVAS_COLUMNS + names)
        w.writerow(["Points Possible", "", "", "", ""] + [_fmt(a.max_score) for a in assignments])
        for r in roster:
            w.writerow([_safe(r.get("name") or r["student_id"]), r.get("canvas_id", ""), _safe(r.get("sis_user_id", "")),
                        _safe(r.get("sis_login_id", "")), _safe(r.get("section", ""))]
                       + [_fmt(a.scores.get(r["student_id"])) for a in assignments])
    else:
        w.writerow(MOODLE_COLUMNS + names)
        for r in roster:
            w.writerow([_safe(r.get("idnumber", "")), _safe(r.get("email", ""))]
                       + [_fmt(a.scores.get(r["student_id"])) for a in assignments])
    return out.getvalue()


def main(args) -> int:
    assignments = [read_grades(p) for p in args.grades]
    roster = read_roster(args.roster, args.format)
    text = export(assignments, roster, args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {len(roster)} students, {len(assignments)} assignment(s), {args.format} format")
    else:
        print(text, end="")
    return 0
