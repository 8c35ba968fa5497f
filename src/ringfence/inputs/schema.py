"""Typed access to positioned documents: each field read with its type and range checked, errors at its place.

A :class:`Schema` turns one node into a typed value or raises :class:`ringfence.errors.InputError` at the
node's ``file:line:col``. The rules are the same for every loader: integers have ranges and are never taken
from booleans, fractions or out-of-range values (nothing is truncated or masked); names are matched against
their valid spellings and a typo gets the closest one; lists and tables are bounded. :class:`Fields` reads a
table whose keys are declared, and refuses any other key with the closest valid name, so a misspelt key is an
error instead of a silently ignored setting.

``name`` arguments are labels for messages, already quoted (``label("entries")`` gives ```entries```).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from ringfence.errors import InputError
from ringfence.inputs.nodes import Array, Node, Scalar, Table, describe
from ringfence.inputs.position import Pos
from ringfence.inputs.suggest import did_you_mean
from ringfence.inputs.text import token

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
K = TypeVar("K")
D = TypeVar("D")

U8: Final = 0xFF
U16: Final = 0xFFFF
U32: Final = 0xFFFF_FFFF
U64: Final = 0xFFFF_FFFF_FFFF_FFFF

#: Integer text: decimal, or 0x/0o/0b with digits, underscores between digits (as TOML writes them).
_INT_TEXT: Final = re.compile(r"(?:0x[0-9a-fA-F](?:_?[0-9a-fA-F])*|0o[0-7](?:_?[0-7])*|0b[01](?:_?[01])*"
                              r"|0|[1-9](?:_?[0-9])*)")


def label(*parts: str | int) -> str:
    """A field's name as messages quote it: ``label("sqes", 2, "ud")`` is ```sqes[2].ud```."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return token(text, 80)


def error_at(node: Node, message: str) -> InputError:
    """An :class:`InputError` at ``node``'s position."""
    return node.pos.error(message)


def mismatch(node: Node, name: str, expected: str) -> InputError:
    return error_at(node, f"{name}: expected {expected}, found {describe(node)}")


def int_text(text: str) -> int | None:
    """The value of integer text (``"42"``, ``"0xffff_ffff"``), or None if it is not written that way."""
    stripped = text.strip()
    if not _INT_TEXT.fullmatch(stripped):
        return None
    return int(stripped, 0)


def _range(lo: int, hi: int) -> str:
    if hi >= 1 << 16:
        return f"{lo}..{hi:#x}" if lo >= 0 else f"{lo}..{hi}"
    return f"{lo}..{hi}"


class Schema(ABC, Generic[T_co]):
    """Reads one node as a ``T_co``."""

    @property
    @abstractmethod
    def expected(self) -> str:
        """What this schema accepts, for messages: ``an integer in 0..255``."""

    def accepts(self, node: Node) -> bool:
        """Whether ``node`` is of a type this schema reads (used by :class:`Either` to pick one)."""
        return True

    @abstractmethod
    def read(self, node: Node, name: str) -> T_co:
        """The value of ``node``, or an :class:`InputError` at its position."""


@dataclass(frozen=True, slots=True)
class Int(Schema[int]):
    """An integer in ``lo..hi``. Booleans and floats are refused (``6.9`` is not silently ``6``, ``6.0`` must be
    written ``6``); ``text=True`` also takes integer text (``"0xffff_ffff_ffff_ffff"``) for values TOML integers
    cannot hold (they stop at 2**63 - 1)."""

    lo: int
    hi: int
    text: bool = False

    @property
    def expected(self) -> str:
        return f"an integer in {_range(self.lo, self.hi)}"

    def accepts(self, node: Node) -> bool:
        if not isinstance(node, Scalar) or isinstance(node.value, bool):
            return False
        return isinstance(node.value, int | float) or (self.text and isinstance(node.value, str))

    def read(self, node: Node, name: str) -> int:
        if not isinstance(node, Scalar) or isinstance(node.value, bool):
            raise mismatch(node, name, self.expected)
        value = node.value
        if isinstance(value, float):
            hint = "write it without a fraction" if math.isfinite(value) and value.is_integer() \
                else "fractions are not rounded"
            raise error_at(node, f"{name}: expected {self.expected}, found {describe(node)} ({hint})")
        if isinstance(value, str) and self.text:
            parsed = int_text(value)
            if parsed is None:
                raise error_at(node, f"{name}: {token(value)} is not an integer (decimal, or 0x/0o/0b digits)")
            value = parsed
        if not isinstance(value, int):
            raise mismatch(node, name, self.expected)
        if not self.lo <= value <= self.hi:
            shown = str(value) if abs(value) < 10**30 else describe(node).removeprefix("the integer ")
            raise error_at(node, f"{name}: {shown} is out of range {_range(self.lo, self.hi)}")
        return value


