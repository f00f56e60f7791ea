"""grades.csv, the terminal summary and the score-distribution figure.

Student ids and messages come from names students chose: every cell of grades.csv goes through
:func:`~dlcourse.grading.neutral.csv_cell` (no formulas, no control characters) and every line of
the summary through :func:`~dlcourse.grading.neutral.printable` (no terminal escapes)."""
from __future__ import annotations

import csv
import textwrap
from pathlib import Path

from . import neutral
from .gradebook import EXPORT_COLUMNS


def write_csv(path: Path, rows: list[dict], cells: list[tuple[str, str, float, bool]]) -> None:
    cell_cols = [gid for _, gid, _, _ in cells]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_COLUMNS + ["status", "problems"] + cell_cols)
        for row in rows:
            w.writerow([neutral.csv_cell(v) for v in
                        [row["export"][k] for k in EXPORT_COLUMNS] + [row["status"], " | ".join(row["problems"])]
                        + [_fmt(row["cells"].get(gid)) for gid in cell_cols]])


def _fmt(cell) -> str:
    if cell is None:
        return ""
    score, _, needs_manual = cell
    return "" if needs_manual else f"{score:g}"


def summary(rows: list[dict], cells: list[tuple[str, str, float, bool]], assignment: str) -> str:
    """A plain-text table: per question, mean score and how many students got full, partial, zero."""
    n = len(rows)
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    lines = [f"{assignment}: {n} students (" + ", ".join(f"{v} {k}" for k, v in sorted(by_status.items())) + ")", ""]
    header = f"{'question':<18} {'points':>6} {'mean':>6} {'full':>5} {'part':>5} {'zero':>5} {'to grade':>8}"
    lines += [header, "-" * len(header)]
    waiting = 0
    for _, gid, points, _ in cells:
        full = part = zero = todo = 0
        total = 0.0
        for r in rows:
            c = r["cells"].get(gid)
            if c is None:
                zero += 1
                continue
            score, _, needs_manual = c
            if needs_manual:
                todo += 1
                continue
            total += score
            full += score >= points
            zero += score <= 0
            part += 0 < score < points
        graded = n - todo
        # While answers wait for grading by hand, a mean of the others would mislead.
        mean = f"{total / graded:>6.2f}" if graded and not todo else f"{'-':>6}"
        waiting += todo
        lines.append(f"{gid:<18} {points:>6g} {mean} {full:>5} {part:>5} {zero:>5} {todo:>8}")
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
    for _, gid, points, _ in cells:
        f = p = z = t = 0
        for r in rows:
            c = r["cells"].get(gid)
            if c is None:
                z += 1
            elif c[2]:
                t += 1
            elif c[0] >= points:
                f += 1
            elif c[0] <= 0:
                z += 1
            else:
                p += 1
        labels.append(f"{gid} ({points:g} pt)")
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
