"""``dlcourse release-feedback``: hand the feedback of ``dlcourse grade`` to the students through
nbgrader's exchange.

    dlcourse release-feedback ASSIGNMENT [--out grading-out] [--course .]

nbgrader's ``release_feedback`` finds each student's feedback page in
``<feedback>/<student>/<assignment>/<notebook>.html`` and names it in the exchange by a hash of the
submission's ``submission_secret.txt`` (written by ``nbgrader submit`` and collected into
``submitted/``): it reads that file, and ``timestamp.txt``, from the feedback folder, where
``nbgrader generate_feedback`` copies them. ``dlcourse grade`` writes the pages into
``OUT/feedback/`` without them, so this command

1. copies ``timestamp.txt`` and ``submission_secret.txt`` of each collected submission
   (``<course>/submitted/<student>/<assignment>/``, regular files of at most 4 KiB) next to the
   student's feedback page;
2. runs ``nbgrader release_feedback ASSIGNMENT`` on ``OUT/feedback``, leaving out the students who
   have no collected submission (their page explains why there is no grade; nbgrader could not
   name it in the exchange) and saying who they are.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

COPIED = ("timestamp.txt", "submission_secret.txt")
MAX_BYTES = 4096


def _small_regular_file(path: Path) -> bytes | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
        return None
    return path.read_bytes()


def prepare(course: Path, feedback: Path, assignment: str) -> tuple[list[str], list[str]]:
    """Copy the submissions' timestamp and secret next to each feedback page.

    Returns (students whose feedback can be released, students left out)."""
    ready, left_out = [], []
    if not feedback.is_dir():
        raise ValueError(f"no feedback folder {feedback}: run `dlcourse grade {assignment} ... --out {feedback.parent}` first")
    for folder in sorted(p for p in feedback.iterdir() if p.is_dir()):
        target = folder / assignment
        if not target.is_dir():
            continue
        pages = [p for p in target.glob("*.html") if p.name != "index.html"]
        submitted = course / "submitted" / folder.name / assignment
        files = {name: _small_regular_file(submitted / name) for name in COPIED}
        if not pages or any(v is None for v in files.values()):
            left_out.append(folder.name)
            continue
        for name, data in files.items():
            (target / name).write_bytes(data)
        ready.append(folder.name)
    return ready, left_out


def main(args) -> int:
    course = args.course.resolve()
    out = args.out if args.out.is_absolute() else (Path.cwd() / args.out)
    feedback = out.resolve() / "feedback"
    ready, left_out = prepare(course, feedback, args.assignment)
    if not ready:
        raise ValueError(f"no feedback to release for {args.assignment} in {feedback} "
                         f"(students left out: {', '.join(left_out) or 'none'})")
    cmd = [sys.executable, "-m", "nbgrader", "release_feedback", args.assignment,
           f"--CourseDirectory.root={course}", f"--CourseDirectory.feedback_directory={os.path.relpath(feedback, course)}"]
    if left_out:
        cmd.append(f"--CourseDirectory.student_id_exclude={','.join(left_out)}")
    from dlcourse.release import nbgrader_env
    proc = subprocess.run(cmd, cwd=course, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader release_feedback failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    print(f"released the feedback of {args.assignment} to {len(ready)} students: {', '.join(ready)}")
    if left_out:
        print(f"not released (no collected submission with nbgrader's timestamp and secret): {', '.join(left_out)}")
    return 0