@dataclass(frozen=True, slots=True)
class Str(Schema[str]):
    """Text of at most ``max_len`` characters. Control characters are refused (a terminal escape sequence in a
    name would reach whoever prints it) unless ``lines``, which allows newlines and tabs. ``pattern`` must
    match the whole text; ``shape`` describes it for messages."""

    max_len: int = 256
    pattern: re.Pattern[str] | None = None
    shape: str = ""
    lines: bool = False
    min_len: int = 0

    @property
    def expected(self) -> str:
        return self.shape or "a string"

    def accepts(self, node: Node) -> bool:
        return isinstance(node, Scalar) and isinstance(node.value, str)

    def read(self, node: Node, name: str) -> str:
        if not isinstance(node, Scalar) or not isinstance(node.value, str):
            raise mismatch(node, name, self.expected)
        text = node.value
        if len(text) > self.max_len:
            raise error_at(node, f"{name}: longer than {self.max_len} characters")
        if len(text) < self.min_len:
            raise error_at(node, f"{name}: must not be empty" if self.min_len == 1
                           else f"{name}: shorter than {self.min_len} characters")
        allowed = "\n\t" if self.lines else ""
        for ch in text:
            if not ch.isprintable() and ch not in allowed:
                raise error_at(node, f"{name}: control or invisible character {token(ch)} in text")
        if self.pattern is not None and not self.pattern.fullmatch(text):
            raise error_at(node, f"{name}: {token(text)} is not {self.expected}")
        return text


@dataclass(frozen=True, slots=True)
class Bool(Schema[bool]):
    """``true`` or ``false`` (not 0/1, not text)."""

    @property
    def expected(self) -> str:
        return "true or false"

    def accepts(self, node: Node) -> bool:
        return isinstance(node, Scalar) and isinstance(node.value, bool)

    def read(self, node: Node, name: str) -> bool:
        if not isinstance(node, Scalar) or not isinstance(node.value, bool):
            raise mismatch(node, name, self.expected)
        return node.value


def _normal(text: str, fold: bool, prefixes: tuple[str, ...]) -> str:
    key = text.strip()
    if fold:
        key = key.upper()
    for prefix in prefixes:
        key = key.removeprefix(prefix)
    return key


@dataclass(frozen=True, slots=True)
class Choice(Schema[T]):
    """One name out of ``names`` (an enum by name). ``fold`` matches case-insensitively; ``prefixes`` may be
    written before a name and are ignored (``IORING_OP_``). A name not found gets the closest valid one."""

    names: Mapping[str, T]
    what: str = "name"
    fold: bool = True
    prefixes: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        return f"a {self.what} name"

    def accepts(self, node: Node) -> bool:
        return isinstance(node, Scalar) and isinstance(node.value, str)

    def read(self, node: Node, name: str) -> T:
        if not isinstance(node, Scalar) or not isinstance(node.value, str):
            raise mismatch(node, name, self.expected)
        key = _normal(node.value, self.fold, self.prefixes)
        if key in self.names:
            return self.names[key]
        raise error_at(node, f"{name}: unknown {self.what} {token(node.value)}{did_you_mean(key, self.names)}")


