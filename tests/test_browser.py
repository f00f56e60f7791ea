"""The book as a reader sees it, in headless Chromium; and `make lab` as a student uses it.

Every page of the book that tests/test_book.py built (the session fixture `book`) is opened once
in Chromium (Debian's `chromium` and `chromium-driver`, from `.ci/system-deps.sh`). The tests
then check what was seen: the page loaded; every image loaded; no executed cell shows a
traceback, stderr or TensorFlow's log lines; every formula was typeset by MathJax, served from
the book itself; every local link leads to an existing file and anchor; nothing is fetched from
the network; the navigation reaches every page; each chapter offers its notebook for download and
launch buttons built from the repository address in `_config.yml`; the exercises page links every
student notebook. A full-page screenshot of each page is kept in `_build/screenshots/` for a
person to look at.

`make lab` is started as a student would (on a scratch copy of `exercises/`, because Validate
saves the notebook): nbgrader's extensions are installed and enabled, the Validate button runs
nbgrader's validation, and the server finds the course's `nbgrader_config.py`. Its local exchange
(no hub) lists, fetches and submits the assignments offline.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml

from conftest import ROOT, book_build_dir, book_source

sys.path.insert(0, str(ROOT / "tools"))
from browser.pages import NOISE, Toc, answer_check_question, file_path, visit  # noqa: E402
from chromium import chromium, missing  # noqa: E402

TOC = Toc.read(book_source())
# Every page of the book: the table of contents, and Sphinx's index and search pages.
PAGES = TOC.pages + ["genindex", "search"]
CONFIG = yaml.safe_load((book_source() / "_config.yml").read_text())


@pytest.fixture(scope="module")
def browser():
    reason = missing()
    assert reason is None, reason  # a missing browser is a failure, not a skip
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def seen(book, browser):
    """Every page visited once: {page: PageReport}; screenshots in <_build>/screenshots/."""
    return {page: visit(browser, book.html, page, book.build / "screenshots") for page in PAGES}


# --- every page ------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_page_loads_with_its_title_and_text(seen, book, page):
    r = seen[page].report
    assert file_path(r["url"]) == book.html / f"{page}.html", f"{page} opened {r['url']}"
    assert r["title"] and "404" not in r["title"], f"{page}: title {r['title']!r}"
    if page in TOC.pages:
        assert r["h1"], f"{page} has no heading"
        assert r["text_length"] > 200, f"{page} shows almost no text ({r['text_length']} characters)"


@pytest.mark.parametrize("page", PAGES)
def test_every_image_has_loaded(seen, page):
    broken = [i["src"] for i in seen[page].report["images"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.parametrize("page", PAGES)
def test_no_cell_output_shows_a_traceback_stderr_or_log_lines(seen, page):
    r = seen[page].report
    assert r["stderr_outputs"] == 0, f"{page}: {r['stderr_outputs']} outputs are stderr or tracebacks"
    for text in r["outputs"]:
        match = NOISE.search(text)
        assert not match, f"{page}: an output shows {match.group(0)!r}:\n{text[:500]}"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_by_the_local_mathjax(seen, page):
    visit_ = seen[page]
    r = visit_.report
    if r["math"]:
        assert visit_.mathjax == "typeset", f"{page}: {visit_.mathjax}"
        assert r["mathjax_version"], f"{page}: MathJax did not run"
        assert not r["math_untypeset"], f"{page}: formulas left as TeX: {r['math_untypeset'][:3]}"
        assert not r["math_errors"], f"{page}: MathJax errors: {r['math_errors'][:3]}"


def test_the_book_has_typeset_math(seen):
    # Guards the test above against passing because no page has a formula.
    assert sum(v.report["math_typeset"] for v in seen.values()) > 0, "no page has typeset math"


@lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))


@pytest.mark.parametrize("page", PAGES)
def test_local_links_resolve(seen, book, page):
    bad = []
    for href in seen[page].report["links"]:
        parts = urlsplit(href)
        if parts.scheme != "file":
            continue  # http(s) links are not followed: the tests run offline
        target = file_path(href)
        if not target.exists():
            bad.append(f"{href} (no such file)")
        elif parts.fragment and target.suffix == ".html" and parts.fragment not in _ids(target):
            bad.append(f"{href} (no anchor #{parts.fragment})")
        elif not target.resolve().is_relative_to(book.html.resolve()):
            bad.append(f"{href} (outside the book)")
    assert not bad, f"{page}: broken links: {bad}"


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_fetched_from_the_network(seen, page):
    remote = [u for u in seen[page].requests if not u.startswith(("file:", "data:", "blob:", "about:", "chrome"))]
    assert not remote, f"{page} requested {remote}: everything must be served from the book"


@pytest.mark.parametrize("page", PAGES)
def test_no_javascript_errors(seen, page):
    assert not seen[page].console_errors, f"{page}: {seen[page].console_errors}"


@pytest.mark.parametrize("page", PAGES)
def test_a_screenshot_is_kept(seen, page):
    shots = seen[page].screenshots
    assert shots, f"{page}: no screenshot"
    for shot in shots:
        assert shot.exists() and shot.stat().st_size > 10_000, f"{page}: no screenshot at {shot}"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- navigation ------------------------------------------------------------------------------

def test_index_html_leads_to_the_introduction(browser, book):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((book.html / "index.html").as_uri())
    target = book.html / f"{TOC.root}.html"
    with contextlib.suppress(TimeoutException):  # index.html redirects with a meta refresh
        WebDriverWait(browser, 20).until(lambda d: file_path(d.current_url) == target)
    assert file_path(browser.current_url) == target


def test_sidebar_reaches_every_page(seen, book):
    for page in TOC.pages:
        reached = {file_path(h) for h in seen[page].report["nav"]} | {book.html / f"{page}.html"}
        missing_pages = [p for p in TOC.pages[1:] if book.html / f"{p}.html" not in reached]
        assert not missing_pages, f"the sidebar of {page} does not link {missing_pages}"


def test_next_links_walk_through_the_book_in_order(seen, book):
    walked, page = [], TOC.root
    while page is not None and page not in walked:
        walked.append(page)
        nxt = seen[page].report["next"]
        page = str(file_path(nxt).relative_to(book.html).with_suffix("")) if nxt else None
    assert walked == TOC.pages


# --- chapters: notebook download and launch buttons ------------------------------------------

def _repository():
    parts = urlsplit(CONFIG["repository"]["url"])
    return parts.path.strip("/")  # "<organisation>/<repository>"


def test_the_book_has_chapters():
    assert TOC.chapters, "the table of contents has no numbered part with chapters"


@pytest.mark.parametrize("page", TOC.chapters)
def test_chapter_offers_its_executed_notebook_for_download(seen, page):
    links = seen[page].report["notebook_downloads"]
    assert len(links) == 1, f"{page}: expected one .ipynb download link, found {links}"
    path = file_path(links[0])
    assert path.suffix == ".ipynb" and path.exists(), f"{page}: {links[0]} does not exist"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{page}: the notebook is not executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], f"{page}: error outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("#")
    # a check question reads as a question with its answers folded away, not as the directive's
    # source with the right options marked
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{check-question}" not in markdown and "- [x]" not in markdown, f"{page}: raw check questions"
    assert markdown.count("**Check question.**") == markdown.count("<summary>Answers</summary>") >= 3, page


@pytest.mark.parametrize("page", TOC.chapters)
def test_chapter_has_launch_buttons_built_from_the_repository_address(seen, page):
    launch = {b["text"]: b["href"] for b in seen[page].report["launch"]}
    assert set(launch) == {"Binder", "JupyterHub", "Colab"}, f"{page}: launch buttons {sorted(launch)}"
    repo = _repository()
    assert f"/{repo}/" in launch["Binder"] and f"{page}.md" in launch["Binder"]
    assert launch["Binder"].startswith(CONFIG["launch_buttons"]["binderhub_url"])
    assert CONFIG["launch_buttons"]["jupyterhub_url"] in launch["JupyterHub"] and repo in launch["JupyterHub"]
    assert f"/github/{repo}/blob/{CONFIG['repository']['branch']}/{page}.md" in launch["Colab"]


def test_repository_address_is_written_in_one_place():
    url = CONFIG["repository"]["url"]
    config_text = (book_source() / "_config.yml").read_text()
    assert config_text.count(url) == 1
    for path in ["README.md", "Makefile", "pyproject.toml", "environment.yml", *(str(p.relative_to(book_source())) for p in (book_source() / "book").glob("*.md"))]:
        assert url not in (book_source() / path).read_text(), f"{path} repeats the repository address"


# --- chapters: check questions and the first screen -------------------------------------------

@pytest.mark.parametrize("page", TOC.chapters)
def test_chapter_has_a_few_check_questions(seen, page):
    count = seen[page].report["check_questions"]
    assert 3 <= count <= 5, f"{page}: {count} check questions; a chapter has 3 to 5 (`check-question` directive)"


@pytest.fixture(scope="module")
def answered(seen, browser, book):
    """Each chapter's first screen, as a reader opens it; then its first check question answered
    wrongly, then rightly, by clicking the options. Screenshots: first-screen-<chapter>.png and
    check-question-<chapter>-wrong.png / -right.png in <_build>/screenshots/."""
    from chromium import screenshot

    shots = book.build / "screenshots"
    results = {}
    for page in TOC.chapters:
        slug = page.split("/")[-1]
        browser.get((book.html / f"{page}.html").as_uri())
        screenshot(browser, shots / f"first-screen-{slug}.png", full_page=False)
        wrong = answer_check_question(browser, 0, right=False)
        screenshot(browser, shots / f"check-question-{slug}-wrong.png", full_page=False)
        right = answer_check_question(browser, 0, right=True)
        screenshot(browser, shots / f"check-question-{slug}-right.png", full_page=False)
        results[page] = {"wrong": wrong, "right": right, "errors": [
            e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]}
    return results


@pytest.mark.parametrize("page", TOC.chapters)
def test_a_check_question_answers_a_wrong_click_and_a_right_click_at_once(answered, page):
    wrong, right = answered[page]["wrong"], answered[page]["right"]
    assert wrong["options"] >= 2 and wrong["rights"] >= 1, wrong
    # A wrong option: its own feedback shows at once, saying so; no other option is open.
    assert wrong["open"] == ["wrong"] and wrong["answered"] == "wrong", wrong
    assert len(wrong["feedback"]) == 1 and wrong["feedback"][0].startswith("Not quite."), wrong
    # Then a right one: it closes the wrong one and says why it is right.
    assert right["open"] == ["right"] and right["answered"] == "right", right
    assert len(right["feedback"]) == 1 and right["feedback"][0].startswith("Right."), right
    assert len(right["feedback"][0]) > len("Right. ") + 10, f"{page}: the right answer explains nothing: {right}"
    assert not answered[page]["errors"], answered[page]["errors"]


def test_first_screens_and_answered_questions_are_kept_as_screenshots(answered, book):
    for page in TOC.chapters:
        slug = page.split("/")[-1]
        for name in (f"first-screen-{slug}", f"check-question-{slug}-wrong", f"check-question-{slug}-right"):
            shot = book.build / "screenshots" / f"{name}.png"
            assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot {shot}"


# --- exercises page --------------------------------------------------------------------------

def test_exercises_page_links_every_student_notebook_for_download(seen, book):
    from dlcourse.release import assignments

    downloads = {file_path(d["href"]) for d in seen["book/exercises"].report["downloads"]}
    for name in assignments(book.source):
        found = [p for p in downloads if p and p.name == f"{name}.ipynb"]
        assert found, f"book/exercises.md does not offer exercises/{name}/{name}.ipynb for download"
        assert found[0].read_bytes() == (book.source / "exercises" / name / f"{name}.ipynb").read_bytes(), \
            f"the download of {name}.ipynb is not the student notebook in exercises/{name}/"


# --- make lab --------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "jupyter"), *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    return ANSI.sub("", out.stdout + out.stderr)


def test_nbgrader_lab_and_server_extensions_are_installed_and_enabled():
    lab = _jupyter("labextension", "list")
    assert re.search(r"@jupyter/nbgrader v\S+ enabled\s+OK", lab), lab
    server = _jupyter("server", "extension", "list")
    for ext in ("validate_assignment", "assignment_list", "course_list", "formgrader"):
        assert re.search(rf"nbgrader\.server_extensions\.{ext} enabled", server), f"{ext} not enabled:\n{server}"
        assert re.search(rf"nbgrader\.server_extensions\.{ext}\s+OK", server), f"{ext} not OK:\n{server}"


@pytest.fixture(scope="module")
def lab():
    from screenshot_lab import make_lab, scratch_exercises

    notebook_dir = scratch_exercises()
    try:
        with make_lab(notebook_dir) as server:
            yield server
    finally:
        shutil.rmtree(notebook_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def validated(lab, browser):
    """An exercise opened in `make lab` and validated with the toolbar's Validate button."""
    from screenshot_lab import click_validate, open_notebook
    from chromium import screenshot

    from dlcourse.release import assignments

    name = assignments(ROOT)[0]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False})
    button = open_notebook(browser, lab, f"{name}/{name}.ipynb")
    menus = browser.execute_script(
        "return [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.textContent)")
    result = click_validate(browser, button)
    screenshot(browser, book_build_dir() / "screenshots" / "lab-validate.png", full_page=False)
    return {"menus": menus, **result}


