"""Visit a page of the built book in Chromium and report what a reader would see."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

# Lines that must never appear in an executed cell's output: Python tracebacks and warnings as
# Python writes them ("file.py:12: UserWarning: ..."; a chapter may print a warning's message on
# purpose, to teach it),
# TensorFlow's C++ log lines (e.g. "I0000 00:00:1700000000.123456  123 port.cc:153] oneDNN ...",
# "WARNING: All log messages before absl::InitializeLog() is called ...") and its CUDA probing.
NOISE = re.compile(
    r"Traceback \(most recent call last\)|^\s*[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog"
    r"|oneDNN custom operations|TensorFlow binary is optimized|Unable to register cu(DNN|FFT|BLAS)"
    r"|could not find cuda drivers|tensorflow/core/|WARNING:(tensorflow|absl)|\.py:\d+: \w*Warning: ", re.M)


@dataclass
class Toc:
    root: str
    chapters: list[str]          # the numbered part: the course's chapters
    pages: list[str]             # every page, in the book's order

    @classmethod
    def read(cls, source: Path) -> "Toc":
        toc = yaml.safe_load((source / "_toc.yml").read_text())
        pages, chapters = [toc["root"]], []
        for part in toc.get("parts", []):
            files = [c["file"] for c in part.get("chapters", [])]
            pages += files
            if part.get("numbered"):
                chapters += files
        return cls(toc["root"], chapters, pages)


# Runs in the page once it has loaded and MathJax (if any) has finished.
REPORT_JS = r"""
const q = s => [...document.querySelectorAll(s)];
const math = q('.math');
return {
  url: location.href,
  title: document.title,
  h1: (document.querySelector('article h1, main h1') || {textContent: ''}).textContent.trim(),
  text_length: (document.querySelector('article') || document.body).innerText.length,
  images: q('img').map(i => ({src: i.currentSrc || i.src, complete: i.complete, width: i.naturalWidth})),
  math: math.length,
  math_typeset: math.filter(e => e.querySelector('mjx-container')).length,
  math_untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  math_errors: q('mjx-merror').map(e => e.textContent.slice(0, 80)),
  mathjax_version: (window.MathJax && MathJax.version) || null,
  outputs: q('.cell_output').map(e => e.innerText),
  stderr_outputs: q('.cell_output .stderr, .cell_output .traceback, .output.stderr, .output.traceback').length,
  links: q('a[href]').map(a => a.href),
  nav: q('nav.bd-docs-nav a.reference.internal').map(a => a.href),
  next: (document.querySelector('a.right-next') || {}).href || null,
  notebook_downloads: q('a.btn-download-notebook-button').map(a => a.href),
  launch: q('.dropdown-launch-buttons a').map(a => ({text: a.textContent.trim(), href: a.href})),
  downloads: q('a.download, a.reference.download').map(a => ({text: a.textContent.trim(), href: a.href})),
  check_questions: q(".dl-check").length,
};
"""

WAIT_FOR_MATHJAX_JS = r"""
const done = arguments[arguments.length - 1];
const needed = document.querySelector('.math') || document.querySelector('script[src*="mathjax"]');
if (!needed) { done('no math'); return; }
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), e => done('MathJax error: ' + e));
  } else if (Date.now() - start > 30000) {
    done('MathJax did not load');
  } else {
    setTimeout(poll, 100);
  }
})();
"""

WAIT_FOR_IMAGES_JS = r"""
const done = arguments[arguments.length - 1];
for (const img of document.images) img.loading = 'eager';
const start = Date.now();
(function poll() {
  if ([...document.images].every(i => i.complete) || Date.now() - start > 15000) done();
  else setTimeout(poll, 100);
})();
"""


@dataclass
class PageReport:
    page: str
    report: dict
    mathjax: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def file_path(url: str) -> Path | None:
    """The local file a file:// URL points to (None for other schemes)."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _drain_logs(driver) -> tuple[list[str], list[str]]:
    errors = [f"{e.get('source')}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    return errors, requests


def visit(driver, html_dir: Path, page: str, screenshot_dir: Path | None = None) -> PageReport:
    from chromium import screenshot

    start = time.monotonic()
    _drain_logs(driver)  # forget what the previous page logged
    driver.get((html_dir / f"{page}.html").as_uri())
    mathjax = driver.execute_async_script(WAIT_FOR_MATHJAX_JS)
    driver.execute_async_script(WAIT_FOR_IMAGES_JS)
    report = driver.execute_script(REPORT_JS)
    shots = screenshot(driver, screenshot_dir / f"{page}.png") if screenshot_dir is not None else []
    errors, requests = _drain_logs(driver)
    return PageReport(page, report, mathjax, errors, requests, shots, time.monotonic() - start)


# --- check questions (the `check-question` directive of tools/dlcourse_book.py) -------------------

# Clicks one option of the index-th check question on the page, as a reader does, and reports what
# the question then shows: which options are open, and the text of the feedback a reader can see.
ANSWER_CHECK_JS = r"""
const [index, right] = arguments;
const question = document.querySelectorAll('.dl-check')[index];
const option = question.querySelector(right ? '.dl-check-option.dl-check-right' : '.dl-check-option.dl-check-wrong');
question.scrollIntoView({block: 'center'});
option.querySelector('summary').click();
"""

CHECK_STATE_JS = r"""
const question = document.querySelectorAll('.dl-check')[arguments[0]];
const visible = e => e.checkVisibility ? e.checkVisibility() : e.offsetHeight > 0;
const options = [...question.querySelectorAll('.dl-check-option')];
return {
  answered: question.getAttribute('data-answered'),
  open: options.filter(o => o.open).map(o => o.classList.contains('dl-check-right') ? 'right' : 'wrong'),
  feedback: options.map(o => o.querySelector('.dl-check-feedback'))
                   .filter(visible).map(f => f.innerText.trim()),
  options: options.length,
  rights: options.filter(o => o.classList.contains('dl-check-right')).length,
};
"""


def answer_check_question(driver, index: int, right: bool) -> dict:
    """Click a right (or a wrong) option of the page's index-th check question; return what the
    question shows then: {answered, open, feedback, options, rights}."""
    driver.execute_script(ANSWER_CHECK_JS, index, right)
    time.sleep(0.2)  # the toggle event is asynchronous
    return driver.execute_script(CHECK_STATE_JS, index)
