"""Tools for testing the graded exercises.

``Exercise(name)`` reads the instructor notebook ``solutions/<name>/<name>.ipynb`` and its release
``exercises/<name>/<name>.ipynb``. ``Exercise.run`` executes the notebook's code cells in this
process, in order, in one fresh namespace, as the grader would (the test cells include the hidden
tests), with chosen answer cells replaced; it reports, for every test cell, whether it passed and
the message it failed with. This is fast (no kernel start) and lets a test check that a plausible
wrong answer fails the right test with a helpful message, and that another correct answer passes.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import dlcourse  # noqa: E402,F401  (quiet TensorFlow before anything imports it)
from dlcourse.release import assignments, nbgrader_env  # noqa: E402

ASSIGNMENTS = assignments(ROOT)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_answer(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and meta.get("solution", False)


def is_autograded_test(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


def is_manual(cell) -> bool:
    meta = nbgrader_meta(cell)
    return meta.get("grade", False) and meta.get("solution", False)


@dataclass
class Outcome:
    """What happened to one cell: ``error`` is None when it ran without an exception."""
    grade_id: str
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.error is None


class Result(dict):
    """``{grade_id: Outcome}`` for every executed cell, with helpers for test cells; ``namespace``
    holds the names the run bound."""

    namespace: dict

    def passed(self, grade_id: str) -> bool:
        return self[grade_id].passed

    def message(self, grade_id: str) -> str:
        return self[grade_id].error or ""

    def failing(self) -> list[str]:
        return [gid for gid, o in self.items() if not o.passed]


class Exercise:
    def __init__(self, name: str):
        if name not in ASSIGNMENTS:
            raise ValueError(f"unknown assignment {name!r}; known: {ASSIGNMENTS}")
        self.name = name
        self.solution_path = ROOT / "solutions" / name / f"{name}.ipynb"
        self.release_path = ROOT / "exercises" / name / f"{name}.ipynb"
        self.solution = nbformat.read(self.solution_path, as_version=4)
        self.release = nbformat.read(self.release_path, as_version=4) if self.release_path.exists() else None
        self._solved: Result | None = None

    # -- structure -------------------------------------------------------------------------
    def cells(self, which: str = "solution"):
        return (self.solution if which == "solution" else self.release).cells

    def answer_ids(self) -> list[str]:
        return [nbgrader_meta(c)["grade_id"] for c in self.solution.cells if is_answer(c)]

    def test_ids(self) -> list[str]:
        return [nbgrader_meta(c)["grade_id"] for c in self.solution.cells if is_autograded_test(c)]

    def points(self) -> dict[str, float]:
        """Points of every graded cell (autograded tests and manual answers)."""
        return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
                for c in self.solution.cells if nbgrader_meta(c).get("grade")}

    def source(self, grade_id: str, which: str = "solution") -> str:
        for c in self.cells(which):
            if nbgrader_meta(c).get("grade_id") == grade_id:
                return c.source
        raise KeyError(f"{self.name}: no cell with grade_id {grade_id!r}")

    # -- running ---------------------------------------------------------------------------
    def run(self, answers: dict[str, str] | None = None, *, base: str = "solution",
            stop_after: str | None = None) -> Result:
        """Execute the code cells in order; answer cells come from ``base`` ("solution" or
        "blank": the released stub) unless ``answers`` replaces them. Test cells always run
        with their hidden tests. Returns the outcome of every code cell that ran."""
        answers = dict(answers or {})
        unknown = set(answers) - set(self.answer_ids())
        if unknown:
            raise KeyError(f"{self.name}: not answer cells: {sorted(unknown)}")
        if base not in ("solution", "blank"):
            raise ValueError("base must be 'solution' or 'blank'")
        namespace: dict = {"__name__": "__main__"}
        result = Result()
        result.namespace = namespace
        cwd = os.getcwd()
        os.chdir(self.solution_path.parent)
        try:
            for cell in self.solution.cells:
                if cell.cell_type != "code":
                    continue
                gid = nbgrader_meta(cell).get("grade_id", f"cell{len(result)}")
                code = cell.source
                if gid in answers:
                    code = answers[gid]
                elif is_answer(cell) and base == "blank":
                    code = self.source(gid, "release")
                result[gid] = _execute(code, namespace, gid)
                if gid == stop_after:
                    break
        finally:
            os.chdir(cwd)
        return result

    def solved(self) -> Result:
        """The run of the whole solution (made once per exercise and kept)."""
        if self._solved is None:
            self._solved = self.run()
        return self._solved

    def run_part(self, part: str, answer: str, **more: str) -> Outcome:
        """Run the notebook up to and including ``part``'s tests with ``part``'s answer replaced
        (and any other answers given as ``more``: ``part1_answer="..."``); the tests' outcome."""
        result = self.run({f"{part}_answer": answer, **more}, stop_after=f"{part}_tests")
        return result[f"{part}_tests"]

    def solution_answers(self, suffix: str = "") -> dict[str, str]:
        """Every answer cell of the solution, with ``suffix`` appended (e.g. a student's
        ``from numpy import *`` at the end of each cell)."""
        return {gid: self.source(gid) + "\n" + suffix for gid in self.answer_ids()}


