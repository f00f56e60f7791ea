"""grades.csv, the terminal summary and the score-distribution figure.

``cells`` lists every graded cell, (notebook, grade_id, points, autograded?): the test cells
(autograded) and the cells graded by hand (written answers, and nbgrader's task cells, which have
points but no answer cell); a row's scores are ``row["cells"][grade_id]`` (or, where a grade id
is used in more than one notebook, ``row["cells"][(notebook, grade_id)]``) = (score, max score,
needs a manual grade?).

Student ids and messages come from names students chose: every cell of grades.csv goes through
:func:`~dlcourse.grading.neutral.csv_cell` (no formulas, no control characters) and every line of
the summary through :func:`~dlcourse.grading.neutral.printable` (no terminal escapes)."""
from __future__ import annotations

import csv
import textwrap
import unicodedata
from pathlib import Path

from . import neutral
from .gradebook import EXPORT_COLUMNS

ID_WIDTH = 30        # the summary's question column; longer grade ids wrap onto lines of their own


def _labels(cells: list[tuple[str, str, float, bool]]) -> list[str]:
    """Each cell's name in the reports: its grade id, or ``notebook/grade_id`` where the same grade
    id is used in more than one notebook (nbgrader's ids are unique per notebook only)."""
    notebooks: dict[str, set[str]] = {}
    for nb, gid, _, _ in cells:
        notebooks.setdefault(gid, set()).add(nb)
    return [f"{nb}/{gid}" if len(notebooks[gid]) > 1 else gid for nb, gid, _, _ in cells]


def _score(row: dict, nb: str, gid: str):
    """(score, max score, needs manual grade) of one cell in a row, None if it has no grade."""
    cells = row["cells"]
    return cells[(nb, gid)] if (nb, gid) in cells else cells.get(gid)


def write_csv(path: Path, rows: list[dict], cells: list[tuple[str, str, float, bool]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([neutral.csv_cell(v) for v in EXPORT_COLUMNS + ["status", "problems"] + _labels(cells)])
        for row in rows:
            w.writerow([neutral.csv_cell(v) for v in
                        [row["export"][k] for k in EXPORT_COLUMNS] + [row["status"], " | ".join(row["problems"])]
                        + [_fmt(_score(row, nb, gid)) for nb, gid, _, _ in cells]])


def _fmt(cell) -> str:
    if cell is None:
        return ""
    score, _, needs_manual = cell
    return "" if needs_manual else f"{score:g}"


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide East Asian characters take two, combining none)."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _chunks(text: str, width: int) -> list[str]:
    """``text`` cut into pieces of at most ``width`` terminal columns."""
    out, piece = [], ""
    for ch in text:
        if piece and _width(piece + ch) > width:
            out.append(piece)
            piece = ""
        piece += ch
    return out + [piece] if piece or not out else out


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _counts(rows: list[dict], nb: str, gid: str, points: float) -> tuple[int, int, int, int, float]:
    """Students with full, partial and zero points, those to grade by hand, and the points of
    those graded."""
    full = part = zero = todo = 0
    total = 0.0
    for r in rows:
        c = _score(r, nb, gid)
        if c is None:
            zero += 1
            continue
        score, _, needs_manual = c
        if needs_manual:
            todo += 1
            continue
        total += score
        if score >= points:
            full += 1
        elif score <= 0:
            zero += 1
        else:
            part += 1
    return full, part, zero, todo, total


def summary(rows: list[dict], cells: list[tuple[str, str, float, bool]], assignment: str) -> str:
    """A plain-text table: per question, how it is graded (by the tests, or by hand: written
    answers and tasks), mean score and how many students got full, partial, zero. A grade id of
    any length keeps the columns aligned: one longer than ``ID_WIDTH`` wraps, the numbers on its
    first line."""
    n = len(rows)
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    lines = [f"{assignment}: {n} students (" + ", ".join(f"{v} {k}" for k, v in sorted(by_status.items())) + ")", ""]
    labels = [neutral.printable(label, limit=None) for label in _labels(cells)]
    width = min(max([len("question")] + [_width(label) for label in labels]), ID_WIDTH)
    header = (f"{_pad('question', width)} {'graded':<7} {'points':>6} {'mean':>6} {'full':>5} {'part':>5} "
              f"{'zero':>5} {'to grade':>8}")
    lines += [header, "-" * len(header)]
    waiting = 0
    for label, (nb, gid, points, autograded) in zip(labels, cells):
        full, part, zero, todo, total = _counts(rows, nb, gid, points)
        graded = n - todo
        # While answers wait for grading by hand, a mean of the others would mislead.
        mean = f"{total / graded:>6.2f}" if graded and not todo else f"{'-':>6}"
        waiting += todo
        first, *more = _chunks(label, width)
        lines.append(f"{_pad(first, width)} {'auto' if autograded else 'by hand':<7} {points:>6g} {mean} "
                     f"{full:>5} {part:>5} {zero:>5} {todo:>8}")
        lines += [f"  {piece}" for piece in _chunks("".join(more), width - 2)] if more else []
    scores = [float(r["export"]["score"] or 0) for r in rows]
    if scores:
        lines += ["", f"total score: mean {sum(scores) / len(scores):.2f}, min {min(scores):g}, max {max(scores):g} "
                      f"(out of {rows[0]['export']['max_score']})"]
    if waiting:
        lines += [""] + textwrap.wrap(
            f"{waiting} answers wait for grading by hand: grade them in nbgrader's formgrader (make lab, then "
            "Nbgrader > Formgrader), then run the same command again to update grades.csv and the feedback "
            "(nothing is graded twice).", 100)
    problem_rows = [r for r in rows if r["status"] != "ok"]
    if problem_rows:
        lines += ["", "students with problems (status: what happened):"]
        for r in problem_rows:
            lines.append(f"  {r['export']['student_id']} ({r['status']})")
            for problem in r["problems"] or [r["status"]]:
                lines += textwrap.wrap(problem, 100, initial_indent="    - ", subsequent_indent="      ")
    return "\n".join(neutral.printable(line, limit=None) for line in lines)


def figure(path: Path, rows: list[dict], cells: list[tuple[str, str, float, bool]], assignment: str) -> None:
    """Stacked bars per question: the share of students with full, partial and zero points, and
    those still to grade by hand. A question nobody passes stands out at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, full, part, zero, todo = [], [], [], [], []
    n = max(len(rows), 1)
    for label, (nb, gid, points, autograded) in zip(_labels(cells), cells):
        f, p, z, t, _ = _counts(rows, nb, gid, points)
        label = neutral.printable(label, limit=40)
        labels.append(f"{label} ({points:g} pt{'' if autograded else ', by hand'})")
        full.append(100 * f / n)
        part.append(100 * p / n)
        zero.append(100 * z / n)
        todo.append(100 * t / n)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 2.0), layout="constrained")
    y = range(len(labels))
    left = [0.0] * len(labels)
    for values, name, color in ((full, "full points", "#2a9d8f"), (part, "partial", "#e9c46a"),
                                (zero, "zero", "#e76f51"), (todo, "to grade by hand", "#adb5bd")):
        ax.barh(list(y), values, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"students (%), n = {len(rows)}")
    ax.set_ylabel("question")
    ax.set_title(f"{assignment}: score distribution per question")
    fig.legend(loc="outside lower center", ncol=4, frameon=False, fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)
