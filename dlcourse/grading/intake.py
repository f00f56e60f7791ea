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
unanswered; cells without nbgrader metadata (those the student added, and the release's own
unmarked cells, which nbgrader leaves to the student too) are the student's, kept after the cell
they followed, without nbgrader metadata (so they can never carry points).
"""
from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import posixpath
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from . import neutral

MAX_NOTEBOOK_BYTES = 50 * 1024 ** 2   # a notebook larger than this is refused
MAX_STUDENT_BYTES = 100 * 1024 ** 2   # total bytes read for one student (folder or zip), whatever the files
MAX_ENTRIES = 2000                    # files looked at in one student's folder, entries in one zip
MAX_TIMESTAMP_BYTES = 4096
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@+-]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
TIMESTAMPS_FILE = "timestamps.csv"    # optional, written by the instructor: student_id,timestamp


@dataclass
class Submission:
    student: str
    files: dict[str, bytes] = field(default_factory=dict)   # notebook name in the release -> raw bytes
    origin: dict[str, str] = field(default_factory=dict)    # notebook name -> where it came from
    timestamp: str | None = None     # when it was collected (never read from the student's notebook)
    timestamp_source: str | None = None
    problems: list[str] = field(default_factory=list)
    missing: bool = False
    named_by_student: bool = False   # a loose <student>.ipynb: its name is not the notebook's
    conflict: list[str] = field(default_factory=list)   # several submissions claim this id: their sources
    budget: int = MAX_STUDENT_BYTES  # bytes still allowed to be read for this student
    other_assignments_only: bool = False   # a folder with only other assignments' folders in it
    candidates: dict[str, bytes] = field(default_factory=dict)   # path -> bytes of its other files
    other_files: dict[str, bytes] = field(default_factory=dict)  # beside the notebooks: relative path -> bytes


def student_id(name: str) -> str:
    """A safe student id from a folder or file name."""
    sid = _SAFE_ID.sub("_", name.strip()).strip("._")
    return sid or "unnamed"


def shown(name: str) -> str:
    """A student-chosen name as it may appear in a message (terminal, CSV, HTML-escaped later)."""
    return neutral.printable(name, limit=120)


def collect(folder: Path, assignment: str, notebook_names: list[str], *,
            release_ids: dict[str, set[str]] | None = None,
            other_assignments: set[str] = frozenset()) -> dict[str, Submission]:
    """Every student's files from ``folder``, keyed by student id.

    No file can stop the collection: whatever goes wrong reading one entry becomes a problem of
    that entry's submission. Two entries that map to one student id (``alice/`` and
    ``alice.zip``) make a single submission with ``conflict`` set and no files: neither is graded
    as that student until the instructor removes or renames one.

    ``release_ids`` (notebook -> its cells' grade ids) matches renamed notebooks of an assignment
    of several notebooks; a student's folder is never searched inside a folder named after one of
    ``other_assignments`` (nbgrader's ``submitted/<student>/<other assignment>/``): a student with
    no folder for this assignment has not handed it in."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--submissions: expected a folder of submissions, got {folder} (not a folder)")
    claims: dict[str, list[tuple[str, Submission]]] = {}
    # nbgrader's layout for this class (some student has <student>/<assignment>/): a student folder
    # without that level is never searched below its top (its subfolders are other assignments)
    nbgrader_class = any(e.is_dir() and not e.is_symlink() and (e / assignment).is_dir()
                         and not (e / assignment).is_symlink() for e in folder.iterdir())
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in ("__MACOSX", TIMESTAMPS_FILE):
            continue
        try:
            sub = _from_entry(entry, assignment, other_assignments, nbgrader_class)
        except Exception as exc:  # noqa: BLE001 -- one entry must never stop the class
            sub = Submission(student_id(Path(entry.name).stem))
            sub.problems.append(f"{shown(entry.name)} could not be read ({type(exc).__name__}: {shown(str(exc))})")
        if sub is not None:
            claims.setdefault(sub.student, []).append((entry.name, sub))
    instructor_times = _instructor_timestamps(folder / TIMESTAMPS_FILE)
    subs: dict[str, Submission] = {}
    for sid, found in claims.items():
        if len(found) > 1:
            sources = [name + ("/" if (folder / name).is_dir() else "") for name, _ in found]
            sub = Submission(sid, conflict=sources)
            sub.problems.append(f"conflict: {len(found)} submissions map to student id {sid}: "
                                + ", ".join(shown(s) for s in sources)
                                + "; none was graded (both are kept as they are): remove or rename the one that "
                                  "is not this student's and run again")
            subs[sid] = sub
            continue
        sub = found[0][1]
        try:
            _match_notebooks(sub, notebook_names, release_ids or {})
        except Exception as exc:  # noqa: BLE001
            sub.files = {}
            sub.problems.append(f"the notebooks could not be matched ({type(exc).__name__})")
        if sid in instructor_times:
            sub.timestamp, sub.timestamp_source = instructor_times[sid], TIMESTAMPS_FILE
        subs[sid] = sub
    return subs


def _from_entry(entry: Path, assignment: str, other_assignments: set[str] = frozenset(),
                nbgrader_class: bool = False) -> Submission | None:
    if entry.is_symlink():
        sub = Submission(student_id(Path(entry.name).stem))
        sub.problems.append(f"{shown(entry.name)} is a symbolic link; it was not followed")
        return sub
    if entry.is_dir():
        sub = _from_folder(entry, assignment, other_assignments - {assignment}, nbgrader_class)
        if sub.other_assignments_only:
            return None     # nbgrader's layout, other assignments only: not handed in
        return sub
    if entry.suffix.lower() == ".zip":
        return _from_zip(entry)
    if entry.suffix.lower() == ".ipynb":
        stem = entry.stem
        for suffix in (f"_{assignment}", f"-{assignment}", f" {assignment}"):
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
        sub = Submission(student_id(stem), named_by_student=True)
        data, st = read_regular(entry, sub, entry.name)
        if data is not None:
            sub.files[entry.name] = data
            sub.origin[entry.name] = entry.name
            _file_time(sub, st, entry.name)
        return sub
    return None


def read_regular(path: Path, sub: Submission, label: str, cap: int = MAX_NOTEBOOK_BYTES):
    """The bytes of ``path`` and its stat, or (None, None) with a problem noted in ``sub``.

    Only a regular file is read: it is opened without following a symbolic link and without
    blocking (a named pipe or a device named like a notebook is refused, not waited on); its size
    and allocated blocks are checked before reading (a sparse 1-GiB file is refused unread); no
    more than ``cap`` bytes, nor more than the student's remaining budget, are read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        what = "a symbolic link" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
        sub.problems.append(f"{shown(label)} is {what}; it was not read")
        return None, None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a named pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
            sub.problems.append(f"{shown(label)} is {kind}, not a file; it was not read")
            return None, None
        limit = min(cap, sub.budget)
        if st.st_size > limit:
            why = (f"more than the {cap // 2**20} MiB allowed" if st.st_size > cap else
                   f"more than the {MAX_STUDENT_BYTES // 2**20} MiB read in all for one student")
            sub.problems.append(f"{shown(label)} is {st.st_size / 2**20:.0f} MiB, {why}; it was not read")
            return None, None
        if st.st_size > 2**20 and st.st_blocks * 512 < st.st_size // 2:
            sub.problems.append(f"{shown(label)} is a sparse file ({st.st_size / 2**20:.0f} MiB, mostly holes); "
                                "it was not read")
            return None, None
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:     # it grew while being read
            sub.problems.append(f"{shown(label)} is larger than the {limit // 2**20} MiB allowed; it was not read")
            return None, None
        sub.budget -= got
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _file_time(sub: Submission, st, label: str) -> None:
    """The submission time from the file's modification time (as the collection left it; the
    latest of a folder's notebooks), unless a collected time is known already."""
    if st is None or (sub.timestamp is not None and not (sub.timestamp_source or "").startswith("modification")):
        return
    when = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(" ")
    if sub.timestamp is None or when > sub.timestamp:
        sub.timestamp, sub.timestamp_source = when, f"modification time of {shown(label)}"


def _parse_time(text: str) -> str | None:
    """An ISO time (UTC if no zone is given) from nbgrader's timestamp text, or None."""
    from nbgrader.utils import parse_utc
    try:
        return parse_utc(text.strip()).replace(tzinfo=timezone.utc).isoformat(" ")
    except (ValueError, OverflowError, TypeError):
        return None


def _instructor_timestamps(path: Path) -> dict[str, str]:
    """``student_id,timestamp`` rows of the instructor's ``timestamps.csv`` (if there is one)."""
    if not path.is_file() or path.is_symlink():
        return {}
    times = {}
    for row in csv.reader(path.read_text(errors="replace").splitlines()):
        if len(row) >= 2 and row[0].strip() and row[0].strip() != "student_id":
            parsed = _parse_time(row[1])
            if parsed is None:
                raise ValueError(f"{path}: {row[1]!r} (for {row[0]!r}) is not a time")
            times[student_id(row[0])] = parsed
    return times


def _from_folder(folder: Path, assignment: str, other_assignments: set[str] = frozenset(),
                 nbgrader_class: bool = False) -> Submission:
    sub = Submission(student_id(folder.name))
    nbgrader_layout = (folder / assignment).is_dir() and not (folder / assignment).is_symlink()
    inner = folder / assignment if nbgrader_layout else folder
    if nbgrader_layout and (inner / "timestamp.txt").exists():
        # written by nbgrader's exchange (submit, then collect), not part of the student's files
        data, _ = read_regular(inner / "timestamp.txt", sub, f"{folder.name}/{assignment}/timestamp.txt",
                               cap=MAX_TIMESTAMP_BYTES)
        parsed = _parse_time(data.decode("utf-8", "replace")) if data else None
        if parsed:
            sub.timestamp, sub.timestamp_source = parsed, "timestamp.txt"
        elif data is not None:
            sub.problems.append("note: timestamp.txt is not a time; the notebook's modification time was used")
    seen = 0
    skipped_other = False
    for root, dirs, files in os.walk(inner, followlinks=False):
        if Path(root) == folder and not nbgrader_layout:
            others = [d for d in dirs if d in other_assignments or (nbgrader_class and d != ".ipynb_checkpoints")]
            if others:
                skipped_other = True
                dirs[:] = [d for d in dirs if d not in others]
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        for name in sorted(files):
            seen += 1
            if seen > MAX_ENTRIES:
                sub.problems.append(f"more than {MAX_ENTRIES} files in {shown(folder.name)}; the rest were not read")
                return sub
            if not name.lower().endswith(".ipynb"):
                if not (nbgrader_layout and Path(root) == inner and name == "timestamp.txt"):
                    path = Path(root) / name
                    data, _ = read_regular(path, sub, str(path.relative_to(folder.parent)))
                    if data is not None:
                        sub.candidates[str(path.relative_to(inner))] = data
                continue
            nb = Path(root) / name
            rel = str(nb.relative_to(inner))
            data, st = read_regular(nb, sub, str(nb.relative_to(folder.parent)))
            if data is not None:
                sub.files[rel] = data
                sub.origin[rel] = str(nb.relative_to(folder.parent))
                _file_time(sub, st, str(nb.relative_to(folder.parent)))
    sub.other_assignments_only = skipped_other and not sub.files and not sub.problems
    return sub


def _unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry is not read (we never extract, but such an entry is not a notebook)."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        return "has a path outside the zip (absolute or with ..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted (password-protected)"
    return None


def _from_zip(path: Path) -> Submission:
    sub = Submission(student_id(path.stem))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        sub.problems.append(f"{shown(path.name)} could not be opened ({exc.strerror})")
        return sub
    with os.fdopen(fd, "rb") as raw:
        st = os.fstat(raw.fileno())
        if not stat.S_ISREG(st.st_mode):
            sub.problems.append(f"{shown(path.name)} is not a regular file; it was not read")
            return sub
        _read_zip(raw, path.name, sub)
        _file_time(sub, st, path.name)    # the zip's own time: its entries' dates are the student's
    return sub


def _read_zip(raw, label: str, sub: Submission) -> None:
    try:
        with zipfile.ZipFile(raw) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                sub.problems.append(f"{shown(label)} has {len(infos)} entries, more than {MAX_ENTRIES}; "
                                    f"only the first {MAX_ENTRIES} were looked at")
            for info in infos[:MAX_ENTRIES]:
                name = info.filename
                if info.is_dir() or "__MACOSX" in name or ".ipynb_checkpoints" in name:
                    continue
                notebook = name.lower().endswith(".ipynb")
                where = f"{label}:{name}"
                why = _unsafe_member(info)
                if why:
                    sub.problems.append(f"{shown(where)} {why}; it was not read")
                    continue
                limit = min(MAX_NOTEBOOK_BYTES, sub.budget)
                if info.file_size > limit:
                    sub.problems.append(f"{shown(where)} is too large to read ({info.file_size / 2**20:.0f} MiB "
                                        f"uncompressed; at most {limit // 2**20} MiB)")
                    continue
                try:
                    with zf.open(info) as f:
                        data = f.read(limit + 1)      # never more, whatever the entry claims
                except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError, zlib.error,
                        ValueError) as exc:
                    sub.problems.append(f"{shown(where)} could not be read ({type(exc).__name__}: {shown(str(exc))})")
                    continue
                sub.budget -= len(data)
                if len(data) > limit:
                    sub.problems.append(f"{shown(where)} is larger than its zip entry says; it was not read")
                    continue
                if notebook:
                    sub.files[name] = data
                    sub.origin[name] = where
                else:
                    sub.candidates[name] = data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError, zlib.error) as exc:
        sub.problems.append(f"{shown(label)} is not a readable zip file ({shown(str(exc))})")


