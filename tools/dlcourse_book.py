"""Sphinx extension for the course's book (loaded by `_config.yml`, `sphinx: local_extensions`).

- The book reads only the files that `_toc.yml` names, whatever else lies in the repository (the
  book's source folder): see `_read_only_the_toc`.
- The page of reproduced results (`book/results.md`) pastes numbers glued in the chapters
  (`{glue:text}` with a `chapter.md::key` reference). Sphinx does not know that this page depends
  on the chapters, so an incremental build would keep showing old numbers after a chapter
  changed: this extension re-writes the results page whenever any other page was added, changed
  or removed.
- A chapter's download button offers the notebook that myst-nb writes to `_build/jupyter_execute/`.
  myst-nb 1.4 writes it with its outputs when it executes the chapter, but without them when it
  takes the outputs from the execution cache (it writes the notebook it read, not the merged one):
  this extension merges the cached outputs in, so the download is always the executed notebook.
- sphinx-thebe registers its configuration script once per reading phase, and Jupyter Book runs
  two, so every page declared `THEBE_JS_URL` twice (a JavaScript error in the browser console):
  duplicate scripts are dropped from each page.
- Check questions: the `check-question` directive (`CheckQuestion`) renders an ungraded multiple-choice
  question whose options each open their own feedback, right or wrong, at once, in the static page
  (HTML `<details>` and CSS; a few lines of JavaScript close the other options). Its CSS and JS are
  served from the book (`tools/dlcourse_static/`), never from a CDN.
"""
import json
import re
from pathlib import Path

RESULTS_PAGE = "book/results"
STATIC = Path(__file__).resolve().parent / "dlcourse_static"


def toc_source_patterns(site_map, source_suffix, srcdir) -> list[str]:
    """Sphinx `include_patterns` that match the source files of the documents that `site_map` (a
    sphinx-external-toc site map of `_toc.yml`) names, and nothing else.

    A document named without a suffix (`file: book/cnn`) is the first of `book/cnn.rst`,
    `book/cnn.md`, `book/cnn.ipynb`, ... (`source_suffix`'s order) that exists, so that a copy of a
    chapter saved beside it (e.g. a `book/cnn.ipynb` paired by Jupytext) is not read as a second
    source of the same page; when none exists, every suffix is kept and Sphinx reports the missing
    document as usual. A toctree's `glob:` is kept with every suffix."""
    suffixes = list(source_suffix)
    patterns = []
    for name in site_map:
        if any(name.endswith(suffix) for suffix in suffixes):  # `file: book/cnn.md`
            patterns.append(name)
            continue
        candidates = [name + suffix for suffix in suffixes]
        existing = [c for c in candidates if (Path(srcdir) / c).is_file()]
        patterns += existing[:1] or candidates
    patterns += [glob + suffix for glob in sorted(site_map.globs()) for suffix in suffixes]
    return list(dict.fromkeys(patterns))


def _read_only_the_toc(app, config):
    """Make the book's documents exactly the files `_toc.yml` names.

    The source folder is the repository root, where tools leave files that Sphinx would read as
    pages (`.pytest_cache/README.md` from pytest, a student's `scratch.ipynb`, nbgrader's
    `submitted/`, `autograded/`, `feedback/`, `grading-out/`, editor and Jupyter backups, ...).
    Jupyter Book's `only_build_toc_files` does not keep them out: sphinx-external-toc (1.1, which
    Jupyter Book 1.x uses for it) lists the tree with `glob.iglob("**/*.md")`, which skips hidden
    folders and files, and adds each file it finds that the toc does not name to `exclude_patterns`;
    Sphinx itself finds documents with `os.walk`, which does not skip them. So `.pytest_cache/README.md` became a page,
    and `-W` failed the build ("document isn't included in any toctree"). A list of folders to
    exclude has the same flaw: the next tool leaves another.

    Instead, Sphinx's `include_patterns` is set to the toc's own files (an allow-list computed from
    `_toc.yml` at every build): a file the toc does not name is never a document, whatever its
    name or folder, and nothing has to list the tree. This is also why `_config.yml` turns
    `only_build_toc_files` off: its exclusions would be redundant, and since they change whenever
    a stray file comes or goes, each such change would be a configuration change that makes Sphinx
    read every page again. (Building from a staging folder that holds only the book's files would
    work too, but it needs a copy step before every build and a second copy of every page, and
    warnings and tracebacks would point at the copy rather than at the file to edit.)
    """
    site_map = getattr(config, "external_site_map", None)  # set by sphinx-external-toc (priority 900)
    if site_map is None:  # not a book with a _toc.yml (e.g. `jupyter-book build book/cnn.md`)
        return
    config.include_patterns = toc_source_patterns(site_map, config.source_suffix, app.srcdir)


