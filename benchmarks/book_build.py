"""Benchmark the book's build: cold, warm, and after editing one chapter.

    .venv/bin/python benchmarks/book_build.py [--chapter book/cnn] [--keep]

Copies the course folder (without _build/, .venv/ and .git/) to a temporary folder, so neither
the shared _build/ nor its execution cache is touched, and builds the book there as `make book`
does (`jupyter-book build . -W -n --keep-going`) four times:

1. cold: an empty execution cache, so every chapter is executed;
2. warm: nothing changed, so nothing should be executed (goal: under 30 s);
3. after editing one chapter's code (a comment appended to its last code cell): only that chapter
   should be executed again;
4. after editing only that chapter's text: nothing should be executed (the cache keys on code).

For each build it prints the wall time, the CPU time of the build and everything it started
(kernels included), the idle-machine estimate CPU / 2 (this machine has 2 cores and is usually
shared, which inflates wall time; the estimate assumes the work keeps both cores busy, and the
CPU time itself bounds the idle wall time from above), and which chapters were executed, with
myst-nb's own timing (wall time, so also inflated on a shared machine).
Goals (issue 8): cold build under 8 minutes, warm rebuild under 30 seconds. It is a report, not
a test: the exit status is non-zero only when a build fails or an edit re-executes the wrong
chapters.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns("_build", ".venv", ".git", "__pycache__", ".ipynb_checkpoints",
                                "*.egg-info", ".pytest_cache", "gradebook.db")
GOALS = {"cold": 8 * 60, "warm": 30}


@dataclass
class Build:
    name: str
    wall: float
    cpu: float
    returncode: int
    executed: dict[str, float] = field(default_factory=dict)   # chapter -> seconds (myst-nb's timing)
    cached: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def idle_estimate(self) -> float:
        return self.cpu / 2


def chapters(source: Path) -> list[str]:
    toc = yaml.safe_load((source / "_toc.yml").read_text())
    return [c["file"] for part in toc.get("parts", []) if part.get("numbered") for c in part.get("chapters", [])]


def build(source: Path, name: str) -> Build:
    jb = Path(sys.executable).parent / "jupyter-book"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going"], cwd=source, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    result = Build(name, wall, cpu, proc.returncode, log=log)
    current = None
    for line in log.splitlines():
        m = re.search(r"(\S+)\.(?:md|ipynb): Executing notebook", line)
        if m:
            current = str(Path(m.group(1)).resolve().relative_to(source.resolve()))
            result.executed[current] = float("nan")
        m = re.search(r"Executed notebook in ([\d.]+) seconds", line)
        if m and current:
            result.executed[current] = float(m.group(1))
        m = re.search(r"(\S+)\.(?:md|ipynb): Using cached notebook", line)
        if m:
            result.cached.append(str(Path(m.group(1)).resolve().relative_to(source.resolve())))
    return result


def verdict(b: Build) -> str:
    goal = GOALS.get(b.name)
    if goal is None:
        return ""
    if b.cpu < goal:
        return f"  goal < {goal:.0f} s: met (even on one core)"
    if b.idle_estimate < goal:
        return f"  goal < {goal:.0f} s: met if the work uses both cores"
    return f"  goal < {goal:.0f} s: NOT met"


def report(b: Build) -> str:
    lines = [f"{b.name:>12}: wall {b.wall:7.1f} s   CPU {b.cpu:7.1f} s   idle 2-core estimate {b.idle_estimate:7.1f} s"
             f"{verdict(b)}{'' if b.returncode == 0 else '   BUILD FAILED'}"]
    executed = ", ".join(f"{c} ({s:.0f} s)" for c, s in b.executed.items()) or "none"
    lines.append(f"{'':>14}executed: {executed}; from the cache: {len(b.cached)}")
    return "\n".join(lines)


def edit_code(path: Path) -> None:
    """Append a comment to the last code cell of a MyST notebook (changes its code, so its hash)."""
    text = path.read_text()
    i = text.rfind("```{code-cell}")
    if i < 0:
        raise ValueError(f"{path} has no code cell")
    end = text.index("\n```", text.index("\n", i))
    path.write_text(text[:end] + "\n# benchmark: an edit to this chapter's code" + text[end:])


def edit_text(path: Path) -> None:
    path.write_text(path.read_text() + "\nA sentence added by the benchmark.\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="course folder to copy (default: this one)")
    parser.add_argument("--chapter", help="chapter to edit, e.g. book/cnn (default: the first one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="dlcourse-bench-"))
    source = workdir / "course"
    shutil.copytree(args.source, source, ignore=IGNORE)
    chapter_list = chapters(source)
    chapter = args.chapter or chapter_list[0]
    print(f"Benchmarking the book build in {source} ({os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}): chapters {', '.join(chapter_list)}; editing {chapter}")
    ok = True
    try:
        results = []
        for name, edit in [("cold", None), ("warm", None), ("edit code", edit_code), ("edit text", edit_text)]:
            if edit:
                edit(source / f"{chapter}.md")
            b = build(source, name)
            results.append(b)
            print(report(b), flush=True)
            if b.returncode != 0:
                print(b.log[-4000:])
                return 1
        cold, warm, code, text = results
        checks = {
            "cold build executes every chapter": set(cold.executed) == set(chapter_list),
            "warm rebuild executes nothing": not warm.executed,
            f"editing {chapter}'s code re-executes only {chapter}": set(code.executed) == {chapter},
            f"editing {chapter}'s text executes nothing": not text.executed,
        }
        print()
        for what, passed in checks.items():
            print(f"{'yes' if passed else 'NO ':>4}  {what}")
            ok &= passed
        print(f"\nSummary: cold {cold.wall:.0f} s wall ({cold.idle_estimate:.0f} s idle estimate, goal < 480 s); "
              f"warm {warm.wall:.1f} s wall ({warm.idle_estimate:.1f} s idle estimate, goal < 30 s); "
              f"after a code edit {code.wall:.0f} s wall.")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
