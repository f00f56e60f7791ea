"""Find each student's notebook in a folder of submissions and rebuild it from the release.

Layouts accepted (mixed in one folder too):

- nbgrader's: ``<student>/<assignment>/<notebook>.ipynb`` (plus an optional ``timestamp.txt``);
- a folder per student without the assignment level: ``<student>/<notebook>.ipynb``;
- a zip file per student, as learning platforms export them: ``<student>.zip``, with the
  notebook anywhere inside;
- loose notebooks named by student: ``<student>.ipynb`` (or ``<student>_<assignment>.ipynb``).

A notebook with another name (``cnn (1).ipynb``, ``Copy of cnn.ipynb``) is matched to the
assignment's notebook by its cells' nbgrader ids.

The student's notebook is then *rebuilt* from the released one: every cell comes from the release
(the instructor's text, locked setup and test cells, their nbgrader metadata) except the answer
cells, whose source comes from the student's cell with the same ``grade_id``. A deleted or
edited test cell is therefore simply the original again; a missing answer cell is graded as
unanswered; cells the student added are kept, after the cell they followed, without nbgrader
metadata (so they can never carry points).
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 50 * 1024 ** 2   # a notebook larger than this is refused
MAX_ZIP_BYTES = 200 * 1024 ** 2       # total uncompressed size read from one zip file
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    student: str
    files: dict[str, bytes] = field(default_factory=dict)   # notebook name in the release -> raw bytes
    origin: dict[str, str] = field(default_factory=dict)    # notebook name -> where it came from
    timestamp: str | None = None
    problems: list[str] = field(default_factory=list)
    missing: bool = False
    named_by_student: bool = False   # a loose <student>.ipynb: its name is not the notebook's


def student_id(name: str) -> str:
    """A safe student id from a folder or file name."""
    sid = _SAFE_ID.sub("_", name.strip()).strip("._")
    return sid or "unnamed"


def collect(folder: Path, assignment: str, notebook_names: list[str]) -> dict[str, Submission]:
    """Every student's files from ``folder``, keyed by student id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--submissions: expected a folder of submissions, got {folder} (not a folder)")
    subs: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in ("__MACOSX",):
            continue
        if entry.is_dir():
            sub = _from_folder(entry, assignment)
        elif entry.suffix.lower() == ".zip":
            sub = _from_zip(entry)
        elif entry.suffix.lower() == ".ipynb":
            stem = entry.stem
            for suffix in (f"_{assignment}", f"-{assignment}", f" {assignment}"):
                if stem.endswith(suffix) and len(stem) > len(suffix):
                    stem = stem[: -len(suffix)]
            sub = Submission(student_id(stem), named_by_student=True)
            sub.files[entry.name] = _read_limited(entry, sub)
            sub.origin[entry.name] = entry.name
        else:
            continue
        if sub.student in subs:
            subs[sub.student].problems.append(f"more than one submission found ({entry.name} too); used the first")
            continue
        _match_notebooks(sub, notebook_names)
        subs[sub.student] = sub
    return subs


def _read_limited(path: Path, sub: Submission) -> bytes:
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        sub.problems.append(f"{path.name} is {size / 2**20:.0f} MiB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MiB allowed")
        return b""
    return path.read_bytes()


