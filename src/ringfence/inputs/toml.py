"""TOML 1.0 with positions: the same values as the standard library's ``tomllib``, plus where each was written.

``tomllib`` returns plain values only, so errors about a document's *meaning* could not say where the
problem is. This reader parses the whole language itself (strings and escapes, numbers, dates and times,
arrays, inline tables, dotted keys, tables and arrays of tables, and the rules for defining each table only
once) into :mod:`ringfence.inputs.nodes`. It accepts exactly what ``tomllib`` accepts and gives the same
values (``tests/inputs`` checks that on generated and corpus documents); on top, it bounds nesting depth and
the number of values (:class:`ringfence.inputs.nodes.Limits`), where ``tomllib`` would recurse until
Python's recursion limit.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Final, TypeAlias

from ringfence.errors import InputError
from ringfence.inputs.nodes import DEFAULT_LIMITS, Array, Limits, Member, Node, Scalar, Table, table
from ringfence.inputs.position import LineMap, Pos
from ringfence.inputs.text import escape, token

_BARE: Final = frozenset(string.ascii_letters + string.digits + "-_")
_HEX: Final = frozenset(string.hexdigits)
_ESCAPES: Final = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}

# Runs of characters a string may hold as they are: no delimiter, no backslash, no control character (tab
# allowed; newline too in multi-line strings).
_BASIC_RUN: Final = re.compile(r'[^"\\\x00-\x08\x0a-\x1f\x7f]*')
_MULTI_BASIC_RUN: Final = re.compile(r'[^"\\\x00-\x08\x0b-\x1f\x7f]*')
_LITERAL_RUN: Final = re.compile(r"[^'\x00-\x08\x0a-\x1f\x7f]*")
_MULTI_LITERAL_RUN: Final = re.compile(r"[^'\x00-\x08\x0b-\x1f\x7f]*")
_COMMENT_RUN: Final = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_SPACES: Final = re.compile(r"[ \t]*")
_BLANKS: Final = re.compile(r"[ \t\n]*")
_BARE_RUN: Final = re.compile(r"[A-Za-z0-9_-]+")

_TIME: Final = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
_DATE_TIME: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                               rf"(?:[Tt ]{_TIME}(?:([Zz])|([+-])([0-9]{{2}}):([0-9]{{2}}))?)?")
_LOCAL_TIME: Final = re.compile(_TIME)
_NUMBER: Final = re.compile(r"""
    0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*
  | 0o[0-7](?:_?[0-7])*
  | 0b[01](?:_?[01])*
  | [+-]?(?:0|[1-9](?:_?[0-9])*)(?P<frac>\.[0-9](?:_?[0-9])*)?(?P<exp>[eE][+-]?[0-9](?:_?[0-9])*)?
