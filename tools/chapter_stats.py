"""Words of prose and lines of code a reader sees, per chapter.

    python tools/chapter_stats.py [book/shallow-deep.md ...]      (default: the five chapters)

Prose: the Markdown outside code, display maths and directive fences, counted in words (a glued
number, a citation or an inline formula counts as one word). "words" is the main path a reader
reads; "words folded" is the prose in dropdowns (`:::{dropdown}`, or an admonition with
`:class: dropdown`), one click away; "questions" counts the check questions (`:::{check-question}`),
whose words are in neither column. Code: the non-blank lines of code
cells and of ```python examples, split into what the page shows, what it folds away (cells tagged
`hide-input`/`hide-cell`: one click to open) and what it does not show at all (`remove-input`,
`remove-cell`). "glue" counts the `glue(...)` calls in the code the page shows. Reads the sources
only; nothing is executed.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

CHAPTERS = ["shallow-deep", "cnn", "rnn", "autoencoders", "rbm"]
ROOT = Path(__file__).resolve().parent.parent


def chapter_stats(text: str) -> dict[str, int]:
    lines = text.split("\n")
    i = 0
    if lines and lines[0] == "---":                              # jupytext header
        i = lines.index("---", 1) + 1
    prose: list[str] = []
    folded: list[str] = []
    stats = {"words": 0, "words folded": 0, "questions": 0, "code shown": 0, "code folded": 0,
             "code removed": 0, "glue shown": 0}
    where = None  # None (the main path), "folded" or "question", with the fence that closes it
    closing = ""
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(`{3,})(.*)$", line)
        if fence:
            end = next(j for j in range(i + 1, len(lines))
                       if lines[j].startswith(fence.group(1)) and not lines[j].strip("`"))
            body = lines[i + 1:end]
            kind = fence.group(2).strip()
            if kind.startswith("{code-cell}") or kind == "python":
                tags = " ".join(l for l in body if l.startswith(":tags:"))
                code = [l for l in body if l.strip() and not l.startswith(":")]
                if "remove-cell" in tags or "remove-input" in tags:
                    stats["code removed"] += len(code)
                elif "hide-input" in tags or "hide-cell" in tags:
                    stats["code folded"] += len(code)
                else:
                    stats["code shown"] += len(code)
                    stats["glue shown"] += sum(len(re.findall(r"\bglue\(", l)) for l in code)
            i = end + 1
            continue
        if line.strip() == "$$" or (line.startswith("$$") and not line.rstrip().endswith("$$")):
            i = next(j for j in range(i + 1, len(lines)) if lines[j].strip().endswith("$$")) + 1
            continue
        directive = re.match(r"^(:{3,})\{([\w-]+)\}", line)
        if where is None and directive:
            name, closing = directive.group(2), directive.group(1)
            following = lines[i + 1:i + 4]
            if name == "check-question":
                where = "question"
                stats["questions"] += 1
            elif name == "dropdown" or any(l.startswith(":class:") and "dropdown" in l for l in following):
                where = "folded"
        elif where is not None and line.rstrip() == closing:
            where = None
        elif not line.startswith((":::", "<!--", "|---", "%", ":class:")):
            if where is None:
                prose.append(line)
            elif where == "folded":
                folded.append(line)
        i += 1
    stats["words"] = _words(prose)
    stats["words folded"] = _words(folded)
    return stats


def _words(lines: list[str]) -> int:
    text = " ".join(lines)
    text = re.sub(r"\{[^}]+\}`[^`]*`", " X ", text)          # roles: glue, cite, doc
    text = re.sub(r"\$[^$]+\$", " X ", text)                 # inline maths
    return len(re.findall(r"[\w'’.,%×-]*\w[\w'’.,%×-]*", text))


def main(paths: list[str]) -> None:
    paths = paths or [str(ROOT / "book" / f"{name}.md") for name in CHAPTERS]
    columns = ["words", "words folded", "questions", "code shown", "code folded", "code removed", "glue shown"]
    print(f"{'chapter':16s}" + "".join(f"{c:>14s}" for c in columns))
    totals = dict.fromkeys(columns, 0)
    for path in paths:
        stats = chapter_stats(Path(path).read_text())
        print(f"{Path(path).stem:16s}" + "".join(f"{stats[c]:>14,}" for c in columns))
        for c in columns:
            totals[c] += stats[c]
    print(f"{'total':16s}" + "".join(f"{totals[c]:>14,}" for c in columns))


if __name__ == "__main__":
    main(sys.argv[1:])
