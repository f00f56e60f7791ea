"""Do the open design parts' thresholds hold across seeds? Pass rates of the model answer and of
plausible wrong designs, and the margins.

Each assignment has one open design part: the student chooses (a padding and a pooling, an
activation, a sequence length, a code size, a number of hidden units) and the hidden test trains
that design from seed 0 with a helper that the part's locked cell defines, then measures it on
held-out data. This script runs the part's own test cell for each answer below with the helper's
seed replaced by 0, 1, ..., and records whether it passed and every number the test compared with
a threshold (``check_at_least`` / ``check_at_most``).

    python benchmarks/design_seeds.py                     # every assignment, 5 seeds
    python benchmarks/design_seeds.py cnn --seeds 8 --report design.md

It trains a few dozen small networks: about 10 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nbtools import Exercise, _execute  # noqa: E402

import dlcourse.checks as checks  # noqa: E402

# assignment -> (part, helper the test trains with, {label: answer})
DESIGNS = {
    "shallow_deep": ("part6", "train_ten_layers", {
        "model answer: ReLU, He initialisation": 'deep_activation = "relu"\ndeep_initializer = "he_normal"',
        "wrong: sigmoid, Glorot (Keras's default)": 'deep_activation = "sigmoid"\ndeep_initializer = "glorot_uniform"',
    }),
    "cnn": ("part6", "train_taught_cnn", {
        "model answer: 'same' padding, pooling 2": 'cnn_padding = "same"\ncnn_pool_size = 2',
        "wrong: the taught 'valid' padding, pooling 2": 'cnn_padding = "valid"\ncnn_pool_size = 2',
    }),
    "rnn": ("part5", "train_on_length", {
        "model answer: 40 steps": "long_length = 40",
        "wrong: 10 steps (too short)": "long_length = 10",
    }),
    "autoencoders": ("part6", "train_autoencoder", {
        "model answer: a code of 8": "largest_code_size = 8",
        "wrong: 4, part 4's size (not the largest)": "largest_code_size = 4",
        "wrong: 16 (PCA about as good)": "largest_code_size = 16",
    }),
    "rbm": ("part6", "fit_rbm", {
        "model answer: 8 hidden units": "n_hidden_needed = 8",
        "wrong: 4 (too few)": "n_hidden_needed = 4",
        "wrong: 16 (not the smallest)": "n_hidden_needed = 16",
    }),
}


def measure(name: str, seeds: int) -> list[dict]:
    part, helper, answers = DESIGNS[name]
    exercise = Exercise(name)
    # the blank notebook up to the part's locked cell: data and helpers, no training of the answers
    namespace = exercise.run(base="blank", stop_after=f"{part}_data").namespace
    tests = exercise.source(f"{part}_tests")
    original = namespace[helper]
    rows = []
    for label, answer in answers.items():
        for seed in range(seeds):
            compared: list[tuple[str, float, str, float]] = []

            def at_least(got, threshold, what, *, hint=None, _real=checks.check_at_least):
                compared.append((what, float(got), ">=", float(threshold)))
                _real(got, threshold, what, hint=hint)

            def at_most(got, threshold, what, *, hint=None, _real=checks.check_at_most):
                compared.append((what, float(got), "<=", float(threshold)))
                _real(got, threshold, what, hint=hint)

            def reseeded(*args, seed=0, _seed=seed, **kwargs):
                return original(*args, seed=_seed, **kwargs)

            ns = dict(namespace, check_at_least=at_least, check_at_most=at_most, **{helper: reseeded})
            saved = checks.check_at_least, checks.check_at_most
            checks.check_at_least, checks.check_at_most = at_least, at_most     # for imports in the test
            start = time.perf_counter()
            try:
                exec(answer, ns)
                outcome = _execute(tests, ns, f"{part}_tests")
            finally:
                checks.check_at_least, checks.check_at_most = saved
            rows.append({"label": label, "seed": seed, "passed": outcome.passed, "compared": compared,
                         "error": (outcome.error or "").splitlines()[0][:160] if outcome.error else "",
                         "seconds": time.perf_counter() - start})
            print(f"{name} {label} seed {seed}: {'pass' if outcome.passed else 'FAIL'} "
                  f"{[(round(g, 4), op, t) for _, g, op, t in compared]} ({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def report(results: dict[str, list[dict]]) -> str:
    out = []
    for name, rows in results.items():
        part = DESIGNS[name][0]
        out += [f"### {name}, {part}", "",
                "| answer | passes (seeds) | measured, per check: min to max over the seeds (threshold) | margin |",
                "|---|---:|---|---:|"]
        for label in DESIGNS[name][2]:
            mine = [r for r in rows if r["label"] == label]
            passes = sum(r["passed"] for r in mine)
            cells, checks_seen = [], []
            for r in mine:
                for what, _, op, t in r["compared"]:
                    if (what, op, t) not in checks_seen:
                        checks_seen.append((what, op, t))
            for what, op, t in checks_seen:
                values = [g for r in mine for w, g, o, tt in r["compared"] if (w, o, tt) == (what, op, t)]
                cells.append(f"{what}: {min(values):.4g} to {max(values):.4g} ({op} {t:g}; {len(values)} seeds)")
            # margin: how far the closest seed is from the other verdict (for a pass, the check it
            # passed most narrowly; for a fail, the check that failed, which is the last one run)
            margins = [(min(abs(g - t) for _, g, _, t in r["compared"]) if r["passed"] else
                        abs(r["compared"][-1][1] - r["compared"][-1][3])) for r in mine if r["compared"]]
            margin = f"{min(margins):.3g}" if margins else "-"
            out.append(f"| {label} | {passes}/{len(mine)} | {'<br>'.join(cells) or mine[0]['error']} | {margin} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=None, help=f"default: all of {list(DESIGNS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--report", type=Path, help="write the Markdown tables here")
    args = parser.parse_args(argv)
    results = {name: measure(name, args.seeds) for name in (args.assignments or DESIGNS)}
    text = report(results)
    print(text)
    if args.report:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
