"""Documents with positions: every table, key and value knows where it was written.

TOML and JSON documents both read into these three node types, so a schema, and its error messages, work the
same for either. :func:`plain` gives the ordinary Python values (what ``tomllib``/``json`` would return);
:func:`from_plain` goes the other way for documents built in Python, whose positions are unknown.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from ringfence.errors import InputError
from ringfence.inputs.position import Pos
from ringfence.inputs.text import clip

ScalarValue: TypeAlias = str | int | float | bool | dt.datetime | dt.date | dt.time | None


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds every document reader enforces while it reads: how deep values nest, how many there are."""

    max_depth: int = 32
    max_nodes: int = 200_000


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class Scalar:
    """A string, integer, float, boolean, date/time (TOML) or null (JSON)."""

    value: ScalarValue
    pos: Pos


@dataclass(frozen=True, slots=True)
class Array:
    """An array (TOML array or array of tables, JSON array)."""

    items: tuple[Node, ...]
    pos: Pos

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.items)


@dataclass(frozen=True, slots=True)
class Member:
    """One key of a table: the key, where the key was written, and its value."""

    key: str
    key_pos: Pos
    value: Node


@dataclass(frozen=True, slots=True)
class Table:
    """A table (TOML table or inline table, JSON object); members keep their written order."""

    members: Mapping[str, Member]
    pos: Pos

    def get(self, key: str) -> Node | None:
        member = self.members.get(key)
        return None if member is None else member.value

    def __contains__(self, key: object) -> bool:
        return key in self.members

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)


Node: TypeAlias = Scalar | Array | Table


def table(members: dict[str, Member], pos: Pos) -> Table:
    """A table whose members mapping cannot be changed afterwards."""
    return Table(MappingProxyType(members), pos)


def kind_of(value: ScalarValue) -> str:
    """The name of a scalar's type as messages use it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    return "a time"


def describe(node: Node) -> str:
    """What a node is, for "expected X, found Y" messages: ``the string `abc```, ``the integer 5``, ``a table``."""
    if isinstance(node, Table):
        return "a table"
    if isinstance(node, Array):
        return "an array"
    value = node.value
    if isinstance(value, str):
        return f"the string `{clip(value)}`"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else f"{str(value)[:12]}... ({len(str(abs(value)))} digits)"
        return f"the integer {text}"
    if isinstance(value, float):
        return f"the float {value!r}" if math.isfinite(value) else f"the float {value}"
    return kind_of(value)


def plain(node: Node) -> Any:
    """The document as ordinary Python values: dicts, lists, str, int, float, bool, dates, None."""
    if isinstance(node, Table):
        return {key: plain(member.value) for key, member in node.members.items()}
    if isinstance(node, Array):
        return [plain(item) for item in node.items]
    return node.value


_SCALARS: Final = (str, int, float, bool, dt.datetime, dt.date, dt.time, type(None))


def from_plain(value: Any, file: str = "<data>", *, limits: Limits = DEFAULT_LIMITS) -> Node:
    """A document built in Python as nodes without positions. Mappings become tables (integer keys are written
    as text, as a file would have them), lists and tuples arrays; anything else that is not a scalar is an
    :class:`InputError`, as are structures nested deeper than ``limits.max_depth``."""
    nowhere = Pos(file)
    count = [0]

    def build(item: Any, depth: int) -> Node:
        count[0] += 1
        if depth > limits.max_depth or count[0] > limits.max_nodes:
            what = f"nested deeper than {limits.max_depth} levels" if depth > limits.max_depth \
                else f"more than {limits.max_nodes} values"
            raise InputError(f"document is {what}", file=file)
        if type(item) in _SCALARS:
            return Scalar(item, nowhere)
        if isinstance(item, Mapping):
            members: dict[str, Member] = {}
            for key, sub in item.items():
                if isinstance(key, bool) or not isinstance(key, str | int):
                    raise InputError(f"a table key must be text, not {type(key).__name__}", file=file)
                members[str(key)] = Member(str(key), nowhere, build(sub, depth + 1))
            return table(members, nowhere)
        if isinstance(item, list | tuple):
            return Array(tuple(build(sub, depth + 1) for sub in item), nowhere)
        if isinstance(item, _SCALARS):
            return Scalar(item, nowhere)
        raise InputError(f"a document value cannot be a {type(item).__name__}", file=file)

    return build(value, 0)
