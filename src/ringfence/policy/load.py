"""Policy files (TOML, or JSON with the same structure) to :class:`ringfence.policy.ast.Policy`.

Every value is checked here, with ``file:line:col`` and the closest valid name for an unknown one, so the
compiler only meets well-formed policies. ``include`` merges other files' rules; they must live inside the
policy root (the including file's directory unless a root is given). The format is ``docs/policy.md``.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ringfence.abi.opcodes import RegisterOp, SqeFlag, SqeOp
from ringfence.errors import PolicyError
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

#: Largest policy file read (a policy is a few kilobytes; includes count separately).
MAX_BYTES: Final = 1 << 20
MAX_INCLUDE_DEPTH: Final = 8
MAX_RULES: Final = 10_000
MAX_VALUES: Final = 4096

_POLICY_KEYS: Final = ("name", "description", "kernel", "target", "default", "include")
_TOP_KEYS: Final = ("policy", "flags", "register", "allow", "deny")
_RULE_KEYS: Final = ("op", "ops", "reason", "name")
_GROUPS: Final = ("socket", "open", "connect")
_TEST_KEYS: Final = ("in", "not_in", "range", "min", "max", "all", "none", "any", "mask", "equals")
_KERNEL: Final = re.compile(r"^(\d+)\.(\d+)\+$")


def _closest(word: str, options: Sequence[str]) -> str:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean `{found[0]}`?" if found else f"; expected one of: {', '.join(options)}"


def _show(value: Any) -> str:
    """A value for a message: short, control characters escaped."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Index:
    """Line and column of TOML table headers and keys, for messages (tomllib keeps no positions)."""

    _HEADER: Final = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
    _KEY: Final = re.compile(r"^(\s*)([A-Za-z0-9_.\"-]+)\s*=")

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.spots: dict[tuple[str, int, str], tuple[int, int]] = {}
        counts: dict[str, int] = {}
        table, index = "", 0
        for number, line in enumerate(text.splitlines(), start=1):
            if m := self._HEADER.match(line):
                table = m.group(2).strip('"')
                index = counts.get(table, 0)
                if m.group(1) == "[[":
                    counts[table] = index + 1
                self.spots.setdefault((table, index, ""), (number, m.start(2) + 1))
            elif m := self._KEY.match(line):
                key = m.group(2).replace('"', "")
                self.spots.setdefault((table, index, key), (number, len(m.group(1)) + 1))

    def pos(self, table: str, index: int = 0, key: str = "") -> Pos:
        spot = self.spots.get((table, index, key)) or self.spots.get((table, index, key.split(".", maxsplit=1)[0])) \
            or self.spots.get((table, index, ""))
        return Pos(self.file, *spot) if spot else Pos(self.file)


@dataclass
class _Doc:
    """One parsed file: its data, where things are, and its directory for includes."""

    data: Mapping[str, Any]
    index: _Index
    path: Path | None

    def error(self, message: str, table: str, index: int = 0, key: str = "") -> PolicyError:
        return PolicyError(message, where=str(self.index.pos(table, index, key)))


@dataclass(frozen=True, slots=True)
class _At:
    """Where a value sits: for messages."""

    doc: _Doc
    table: str
    index: int = 0
    key: str = ""

    def error(self, message: str) -> PolicyError:
        return self.doc.error(message, self.table, self.index, self.key)


@dataclass
class _Merged:
    rules: list[Rule] = field(default_factory=list)
    defaults: dict[str, tuple[Any, str]] = field(default_factory=dict)
    flags: tuple[Flags, str] | None = None
    register: tuple[frozenset[int], str] | None = None
    sources: list[str] = field(default_factory=list)


def load(path: str | Path, *, root: str | Path | None = None) -> Policy:
    """Load a policy file and everything it includes."""
    p = Path(path)
    base = Path(root).resolve() if root is not None else p.resolve().parent
    merged = _Merged()
    top = _read(p, str(path))
    _merge(top, merged, base, depth=0, stack=())
    return _build(top, merged, default_name=p.stem)


