"""Where something is in an input: file, line and column, and the offset-to-line map that finds them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ringfence.errors import InputError


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a named input. ``line``/``column`` are 1-based, columns count characters; 0 means unknown
    (a value built in Python rather than read from a file)."""

    file: str
    line: int = 0
    column: int = 0

    def error(self, message: str) -> InputError:
        """An :class:`InputError` at this place."""
        return InputError(message, file=self.file, line=self.line, column=self.column)

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class LineMap:
    """Turns character offsets of one text into positions; built once per document, one bisect per lookup."""

    __slots__ = ("_file", "_starts")

    def __init__(self, text: str, file: str) -> None:
        self._file = file
        starts = [0]
        find = text.find
        at = find("\n")
        while at >= 0:
            starts.append(at + 1)
            at = find("\n", at + 1)
        self._starts = starts

    @property
    def file(self) -> str:
        return self._file

    def pos(self, offset: int) -> Pos:
        index = bisect.bisect_right(self._starts, offset) - 1
        return Pos(self._file, index + 1, offset - self._starts[index] + 1)

    def error(self, offset: int, message: str) -> InputError:
        return self.pos(offset).error(message)
