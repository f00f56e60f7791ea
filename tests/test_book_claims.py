"""Every outcome the chapters state in words is decided by the code that measured it.

Numbers come from `glue`. Verdicts ("beats", "does better", "chance level", "within the
differences between runs") are sentences, so each one is *claimed*: a hidden code cell (tagged
`remove-cell`) calls `dlcourse.claims.claim("<the phrase, as in the prose>", <measured test>)`,
which fails the build when the outcome differs (CONTRIBUTING.md, "A chapter").

This test reads the chapters' sources, without executing them:
- every sentence of the prose that states an outcome this test recognises contains a claimed
  phrase, unless it is listed in NOT_MEASURED (a theorem, a quoted publication, a definition);
- every claimed phrase still stands in the prose (a claim cannot outlive its sentence);
- every cell with a claim is removed from the page (the reader sees the sentence, not the check).

Check questions (`:::{check-question}` ... `:::`, tools/dlcourse_book.py) are not scanned: their
wrong options are false on purpose, and their feedback reasons from definitions; the numbers their
answers use are checked by `assert`s in hidden cells of the chapter, like any other number.
"""
import ast
import re

import pytest

from conftest import book_source
from dlcourse.claims import ClaimFailed, claim

CHAPTERS = ["shallow-deep", "cnn", "rnn", "autoencoders", "rbm"]

# Words and phrases that state an outcome: a comparison, a winner, a failure, a threshold.
VERDICT = re.compile(
    r"\b(beats?|beaten|better|worse|best|worst|fails?|failed|chance level|less than|more than|"
    r"fewer than|smaller than|larger than|greater than|higher than|lower than|falls? below|"
    r"stays? (?:at|on|below|above)|within|winner|wins?|outperforms?|helps? more|helped more|"
    r"does no better|no better than|never gets|too close to call|reproduces|the baseline|"
    r"as well as|about as well|closer|the same as|well below|well above|hundreds of times|"
    r"clearly|lifted|lifts?|above the|equally|close to|levelled off|orders of magnitude|faster than|"
    r"slower than|faster|slower)\b",
    re.IGNORECASE)

# Sentences with a verdict word that state no measured outcome of this build: a theorem, a
# published or quoted figure, a definition, or advice. (chapter, fragment of the sentence): reason.
NOT_MEASURED = {
    ("shallow-deep", "the measured accuracies stay within"):
        "the bound is the largest of the glued differences (max_diff): true by construction",
    ("shallow-deep", "still fail on new data: it *overfits*"): "a definition",
    ("shallow-deep", "With every core of this CPU at its best measured rate"):
        "an upper bound computed from the glued measured rate, by definition",
    ("shallow-deep", "build a deep MLP in Keras that beats a stated accuracy"): "the exercise's task",
    ("cnn", "compute nothing more than one"): "a theorem: a convolution of a convolution is a convolution",
    ("rnn", "and solves the task well below 0.01"): "a definition of solving the task",
    ("rnn", "Why does the simple network fail?"): "a question, answered by the measurements that follow",
    ("rnn", "A fair test needs a baseline that is hard to beat"): "advice",
    ("rnn", "no forecaster can beat it on average"): "a theorem about random walks",
    ("rnn", "when a network seems to beat it on real prices"): "advice",
    ("rnn", "train a Keras LSTM that beats the adding problem's baseline"): "the exercise's task",
    ("autoencoders", "An autoencoder can only beat it by not being flat"): "a consequence of the theorem just cited",
    ("autoencoders", "The best rank-$k$ approximation of the centred data"): "a theorem (Eckart and Young)",
    ("autoencoders", "The linear autoencoder cannot do better than PCA"): "a theorem (Baldi and Hornik)",
    ("autoencoders", "A linear autoencoder can do no better than PCA"): "a theorem; the measured part is claimed",
    ("autoencoders", "train an autoencoder that beats PCA at a small code size"): "the exercise's task",
    ("rbm", "there are no connections within a layer"): "a definition",
    ("rbm", "Without connections within a layer"): "a definition",
    ("rbm", "so they wander further from the data and sample the model better"): "the published argument for PCD, cited",
    ("rbm", "It is better described as an *energy-based generative model*"): "a matter of terms, argued in the note",
    ("rbm", "Within a few steps the noise turns into strokes"): "describes the pictures of the chains just drawn",
    ("rbm", "fill in missing pixels so as to beat mean imputation"): "the exercise's task",
}


