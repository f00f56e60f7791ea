"""Screenshot of JupyterLab validating an exercise, for the book's introduction.

Starts JupyterLab exactly as students do (`make lab`), but on a scratch copy of `exercises/`
(Validate saves the notebook before it runs it, and the committed notebooks must not change),
opens an exercise in headless Chromium, clicks nbgrader's **Validate** button, waits for the
*Validation Results* dialog and saves the window as a PNG. The released notebook is used as it
is, unanswered, so the picture shows what Validate reports and never a solution.

    .venv/bin/python tools/screenshot_lab.py                      # -> book/images/validate-exercise.png
    .venv/bin/python tools/screenshot_lab.py --assignment cnn --output /tmp/validate.png

`tests/test_browser.py` uses the same functions to test `make lab` and the Validate button.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import chromium  # noqa: E402

OUTPUT = ROOT / "book" / "images" / "validate-exercise.png"


def stop_group(proc: subprocess.Popen, timeout: float) -> None:
    """Stop a server started in its own process group: SIGTERM (so it can stop what it started),
    then SIGKILL if it is still there after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    log: Path
    root_dir: Path
    exchange: Path | None = None

    def api(self, path: str, data: dict | None = None, timeout: float = 300) -> dict:
        """GET (or POST form data to) the server; the decoded JSON answer."""
        body = None if data is None else "&".join(f"{k}={v}" for k, v in data.items()).encode()
        req = urllib.request.Request(f"{self.url}/{path}", data=body,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def make_lab(notebook_dir: Path, *, timeout: float = 600, exchange: Path | None = None):
    """Run `make lab` (headless, on a free local port, with a token) serving notebook_dir.

    Its local nbgrader exchange is `exchange`, or a temporary folder removed on exit (`Lab.exchange`).

    The server runs in its own process group, which is ended on exit. Its log is kept in a
    temporary file (`Lab.log`). Waits until the server answers, at most `timeout` seconds
    (`make` first brings .venv up to date if it is stale).
    """
    port, token = free_port(), os.urandom(16).hex()
    args = [f"--port={port}", "--ServerApp.ip=127.0.0.1", "--no-browser",
            f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = Path(tempfile.mkstemp(prefix="dlcourse-lab-", suffix=".log")[1])
    # Fresh JupyterLab settings and workspace: no tabs restored from an earlier session, and the
    # user's own settings are not touched.
    state = Path(tempfile.mkdtemp(prefix="dlcourse-lab-state-"))
    exchange = Path(exchange) if exchange else state / "exchange"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"))
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "-s", "lab", f"LAB_DIR={notebook_dir}", f"LAB_ARGS={' '.join(args)}",
                                 f"LAB_EXCHANGE={exchange}"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    lab = Lab(f"http://127.0.0.1:{port}", token, log, Path(notebook_dir), exchange)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`make lab` exited with {proc.returncode}:\n{lab.log_text()[-4000:]}")
            try:
                lab.api("api/status", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"`make lab` did not answer within {timeout:.0f} s:\n{lab.log_text()[-4000:]}")
                time.sleep(0.5)
        yield lab
    finally:
        stop_group(proc, timeout=20)
        shutil.rmtree(state, ignore_errors=True)


def scratch_exercises() -> Path:
    """A temporary copy of exercises/ (the caller removes it)."""
    tmp = Path(tempfile.mkdtemp(prefix="dlcourse-exercises-"))
    shutil.copytree(ROOT / "exercises", tmp / "exercises")
    return tmp / "exercises"


def open_notebook(driver, lab: Lab, path: str, timeout: float = 180):
    """Open a notebook in JupyterLab; returns when its toolbar's Validate button is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{lab.url}/lab/tree/{path}?reset&token={lab.token}")
    wait = WebDriverWait(driver, timeout)
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, f"{panel} .jp-Notebook .jp-Cell")))
    button = wait.until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, f"{panel} .jp-NotebookPanel-toolbar .validate-button")))
    dismiss_notifications(driver)
    # Wait for the kernel to be idle so that the toolbar's status is settled in the picture.
    with contextlib.suppress(Exception):
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelStatus');"
            "return !s || /idle/i.test(s.getAttribute('title') || s.textContent || '');"))
    return button


def dismiss_notifications(driver, wait: float = 3):
    """Answer JupyterLab's pop-up notifications (e.g. "get notified about Jupyter news?") with No."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        closed = driver.execute_script(
            "let n = 0; for (const t of document.querySelectorAll('.Toastify__toast')) {"
            "  const b = [...t.querySelectorAll('button')];"
            "  const no = b.find(x => x.textContent.trim() === 'No') || b.find(x => /close|dismiss/i.test("
            "    (x.getAttribute('title') || '') + (x.getAttribute('aria-label') || '') + x.className));"
            "  if (no) { no.click(); n++; } } return n;")
        if closed:
            time.sleep(0.5)
        time.sleep(0.5)


def click_validate(driver, button, timeout: float = 300) -> dict:
    """Click Validate and wait for nbgrader's result dialog: its title and text."""
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.jp-Dialog .jp-Dialog-header')]"
        ".some(h => /Validation/.test(h.textContent))"))
    time.sleep(0.5)  # let the dialog finish its opening animation
    return driver.execute_script(
        "const d = document.querySelector('.jp-Dialog');"
        "return {title: d.querySelector('.jp-Dialog-header').textContent.trim(),"
        "        text: d.querySelector('.jp-Dialog-body').innerText};")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="cnn")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args(argv)
    notebook_dir = scratch_exercises()
    try:
        with make_lab(notebook_dir) as lab, chromium(args.width, args.height) as driver:
            button = open_notebook(driver, lab, f"{args.assignment}/{args.assignment}.ipynb")
            result = click_validate(driver, button)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
            # Keep the menu bar, the notebook's toolbar (with Validate) and the dialog: the picture
            # is shown at the width of the book's text, so every pixel of margin makes it smaller.
            box = driver.execute_script(
                "const r = document.querySelector('.jp-Dialog-content').getBoundingClientRect();"
                "return [r.left, r.right, r.bottom];")
            from PIL import Image
            with Image.open(args.output) as image:
                left, right, bottom = (int(v) for v in box)
                image.crop((max(left - 12, 0), 0, min(right + 12, image.width),
                            min(bottom + 12, image.height))).save(args.output)
    finally:
        shutil.rmtree(notebook_dir.parent, ignore_errors=True)
    print(f"{result['title']}: {result['text'][:200]!r}...")
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
