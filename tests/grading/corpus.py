"""A corpus of submissions of the CNN exercise, honest, broken and cheating, for ``dlcourse grade``.

Most submissions answer parts 1 to 3 (NumPy code, fast) and the written answer, and leave the Keras
parts unanswered, so each one grades in a few seconds. A cheat sits in the answer cell of part 1 or
part 3 *instead of* an answer: fair grading means it scores exactly as the same submission with that
cell unanswered, which the corpus also contains (``ref_no_part1``, ``ref_no_part3``).

Cases that differ from another one only in how the file arrives (renamed, zipped, loose) or in
cells the grader restores (an edited or deleted test cell, changed points) rebuild into exactly the
notebook of their reference, so ``dlcourse grade`` grades each such notebook once: they cost no
kernel. Each case is still one submission with its own row and its own expectations.

``build(folder, marker)`` writes the submissions; ``CASES`` says what each one should get.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import nbformat

from nbtools import Exercise, nbgrader_meta, submission

EX = Exercise("cnn")
SOLUTION = {gid: EX.source(gid) for gid in EX.answer_ids()}
WRITTEN = ("The 208 parameters are 16 filters of 2 x 2 x 3 weights plus 16 biases. The same filter "
           "slides over every position, so the count does not depend on the image size.")
FAST = {**{gid: SOLUTION[gid] for gid in ("part1_answer", "part2_answer", "part3_answer")},
        "written_answer": WRITTEN}
POINTS = EX.points()


def without(*gids):
    return {k: v for k, v in FAST.items() if k not in gids}


# What a cell may do to cheat. Each replaces an answer.
REBIND_CHECKS = """
check_array = lambda *args, **kwargs: None
check_equal = lambda *args, **kwargs: None
call = lambda function, *args, **kwargs: None
def convolve2d(image, kernel, stride=1):
    return None
"""
PATCH_NUMPY = """
import numpy
numpy.isclose = lambda a, b, **kw: numpy.ones(numpy.broadcast(numpy.asarray(a, dtype=object), numpy.asarray(b, dtype=object)).shape, bool)
numpy.all = lambda *a, **k: True
numpy.asarray = lambda a, *args, **kw: numpy.zeros((3, 3)) if a is None else numpy.array(a, *args, **kw)
def convolve2d(image, kernel, stride=1):
    return None
"""
PATCH_CHECKS = """
import dlcourse.checks
dlcourse.checks._fail = lambda *args, **kwargs: None
dlcourse.checks.check_array.__code__ = (lambda *args, **kwargs: None).__code__
def convolve2d(image, kernel, stride=1):
    return None
"""
INPUT_TRANSFORMER = """
def _drop_checks(lines):
    return ["pass\\n" if ("check" in line or "raise" in line) else line for line in lines]
get_ipython().input_transformers_cleanup.append(_drop_checks)
"""
CUSTOM_EXC = """
get_ipython().set_custom_exc((Exception,), lambda shell, etype, evalue, tb, tb_offset=None: None)
"""
EVENT_HOOK = """
def _cheat(info):
    info.raw_cell  # every later cell, tests included
    g = get_ipython().user_ns
    g["check_array"] = g["check_equal"] = lambda *a, **k: None
get_ipython().events.register("pre_run_cell", _cheat)
"""
CLASS_PATCH = """
from IPython.core.interactiveshell import InteractiveShell
_orig = InteractiveShell.run_cell
def _run_cell(self, raw_cell, *args, **kwargs):
    if "check_" in raw_cell:
        raw_cell = "pass"
    return _orig(self, raw_cell, *args, **kwargs)
InteractiveShell.run_cell = _run_cell
"""
EXIT_KERNEL = "import os\nos._exit(0)\n"
CRASH_KERNEL = "import ctypes\nctypes.string_at(0)\n"
MEMORY_HOG = "hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))\n"
FORK_BOMB = "import os, time\nfor _ in range(100000):\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
INFINITE_LOOP = "while True:\n    pass\n"
HUGE_OUTPUT = SOLUTION["part2_answer"] + "\nfor _ in range(8):\n    print('x' * 500_000)\n"


def probes(marker: str, port: int, paths: dict[str, str]) -> str:
    """A cell that tries to get out of the sandbox and prints what happened."""
    return f"""