def loads(text: str, *, name: str = "<policy>", json_format: bool = False) -> Policy:
    """A policy from text (no includes allowed: there is no directory to resolve them in)."""
    doc = _parse(text, name, json_format, None)
    merged = _Merged()
    _merge(doc, merged, None, depth=0, stack=())
    return _build(doc, merged, default_name=Path(name).stem or "policy")


def from_data(data: Mapping[str, Any], *, name: str = "<policy>") -> Policy:
    """A policy from the file structure as Python data (what :mod:`ringfence.policy.build` produces)."""
    if not isinstance(data, Mapping):
        raise PolicyError("a policy is a mapping", where=name)
    doc = _Doc(dict(data), _Index("", name), None)
    for key in doc.data:
        if key not in _TOP_KEYS:
            raise doc.error(f"unknown section `{key}`{_closest(key, _TOP_KEYS)}", key)
    merged = _Merged()
    _merge(doc, merged, None, depth=0, stack=())
    return _build(doc, merged, default_name=name)


def _read(path: Path, shown: str) -> _Doc:
    try:
        if not path.is_file():
            raise PolicyError("not a regular file" if path.exists() else "no such file", where=shown)
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror}", where=shown) from None
    if len(data) > MAX_BYTES:
        raise PolicyError(f"larger than {MAX_BYTES} bytes", where=shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", where=shown) from None
    return _parse(text, shown, path.suffix.lower() == ".json", path)


def _parse(text: str, shown: str, json_format: bool, path: Path | None) -> _Doc:
    try:
        data = json.loads(text) if json_format else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(exc.msg, where=f"{shown}:{exc.lineno}:{exc.colno}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(str(exc), where=shown) from None
    except RecursionError:
        raise PolicyError("nested too deeply", where=shown) from None
    if not isinstance(data, dict):
        raise PolicyError("a policy is a table (TOML) or an object (JSON) at the top level", where=shown)
    doc = _Doc(data, _Index("" if json_format else text, shown), path)
    for key in data:
        if key not in _TOP_KEYS:
            raise doc.error(f"unknown section `{key}`{_closest(key, _TOP_KEYS)}", key)
    return doc


def _merge(doc: _Doc, merged: _Merged, base: Path | None, *, depth: int, stack: tuple[Path, ...]) -> None:
    merged.sources.append(doc.index.file)
    head = doc.data.get("policy", {})
    if not isinstance(head, Mapping):
        raise doc.error("[policy] must be a table", "policy")
    for key in head:
        if key not in _POLICY_KEYS:
            raise doc.error(f"unknown key `{key}` in [policy]{_closest(key, _POLICY_KEYS)}", "policy", 0, key)
    for key in ("default", "kernel", "target"):
        if key in head:
            value = head[key]
            seen = merged.defaults.get(key)
            if seen is not None and seen[0] != value:
                raise doc.error(f"`{key} = {_show(value)}` conflicts with `{_show(seen[0])}` in {seen[1]}", "policy", 0,
                                key)
            merged.defaults.setdefault(key, (value, doc.index.file))
    if "flags" in doc.data:
        flags = _flags(doc)
        if merged.flags is not None and merged.flags[0] != flags:
            raise doc.error(f"[flags] differs from the one in {merged.flags[1]}", "flags")
        merged.flags = (flags, doc.index.file)
    if "register" in doc.data:
        register = _register(doc)
        if merged.register is not None and merged.register[0] != register:
            raise doc.error(f"[register] differs from the one in {merged.register[1]}", "register")
        merged.register = (register, doc.index.file)
    for action in Action:
        raw = doc.data.get(action.value, [])
        if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
            raise doc.error(f"[[{action.value}]] entries must be tables", action.value)
        merged.rules += [_rule(doc, action, i, r) for i, r in enumerate(raw)]
        if len(merged.rules) > MAX_RULES:
            raise doc.error(f"more than {MAX_RULES} rules", action.value)
    includes = head.get("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise doc.error("`include` is a list of file names", "policy", 0, "include")
    for name in includes:
        if base is None or doc.path is None:
            raise doc.error("`include` needs a policy read from a file", "policy", 0, "include")
        target = (doc.path.parent / name).resolve()
        if base != target and base not in target.parents:
            raise doc.error(f"include {_show(name)} leaves the policy root", "policy", 0, "include")
        if target in stack or target == doc.path.resolve():
            raise doc.error(f"include {_show(name)} includes itself", "policy", 0, "include")
        if depth >= MAX_INCLUDE_DEPTH:
            raise doc.error(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", "policy", 0, "include")
        _merge(_read(target, str(Path(doc.index.file).parent / name)), merged, base, depth=depth + 1,
               stack=(*stack, doc.path.resolve()))


def _build(top: _Doc, merged: _Merged, *, default_name: str) -> Policy:
    head = top.data.get("policy", {})
    name = head.get("name", default_name)
    description = head.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise top.error("`name` and `description` are strings", "policy")

    def setting(key: str, default: str) -> tuple[str, str]:
        value, file = merged.defaults.get(key, (default, top.index.file))
        if not isinstance(value, str):
            raise PolicyError(f"`{key}` is a string, not {_show(value)}", where=file)
        return value, file

    default, file = setting("default", "deny")
    if default not in ("deny", "allow"):
        raise PolicyError(f"`default` is \"deny\" or \"allow\", not {_show(default)}", where=file)
    target, file = setting("target", "task")
    if target not in ("task", "ring"):
        raise PolicyError(f"`target` is \"task\" or \"ring\", not {_show(target)}", where=file)
    kernel, file = setting("kernel", "7.0+")
    m = _KERNEL.match(kernel)
    if not m:
        raise PolicyError(f"`kernel` is a minimum version written like \"7.2+\", not {_show(kernel)}", where=file)
    return Policy(name, tuple(merged.rules), Action(default), TargetKind(target), (int(m.group(1)), int(m.group(2))),
                  None if merged.flags is None else merged.flags[0],
                  None if merged.register is None else merged.register[0], description, tuple(merged.sources))


# -- sections ---------------------------------------------------------------------------------------------------

def _flag_bits(doc: _Doc, raw: Any, key: str, table: str = "flags", index: int = 0) -> int:
    names = raw if isinstance(raw, list) else [raw]
    out = 0
    for item in names:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 0x7F:
            out |= item
            continue
        if not isinstance(item, str):
            raise doc.error(f"`{key}`: an SQE flag name, not {_show(item)}", table, index, key)
        for part in item.split("|"):
            flag = part.strip().upper().removeprefix("IOSQE_")
            if flag not in SqeFlag.__members__:
                raise doc.error(f"`{key}`: unknown SQE flag {_show(part.strip())}"
                                f"{_closest(flag, list(SqeFlag.__members__))}", table, index, key)
            out |= int(SqeFlag[flag])
    return out


def _flags(doc: _Doc) -> Flags:
    raw = doc.data["flags"]
    if not isinstance(raw, Mapping):
        raise doc.error("[flags] must be a table", "flags")
    for key in raw:
        if key not in ("allowed", "required"):
            raise doc.error(f"unknown key `{key}` in [flags]{_closest(key, ('allowed', 'required'))}", "flags", 0, key)
    pos = doc.index.pos("flags")
    return Flags(_flag_bits(doc, raw.get("allowed", []), "allowed"), _flag_bits(doc, raw.get("required", []),
                                                                                   "required"), pos)


def _register(doc: _Doc) -> frozenset[int]:
    raw = doc.data["register"]
    if not isinstance(raw, Mapping):
        raise doc.error("[register] must be a table", "register")
    for key in raw:
        if key != "allowed":
            raise doc.error(f"unknown key `{key}` in [register]{_closest(key, ('allowed',))}", "register", 0, key)
    items = raw.get("allowed", [])
    if not isinstance(items, list):
        raise doc.error("`allowed` is a list of register opcodes", "register", 0, "allowed")
    out = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 256:
            out.add(item)
            continue
        if not isinstance(item, str):
            raise doc.error(f"a register opcode name, not {_show(item)}", "register", 0, "allowed")
        name = item.upper().removeprefix("IORING_")
        name = name.removeprefix("REGISTER_") if name.startswith("REGISTER_") else name
        if name not in RegisterOp.__members__:
            raise doc.error(f"unknown register opcode {_show(item)}{_closest(name, list(RegisterOp.__members__))}",
                            "register", 0, "allowed")
        out.add(int(RegisterOp[name]))
    return frozenset(out)


def _opcode(doc: _Doc, raw: Any, table: str, index: int) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 0 <= raw < 256:
            raise doc.error(f"opcode {raw} is out of range", table, index, "op")
        return raw
    if not isinstance(raw, str):
        raise doc.error(f"an opcode name, not {_show(raw)}", table, index, "op")
    name = raw.upper().removeprefix("IORING_OP_")
    if name not in SqeOp.__members__:
        raise doc.error(f"unknown opcode {_show(raw)}{_closest(name, list(SqeOp.__members__))}", table, index, "op")
    return int(SqeOp[name])


def _rule(doc: _Doc, action: Action, index: int, raw: Mapping[str, Any]) -> Rule:
    table = action.value
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _GROUPS and isinstance(value, Mapping):
            for sub, inner in value.items():
                flat[f"{key}.{sub}"] = inner
        else:
            flat[key] = value
    known = (*_RULE_KEYS, *FIELDS)
    for key in flat:
        if key not in known:
            raise doc.error(f"unknown key `{key}` in a [[{table}]] rule{_closest(key, known)}", table, index, key)
    if ("op" in flat) == ("ops" in flat):
        raise doc.error("a rule names its opcodes with `op` or `ops` (one of them)", table, index)
    ops_raw = flat.get("ops", [flat.get("op")])
    if not isinstance(ops_raw, list) or not ops_raw:
        raise doc.error("`ops` is a non-empty list of opcodes", table, index, "ops")
    ops = tuple(dict.fromkeys(_opcode(doc, o, table, index) for o in ops_raw))
    reason, name = flat.get("reason", ""), flat.get("name", "")
    if not isinstance(reason, str) or not isinstance(name, str):
        raise doc.error("`reason` and `name` are strings", table, index)
    predicates = []
    for key, value in flat.items():
        if key in FIELDS:
            f = FIELDS[key]
            for op in ops:
                if not f.carried_by(op):
                    carriers = ", ".join(SqeOp(o).name for o in sorted(f.ops))
                    name_ = SqeOp(op).name if op < len(SqeOp) else str(op)
                    raise doc.error(f"`{key}` is not in {name_}'s filter context (it is in {carriers}'s)", table,
                                    index, key)
            pos = doc.index.pos(table, index, key)
            predicates.append(Predicate(key, _tests(f, value, _At(doc, table, index, key)), pos))
    return Rule(action, ops, tuple(predicates), reason, name, doc.index.pos(table, index))


# -- values -----------------------------------------------------------------------------------------------------

def _number(f: Field, raw: Any, at: _At) -> int:
    """One value of ``f``: an int, a constant name from the field's table, ``"A|B"``, or a hex/octal string."""
    def bad(why: str) -> PolicyError:
        return at.error(f"`{f.name}`: {why}")

    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise bad(f"a number or a constant name, not {_show(raw)}")
    if isinstance(raw, int):
        value = raw
    else:
        value = 0
        for part in raw.split("|"):
            word = part.strip()
            if word in f.names:
                value |= f.names[word]
            elif re.fullmatch(r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d+", word):
                value |= int(word, 0)
            else:
                options = list(f.names) or ["a number"]
                raise bad(f"unknown name {_show(word)}{_closest(word, options)}")
    if f.kind is Kind.PORT and not 0 <= value <= 0xFFFF:
        raise bad(f"a port is 0..65535, not {value}")
    if not 0 <= value <= f.limit:
        raise bad(f"{value} does not fit in {f.bits} bits")
    if f.name == "sqe_flags" and value & KERNEL_ADDED_FLAGS:
        raise bad("filters cannot test IOSQE_ASYNC or IOSQE_IO_DRAIN: the kernel adds them to what filters see; "
                  "restrict the flags a submitter sets with [flags]")
    return value


def _values(f: Field, raw: Any, at: _At) -> tuple[int, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_VALUES:
        raise at.error(f"`{f.name}`: 1 to {MAX_VALUES} values")
    return tuple(dict.fromkeys(_number(f, v, at) for v in items))


def _networks(raw: Any, at: _At) -> tuple[Network, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_VALUES:
        raise at.error(f"`connect.addr`: 1 to {MAX_VALUES} addresses")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise at.error(f"`connect.addr`: an address or CIDR prefix in quotes, not {_show(item)}")
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError as exc:
            raise at.error(f"`connect.addr`: {exc}") from None
    return tuple(out)


def _address_tests(raw: Any, at: _At) -> tuple[Test, ...]:
    if not isinstance(raw, Mapping):
        return (InNetworks(_networks(raw, at)),)
    extra = set(raw) - {"in", "not_in"}
    if extra:
        raise at.error(f"`connect.addr`: an address test is `in` or `not_in`, not `{sorted(extra)[0]}`")
    tests: list[Test] = []
    if "in" in raw:
        tests.append(InNetworks(_networks(raw["in"], at)))
    if "not_in" in raw:
        tests.append(InNetworks(_networks(raw["not_in"], at), negate=True))
    return tuple(tests)


def _range(f: Field, raw: Mapping[str, Any], at: _At) -> Range:
    if f.kind not in (Kind.NUMBER, Kind.PORT):
        raise at.error(f"`{f.name}`: ranges are for numbers and ports")
    if "range" in raw:
        bounds = raw["range"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise at.error(f"`{f.name}`: `range` is [lowest, highest]")
        lo, hi = (_number(f, b, at) for b in bounds)
    else:
        lo = _number(f, raw.get("min", 0), at)
        hi = _number(f, raw["max"], at) if "max" in raw else f.limit
    if lo > hi:
        raise at.error(f"`{f.name}`: an empty range ({lo} > {hi})")
    return Range(lo, hi)


def _tests(f: Field, raw: Any, at: _At) -> tuple[Test, ...]:
    if f.kind is Kind.ADDRESS:
        return _address_tests(raw, at)
    if not isinstance(raw, Mapping):
        return (OneOf(_values(f, raw, at)),)
    for name in raw:
        if name not in _TEST_KEYS:
            raise at.error(f"`{f.name}`: unknown test `{name}`{_closest(name, _TEST_KEYS)}")
    out: list[Test] = []
    if "in" in raw:
        out.append(OneOf(_values(f, raw["in"], at)))
    if "not_in" in raw:
        out.append(NoneOf(_values(f, raw["not_in"], at)))
    if "range" in raw or "min" in raw or "max" in raw:
        out.append(_range(f, raw, at))
    for mode in BitMode:
        if mode.value in raw:
            if f.kind is Kind.PORT:
                raise at.error(f"`{f.name}`: bit tests are not for ports")
            bits = 0
            for v in _values(f, raw[mode.value], at):
                bits |= v
            if not bits:
                raise at.error(f"`{f.name}`: `{mode.value}` names no bit")
            out.append(Bits(mode, bits))
    if "mask" in raw or "equals" in raw:
        if "mask" not in raw or "equals" not in raw:
            raise at.error(f"`{f.name}`: `mask` and `equals` go together")
        mask, value = _number(f, raw["mask"], at), _number(f, raw["equals"], at)
        if value & ~mask:
            raise at.error(f"`{f.name}`: `equals` has bits outside `mask` ({value:#x} & ~{mask:#x}): it can never "
                           "match")
        out.append(Masked(mask, value))
    if not out:
        raise at.error(f"`{f.name}`: an empty test table")
    return tuple(out)
