"""Feedback pages: nbgrader's ``generate_feedback``, without the hidden tests.

nbgrader's feedback shows each test cell with its hidden tests (jupyter/nbgrader#917). Here, by
default, the hidden part of a test cell's source is replaced by a line saying it is hidden, an
error's traceback (which quotes the failing line of the test) is reduced to the error's message,
and any output that quotes a line of the hidden tests is withheld. The failed check's message
("convolve2d on a random (7, 9) image ...: expected ..., got ...; Hint: ...") stays: it is what
the student needs. ``show_hidden=True`` keeps nbgrader's behaviour. A hidden line is recognised in
an output however it is spaced or HTML-escaped, and a page that still shows one is withheld
(``leaked_lines``).

Everything the student wrote reaches the page inert (``InertOutputs``, ``safe_markdown2html``):
HTML and Markdown outputs and the Markdown cells are cleaned by bleach
(:func:`~dlcourse.grading.neutral.clean_html`), and outputs that are script (JavaScript, widgets,
SVG inline) are removed, so opening a feedback page runs nothing a student wrote.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from . import neutral

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, List, Unicode

_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _plain(text: str) -> str:
    """Text as it would read on a page: no ANSI colours, no tags, entities decoded, no spaces."""
    return _SPACE.sub("", html.unescape(_TAG.sub("", _ANSI.sub("", text))))


def leaked_lines(text: str, secret_lines: list[str]) -> list[str]:
    """The hidden-test lines that ``text`` (an output, a page) shows, however spaced or escaped."""
    blob = _plain(text)
    return [line for line in secret_lines if _plain(line) and _plain(line) in blob]


def hidden_lines(source: str) -> list[str]:
    """The distinctive lines of a cell's hidden tests (to recognise them in outputs)."""
    lines = []
    for block in _HIDDEN.findall(source):
        for line in block.splitlines()[1:-1]:
            s = line.strip()
            if len(s) >= 16 and not s.startswith("#"):
                lines.append(s)
    return lines


class HideHiddenTests(NbGraderPreprocessor):
    """Remove the hidden tests' source from the feedback (see the module's docstring)."""

    enabled = Bool(True).tag(config=True)
    secret_lines = List(Unicode(), help="lines of hidden tests that must not appear in outputs").tag(config=True)

    def preprocess(self, nb, resources):
        self._secrets = list(self.secret_lines)
        for cell in nb.cells:
            self._secrets += hidden_lines(cell.source)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            n = sum(len(b.splitlines()) - 2 for b in _HIDDEN.findall(cell.source))
            cell.source = _HIDDEN.sub(f"# ... {max(n, 0)} lines of hidden tests (not shown) ...\n", cell.source).rstrip()
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    message = f"{out.get('ename', 'Error')}: {_ANSI.sub('', str(out.get('evalue', '')))}"
                    out["traceback"] = [message]
        kept = []
        for out in cell.get("outputs", []):
            if self._leaks(out):
                kept.append({"output_type": "stream", "name": "stdout",
                             "text": "[output withheld: it quotes the hidden tests]\n"})
            else:
                kept.append(out)
        if cell.cell_type == "code":
            from nbformat import from_dict
            cell.outputs = [from_dict(o) for o in kept]
        return cell, resources

    def _leaks(self, out) -> bool:
        if not self._secrets:
            return False
        texts = []
        if "text" in out:
            texts.append(str(out["text"]))
        for value in (out.get("data") or {}).values():
            texts.append(value if isinstance(value, str) else " ".join(map(str, value)) if isinstance(value, list) else "")
        if out.get("output_type") == "error":
            texts.append(str(out.get("evalue", "")))
            texts.extend(_ANSI.sub("", str(t)) for t in out.get("traceback", []))
        return bool(leaked_lines("\n".join(texts), self._secrets))


# Output types shown as they are: plain text, images as data, LaTeX (typeset, never run).
SAFE_OUTPUT_TYPES = {"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif", "application/json"}
CLEANED_OUTPUT_TYPES = {"text/html", "text/markdown"}


class InertOutputs(NbGraderPreprocessor):
    """Make every output harmless to render: HTML and Markdown cleaned by bleach, everything else
    that is not plain data (JavaScript, widgets, SVG, PDF, unknown types) removed; an output left
    with nothing to show says what was removed."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for out in cell.get("outputs", []):
            data = out.get("data")
            if out.get("output_type") not in ("display_data", "execute_result") or not isinstance(data, dict):
                continue
            removed = sorted(k for k in data if k not in SAFE_OUTPUT_TYPES | CLEANED_OUTPUT_TYPES)
            for key in removed:
                del data[key]
            for key in CLEANED_OUTPUT_TYPES & set(data):
                value = data[key]
                data[key] = neutral.clean_html("".join(value) if isinstance(value, list) else value)
            if removed and not data:
                data["text/plain"] = f"[output not shown in feedback: {', '.join(neutral.printable(k, 60) for k in removed)}]"
            out["metadata"] = {}     # no "isolated" iframes or other rendering hints
        return cell, resources


def safe_markdown2html(source: str) -> str:
    """nbconvert's Markdown rendering, then bleach: raw HTML in a written answer is shown as
    text, ``javascript:`` links lose their target (the feedback template renders Markdown cells
    with this filter instead of nbconvert's)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return neutral.clean_html(markdown2html_mistune(source))


def generate(course: Path, db_url: str, course_id: str, assignment: str, student: str, out: Path,
             *, show_hidden: bool, config_file: Path | None, secret_lines: list[str]) -> dict:
    """Write ``out/<student>/<assignment>/<notebook>.html`` from the course's autograded notebook
    and gradebook (manual grades included). Returns nbgrader's result dict."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = Config()
    if config_file and config_file.exists():
        cfg.merge(PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config())
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.db_url = db_url
    cfg.CourseDirectory.course_id = course_id
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = str(out)
    pre = ["nbgrader.preprocessors.GetGrades"]
    if not show_hidden:
        pre.append("dlcourse.grading.feedback.HideHiddenTests")
        cfg.HideHiddenTests.secret_lines = secret_lines
    pre.append("dlcourse.grading.feedback.InertOutputs")
    pre.append("nbconvert.preprocessors.CSSHTMLHeaderPreprocessor")
    cfg.GenerateFeedback.preprocessors = pre
    cfg.HTMLExporter.sanitize_html = True       # nbconvert's own bleach pass, on top of InertOutputs
    cfg.HTMLExporter.filters = {"markdown2html": "dlcourse.grading.feedback.safe_markdown2html"}
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    return api.generate_feedback(assignment, student, force=True)


def write_problem_page(out: Path, student: str, assignment: str, reasons: list[str]) -> Path:
    """A feedback page for a submission that could not be graded."""
    folder = out / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons) or "<li>no submission was found</li>"
    page = folder / "index.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(assignment)}: feedback for {html.escape(student)}</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto">
<h1>{html.escape(assignment)}: feedback for {html.escape(student)}</h1>
<p>Your submission could not be graded automatically, so it scores 0 points for now:</p>
<ul>{items}</ul>
<p>Please contact your instructor.</p>
</body></html>
""")
    return page