def _split_source(text: str):
    """(prose, code cells): prose blocks (lists of lines) outside code and display maths, and
    each code cell as (options, source)."""
    prose, cells, block = [], [], []
    lines = text.split("\n")
    i = 0
    if lines and lines[0] == "---":                         # the jupytext header
        i = lines.index("---", 1) + 1
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(`{3,})(.*)$", line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence.group(1))
                       and not lines[j].strip("`"))
            if fence.group(2).startswith("{code-cell}"):
                body = lines[i + 1:end]
                options = [l for l in body if l.startswith(":")]
                cells.append(("\n".join(options), "\n".join(l for l in body if not l.startswith(":"))))
            i = end + 1
            continue
        if line.strip() == "$$" or (line.startswith("$$") and not line.rstrip().endswith("$$")):
            i = next(j for j in range(i + 1, len(lines)) if lines[j].strip().endswith("$$")) + 1
            continue
        if line.startswith(":::{check-question}"):             # a reader's exercise, not a result
            i = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip() == ":::") + 1
            continue
        if line.strip() and not line.startswith(("#", ":::", "<!--", "|---", ":class:")):
            block.append(line.strip())
        elif block:
            prose.append(block)
            block = []
        i += 1
    if block:
        prose.append(block)
    return prose, cells


def _sentences(block):
    text = " ".join(block)
    return [s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z*({$\-])|^- |\s+- (?=[A-Z*{$])", text) if s and s.strip()]


def _plain(sentence: str) -> str:
    """The sentence without roles, inline code and maths, where verdict words are not prose."""
    sentence = re.sub(r"\{[^}]+\}`[^`]*`", " ", sentence)
    sentence = re.sub(r"`[^`]*`", " ", sentence)
    return re.sub(r"\$[^$]*\$", " ", sentence)


def _claims(cells):
    """(phrase, options of its cell) for every claim(...) call in the code cells."""
    found = []
    for options, source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "claim"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append((node.args[0].value, options))
    return found


def chapter(name):
    prose, cells = _split_source((book_source() / "book" / f"{name}.md").read_text())
    return prose, cells, _claims(cells)


def _norm(text):
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_sentence_that_states_an_outcome_is_claimed(name):
    prose, _, claims = chapter(name)
    phrases = [_norm(phrase) for phrase, _ in claims]
    exempt = [fragment for (chap, fragment) in NOT_MEASURED if chap == name]
    typed = []
    for block in prose:
        for sentence in _sentences(block):
            words = VERDICT.findall(_plain(sentence))
            if (words and not any(p in _norm(sentence) for p in phrases)
                    and not any(f in _norm(sentence) for f in exempt)):
                typed.append(f"{sorted(set(w.lower() for w in words))}: {sentence}")
    assert not typed, (f"book/{name}.md states outcomes that no claim(...) decides; claim each one in a "
                       "hidden cell (dlcourse.claims), or list it in NOT_MEASURED with a reason:\n  "
                       + "\n  ".join(typed))


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_claimed_phrase_stands_in_the_prose(name):
    prose, _, claims = chapter(name)
    text = _norm(" ".join(" ".join(block) for block in prose))
    missing = [phrase for phrase, _ in claims if _norm(phrase) not in text]
    assert not missing, f"book/{name}.md claims phrases its prose no longer says: {missing}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_claims_are_checked_in_cells_removed_from_the_page(name):
    _, _, claims = chapter(name)
    shown = [phrase for phrase, options in claims if "remove-cell" not in options]
    assert not shown, f"book/{name}.md: tag the cells that claim these with remove-cell: {shown}"


def test_every_exemption_is_still_in_its_chapter():
    for (name, fragment), reason in NOT_MEASURED.items():
        prose, _, _ = chapter(name)
        text = _norm(" ".join(" ".join(block) for block in prose))
        assert _norm(fragment) in text, f"NOT_MEASURED: {fragment!r} is no longer in book/{name}.md; remove it"
        assert reason, f"NOT_MEASURED: give a reason for {fragment!r}"


def test_the_scanner_recognises_a_typed_verdict():
    prose, cells = _split_source("# T\n\nThe LSTM wins. Here\nthe simpler CD-1 does better than PCD.\n\n"
                                 "```{code-cell} ipython3\n:tags: [remove-cell]\nclaim('The LSTM wins', True)\n```\n")
    claims = _claims(cells)
    assert [p for p, _ in claims] == ["The LSTM wins"] and "remove-cell" in claims[0][1]
    sentences = _sentences(prose[0])
    unclaimed = [s for s in sentences if VERDICT.search(_plain(s)) and "The LSTM wins" not in s]
    assert unclaimed == ["Here the simpler CD-1 does better than PCD."]


def test_the_scanner_skips_check_questions_whose_wrong_options_are_false_on_purpose():
    prose, _ = _split_source("# T\n\nBefore.\n\n:::{check-question} Which is faster?\n- [ ] A beats B\n\n"
                             "  No.\n- [x] B\n\n  Yes.\n:::\n\nThe LSTM wins.\n")
    assert prose == [["Before."], ["The LSTM wins."]]


def test_claim_fails_the_build_when_the_outcome_flips():
    claim("the LSTM wins", True)
    with pytest.raises(ClaimFailed, match="the LSTM wins"):
        claim("the LSTM wins", False, "LSTM 0.2, SimpleRNN 0.1")
    with pytest.raises(ValueError, match="says"):
        claim("", True)
