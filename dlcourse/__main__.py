"""The ``dlcourse`` command.

    dlcourse grade ASSIGNMENT --submissions DIR --out DIR [--jobs N]    grade a whole class
    dlcourse grade ASSIGNMENT ... --queue redis://:PASSWORD@HOST:PORT/0  the same, graded by workers
    dlcourse worker --queue URL --work DIR                               grade jobs from the queue
    dlcourse release [ASSIGNMENT ...]                                    regenerate exercises/
    dlcourse release-feedback ASSIGNMENT [--out grading-out]             feedback to students (nbgrader's exchange)
    dlcourse export --format canvas|moodle --roster ROSTER GRADES.csv ... [--out FILE]
                                                                         grades for a school's gradebook
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return parse


def _grade_parser(sub) -> None:
    from dlcourse.grading.sandbox import Limits

    d = Limits()
    p = sub.add_parser("grade", help="grade every submission of an assignment with nbgrader, in parallel and sandboxed",
                       description="Grade every student's submission of ASSIGNMENT with nbgrader's autograde, in "
                                   "parallel, each in a bubblewrap sandbox; record the grades in the course's "
                                   "gradebook; write OUT/grades.csv, OUT/feedback/<student>/<assignment>/, "
                                   "OUT/summary.txt and OUT/scores.png.")
    p.add_argument("assignment", help="the assignment's name (a folder of solutions/)")
    p.add_argument("--submissions", required=True, type=Path,
                   help="folder of submissions: <student>/<assignment>/<notebook>.ipynb (nbgrader's layout), "
                        "<student>.zip, or <student>.ipynb")
    p.add_argument("--out", required=True, type=Path, help="folder for grades.csv, feedback/, the report")
    p.add_argument("--jobs", "-j", type=_positive(int), default=os.cpu_count() or 1,
                   help="submissions graded at once (default: the number of cores, %(default)s here)")
    p.add_argument("--course", type=Path, default=Path.cwd(),
                   help="the course folder, with nbgrader_config.py and solutions/ (default: this folder)")
    p.add_argument("--db-url", help="nbgrader gradebook URL, e.g. postgresql://user@host/course "
                                    "(default: the course's, sqlite:///gradebook.db)")
    p.add_argument("--show-hidden-tests", action="store_true",
                   help="show the hidden tests' source in the feedback (hidden by default)")
    p.add_argument("--force", action="store_true", help="regrade every submission, even those graded before")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code WITHOUT bubblewrap (no isolation: only for code you trust)")
    p.add_argument("--no-feedback", action="store_true", help="do not write feedback pages")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--cell-timeout", type=_positive(int), default=None,
                   help=f"wall-clock seconds per cell (default: Execute.timeout of nbgrader_config.py, else {d.cell_timeout})")
    p.add_argument("--cell-cpu", type=_positive(int), default=d.cell_cpu, help="CPU seconds per cell (default: %(default)s)")
    p.add_argument("--notebook-timeout", type=_positive(int), default=d.notebook_timeout,
                   help="wall-clock seconds per notebook (default: %(default)s)")
    p.add_argument("--memory", type=_positive(float), default=d.memory / 2**30,
                   help="memory per submission in GiB (default: %(default)s)")
    p.add_argument("--processes", type=_positive(int), default=d.processes,
                   help="processes and threads per submission (default: %(default)s)")
    p.add_argument("--queue", metavar="URL",
                   help="grade on other machines: put one job per submission on this Redis queue "
                        "(redis://:PASSWORD@HOST:PORT/DB) for `dlcourse worker`s; --jobs is then unused")
    p.add_argument("--job-timeout", type=_positive(float), default=None,
                   help="with --queue: seconds a worker may hold a job without answering before its row says "
                        "it timed out (default: the notebook limits' worst case plus a minute)")


def _worker_parser(sub) -> None:
    p = sub.add_parser("worker", help="grade jobs from a `dlcourse grade --queue` run, one at a time, sandboxed",
                       description="Take grading jobs from the queue one at a time and grade each in a bubblewrap "
                                   "sandbox, as `dlcourse grade` does locally. Run one per grading machine (or "
                                   "several, each with its own --work folder). Stop it with Ctrl-C (a job it "
                                   "holds goes back on the queue).")
    p.add_argument("--queue", required=True, metavar="URL", help="redis://:PASSWORD@HOST:PORT/DB")
    p.add_argument("--work", required=True, type=Path,
                   help="this worker's own folder (the assignment's files, the job being graded)")
    p.add_argument("--name", help="this worker's name in logs and results (default: host-pid)")
    p.add_argument("--visibility-timeout", type=_positive(float), default=None,
                   help="seconds before a job held by a lost worker is given to another (default: 3600; "
                        "keep it above the longest job)")
    p.add_argument("--restore-interval", type=_positive(float), default=10,
                   help="seconds between this worker's looks for jobs of lost workers (default: %(default)s)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade WITHOUT bubblewrap when the coordinator asked for --no-sandbox (only for code you trust)")
    p.add_argument("--loglevel", default="INFO")


def worker_command(args) -> int:
    from dlcourse.grading import jobqueue
    from dlcourse.grading.sandbox import SandboxUnavailable

    try:
        jobqueue.run_worker(args.queue, args.work, name=args.name, use_sandbox=not args.no_sandbox,
                            visibility_timeout=args.visibility_timeout or jobqueue.VISIBILITY_TIMEOUT,
                            restore_interval=args.restore_interval, loglevel=args.loglevel)
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def grade_command(args) -> int:
    from dlcourse.grading import runner
    from dlcourse.grading.sandbox import Limits, SandboxUnavailable

    settings = runner.course_settings(args.course.resolve())
    limits = Limits(cell_timeout=args.cell_timeout or settings.get("timeout") or Limits().cell_timeout,
                    cell_cpu=args.cell_cpu, notebook_timeout=args.notebook_timeout,
                    memory=int(args.memory * 2**30), processes=args.processes)
    opts = runner.Options(assignment=args.assignment, submissions=args.submissions, out=args.out, jobs=args.jobs,
                          course=args.course, db_url=args.db_url, use_sandbox=not args.no_sandbox,
                          show_hidden=args.show_hidden_tests, limits=limits, force=args.force,
                          quiet=args.quiet, feedback=not args.no_feedback, queue=args.queue,
                          job_timeout=args.job_timeout)
    if args.no_sandbox:
        print("warning: --no-sandbox: student code runs with your permissions, with no isolation", file=sys.stderr)
    try:
        outcome = runner.grade(opts)
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the submissions graded so far are saved; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(outcome.summary)
    print(f"\ngraded {outcome.graded}, reused {outcome.reused} earlier results, in {outcome.seconds:.0f} s")
    print(f"grades:   {outcome.csv}\nfeedback: {args.out.resolve() / 'feedback'}\nfigure:   {outcome.figure}")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    parser = argparse.ArgumentParser(prog="dlcourse", description="Tools for the Deep Learning Models course.")
    sub = parser.add_subparsers(dest="command", required=True)
    _grade_parser(sub)
    _worker_parser(sub)
    exp = sub.add_parser("export", help="write grades.csv files in the import format of a Canvas or Moodle gradebook",
                         description="Write the scores of one or more grades.csv (from `dlcourse grade`, one per "
                                     "assignment) as a CSV that a Canvas or Moodle gradebook imports, with the "
                                     "platform's ids from a roster (columns: student_id, and canvas_id / sis_user_id "
                                     "/ sis_login_id / name / section for Canvas, email / idnumber for Moodle).")
    exp.add_argument("grades", nargs="+", type=Path, help="grades.csv files, one per assignment")
    exp.add_argument("--format", required=True, choices=["canvas", "moodle"])
    exp.add_argument("--roster", required=True, type=Path, help="CSV mapping student_id to the platform's ids")
    exp.add_argument("--out", type=Path, help="the file to write (default: print it)")
    rfb = sub.add_parser("release-feedback", help="release the feedback of `dlcourse grade` through nbgrader's exchange",
                         description="Copy each collected submission's timestamp.txt and submission_secret.txt next "
                                     "to its feedback page in OUT/feedback, then run `nbgrader release_feedback` on "
                                     "that folder, so that students fetch their feedback in the Assignment List.")
    rfb.add_argument("assignment")
    rfb.add_argument("--out", type=Path, default=Path("grading-out"), help="dlcourse grade's --out (default: %(default)s)")
    rfb.add_argument("--course", type=Path, default=Path.cwd(),
                     help="the course folder, with submitted/ (default: this folder)")
    rel = sub.add_parser("release", help="regenerate exercises/ from solutions/ (nbgrader generate_assignment)")
    rel.add_argument("assignments", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grade_command(args)
    if args.command == "worker":
        return worker_command(args)
    if args.command == "release-feedback":
        from dlcourse import feedback_release
        try:
            return feedback_release.main(args)
        except (ValueError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.command == "export":
        from dlcourse import export
        try:
            return export.main(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    from dlcourse import release
    return release.main(args.assignments)


if __name__ == "__main__":
    sys.exit(main())
