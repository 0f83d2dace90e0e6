"""Untrusted text made safe to show on one line.

Much of what Vetted shows comes from parties it does not trust with a terminal or a
label: catalog fields (model names, descriptions, publishers, mirror URLs), GGUF
metadata, claim contents, server reason phrases and headers, and the messages of the
libraries that refuse a signature. Printed raw, a carriage return or a newline forges a
line ("refused: …" that Vetted never wrote), an ESC starts a terminal escape sequence
(clear the screen, retitle the window, rewrite what was just printed), and a bidi
override (U+202E) or a zero-width character makes text read differently from what it is.

Data stays raw where it is stored (catalog, database, audit log); front ends call
`one_line` at display time on every piece of untrusted text they interpolate. Control
and format characters become visible escapes (`\\x1b`, `\\n`, `\\u202e`), so what was sent
is still shown, just never obeyed. Letters of every script, accents, CJK and emoji stay
as they are.
"""

from __future__ import annotations

import unicodedata

__all__ = ["one_line", "multi_line", "is_unsafe"]

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Cc: C0 controls, DEL, C1 controls. Cf: format characters (bidi embeddings, overrides and
# isolates, zero-width space/joiners, marks, BOM, soft hyphen, …). Zl/Zp: U+2028/U+2029,
# which several terminals and widgets treat as line breaks. Cs: lone surrogates, which
# cannot even be encoded for output.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_unsafe(ch: str) -> bool:
    """True for a character that must never reach a terminal or a one-line label raw."""
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def one_line(text: object) -> str:
    """`text` (any object; None shows as an empty string) as a single line with every
    control, format, line-separator or surrogate character written as a visible escape."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and s.isprintable():  # the common case: nothing to do
        return s
    return "".join(_escape(ch) if is_unsafe(ch) else ch for ch in s)


# Within running text (a model's reply, a chat message) newlines and tabs are meant, and
# zero-width joiners build emoji and scripts; everything a terminal would obey is not.
_KEEP_IN_TEXT = frozenset({"\n", "\t", "\u200c", "\u200d"})


def multi_line(text: object) -> str:
    """Like `one_line`, but keeps line breaks and tabs: for text that is meant to span
    lines (a model's streamed reply on a terminal), where an ESC, a carriage return or a
    bidi override must still never be obeyed."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and all(ch.isprintable() or ch in "\n\t" for ch in s):
        return s
    return "".join(ch if ch in _KEEP_IN_TEXT or not is_unsafe(ch) else _escape(ch) for ch in s)
