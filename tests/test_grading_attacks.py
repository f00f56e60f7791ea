"""``dlcourse grade`` against a corpus of attacks on its split design (tests/grading/attacks.py).

One class of submissions, graded once: every attack (one answer cell of ``corpus.FAST`` replaced by
code that does not solve the task but tries to earn its points, or to crash, hang or abuse the
grader), the honest submission and the references (FAST without part 1, 2 or 3). Fair means: an
attack scores exactly as its reference, part by part (or, for attacks that can only break their own
author's channel, never more than its reference), and the honest rows are unchanged. Safe means:
every student has a row, nothing is left running, no file the grader can read reaches a student.

``DLCOURSE_ATTACKS=name,name`` grades only those attacks (while developing an attack).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "grading"))
import attacks  # noqa: E402
import corpus  # noqa: E402
from test_grading import LIMITS, cell_scores, leftover_sandboxes, make_course, require_bwrap  # noqa: E402

from dlcourse.grading import runner  # noqa: E402

MARKER = f"TOPSECRET-{os.getpid()}-{int(time.time())}"
REFERENCES = {"honest": corpus.FAST, "ref_no_part1": corpus.without("part1_answer"),
              "ref_no_part2": corpus.without("part2_answer"), "ref_no_part3": corpus.without("part3_answer")}


class GraderMemory(threading.Thread):
    """Samples the resident memory of the grader's own processes (the runner's workers and the
    checkers they start: every descendant of this process that is not in a sandbox) and keeps the
    peak of any one of them per student (a worker works in ``<out>/.work/<student>``; a checker is
    attributed to the worker it descends from)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak: dict[str, int] = {}
        self.stop = False

    @staticmethod
    def _student(proc, cwds: dict) -> str | None:
        import psutil
        while proc is not None:
            cwd = cwds.get(proc.pid)
            if cwd and "/.work/" in cwd:
                return cwd.split("/.work/", 1)[1].split("/")[0]
            try:
                proc = proc.parent()
            except psutil.Error:
                return None
        return None

    def run(self):
        import psutil
        me = psutil.Process()
        while not self.stop:
            try:
                procs = me.children(recursive=True)
            except psutil.Error:
                procs = []
            sandboxed, cwds = set(), {}
            for p in procs:
                try:
                    cwds[p.pid] = p.cwd()
                    if p.name() == "bwrap":
                        sandboxed.add(p.pid)
                        sandboxed.update(c.pid for c in p.children(recursive=True))
                except psutil.Error:
                    pass
            for p in procs:
                if p.pid in sandboxed:
                    continue
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                student = self._student(p, cwds)
                if student:
                    self.peak[student] = max(self.peak.get(student, 0), rss)
            time.sleep(0.3)