def assert_rejected(outcome: Outcome, *words: str) -> None:
    """A wrong answer failed its test with a helpful message: it says what was expected and what
    was got (or which call raised what), gives a hint, and contains each of ``words``."""
    assert not outcome.passed, "a wrong answer passed the tests"
    assert "Hint:" in outcome.error, outcome.error
    assert ("expected" in outcome.error and "got" in outcome.error) or "raised" in outcome.error, outcome.error
    for word in words:
        assert word in outcome.error, outcome.error


# What a student may write at the end of an answer cell that must not change any test's verdict,
# nor any graded training run: `from numpy import *` rebinds sum, any, all, max, min, abs, round,
# pow, bool and divmod; scratch variables take the names the tasks use for their examples; and a
# seed of their own (or cells run twice) changes the random state that the next cell starts from.
REBINDING_SUFFIX = """
from numpy import *
x = W = U = b = c = v = h = z = X = image = kernel = fmap = batch = np.ones((2, 2))
keras.utils.set_random_seed(12345)
"""


def assert_same_results(exercise: Exercise, names: list[str], suffix: str = REBINDING_SUFFIX) -> Result:
    """Every answer cell of the solution with ``suffix`` appended passes every test, and the values
    of ``names`` (what the graded training runs produce) equal the plain solution's."""
    result = exercise.run(exercise.solution_answers(suffix))
    assert not result.failing(), {gid: result.message(gid) for gid in result.failing()}
    solved = exercise.solved()
    for name in names:
        got, want = result.namespace[name], solved.namespace[name]
        assert np.array_equal(np.asarray(got), np.asarray(want)), (name, got, want)
    return result


def _execute(code: str, namespace: dict, gid: str) -> Outcome:
    # IPython magics are not used in the exercises; plain exec is what the kernel would do.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            exec(compile(code, f"<{gid}>", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - a cell's error is the outcome
            lines = traceback.format_exception_only(type(exc), exc)
            return Outcome(gid, "".join(lines).strip(), exc)
    return Outcome(gid, None)


def run_nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run an nbgrader command with this interpreter (and its `alembic`) in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=nbgrader_env(),
                          capture_output=True, text=True)


def make_course(tmp: Path, names: list[str]) -> Path:
    """A throwaway course folder with the course's nbgrader_config.py, the given assignments'
    solutions, their release (generated there) and an empty gradebook."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", tmp / "nbgrader_config.py")
    for name in names:
        shutil.copytree(ROOT / "solutions" / name, tmp / "solutions" / name)
        proc = run_nbgrader("generate_assignment", name, "--force", cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"generate_assignment {name} failed:\n{proc.stdout}\n{proc.stderr}")
    return tmp


def submission(exercise: Exercise, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with some answer cells filled in, as a student would submit it."""
    nb = nbformat.read(exercise.release_path, as_version=4)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb
