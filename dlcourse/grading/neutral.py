"""Student-chosen text made harmless for where it is shown: a terminal, a spreadsheet, a web page.

A submission's folder, file and zip-entry names, and the messages that quote them, are written by
the student. Each medium has its own way to turn text into action: escape sequences in a terminal
(``\\x1b]...`` can retitle a window or hide lines), formulas in a spreadsheet (a cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, per OWASP's "CSV injection"), markup and
script in a browser. One function per medium, applied where the text is written.
"""
from __future__ import annotations

import unicodedata

import bleach

MAX_MESSAGE = 300            # characters of one message about a submission, once neutralised
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def printable(text: object, limit: int | None = MAX_MESSAGE) -> str:
    """``text`` with every control and invisible formatting character (ANSI escapes, carriage
    returns, backspaces, bidirectional overrides, zero-width characters) written as a visible
    ``\\x1b``-style escape, a lone surrogate as ``\\udc80``, cut to ``limit`` characters."""
    out = []
    for ch in str(text):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                       if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    s = "".join(out)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def csv_cell(value: object) -> object:
    """A value for a spreadsheet cell: numbers as they are; text printable and, when it would
    start a formula, behind a leading apostrophe (OWASP's advice for CSV injection)."""
    if value is None or isinstance(value, (int, float)):
        return value
    raw = str(value)
    s = printable(raw, limit=None)
    if raw.startswith(_FORMULA_START) or raw.lstrip().startswith(_FORMULA_START):
        s = "'" + s
    return s


# What student HTML (an output, a written answer) may keep: text formatting, lists, tables, code,
# headings and links to web pages. No script, style, forms, frames, media or event handlers.
HTML_TAGS = frozenset(bleach.ALLOWED_TAGS) | {
    "p", "div", "span", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody",
    "tfoot", "tr", "th", "td", "caption", "del", "ins", "sup", "sub", "dl", "dt", "dd", "kbd", "samp", "var"}
HTML_ATTRIBUTES = {"*": ["class", "id", "title"], "a": ["href", "title"], "abbr": ["title"],
                   "acronym": ["title"], "th": ["colspan", "rowspan"], "td": ["colspan", "rowspan"]}
HTML_PROTOCOLS = frozenset({"http", "https", "mailto"})


def clean_html(text: object) -> str:
    """Student HTML made inert by bleach: tags outside ``HTML_TAGS`` are shown as text, attributes
    outside ``HTML_ATTRIBUTES`` (``onerror``, ``style``, ...) and links other than http(s) and
    mailto (``javascript:``, ``data:``) are removed."""
    return bleach.clean(str(text), tags=HTML_TAGS, attributes=HTML_ATTRIBUTES, protocols=HTML_PROTOCOLS,
                        strip=False, strip_comments=True)
