"""Text from untrusted input made safe to print: one visible character for each one that is not.

Error messages echo source lines and file names that other people wrote. An escape sequence in them
must not reach a terminal raw, and neither may bidirectional overrides that reorder what is shown.
Each unsafe character becomes exactly one visible stand-in, so a caret under column *n* still points
at column *n*: C0 controls become their Unicode "control pictures" (ESC shows as ``␛``), DEL ``␡``,
a tab one space, and other unprintable characters (C1 controls, format characters such as U+202E,
line and paragraph separators) ``�``.
"""

from __future__ import annotations

from typing import Final

_CONTROL_PICTURES: Final = 0x2400
_DEL_PICTURE: Final = "\u2421"
_REPLACEMENT: Final = "\ufffd"


def _safe(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if char == "\t":
        return " "
    if code < 0x20:
        return chr(_CONTROL_PICTURES + code)
    if code == 0x7F:
        return _DEL_PICTURE
    return _REPLACEMENT


def printable(text: str) -> str:
    """``text`` with every unprintable character replaced by one visible character (same length)."""
    return text if text.isprintable() else "".join(map(_safe, text))


def shorten(text: str, limit: int = 40) -> str:
    """At most ``limit`` characters of ``text`` (for quoting input in messages), ``…`` marking a cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
