"""Policy files (TOML, or JSON with the same structure) to :class:`ringfence.policy.ast.Policy`.

A policy file is input somebody else may have written, so it is read with :mod:`ringfence.inputs` like a
scenario: a regular file under a size cap, parsed into nodes that know their ``file:line:col``, nesting and
size bounded. Every value is checked here, and every refusal is a :class:`ringfence.errors.PolicyError` at
the place it was written (an unknown name gets the closest valid one), so the compiler only meets
well-formed policies. A file that cannot be read at all is an :class:`ringfence.errors.UnreadableError`.

``include`` merges other files' rules. Like a scenario's ``program_file``, an included file is named relative
to the including one and must stay inside the root (``--root``, else the nearest directory above holding a
``.ringfence-root`` marker, else the top file's directory); an error about it quotes its name, never its
content. The format is ``docs/policy.md``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ringfence.abi.opcodes import RegisterOp, SqeFlag, SqeOp
from ringfence.errors import InputError, PolicyError, UnreadableError
from ringfence.inputs.document import Format, format_of, parse_document
from ringfence.inputs.nodes import Array, Limits, Node, Scalar, Table, describe, from_plain
from ringfence.inputs.position import Pos as At
from ringfence.inputs.read import POLICY_FILE, read_input
from ringfence.inputs.refs import References
from ringfence.inputs.schema import Str
from ringfence.inputs.suggest import did_you_mean
from ringfence.inputs.text import escape, token
from ringfence.policy.ast import (
    Action,
    BitMode,
    Bits,
    Flags,
    InNetworks,
    Masked,
    Network,
    NoneOf,
    OneOf,
    Policy,
    Pos,
    Predicate,
    Range,
    Rule,
    TargetKind,
    Test,
)
from ringfence.policy.fields import FIELDS, KERNEL_ADDED_FLAGS, Field, Kind

#: Largest policy file read (a policy is a few kilobytes; each included file has the same cap).
MAX_BYTES: Final = POLICY_FILE.max_bytes
MAX_INCLUDE_DEPTH: Final = 8
#: Files one policy may read in all, itself included (a file included from many places counts each time).
MAX_FILES: Final = 64
MAX_RULES: Final = 10_000
MAX_VALUES: Final = 4096
#: How deep values nest and how many there are, per file. The deepest policy value is six levels down
#: (``allow[0].socket.family.in[0]``).
LIMITS: Final = Limits(max_depth=16, max_nodes=200_000)

_POLICY_KEYS: Final = ("name", "description", "kernel", "target", "default", "include")
_TOP_KEYS: Final = ("policy", "flags", "register", "allow", "deny")
_RULE_KEYS: Final = ("op", "ops", "reason", "name")
_GROUPS: Final = ("socket", "open", "connect")
_TEST_KEYS: Final = ("in", "not_in", "range", "min", "max", "all", "none", "any", "mask", "equals")
_KERNEL: Final = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})\+")
#: Numbers written as text: decimal digits, or 0x/0o/0b digits (``int(text, 0)`` decides the fine print).
_NUMBER_TEXT: Final = re.compile(r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9]+")
_NAME: Final = Str(256, shape="a name of at most 256 characters")
_TEXT: Final = Str(1 << 16, lines=True, shape="text")
_FILE_NAME: Final = Str(4096, min_len=1, shape="a file name")


def _number_shown(value: int) -> str:
    """An integer for a message; a huge one by its size (its digits could not even be printed)."""
    return str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"


def _fail(at: At, message: str) -> PolicyError:
    return PolicyError(message, file=at.file, line=at.line, column=at.column)


def _as_policy_error(exc: InputError) -> PolicyError:
    if isinstance(exc, PolicyError):
        return exc
    return PolicyError(exc.message, file=exc.file, line=exc.line, column=exc.column)


@dataclass(frozen=True)
class _Doc:
    """One parsed file: its root table, its name as messages show it, its TOML lines (for the column of a
    ``[[allow]]`` header's name), and how its includes resolve (None: it has no directory)."""

    root: Table
    file: str
    lines: Sequence[str] = ()
    refs: References | None = None
    real: Path | None = None

    def header_pos(self, table: Table) -> Pos:
        """Where a rule was written: for a ``[[allow]]`` header the column of its name, else the table's place."""
        at = table.pos
        column = at.column
        if 0 < at.line <= len(self.lines):
            text = self.lines[at.line - 1]
            if text.startswith("[[", column - 1):
                column += 2
                while text[column - 1:column] in (" ", "\t"):
                    column += 1
        return Pos(at.file, at.line, column)

    def key_start(self, group: At, inner: At) -> At:
        """Where a grouped key starts: ``socket.family = ...`` on a line of its own starts the line; a key inside
        ``socket = { family = ... }`` is placed at ``socket``."""
        if inner.line != group.line and 0 < inner.line <= len(self.lines):
            text = self.lines[inner.line - 1]
            return At(inner.file, inner.line, len(text) - len(text.lstrip(" \t")) + 1)
        return group


@dataclass
class _Merged:
    rules: list[Rule] = field(default_factory=list)
    settings: dict[str, tuple[str, str]] = field(default_factory=dict)
    flags: tuple[Flags, str] | None = None
    register: tuple[frozenset[int], str] | None = None
    sources: list[str] = field(default_factory=list)


# -- entry points -----------------------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Policy:
    """Load a policy file and everything it includes. ``root`` confines the includes (default: the marked
    corpus root above the file, else its directory). A file that cannot be read is an
    :class:`UnreadableError`; anything wrong inside one, an included file's trouble too, a :class:`PolicyError`."""
    try:
        source = read_input(path, POLICY_FILE)
    except UnreadableError:
        raise
    except InputError as exc:
        raise _as_policy_error(exc) from None
    refs = References.for_document(source.directory, Path(root) if root is not None else None)
    real = source.path.resolve() if source.path is not None else None
    default_name = Path(os.fspath(path)).stem or "policy"
    return _guarded(lambda: _load_text(source.text, source.name, format_of(path), refs=refs, real=real,
                                           default_name=default_name))


def loads(text: str, *, name: str = "<policy>", json_format: bool = False) -> Policy:
    """A policy from text (no includes allowed: there is no directory to resolve them in)."""
    fmt = Format.JSON if json_format else Format.TOML
    return _guarded(lambda: _load_text(text, name, fmt, default_name=Path(name).stem or "policy"))


def from_data(data: Mapping[str, Any], *, name: str = "<policy>") -> Policy:
    """A policy from the file structure as Python data (what :mod:`ringfence.policy.build` produces)."""
    if not isinstance(data, Mapping):
        raise PolicyError("a policy is a mapping", file=name)

    def build() -> Policy:
        root = from_plain(data, name, limits=LIMITS)
        assert isinstance(root, Table)
        return _from_docs(_Doc(root, name), name)

    return _guarded(build)


def _guarded(work: Callable[[], Policy]) -> Policy:
    """Run ``work``; the schema helpers' :class:`InputError` comes out as the policy's own error."""
    try:
        return work()
    except InputError as exc:
        raise _as_policy_error(exc) from None


def _parse(text: str, file: str, fmt: Format) -> tuple[Table, Sequence[str]]:
    root = parse_document(text, file, fmt, limits=LIMITS)
    if not isinstance(root, Table):
        raise _fail(root.pos, f"a policy is a table (TOML) or an object (JSON) at the top level, not {describe(root)}")
    return root, text.replace("\r\n", "\n").split("\n") if fmt is Format.TOML else ()


def _load_text(text: str, file: str, fmt: Format, *, refs: References | None = None, real: Path | None = None,
               default_name: str) -> Policy:
    root, lines = _parse(text, file, fmt)
    return _from_docs(_Doc(root, file, lines, refs, real), default_name)


def _from_docs(top: _Doc, default_name: str) -> Policy:
    merged = _Merged()
    _merge(top, merged, depth=0, stack=())
    return _build(top, merged, default_name)


# -- one file ---------------------------------------------------------------------------------------------------

def _member_table(doc: _Doc, key: str, what: str) -> Table | None:
    member = doc.root.members.get(key)
    if member is None:
        return None
    if not isinstance(member.value, Table):
        raise _fail(member.value.pos, f"{what} must be a table, not {describe(member.value)}")
    return member.value


def _check_keys(table: Table, allowed: Sequence[str], what: str, listing: int = 12) -> None:
    for key, member in table.members.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed, listing=listing)
            raise _fail(member.key_pos, f"unknown key {token(key)} in {what}{hint}")


