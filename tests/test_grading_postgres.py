"""``dlcourse grade`` records grades in a PostgreSQL gradebook (nbgrader's ``db_url``).

The fixture starts a real PostgreSQL server from Debian's packages (installed by
``.ci/system-deps.sh``, which ``make test`` runs) in a temporary folder, listening on loopback only,
and stops it afterwards. Without PostgreSQL the test fails and says how to install it.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from nbtools import Exercise, submission

sys.path.insert(0, str(Path(__file__).parent))
from test_grading import make_course, require_bwrap  # noqa: E402

from dlcourse.grading import runner, sandbox  # noqa: E402


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed: `make test` installs the Debian package "
                    "`postgresql` as root (.ci/system-deps.sh); otherwise `sudo apt-get install postgresql`")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    # Not under pytest's temporary folder: the postgres user must be able to reach it.
    data = Path(tempfile.mkdtemp(prefix="dlcourse-pg-"))
    run_as: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:        # PostgreSQL refuses to run as root: use its own account
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, but there is no `postgres` user (install the Debian package postgresql)")
        user = "postgres"
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    sock_dir = data / "sock"
    subprocess.run(run_as + [initdb, "-D", str(data / "db"), "-A", "trust", "-U", user, "--no-sync"],
                   check=True, capture_output=True, cwd=data)
    subprocess.run(run_as + ["mkdir", "-p", str(sock_dir)], check=True, cwd=data)
    proc = subprocess.run(run_as + [pg_ctl, "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-t", "60",
                                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock_dir} -c fsync=off",
                                    "start"], capture_output=True, text=True, cwd=data, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {proc.stdout} {proc.stderr} {(data / 'log').read_text() if (data / 'log').exists() else ''}")
    try:
        subprocess.run(run_as + [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "dlcourse"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg2://{user}@127.0.0.1:{port}/dlcourse"
    finally:
        subprocess.run(run_as + [pg_ctl, "-D", str(data / "db"), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_grades_go_to_a_postgresql_gradebook(postgres, tmp_path):
    require_bwrap()
    from nbgrader.api import Gradebook
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    ex = Exercise("cnn")
    course = make_course(tmp_path)
    subs = tmp_path / "submissions"
    d = subs / "pg_part2" / "cnn"
    d.mkdir(parents=True)
    nbformat.write(submission(ex, {"part2_answer": ex.source("part2_answer")}), d / "cnn.ipynb")
    (subs / "pg_broken.ipynb").write_text("{ not json")
    opts = runner.Options(assignment="cnn", submissions=subs, out=tmp_path / "out", jobs=2, course=course,
                          db_url=postgres, quiet=True, feedback=True,
                          limits=sandbox.Limits(cell_timeout=60, notebook_timeout=240))
    outcome = runner.grade(opts)
    rows = {r["export"]["student_id"]: r for r in outcome.rows}
    assert rows["pg_part2"]["export"]["score"] == 1.0 and rows["pg_part2"]["status"] == "ok"
    assert rows["pg_broken"]["status"] == "broken" and rows["pg_broken"]["export"]["score"] == 0.0
    assert not (course / "gradebook.db").exists(), "nothing may be written to the SQLite gradebook"
    with Gradebook(postgres, "dlcourse") as gb:
        assert gb.find_submission("cnn", "pg_part2").score == 1.0
        assert gb.find_grade("part2_tests", "cnn", "cnn", "pg_part2").auto_score == 1.0
        assert {s.id for s in gb.students} >= {"pg_part2", "pg_broken"}
        assert gb.find_submission("cnn", "pg_broken").score == 0.0
    assert (tmp_path / "out" / "feedback" / "pg_part2" / "cnn" / "cnn.html").exists()
