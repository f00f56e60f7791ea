"""A class on `make hub`, end to end: JupyterHub, nbgrader's exchange, real users, headless Chromium.

The module's fixture runs the whole loop once, as it happens in a course, and the tests check what
each step left behind:

1. `hub/setup.py` (what `make hub` runs) creates an instructor and three students as real system
   users, the exchange and the instructor's course folder; JupyterHub starts from
   `hub/jupyterhub_config.py` on loopback, with configurable-http-proxy from `hub/node_modules`;
2. the instructor releases `shallow_deep` (`nbgrader release_assignment`, into the exchange);
3. each student logs in on the hub's login page, fetches the assignment in the Assignments list,
   answers (one fully, one partly, one with a cheat: an answer cell that rebinds the checks the
   tests call), validates with nbgrader's Validate button and submits;
4. the instructor collects (`nbgrader collect`), grades with `dlcourse grade` (submission times from
   the exchange's timestamp.txt), grades the written answer in the formgrader in the browser, runs
   `dlcourse grade` again (it keeps the manual grade and writes the feedback) and releases the
   feedback (`dlcourse release-feedback`, which runs `nbgrader release_feedback`);
5. each student fetches the feedback in the Assignments list and opens it.

Answers are written into the fetched notebook by the test (as that student's file) instead of being
typed: typing code into Lab's editor tests CodeMirror, not the course. Everything else goes through
the hub as a person would. Screenshots of each step: `_build/screenshots/hub-*.png`.

Needs root (users, PAM, runuser), Debian's chromium and Node (`.ci/system-deps.sh`), and the proxy in
`hub/node_modules` (`make test` and `make hub` run `npm ci --prefix hub`). The users are named
`dlct-*` and removed afterwards.
"""
from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, book_build_dir
from nbtools import Exercise, nbgrader_meta

sys.path.insert(0, str(ROOT / "tools"))
from chromium import chromium, missing, screenshot  # noqa: E402
from screenshot_lab import click_validate, dismiss_notifications, free_port, stop_group  # noqa: E402

HUB = ROOT / "hub"
BIN = Path(sys.executable).parent
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
ASSIGNMENT = "shallow_deep"
INSTRUCTOR = "dlct-teach"
STUDENTS = {"dlct-full": "full", "dlct-part": "partial", "dlct-cheat": "cheat"}
SHOTS = book_build_dir() / "screenshots"
WAIT = 300   # seconds: generous, for a busy 2-core machine; every wait is on a real condition

EX = Exercise(ASSIGNMENT)
SOLUTION = {gid: EX.source(gid) for gid in EX.answer_ids()}
WRITTEN = ("Backpropagation multiplies one derivative per layer; the sigmoid's is at most 1/4, so the "
           "gradient of the first layers shrinks geometrically with depth. ReLU's derivative is 1 where "
           "the unit is active, so the gradient keeps its size.")
# A cheat: instead of an answer, rebind the checks the tests call, so that any answer passes.
CHEAT = """import dlcourse.checks
dlcourse.checks.check_array = lambda *args, **kwargs: None
check_array = lambda *args, **kwargs: None
def dense_forward(x, W, b):
    return None
"""
ANSWERS = {
    "full": {**SOLUTION, "written_answer": WRITTEN},
    "partial": {gid: SOLUTION[gid] for gid in ("part1_answer", "part2_answer", "part3_answer")},
    "cheat": {"part1_answer": CHEAT, "part2_answer": SOLUTION["part2_answer"],
              "part3_answer": SOLUTION["part3_answer"], "written_answer": WRITTEN},
}
POINTS = EX.points()
MANUAL_SCORE = 1.5   # what the instructor gives the full answer's written part in the formgrader


