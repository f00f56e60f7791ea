"""Sphinx extension for the course's book (loaded by `_config.yml`, `sphinx: local_extensions`).

- The page of reproduced results (`book/results.md`) pastes numbers glued in the chapters
  (`{glue:text}` with a `chapter.md::key` reference). Sphinx does not know that this page depends
  on the chapters, so an incremental build would keep showing old numbers after a chapter
  changed: this extension re-writes the results page whenever any other page was added, changed
  or removed.
- sphinx-thebe registers its configuration script once per reading phase, and Jupyter Book runs
  two, so every page declared `THEBE_JS_URL` twice (a JavaScript error in the browser console):
  duplicate scripts are dropped from each page.
"""
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
        key = (str(script), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("env-get-outdated", _results_page_depends_on_chapters)
    app.connect("html-page-context", _drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
