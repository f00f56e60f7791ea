"""The book builds with every chapter executed, no warning, and no error on any page."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nbtools import ROOT, nbgrader_env

HTML = ROOT / "_build" / "html"


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


@pytest.fixture(scope="module")
def built_book():
    """Build the book as `make book` does (same _build folder, so the execution cache is shared)."""
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going"], cwd=ROOT,
                          env=nbgrader_env(), capture_output=True, text=True)
    return proc


def test_book_builds_without_warnings(built_book):
    assert built_book.returncode == 0, built_book.stdout[-6000:] + built_book.stderr[-6000:]


@pytest.mark.parametrize("page", toc_files())
def test_every_page_is_rendered_without_errors(built_book, page):
    html = HTML / f"{page}.html"
    assert html.exists(), f"{html} was not built"
    text = html.read_text()
    assert "Traceback (most recent call last)" not in text
    assert not re.search(r'class="[^"]*\bstderr\b', text), f"{page} shows stderr output"
