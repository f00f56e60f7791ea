"""Mutation testing of the graded exercises: do the tests take points from a slightly wrong answer?

Each mutant is the model solution of one answer cell with one small change inside
``### BEGIN SOLUTION`` ... ``### END SOLUTION``, the cheapest stand-in for a student's mistake:
an arithmetic or comparison operator swapped, a number changed, an activation or padding name
changed, an ``axis`` changed, a sign dropped, or a statement deleted. The notebook is run up to that
part's tests with ``tests/nbtools.py`` (in this process, hidden tests included); a mutant is
*killed* when the part's tests fail. Survivors are listed so that each can be killed by a new test
or shown to be an equivalent, still correct answer.

    python tools/mutate_solutions.py                       # every assignment, every part
    python tools/mutate_solutions.py rbm cnn --parts part1 part2 --report mutation-report.md

Parts that train a network re-train for every mutant (tens of seconds each): ``--skip-training``
leaves them out. The notebook up to the end of the previous part runs once per part and each mutant
starts from a copy of its names (``--fresh``: from the top for every mutant, slower). A mutant
whose program is the solution's (the change undone by ``ast.unparse``) is not counted, and
``verbose=`` arguments (what training prints) are not mutated.

A survivor that is an equivalent, still correct answer is listed in ``EQUIVALENT`` with the
reason; the report counts it apart and lists every other survivor as a gap in the tests.
"""
from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nbtools import ASSIGNMENTS, Exercise, Outcome, _execute, is_answer, nbgrader_meta  # noqa: E402

SWAP_OPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
            ast.MatMult: ast.Mult, ast.Pow: ast.Mult, ast.FloorDiv: ast.Div}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq}
SWAP_NAMES = {"relu": "sigmoid", "sigmoid": "relu", "softmax": "sigmoid", "tanh": "relu",
              "same": "valid", "valid": "same", "mse": "mae", "adam": "sgd",
              "categorical_crossentropy": "mse", "sparse_categorical_crossentropy": "mse"}
# Parts whose answer or tests train a Keras network (the open design parts train in their tests).
TRAINING = {("shallow_deep", "part5"), ("shallow_deep", "part6"), ("cnn", "part5"), ("cnn", "part6"),
            ("rnn", "part4"), ("rnn", "part5"), ("autoencoders", "part4"), ("autoencoders", "part5"),
            ("autoencoders", "part6")}


@dataclass
class Mutant:
    part: str
    line: int
    what: str
    source: str
    killed: bool | None = None
    message: str = ""
    code: str = ""             # the solution's line that was changed
    equivalent: str = ""       # why a survivor is still a correct answer (from EQUIVALENT)


