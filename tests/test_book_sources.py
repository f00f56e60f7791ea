"""The book reads only the files `_toc.yml` names, whatever else lies in the repository (issue 17).

The book's source folder is the repository root, where tools leave files: pytest's cache
(`make test`), nbgrader's `submitted/`, `autograded/`, `feedback/` and `grading-out/` (`make grade`),
Jupyter's checkpoints (`make lab`), editor backups, scratch notebooks and notes. None of them may
become a page or a warning (`make book` runs Sphinx with -W). `tools/dlcourse_book.py` sets Sphinx's
`include_patterns` from `_toc.yml`; these tests check it without executing a chapter:

- on a copy of this repository with stray files of every kind, the documents Sphinx finds are
  exactly the toc's, each from its own source file, and the configuration does not change;
- on a small book with the course's Makefile, `_config.yml` and extension, `make book` after a real
  pytest run, then again after the other tools' files appear, passes, builds only the toc's pages
  and reads no page again.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import book_source

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = (".md", ".ipynb", ".rst")
NOTEBOOK = json.dumps({"cells": [{"cell_type": "markdown", "id": "stray", "metadata": {}, "source": ["# A stray notebook"]}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def stray_files(chapter: str) -> dict[str, str]:
    """Files that tools and people leave in the course folder, by relative path; `chapter` is the
    docname of one of the book's chapters (e.g. `book/cnn`)."""
    folder, name = chapter.rsplit("/", 1)
    return {
        # `make test`: pytest's cache (its README.md is a Markdown page to Sphinx)
        ".pytest_cache/README.md": "# pytest cache directory #\n",
        ".pytest_cache/v/cache/nodeids": "[]\n",
        # notes and scratch work, at the top and beside the chapters
        "notes.md": "# My notes\n",
        "scratch.ipynb": NOTEBOOK,
        f"{folder}/draft.md": "# A draft page that is not in the toc\n",
        f"{folder}/.draft.md": "# A hidden draft\n",
        "tools/NOTES.md": "# Notes in a folder of code\n",
        ".github/ISSUE_TEMPLATE/bug.md": "# A hidden folder of Markdown\n",
        # editor backups; the chapter saved as a notebook beside its source (Jupytext pairing)
        "foo.md~": "# An editor's backup\n",
        f"{chapter}.md~": "# An editor's backup of a chapter\n",
        f"{chapter}.ipynb": NOTEBOOK,
        # `make lab`: Jupyter's checkpoints
        ".ipynb_checkpoints/scratch-checkpoint.ipynb": NOTEBOOK,
        f"{folder}/.ipynb_checkpoints/{name}-checkpoint.ipynb": NOTEBOOK,
        # nbgrader and `make grade`
        "submitted/x/cnn/cnn.ipynb": NOTEBOOK,
        "autograded/x/cnn/cnn.ipynb": NOTEBOOK,
        "autograded/x/cnn/timestamp.txt": "2026-01-01 00:00:00\n",
        "feedback/x/cnn/index.html": "<html><body>feedback</body></html>\n",
        "feedback/x/cnn/cnn.html": "<html><body>feedback</body></html>\n",
        "grading-out/summary.txt": "student score\n",
        "grading-out/grades.csv": "student,score\n",
        "grading-out/feedback/x/cnn/cnn.html": "<html><body>feedback</body></html>\n",
        # `make lab`'s local exchange and `make hub`'s proxy (npm) and state
        ".exchange/dlcourse/outbound/cnn/cnn.ipynb": NOTEBOOK,
        ".exchange/dlcourse/inbound/x+cnn+2026-01-01 00:00:00.000000 UTC+abc/cnn.ipynb": NOTEBOOK,
        "hub/node_modules/configurable-http-proxy/README.md": "# configurable-http-proxy\n",
        ".hub/users.json": "{}\n",
    }