def _results_page_depends_on_chapters(app, env, added, changed, removed):
    if RESULTS_PAGE in env.found_docs and (added | changed | removed) - {RESULTS_PAGE}:
        return [RESULTS_PAGE]
    return []


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # The same script may come once with filename None and once with "" (from the pickled
        # environment): compare the file and the attributes (an inline script's body is one).
        name = script if isinstance(script, str) else (getattr(script, "filename", None) or "")
        key = (str(name), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _executed_notebook_for_download(app, doctree):
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    parts = app.env.docname.split("/")
    path = Path(config.output_folder, *parts[:-1], parts[-1] + ".ipynb")
    if not path.exists():
        return
    import nbformat

    text = path.read_text(encoding="utf8")
    notebook = nbformat.reads(text, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if code and not any(c.get("outputs") or c.get("execution_count") for c in code):
        from jupyter_cache import get_cache

        cache = get_cache(config.execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache"))
        try:
            _, notebook = cache.merge_match_into_notebook(notebook)
        except KeyError:  # not in the cache (e.g. a notebook that is not executed)
            pass
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "{check-question}" in cell.source:
            cell.source = student_check_questions(cell.source)
    out = nbformat.writes(notebook)
    if out != text:
        path.write_text(out, encoding="utf8")


_CHECK = re.compile(r"^:::\{check-question\}[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)^:::[ \t]*$", re.S | re.M)
_OPTION = re.compile(r"^- \[(?P<mark>[ xX])\] ?(?P<label>.*)$")


def student_check_questions(markdown: str) -> str:
    """A check question as a reader of the downloaded notebook sees it in JupyterLab: the question,
    its options lettered, and the answers folded away (HTML ``<details>``), instead of the
    directive's source with the right options marked ``[x]``."""
    def one(match: re.Match) -> str:
        question, options = [match.group("title").strip()], []
        for line in match.group("body").splitlines():
            opt = _OPTION.match(line)
            if opt:
                options.append([opt.group("mark").lower() == "x", opt.group("label").strip(), []])
            elif options:
                options[-1][2].append(line.strip())
            elif line.strip():
                question.append(line.strip())
        letters = "abcdefghijklmnopqrstuvwxyz"
        lines = ["**Check question.** " + " ".join(q for q in question if q), ""]
        lines += [f"- ({letters[i]}) {label}" for i, (_, label, _) in enumerate(options)]
        lines += ["", "<details><summary>Answers</summary>", ""]
        for i, (right, label, feedback) in enumerate(options):
            why = " ".join(f for f in feedback if f)
            lines += [f"- ({letters[i]}) **{'Right' if right else 'Not quite'}.** {why}"]
        lines += ["", "</details>"]
        return "\n".join(lines)

    return _CHECK.sub(one, markdown)


# --- check questions ---------------------------------------------------------------------------

from docutils import nodes
from docutils.parsers.rst import Directive, directives


class check_question(nodes.General, nodes.Element):
    """A check question: its text, then a list of options (`check_option`)."""


class check_option(nodes.General, nodes.Element):
    """One option: its label (`check_label`), then the feedback shown when it is chosen.
    `node["correct"]` says whether it is a right answer."""


class check_label(nodes.TextElement):
    """The option's text, what the reader clicks."""


class CheckQuestion(Directive):
    """An ungraded multiple-choice question with feedback for every option::

        :::{check-question} A $5 \\times 5$ filter with stride 1 and no padding on a $28 \\times 28$ image?
        - [ ] $28 \\times 28$

          Not without padding: the filter fits $28 - 5 + 1$ times along each axis.
        - [x] $24 \\times 24$

          $\\lfloor (28 - 5)/1 \\rfloor + 1 = 24$.
        :::

    The argument (optional) and any paragraphs before the list are the question. The content's last
    bullet list holds the options: each item starts with `[x]` (a right answer) or `[ ]` (a wrong
    one), and its next paragraphs are the feedback, shown with "Right." or "Not quite." when the
    reader clicks the option. A question needs two options or more, at least one right, and
    feedback for each; otherwise the directive reports an error (which `-W` turns into a failed
    build). In the downloaded notebook the cell reads as the question and its marked list.
    """
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {"class": directives.class_option}

    def run(self):
        body = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, body)
        lists = [i for i, child in enumerate(body.children) if isinstance(child, nodes.bullet_list)]
        if not lists:
            raise self.error("check-question: expected a bullet list of options, "
                             "each starting with [x] (right) or [ ] (wrong)")
        options_list = body.children[lists[-1]]
        question_nodes = body.children[:lists[-1]] + body.children[lists[-1] + 1:]
        node = check_question(classes=["dl-check"] + self.options.get("class", []))
        self.add_name(node)
        if self.arguments:
            text_nodes, messages = self.state.inline_text(self.arguments[0], self.lineno)
            node += nodes.paragraph("", "", *text_nodes, classes=["dl-check-stem"])
            node += messages
        for child in question_nodes:
            node += child
        options = []
        for number, item in enumerate(options_list.children, start=1):
            first = item.children[0] if item.children else None
            marker = first.astext()[:3] if isinstance(first, nodes.paragraph) else ""
            if marker not in ("[x]", "[X]", "[ ]"):
                raise self.error(f"check-question: option {number} must start with [x] (right) or "
                                 f"[ ] (wrong), found {first.astext()[:40] if first else 'nothing'!r}")
            if len(item.children) < 2:
                raise self.error(f"check-question: option {number} ({first.astext()[:40]!r}) has no "
                                 "feedback: add a paragraph under it saying why it is right or wrong")
            correct = marker.lower() == "[x]"
            label = check_label()
            for child in first.children:
                label += child
            _strip_marker(label)
            option = check_option(correct=correct,
                                  classes=["dl-check-option", "dl-check-right" if correct else "dl-check-wrong"])
            option += label
            feedback = nodes.container(classes=["dl-check-feedback"])
            verdict = nodes.strong("", "Right. " if correct else "Not quite. ", classes=["dl-check-verdict"])
            paragraphs = item.children[1:]
            if isinstance(paragraphs[0], nodes.paragraph):
                paragraphs[0].insert(0, verdict)
            else:
                feedback += nodes.paragraph("", "", verdict)
            for child in paragraphs:
                feedback += child
            option += feedback
            options.append(option)
        if len(options) < 2 or not any(o["correct"] for o in options):
            raise self.error("check-question: expected two options or more, at least one marked [x]")
        choices = nodes.bullet_list(classes=["dl-check-options"])
        for option in options:
            choices += nodes.list_item("", option)
        node += choices
        return [node]


def _strip_marker(label):
    """Remove the leading `[x] ` / `[ ] ` from the first text of an option's label."""
    for index, child in enumerate(label.children):
        if isinstance(child, nodes.Text):
            label.replace(child, nodes.Text(child.astext()[3:].lstrip()))
            return


def _visit_check_question(self, node):
    self.body.append(self.starttag(node, "div", role="group", **{"aria-label": "Check question"}))
    self.body.append('<p class="dl-check-label">Check your understanding</p>\n')


def _depart_div(self, node):
    self.body.append("</div>\n")


def _visit_check_option(self, node):
    self.body.append(self.starttag(node, "details"))


def _depart_check_option(self, node):
    self.body.append("</details>\n")


def _visit_check_label(self, node):
    self.body.append(self.starttag(node, "summary", suffix=""))


def _depart_check_label(self, node):
    self.body.append("</summary>\n")


def _visit_plain(self, node):
    pass


def _depart_plain(self, node):
    pass


def _serve_static(app, config):
    config.html_static_path = list(config.html_static_path) + [str(STATIC)]


def setup(app):
    # A fingerprint of this file as a config value: when the extension changes, Sphinx re-reads
    # and re-writes every page (the execution cache keeps that fast), so no page keeps old output.
    import hashlib
    app.add_config_value("dlcourse_book_extension", hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16], "env")
    # After sphinx-external-toc's own config-inited handler (priority 900) has parsed _toc.yml.
    app.connect("config-inited", _read_only_the_toc, priority=950)
    app.connect("env-get-outdated", _results_page_depends_on_chapters)
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("doctree-read", _executed_notebook_for_download)
    plain = (_visit_plain, _depart_plain)
    app.add_node(check_question, html=(_visit_check_question, _depart_div), latex=plain, text=plain)
    app.add_node(check_option, html=(_visit_check_option, _depart_check_option), latex=plain, text=plain)
    app.add_node(check_label, html=(_visit_check_label, _depart_check_label), latex=plain, text=plain)
    app.add_directive("check-question", CheckQuestion)
    app.connect("config-inited", _serve_static)
    app.add_css_file("dlcourse-check.css")
    app.add_js_file("dlcourse-check.js", defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