def _load_setup():
    spec = importlib.util.spec_from_file_location("dlcourse_hub_setup", HUB / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Hub:
    url: str
    root: Path                       # temporary: state/, exchange/, the hub's log
    passwords: dict[str, str]
    course: Path
    env: dict                        # the environment of a hub user's commands
    log: Path
    steps: dict = field(default_factory=dict)   # what each step of the loop saw, for the tests
    seconds: dict = field(default_factory=dict)

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    def as_user(self, user: str, *cmd: str, cwd: Path | None = None, timeout: float = 900,
                check: bool = True) -> subprocess.CompletedProcess:
        home = pwd.getpwnam(user).pw_dir
        role = "instructor" if user == INSTRUCTOR else "student"
        env = {**self.env, "HOME": home, "USER": user,
               # a developer's worktree (PYTHONPATH=the worktree): the users run its dlcourse too
               **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
               "JUPYTER_CONFIG_PATH": f"{HUB / 'roles' / role}:{HUB / 'roles' / 'common'}"}
        out = subprocess.run([RUNUSER, "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd],
                             cwd=cwd or home, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{user}: {' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _remove_users(names) -> None:
    """End the processes of the test's users (by pid) and remove the users with their homes."""
    import psutil

    for name in names:
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        procs = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        psutil.wait_procs(procs, timeout=20)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def _get(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@contextlib.contextmanager
def running_hub():
    users = [INSTRUCTOR, *STUDENTS]
    _remove_users(users)     # what an interrupted earlier run left
    root = Path(tempfile.mkdtemp(prefix="dlcourse-hub-"))
    os.chmod(root, 0o755)    # the users reach the exchange inside it
    proc = None
    try:
        t0 = time.monotonic()
        setup = subprocess.run([sys.executable, str(HUB / "setup.py"), "--instructor", INSTRUCTOR,
                                "--students", *STUDENTS, "--state", str(root / "state"),
                                "--exchange", str(root / "exchange")],
                               capture_output=True, text=True, timeout=900)
        assert setup.returncode == 0, f"hub/setup.py failed:\n{setup.stdout}\n{setup.stderr}"
        passwords = dict(line.split(" ", 1) for line in (root / "state" / "passwords.txt").read_text().splitlines())
        ports = {k: str(free_port()) for k in ("DLCOURSE_HUB_PORT", "DLCOURSE_HUB_API_PORT", "DLCOURSE_PROXY_API_PORT")}
        env = dict(os.environ, DLCOURSE_HUB_STATE=str(root / "state"), DLCOURSE_EXCHANGE=str(root / "exchange"), **ports)
        log = root / "hub.log"
        with log.open("w") as out:
            proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(HUB / "jupyterhub_config.py")], cwd=root,
                                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        url = f"http://127.0.0.1:{ports['DLCOURSE_HUB_PORT']}"
        deadline = time.monotonic() + WAIT
        while True:
            assert proc.poll() is None, f"jupyterhub exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(OSError):
                if _get(f"{url}/hub/login") == 200:
                    break
            assert time.monotonic() < deadline, f"the hub did not answer within {WAIT} s:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        setup_module = _load_setup()
        hub = Hub(url=url, root=root, passwords=passwords, course=Path(pwd.getpwnam(INSTRUCTOR).pw_dir) / "dlcourse",
                  env={**setup_module.user_env(), "DLCOURSE_EXCHANGE": str(root / "exchange")}, log=log)
        hub.seconds["setup to login page"] = time.monotonic() - t0
        yield hub
    finally:
        if proc is not None:
            stop_group(proc, timeout=60)     # JupyterHub stops the users' servers as it exits
        _remove_users(users)
        shutil.rmtree(root, ignore_errors=True)


# --- the browser's side -------------------------------------------------------------------------

def _wait(driver, condition, timeout: float = WAIT, what: str = ""):
    """Wait for a condition; on a timeout, a screenshot of the page (hub-failed-*.png) for a person."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(condition, message=what)
    except TimeoutException:
        with contextlib.suppress(Exception):
            screenshot(driver, SHOTS / f"hub-failed-{re.sub(r'[^a-z]+', '-', what.lower())[:40]}.png", full_page=False)
        raise


def log_in(driver, hub: Hub, user: str, shot: str | None = None) -> None:
    """The hub's login page, then the user's JupyterLab (the hub starts the server)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{hub.url}/hub/login")
    _wait(driver, lambda d: d.find_elements(By.ID, "username_input"), what="the login form")
    driver.find_element(By.ID, "username_input").send_keys(user)
    driver.find_element(By.ID, "password_input").send_keys(hub.passwords[user])
    if shot:
        screenshot(driver, SHOTS / shot, full_page=False)
    driver.find_element(By.ID, "login_submit").click()
    _wait(driver, lambda d: f"/user/{user}/lab" in d.current_url and d.execute_script(
        "return !!document.querySelector('.lm-MenuBar-itemLabel')"), what=f"{user}'s JupyterLab")
    dismiss_notifications(driver)


def menu_labels(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.textContent)")


def open_menu(driver, menu: str) -> list[str]:
    """Open a menu of the menu bar; the labels of its items.

    Clicks again until the menu opens: right after Lab shows its menu bar, a click can land
    before the bar's handlers are ready."""
    from selenium.webdriver.common.by import By

    def opened(d):
        if not d.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel"):
            labels = [e for e in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == menu]
            if labels:
                with contextlib.suppress(Exception):
                    labels[0].click()
            time.sleep(1)
        return d.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel")

    _wait(driver, opened, what=f"the {menu} menu's items")
    return [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel")
            if e.get_attribute("textContent")]


def open_assignment_list(driver) -> None:
    from selenium.webdriver.common.by import By

    open_menu(driver, "Nbgrader")
    [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel")
     if e.get_attribute("textContent") == "Assignment List"][0].click()
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#nbgrader-assignment-list #released_assignments_list"),
          what="the Assignments list")


def list_text(driver, list_id: str) -> str:
    return driver.execute_script(
        "const l = document.querySelector('#nbgrader-assignment-list #' + arguments[0]);"
        "return l ? [...l.querySelectorAll('.list_item')].map(e => e.innerText).join('\\n') : '';", list_id)


def click_in_list(driver, list_id: str, text: str) -> None:
    """Click the button or link labelled `text` in one of the Assignments list's lists."""
    def find(d):
        found = d.execute_script(
            "const l = document.querySelector('#nbgrader-assignment-list #' + arguments[0]);"
            "if (!l) return false;"
            "const b = [...l.querySelectorAll('.list_item button, .list_item a')]"
            "  .find(e => e.textContent.trim() === arguments[1] && !e.disabled);"
            "if (!b) return false; b.click(); return true;", list_id, text)
        return found
    _wait(driver, find, what=f"{text!r} in #{list_id}: {list_text(driver, list_id)!r}")


def open_notebook(driver, hub: Hub, user: str, path: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    driver.get(f"{hub.url}/user/{user}/lab/tree/{path}")
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    _wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, f"{panel} .jp-Notebook .jp-Cell")), what=path)
    button = _wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, f"{panel} .jp-NotebookPanel-toolbar .validate-button")),
                   what="the Validate button")
    dismiss_notifications(driver)
    return button


