"""Feedback pages: nbgrader's ``generate_feedback``, without the hidden tests.

nbgrader's feedback shows each test cell with its hidden tests (jupyter/nbgrader#917). Here, by
default, each hidden-test region (found by nbgrader's own rule and the course's delimiters:
``ClearHiddenTests.begin_test_delimeter`` anywhere in a line, ``# BEGIN HIDDEN TESTS`` as well as
``### BEGIN HIDDEN TESTS``) is replaced by a line saying it is hidden; an error's traceback keeps
what nbgrader shows (the failing line of a visible test, the student's code, the message) except
the lines of the hidden tests, each replaced by a line saying so; and any output that still
quotes a line of the hidden tests is withheld. The failed check's message ("convolve2d on a
random (7, 9) image ...: expected ..., got ...; Hint: ...") stays: it is what the student needs.
``show_hidden=True`` keeps nbgrader's behaviour. A hidden line is recognised in an output however
it is spaced or HTML-escaped, and a page that still shows one is withheld (``leaked_lines``).

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

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"     # nbgrader's defaults (ClearHiddenTests.begin_test_delimeter)
END_HIDDEN = "END HIDDEN TESTS"         # (ClearHiddenTests.end_test_delimeter)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# A source line in an IPython traceback frame, ANSI codes removed: "      2 x = 1", "----> 3 assert ...".
_NUMBERED = re.compile(r"^(\s*(?:-*>)?\s*)(\d+)(?: (.*))?$")
# A frame's header: "Cell In[4], line 5, in check(f)", "File ~/x.py:3, in f(x)".
_FRAME = re.compile(r"^(.*?, in )([A-Za-z_][A-Za-z0-9_]*)\b.*$")
# A frame in the grader's own modules (dlcourse/grading/*.py, wherever the sandbox mounts them).
_GRADER_FRAME = re.compile(r"^\s*File [^\n]*[/\\]dlcourse[/\\]grading[/\\][A-Za-z0-9_]+\.py:\d+")
_DEF = re.compile(r"^\s*(?:async\s+def|def|class)\s+([A-Za-z_][A-Za-z0-9_]*)")


def _plain(text: str) -> str:
    """Text as it would read on a page: no ANSI colours, no tags, entities decoded, no spaces."""
    return _SPACE.sub("", html.unescape(_TAG.sub("", _ANSI.sub("", text))))


def leaked_lines(text: str, secret_lines: list[str]) -> list[str]:
    """The hidden-test lines that ``text`` (an output, a page) shows, however spaced or escaped."""
    blob = _plain(text)
    return [line for line in secret_lines if _plain(line) and _plain(line) in blob]


def hidden_regions(source: str, begin: str = BEGIN_HIDDEN, end: str = END_HIDDEN) -> list[tuple[int, int, bool]]:
    """The hidden-test regions of a cell's source, as (first, last, closed): indexes into
    ``source.split("\n")``, delimiter lines included, by nbgrader's rule
    (``ClearHiddenTests._remove_hidden_test_region``): a line that contains ``begin`` anywhere
    starts a region, the next line that contains ``end`` closes it. Where nbgrader refuses the
    cell, this errs on the side of secrecy: a region never closed (``closed`` False) runs to the
    end of the cell, and a ``begin`` inside a region is part of it."""
    regions = []
    start = None
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if begin and begin in line:
            if start is None:
                start = i
        elif end and end in line and start is not None:
            regions.append((start, i, True))
            start = None
    if start is not None:
        regions.append((start, len(lines) - 1, False))
    return regions


def _region_lines(source: str, begin: str, end: str, delimiters: bool = True) -> list[str]:
    """The lines of the hidden-test regions, as written (with or without the delimiter lines)."""
    lines = source.split("\n")
    out = []
    for a, b, closed in hidden_regions(source, begin, end):
        out += lines[a:b + 1] if delimiters else lines[a + 1:b if closed else b + 1]
    return out


def strip_hidden(source: str, begin: str = BEGIN_HIDDEN, end: str = END_HIDDEN, *, comment: str = "# ") -> str:
    """The source as nbgrader releases it (hidden-test regions and stray ``end`` lines removed),
    with one line in place of each region that says how many lines it hid."""
    lines = source.split("\n")
    regions = {a: (b, closed) for a, b, closed in hidden_regions(source, begin, end)}
    out = []
    skip_to = -1
    for i, line in enumerate(lines):
        if i <= skip_to:
            continue
        if i in regions:
            last, closed = regions[i]
            skip_to = last
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}{comment}... {last - i - closed} lines of hidden tests (not shown) ...")
        elif not (end and end in line):
            out.append(line)
    return "\n".join(out).rstrip()


def hidden_lines(source: str, begin: str = BEGIN_HIDDEN, end: str = END_HIDDEN) -> list[str]:
    """The distinctive lines of a cell's hidden tests (to recognise them in outputs)."""
    lines = []
    for line in _region_lines(source, begin, end, delimiters=False):
        s = line.strip()
        if len(s) >= 16 and not s.startswith("#"):
            lines.append(s)
    return lines


