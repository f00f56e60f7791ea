import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))


# --- The built book, shared by tests/test_book.py and tests/test_browser.py (one build per session).
# DLCOURSE_BOOK_SOURCE (default: this repository) and DLCOURSE_BOOK_OUTPUT (jupyter-book's
# --path-output; default: the source folder, so `make book`'s _build/ and its execution cache are
# reused) let a developer test a copy of the book without touching the shared _build/.
import subprocess  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuiltBook:
    source: Path                          # the book's root folder (_config.yml, _toc.yml)
    build: Path                           # its _build folder
    proc: subprocess.CompletedProcess     # the `jupyter-book build` run

    @property
    def html(self) -> Path:
        return self.build / "html"

    def log(self, chars: int = 6000) -> str:
        return self.proc.stdout[-chars:] + self.proc.stderr[-chars:]


def book_source() -> Path:
    return Path(os.environ.get("DLCOURSE_BOOK_SOURCE", ROOT)).resolve()


def book_build_dir() -> Path:
    """The book's _build folder: <DLCOURSE_BOOK_OUTPUT or the source>/_build."""
    return Path(os.environ.get("DLCOURSE_BOOK_OUTPUT", book_source())).resolve() / "_build"


@pytest.fixture(scope="session")
def built_book() -> BuiltBook:
    """Build the book as `make book` does: every chapter executed (or taken from the cache), -W."""
    from dlcourse.release import nbgrader_env

    source = book_source()
    output = book_build_dir().parent
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"]
    if output != source:
        cmd += ["--path-output", str(output)]
    proc = subprocess.run(cmd, cwd=source, env=nbgrader_env(), capture_output=True, text=True)
    return BuiltBook(source, output / "_build", proc)


@pytest.fixture(scope="session")
def book(built_book) -> BuiltBook:
    """The built book, for tests of its pages: fails (never skips) when the build failed."""
    assert built_book.proc.returncode == 0, "the book did not build:\n" + built_book.log()
    return built_book
