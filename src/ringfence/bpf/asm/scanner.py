"""Tokens that remember where they came from, so every error can point at its column.

Sources may come from anyone, so the scanner bounds the work: lines of at most :data:`MAX_LINE`
characters and at most :data:`MAX_TOKENS` tokens per source (generous for any program of 4096
instructions), and error text never echoes a control character (:mod:`ringfence.bpf.printable`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ringfence.bpf.insn import MAXINSNS
from ringfence.bpf.printable import printable, shorten
from ringfence.errors import AsmError

#: Longest source line, in characters.
MAX_LINE: Final = 4096
#: Most tokens in one source: 32 per instruction of the longest program.
MAX_TOKENS: Final = 32 * MAXINSNS


class Tok(enum.Enum):
    NAME = "name"
    NUMBER = "number"
    STRING = "string"
    PUNCT = "punct"
    EOL = "end of line"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str
    line: int
    column: int  # 1-based
    value: int = 0

    def describe(self) -> str:
        return "end of line" if self.kind is Tok.EOL else repr(shorten(self.text))


_PATTERN: Final = re.compile(r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<comment>;.*|//.*)
  | (?P<number>[0-9][0-9A-Za-z_]*)
  | (?P<name>%?[A-Za-z_.][A-Za-z0-9_.]*)
  | (?P<string>"[^"\n]*")
  | (?P<punct><<|>>|[#\[\]()+*&|,:])
""", re.VERBOSE)


def _number(text: str) -> int:
    """Hex ``0x``, binary ``0b``, octal ``0o`` or C-style ``0755``, else decimal."""
    digits = text.replace("_", "")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return int(digits, 8)
    return int(digits, 0)


class Scanner:
    """Splits a source into per-line token lists. ``#`` as the first character of a line starts a comment."""

    def __init__(self, source: str, filename: str = "<input>") -> None:
        self.lines = source.splitlines()
        self.filename = filename
        self.count = 0

    def error(self, message: str, line: int, column: int, *, echo: bool = True) -> AsmError:
        """An error at ``line:column``; the line is echoed (made printable) unless ``echo`` is false."""
        text = self.lines[line - 1] if echo and 0 < line <= len(self.lines) else ""
        return AsmError(printable(message), line=line, column=column, source_line=printable(text),
                        filename=printable(self.filename))

    def tokens(self) -> Iterator[list[Token]]:
        """One list per non-empty line, each ending with an EOL token."""
        for number, text in enumerate(self.lines, start=1):
            if len(text) > MAX_LINE:
                raise self.error(f"line is longer than {MAX_LINE} characters", number, MAX_LINE + 1, echo=False)
            stripped = text.lstrip()
            if not stripped or stripped.startswith("#"):  # no statement starts with '#'
                continue
            line = list(self._scan(text, number))
            self.count += len(line)
            if self.count > MAX_TOKENS:
                raise self.error(f"source has more than {MAX_TOKENS} tokens; no program needs that many", number,
                                 line[0].column)
            if len(line) > 1:
                yield line

    def _scan(self, text: str, line: int) -> Iterator[Token]:
        pos = 0
        while pos < len(text):
            m = _PATTERN.match(text, pos)
            if m is None:
                raise self.error(f"unexpected character {text[pos]!r}", line, pos + 1)  # repr escapes it
            kind = m.lastgroup
            value = m.group()
            if kind == "number":
                try:
                    yield Token(Tok.NUMBER, value, line, pos + 1, _number(value))
                except ValueError:
                    raise self.error(f"malformed number {shorten(value)!r}", line, pos + 1) from None
            elif kind == "name":
                yield Token(Tok.NAME, value, line, pos + 1)
            elif kind == "string":
                yield Token(Tok.STRING, value[1:-1], line, pos + 1)
            elif kind == "punct":
                yield Token(Tok.PUNCT, value, line, pos + 1)
            pos = m.end()
        yield Token(Tok.EOL, "", line, len(text) + 1)