def _merge(doc: _Doc, merged: _Merged, *, depth: int, stack: tuple[Path, ...]) -> None:
    merged.sources.append(doc.file)
    for key, member in doc.root.members.items():
        if key not in _TOP_KEYS:
            raise _fail(member.key_pos, f"unknown section {token(key)}{did_you_mean(key, _TOP_KEYS)}")
    head = _member_table(doc, "policy", "[policy]")
    if head is not None:
        _check_keys(head, _POLICY_KEYS, "[policy]")
        for key in ("name", "description"):
            node = head.get(key)
            if node is not None:
                (_NAME if key == "name" else _TEXT).read(node, token(key))
        for key, check in _SETTINGS.items():
            node = head.get(key)
            if node is None:
                continue
            value = check(node)
            seen = merged.settings.get(key)
            if seen is not None and seen[0] != value:
                raise _fail(node.pos, f'`{key} = "{value}"` conflicts with `"{seen[0]}"` in {seen[1]}')
            merged.settings.setdefault(key, (value, doc.file))
    flags_table = _member_table(doc, "flags", "[flags]")
    if flags_table is not None:
        flags = _flags(doc, flags_table)
        if merged.flags is not None and merged.flags[0] != flags:
            raise _fail(flags_table.pos, f"[flags] differs from the one in {merged.flags[1]}")
        merged.flags = (flags, doc.file)
    register_table = _member_table(doc, "register", "[register]")
    if register_table is not None:
        register = _register(register_table)
        if merged.register is not None and merged.register[0] != register:
            raise _fail(register_table.pos, f"[register] differs from the one in {merged.register[1]}")
        merged.register = (register, doc.file)
    for action in Action:
        node = doc.root.get(action.value)
        if node is None:
            continue
        if not isinstance(node, Array):
            raise _fail(node.pos, f"[[{action.value}]] entries must be tables (write `[[{action.value}]]`), not "
                                  f"{describe(node)}")
        for item in node.items:
            if not isinstance(item, Table):
                raise _fail(item.pos, f"[[{action.value}]] entries must be tables, not {describe(item)}")
            merged.rules.append(_rule(doc, action, item))
            if len(merged.rules) > MAX_RULES:
                raise _fail(item.pos, f"more than {MAX_RULES} rules")
    if head is not None and "include" in head:
        _includes(doc, head, merged, depth=depth, stack=stack)


