"""Benchmark: grading a class with sequential ``nbgrader autograde`` vs ``dlcourse grade --jobs N``.

    .venv/bin/python benchmarks/grading.py [--submissions 20] [--jobs 2] [--full-every 4]

Makes a throwaway course with the CNN assignment and ``--submissions`` simulated submissions (every
``--full-every``-th one a complete solution that trains the model, the others parts 1 to 4 with
varying gaps), grades them once with nbgrader's own sequential autograde and once with
``dlcourse grade`` (sandboxed, parallel; feedback pages off, as nbgrader's autograde makes none),
checks that both give every student the same scores, and prints the wall times, the time per
submission and the speed-up. Not a test: the numbers depend on the machine and on what else runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

import nbformat  # noqa: E402
from nbtools import Exercise, submission  # noqa: E402


def make_submissions(folder: Path, n: int, full_every: int) -> None:
    ex = Exercise("cnn")
    solution = {gid: ex.source(gid) for gid in ex.answer_ids()}
    quick = [gid for gid in ex.answer_ids() if gid != "part5_answer"]
    for i in range(n):
        if full_every and i % full_every == 0:
            answers = dict(solution)
        else:
            answers = {gid: solution[gid] for j, gid in enumerate(quick) if (i + j) % 4}
        # Every notebook different: dlcourse grade grades identical notebooks once, which would
        # flatter it here.
        answers["written_answer"] = f"Student {i} writes: 16 filters of 2 x 2 x 3 weights plus 16 biases."
        d = folder / f"student{i:03d}" / "cnn"
        d.mkdir(parents=True)
        nbformat.write(submission(ex, answers), d / "cnn.ipynb")


def course(folder: Path) -> Path:
    (folder / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    shutil.copytree(ROOT / "solutions" / "cnn", folder / "solutions" / "cnn")
    return folder


def scores(db: Path) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for sub in gb.find_assignment("cnn").submissions:
            nb = sub.notebooks[0]
            out[sub.student.id] = {g.name: g.auto_score for g in nb.grades if g.name != "written_answer"}
    return out


class CpuMeter:
    """CPU seconds of a command and of everything it starts, including processes that are never
    waited for (sandboxes, a fork server), from a cgroup of its own. None where no cgroup can be
    made (not root, no cgroup file system): then only the wall time is reported."""

    def __init__(self, name: str):
        self.path: Path | None = None
        self.usage = None
        for base, stat in (("/sys/fs/cgroup/cpuacct", "cpuacct.usage"), ("/sys/fs/cgroup/unified", "cpu.stat"),
                           ("/sys/fs/cgroup", "cpu.stat")):
            path = Path(base) / f"dlcourse-bench-{name}-{os.getpid()}"
            try:
                path.mkdir()
            except OSError:
                continue
            if (path / stat).exists() and (path / "cgroup.procs").exists():
                self.path, self.stat = path, stat
                break
            path.rmdir()

    def run(self, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        procs = str(self.path / "cgroup.procs") if self.path else None

        def enter():
            if procs:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        return subprocess.run(cmd, preexec_fn=enter, **kwargs)

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        text = (self.path / self.stat).read_text()
        if self.stat == "cpuacct.usage":
            value = int(text) / 1e9
        else:
            value = int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6
        for _ in range(50):          # the cgroup can go once its last process has exited
            try:
                self.path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--full-every", type=int, default=4, help="every k-th submission trains the model (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway folders")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        subs = tmp / "submissions"
        make_submissions(subs, args.submissions, args.full_every)
        full = len(range(0, args.submissions, args.full_every)) if args.full_every else 0
        print(f"{args.submissions} simulated CNN submissions ({full} train the model), {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at the start")

        a = course(tmp / "sequential")
        shutil.copytree(subs, a / "submitted")
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "cnn", "--force"], cwd=a,
                       check=True, capture_output=True)
        meter = CpuMeter("sequential")
        t = time.perf_counter()
        proc = meter.run([sys.executable, "-m", "nbgrader", "autograde", "cnn", "--force"], cwd=a,
                         capture_output=True, text=True)
        sequential = time.perf_counter() - t
        sequential_cpu = meter.seconds()
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1

        b = course(tmp / "parallel")
        meter = CpuMeter("parallel")
        t = time.perf_counter()
        proc = meter.run([sys.executable, "-m", "dlcourse", "grade", "cnn", "--submissions", str(subs),
                          "--out", str(tmp / "out"), "--jobs", str(args.jobs), "--course", str(b),
                          "--no-feedback", "--quiet"], capture_output=True, text=True)
        parallel = time.perf_counter() - t
        parallel_cpu = meter.seconds()
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 1

        checker = [json.loads(p.read_text()).get("checker_seconds", 0.0) for p in (tmp / "out" / ".work").glob("*/result.json")]
        want, got = scores(a / "gradebook.db"), scores(b / "gradebook.db")
        differ = sorted(s for s in want if want[s] != got.get(s))
        n = args.submissions
        print(f"sequential nbgrader autograde: {sequential:7.1f} s  ({sequential / n:5.1f} s per submission)")
        print(f"dlcourse grade --jobs {args.jobs:<2}:      {parallel:7.1f} s  ({parallel / n:5.1f} s per submission, "
              f"sandboxed)")
        print(f"speed-up: {sequential / parallel:.2f}x   (goal: at least 1.7x on 2 cores)")
        if sequential_cpu is not None and parallel_cpu is not None:
            print(f"CPU time (all processes): sequential {sequential_cpu:.1f} s, dlcourse grade {parallel_cpu:.1f} s "
                  f"({parallel_cpu / sequential_cpu:.2f}x the work: sandbox, checker, workers)")
        else:
            print("CPU time: not measured (it needs a cgroup this process may create, e.g. as root)")
        if checker:
            print(f"the checker (tests outside the student's process): {sum(checker) / len(checker):.2f} CPU-s per "
                  f"submission on average, {max(checker):.2f} at most ({len(checker)} graded)")
        print(f"same scores for every student: {'yes' if not differ else 'NO: ' + ', '.join(differ)}"
              f"  (total {sum(sum(v.values()) for v in want.values()):g} points both ways)" if not differ else
              f"same scores for every student: NO: {differ}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end (other work on the machine slows both ways)")
        return 0 if not differ else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
