"""The book builds with every chapter executed, no warning, and no error on any page.

The build itself is the session fixture `built_book` in conftest.py (tests/test_browser.py tests
the same build in Chromium). The student book never shows a solution or a hidden test.
"""
import html as htmllib
import json
import re

import pytest
import yaml

from conftest import book_source

TEXT_SUFFIXES = {".html", ".js", ".json", ".ipynb", ".md", ".txt", ".py", ".css", ".inv"}
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def toc_files():
    toc = yaml.safe_load((book_source() / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def test_book_builds_without_warnings(built_book):
    assert built_book.proc.returncode == 0, built_book.log()


@pytest.mark.parametrize("page", toc_files())
def test_every_page_is_rendered_without_errors(built_book, page):
    html = built_book.html / f"{page}.html"
    assert html.exists(), f"{html} was not built"
    text = html.read_text()
    assert "Traceback (most recent call last)" not in text
    assert not re.search(r'class="[^"]*\bstderr\b', text), f"{page} shows stderr output"


def _book_text_files(book):
    for path in sorted(book.html.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "mathjax" not in path.relative_to(book.html).parts:
            text = path.read_text(errors="replace")
            if path.suffix == ".html":  # highlighted code is split into tags; entities escaped
                text += "\n" + htmllib.unescape(re.sub(r"<[^>]+>", "", text))
            yield path, text


def _blocks(source: str, begin: str, end: str) -> list[str]:
    return re.findall(rf"{re.escape(begin)}\n(.*?)\n\s*{re.escape(end)}", source, flags=re.S)


def _secret_lines(name: str, root) -> set[str]:
    """Distinctive lines of an assignment's solutions and hidden tests that no student notebook
    contains (a line such as ``import builtins as _builtins`` may be hidden in one assignment and
    visible in another), nor any chapter (which may teach the same code)."""
    solution = json.loads((root / "solutions" / name / f"{name}.ipynb").read_text())
    released = "".join(p.read_text() for p in sorted((root / "exercises").glob("*/*.ipynb")))
    public = released + "".join(p.read_text() for p in (root / "book").glob("*.md"))
    lines = set()
    for cell in solution["cells"]:
        source = "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        blocks = (_blocks(source, "### BEGIN SOLUTION", "### END SOLUTION")
                  + _blocks(source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        if cell["cell_type"] == "markdown" and meta.get("solution"):
            blocks.append(source)  # an instructor's model answer to a written question
        for block in blocks:
            lines |= {line.strip() for line in block.splitlines() if len(line.strip()) >= 24}
    return {line for line in lines if json.dumps(line)[1:-1] not in public and line not in public}


def test_solutions_and_hidden_tests_never_appear_in_the_student_book(book):
    from dlcourse.release import assignments

    secrets = {name: _secret_lines(name, book.source) for name in assignments(book.source)}
    for name, lines in secrets.items():
        assert lines, f"found no solution lines in solutions/{name}/ to look for: is the notebook well formed?"
    for path, text in _book_text_files(book):
        rel = path.relative_to(book.html)
        for marker in MARKERS:
            assert marker not in text, f"{rel} contains {marker!r}: the student book must not include solutions"
        for name, lines in secrets.items():
            leaked = sorted(line for line in lines if line in text or json.dumps(line)[1:-1] in text)
            assert not leaked, f"{rel} contains solution or hidden-test lines of {name}: {leaked[:3]}"


# Every chapter has the course's rhythm, in this order (other sections may come in between).
RHYTHM = ["What you will learn", "The idea", "From scratch", r"The (Keras|TensorFlow) way", "Experiment",
          "What to remember", "Exercise"]


def toc_chapters():
    toc = yaml.safe_load((book_source() / "_toc.yml").read_text())
    return [c["file"] for part in toc.get("parts", []) if part.get("numbered") for c in part.get("chapters", [])]


@pytest.mark.parametrize("chapter", toc_chapters())
def test_chapter_follows_the_course_rhythm(chapter):
    headings = re.findall(r"^## (.+?)\s*$", (book_source() / f"{chapter}.md").read_text(), flags=re.M)
    position = 0
    for step in RHYTHM:
        found = next((i for i in range(position, len(headings)) if re.match(step, headings[i])), None)
        assert found is not None, (f"{chapter}: no section '{step}' after '{headings[position - 1] if position else 'the title'}'; "
                                   f"its sections are {headings} (CONTRIBUTING.md: the chapter's rhythm)")
        position = found + 1