import os, socket
def _try(name, action):
    try:
        action()
        print(name, "ESCAPED")
    except Exception as exc:
        print(name, "blocked", type(exc).__name__)
_try("read-solutions", lambda: open({paths["solutions"]!r}).read())
_try("read-gradebook", lambda: open({paths["gradebook"]!r}, "rb").read())
_try("read-other-students", lambda: open({paths["other"]!r}).read())
_try("read-tests", lambda: open({paths["tests"]!r}).read())
_try("read-repository-solutions", lambda: open({paths["repository"]!r}).read())
_try("list-course", lambda: os.listdir({paths["course"]!r}))
_try("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
_try("write-outside", lambda: open("/var/tmp/{marker}-escape", "w").write("x"))
_try("write-package", lambda: open(os.path.dirname(__import__("dlcourse").__file__) + "/{marker}.py", "w").write("x"))
import subprocess
subprocess.Popen(["sleep", "{marker[-6:]}"], start_new_session=True)
subprocess.Popen(["sh", "-c", "nohup sleep {marker[-6:]} >/dev/null 2>&1 &"])
print("started background processes")
"""


CELL_TIMEOUT = 20      # the grading tests' wall-time limit per cell, in seconds (a busy machine slows legitimate cells)

# name -> (how it is written, expected status, expected score, reference for the per-cell scores, words in problems)
CASES = {
    "honest":            ("answers parts 1-3 and the written answer", "ok", 5, None, []),
    "blank":             ("the released notebook", "ok", 0, None, []),
    "ref_no_part1":      ("parts 2-3 only", "ok", 3, None, []),
    "ref_no_part3":      ("parts 1-2 only", "ok", 3, None, []),
    "edited_test":       ("test cell of part 1 edited to pass", "ok", 3, "ref_no_part1", ["edited locked cells were restored"]),
    "deleted_tests":     ("test cells of parts 1 and 4 deleted", "ok", 3, "ref_no_part1", ["deleted locked cells were restored"]),
    "metadata_points":   ("gives its answer cell 100 points and the test 0", "ok", 3, "ref_no_part1", []),
    # Tampering with the student's own kernel no longer reaches the tests, which run in the
    # grader's checker: these score as unanswered without any detection (tests/grading/attacks.py
    # has many more kinds).
    "rebind_checks":     ("rebinds check_array, check_equal, call", "ok", 3, "ref_no_part1", []),
    "patch_numpy":       ("replaces numpy.isclose, numpy.all, numpy.asarray", "ok", 3, "ref_no_part1", []),
    "patch_checks":      ("patches dlcourse.checks (_fail, check_array's code)", "ok", 3, "ref_no_part1", []),
    "input_transformer": ("IPython input transformer that drops check lines (and the grader's requests)", "problem", 3,
                          "ref_no_part1", ["did not answer the grader", "graded as unanswered"]),
    "custom_exc":        ("IPython custom exception handler that swallows errors", "ok", 3, "ref_no_part1", []),
    "event_hook":        ("IPython pre_run_cell hook that rebinds the checks", "ok", 3, "ref_no_part1", []),
    "class_patch":       ("patches InteractiveShell.run_cell to skip tests", "ok", 3, "ref_no_part1", []),
    "exit_kernel":       ("os._exit(0) in part 3", "problem", 3, "ref_no_part3", ["the kernel died", "graded as unanswered"]),
    "crash_kernel":      ("segfault (ctypes) in part 3", "problem", 3, "ref_no_part3", ["the kernel died", "graded as unanswered"]),
    "memory_hog":        ("allocates memory without end in part 3", "problem", 3, "ref_no_part3", ["GiB of memory", "graded as unanswered"]),
    "fork_bomb":         ("forks without end in part 3", "problem", 3, "ref_no_part3", ["processes", "graded as unanswered"]),
    "infinite_loop":     ("while True: pass in part 3", "problem", 3, "ref_no_part3",
                          [f"more than {CELL_TIMEOUT} s", "interrupted", "graded as unanswered"]),
    "huge_output":       ("prints 4 MB in part 2", "ok", 5, "honest", ["output truncated"]),
    "sandbox_probes":    ("honest, plus a cell that tries to escape", "ok", 5, "honest", []),
    "renamed":           ("honest, notebook named 'cnn (1).ipynb'", "ok", 5, "honest", ["renamed"]),
    "zipped":            ("honest, as <student>.zip", "ok", 5, "honest", []),
    "loose":             ("honest, as <student>.ipynb", "ok", 5, "honest", []),
    "wrong_answer":      ("part 1 flips the kernel; prints the cell history", "ok", 3, "ref_no_part1", []),
    "malformed_json":    ("truncated JSON", "broken", 0, None, ["not valid JSON"]),
    "empty_file":        ("a 0-byte notebook", "broken", 0, None, ["empty"]),
    "not_a_notebook":    ("JSON without cells", "broken", 0, None, ["not a Jupyter notebook"]),
    "missing":           ("in the gradebook, submitted nothing", "missing", 0, None, ["no submission"]),
}

FLIPPED = EX.source("part1_answer").replace("image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)",
                                            "image, kernel = np.asarray(image, dtype=float), np.flip(np.asarray(kernel, dtype=float))")


def _nb(answers: dict) -> nbformat.NotebookNode:
    return submission(EX, answers)


def _write(folder: Path, student: str, nb) -> None:
    d = folder / student / "cnn"
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / "cnn.ipynb")


def build(folder: Path, marker: str, port: int, paths: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, "honest", _nb(FAST))
    _write(folder, "blank", _nb({}))
    _write(folder, "ref_no_part1", _nb(without("part1_answer")))
    _write(folder, "ref_no_part3", _nb(without("part3_answer")))

    nb = _nb(without("part1_answer"))
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "part1_tests":
            cell.source = "pass  # the tests are fine"
    _write(folder, "edited_test", nb)

    nb = _nb(without("part1_answer"))
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") not in ("part1_tests", "part4_tests")]
    _write(folder, "deleted_tests", nb)

    nb = _nb(without("part1_answer"))
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade_id") == "part1_answer":
            meta.update(grade=True, points=100)
        if meta.get("grade_id") == "part1_tests":
            meta.update(grade=False, points=0)
    _write(folder, "metadata_points", nb)

    for name, code in (("rebind_checks", REBIND_CHECKS), ("patch_numpy", PATCH_NUMPY), ("patch_checks", PATCH_CHECKS),
                       ("input_transformer", INPUT_TRANSFORMER), ("custom_exc", CUSTOM_EXC),
                       ("event_hook", EVENT_HOOK), ("class_patch", CLASS_PATCH)):
        _write(folder, name, _nb(dict(FAST, part1_answer=code)))
    for name, code in (("exit_kernel", EXIT_KERNEL), ("crash_kernel", CRASH_KERNEL), ("memory_hog", MEMORY_HOG),
                       ("fork_bomb", FORK_BOMB), ("infinite_loop", INFINITE_LOOP)):
        _write(folder, name, _nb(dict(FAST, part3_answer=code)))
    _write(folder, "huge_output", _nb(dict(FAST, part2_answer=HUGE_OUTPUT)))

    nb = _nb(FAST)
    nb.cells.insert(2, nbformat.v4.new_code_cell(probes(marker, port, paths)))
    _write(folder, "sandbox_probes", nb)

    d = folder / "renamed" / "cnn"
    d.mkdir(parents=True)
    nbformat.write(_nb(FAST), d / "cnn (1).ipynb")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("zipped_cnn/cnn.ipynb", nbformat.writes(_nb(FAST)))
    (folder / "zipped.zip").write_bytes(buf.getvalue())
    nbformat.write(_nb(FAST), folder / "loose.ipynb")

    nb = _nb(dict(FAST, part1_answer=FLIPPED))
    nb.cells.append(nbformat.v4.new_code_cell("print(In)"))
    _write(folder, "wrong_answer", nb)

    text = nbformat.writes(_nb(FAST))
    for name, data in (("malformed_json", text[: len(text) // 2]), ("empty_file", ""),
                       ("not_a_notebook", json.dumps({"hello": "world"}))):
        d = folder / name / "cnn"
        d.mkdir(parents=True)
        (d / "cnn.ipynb").write_text(data)
