"""Text from inputs as it may appear in messages: escaped and clipped.

An error message may quote a token from a file somebody else wrote (a scenario, a program it names). Quoting
only the token, escaping every control or unprintable character (no terminal escape sequence gets through)
and clipping long tokens keeps messages safe to print and keeps a foreign file's content out of them.
"""

from __future__ import annotations

from typing import Final

#: Longest token quoted in a message, in characters (before escaping).
TOKEN_LIMIT: Final = 40
#: Longest message text taken over from another component (the assembler), in characters.
MESSAGE_LIMIT: Final = 240

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def escape(text: str) -> str:
    """``text`` with control, unprintable and surrogate characters written as escapes (``\\x1b``, ``\\u2028``)."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def clip(text: str, limit: int = TOKEN_LIMIT) -> str:
    """At most ``limit`` characters of ``text``, escaped; ``...`` marks a cut."""
    cut = len(text) > limit
    return escape(text[:limit]) + ("..." if cut else "")


def token(text: str, limit: int = TOKEN_LIMIT) -> str:
    """A token quoted for a message: `` `name` ``, escaped and clipped."""
    return f"`{clip(text, limit)}`"


def message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message written by another component, made safe the same way (it may quote a foreign file)."""
    return clip(text, limit)
