"""``dlcourse grade --queue``: grading on workers that take jobs from a real Redis (on loopback).

Two ``dlcourse worker`` processes, each with its own work folder as separate machines would have,
grade a few fast CNN submissions: the grades are those of the local run. One worker is killed in
the middle of a job, and the coordinator is stopped and started again: nothing is lost and
nothing is graded twice. A job whose worker never answers becomes a row that says so.
"""
from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbtools import ROOT

sys.path.insert(0, str(Path(__file__).parent / "grading"))
import corpus  # noqa: E402

from test_grading import require_bwrap, make_course  # noqa: E402

STUDENTS = {"honest": corpus.FAST, "honest_copy": corpus.FAST,
            "ref_no_part1": corpus.without("part1_answer"), "ref_no_part3": corpus.without("part3_answer")}
LIMITS = ["--cell-timeout", str(corpus.CELL_TIMEOUT), "--cell-cpu", "120", "--notebook-timeout", "240",
          "--memory", "2", "--processes", "120"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
VISIBILITY = 40      # seconds before a lost worker's job is given to another


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("redis-server is not installed: `make test` installs it as root (.ci/system-deps.sh); "
                    "otherwise `sudo apt-get install redis-server`")
    tmp = tmp_path_factory.mktemp("redis")
    port, password = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", "",
                             "--appendonly", "no", "--requirepass", password, "--protected-mode", "yes"],
                            stdout=open(tmp / "redis.log", "w"), stderr=subprocess.STDOUT)
    url = f"redis://:{password}@127.0.0.1:{port}"
    import redis
    for _ in range(100):
        try:
            redis.Redis.from_url(url + "/0").ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def submissions(folder: Path, students: dict) -> Path:
    for sid, answers in students.items():
        corpus._write(folder, sid, corpus._nb(answers))
    return folder


def grade_cmd(course: Path, subs: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "dlcourse", "grade", "cnn", "--submissions", str(subs), "--out", str(out),
            "--course", str(course), "-q", "--no-feedback", *LIMITS, *extra]


def scores(out: Path) -> dict:
    with open(out / "grades.csv") as f:
        return {row["student_id"]: (row["score"], row["status"]) for row in csv.DictReader(f)}


def start_worker(url: str, work: Path, name: str) -> subprocess.Popen:
    work.mkdir(parents=True)
    return subprocess.Popen([sys.executable, "-m", "dlcourse", "worker", "--queue", url, "--work", str(work),
                             "--name", name, "--visibility-timeout", str(VISIBILITY), "--restore-interval", "1",
                             "--loglevel", "WARNING"],
                            env=ENV, cwd=work, start_new_session=True,
                            stdout=open(work.parent / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def log_lines(work: Path) -> list[list[str]]:
    path = work / "graded.log"
    return [line.split()[1:] for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition, seconds: float, what: str):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_queue_grades_as_local_run_with_a_worker_killed_and_the_coordinator_restarted(tmp_path, redis_url):
    require_bwrap()
    url = redis_url + "/0"
    subs = submissions(tmp_path / "submissions", STUDENTS)
    t0 = time.monotonic()
    local = subprocess.run(grade_cmd(make_course(tmp_path / "local"), subs, tmp_path / "out-local", "--jobs", "2"),
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    local_seconds = time.monotonic() - t0
    expected = scores(tmp_path / "out-local")
    assert {s: expected[s][0] for s in STUDENTS} == {"honest": "5.0", "honest_copy": "5.0",
                                                     "ref_no_part1": "3.0", "ref_no_part3": "3.0"}

    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    workers = {"w1": start_worker(url, w1, "w1"), "w2": start_worker(url, w2, "w2")}
    course = make_course(tmp_path / "queued")
    out = tmp_path / "out-queue"
    coordinator = None
    try:
        t1 = time.monotonic()
        coordinator = subprocess.Popen(grade_cmd(course, subs, out, "--queue", url), env=ENV,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # w1 is lost in the middle of a job (its machine gone: the worker and its grading process)
        running = wait_for(lambda: (w1 / "running.json").exists() and json.loads((w1 / "running.json").read_text()),
                           300, "w1 to start a job")
        time.sleep(2)
        os.killpg(workers["w1"].pid, signal.SIGKILL)
        workers["w1"].wait()
        lost_key = running["key"]
        wait_for(lambda: not _alive(running["pid"]), 30, "w1's grading process to die with it")
        # the coordinator is stopped once w2 has answered one job, then started again
        wait_for(lambda: any(line[2] == "done" for line in log_lines(w2)), 300, "w2 to finish a job")
        coordinator.send_signal(signal.SIGINT)
        first_output, _ = coordinator.communicate(timeout=60)
        again = subprocess.run(grade_cmd(course, subs, out, "--queue", url), env=ENV,
                               capture_output=True, text=True, timeout=900)
        queue_seconds = time.monotonic() - t1
        assert again.returncode == 0, first_output[-2000:] + again.stdout[-2000:] + again.stderr[-3000:]
    finally:
        if coordinator is not None and coordinator.poll() is None:
            coordinator.kill()
        for proc in workers.values():
            stop(proc)

    got = scores(out)
    assert {s: got[s] for s in STUDENTS} == {s: expected[s] for s in STUDENTS}, (got, expected)
    lines1, lines2 = log_lines(w1), log_lines(w2)
    done = [(key, who) for who, lines in (("w1", lines1), ("w2", lines2)) for key, _, what, *_ in lines
            if what == "done"]
    keys = [key for key, _ in done]
    assert len(keys) == len(set(keys)) == 3, f"graded more than once, or not at all: {done}"
    assert (lost_key, "w2") in done, f"the job w1 lost was not graded by w2: {done}"
    assert [k for k, _, what, *_ in lines1 if what == "done"].count(lost_key) == 0
    starts = [key for lines in (lines1, lines2) for key, _, what, *_ in lines if what == "start"]
    assert len(starts) == 4, f"expected 3 jobs and one start again after w1 was lost: {starts}"
    print(f"\nlocal run {local_seconds:.0f} s; queue run with a worker lost and a restart {queue_seconds:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_a_job_whose_worker_never_answers_times_out_into_a_row(tmp_path, redis_url):
    """No worker runs on this queue's database; the test holds the job's lock as a worker that
    took it and hangs would."""
    import redis
    url = redis_url + "/1"
    r = redis.Redis.from_url(url)
    subs = submissions(tmp_path / "submissions", {"silent": corpus.without("part2_answer")})
    course = make_course(tmp_path / "course")
    proc = subprocess.Popen(grade_cmd(course, subs, tmp_path / "out", "--queue", url, "--job-timeout", "3"),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        queued = wait_for(lambda: r.keys("dlcourse:queued:*"), 120, "the job to be queued")
        key = queued[0].decode().split(":", 2)[2]
        r.set(f"dlcourse:lock:{key}", "ghost-worker 0", ex=300)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    got = scores(tmp_path / "out")
    assert got["silent"][1] == "error"
    with open(tmp_path / "out" / "grades.csv") as f:
        row = next(row for row in csv.DictReader(f) if row["student_id"] == "silent")
    assert "timed out" in row["problems"] and "ghost-worker" in row["problems"], row["problems"]
    assert not r.exists(f"dlcourse:queued:{key}"), "a timed-out job must be queued again by the next run"
