"""``make release``: regenerate the student notebooks in exercises/ from solutions/.

Runs ``nbgrader generate_assignment`` for each assignment folder in ``solutions/`` (or only those
named on the command line). nbgrader strips the solutions and hidden tests, locks the test cells
and records checksums, which grading later uses to detect edited test cells. It also records the
assignment in the course's gradebook (``gradebook.db`` unless ``--db-url`` says otherwise).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def assignments(root: Path = ROOT) -> list[str]:
    """The assignment names: the folders of ``solutions/`` that hold a notebook."""
    source = root / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_env() -> dict:
    """Environment for nbgrader: this interpreter's bin first (nbgrader runs `alembic` from PATH)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return env


def release(names: list[str] | None = None, *, root: Path = ROOT, release_dir: str | None = None,
            db_url: str | None = None, quiet: bool = False) -> list[str]:
    """Generate the student version of each assignment; return the names released."""
    known = assignments(root)
    names = names or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"no such assignment in solutions/: {', '.join(unknown)}; the assignments are: {', '.join(known)}")
    for name in names:
        cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"]
        if release_dir:
            cmd.append(f"--CourseDirectory.release_directory={release_dir}")
        if db_url:
            cmd.append(f"--CourseDirectory.db_url={db_url}")
        result = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result.stdout}\n{result.stderr}")
        if not quiet:
            print(f"released {name}: solutions/{name}/ -> {release_dir or 'exercises'}/{name}/")
    return names


def release_to_exchange(exchange: Path, names: list[str] | None = None, *, root: Path = ROOT,
                        course_id: str = "dlcourse") -> list[str]:
    """Release the student notebooks of exercises/ into a local nbgrader exchange (``make lab``).

    On one machine without a hub, this is what the instructor's ``nbgrader release_assignment``
    does on a hub: JupyterLab's Assignments panel then lists the assignments, fetches them into
    the folder Lab serves and submits them back into the exchange's inbound folder, offline. Only
    the assignments whose released notebooks differ from exercises/ are released again; the
    exchange's inbound (the submissions) is never touched. Returns the names released.
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeReleaseAssignment
    from traitlets.config import Config

    exchange = Path(exchange).resolve()
    done = []
    for name in names or assignments(root):
        source = root / "exercises" / name
        outbound = exchange / course_id / "outbound" / name
        files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file()
                       and ".ipynb_checkpoints" not in p.parts)
        if outbound.is_dir() and all((outbound / f).is_file() and (outbound / f).read_bytes() == (source / f).read_bytes()
                                     for f in files):
            continue
        cfg = Config()
        cfg.CourseDirectory.root = str(root)
        cfg.CourseDirectory.release_directory = "exercises"
        cfg.CourseDirectory.course_id = course_id
        cfg.CourseDirectory.assignment_id = name
        cfg.Exchange.root = str(exchange)
        coursedir = CourseDirectory(config=cfg)
        ExchangeReleaseAssignment(coursedir=coursedir, config=cfg, force=True).start()
        done.append(name)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlcourse.release", description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all in solutions/)")
    parser.add_argument("--db-url", help="nbgrader gradebook URL (default: the course's gradebook.db)")
    parser.add_argument("--exchange", type=Path,
                        help="instead: release the notebooks of exercises/ into this local nbgrader exchange (make lab)")
    args = parser.parse_args(argv)
    try:
        if args.exchange:
            done = release_to_exchange(args.exchange, args.assignments or None)
            print(f"local exchange {args.exchange}: " + (f"released {', '.join(done)}" if done else "up to date"))
            return 0
        release(args.assignments or None, db_url=args.db_url)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