def answer(hub: Hub, user: str, answers: dict[str, str]) -> Path:
    """Fill the answer cells of the student's fetched notebook, as that student's file."""
    account = pwd.getpwnam(user)
    path = Path(account.pw_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    nbformat.write(nb, path)
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def student_submits(hub: Hub, user: str, kind: str) -> dict:
    seen = {}
    with chromium() as driver:
        log_in(driver, hub, user, shot="hub-login.png" if kind == "full" else None)
        seen["menus"] = menu_labels(driver)
        seen["nbgrader_menu"] = open_menu(driver, "Nbgrader")
        open_assignment_list(driver)     # from the open menu
        _wait(driver, lambda d: ASSIGNMENT in list_text(d, "released_assignments_list"), what="the released assignment")
        screenshot(driver, SHOTS / f"hub-{kind}-assignments.png", full_page=False)
        click_in_list(driver, "released_assignments_list", "Fetch")
        _wait(driver, lambda d: ASSIGNMENT in list_text(d, "fetched_assignments_list"), what="the fetched assignment")
        answer(hub, user, ANSWERS[kind])
        button = open_notebook(driver, hub, user, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
        seen["validate"] = click_validate(driver, button, timeout=WAIT)
        screenshot(driver, SHOTS / f"hub-{kind}-validate.png", full_page=False)
        driver.get(f"{hub.url}/user/{user}/lab")
        open_assignment_list(driver)
        _wait(driver, lambda d: ASSIGNMENT in list_text(d, "fetched_assignments_list"), what="the fetched assignment")
        click_in_list(driver, "fetched_assignments_list", "Submit")
        _wait(driver, lambda d: ASSIGNMENT in list_text(d, "submitted_assignments_list"), what="the submission")
        seen["submitted"] = list_text(driver, "submitted_assignments_list")
        screenshot(driver, SHOTS / f"hub-{kind}-submitted.png", full_page=False)
        # A student's server has no formgrader (hub/roles/student): nbgrader's own page is not found.
        driver.get(f"{hub.url}/user/{user}/formgrader")
        seen["formgrader_title"] = driver.title
        seen["formgrader_text"] = driver.find_element("css selector", "body").text[:500]
    return seen


def student_reads_feedback(hub: Hub, user: str, kind: str) -> dict:
    seen = {}
    with chromium() as driver:
        log_in(driver, hub, user)
        open_assignment_list(driver)
        _wait(driver, lambda d: "feedback available" in list_text(d, "submitted_assignments_list"),
              what="feedback available to fetch")
        click_in_list(driver, "submitted_assignments_list", "Fetch Feedback")
        _wait(driver, lambda d: "view feedback" in list_text(d, "submitted_assignments_list"), what="the fetched feedback")
        screenshot(driver, SHOTS / f"hub-{kind}-feedback-list.png", full_page=False)
        pages = sorted((Path(pwd.getpwnam(user).pw_dir) / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        seen["pages"] = [str(p) for p in pages]
        if pages:
            relative = pages[-1].relative_to(pwd.getpwnam(user).pw_dir)
            driver.get(f"{hub.url}/user/{user}/files/{relative}")
            _wait(driver, lambda d: "Score" in d.find_element("css selector", "body").text, what="the feedback page")
            seen["text"] = driver.find_element("css selector", "body").text
            screenshot(driver, SHOTS / f"hub-{kind}-feedback.png", full_page=False)
    return seen


def instructor_grades_written_answer(hub: Hub, student: str) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    seen = {}
    with chromium() as driver:
        log_in(driver, hub, INSTRUCTOR)
        seen["nbgrader_menu"] = open_menu(driver, "Nbgrader")
        # The formgrader in a page of its own (JupyterHub >= 4.1 forbids it in Lab's iframe:
        # nbgrader's documentation, "Formgrader with jupyterhub>=4.1").
        driver.get(f"{hub.url}/user/{INSTRUCTOR}/formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}")
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "a.name-shown"), what="the submissions")
        screenshot(driver, SHOTS / "hub-instructor-formgrader.png", full_page=False)
        link = _wait(driver, lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "a.name-shown")
                                         if a.get_attribute("textContent").strip() == student], what=student)[0]
        driver.get(link.get_attribute("href"))
        # nbgrader's formgrade page: each graded cell's score is input#<grade_id>, its comment
        # textarea#<grade_id>-comment; a change is saved when the field loses focus.
        score = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input.score#written_answer"),
                      what="the written answer's score")[0]
        seen["needed_manual_grade"] = "needs_manual_grade" in (score.get_attribute("class") or "")
        score.clear()
        score.send_keys(f"{MANUAL_SCORE:g}", Keys.TAB)
        seen["comment"] = "Clear, and the right reason; say why ReLU keeps the gradient's size."
        comment = driver.find_element(By.CSS_SELECTOR, "textarea#written_answer-comment")
        comment.send_keys(seen["comment"], Keys.TAB)
        # saved: the gradebook holds the score and the comment
        seen["saved"] = _wait(driver, lambda d: _written_grade(hub) == (MANUAL_SCORE, seen["comment"]) or None,
                              what="the saved score and comment")
        screenshot(driver, SHOTS / "hub-instructor-grading.png", full_page=False)
    return seen