""", re.VERBOSE)
_SPECIAL_FLOATS: Final = ("+inf", "-inf", "+nan", "-nan", "inf", "nan")

# How a table came to exist; decides whether it may be defined (again) by a header or extended by dotted keys.
_IMPLICIT: Final = 0     # a prefix of a header (`a` in [a.b]): a later [a] may still define it
_HEADER: Final = 1       # defined by [a] or an element of [[a]]
_DOTTED_OPEN: Final = 2  # created by dotted keys in the current section: more dotted keys may extend it
_DOTTED: Final = 3       # created by dotted keys in an earlier section: closed


class _Tab:
    """A table while it is being built."""

    __slots__ = ("depth", "members", "pos", "state")

    def __init__(self, pos: Pos, state: int, depth: int) -> None:
        self.members: dict[str, tuple[Pos, _Tab | _Aot | Node]] = {}
        self.pos = pos
        self.state = state
        self.depth = depth


class _Aot:
    """An array of tables while it is being built."""

    __slots__ = ("pos", "tables")

    def __init__(self, pos: Pos, first: _Tab) -> None:
        self.pos = pos
        self.tables = [first]


_Slot: TypeAlias = "_Tab | _Aot | Node"
_Key: TypeAlias = list[tuple[str, int]]  # parts with their offsets


def _dotted(key: _Key, upto: int | None = None) -> str:
    return token(".".join(part for part, _ in key[:upto]), 60)


class _Reader:
    def __init__(self, text: str, file: str, limits: Limits) -> None:
        # TOML lets a parser read CRLF as LF everywhere, strings included; positions are unchanged by it.
        self.src = text.replace("\r\n", "\n")
        self.lines = LineMap(self.src, file)
        self.limits = limits
        self.nodes = 0
        self.root = _Tab(Pos(file, 1, 1), _HEADER, 0)
        self.pending: list[_Tab] = []

    # -- plumbing ------------------------------------------------------------------------------------------------

    def fail(self, at: int, message: str) -> InputError:
        return self.lines.error(at, message)

    def count(self, at: int, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self.fail(at, f"document has more than {self.limits.max_nodes} values")
        if depth > self.limits.max_depth:
            raise self.fail(at, f"values nest deeper than {self.limits.max_depth} levels")

    def char(self, at: int) -> str:
        return self.src[at:at + 1]

    def skip_ws(self, at: int) -> int:
        return _SPACES.match(self.src, at).end()  # type: ignore[union-attr]

    def skip_comment(self, at: int) -> int:
        if self.char(at) != "#":
            return at
        end = _COMMENT_RUN.match(self.src, at + 1).end()  # type: ignore[union-attr]
        if end < len(self.src) and self.src[end] != "\n":
            raise self.fail(end, f"control character {escape(self.src[end])} in a comment")
        return end

    def skip_blank(self, at: int) -> int:
        """Whitespace, newlines and comments, as arrays allow between their values."""
        while True:
            at = _BLANKS.match(self.src, at).end()  # type: ignore[union-attr]
            if self.src[at:at + 1] != "#":
                return at
            at = self.skip_comment(at)

    def expect_line_end(self, at: int) -> int:
        at = self.skip_comment(self.skip_ws(at))
        if at < len(self.src) and self.src[at] != "\n":
            raise self.fail(at, f"expected the end of the line, found {token(self.src[at])}")
        return at + 1

    # -- document ------------------------------------------------------------------------------------------------

    def document(self) -> Table:
        section = self.root
        at, end = 0, len(self.src)
        while at < end:
            at = self.skip_ws(at)
            ch = self.char(at)
            if ch == "\n":
                at += 1
                continue
            if ch == "":
                break
            if ch == "[":
                for opened in self.pending:
                    opened.state = _DOTTED
                self.pending.clear()
                if self.char(at + 1) == "[":
                    at, section = self.array_header(at)
                else:
                    at, section = self.table_header(at)
            elif ch in _BARE or ch in "\"'":
                at = self.key_value(at, section)
            elif ch != "#":
                raise self.fail(at, f"expected a key, a [table] or a comment, found {token(ch)}")
            at = self.expect_line_end(at)
        return self.finish_table(self.root)

    def header_key(self, at: int, closing: str) -> tuple[int, _Key]:
        at, key = self.key(self.skip_ws(at))
        if not self.src.startswith(closing, at):
            raise self.fail(at, f"expected {token(closing)} to close the table header")
        return at + len(closing), key

    def walk(self, key: _Key, header: int) -> _Tab:
        """The table a header's key prefix names, creating missing ones; arrays of tables lead to their last."""
        here = self.root
        for index, (part, offset) in enumerate(key):
            slot = here.members.get(part)
            if slot is None:
                pos = self.lines.pos(offset)
                self.count(offset, here.depth + 1)
                child = _Tab(pos, _IMPLICIT, here.depth + 1)
                here.members[part] = (pos, child)
                here = child
                continue
            value = slot[1]
            if isinstance(value, _Aot):
                here = value.tables[-1]
            elif isinstance(value, _Tab):
                here = value
            else:
                raise self.fail(header, f"{_dotted(key, index + 1)} is already a value "
                                        f"(line {slot[0].line}); a header cannot extend it")
        return here

    def table_header(self, at: int) -> tuple[int, _Tab]:
        start = at
        at, key = self.header_key(at + 1, "]")
        parent = self.walk(key[:-1], start)
        part, offset = key[-1]
        slot = parent.members.get(part)
        if slot is None:
            pos = self.lines.pos(offset)
            self.count(offset, parent.depth + 1)
            made = _Tab(self.lines.pos(start), _HEADER, parent.depth + 1)
            parent.members[part] = (pos, made)
            return at, made
        value = slot[1]
        if isinstance(value, _Tab) and value.state == _IMPLICIT:
            value.state = _HEADER
            value.pos = self.lines.pos(start)
            return at, value
        raise self.fail(start, f"table {_dotted(key)} is already defined (line {slot[0].line})")

    def array_header(self, at: int) -> tuple[int, _Tab]:
        start = at
        at, key = self.header_key(at + 2, "]]")
        parent = self.walk(key[:-1], start)
        part, offset = key[-1]
        slot = parent.members.get(part)
        pos = self.lines.pos(start)
        if slot is None:
            self.count(offset, parent.depth + 1)
            self.count(offset, parent.depth + 2)
            made = _Tab(pos, _HEADER, parent.depth + 2)
            parent.members[part] = (self.lines.pos(offset), _Aot(pos, made))
            return at, made
        if not isinstance(slot[1], _Aot):
            raise self.fail(start, f"{_dotted(key)} is already defined (line {slot[0].line}) and is not an "
                                   "array of tables")
        self.count(offset, parent.depth + 2)
        made = _Tab(pos, _HEADER, parent.depth + 2)
        slot[1].tables.append(made)
        return at, made

    def key_value(self, at: int, section: _Tab) -> int:
        at, key = self.key(at)
        if self.char(at) != "=":
            raise self.fail(at, "expected `=` after a key")
        here = section
        for index, (part, offset) in enumerate(key[:-1]):
            slot = here.members.get(part)
            if slot is None:
                pos = self.lines.pos(offset)
                self.count(offset, here.depth + 1)
                child = _Tab(pos, _DOTTED_OPEN, here.depth + 1)
                self.pending.append(child)
                here.members[part] = (pos, child)
                here = child
                continue
            value = slot[1]
            if isinstance(value, _Tab) and value.state in (_IMPLICIT, _DOTTED_OPEN):
                if value.state == _IMPLICIT:
                    value.state = _DOTTED_OPEN
                    self.pending.append(value)
                here = value
            else:
                raise self.fail(offset, f"{_dotted(key, index + 1)} is already defined (line {slot[0].line}); "
                                        "dotted keys cannot add to it here")
        part, offset = key[-1]
        if part in here.members:
            raise self.fail(offset, f"key {_dotted(key)} is already defined (line {here.members[part][0].line})")
        at, value = self.value(self.skip_ws(at + 1), here.depth + 1)
        here.members[part] = (self.lines.pos(offset), value)
        return at

    # -- keys ----------------------------------------------------------------------------------------------------

    def key(self, at: int) -> tuple[int, _Key]:
        parts: _Key = []
        while True:
            start = at
            ch = self.char(at)
            bare = _BARE_RUN.match(self.src, at)
            if bare:
                at = bare.end()
                part = bare.group()
            elif ch == '"':
                at, part = self.basic_string(at + 1)
            elif ch == "'":
                at, part = self.literal_string(at + 1)
            else:
                found = "the end of the line" if ch in ("\n", "") else token(ch)
                raise self.fail(at, f"expected a key, found {found}")
            parts.append((part, start))
            at = self.skip_ws(at)
            if self.char(at) != ".":
                return at, parts
            at = self.skip_ws(at + 1)

    # -- values --------------------------------------------------------------------------------------------------

    def value(self, at: int, depth: int) -> tuple[int, Node]:
        self.count(at, depth)
        src = self.src
        ch = self.char(at)
        pos = self.lines.pos(at)
        if ch == '"':
            if src.startswith('"""', at):
                end, text = self.multi_basic_string(at + 3)
            else:
                end, text = self.basic_string(at + 1)
            return end, Scalar(text, pos)
        if ch == "'":
            if src.startswith("'''", at):
                end, text = self.multi_literal_string(at + 3)
            else:
                end, text = self.literal_string(at + 1)
            return end, Scalar(text, pos)
        if src.startswith("true", at):
            return at + 4, Scalar(True, pos)
        if src.startswith("false", at):
            return at + 5, Scalar(False, pos)
        if ch == "[":
            return self.array(at, depth, pos)
        if ch == "{":
            return self.inline_table(at, depth, pos)
        if src[at + 4:at + 5] == "-":
            match = _DATE_TIME.match(src, at)
            if match:
                return match.end(), Scalar(self.date_time(match, at), pos)
        elif src[at + 2:at + 3] == ":":
            match = _LOCAL_TIME.match(src, at)
            if match:
                return match.end(), Scalar(self.clock(match.groups(), at), pos)
        match = _NUMBER.match(src, at)
        if match:
            text = match.group()
            if match.group("frac") or match.group("exp"):
                return match.end(), Scalar(float(text), pos)
            try:
                return match.end(), Scalar(int(text, 0), pos)
            except ValueError:  # more digits than Python converts
                raise self.fail(at, f"integer with {len(text)} digits is too long") from None
        for special in _SPECIAL_FLOATS:
            if src.startswith(special, at):
                return at + len(special), Scalar(float(special), pos)
        found = "the end of the line" if ch in ("\n", "") else token(src[at:at + 12].split("\n")[0])
        raise self.fail(at, f"expected a value, found {found}")

    def array(self, at: int, depth: int, pos: Pos) -> tuple[int, Node]:
        items: list[Node] = []
        at = self.skip_blank(at + 1)
        while self.char(at) != "]":
            at, item = self.value(at, depth + 1)
            items.append(item)
            at = self.skip_blank(at)
            ch = self.char(at)
            if ch == ",":
                at = self.skip_blank(at + 1)
            elif ch != "]":
                found = "the end of the document" if ch == "" else token(ch)
                raise self.fail(at, f"expected `,` or `]` in an array, found {found}")
        return at + 1, Array(tuple(items), pos)

    def inline_table(self, at: int, depth: int, pos: Pos) -> tuple[int, Node]:
        top = _Tab(pos, _DOTTED_OPEN, depth)
        at = self.skip_ws(at + 1)
        if self.char(at) == "}":
            return at + 1, self.finish_table(top)
        while True:
            at, key = self.key(at)
            if self.char(at) != "=":
                raise self.fail(at, "expected `=` after a key")
            here = top
            for index, (part, offset) in enumerate(key[:-1]):
                slot = here.members.get(part)
                if slot is None:
                    self.count(offset, here.depth + 1)
                    child = _Tab(self.lines.pos(offset), _DOTTED_OPEN, here.depth + 1)
                    here.members[part] = (child.pos, child)
                    here = child
                elif isinstance(slot[1], _Tab):
                    here = slot[1]
                else:
                    raise self.fail(offset, f"{_dotted(key, index + 1)} is already a value in this inline table")
            part, offset = key[-1]
            if part in here.members:
                raise self.fail(offset, f"key {_dotted(key)} is already defined in this inline table")
            at, value = self.value(self.skip_ws(at + 1), here.depth + 1)
            here.members[part] = (self.lines.pos(offset), value)
            at = self.skip_ws(at)
            ch = self.char(at)
            if ch == "}":
                return at + 1, self.finish_table(top)
            if ch != ",":
                found = "the end of the line" if ch in ("\n", "") else token(ch)
                raise self.fail(at, f"expected `,` or `}}` in an inline table, found {found}")
            at = self.skip_ws(at + 1)

    # -- strings -------------------------------------------------------------------------------------------------

    def bad_char(self, at: int, what: str) -> InputError:
        ch = self.char(at)
        if ch == "":
            return self.fail(at, f"unterminated {what}")
        if ch == "\n":
            return self.fail(at, f"newline in a single-line {what}")
        return self.fail(at, f"control character {escape(ch)} in a {what}")

    def basic_string(self, at: int) -> tuple[int, str]:
        parts: list[str] = []
        while True:
            end = _BASIC_RUN.match(self.src, at).end()  # type: ignore[union-attr]
            parts.append(self.src[at:end])
            ch = self.char(end)
            if ch == '"':
                return end + 1, "".join(parts)
            if ch != "\\":
                raise self.bad_char(end, "string")
            at, text = self.escape(end, multiline=False)
            parts.append(text)

    def multi_basic_string(self, at: int) -> tuple[int, str]:
        if self.char(at) == "\n":
            at += 1
        parts: list[str] = []
        while True:
            end = _MULTI_BASIC_RUN.match(self.src, at).end()  # type: ignore[union-attr]
            parts.append(self.src[at:end])
            ch = self.char(end)
            if ch == '"':
                if self.src.startswith('"""', end):
                    return self.closing_quotes(end + 3, '"', "".join(parts))
                parts.append('"')
                at = end + 1
            elif ch == "\\":
                at, text = self.escape(end, multiline=True)
                parts.append(text)
            else:
                raise self.bad_char(end, "multi-line string")

    def literal_string(self, at: int) -> tuple[int, str]:
        end = _LITERAL_RUN.match(self.src, at).end()  # type: ignore[union-attr]
        if self.char(end) != "'":
            raise self.bad_char(end, "literal string")
        return end + 1, self.src[at:end]

    def multi_literal_string(self, at: int) -> tuple[int, str]:
        if self.char(at) == "\n":
            at += 1
        start = at
        while True:
            end = _MULTI_LITERAL_RUN.match(self.src, at).end()  # type: ignore[union-attr]
            if self.char(end) != "'":
                raise self.bad_char(end, "multi-line literal string")
            if self.src.startswith("'''", end):
                return self.closing_quotes(end + 3, "'", self.src[start:end])
            at = end + 1

    def closing_quotes(self, at: int, quote: str, text: str) -> tuple[int, str]:
        """A multi-line string may end with one or two quotes right before its closing three."""
        for _ in range(2):
            if self.char(at) != quote:
                break
            text += quote
            at += 1
        return at, text

    def escape(self, at: int, *, multiline: bool) -> tuple[int, str]:
        ch = self.char(at + 1)
        if ch in _ESCAPES and ch:
            return at + 2, _ESCAPES[ch]
        if ch in ("u", "U") and ch:
            width = 4 if ch == "u" else 8
            digits = self.src[at + 2:at + 2 + width]
            if len(digits) != width or not _HEX.issuperset(digits):
                raise self.fail(at, f"`\\{ch}` needs {width} hexadecimal digits")
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise self.fail(at, f"`\\{ch}{digits}` is not a Unicode scalar value")
            return at + 2 + width, chr(code)
        if multiline and ch in (" ", "\t", "\n") and ch:
            after = self.skip_ws(at + 1)
            if self.char(after) not in ("\n", ""):
                raise self.fail(at, "a line-ending backslash must be followed only by whitespace")
            while self.char(after) in (" ", "\t", "\n") and after < len(self.src):
                after += 1
            return after, ""
        raise self.fail(at, f"invalid escape {token(self.src[at:at + 2])}")

    # -- numbers and dates ---------------------------------------------------------------------------------------

    def clock(self, groups: tuple[str | None, ...], at: int) -> dt.time:
        hour, minute, second, fraction = groups
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        try:
            return dt.time(int(hour or 0), int(minute or 0), int(second or 0), micros)
        except ValueError as exc:
            raise self.fail(at, f"invalid time: {exc}") from None

    def date_time(self, match: re.Match[str], at: int) -> dt.datetime | dt.date:
        year, month, day, hour, minute, second, fraction, zulu, sign, off_hour, off_minute = match.groups()
        try:
            date = dt.date(int(year), int(month), int(day))
            if hour is None:
                return date
            clock = self.clock((hour, minute, second, fraction), at)
            zone: dt.tzinfo | None = None
            if zulu:
                zone = dt.UTC
            elif sign:
                hours, minutes = int(off_hour), int(off_minute)
                if hours > 23 or minutes > 59:
                    raise ValueError("offset out of range")
                scale = 1 if sign == "+" else -1
                zone = dt.timezone(dt.timedelta(hours=scale * hours, minutes=scale * minutes))
            return dt.datetime.combine(date, clock, zone)
        except ValueError as exc:
            raise self.fail(at, f"invalid date or time: {exc}") from None

    # -- result --------------------------------------------------------------------------------------------------

    def finish_table(self, built: _Tab) -> Table:
        members: dict[str, Member] = {}
        for key, (key_pos, slot) in built.members.items():
            members[key] = Member(key, key_pos, self.finish(slot))
        return table(members, built.pos)

    def finish(self, slot: _Slot) -> Node:
        if isinstance(slot, _Tab):
            return self.finish_table(slot)
        if isinstance(slot, _Aot):
            return Array(tuple(self.finish_table(t) for t in slot.tables), slot.pos)
        return slot


def parse_toml(text: str, file: str = "<toml>", *, limits: Limits = DEFAULT_LIMITS) -> Table:
    """Parse a TOML document into a positioned :class:`Table`; an :class:`InputError` at ``file:line:col``
    if it is not valid TOML 1.0 or exceeds ``limits``."""
    return _Reader(text, file, limits).document()
