"""Hostile submissions of the CNN exercise: files that try to stop the class, take another
student's identity, run script in the instructor's browser, recover the hidden tests, fill the
disk, forge the submission time, or smuggle escape sequences and formulas into reports.

``build(folder)`` writes them next to honest ones; ``CASES`` says what each one should get:
name -> (how it is written, expected status, expected score, words in its problems). Honest
submissions cost one kernel (identical notebooks are graded once); malformed ones cost none.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from corpus import FAST, _nb, _write

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"       # retitles the terminal, clears it, turns it red
FORMULA = "=HYPERLINK(\"x\";\"click\")"   # (no slash: it is a folder name)

# Times (UTC) each way of collecting gives; the notebooks themselves claim FORGED.
FORGED = "1999-12-31T23:59:59+00:00"
TIMES = {"honest": "2024-03-01 10:00:00", "honest_zip": "2024-03-03 12:00:00", "forged_time": "2024-03-04 09:30:00",
         "instructed": "2024-03-07 08:00:00"}

# Student HTML that would run if it reached the page live: each payload sets window.pwned or the title.
HTML_PAYLOAD = ('<script>window.pwned="script"; document.title="pwned"</script>'
                '<img src="x" onerror="window.pwned=\'img\'">'
                '<iframe srcdoc="<script>parent.pwned=\'iframe\'</script>"></iframe>'
                '<a id="jslink" href="javascript:window.pwned=\'link\'">link</a>'
                '<style>body { display: none }</style><b>bold survives</b>')
OUTPUT_CELL = f"""
from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML({HTML_PAYLOAD!r}))
display(HTML({HTML_PAYLOAD!r}), metadata={{"isolated": True}})
display(Javascript('window.pwned = "javascript"'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="window.pwned=1"><script>window.pwned=2</script></svg>'))
display(Markdown('<img src=x onerror="window.pwned=3"> [md](javascript:window.pwned=4)'))
print("x" * 600_000)
"""
# After the tests: everything the kernel ran, re-spaced and HTML-escaped, to get past a filter
# that looks for the hidden lines as they are written.
LEAK_CELL = """
import html as _h
from IPython.display import HTML, display
_src = "\\n".join(In)
print(_src.replace(" ", "  "))
display(HTML("<pre>" + _h.escape(_src) + "</pre>"))
"""
WRITTEN_PAYLOAD = (FAST["written_answer"] + "\n\n<script>window.pwned='answer'</script>\n\n"
                   "<img src=x onerror=\"window.pwned='answer-img'\">\n\n[click me](javascript:window.pwned='answer-link')\n\n"
                   "<a href=\"javascript:window.pwned='answer-a'\">also me</a> and a lone surrogate: \ud800")

# name -> (how, status, score, words in problems)
CASES = {
    "honest":         ("answers parts 1-3, nbgrader layout with timestamp.txt", "ok", 5, []),
    "honest_zip":     ("the same notebook, as a zip", "ok", 5, []),
    "forged_time":    ("honest; the notebook's metadata claims 1999", "ok", 5, []),
    "instructed":     ("honest; the instructor's timestamps.csv gives its time", "ok", 5, []),
    "hostile_output": ("script in outputs and the written answer, a leak of In, 600 kB printed", "problem", 5,
                       ["lone surrogates", "output truncated: the autograded notebook"]),
    # one file must never stop the class: by class of malformation
    "enc_not_utf8":   ("Latin-1 bytes", "broken", 0, ["not UTF-8"]),
    "enc_bom_junk":   ("UTF-16 with a BOM", "broken", 0, ["not UTF-8"]),
    "nest_deep":      ("JSON nested 100000 deep", "broken", 0, ["nested too deeply"]),
    "json_bigint":    ("a number of 100000 digits", "broken", 0, ["not valid JSON"]),
    "json_list":      ("valid JSON, a list", "broken", 0, ["not a Jupyter notebook"]),
    "json_cells_str": ("valid JSON, cells a string", "broken", 0, ["not a Jupyter notebook"]),
    "types_meta":     ("grade_id a list, nbgrader a string, points a string, metadata a list", "problem", 0,
                       ["no answer cells found"]),
    "zip_encrypted":  ("an encrypted zip entry", "broken", 0, ["encrypted"]),
    "zip_bomb":       ("60 MiB of zeros in 60 kB", "broken", 0, ["too large to read"]),
    "zip_many":       ("3000 entries", "broken", 0, ["more than 2000"]),
    "zip_abs":        ("an absolute path", "broken", 0, ["outside the zip"]),
    "zip_dotdot":     ("a ../ path", "broken", 0, ["outside the zip"]),
    "zip_symlink":    ("a symbolic-link entry", "broken", 0, ["symbolic link"]),
    "zip_garbage":    ("not a zip at all", "broken", 0, ["not a readable zip"]),
    "special_fifo":   ("cnn.ipynb is a named pipe", "broken", 0, ["named pipe"]),
    "special_loose":  ("a loose .ipynb that is a named pipe", "broken", 0, ["named pipe"]),
    "special_link":   ("cnn.ipynb links to another student's notebook", "broken", 0, ["symbolic link"]),
    "special_sparse": ("40 sparse files of 1 GiB", "broken", 0, ["1024 MiB"]),
    # identity collisions: kept, named, not graded
    "alice":          ("alice/ and alice.zip", "conflict", 0, ["alice/", "alice.zip"]),
    "dave":           ("dave!/ and dave?/ (both map to dave)", "conflict", 0, ["dave!/", "dave?/"]),
    # names for the terminal and the spreadsheet
    "HYPERLINK_x_click": ("a folder named like a formula, holding a named pipe named with escapes",
                               "broken", 0, ["named pipe"]),
}
HONEST = [s for s, case in CASES.items() if case[1] == "ok"]


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def build(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    honest = _nb(FAST)
    text = nbformat.writes(honest)
    _write(folder, "honest", honest)
    (folder / "honest" / "cnn" / "timestamp.txt").write_text(TIMES["honest"] + ".000000 UTC")
    _zip(folder / "honest_zip.zip", [("cnn.ipynb", text)])
    os.utime(folder / "honest_zip.zip", (_utc(TIMES["honest_zip"]),) * 2)

    forged = _nb(FAST)
    forged.metadata["nbgrader"] = {"timestamp": FORGED}
    forged.metadata["timestamp"] = FORGED
    _write(folder, "forged_time", forged)
    (folder / "forged_time" / "cnn" / "timestamp.txt").write_text(TIMES["forged_time"] + ".000000 UTC")
    (folder / "instructed").mkdir()
    nbformat.write(forged, folder / "instructed" / "cnn.ipynb")
    (folder / "timestamps.csv").write_text(f"student_id,timestamp\ninstructed,{TIMES['instructed']}\n")

    nb = _nb(dict(FAST, written_answer=WRITTEN_PAYLOAD))
    nb.cells.insert(2, nbformat.v4.new_code_cell(OUTPUT_CELL))
    nb.cells.append(nbformat.v4.new_markdown_cell("<style>body { display: none }</style>\n<script>window.pwned='added'</script>"))
    nb.cells.append(nbformat.v4.new_code_cell(LEAK_CELL))
    (folder / "hostile_output" / "cnn").mkdir(parents=True)
    # json's default escapes the lone surrogate (as \ud800), which UTF-8 cannot carry
    (folder / "hostile_output" / "cnn" / "cnn.ipynb").write_text(json.dumps(nb))

    def raw(student: str, data: bytes, name: str = "cnn.ipynb") -> Path:
        d = folder / student / "cnn"
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
        return d / name

    raw("enc_not_utf8", text.replace("parameters", "paramètres").encode("latin-1"))
    raw("enc_bom_junk", text.encode("utf-16"))
    raw("nest_deep", b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    raw("json_bigint", b'{"cells": [], "n": ' + b"9" * 100_000 + b"}")
    raw("json_list", b"[1, 2, 3]")
    raw("json_cells_str", b'{"cells": "none", "nbformat": 4}')
    data = json.loads(text)
    odd = [["part1_answer"], "part2_answer", 3, None]
    for cell in data["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta and meta.get("solution"):
            kind = odd.pop(0) if odd else None
            if isinstance(kind, list):
                meta["grade_id"] = kind
            elif kind == "part2_answer":
                cell["metadata"]["nbgrader"] = "solution"
            elif kind == 3:
                meta.update(grade_id=3, points="three")
            else:
                cell["metadata"] = ["not", "a", "dict"]
    raw("types_meta", json.dumps(data).encode())

    _zip(folder / "zip_encrypted.zip", [("cnn.ipynb", text)])
    data = bytearray((folder / "zip_encrypted.zip").read_bytes())   # zipfile cannot encrypt: set the flag
    data[6] |= 1
    data[data.index(b"PK\x01\x02") + 8] |= 1
    (folder / "zip_encrypted.zip").write_bytes(bytes(data))
    _zip(folder / "zip_bomb.zip", [("cnn.ipynb", b"\0" * (60 * 2**20))])
    _zip(folder / "zip_many.zip", [(f"x{i}.ipynb", b"{}") for i in range(3000)])
    _zip(folder / "zip_abs.zip", [("/tmp/cnn.ipynb", text)])
    _zip(folder / "zip_dotdot.zip", [("../../cnn.ipynb", text)])
    link = zipfile.ZipInfo("cnn.ipynb")
    link.external_attr = (0o120777 << 16)
    _zip(folder / "zip_symlink.zip", [(link, b"../../honest/cnn/cnn.ipynb")])
    (folder / "zip_garbage.zip").write_bytes(b"PK\x03\x04" + os.urandom(2000))

    (folder / "special_fifo" / "cnn").mkdir(parents=True)
    os.mkfifo(folder / "special_fifo" / "cnn" / "cnn.ipynb")
    os.mkfifo(folder / "special_loose.ipynb")
    (folder / "special_link" / "cnn").mkdir(parents=True)
    (folder / "special_link" / "cnn" / "cnn.ipynb").symlink_to(folder / "honest" / "cnn" / "cnn.ipynb")
    (folder / "special_sparse" / "cnn").mkdir(parents=True)
    for i in range(40):
        with open(folder / "special_sparse" / "cnn" / f"part{i:02d}.ipynb", "wb") as f:
            f.truncate(2**30)

    _write(folder, "alice", honest)
    _zip(folder / "alice.zip", [("cnn.ipynb", nbformat.writes(_nb({})))])
    _write(folder, "dave!", honest)
    _write(folder, "dave?", _nb({}))

    d = folder / FORMULA / "cnn"
    d.mkdir(parents=True)
    os.mkfifo(d / f"{ESC}cnn.ipynb")
