"""Nothing a student writes harms the instructor, another student or the record (issue 12).

A class of honest and hostile submissions (tests/grading/hostile.py) is graded twice in a
throwaway course; each test checks one harm: the class is graded whatever one file is, two
submissions claiming one id are both kept and none is graded, the feedback page runs no script
(in Chromium) and shows no hidden test, every copy is bounded where it is written, times come
from where submissions were collected, and names reach terminals and spreadsheets inert. Unit
tests below attack the intake, the caps and the report directly.
"""
from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbtools import ROOT

sys.path.insert(0, str(Path(__file__).parent / "grading"))
import corpus  # noqa: E402
import hostile  # noqa: E402

from dlcourse.grading import caps, feedback, intake, neutral, report, runner  # noqa: E402
from test_grading import LIMITS, make_course, require_bwrap  # noqa: E402

COPY_CAP = 256 * 2**10     # autograded copies in this class: hostile_output prints 600 kB


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require_bwrap()
    tmp = tmp_path_factory.mktemp("hostile")
    course = make_course(tmp)
    subs = tmp / "submissions"
    hostile.build(subs)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    opts = runner.Options(assignment="cnn", submissions=subs, out=tmp / "out", jobs=2, course=course,
                          limits=LIMITS, quiet=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(caps, "MAX_AUTOGRADED_BYTES", COPY_CAP)
    runs, terminals = [], []
    try:
        for _ in range(2):      # graded twice: the second run reuses and must agree
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                runs.append(runner.grade(opts))
            terminals.append(err.getvalue())
    finally:
        mp.undo()
    rows = {r["export"]["student_id"]: r for r in runs[-1].rows}
    yield {"runs": runs, "rows": rows, "opts": opts, "course": course, "subs": subs, "terminals": terminals}


def problems(row) -> str:
    return " | ".join(row["problems"])


@pytest.mark.parametrize("student", sorted(hostile.CASES))
def test_hostile_outcome(graded, student):
    how, status, score, words = hostile.CASES[student]
    row = graded["rows"].get(student)
    assert row is not None, f"{student} ({how}) has no row"
    assert row["status"] == status, f"{student} ({how}): {row['status']}: {problems(row)}"
    assert float(row["export"]["score"]) == score, f"{student} ({how}): score {row['export']['score']}"
    for word in words:
        assert word in problems(row), f"{student} ({how}): {word!r} not in {problems(row)}"


def test_every_row_is_there_and_honest_rows_are_unchanged_by_hostile_neighbours(graded):
    first, second = (sorted(r["export"]["student_id"] for r in run.rows) for run in graded["runs"])
    assert first == second == sorted(hostile.CASES)
    assert graded["runs"][1].graded == 0, "an unchanged class is not graded again"
    honest = corpus.POINTS.copy()
    for sid in hostile.HONEST + ["hostile_output"]:
        scores = {gid: s for gid, (s, _, manual) in graded["rows"][sid]["cells"].items() if not manual}
        assert scores == {gid: (honest[gid] if gid in ("part1_tests", "part2_tests", "part3_tests") else 0.0)
                          for gid in honest if gid != "written_answer"}, sid


def test_conflicting_submissions_are_kept_and_neither_is_graded(graded):
    from nbgrader.api import Gradebook, MissingEntry
    subs = graded["subs"]
    for path in ("alice/cnn/cnn.ipynb", "alice.zip", "dave!/cnn/cnn.ipynb", "dave?/cnn/cnn.ipynb"):
        assert (subs / path).is_file(), f"{path} was lost"
    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", "dlcourse") as gb:
        for sid in ("alice", "dave"):
            with pytest.raises(MissingEntry):
                gb.find_submission("cnn", sid)
    assert not (graded["course"] / "autograded" / "alice").exists()
    page = (graded["opts"].out / "feedback" / "alice" / "cnn" / "index.html").read_text()
    assert "instructor decides" in page and "alice.zip" not in page
    assert "2 alice" not in graded["runs"][-1].summary and "alice (conflict)" in graded["runs"][-1].summary


def test_submission_times_are_the_collected_ones_never_the_notebooks(graded):
    with open(graded["opts"].out / "grades.csv") as f:
        times = {r["student_id"]: r["timestamp"] for r in csv.DictReader(f)}
    for sid, when in hostile.TIMES.items():
        assert times[sid].startswith(when), f"{sid}: {times[sid]}"
    assert not any(t.startswith("1999") for t in times.values())


# --- what is shown: terminals, spreadsheets, browsers -----------------------------------------
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def test_terminal_and_summary_show_no_control_characters(graded):
    for text in [*graded["terminals"], (graded["opts"].out / "summary.txt").read_text()]:
        assert "\x1b" not in text and "\x07" not in text
        assert not CONTROL.search(text.replace("\r\x1b[K", "")), CONTROL.search(text)
    assert "\\x1b]0;owned" in (graded["opts"].out / "summary.txt").read_text()   # shown, escaped


def test_grades_csv_has_no_formula_and_no_control_character(graded):
    with open(graded["opts"].out / "grades.csv", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert not [c for c in cells if CONTROL.search(c)]
    assert any(c.startswith("'=HYPERLINK") for c in cells), "the formula is kept, as text"


def test_autograded_copies_and_feedback_pages_are_bounded(graded):
    course, out = graded["course"], graded["opts"].out
    copies = list((course / "autograded").rglob("*.ipynb"))
    assert copies and max(p.stat().st_size for p in copies) <= COPY_CAP
    nb = nbformat.read(course / "autograded" / "hostile_output" / "cnn" / "cnn.ipynb", as_version=4)
    assert "output removed by the grader" in json.dumps(nb)
    assert max(p.stat().st_size for p in (out / "feedback").rglob("*.html")) <= caps.MAX_PAGE_BYTES


def hidden_lines() -> list[str]:
    """Every line of the hidden tests that the released notebook does not show anyway."""
    source = nbformat.read(ROOT / "solutions" / "cnn" / "cnn.ipynb", as_version=4)
    release = nbformat.read(ROOT / "exercises" / "cnn" / "cnn.ipynb", as_version=4)
    visible = {line.strip() for c in release.cells for line in c.source.splitlines()}
    return [line for line in feedback.hidden_lines("\n".join(c.source for c in source.cells)) if line not in visible]


def page_text(path: Path) -> str:
    """A page as a reader sees its text, without spaces (so re-spacing cannot hide a line)."""
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]*>", "", path.read_text())))


def test_no_feedback_page_shows_a_hidden_test_line(graded):
    lines = hidden_lines()
    assert len(lines) >= 20
    pages = list((graded["opts"].out / "feedback").rglob("*.html"))
    assert len(pages) == len(hostile.CASES)
    for page in pages:
        text = page_text(page)
        shown = [line for line in lines if re.sub(r"\s+", "", line) in text]
        assert not shown, f"{page}: {shown[:3]}"
    # hostile_output prints the kernel's whole input history (In), re-spaced and escaped: the hidden
    # tests run in the grader's checker, never in the student's kernel, so there is nothing of them
    # to print (the loop above checks every page); the filter of outputs is a second line.


def test_feedback_page_runs_no_student_script_in_chromium(graded):
    sys.path.insert(0, str(ROOT / "tools"))
    from chromium import chromium, missing
    assert missing() is None, missing()
    page = graded["opts"].out / "feedback" / "hostile_output" / "cnn" / "cnn.html"
    text = page.read_text()
    assert "208 parameters" in text and "bold survives" in text      # the student's work is shown
    with chromium() as driver:
        driver.get(page.as_uri())
        seen = driver.execute_script("""
            const handlers = [];
            for (const el of document.querySelectorAll('*'))
                for (const a of el.attributes)
                    if (a.name.toLowerCase().startsWith('on')) handlers.push(el.tagName + ' ' + a.name);
            return {pwned: window.pwned === undefined ? null : String(window.pwned), title: document.title,
                    handlers: handlers,
                    js_links: [...document.querySelectorAll('[href],[src],[action],[formaction]')]
                        .map(e => e.getAttribute('href') || e.getAttribute('src') || '')
                        .filter(u => /^\\s*(javascript|data:text\\/html|vbscript)/i.test(u)),
                    frames: document.querySelectorAll('iframe, object, embed, frame').length,
                    scripts: [...document.scripts].map(s => s.textContent).filter(t => t.includes('pwned')),
                    hidden: getComputedStyle(document.body).display === 'none'};
        """)
    assert seen["pwned"] is None, seen
    assert "pwned" not in seen["title"], seen
    assert seen["handlers"] == [] and seen["js_links"] == [] and seen["frames"] == 0, seen
    assert seen["scripts"] == [] and not seen["hidden"], seen


# --- unit attacks, without a kernel -----------------------------------------------------------
def test_intake_never_blocks_on_special_files_and_reads_within_the_budget(tmp_path):
    """40 sparse 1-GiB files, 40 sparse files just under the notebook cap, real files over the
    student's budget, a pipe: all refused or cut before reading, in a fresh process whose peak
    memory is measured."""
    d = tmp_path / "subs" / "sparse" / "cnn"
    d.mkdir(parents=True)
    for i in range(40):
        with open(d / f"big{i}.ipynb", "wb") as f:
            f.truncate(2**30)
        with open(d / f"mid{i}.ipynb", "wb") as f:
            f.truncate(intake.MAX_NOTEBOOK_BYTES - 1)
    real = tmp_path / "subs" / "real" / "cnn"
    real.mkdir(parents=True)
    for i in range(4):
        (real / f"r{i}.ipynb").write_bytes(os.urandom(30 * 2**20))
    os.mkfifo(tmp_path / "subs" / "pipe.ipynb")
    code = ("import resource, sys; from dlcourse.grading import intake\n"
            f"subs = intake.collect({str(tmp_path / 'subs')!r}, 'cnn', ['cnn'])\n"
            # VmHWM is this process's own peak: ru_maxrss would also count the peak of the process
            # it was forked from (Linux keeps it across exec), here the test runner's.
            "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n"
            "for s in subs.values(): print(s.student, '|'.join(s.problems))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    peak_mib = int(first) / 1024
    out = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in rest}
    assert peak_mib < 400, f"intake peaked at {peak_mib:.0f} MiB"
    assert out["sparse"].count("1024 MiB") == 40 and out["sparse"].count("sparse file") == 40
    assert out["real"].count("read in all for one student") == 1
    assert "named pipe" in out["pipe"]


@pytest.mark.parametrize("name,data,why", [
    ("surrogate", None, "lone surrogates"),
    ("deep_cells", b'{"cells": [' + b"{" * 0 + b"[" * 50_000 + b"]" * 50_000 + b"]}", "nested too deeply"),
    ("bigint", b'{"cells": [], "x": ' + b"1" * 5000 + b"}", "not valid JSON"),
    ("utf16", '{"cells": []}'.encode("utf-16"), "not UTF-8"),
    ("worksheets_junk", b'{"worksheets": [{"cells": [1, {"x": []}]}], "nbformat": 3}', None),
])
def test_rebuild_refuses_or_repairs_but_never_raises(name, data, why):
    release = nbformat.read(ROOT / "exercises" / "cnn" / "cnn.ipynb", as_version=4)
    if data is None:
        nb = json.loads(nbformat.writes(corpus._nb(corpus.FAST)))
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == "part1_answer":
                cell["source"] = "# caf\ud800\n" + "".join(cell["source"])
        data = json.dumps(nb).encode()
    nb, problems = intake.rebuild(data, release)
    if nb is not None:
        nbformat.writes(nb).encode()      # what the runner does next: must not raise
    if why:
        assert why in " | ".join(problems)


def test_collisions_keep_both_sources_and_normalised_names_collide(tmp_path):
    text = nbformat.writes(corpus._nb(corpus.FAST))
    for folder in ("eve", "eve ", "frank"):
        (tmp_path / folder / "cnn").mkdir(parents=True)
        (tmp_path / folder / "cnn" / "cnn.ipynb").write_text(text)
    (tmp_path / "frank_cnn.ipynb").write_text(text)
    subs = intake.collect(tmp_path, "cnn", ["cnn"])
    assert sorted(subs) == ["eve", "frank"]
    assert subs["eve"].conflict == ["eve/", "eve /"] and subs["eve"].files == {}
    assert subs["frank"].conflict == ["frank/", "frank_cnn.ipynb"]


def test_bound_notebook_keeps_it_under_the_cap_and_says_so(tmp_path):
    nb = corpus._nb(corpus.FAST)
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * (20 * 2**20)),
                           nbformat.v4.new_output("display_data", data={"text/html": "<b>x</b>" * 2**20})]
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    src, dest = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    nbformat.write(nb, src)
    note = caps.copy_notebook(src, dest, cap=2**20)
    assert dest.stat().st_size <= 2**20 and "output truncated" in note
    copy = nbformat.read(dest, as_version=4)
    assert "output removed by the grader" in copy.cells[3].outputs[0].text
    assert copy.cells[4].outputs[0].text == "kept\n"
    assert caps.copy_notebook(dest, tmp_path / "c.ipynb", cap=2**20) is None


def test_neutral_text_for_each_medium():
    assert neutral.printable("a\x1b[2Jb\u202ec\r") == "a\\x1b[2Jb\\u202ec\\r"
    assert len(neutral.printable("x" * 10_000)) == neutral.MAX_MESSAGE
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\uff1d1"):
        assert neutral.csv_cell(cell).startswith("'"), cell
    assert neutral.csv_cell(-1.5) == -1.5 and neutral.csv_cell("ok") == "ok"
    cleaned = neutral.clean_html('<a href="javascript:x()" onclick="y()">a</a><script>z()</script>')
    assert "<script" not in cleaned and "onclick" not in cleaned and "javascript" not in cleaned
    row = {"export": {k: "" for k in report.EXPORT_COLUMNS} | {"student_id": "@x", "score": 0, "max_score": 1},
           "status": "broken", "problems": ["=cmd|' /C calc'!A0 \x1b[31m"], "cells": {}}
    text = report.summary([row], [], "cnn")
    assert "\x1b" not in text and "\\x1b[31m" in text