def drop(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def toc_documents(toc_path: Path) -> set[str]:
    """The docnames `_toc.yml` names (read here with PyYAML, not with the extension's parser)."""
    toc = yaml.safe_load(toc_path.read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries:
            assert "glob" not in entry, "the toc has a glob: extend toc_documents()"
            if "file" in entry:
                names.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk([toc])
    return {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in names}


# Sphinx set up as `jupyter-book build <source>` sets it up (same configuration, extensions and
# hooks), asked only which documents it finds: no page is read, no chapter executed.
FIND_DOCS = r"""
import io, json, sys
from pathlib import Path
from jupyter_book.config import get_final_config
from sphinx.application import Sphinx
from sphinx.util.docutils import docutils_namespace, patch_docutils

results = {}
for source, out in json.loads(sys.argv[1]):
    source = Path(source)
    config, _ = get_final_config(
        user_yaml=source / "_config.yml", sourcedir=source, use_external_toc=True,
        cli_config={"external_toc_path": (source / "_toc.yml").as_posix(), "latex_individualpages": False})
    warnings = io.StringIO()
    with patch_docutils(None), docutils_namespace():
        app = Sphinx(srcdir=source, confdir=None, outdir=Path(out, "html"), doctreedir=Path(out, ".doctrees"),
                     buildername="html", confoverrides=config, status=None, warning=warnings, freshenv=True)
        app.env.find_files(app.config, app.builder)
        results[str(source)] = {
            "docs": {doc: app.env.doc2path(doc, False) for doc in sorted(app.env.found_docs)},
            "config": {key: app.config[key] for key in ("include_patterns", "exclude_patterns", "master_doc")},
            "warnings": warnings.getvalue(),
        }
print(json.dumps(results))
"""


def copy_course(dst: Path) -> Path:
    """A copy of the course folder without the virtual environment, git, builds and the files that
    tools leave (so that the copy starts clean)."""
    top = {".git", ".venv", "_build", ".pytest_cache", "submitted", "autograded", "feedback", "grading-out", "gradebook.db"}
    anywhere = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info")
    source = book_source()

    def ignore(folder, names):
        ignored = set(anywhere(folder, names))
        return ignored | (top & set(names) if Path(folder) == source else set())

    shutil.copytree(source, dst, ignore=ignore)
    return dst


def test_sphinx_finds_exactly_the_toc_documents_whatever_else_is_in_the_folder(tmp_path):
    clean = copy_course(tmp_path / "clean")
    messy = copy_course(tmp_path / "messy")
    expected = toc_documents(clean / "_toc.yml")
    chapter = sorted(expected - {yaml.safe_load((clean / "_toc.yml").read_text())["root"]})[0]
    drop(messy, stray_files(chapter))

    runs = [[str(clean), str(tmp_path / "out-clean")], [str(messy), str(tmp_path / "out-messy")]]
    proc = subprocess.run([sys.executable, "-c", FIND_DOCS, json.dumps(runs)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    found_clean, found_messy = results[str(clean)], results[str(messy)]

    for label, found in (("clean copy", found_clean), ("copy with stray files", found_messy)):
        assert set(found["docs"]) == expected, (
            f"{label}: Sphinx would read {sorted(set(found['docs']) - expected)} (not in _toc.yml) "
            f"and miss {sorted(expected - set(found['docs']))}")
        assert found["warnings"] == "", f"{label}: {found['warnings']}"
    # Each page from its own source file (not from a copy saved beside it, e.g. book/cnn.ipynb).
    assert found_messy["docs"] == found_clean["docs"]
    # Stray files do not change the configuration: a change would make Sphinx read every page again.
    changed = {k: (found_clean["config"][k], v) for k, v in found_messy["config"].items() if v != found_clean["config"][k]}
    assert not changed, f"stray files changed Sphinx's configuration (before, after): {changed}"


def _make_book(course: Path) -> subprocess.CompletedProcess:
    """`make book` with this interpreter's environment (BIN) and without its install step."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    cmd = ["make", "-o", ".venv/.installed", "book", f"BIN={Path(sys.executable).parent}"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=600)
    proc.stdout = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    proc.stderr = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr)
    return proc


def _pages(course: Path) -> set[str]:
    html = course / "_build" / "html"
    return {p.relative_to(html).as_posix() for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts}


def test_make_book_after_make_test_and_other_tools(tmp_path):
    """The README's `make test` then `make book`, then `make book` again after `make grade`, `make
    lab`, an editor and a student have left files. (`make book` then `make test` is the suite
    itself: tests/test_book.py builds the book with the same command, after any earlier run's
    .pytest_cache/.) A small book keeps it fast; the Makefile, `_config.yml` and extension are
    the course's."""
    course = tmp_path / "course"
    (course / "book").mkdir(parents=True)
    for name in ("Makefile", "_config.yml", "pyproject.toml", "constraints.txt", "book/references.bib"):
        shutil.copy(ROOT / name, course / name)
    shutil.copytree(ROOT / "tools", course / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (course / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    numbered: true\n"
        "    chapters:\n      - file: book/chapter\n")
    (course / "book" / "intro.md").write_text("# A small book\n\nThe introduction.\n")
    (course / "book" / "chapter.md").write_text("# A chapter\n\nA formula: $x^2$.\n")
    expected = {"index.html", "genindex.html", "search.html", "book/intro.html", "book/chapter.html"}

    # `make test` first: a real pytest run leaves its cache in the folder.
    (course / "test_scratch.py").write_text("def test_nothing():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    pytest_run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "test_scratch.py"],
                                cwd=course, env=env, capture_output=True, text=True, timeout=120)
    assert pytest_run.returncode == 0, pytest_run.stdout + pytest_run.stderr
    assert (course / ".pytest_cache" / "README.md").exists(), "pytest left no .pytest_cache/README.md: nothing to test"

    first = _make_book(course)
    assert first.returncode == 0, "`make book` after pytest failed:\n" + first.stdout[-4000:] + first.stderr[-4000:]
    assert _pages(course) == expected

    # Then every other kind of stray file, and `make book` again: no page is read again.
    drop(course, stray_files("book/chapter"))
    second = _make_book(course)
    assert second.returncode == 0, "`make book` with stray files failed:\n" + second.stdout[-4000:] + second.stderr[-4000:]
    assert "0 added, 0 changed, 0 removed" in second.stdout, second.stdout[-4000:]
    assert _pages(course) == expected