def _includes(doc: _Doc, head: Table, merged: _Merged, *, depth: int, stack: tuple[Path, ...]) -> None:
    node = head.get("include")
    assert node is not None
    items = node.items if isinstance(node, Array) else (node,)
    names = [(_FILE_NAME.read(item, "`include`"), item.pos) for item in items]
    for name, at in names:
        if doc.refs is None:
            raise _fail(at, "`include` needs a policy read from a file")
        if depth >= MAX_INCLUDE_DEPTH:
            raise _fail(at, f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
        if len(merged.sources) >= MAX_FILES:
            raise _fail(at, f"more than {MAX_FILES} policy files in all")
        source = doc.refs.read(name, at, POLICY_FILE)
        assert source.path is not None
        real = source.path
        if real in stack or real == doc.real:
            raise _fail(at, f"include {token(name)} includes itself (directly or through other files)")
        shown = escape(os.path.normpath(os.path.join(os.path.dirname(doc.file), name)))
        root, lines = _parse(source.text, shown, format_of(name))
        included = _Doc(root, shown, lines, References(real.parent, doc.refs.root), real)
        _merge(included, merged, depth=depth + 1, stack=(*stack, *((doc.real,) if doc.real is not None else ())))


# -- [policy] settings ------------------------------------------------------------------------------------------

def _text(node: Node, key: str) -> str:
    if not isinstance(node, Scalar) or not isinstance(node.value, str):
        raise _fail(node.pos, f"`{key}` is a string, not {describe(node)}")
    return node.value


def _choice(key: str, options: tuple[str, ...]) -> Callable[[Node], str]:
    def check(node: Node) -> str:
        value = _text(node, key)
        if value not in options:
            shown = " or ".join(f'"{o}"' for o in options)
            raise _fail(node.pos, f"`{key}` is {shown}, not {token(value)}{did_you_mean(value, options)}")
        return value

    return check


def _kernel(node: Node) -> str:
    value = _text(node, "kernel")
    if not _KERNEL.fullmatch(value):
        raise _fail(node.pos, f'`kernel` is a minimum version written like "7.2+", not {token(value)}')
    return value


_SETTINGS: Final[dict[str, Callable[[Node], str]]] = {
    "default": _choice("default", ("deny", "allow")),
    "kernel": _kernel,
    "target": _choice("target", ("task", "ring")),
}


def _build(top: _Doc, merged: _Merged, default_name: str) -> Policy:
    head = top.root.get("policy")
    name, description = default_name, ""
    if isinstance(head, Table):
        name_node, text_node = head.get("name"), head.get("description")
        name = _NAME.read(name_node, "`name`") if name_node is not None else default_name
        description = _TEXT.read(text_node, "`description`") if text_node is not None else ""
    default = merged.settings.get("default", ("deny", ""))[0]
    target = merged.settings.get("target", ("task", ""))[0]
    m = _KERNEL.fullmatch(merged.settings.get("kernel", ("7.0+", ""))[0])
    assert m is not None
    return Policy(name, tuple(merged.rules), Action(default), TargetKind(target), (int(m.group(1)), int(m.group(2))),
                  None if merged.flags is None else merged.flags[0],
                  None if merged.register is None else merged.register[0], description, tuple(merged.sources))


# -- sections ---------------------------------------------------------------------------------------------------

def _flag_bits(node: Node, key: str) -> int:
    items = node.items if isinstance(node, Array) else (node,)
    out = 0
    for item in items:
        if not isinstance(item, Scalar):
            raise _fail(item.pos, f"`{key}`: an SQE flag name, not {describe(item)}")
        value = item.value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0x7F:
            out |= value
            continue
        if not isinstance(value, str):
            raise _fail(item.pos, f"`{key}`: an SQE flag name or a number in 0..0x7f, not {describe(item)}")
        for part in value.split("|"):
            flag = part.strip().upper().removeprefix("IOSQE_")
            if flag not in SqeFlag.__members__:
                raise _fail(item.pos, f"`{key}`: unknown SQE flag {token(part.strip())}"
                                      f"{did_you_mean(flag, SqeFlag.__members__)}")
            out |= int(SqeFlag[flag])
    return out


def _flags(doc: _Doc, table: Table) -> Flags:
    _check_keys(table, ("allowed", "required"), "[flags]")
    allowed, required = table.get("allowed"), table.get("required")
    member = doc.root.members["flags"]
    at = member.key_pos if member.key_pos.line else table.pos
    return Flags(0 if allowed is None else _flag_bits(allowed, "allowed"),
                 0 if required is None else _flag_bits(required, "required"), Pos(at.file, at.line, at.column))


def _register(table: Table) -> frozenset[int]:
    _check_keys(table, ("allowed",), "[register]")
    items = table.get("allowed")
    if items is None:
        return frozenset()
    if not isinstance(items, Array):
        raise _fail(items.pos, f"`allowed` is a list of register opcodes, not {describe(items)}")
    out = set()
    for item in items.items:
        value = item.value if isinstance(item, Scalar) else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 256:
            out.add(value)
            continue
        if not isinstance(value, str):
            raise _fail(item.pos, f"a register opcode name or a number in 0..255, not {describe(item)}")
        name = value.upper().removeprefix("IORING_")
        name = name.removeprefix("REGISTER_") if name.startswith("REGISTER_") else name
        if name not in RegisterOp.__members__:
            raise _fail(item.pos, f"unknown register opcode {token(value)}{did_you_mean(name, RegisterOp.__members__)}")
        out.add(int(RegisterOp[name]))
    return frozenset(out)


def _op_name(op: int) -> str:
    try:
        return SqeOp(op).name
    except ValueError:
        return str(op)


def _opcode(node: Node) -> int:
    value = node.value if isinstance(node, Scalar) else None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 256:
            raise _fail(node.pos, f"opcode {_number_shown(value)} is out of range 0..255")
        return value
    if not isinstance(value, str):
        raise _fail(node.pos, f"an opcode name or a number in 0..255, not {describe(node)}")
    name = value.upper().removeprefix("IORING_OP_")
    if name not in SqeOp.__members__:
        raise _fail(node.pos, f"unknown opcode {token(value)}{did_you_mean(name, SqeOp.__members__)}")
    return int(SqeOp[name])


@dataclass(frozen=True, slots=True)
class _Entry:
    """One key of a rule, groups flattened (``socket.family``): where the key starts, where its own name is,
    and its value."""

    start: At
    key_pos: At
    value: Node


def _flatten(doc: _Doc, table: Table, what: str) -> dict[str, _Entry]:
    flat: dict[str, _Entry] = {}
    for key, member in table.members.items():
        if key in _GROUPS and isinstance(member.value, Table):
            entries = [(f"{key}.{sub}", _Entry(doc.key_start(member.key_pos, inner.key_pos), inner.key_pos,
                                               inner.value))
                       for sub, inner in member.value.members.items()]
        else:
            entries = [(key, _Entry(member.key_pos, member.key_pos, member.value))]
        for name, entry in entries:
            if name in flat:
                raise _fail(entry.key_pos, f"{token(name)} is given twice in {what}")
            flat[name] = entry
    return flat


def _rule(doc: _Doc, action: Action, table: Table) -> Rule:
    what = f"a [[{action.value}]] rule"
    flat = _flatten(doc, table, what)
    known = (*_RULE_KEYS, *FIELDS)
    for key, entry in flat.items():
        if key not in known:
            raise _fail(entry.key_pos, f"unknown key {token(key)} in {what}{did_you_mean(key, known, listing=20)}")
    if ("op" in flat) == ("ops" in flat):
        at = flat["ops"].key_pos if "op" in flat else table.pos
        raise _fail(at, "a rule names its opcodes with `op` or `ops` (one of them)")
    if "ops" in flat:
        ops_node = flat["ops"].value
        if not isinstance(ops_node, Array) or not ops_node.items:
            raise _fail(ops_node.pos, f"`ops` is a non-empty list of opcodes, not {describe(ops_node)}")
        op_nodes: Sequence[Node] = ops_node.items
    else:
        op_nodes = (flat["op"].value,)
    ops = tuple(dict.fromkeys(_opcode(node) for node in op_nodes))
    reason = _TEXT.read(flat["reason"].value, "`reason`") if "reason" in flat else ""
    name = _NAME.read(flat["name"].value, "`name`") if "name" in flat else ""
    predicates = []
    for key, entry in flat.items():
        if key not in FIELDS:
            continue
        f = FIELDS[key]
        for op in ops:
            if not f.carried_by(op):
                carriers = ", ".join(SqeOp(o).name for o in sorted(f.ops))
                shown = _op_name(op)
                raise _fail(entry.key_pos, f"`{key}` is not in {shown}'s filter context (it is in {carriers}'s)")
        start = entry.start
        predicates.append(Predicate(key, _tests(f, entry.value), Pos(start.file, start.line, start.column)))
    return Rule(action, ops, tuple(predicates), reason, name, doc.header_pos(table))


# -- values -----------------------------------------------------------------------------------------------------

def _number(f: Field, node: Node) -> int:
    """One value of ``f``: an int, a constant name from the field's table, ``"A|B"``, or a hex/octal string."""
    def bad(why: str) -> PolicyError:
        return _fail(node.pos, f"`{f.name}`: {why}")

    value = node.value if isinstance(node, Scalar) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(f"a number or a constant name, not {describe(node)}")
    if isinstance(value, str):
        text, value = value, 0
        for part in text.split("|"):
            word = part.strip()
            if word in f.names:
                value |= f.names[word]
                continue
            number = None
            if len(word) <= 80 and _NUMBER_TEXT.fullmatch(word):
                try:
                    number = int(word, 0)
                except ValueError:
                    raise bad(f"{token(word)} is not a number (decimal digits without a leading 0, or "
                              "0x/0o/0b digits with single `_` between them)") from None
            if number is None:
                hint = did_you_mean(word, f.names) if f.names else "; expected a number"
                raise bad(f"unknown name {token(word)}{hint}")
            value |= number
    if f.kind is Kind.PORT and not 0 <= value <= 0xFFFF:
        raise bad(f"a port is 0..65535, not {_number_shown(value)}")
    if not 0 <= value <= f.limit:
        raise bad(f"{_number_shown(value)} does not fit in {f.bits} bits")
    if f.name == "sqe_flags" and value & KERNEL_ADDED_FLAGS:
        raise bad("filters cannot test IOSQE_ASYNC or IOSQE_IO_DRAIN: the kernel adds them to what filters see; "
                  "restrict the flags a submitter sets with [flags]")
    return value


def _items(node: Node) -> Sequence[Node]:
    return node.items if isinstance(node, Array) else (node,)


def _values(f: Field, node: Node) -> tuple[int, ...]:
    items = _items(node)
    if not items or len(items) > MAX_VALUES:
        raise _fail(node.pos, f"`{f.name}`: 1 to {MAX_VALUES} values, not {len(items)}")
    return tuple(dict.fromkeys(_number(f, v) for v in items))


def _networks(node: Node) -> tuple[Network, ...]:
    items = _items(node)
    if not items or len(items) > MAX_VALUES:
        raise _fail(node.pos, f"`connect.addr`: 1 to {MAX_VALUES} addresses, not {len(items)}")
    out = []
    for item in items:
        if not isinstance(item, Scalar) or not isinstance(item.value, str):
            raise _fail(item.pos, f"`connect.addr`: an address or CIDR prefix in quotes, not {describe(item)}")
        text = item.value.strip()
        try:
            if len(text) > 64 or not text.isascii():
                raise ValueError(text)
            out.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            why = "has host bits set (write the network's own address)" if "host bits" in str(exc) \
                else "is not an IPv4 or IPv6 address or CIDR prefix"
            raise _fail(item.pos, f"`connect.addr`: {token(text)} {why}") from None
    return tuple(out)


def _address_tests(node: Node) -> tuple[Test, ...]:
    if not isinstance(node, Table):
        return (InNetworks(_networks(node)),)
    _check_keys(node, ("in", "not_in"), "a `connect.addr` test")
    tests: list[Test] = []
    inside, outside = node.get("in"), node.get("not_in")
    if inside is not None:
        tests.append(InNetworks(_networks(inside)))
    if outside is not None:
        tests.append(InNetworks(_networks(outside), negate=True))
    return tuple(tests)


def _range(f: Field, table: Table) -> Range:
    if f.kind not in (Kind.NUMBER, Kind.PORT):
        raise _fail(table.pos, f"`{f.name}`: ranges are for numbers and ports")
    bounds = table.get("range")
    if bounds is not None:
        if not isinstance(bounds, Array) or len(bounds.items) != 2:
            raise _fail(bounds.pos, f"`{f.name}`: `range` is [lowest, highest], not {describe(bounds)}")
        lo, hi = (_number(f, b) for b in bounds.items)
    else:
        low, high = table.get("min"), table.get("max")
        lo = 0 if low is None else _number(f, low)
        hi = f.limit if high is None else _number(f, high)
    if lo > hi:
        raise _fail(table.pos, f"`{f.name}`: an empty range ({lo} > {hi})")
    return Range(lo, hi)


def _tests(f: Field, node: Node) -> tuple[Test, ...]:
    if f.kind is Kind.ADDRESS:
        return _address_tests(node)
    if not isinstance(node, Table):
        return (OneOf(_values(f, node)),)
    for name, member in node.members.items():
        if name not in _TEST_KEYS:
            raise _fail(member.key_pos, f"`{f.name}`: unknown test {token(name)}{did_you_mean(name, _TEST_KEYS)}")
    out: list[Test] = []
    inside, outside = node.get("in"), node.get("not_in")
    if inside is not None:
        out.append(OneOf(_values(f, inside)))
    if outside is not None:
        out.append(NoneOf(_values(f, outside)))
    if "range" in node or "min" in node or "max" in node:
        out.append(_range(f, node))
    for mode in BitMode:
        named = node.get(mode.value)
        if named is None:
            continue
        if f.kind is Kind.PORT:
            raise _fail(named.pos, f"`{f.name}`: bit tests are not for ports")
        bits = 0
        for v in _values(f, named):
            bits |= v
        if not bits:
            raise _fail(named.pos, f"`{f.name}`: `{mode.value}` names no bit")
        out.append(Bits(mode, bits))
    mask_node, equals_node = node.get("mask"), node.get("equals")
    if mask_node is not None or equals_node is not None:
        if mask_node is None or equals_node is None:
            raise _fail(node.pos, f"`{f.name}`: `mask` and `equals` go together")
        mask, value = _number(f, mask_node), _number(f, equals_node)
        if value & ~mask:
            raise _fail(equals_node.pos, f"`{f.name}`: `equals` has bits outside `mask` ({value:#x} & ~{mask:#x}): "
                                         "it can never match")
        out.append(Masked(mask, value))
    if not out:
        raise _fail(node.pos, f"`{f.name}`: an empty test table")
    return tuple(out)


__all__ = ["LIMITS", "MAX_BYTES", "MAX_FILES", "MAX_INCLUDE_DEPTH", "MAX_RULES", "MAX_VALUES", "from_data", "load",
           "loads"]