def solution_lines(source: str) -> set[int]:
    """1-based line numbers strictly between ### BEGIN SOLUTION and ### END SOLUTION."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), start=1):
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _mutations(node: ast.AST):
    """(description, change) pairs for one node; ``change`` mutates a copy of the node in place."""
    if getattr(node, "_dlcourse_verbose", False):
        return
    if isinstance(node, ast.BinOp) and type(node.op) in SWAP_OPS:
        new = SWAP_OPS[type(node.op)]
        yield f"{type(node.op).__name__} -> {new.__name__}", lambda n: setattr(n, "op", new())
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAP_CMP:
        new = SWAP_CMP[type(node.ops[0])]
        yield f"{type(node.ops[0]).__name__} -> {new.__name__}", lambda n: setattr(n, "ops", [new()])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "sign dropped", None                                   # handled by the parent rewrite
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        value = node.value
        if isinstance(value, int):
            yield f"{value} -> {value + 1}", lambda n: setattr(n, "value", value + 1)
        elif isinstance(value, float):
            new_value = value * 1.5 if value else 0.5
            yield f"{value} -> {new_value:g}", lambda n: setattr(n, "value", new_value)
        elif isinstance(value, str) and value in SWAP_NAMES:
            yield f"{value!r} -> {SWAP_NAMES[value]!r}", lambda n: setattr(n, "value", SWAP_NAMES[value])
    if isinstance(node, ast.keyword) and node.arg == "axis" and isinstance(node.value, ast.Constant):
        axis = node.value.value
        new_axis = 0 if axis != 0 else 1
        yield f"axis={axis} -> axis={new_axis}", lambda n: setattr(n, "value", ast.Constant(new_axis))


def mutants(exercise: Exercise, gid: str) -> list[Mutant]:
    """Every single-change mutant of answer cell ``gid``'s solution lines."""
    source = exercise.source(gid)
    lines = solution_lines(source)
    tree = ast.parse(source)
    original = ast.unparse(tree)
    part = gid.removesuffix("_answer")
    found: list[Mutant] = []
    nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.keyword) and node.arg == "verbose":
            node.value._dlcourse_verbose = True
    for index, node in enumerate(nodes):
        line = getattr(node, "lineno", None) or getattr(getattr(node, "value", None), "lineno", None)
        if line not in lines:
            continue
        for what, change in _mutations(node):
            if change is None:
                continue
            new_tree = copy.deepcopy(tree)
            change(list(ast.walk(new_tree))[index])
            found.append(Mutant(part, line, what, ast.unparse(ast.fix_missing_locations(new_tree))))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            new_tree = copy.deepcopy(tree)
            target = list(ast.walk(new_tree))[index]
            for parent in ast.walk(new_tree):
                for field, value in ast.iter_fields(parent):
                    if value is target:
                        setattr(parent, field, target.operand)
                    elif isinstance(value, list) and any(v is target for v in value):
                        setattr(parent, field, [target.operand if v is target else v for v in value])
            found.append(Mutant(part, line, "minus sign dropped", ast.unparse(new_tree)))
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr, ast.Return)) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            new_tree = copy.deepcopy(tree)
            target = list(ast.walk(new_tree))[index]
            for parent in ast.walk(new_tree):
                for field, value in ast.iter_fields(parent):
                    if isinstance(value, list) and any(v is target for v in value):
                        setattr(parent, field, [ast.Pass() if v is target else v for v in value])
            found.append(Mutant(part, line, f"statement deleted: {ast.unparse(node)[:60]}", ast.unparse(new_tree)))
    source_lines = source.splitlines()
    for mutant in found:
        mutant.code = source_lines[mutant.line - 1].strip()
    return [m for m in found if m.source != original]