def _written_grade(hub: Hub) -> tuple:
    """The gradebook's manual score and comment of the first student's written answer."""
    out = hub.as_user(INSTRUCTOR, str(BIN / "python"), "-c",
                      "import json\n"
                      "from nbgrader.api import Gradebook\n"
                      "with Gradebook('sqlite:///gradebook.db', 'dlcourse') as gb:\n"
                      f"    args = ('written_answer', '{ASSIGNMENT}', '{ASSIGNMENT}', '{list(STUDENTS)[0]}')\n"
                      "    print(json.dumps([gb.find_grade(*args).manual_score, gb.find_comment(*args).manual_comment]))",
                      cwd=hub.course, check=False)
    lines = out.stdout.strip().splitlines()
    return tuple(json.loads(lines[-1])) if out.returncode == 0 and lines else (None, None)


def read_grades(path: Path) -> dict[str, dict]:
    with path.open() as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


# --- the loop -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loop():
    assert os.geteuid() == 0, "the hub test creates system users: run it as root (CI does)"
    reason = missing()
    assert reason is None, reason
    proxy = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
    assert proxy.exists(), (f"{proxy} is missing: `make test` installs it (npm ci --prefix hub, after "
                            "`bash .ci/system-deps.sh hub` for Node and npm)")
    t0 = time.monotonic()
    with running_hub() as hub:
        s = hub.steps
        hub.as_user(INSTRUCTOR, str(BIN / "nbgrader"), "release_assignment", ASSIGNMENT, cwd=hub.course)
        for user, kind in STUDENTS.items():
            t = time.monotonic()
            s[kind] = student_submits(hub, user, kind)
            hub.seconds[f"{kind}: log in, fetch, validate, submit"] = time.monotonic() - t
        s["permissions"] = permissions(hub)
        hub.as_user(INSTRUCTOR, str(BIN / "nbgrader"), "collect", ASSIGNMENT, cwd=hub.course)
        s["collected"] = sorted(p.name for p in (hub.course / "submitted").iterdir())
        t = time.monotonic()
        grade = [str(BIN / "dlcourse"), "grade", ASSIGNMENT, "--submissions", "submitted", "--out", "grading-out",
                 "--jobs", "2", "--quiet"]
        s["grade"] = hub.as_user(INSTRUCTOR, *grade, cwd=hub.course)
        hub.seconds["dlcourse grade"] = time.monotonic() - t
        s["grades_before"] = read_grades(hub.course / "grading-out" / "grades.csv")
        s["formgrader"] = instructor_grades_written_answer(hub, list(STUDENTS)[0])
        s["regrade"] = hub.as_user(INSTRUCTOR, *grade, cwd=hub.course)
        s["grades"] = read_grades(hub.course / "grading-out" / "grades.csv")
        s["release_feedback"] = hub.as_user(INSTRUCTOR, str(BIN / "dlcourse"), "release-feedback", ASSIGNMENT,
                                            "--out", "grading-out", cwd=hub.course)
        s["exchange_feedback"] = sorted(p.name for p in (hub.exchange / "dlcourse" / "feedback").iterdir())
        for user, kind in STUDENTS.items():
            s[f"{kind}_feedback"] = student_reads_feedback(hub, user, kind)
        s["feedback_permissions"] = feedback_permissions(hub)
        hub.seconds["whole loop"] = time.monotonic() - t0
        (SHOTS / "hub-times.json").write_text(json.dumps(hub.seconds, indent=1))
        print("hub loop times (s):", json.dumps(hub.seconds))
        yield hub