def _grade_ids(data: bytes) -> set[str]:
    try:
        nb = json.loads(data)
        return {_gid_of(c) for c in nb.get("cells", [])} - {None}
    except (ValueError, AttributeError, TypeError, RecursionError):
        return set()


def _gid_of(cell) -> str | None:
    """The nbgrader grade id of a student's cell, if it is a string (metadata of any type)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid if isinstance(gid, str) else None


def _match_notebooks(sub: Submission, names: list[str], release_ids: dict[str, set[str]] | None = None) -> None:
    """Rename ``sub.files`` to the release's notebook names."""
    found: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    matched: list[str] = []                 # the student's paths of the matched notebooks
    files = dict(sub.files)
    for name in names:                      # exact file names first
        for key in list(files):
            if Path(key).name == f"{name}.ipynb":
                found[name], origin[name] = files.pop(key), sub.origin[key]
                matched.append(key)
                break
    for name in names:                      # then a renamed notebook
        if name in found or not files:
            continue
        if len(names) == 1 and len(files) == 1:
            key = next(iter(files))
        else:                               # of several: the one that has this notebook's cells
            ids = (release_ids or {}).get(name, set())
            overlap = {k: len(_grade_ids(v) & ids) for k, v in files.items()} if ids else {}
            key = max(overlap, key=lambda k: (overlap[k], k), default=None)
            if key is not None and overlap[key] == 0:
                key = None
        if key is not None:
            found[name], origin[name] = files.pop(key), sub.origin[key]
            matched.append(key)
            if not sub.named_by_student:
                sub.problems.append(f"note: the notebook was renamed to {shown(Path(key).name)}; graded as {name}.ipynb")
    # the other files handed in beside the notebooks (data, a module of the student's), by their
    # path from the notebooks' folder, as nbgrader copies a submission's files
    base = next((posixpath.dirname(k.replace("\\", "/")) for k in matched), None)
    if base is not None:
        for key, data in sub.candidates.items():
            rel = posixpath.relpath(key.replace("\\", "/"), base or ".")
            if not rel.startswith("../") and _safe_relative(rel):
                sub.other_files[rel] = data
    sub.candidates = {}
    sub.files, sub.origin = found, origin
    if files:
        sub.problems.append("note: ignored other notebooks: " + ", ".join(shown(Path(k).name) for k in sorted(files))[:2000])


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
    except UnicodeDecodeError as exc:
        return None, [f"the notebook is not UTF-8 text (byte {exc.start} is not UTF-8)"]
    except RecursionError:
        return None, ["the notebook's JSON is nested too deeply to be a notebook"]
    except json.JSONDecodeError as exc:
        cut = exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 1
        msg = exc.msg[:1].lower() + exc.msg[1:]
        where = f"{msg}{'' if msg.endswith(' at') else ' at'} line {exc.lineno}, column {exc.colno}"
        return None, [f"the notebook is not valid JSON ({where}{'; the file looks cut off' if cut else ''})"]
    except ValueError as exc:   # e.g. a number with more digits than Python converts
        return None, [f"the notebook is not valid JSON ({neutral.printable(str(exc), 120)})"]
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, ["the file is JSON but not a Jupyter notebook (no cells)"]
    if "worksheets" in data and "cells" not in data:
        try:
            data = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception:  # noqa: BLE001
            return None, ["the notebook uses an old format that could not be converted"]
    student_cells = [c for c in data["cells"] if isinstance(c, dict)]

    repaired = []

    def source_of(cell) -> str:
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        src = src if isinstance(src, str) else ""
        if _SURROGATE.search(src):      # cannot be written as UTF-8: shown as U+FFFD instead
            repaired.append(_gid_of(cell) or "a cell of the student's own")
            src = _SURROGATE.sub("\ufffd", src)
        return src

    gid_of = _gid_of

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
    if repaired:
        problems.append("characters that are not valid Unicode (lone surrogates) were replaced by U+FFFD in: "
                        + ", ".join(dict.fromkeys(repaired)))
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
    for i, (gid, cell) in enumerate(zip(release_ids, release.cells)):
        if gid is None:
            # a cell without nbgrader metadata is the student's to edit or delete, as in nbgrader:
            # it comes from the student's notebook (above), not from the release as well
            continue
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        if not new.get("id"):
            # a release older than nbformat 4.5 has no cell ids: fixed ones, not random ones (the
            # rebuilt notebook is the key of the cache of results)
            new["id"] = f"release-cell-{i + 1}"
        if cell.cell_type == "code":
            new.outputs, new.execution_count = [], None
        if gid in answers:
            new.source = answers[gid]
        nb.cells.append(new)
        if gid is not None:
            nb.cells.extend(extra_after.get(gid, []))
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    return nb, problems


def _safe_relative(rel: str) -> bool:
    """A relative path that stays below its folder, with printable names of sensible length."""
    parts = rel.split("/")
    return (0 < len(parts) <= 8 and all(p not in ("", ".", "..") and len(p) <= 120 and p.isprintable()
                                        and not p.startswith(".") for p in parts))


def write_files(files: dict[str, bytes], dest: Path) -> None:
    """Write a submission's other files (paths checked by ``_safe_relative``) under ``dest``."""
    for rel, data in sorted(files.items()):
        if not _safe_relative(rel):
            continue
        target = dest.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()