def _from_folder(folder: Path, assignment: str) -> Submission:
    sub = Submission(student_id(folder.name))
    inner = folder / assignment if (folder / assignment).is_dir() else folder
    for nb in sorted(inner.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        rel = str(nb.relative_to(inner))
        sub.files[rel] = _read_limited(nb, sub)
        sub.origin[rel] = str(nb.relative_to(folder.parent))
    stamp = inner / "timestamp.txt"
    if stamp.is_file():
        sub.timestamp = stamp.read_text(errors="replace").strip()[:64] or None
    return sub


def _from_zip(path: Path) -> Submission:
    sub = Submission(student_id(path.stem))
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or not name.lower().endswith(".ipynb") or "__MACOSX" in name \
                        or ".ipynb_checkpoints" in name:
                    continue
                total += info.file_size
                if info.file_size > MAX_NOTEBOOK_BYTES or total > MAX_ZIP_BYTES:
                    sub.problems.append(f"{path.name}: {name} is too large to read")
                    continue
                with zf.open(info) as f:
                    data = f.read(MAX_NOTEBOOK_BYTES + 1)
                sub.files[name] = data[:MAX_NOTEBOOK_BYTES]
                sub.origin[name] = f"{path.name}:{name}"
    except (zipfile.BadZipFile, OSError) as exc:
        sub.problems.append(f"{path.name} is not a readable zip file ({exc})")
    return sub


def _grade_ids(data: bytes) -> set[str]:
    try:
        nb = json.loads(data)
        return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", [])} - {None}
    except (ValueError, AttributeError, TypeError):
        return set()


def _match_notebooks(sub: Submission, names: list[str]) -> None:
    """Rename ``sub.files`` to the release's notebook names."""
    found: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    files = dict(sub.files)
    for name in names:                      # exact file names first
        for key in list(files):
            if Path(key).name == f"{name}.ipynb":
                found[name], origin[name] = files.pop(key), sub.origin[key]
                break
    for name in names:                      # then a renamed notebook
        if name in found or not files:
            continue
        if len(names) == 1 and len(files) == 1:
            key = next(iter(files))
        else:
            key = None
        if key is not None:
            found[name], origin[name] = files.pop(key), sub.origin[key]
            if not sub.named_by_student:
                sub.problems.append(f"note: the notebook was renamed to {Path(key).name}; graded as {name}.ipynb")
    sub.files, sub.origin = found, origin
    if files:
        sub.problems.append("note: ignored other notebooks: " + ", ".join(Path(k).name for k in sorted(files)))


def match_by_cells(sub: Submission, names: list[str], release_ids: dict[str, set[str]], extra: dict[str, bytes]) -> None:
    """For several notebooks: match leftover notebooks by their cells' grade ids."""
    for name in names:
        if name in sub.files:
            continue
        best = max(extra.items(), key=lambda kv: len(_grade_ids(kv[1]) & release_ids[name]), default=None)
        if best and _grade_ids(best[1]) & release_ids[name]:
            sub.files[name] = best[1]
            extra.pop(best[0])


# --------------------------------------------------------------------------------------------
# rebuilding from the release
# --------------------------------------------------------------------------------------------
def is_answer_cell(cell) -> bool:
    """A cell the student writes (code answer or written answer)."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def rebuild(raw: bytes, release: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode | None, list[str]]:
    """The notebook to grade, and what was wrong with the student's file (None if unusable)."""
    problems: list[str] = []
    if not raw.strip():
        return None, ["the notebook file is empty"]
    try:
        text = raw.decode("utf-8", errors="strict")
        data = json.loads(text)
    except UnicodeDecodeError:
        return None, ["the notebook is not UTF-8 text"]
    except json.JSONDecodeError as exc:
        cut = exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 1
        msg = exc.msg[:1].lower() + exc.msg[1:]
        where = f"{msg}{'' if msg.endswith(' at') else ' at'} line {exc.lineno}, column {exc.colno}"
        return None, [f"the notebook is not valid JSON ({where}{'; the file looks cut off' if cut else ''})"]
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, ["the file is JSON but not a Jupyter notebook (no cells)"]
    if "worksheets" in data and "cells" not in data:
        try:
            data = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception:  # noqa: BLE001
            return None, ["the notebook uses an old format that could not be converted"]
    student_cells = [c for c in data["cells"] if isinstance(c, dict)]

    def source_of(cell) -> str:
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        return src if isinstance(src, str) else ""

    def gid_of(cell):
        meta = cell.get("metadata", {})
        nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        return nbg.get("grade_id") if isinstance(nbg, dict) else None

    release_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    release_by_id = {gid: c for gid, c in zip(release_ids, release.cells) if gid}
    answers: dict[str, str] = {}
    extra_after: dict[str | None, list[dict]] = {}
    anchor: str | None = None
    edited, seen = [], set()
    for cell in student_cells:
        gid = gid_of(cell)
        if gid in release_by_id and gid not in seen:
            seen.add(gid)
            rel = release_by_id[gid]
            if is_answer_cell(rel):
                answers[gid] = source_of(cell)
            elif rel.cell_type == "code" and source_of(cell).strip() != rel.source.strip():
                edited.append(gid)
            anchor = gid
            continue
        # a cell of the student's own (or a duplicate): keep code cells, as plain cells, with
        # ids that depend only on the order (the rebuilt notebook is the key of the cache)
        added = None
        if cell.get("cell_type") == "code" and source_of(cell).strip():
            added = nbformat.v4.new_code_cell(source_of(cell))
        elif cell.get("cell_type") == "markdown":
            added = nbformat.v4.new_markdown_cell(source_of(cell))
        if added is not None:
            added["id"] = f"student-cell-{sum(map(len, extra_after.values())) + 1}"
            extra_after.setdefault(anchor, []).append(added)
    missing_locked = [gid for gid in release_by_id if gid not in seen and not is_answer_cell(release_by_id[gid])
                      and release_by_id[gid].cell_type == "code"]
    missing_answers = [gid for gid in release_by_id if is_answer_cell(release_by_id[gid]) and gid not in answers]
    if edited:
        problems.append("note: edited locked cells were restored: " + ", ".join(edited))
    if missing_locked:
        problems.append("note: deleted locked cells were restored: " + ", ".join(missing_locked))
    if missing_answers and len(missing_answers) == sum(is_answer_cell(c) for c in release.cells):
        problems.append("no answer cells found (is this the right notebook?): graded as unanswered")
    elif missing_answers:
        problems.append("note: answer cells missing, graded as unanswered: " + ", ".join(missing_answers))

    nb = nbformat.v4.new_notebook(metadata=release.metadata)
    nb.cells = list(extra_after.get(None, []))
    for gid, cell in zip(release_ids, release.cells):
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        if cell.cell_type == "code":
            new.outputs, new.execution_count = [], None
        if gid in answers:
            new.source = answers[gid]
        nb.cells.append(new)
        if gid is not None:
            nb.cells.extend(extra_after.get(gid, []))
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    return nb, problems


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()
