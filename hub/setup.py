"""Set up this machine for the course's JupyterHub (`make hub` runs it, as root).

    .venv/bin/python hub/setup.py [--instructor instructor] [--students student1 student2 student3]
                                  [--state .hub] [--exchange /srv/nbgrader/exchange]

What it does, each step only when it is not done yet (running it again changes nothing and loses
nothing):

1. creates the local system users (group ``dlcourse``), each with a random password, written to
   ``<state>/passwords.txt`` (readable by root only; for the demo: a real class logs in with the
   university's accounts, book/instructors.md); a created user's home is private (0700), so one
   student cannot read another's notebooks;
2. creates nbgrader's exchange folder, writable by everyone with the sticky bit (1777, as
   nbgrader's documentation says for a single-host hub);
3. lets the users reach the course's Python: where a folder above ``.venv`` or its interpreter is
   closed to other users (a pyenv Python under /root, say), grants the group ``dlcourse`` the
   right to pass through it (an ACL, ``setfacl -m g:dlcourse:x``: not to list or read it), then
   checks, as each user, that ``import dlcourse`` works;
4. makes the instructor's course folder ``~instructor/dlcourse`` from this repository (its
   nbgrader_config.py, solutions/ and exercises/), with the students in its gradebook;
5. writes ``<state>/users.json``, which hub/jupyterhub_config.py reads: who is an instructor.
"""
from __future__ import annotations

import argparse
import csv
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HUB = Path(__file__).resolve().parent
COURSE = HUB.parent
GROUP = "dlcourse"
VENV_BIN = Path(sys.executable).parent
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise SystemExit(f"hub/setup.py: `{' '.join(cmd)}` failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_users(names: list[str], state: Path) -> dict[str, str]:
    """Create the missing users; their passwords, {name: password} (existing users keep theirs)."""
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        run("groupadd", GROUP)
    passwords_file = state / "passwords.txt"
    passwords = {}
    if passwords_file.exists():
        for line in passwords_file.read_text().splitlines():
            name, _, password = line.partition(" ")
            passwords[name] = password
    for name in names:
        if not user_exists(name):
            run("useradd", "--create-home", "--shell", "/bin/bash", "--groups", GROUP, name)
            passwords[name] = secrets.token_urlsafe(12)
            run("chpasswd", input=f"{name}:{passwords[name]}\n")
            os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
            print(f"created user {name}")
        elif GROUP not in [g.gr_name for g in grp.getgrall() if name in g.gr_mem]:
            run("usermod", "--append", "--groups", GROUP, name)
        home = Path(pwd.getpwnam(name).pw_dir)
        if home.stat().st_mode & 0o007:
            print(f"warning: {home} can be read by other users: `chmod 700 {home}` keeps students' work private",
                  file=sys.stderr)
    fd = os.open(passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{n} {p}\n" for n, p in passwords.items())
    return passwords


def ensure_exchange(exchange: Path) -> None:
    exchange.mkdir(parents=True, exist_ok=True)
    os.chown(exchange, 0, 0)
    os.chmod(exchange, 0o1777)
    for parent in exchange.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise SystemExit(f"hub/setup.py: the exchange {exchange} is inside {parent}, which other users "
                             "cannot enter; choose another --exchange")


def ensure_reachable(paths: list[Path], users: list[str]) -> None:
    """Let the group pass through every closed folder above the given paths; check as each user."""
    closed = set()
    for path in paths:
        for folder in [path, *path.parents]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                closed.add(folder)
    for folder in sorted(closed):
        if shutil.which("getfacl") and re.search(rf"^group:{GROUP}:.?.?x", run("getfacl", "-c", str(folder)).stdout, re.M):
            continue    # granted by an earlier run
        if shutil.which("setfacl") is None:
            raise SystemExit(f"hub/setup.py: {folder} is closed to other users and setfacl is missing: "
                             "`apt-get install acl` (make hub does), or move the course somewhere they can read")
        run("setfacl", "-m", f"g:{GROUP}:x", str(folder))
        print(f"granted the group {GROUP} passage through {folder} (setfacl -m g:{GROUP}:x)")
    for user in users:
        probe = subprocess.run([RUNUSER, "-u", user, "--", str(VENV_BIN / "python"), "-c",
                                "import dlcourse, nbgrader, jupyterhub"], capture_output=True, text=True,
                               cwd="/", env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
        if probe.returncode != 0:
            raise SystemExit(f"hub/setup.py: {user} cannot use the course's Python {VENV_BIN / 'python'}:\n"
                             f"{probe.stderr[-2000:]}")


def ensure_course(instructor: str, students: list[str]) -> Path:
    """~instructor/dlcourse: the course's nbgrader folder, owned by the instructor."""
    account = pwd.getpwnam(instructor)
    course = Path(account.pw_dir) / "dlcourse"
    if not course.exists():
        course.mkdir()
        shutil.copy2(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
        for folder in ("solutions", "exercises"):
            shutil.copytree(COURSE / folder, course / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        for root, dirs, files in os.walk(course):
            for name in [root, *(os.path.join(root, f) for f in dirs + files)]:
                os.chown(name, account.pw_uid, account.pw_gid)
        print(f"made the course folder {course}")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        writer = csv.writer(f)
        writer.writerow(["id"])
        writer.writerows([s] for s in students)
    os.chmod(f.name, 0o644)
    try:
        run(RUNUSER, "-u", instructor, "--", str(VENV_BIN / "nbgrader"), "db", "student", "import", f.name,
            cwd=course, env=user_env())
    finally:
        os.unlink(f.name)
    return course


def user_env() -> dict:
    """The environment of a hub user's commands (as the spawner gives it; hub/jupyterhub_config.py)."""
    return {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_ENABLE_ONEDNN_OPTS": "0", "LANG": "C.UTF-8"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructor", default="instructor")
    parser.add_argument("--students", nargs="+", default=["student1", "student2", "student3"])
    parser.add_argument("--state", type=Path, default=COURSE / ".hub",
                        help="the hub's own files: database, cookie secret, users.json, passwords.txt")
    parser.add_argument("--exchange", type=Path, default=Path("/srv/nbgrader/exchange"))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("hub/setup.py: run it as root (it creates users and the exchange): sudo make hub", file=sys.stderr)
        return 2
    users = [args.instructor, *args.students]
    bad = [u for u in users if not u.replace("-", "").replace("_", "").isalnum() or not u[0].isalpha()]
    if bad or len(set(users)) != len(users):
        print(f"hub/setup.py: user names must be distinct, start with a letter and use letters, digits, - and _: "
              f"{bad or users}", file=sys.stderr)
        return 2
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    ensure_users(users, state)
    ensure_exchange(args.exchange.resolve())
    python = Path(os.path.realpath(VENV_BIN / "python"))
    ensure_reachable([VENV_BIN, python.parent, COURSE / "dlcourse", HUB / "roles"], users)
    course = ensure_course(args.instructor, args.students)
    (state / "users.json").write_text(json.dumps({"instructors": [args.instructor], "students": args.students,
                                                  "course": str(course), "exchange": str(args.exchange.resolve())},
                                                 indent=1) + "\n")
    print(f"hub users: instructor {args.instructor}; students {' '.join(args.students)}; "
          f"passwords of the users made here: {state / 'passwords.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