def _denied(hub: Hub, user: str, *cmd: str) -> bool:
    out = hub.as_user(user, *cmd, check=False)
    return out.returncode != 0 and "Permission denied" in out.stderr


def permissions(hub: Hub) -> dict:
    """What a student can do to another's work and to the instructor's files, tried as that user."""
    full, part = list(STUDENTS)[:2]
    inbound = hub.exchange / "dlcourse" / "inbound"
    theirs = sorted(inbound.glob(f"{full}+{ASSIGNMENT}+*"))
    assert theirs, f"no submission of {full} in {inbound}"
    home = Path(pwd.getpwnam(full).pw_dir)
    return {
        "list inbound": _denied(hub, part, "ls", str(inbound)),
        "find their submission by name": hub.as_user(part, "sh", "-c", f"ls -d {inbound}/{full}+* 2>&1",
                                                       check=False).stdout,
        "read their home's notebook": _denied(hub, part, "cat", str(home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")),
        "list their home": _denied(hub, part, "ls", str(home)),
        "read the solutions": _denied(hub, part, "cat", str(hub.course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")),
        "read the gradebook": _denied(hub, part, "cat", str(hub.course / "gradebook.db")),
        "write the release": _denied(hub, part, "touch", str(hub.exchange / "dlcourse" / "outbound" / ASSIGNMENT / "x")),
        "remove the release": _denied(hub, part, "rm", "-rf", str(hub.exchange / "dlcourse" / "outbound" / ASSIGNMENT)),
        "release still there": (hub.exchange / "dlcourse" / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists(),
    }


def feedback_permissions(hub: Hub) -> dict:
    full, part = list(STUDENTS)[:2]
    feedback = hub.exchange / "dlcourse" / "feedback"
    pages = sorted(feedback.glob("*.html"))
    home = Path(pwd.getpwnam(full).pw_dir)
    return {
        "list the exchange's feedback": _denied(hub, part, "ls", str(feedback)),
        "read their fetched feedback": _denied(hub, part, "sh", "-c", f"cat {home}/{ASSIGNMENT}/feedback/*/{ASSIGNMENT}.html"),
        "pages": len(pages),
    }


# --- what the loop left -------------------------------------------------------------------------

def test_hub_serves_a_login_page_on_loopback(loop):
    assert loop.url.startswith("http://127.0.0.1:")
    assert (SHOTS / "hub-login.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_students_see_the_assignment_list_and_validate_but_no_formgrader(loop):
    for kind in STUDENTS.values():
        seen = loop.steps[kind]
        assert "Nbgrader" in seen["menus"], seen["menus"]
        assert seen["nbgrader_menu"] == ["Assignment List"], seen["nbgrader_menu"]
        assert "404" in seen["formgrader_title"] + seen["formgrader_text"], seen["formgrader_text"]


def test_instructor_has_the_formgrader_and_course_list(loop):
    menu = loop.steps["formgrader"]["nbgrader_menu"]
    assert {"Assignment List", "Course List", "Formgrader"} <= set(menu), menu


def test_each_student_fetched_validated_and_submitted_through_the_exchange(loop):
    for kind in STUDENTS.values():
        seen = loop.steps[kind]
        assert seen["validate"]["title"] == "Validation Results", seen["validate"]
        assert ASSIGNMENT in seen["submitted"], seen["submitted"]
    full = loop.steps["full"]["validate"]["text"]
    assert "Success" in full or "passed" in full.lower(), full[:2000]
    # the partial answer fails the tests of the parts it left unanswered
    assert "NotImplementedError" in loop.steps["partial"]["validate"]["text"]
    assert loop.steps["collected"] == sorted(STUDENTS), loop.steps["collected"]


def test_dlcourse_grade_scores_the_collected_submissions(loop):
    grades = loop.steps["grades_before"]
    auto = {gid: p for gid, p in POINTS.items() if gid != "written_answer"}
    full, part, cheat = (grades[u] for u in STUDENTS)
    for gid, points in auto.items():
        assert float(full[gid]) == points, (gid, full)
    assert float(part["part1_tests"]) == POINTS["part1_tests"] and float(part["part5_tests"]) == 0, part
    # the cheat scores as if part 1 were unanswered: part 1 gets nothing, and part 2, whose tests call
    # the student's dense_forward, nothing either (as for the partial answer, had it skipped part 1);
    # its honest part 3 counts
    assert float(cheat["part1_tests"]) == 0 and float(cheat["part2_tests"]) == 0, cheat
    assert float(cheat["part3_tests"]) == POINTS["part3_tests"], cheat
    for row in (full, part, cheat):
        assert row["timestamp"], f"no submission time for {row['student_id']}"


def test_submission_times_come_from_the_exchange(loop):
    for user in STUDENTS:
        stamp = (loop.course / "submitted" / user / ASSIGNMENT / "timestamp.txt").read_text().strip()
        recorded = loop.steps["grades"][user]["timestamp"]
        assert recorded[:16].replace("T", " ") == stamp[:16], (user, recorded, stamp)


def test_the_written_answer_graded_in_the_formgrader_is_kept_by_dlcourse_grade(loop):
    full = loop.steps["grades"][list(STUDENTS)[0]]
    before = loop.steps["grades_before"][list(STUDENTS)[0]]
    assert loop.steps["formgrader"]["saved"]
    assert float(full["score"]) == float(before["score"]) + MANUAL_SCORE, (before, full)


def test_each_student_fetches_feedback_with_their_score(loop):
    assert len(loop.steps["exchange_feedback"]) == len(STUDENTS), loop.steps["exchange_feedback"]
    for user, kind in STUDENTS.items():
        seen = loop.steps[f"{kind}_feedback"]
        assert seen["pages"], f"{user} fetched no feedback page"
        score = float(loop.steps["grades"][user]["score"])
        shown = re.findall(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", seen["text"])
        assert shown, seen["text"][:1500]
        assert float(shown[0][0]) == score, (user, shown[0], score)
    assert loop.steps["formgrader"]["comment"] in loop.steps["full_feedback"]["text"]


def test_a_student_cannot_reach_another_students_work_or_the_instructors_files(loop):
    p = loop.steps["permissions"]
    for what in ("list inbound", "read their home's notebook", "list their home", "read the solutions",
                 "read the gradebook", "write the release", "remove the release"):
        assert p[what] is True, f"a student could {what}: {p}"
    assert "Permission denied" in p["find their submission by name"] or "No such file" in p["find their submission by name"], p
    assert p["release still there"]


def test_a_student_cannot_read_another_students_feedback(loop):
    p = loop.steps["feedback_permissions"]
    assert p["pages"] == len(STUDENTS), p
    assert p["list the exchange's feedback"] is True, p
    assert p["read their fetched feedback"] is True, p
