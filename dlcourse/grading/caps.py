"""Bounds on what a submission makes the grader write outside its scratch folder.

The kernel's own output cap limits what student code prints; these bounds are enforced again
where the grader writes: the autograded notebook copied into the course's ``autograded/`` folder,
and the feedback page. A copy over its bound has its largest outputs replaced by a note (scores
live in the gradebook, not in outputs, so they are unchanged); a page over its bound is replaced
by a short page that gives the scores.
"""
from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

MAX_AUTOGRADED_BYTES = 8 * 2**20     # one autograded notebook in the course's autograded/ folder
MAX_OUTPUT_BYTES = 256 * 2**10       # one output of it, before the total is looked at
MAX_PARSED_BYTES = 512 * 2**20       # a notebook larger than this is not even parsed
MAX_PAGE_BYTES = 8 * 2**20           # one feedback page

NOTE = "[output removed by the grader: {size}, more than the {limit} allowed in a graded copy]\n"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _size(obj) -> int:
    return len(json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _note(size: int, limit: int) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": NOTE.format(size=_mib(size), limit=_mib(limit))}


def bound_notebook(nb: dict, cap: int, per_output: int | None = None) -> int:
    """Replace outputs of ``nb`` (a notebook as a dict, changed in place) by a note until it
    serialises to at most ``cap`` bytes: first every output over ``per_output``, then the largest
    remaining ones. Returns how many outputs were replaced."""
    outputs = [(cell, i) for cell in nb.get("cells", []) if isinstance(cell.get("outputs"), list)
               for i in range(len(cell["outputs"]))]
    sizes = {(id(cell), i): _size(cell["outputs"][i]) for cell, i in outputs}
    per_output = MAX_OUTPUT_BYTES if per_output is None else per_output
    replaced = 0
    for cell, i in outputs:
        if sizes[id(cell), i] > per_output:
            cell["outputs"][i] = _note(sizes[id(cell), i], per_output)
            sizes[id(cell), i] = _size(cell["outputs"][i])
            replaced += 1
    total = _size(nb)
    for cell, i in sorted(outputs, key=lambda ci: -sizes[id(ci[0]), ci[1]]):
        if total <= cap:
            break
        before = sizes[id(cell), i]
        cell["outputs"][i] = _note(before, cap)
        total -= before - _size(cell["outputs"][i])
        replaced += 1
    return replaced


def copy_notebook(src: Path, dest: Path, cap: int | None = None) -> str | None:
    """Copy an autograded notebook, bounded by ``cap`` bytes. Returns a message for the row when
    outputs were removed (or the copy was refused), None for a plain copy."""
    cap = MAX_AUTOGRADED_BYTES if cap is None else cap
    size = os.stat(src).st_size
    if size <= cap:
        shutil.copyfile(src, dest)
        return None
    if size > MAX_PARSED_BYTES:
        dest.unlink(missing_ok=True)
        return f"the autograded notebook is {_mib(size)}, too large to keep; it was not copied to autograded/"
    with open(src, encoding="utf-8", errors="surrogateescape") as f:
        nb = json.load(f)
    replaced = bound_notebook(nb, cap)
    text = json.dumps(nb, ensure_ascii=False, indent=1)
    if len(text.encode("utf-8", "surrogatepass")) > cap:
        dest.unlink(missing_ok=True)
        return f"the autograded notebook is {_mib(size)} even without outputs; it was not copied to autograded/"
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_text(text, encoding="utf-8", errors="surrogatepass")
    tmp.replace(dest)
    return (f"output truncated: the autograded notebook was {_mib(size)}; {replaced} outputs were replaced by a "
            f"note to keep it under {_mib(cap)}")


def bound_page(page: Path, title: str, reason: str, scores: list[tuple[str, str]],
               cap: int | None = None) -> bool:
    """Replace ``page`` by a short page saying ``reason`` and giving ``scores`` ((question, score)
    pairs) when it is over ``cap`` bytes (``cap=-1``: always). Returns whether it was replaced."""
    if page.stat().st_size <= (MAX_PAGE_BYTES if cap is None else cap):
        return False
    rows = "".join(f"<tr><td>{html.escape(q)}</td><td>{html.escape(s)}</td></tr>" for q, s in scores)
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto">
<h1>{html.escape(title)}</h1>
<p>{html.escape(reason)}</p>
<table><tr><th>question</th><th>score</th></tr>{rows}</table>
<p>Ask your instructor for the graded notebook.</p>
</body></html>
""")
    return True