@dataclass(frozen=True, slots=True)
class Bits(Schema[int]):
    """A number built from named bits or values: an integer in ``0..hi``, text joining names and numbers with
    ``|`` (``"O_CREAT|O_RDWR"``, ``"ASYNC|0x40"``; empty text is 0), or an array of such names. Each part must
    be a known name (closest one suggested) or integer text; the result must fit ``hi``."""

    names: Mapping[str, int]
    hi: int
    what: str = "flag"
    prefixes: tuple[str, ...] = ()
    fold: bool = True

    @property
    def expected(self) -> str:
        return f"an integer in {_range(0, self.hi)}, {self.what} names joined with `|`, or an array of names"

    def accepts(self, node: Node) -> bool:
        if isinstance(node, Array):
            return True
        return isinstance(node, Scalar) and isinstance(node.value, int | str | float) \
            and not isinstance(node.value, bool)

    def part(self, text: str, node: Node, name: str) -> int:
        number = int_text(text)
        if number is not None:
            value = number
        else:
            key = _normal(text, self.fold, self.prefixes)
            if key not in self.names:
                raise error_at(node, f"{name}: unknown {self.what} {token(text.strip())}"
                                     f"{did_you_mean(key, self.names)}")
            value = self.names[key]
        if not 0 <= value <= self.hi:
            raise error_at(node, f"{name}: {token(text.strip())} is out of range {_range(0, self.hi)}")
        return value

    def read(self, node: Node, name: str) -> int:
        if isinstance(node, Array):
            if len(node.items) > 64:
                raise error_at(node, f"{name}: more than 64 names")
            total = 0
            for index, item in enumerate(node.items):
                item_name = token(f"{name.strip('`')}[{index}]", 80)
                total |= self.part(Str(max_len=64).read(item, item_name), item, item_name)
            return total
        if isinstance(node, Scalar) and isinstance(node.value, str):
            if len(node.value) > 1024:
                raise error_at(node, f"{name}: longer than 1024 characters")
            total = 0
            for piece in node.value.split("|"):
                if piece.strip():
                    total |= self.part(piece, node, name)
            return total
        return Int(0, self.hi).read(node, name)


@dataclass(frozen=True, slots=True)
class ListOf(Schema[tuple[T, ...]]):
    """An array of ``min_items..max_items`` values, each read with ``item``."""

    item: Schema[T]
    max_items: int
    min_items: int = 0

    @property
    def expected(self) -> str:
        size = f"{self.min_items}" if self.min_items == self.max_items else f"at most {self.max_items}"
        return f"an array of {size} values"

    def accepts(self, node: Node) -> bool:
        return isinstance(node, Array)

    def read(self, node: Node, name: str) -> tuple[T, ...]:
        if not isinstance(node, Array):
            raise mismatch(node, name, self.expected)
        count = len(node.items)
        if count > self.max_items:
            raise error_at(node, f"{name}: {count} values, at most {self.max_items} allowed")
        if count < self.min_items:
            exact = self.min_items == self.max_items
            raise error_at(node, f"{name}: {count} values, {'exactly' if exact else 'at least'} "
                                 f"{self.min_items} needed")
        base = name.strip("`")  # already escaped and clipped by whoever made ``name``
        return tuple(self.item.read(item, f"`{base}[{i}]`") for i, item in enumerate(node.items))


@dataclass(frozen=True, slots=True)
class Either(Schema[T]):
    """The first of ``options`` that accepts the node's type (an integer or a name, say)."""

    options: tuple[Schema[T], ...]

    @property
    def expected(self) -> str:
        return " or ".join(o.expected for o in self.options)

    def accepts(self, node: Node) -> bool:
        return any(o.accepts(node) for o in self.options)

    def read(self, node: Node, name: str) -> T:
        for option in self.options:
            if option.accepts(node):
                return option.read(node, name)
        raise mismatch(node, name, self.expected)


