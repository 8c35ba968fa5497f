"""JSON with positions: the values of the standard library's ``json.loads``, plus where each was written.

Strict JSON (RFC 8259), stricter than ``json.loads`` where it is lenient in ways that hide mistakes or
ambiguity: ``NaN``/``Infinity`` are refused, a key may appear only once per object (``json.loads`` keeps the
last silently), and a ``\\u`` escape must not leave half of a surrogate pair. Nesting depth and the number of
values are bounded (:class:`ringfence.inputs.nodes.Limits`) instead of recursing until Python's limit.
"""

from __future__ import annotations

import re
from typing import Final

from ringfence.errors import InputError
from ringfence.inputs.nodes import DEFAULT_LIMITS, Array, Limits, Member, Node, Scalar, table
from ringfence.inputs.position import LineMap
from ringfence.inputs.text import escape, token

_WS: Final = re.compile(r"[ \t\n\r]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][+-]?[0-9]+)?")
_PLAIN: Final = re.compile(r'[^"\\\x00-\x1f]*')
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4: Final = re.compile(r"[0-9A-Fa-f]{4}")
_WORDS: Final = (("true", True), ("false", False), ("null", None))


class _Reader:
    def __init__(self, text: str, file: str, limits: Limits) -> None:
        self.src = text
        self.lines = LineMap(text, file)
        self.limits = limits
        self.nodes = 0

    def fail(self, at: int, message: str) -> InputError:
        return self.lines.error(at, message)

    def found(self, at: int) -> str:
        if at >= len(self.src):
            return "the end of the document"
        return token(self.src[at:at + 12].split("\n")[0])

    def ws(self, at: int) -> int:
        return _WS.match(self.src, at).end()  # type: ignore[union-attr]

    def document(self) -> Node:
        at, node = self.value(self.ws(0), 0)
        at = self.ws(at)
        if at < len(self.src):
            raise self.fail(at, f"expected the end of the document, found {self.found(at)}")
        return node

    def value(self, at: int, depth: int) -> tuple[int, Node]:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self.fail(at, f"document has more than {self.limits.max_nodes} values")
        if depth > self.limits.max_depth:
            raise self.fail(at, f"values nest deeper than {self.limits.max_depth} levels")
        pos = self.lines.pos(at)
        ch = self.src[at:at + 1]
        if ch == "{":
            return self.obj(at, depth)
        if ch == "[":
            return self.array(at, depth)
        if ch == '"':
            end, text = self.string(at)
            return end, Scalar(text, pos)
        match = _NUMBER.match(self.src, at)
        if match:
            text = match.group()
            if match.group("frac") or match.group("exp"):
                return match.end(), Scalar(float(text), pos)
            try:
                return match.end(), Scalar(int(text), pos)
            except ValueError:  # more digits than Python converts
                raise self.fail(at, f"integer with {len(text)} digits is too long") from None
        for word, meaning in _WORDS:
            if self.src.startswith(word, at):
                return at + len(word), Scalar(meaning, pos)
        if self.src.startswith(("NaN", "Infinity", "-Infinity"), at):
            raise self.fail(at, "NaN and Infinity are not JSON numbers")
        raise self.fail(at, f"expected a value, found {self.found(at)}")

    def obj(self, at: int, depth: int) -> tuple[int, Node]:
        pos = self.lines.pos(at)
        members: dict[str, Member] = {}
        at = self.ws(at + 1)
        if self.src.startswith("}", at):
            return at + 1, table(members, pos)
        while True:
            if not self.src.startswith('"', at):
                raise self.fail(at, f"expected a key in double quotes, found {self.found(at)}")
            key_at = at
            at, key = self.string(at)
            if key in members:
                raise self.fail(key_at, f"key {token(key)} appears twice in this object "
                                        f"(first on line {members[key].key_pos.line})")
            at = self.ws(at)
            if not self.src.startswith(":", at):
                raise self.fail(at, f"expected `:` after a key, found {self.found(at)}")
            at, node = self.value(self.ws(at + 1), depth + 1)
            members[key] = Member(key, self.lines.pos(key_at), node)
            at = self.ws(at)
            if self.src.startswith("}", at):
                return at + 1, table(members, pos)
            if not self.src.startswith(",", at):
                raise self.fail(at, f"expected `,` or `}}` in an object, found {self.found(at)}")
            at = self.ws(at + 1)

    def array(self, at: int, depth: int) -> tuple[int, Node]:
        pos = self.lines.pos(at)
        items: list[Node] = []
        at = self.ws(at + 1)
        if self.src.startswith("]", at):
            return at + 1, Array((), pos)
        while True:
            at, node = self.value(at, depth + 1)
            items.append(node)
            at = self.ws(at)
            if self.src.startswith("]", at):
                return at + 1, Array(tuple(items), pos)
            if not self.src.startswith(",", at):
                raise self.fail(at, f"expected `,` or `]` in an array, found {self.found(at)}")
            at = self.ws(at + 1)

    def string(self, at: int) -> tuple[int, str]:
        parts: list[str] = []
        at += 1
        while True:
            end = _PLAIN.match(self.src, at).end()  # type: ignore[union-attr]
            parts.append(self.src[at:end])
            ch = self.src[end:end + 1]
            if ch == '"':
                return end + 1, "".join(parts)
            if ch == "":
                raise self.fail(end, "unterminated string")
            if ch != "\\":
                raise self.fail(end, f"control character {escape(ch)} in a string")
            at, text = self.escape(end)
            parts.append(text)

    def escape(self, at: int) -> tuple[int, str]:
        ch = self.src[at + 1:at + 2]
        if ch in _ESCAPES:
            return at + 2, _ESCAPES[ch]
        if ch != "u":
            raise self.fail(at, f"invalid escape {token(self.src[at:at + 2])}")
        code = self.hex4(at)
        if 0xDC00 <= code <= 0xDFFF:
            raise self.fail(at, "a `\\u` escape is the second half of a surrogate pair without the first")
        if 0xD800 <= code <= 0xDBFF:
            if not self.src.startswith("\\u", at + 6):
                raise self.fail(at, "a `\\u` escape is half of a surrogate pair")
            low = self.hex4(at + 6)
            if not 0xDC00 <= low <= 0xDFFF:
                raise self.fail(at, "a `\\u` escape is half of a surrogate pair")
            return at + 12, chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
        return at + 6, chr(code)

    def hex4(self, at: int) -> int:
        match = _HEX4.match(self.src, at + 2)
        if not match:
            raise self.fail(at, "`\\u` needs four hexadecimal digits")
        return int(match.group(), 16)


def parse_json(text: str, file: str = "<json>", *, limits: Limits = DEFAULT_LIMITS) -> Node:
    """Parse a JSON document into positioned nodes; an :class:`InputError` at ``file:line:col`` if it is not
    strict JSON or exceeds ``limits``."""
    return _Reader(text, file, limits).document()