def selected() -> list[str]:
    only = [n for n in os.environ.get("DLCOURSE_ATTACKS", "").split(",") if n]
    unknown = [n for n in only if n not in attacks.ATTACKS]
    assert not unknown, f"unknown attacks: {unknown}"
    return only or sorted(attacks.ATTACKS)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require_bwrap()
    tmp = tmp_path_factory.mktemp("attacks")
    course = make_course(tmp)
    # A file outside the sandbox that the grader's user can read (as it can read every student's
    # notebook and the gradebook); its lines repeat, which Keras's lookup layers complain about.
    secret = tmp / "secret.txt"
    secret.write_text(f"{MARKER}\n{MARKER}\nsecond line {MARKER}\n")
    subs = tmp / "submissions"
    for student, answers in REFERENCES.items():
        corpus._write(subs, student, corpus._nb(answers))
    names = selected()
    for name in names:
        _, _, cell, code = attacks.ATTACKS[name]
        corpus._write(subs, name, corpus._nb(dict(corpus.FAST, **{cell: code.replace("@SECRET@", str(secret))})))
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    opts = runner.Options(assignment="cnn", submissions=subs, out=tmp / "out", jobs=2, course=course,
                          limits=LIMITS, quiet=True)
    sampler = GraderMemory()
    sampler.start()
    start, started = time.monotonic(), time.time()
    try:
        outcome = runner.grade(opts)
    finally:
        sampler.stop = True
    elapsed = time.monotonic() - start
    sampler.join(timeout=5)
    memory = dict(sampler.peak)
    rows = {r["export"]["student_id"]: r for r in outcome.rows}
    summary = {s: {"cells": cell_scores(r), "status": r["status"], "problems": r["problems"], "seconds": r.get("seconds"),
                   "grader_peak_rss_mib": memory.get(s, 0) // 2**20} for s, r in rows.items()}
    (tmp / "summary.json").write_text(json.dumps({"elapsed": elapsed, "rows": summary}, indent=1, default=str))
    print(f"\ngraded {len(rows)} submissions in {elapsed:.0f} s; summary in {tmp / 'summary.json'}")
    yield {"rows": rows, "opts": opts, "course": course, "names": names, "elapsed": elapsed, "started": started,
           "secret": secret, "tmp": tmp, "memory": memory}


def _row(graded, student):
    rows = graded["rows"]
    assert student in rows, f"{student} has no row: the grader lost it (rows: {sorted(rows)})"
    return rows[student]


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_attack_scores_as_unanswered(graded, name):
    if name not in graded["names"]:
        pytest.skip("not selected (DLCOURSE_ATTACKS)")
    cls, how, cell, _ = attacks.ATTACKS[name]
    want = attacks.expectation(name)
    row = _row(graded, name)
    ref = _row(graded, want["reference"])
    got, expected = cell_scores(row), cell_scores(ref)
    problems = " | ".join(row["problems"])
    context = f"{name} ({cls}: {how}) replacing {cell}: scores {got}, {want['reference']} scores {expected}; " \
              f"status {row['status']}; problems: {problems[:1500]}"
    if want["mode"] == "equal":
        assert got == expected, context
    else:
        assert set(got) == set(expected), context
        assert all(got[g] <= expected[g] for g in got), context
    for word in want["words"]:
        assert word in problems, f"{word!r} not in problems: {context}"
    if want["secret"]:
        texts = [problems]
        autograded = graded["course"] / "autograded" / name / "cnn" / "cnn.ipynb"
        if autograded.exists():
            texts.append(autograded.read_text())
        feedback = graded["opts"].out / "feedback" / name
        if feedback.exists():
            texts += [p.read_text(errors="replace") for p in feedback.rglob("*") if p.is_file()]
        leaked = [t for t in texts if MARKER in t]
        assert not leaked, f"{name}: the text of a grader-side file reached the student: " \
                           f"{leaked[0][max(0, leaked[0].find(MARKER) - 600):leaked[0].find(MARKER) + 200]}"


def test_honest_rows_are_unchanged(graded):
    rows = graded["rows"]
    points = corpus.POINTS
    full = {gid: points[gid] if gid in ("part1_tests", "part2_tests", "part3_tests") else 0.0
            for gid in points if gid != "written_answer"}
    assert cell_scores(_row(graded, "honest")) == full, _row(graded, "honest")["problems"]
    for ref, part in (("ref_no_part1", "part1_tests"), ("ref_no_part2", "part2_tests"), ("ref_no_part3", "part3_tests")):
        assert cell_scores(_row(graded, ref)) == {**full, part: 0.0}, (ref, rows[ref]["problems"])
        assert rows[ref]["status"] == "ok", (ref, rows[ref]["problems"])
    assert rows["honest"]["status"] == "ok", rows["honest"]["problems"]


def test_every_student_has_a_row_and_nothing_is_left_running(graded):
    rows = graded["rows"]
    missing = [s for s in [*REFERENCES, *graded["names"]] if s not in rows]
    assert missing == [], f"no row for {missing}"
    errors = {s: r["problems"] for s, r in rows.items() if r["status"] == "error"}
    assert errors == {}, f"the grader failed on: {errors}"
    assert leftover_sandboxes(since=graded["started"]) == []
    import psutil
    stray = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["create_time"] >= graded["started"] and str(graded["tmp"]) in cmd:
            stray.append(f"{proc.pid}: {cmd[:200]}")
    assert stray == [], f"processes of the run still running: {stray}"
    assert not Path("/tmp/pwned").exists(), "a model's code ran outside the sandbox"


def test_grader_side_memory_is_bounded(graded):
    """What a student sends or makes the grader do must not grow the grader's own processes (the
    workers and checkers run outside the sandbox, with no watchdog) by more than about a GiB over
    what grading an honest notebook takes."""
    memory = graded["memory"]
    baseline = max(memory.get(s, 0) for s in REFERENCES)
    assert baseline > 0, f"no grader process was sampled: {memory}"
    over = {s: f"{m / 2**30:.2f} GiB" for s, m in memory.items() if m > baseline + 2**30}
    assert over == {}, f"grader-side peak memory above {(baseline + 2**30) / 2**30:.2f} GiB: {over}"


def test_at_least_40_kinds():
    by_class: dict[str, list[str]] = {}
    for name, (cls, how, cell, code) in attacks.ATTACKS.items():
        assert cls in attacks.CLASSES, name
        assert cell in attacks.REFERENCE, name
        assert how and code.strip(), name
        by_class.setdefault(cls, []).append(name)
    assert len(attacks.ATTACKS) >= 40, len(attacks.ATTACKS)
    assert set(by_class) >= set("abcdef"), sorted(by_class)
    thin = {c: len(v) for c, v in by_class.items() if c in "abcdef" and len(v) < 4}
    assert thin == {}, f"classes with fewer than 4 kinds of attack: {thin}"
