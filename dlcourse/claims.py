"""Outcomes stated in the book's prose, checked by the code that measured them.

A chapter states results in words ("the simpler CD-1 does better", "the winner is
oversampling"). Every number in the prose is glued from the code, but a sentence saying which
model won is text: if a rebuild (another library version, another machine) flips the outcome,
the page would contradict its own table. So every such sentence is *claimed* in a hidden code cell
(tagged ``remove-cell``) right after the measurement::

    claim("the simpler CD-1 does better", ll_cd1 > ll_pcd1)

``claim`` stops the build when the outcome differs from what the prose says. The phrase is quoted
exactly as it stands in the chapter's Markdown, so ``tests/test_book_claims.py`` can check both
ways: every claimed phrase is still in the prose, and every sentence of the prose that states an
outcome it recognises ("beats", "better", "chance level", "within", ...) contains a claimed phrase.

Used by every chapter of the book (CONTRIBUTING.md, "A chapter").
"""
from __future__ import annotations


class ClaimFailed(AssertionError):
    """An outcome that the chapter's prose states did not happen in this build."""


def claim(says: str, holds, detail: str = "") -> None:
    """Fail the build unless ``holds`` is true.

    ``says`` is the phrase of the prose that states the outcome, exactly as written in the chapter
    (a non-empty string); ``holds`` the measured test (anything ``bool`` accepts, such as a NumPy
    bool); ``detail`` the measured numbers, shown when the claim fails. Returns None.
    """
    if not isinstance(says, str) or not says.strip():
        raise ValueError(f"says: expected the phrase of the prose that states the outcome, got {says!r}")
    if not bool(holds):
        message = (f"the chapter says {says!r}, but this build measured otherwise"
                   f"{': ' + detail if detail else ''}. Rewrite the sentence to say what was measured, "
                   "or find out why the result changed.")
        raise ClaimFailed(message)