def delimiters(config_file: Path | None = None, config=None) -> tuple[str, str]:
    """The hidden-test delimiters the course's ``nbgrader_config.py`` sets
    (``c.ClearHiddenTests.begin_test_delimeter`` / ``end_test_delimeter``), nbgrader's defaults
    otherwise. ``config``: a traitlets Config already loaded (instead of ``config_file``)."""
    from nbgrader.preprocessors import ClearHiddenTests
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if config is None:
        config = Config()
        if config_file and Path(config_file).exists():
            config_file = Path(config_file)
            config.merge(PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config())
    clear = ClearHiddenTests(config=config)
    return clear.begin_test_delimeter, clear.end_test_delimeter


def redact_traceback(traceback: list[str], hidden: set[str], names: set[str] = frozenset()) -> list[str]:
    """An error's traceback with every line that shows a line of ``hidden`` (source lines of the
    hidden tests; recognised however they are spaced) replaced by a line that says so, and the
    names of the functions the hidden tests define (``names``) left out of the frames' headers;
    the rest (the failing line of a visible test, the student's own code, the error's message)
    stays as IPython wrote it. Frames of the grader's own modules (the checker's channel to the
    student's kernel) are left out."""
    hidden = {_SPACE.sub("", line) for line in hidden} - {""}
    out = []
    for entry in traceback:
        if _GRADER_FRAME.match(_ANSI.sub("", str(entry))):
            continue        # the grader's own machinery (the checker's channel): nothing for the student
        lines = []
        for line in str(entry).split("\n"):
            plain = _ANSI.sub("", line)
            m = _NUMBERED.match(plain)
            code = (m.group(3) or "") if m else plain
            header = _FRAME.match(plain)
            if _SPACE.sub("", code) in hidden or _SPACE.sub("", plain) in hidden:
                where = f"{m.group(1)}{m.group(2)} " if m else "    "
                lines.append(f"{where}# (a line of the hidden tests, not shown)\x1b[0m")
            elif header and header.group(2) in names:
                lines.append(f"{header.group(1)}(a function of the hidden tests)\x1b[0m")
            else:
                lines.append(line)
        out.append("\n".join(lines))
    return out


def _defined_names(lines: list[str]) -> set[str]:
    """The functions and classes that these lines of source define."""
    return {m.group(1) for line in lines for m in [_DEF.match(line)] if m}


class HideHiddenTests(NbGraderPreprocessor):
    """Remove the hidden tests' source from the feedback (see the module's docstring)."""

    enabled = Bool(True).tag(config=True)
    secret_lines = List(Unicode(), help="lines of hidden tests that must not appear in outputs").tag(config=True)
    begin_test_delimeter = Unicode(BEGIN_HIDDEN, help="as ClearHiddenTests.begin_test_delimeter").tag(config=True)
    end_test_delimeter = Unicode(END_HIDDEN, help="as ClearHiddenTests.end_test_delimeter").tag(config=True)

    def preprocess(self, nb, resources):
        delims = (self.begin_test_delimeter, self.end_test_delimeter)
        self._secrets = list(self.secret_lines)
        self._hidden = {_SPACE.sub("", line) for line in self.secret_lines} - {""}
        self._names = _defined_names(list(self.secret_lines))
        for cell in nb.cells:
            self._secrets += hidden_lines(cell.source, *delims)
            region = _region_lines(cell.source, *delims)
            self._hidden |= {_SPACE.sub("", line) for line in region} - {""}
            self._names |= _defined_names(region)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):    # an answer is the student's; everything else may hold hidden tests
            cell.source = strip_hidden(cell.source, self.begin_test_delimeter, self.end_test_delimeter,
                                       comment="# " if cell.cell_type == "code" else "")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["traceback"] = redact_traceback(list(out.get("traceback", [])), self._hidden, self._names)
                if self._leaks({"traceback": out["traceback"], "output_type": "error"}):
                    # a hidden line shown in a way the redaction did not recognise: the message only
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {_ANSI.sub('', str(out.get('evalue', '')))}"]
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
    # the course's autograded_directory (where the runner copies the autograded notebooks)
    cfg.CourseDirectory.feedback_directory = str(out)
    pre = ["nbgrader.preprocessors.GetGrades"]
    if not show_hidden:
        pre.append("dlcourse.grading.feedback.HideHiddenTests")
        cfg.HideHiddenTests.secret_lines = secret_lines
        begin, end = delimiters(config=cfg)
        cfg.HideHiddenTests.begin_test_delimeter = begin
        cfg.HideHiddenTests.end_test_delimeter = end
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