# Survivors that are equivalent, still correct answers: (assignment, part, pattern matched against
# "<what> | <changed line>", reason). Each was read by a person; a new survivor is not covered.
EQUIVALENT = [
    ("*", "*", r"statement deleted: .*= .*np\.asarray\(", "the conversion of an argument to a float array: "
     "the tasks pass NumPy float arrays, and the code that follows computes the same from them"),
    ("*", "*", r"statement deleted: \w+ = np\.asarray\(\w+\)$", "the same conversion, without a dtype"),
    ("autoencoders", "part3", r"GtE -> Gt", "rng.random(shape) >= fraction against > fraction: they differ only "
     "where a uniform draw equals the fraction exactly (probability 0); the same masks for these seeds"),
    ("rbm", "part3", r"Lt -> LtE", "rng.random() < p against <= p: a Bernoulli sample that differs only where a "
     "uniform draw equals p exactly (probability 0)"),
    ("rbm", "part5", r"0.5 -> 0.75 \| v = np.where\(hidden, 0.5", "mean-field imputation started from 0.75 "
     "instead of 0.5: the iteration converges to the same fixed point within n_steps; starting elsewhere "
     "(the pixel means, sigmoid(b)) is the same method"),
    ("rnn", "part2", r"0 -> 1 \| h = np.zeros\(\(n, U.shape\[0\]\)\)", "U is square (units x units): "
     "U.shape[1] is the number of units too"),
    ("*", "*", r"^(\d+) -> \d+ \| .*\bepochs=\1\b", "one more epoch of training: a still correct answer "
     "(the part is graded on what the model reaches)"),
    ("*", "*", r"^(\d+) -> \d+ \| .*\bbatch_size=\1\b", "a batch one example larger: a still correct answer"),
    ("shallow_deep", "part5", r"^100 -> 101 \| keras.layers.Dense\(100, activation=.relu.\)", "101 hidden units "
     "instead of 100: the task asks for 'about 100 units'"),
    ("shallow_deep", "part5", r"^0.01 -> 0.015 \| model.compile\(optimizer=keras.optimizers.Adam\(learning_rate=0.01\)",
     "a learning rate of 0.015: the task says 0.01 'works well', not that it is required"),
    ("rnn", "part4", r"^0.01 -> 0.015 \| adding_model.compile\(optimizer=keras.optimizers.Adam\(learning_rate=0.01\)",
     "a learning rate of 0.015: part of the training recipe, like the number of epochs; the part is graded "
     "on the model (an LSTM of 16 units) and on what it reaches"),
    ("autoencoders", "part5", r"^0 -> 1 \| rng = np.random.default_rng\(0\)", "training masks from another seed: "
     "the same method on other random noise; the denoiser is graded on freshly masked test images"),
    ("autoencoders", "part5", r"^'mse' -> 'mae' \| denoiser.compile", "a denoiser trained with the mean absolute "
     "error still learns to fill in the erased pixels and reaches the part's goal (a judgement call: the task "
     "says 'mse'; a check of loss_name(denoiser) would kill it)"),
    # The open design parts accept a range of answers, graded by the outcome.
    ("rbm", "part6", r"^8 -> 9 \| n_hidden_needed = 8$", "9 hidden units also reach 80 % of mean imputation's "
     "error while 4 do not: the smallest size up to a factor of two, as the part asks"),
    ("autoencoders", "part6", r"^8 -> 9 \| largest_code_size = 8$", "a code of 9 still beats PCA by 15 % and one "
     "of 18 does not: the largest size up to a factor of two, as the part asks"),
    ("rnn", "part5", r"^40 -> 41 \| long_length = 40$", "at 41 steps too the SimpleRNN fails and the LSTM learns"),
]


def equivalence(assignment: str, mutant: Mutant) -> str:
    text = f"{mutant.what} | {mutant.code}"
    for name, part, pattern, reason in EQUIVALENT:
        if name in ("*", assignment) and part in ("*", mutant.part) and re.search(pattern, text):
            return reason
    return ""


def _prefix(exercise: Exercise, part: str) -> tuple[list[tuple[str, str]], str | None]:
    """(grade_id, code) of the code cells from the end of the previous part's tests up to and
    including ``part``'s tests, and the grade_id of the cell before them (None: from the top)."""
    cells, start = [], 0
    code_cells = [c for c in exercise.solution.cells if c.cell_type == "code"]
    ids = [nbgrader_meta(c).get("grade_id", f"cell{i}") for i, c in enumerate(code_cells)]
    end = ids.index(f"{part}_tests")
    for i in range(end):
        if ids[i].endswith("_tests"):
            start = i + 1
    return [(ids[i], code_cells[i].source) for i in range(start, end + 1)], ids[start - 1] if start else None


def _run_from(namespace: dict, cells, part: str, answer: str) -> Outcome:
    ns = dict(namespace)
    outcome = None
    for gid, code in cells:
        outcome = _execute(answer if gid == f"{part}_answer" else code, ns, gid)
    return outcome


def run(names: list[str], parts: list[str] | None, skip_training: bool, limit: int | None,
        fresh: bool = False, match: str | None = None) -> dict[str, list[Mutant]]:
    results: dict[str, list[Mutant]] = {}
    for name in names:
        exercise = Exercise(name)
        results[name] = []
        for gid in exercise.answer_ids():
            part = gid.removesuffix("_answer")
            if (parts and part not in parts) or (skip_training and (name, part) in TRAINING):
                continue
            found = [m for m in mutants(exercise, gid) if not match or re.search(match, f"{m.what} | {m.code}")][:limit]
            if not found:
                continue
            cells, before = _prefix(exercise, part)
            namespace = None
            if not fresh:
                namespace = exercise.run(stop_after=before).namespace if before else {"__name__": "__main__"}
                check = _run_from(namespace, cells, part, exercise.source(gid))
                if not check.passed:
                    raise RuntimeError(f"{name} {part}: the solution fails from the saved state: {check.error}")
            for mutant in found:
                start = time.perf_counter()
                if fresh:
                    outcome = exercise.run_part(part, mutant.source)
                else:
                    outcome = _run_from(namespace, cells, part, mutant.source)
                mutant.killed = not outcome.passed
                mutant.message = (outcome.error or "").splitlines()[0][:100] if outcome.error else ""
                if not mutant.killed:
                    mutant.equivalent = equivalence(name, mutant)
                results[name].append(mutant)
                state = "killed" if mutant.killed else ("equivalent" if mutant.equivalent else "SURVIVED")
                print(f"{name} {part} line {mutant.line}: {mutant.what[:70]:70s} "
                      f"{state} ({time.perf_counter() - start:.1f} s)", flush=True)
    return results