@dataclass(frozen=True, slots=True)
class Custom(Schema[T]):
    """A reader written as a function, with its description."""

    reader: Callable[[Node, str], T]
    shape: str
    accept: Callable[[Node], bool] = field(default=lambda node: True)

    @property
    def expected(self) -> str:
        return self.shape

    def accepts(self, node: Node) -> bool:
        return self.accept(node)

    def read(self, node: Node, name: str) -> T:
        return self.reader(node, name)


@dataclass(frozen=True, slots=True)
class MapOf(Schema[tuple[tuple[K, T], ...]]):
    """A table of at most ``max_items`` members: each key read by ``key`` (text and its position), each value by
    ``value``. Two keys that read to the same value are an error."""

    key: Callable[[str, Pos, str], K]
    value: Schema[T]
    max_items: int

    @property
    def expected(self) -> str:
        return "a table"

    def accepts(self, node: Node) -> bool:
        return isinstance(node, Table)

    def read(self, node: Node, name: str) -> tuple[tuple[K, T], ...]:
        if not isinstance(node, Table):
            raise mismatch(node, name, self.expected)
        if len(node.members) > self.max_items:
            raise error_at(node, f"{name}: {len(node.members)} keys, at most {self.max_items} allowed")
        out: list[tuple[K, T]] = []
        seen: dict[K, str] = {}
        base = name.strip("`")
        for text, member in node.members.items():
            key = self.key(text, member.key_pos, name)
            if key in seen:
                raise member.key_pos.error(f"{name}: keys {token(seen[key])} and {token(text)} are the same")
            seen[key] = text
            out.append((key, self.value.read(member.value, token(f"{base}.{text}", 80))))
        return tuple(out)


class Fields:
    """A table read field by field. Keys outside ``allowed`` are refused when the view is made, each with the
    closest allowed name; ``path`` prefixes field labels in messages (``sqes[2]``)."""

    def __init__(self, node: Node, *, allowed: Collection[str], path: str = "", what: str = "") -> None:
        self.path = path
        self.what = what or (token(path, 80) if path else "this table")
        if not isinstance(node, Table):
            raise mismatch(node, token(path, 80) if path else "the document", "a table")
        self.table = node
        for key, member in node.members.items():
            if key not in allowed:
                raise member.key_pos.error(f"unknown key {token(key)} in {self.what}{did_you_mean(key, allowed)}")

    def label(self, key: str) -> str:
        return token(f"{self.path}.{key}" if self.path else key, 80)

    def has(self, key: str) -> bool:
        return key in self.table.members

    def node(self, key: str) -> Node | None:
        return self.table.get(key)

    def pos(self, key: str | None = None) -> Pos:
        """Where ``key``'s value is (the table's own position if it is absent or not given)."""
        member = self.table.members.get(key) if key is not None else None
        return member.value.pos if member is not None and member.value.pos.line else self.table.pos

    def key_pos(self, key: str) -> Pos:
        member = self.table.members.get(key)
        return member.key_pos if member is not None and member.key_pos.line else self.table.pos

    def error(self, key: str | None, message: str) -> InputError:
        """An error at ``key``'s value (or at the table), its message prefixed with the field's label."""
        prefix = f"{self.label(key)}: " if key is not None else ""
        return self.pos(key).error(prefix + message)

    def get(self, key: str, schema: Schema[T], default: D) -> T | D:
        node = self.table.get(key)
        return default if node is None else schema.read(node, self.label(key))

    def need(self, key: str, schema: Schema[T]) -> T:
        node = self.table.get(key)
        if node is None:
            raise self.table.pos.error(f"{self.what} needs {token(key)}")
        return schema.read(node, self.label(key))

    def one_of(self, *keys: str) -> str | None:
        """The one of ``keys`` present, None if none is; two or more is an error at the second."""
        present = [k for k in keys if k in self.table.members]
        if len(present) > 1:
            raise self.key_pos(present[1]).error(
                f"{token(present[0])} and {token(present[1])} cannot both be given; use one of "
                + ", ".join(token(k) for k in keys))
        return present[0] if present else None