def test_make_lab_shows_nbgrader_menu(validated):
    assert "Nbgrader" in validated["menus"], f"no Nbgrader menu in JupyterLab's menu bar: {validated['menus']}"


def test_make_lab_validate_button_runs_nbgrader_validate(validated):
    # The released notebook is unanswered: Validate runs it and reports the failing tests.
    assert validated["title"] == "Validation Results", validated
    assert "failed" in validated["text"] and "NotImplementedError" in validated["text"], validated["text"][:2000]


def test_make_lab_assignment_list_lists_the_local_exchange(lab):
    # Without a hub, `make lab` releases exercises/ into a local exchange (LAB_EXCHANGE): the
    # Assignments panel lists every assignment, already downloaded in exercises/.
    from dlcourse.release import assignments

    answer = lab.api("assignments?course_id=dlcourse")
    assert answer.get("success"), answer
    fetched = {a["assignment_id"] for a in answer["value"] if a["status"] == "fetched"}
    assert fetched == set(assignments(ROOT)), answer


@pytest.fixture(scope="module")
def lab_on_empty_folder():
    """`make lab` on an empty folder (a student's own work folder), with a local exchange."""
    from screenshot_lab import make_lab

    work = Path(tempfile.mkdtemp(prefix="dlcourse-work-"))
    try:
        with make_lab(work) as server:
            yield server
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_make_lab_fetches_and_submits_through_the_local_exchange_offline(lab_on_empty_folder):
    from dlcourse.release import assignments

    lab = lab_on_empty_folder
    name = assignments(ROOT)[0]
    listed = lab.api("assignments?course_id=dlcourse")
    assert listed.get("success"), listed
    assert {a["assignment_id"] for a in listed["value"] if a["status"] == "released"} == set(assignments(ROOT)), listed
    fetched = lab.api("assignments/fetch", {"course_id": "dlcourse", "assignment_id": name})
    assert fetched.get("success"), fetched
    notebook = lab.root_dir / name / f"{name}.ipynb"
    assert notebook.read_bytes() == (ROOT / "exercises" / name / f"{name}.ipynb").read_bytes()
    submitted = lab.api("assignments/submit", {"course_id": "dlcourse", "assignment_id": name})
    assert submitted.get("success"), submitted
    inbound = list((lab.exchange / "dlcourse" / "inbound").glob(f"*+{name}+*"))
    assert len(inbound) == 1, inbound
    assert (inbound[0] / f"{name}.ipynb").read_bytes() == notebook.read_bytes()
    assert (inbound[0] / "timestamp.txt").read_text().strip()
    listed = lab.api("assignments?course_id=dlcourse")
    assert any(a["assignment_id"] == name and a["status"] == "submitted" for a in listed["value"]), listed


