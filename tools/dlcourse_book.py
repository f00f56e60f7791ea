"""Sphinx extension for the course's book (loaded by `_config.yml`, `sphinx: local_extensions`).

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
"""
import json
from pathlib import Path

RESULTS_PAGE = "book/results"


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
    notebook = json.loads(path.read_text(encoding="utf8"))
    code = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    if not code or any(c.get("outputs") or c.get("execution_count") for c in code):
        return
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(config.execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache"))
    try:
        _, merged = cache.merge_match_into_notebook(nbformat.reads(json.dumps(notebook), as_version=4))
    except KeyError:  # not in the cache (e.g. a notebook that is not executed)
        return
    path.write_text(nbformat.writes(merged), encoding="utf8")


def setup(app):
    # A fingerprint of this file as a config value: when the extension changes, Sphinx re-reads
    # and re-writes every page (the execution cache keeps that fast), so no page keeps old output.
    import hashlib
    app.add_config_value("dlcourse_book_extension", hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16], "env")
    app.connect("env-get-outdated", _results_page_depends_on_chapters)
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("doctree-read", _executed_notebook_for_download)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
