"""`dlcourse release-feedback` prepares dlcourse grade's feedback for nbgrader's release_feedback.

The whole path through a real exchange is in tests/test_hub.py; here, what it copies and whom it
leaves out."""
import os

import pytest

from dlcourse.feedback_release import prepare

A = "shallow_deep"


def _submitted(course, student, secret=b"s3cret", timestamp=b"2026-11-29 20:00:00.000000 UTC"):
    folder = course / "submitted" / student / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text("{}")
    (folder / "timestamp.txt").write_bytes(timestamp)
    (folder / "submission_secret.txt").write_bytes(secret)
    return folder


def _feedback(out, student, page=f"{A}.html"):
    folder = out / "feedback" / student / A
    folder.mkdir(parents=True)
    (folder / page).write_text("<html>Score</html>")
    return folder


def test_copies_the_submissions_timestamp_and_secret_next_to_each_page(tmp_path):
    course, out = tmp_path / "course", tmp_path / "course" / "grading-out"
    _submitted(course, "ada", secret=b"abc")
    _submitted(course, "alan", secret=b"xyz")
    fa, fb = _feedback(out, "ada"), _feedback(out, "alan")
    ready, left_out = prepare(course, out / "feedback", A)
    assert ready == ["ada", "alan"] and left_out == []
    assert (fa / "submission_secret.txt").read_bytes() == b"abc"
    assert (fb / "submission_secret.txt").read_bytes() == b"xyz"
    assert (fa / "timestamp.txt").read_bytes().startswith(b"2026-11-29")


def test_leaves_out_students_without_a_collected_submission(tmp_path):
    course, out = tmp_path / "course", tmp_path / "course" / "grading-out"
    _submitted(course, "ada")
    _feedback(out, "ada")
    _feedback(out, "grace", page="index.html")     # dlcourse grade's page for "no submission"
    ready, left_out = prepare(course, out / "feedback", A)
    assert ready == ["ada"] and left_out == ["grace"]


def test_a_secret_that_is_a_link_or_too_large_is_not_copied(tmp_path):
    course, out = tmp_path / "course", tmp_path / "course" / "grading-out"
    (tmp_path / "private").write_text("the instructor's file")
    link = _submitted(course, "mallory")
    (link / "submission_secret.txt").unlink()
    os.symlink(tmp_path / "private", link / "submission_secret.txt")
    _submitted(course, "big", secret=b"x" * 10_000)
    fm, fb = _feedback(out, "mallory"), _feedback(out, "big")
    ready, left_out = prepare(course, out / "feedback", A)
    assert ready == [] and sorted(left_out) == ["big", "mallory"]
    assert not (fm / "submission_secret.txt").exists() and not (fb / "submission_secret.txt").exists()


def test_no_feedback_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="dlcourse grade"):
        prepare(tmp_path, tmp_path / "grading-out" / "feedback", A)