def report(results: dict[str, list[Mutant]]) -> str:
    out = ["| assignment | mutants | killed | equivalent | surviving | killed share | killed share of the "
           "wrong answers (not equivalent) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, found in results.items():
        killed = len([m for m in found if m.killed])
        equivalent = len([m for m in found if not m.killed and m.equivalent])
        surviving = len(found) - killed - equivalent
        share = f"{killed / len(found):.0%}" if found else "-"
        share_eq = f"{killed / (len(found) - equivalent):.0%}" if len(found) > equivalent else "-"
        out.append(f"| {name} | {len(found)} | {killed} | {equivalent} | {surviving} | {share} | {share_eq} |")
    for name, found in results.items():
        equivalent = [m for m in found if not m.killed and m.equivalent]
        surviving = [m for m in found if not m.killed and not m.equivalent]
        if surviving:
            out += ["", f"### Surviving mutants in {name} (gaps in the tests)", ""]
            out += [f"- {m.part}, line {m.line}: {m.what} (`{m.code}`)" for m in surviving]
        if equivalent:
            out += ["", f"### Equivalent mutants in {name} (still correct answers)", ""]
            out += [f"- {m.part}, line {m.line}: {m.what} (`{m.code}`): {m.equivalent}" for m in equivalent]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=None, help=f"default: all of {ASSIGNMENTS}")
    parser.add_argument("--parts", nargs="*", help="only these parts (part1 ...)")
    parser.add_argument("--skip-training", action="store_true", help="leave out the parts that train a network")
    parser.add_argument("--limit", type=int, help="at most this many mutants per answer cell")
    parser.add_argument("--match", help="only mutants whose '<what> | <changed line>' matches this regular expression")
    parser.add_argument("--report", type=Path, help="write the Markdown report (a table and the survivors) here")
    parser.add_argument("--fresh", action="store_true", help="run each mutant's notebook from the top")
    parser.add_argument("--save", type=Path, help="also save every mutant's outcome here (JSON)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="run nothing: report on outcomes saved by earlier runs (--save), e.g. one run per part")
    args = parser.parse_args(argv)
    unknown = set(args.assignments or []) - set(ASSIGNMENTS)
    if unknown:
        parser.error(f"unknown assignments {sorted(unknown)}; known: {ASSIGNMENTS}")
    if args.merge:
        merged: dict[tuple, tuple[str, Mutant]] = {}      # a mutant run again (--match): the later run counts
        for path in args.merge:
            for name, found in json.loads(path.read_text()).items():
                for m in found:
                    merged[(name, m["part"], m["line"], m["what"], m["source"])] = (name, Mutant(**m))
        results = {}
        for name, mutant in merged.values():
            results.setdefault(name, []).append(mutant)
        for name, found in results.items():          # the equivalences as they are now
            for m in found:
                m.equivalent = "" if m.killed else equivalence(name, m)
        results = {name: results[name] for name in sorted(results)}
    else:
        results = run(args.assignments or ASSIGNMENTS, args.parts, args.skip_training, args.limit, args.fresh, args.match)
    if args.save:
        args.save.write_text(json.dumps({name: [dataclasses.asdict(m) for m in found] for name, found in results.items()}))
    text = report(results)
    print(text)
    if args.report:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