def test_make_lab_finds_the_course_nbgrader_config(lab, validated):
    # Validate (used by the fixture) and the assignment list each load nbgrader's configuration
    # when they are used; nbgrader logs this warning when it finds no nbgrader_config.py.
    lab.api("assignments?course_id=dlcourse")
    assert "No nbgrader_config.py file found" not in lab.log_text(), lab.log_text()[-3000:]


CONFIG_PROBE = """
from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList, chdir
validate = ValidateAssignmentHandler.load_config(None)
with chdir("exercises"):
    listing = AssignmentList().load_config()
print(validate.CourseDirectory.get("course_id"), listing.CourseDirectory.get("course_id"))
"""


@pytest.mark.parametrize("config_path, expected", [(None, "dlcourse None"), (str(ROOT), "dlcourse dlcourse")])
def test_why_make_lab_puts_the_course_folder_on_jupyters_config_path(config_path, expected):
    # Validate reads nbgrader_config.py from the server's working directory (the course folder,
    # where `make` runs); the assignment list reads it from the notebook directory (exercises/),
    # and finds it there only through JUPYTER_CONFIG_PATH, which `make lab` sets.
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_PATH"}
    if config_path:
        env["JUPYTER_CONFIG_PATH"] = config_path
    out = subprocess.run([sys.executable, "-c", CONFIG_PROBE], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == expected, out.stdout + out.stderr
    make = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "JUPYTER_CONFIG_PATH=" in make and "--notebook-dir=exercises" in make, make


def test_validate_screenshot_in_the_introduction_exists():
    intro = (ROOT / "book" / "intro.md").read_text()
    images = re.findall(r"images/[\w.-]+\.png", intro)
    assert images, "book/intro.md shows no screenshot of Validate"
    for image in images:
        png = ROOT / "book" / image
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is missing"
