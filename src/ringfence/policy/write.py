"""A policy back to TOML: the text :func:`ringfence.policy.load.loads` reads into an equal policy.

Values are written with the field's constant names where a name says exactly the value (``AF_INET``,
``SOCK_STREAM|SOCK_CLOEXEC``, ``O_CREAT|O_WRONLY``), numbers otherwise. Comments (a header, lines above a rule,
one after an opcode) let a generator say why each rule is there; they never change what the file means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ringfence.abi.opcodes import RegisterOp, SqeFlag, op_name
from ringfence.policy.ast import Bits, InNetworks, Masked, NoneOf, OneOf, Policy, Predicate, Range, Rule
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK, Field, Kind


def _single_bit_names(f: Field) -> dict[int, str]:
    """For each bit the field's table names on its own, its first name (``O_NONBLOCK`` before ``O_NDELAY``)."""
    out: dict[int, str] = {}
    prefer_prefixed = f.name == "sqe_flags"
    for name, value in f.names.items():
        if value and not value & (value - 1) and value not in out:
            if prefer_prefixed and not name.startswith("IOSQE_"):
                continue
            out[value] = name
    return out


def _bits_text(f: Field, value: int) -> int | str:
    names = _single_bit_names(f)
    parts: list[str] = []
    rest = value
    for bit in sorted(names):
        if rest & bit:
            parts.append(names[bit])
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) if parts else 0


def value_text(f: Field, value: int) -> int | str:
    """One value of ``f`` as a file spells it (a name where one says exactly this value)."""
    if f.kind is Kind.SOCKET_TYPE:
        kinds = {v: n for n, v in f.names.items() if v and v <= SOCK_TYPE_MASK}
        kind = value & SOCK_TYPE_MASK
        flags = {v: n for n, v in f.names.items() if v > SOCK_TYPE_MASK}
        parts = [kinds.get(kind, str(kind))] if kind or value == 0 else []
        rest = value & ~SOCK_TYPE_MASK
        for bit, name in sorted(flags.items()):
            if rest & bit:
                parts.append(name)
                rest &= ~bit
        if rest:
            parts.append(hex(rest))
        return "|".join(parts) if value else 0
    if f.kind is Kind.BITS:
        return _bits_text(f, value)
    if f.name == "open.mode" and value:
        return f"0o{value:o}"
    if f.kind is Kind.NUMBER and value:
        for name, number in f.names.items():
            if number == value:
                return name
    return value


def _values(f: Field, values: Sequence[int]) -> Any:
    shown = [value_text(f, v) for v in values]
    return shown[0] if len(shown) == 1 else shown


def _bit_list(f: Field, mask: int) -> list[int | str]:
    names = _single_bit_names(f)
    out: list[int | str] = []
    for bit in range(f.bits):
        if mask >> bit & 1:
            out.append(names.get(1 << bit, hex(1 << bit)))
    return out


def predicate_data(p: Predicate) -> Any:
    """A predicate as the value a file writes after ``field =``."""
    f = FIELDS[p.field]
    if len(p.tests) == 1:
        only = p.tests[0]
        if isinstance(only, OneOf):
            return _values(f, only.values)
        if isinstance(only, InNetworks) and not only.negate:
            nets = [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in only.networks]
            return nets[0] if len(nets) == 1 else nets
    table: dict[str, Any] = {}
    for t in p.tests:
        if isinstance(t, OneOf):
            table["in"] = [value_text(f, v) for v in t.values]
        elif isinstance(t, NoneOf):
            table["not_in"] = [value_text(f, v) for v in t.values]
        elif isinstance(t, Range):
            table["range"] = [t.lo, t.hi]
        elif isinstance(t, Bits):
            table[t.mode.value] = _bit_list(f, t.mask)
        elif isinstance(t, Masked):
            table["mask"], table["equals"] = hex(t.mask), hex(t.value)
        else:
            nets = [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in t.networks]
            table["not_in" if t.negate else "in"] = nets
    return table


def toml_value(value: Any) -> str:
    """A TOML value: inline tables, arrays, integers and basic strings."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string (\uXXXX escapes included)


def _comment(lines: Sequence[str]) -> list[str]:
    return [("# " + line).rstrip() for line in lines]


def _flag_names(bits: int) -> list[str]:
    return [f.name or "" for f in SqeFlag if bits & f]


def rule_lines(rule: Rule, *, comments: Sequence[str] = (), op_comments: Mapping[int, str] | None = None) -> list[str]:
    """One ``[[allow]]``/``[[deny]]`` table."""
    lines = [*_comment(comments), f"[[{rule.action.value}]]"]
    if rule.name:
        lines.append(f"name = {toml_value(rule.name)}")
    if len(rule.ops) == 1 and not (op_comments and rule.ops[0] in op_comments):
        lines.append(f"op = {toml_value(op_name(rule.ops[0]))}")
    elif op_comments:
        width = max(len(op_name(op)) for op in rule.ops) + 4
        lines.append("ops = [")
        for op in rule.ops:
            note = op_comments.get(op, "")
            item = f"  {json.dumps(op_name(op)) + ',':<{width}}"
            lines.append(f"{item} # {note}".rstrip() if note else item.rstrip())
        lines.append("]")
    else:
        lines.append(f"ops = {toml_value([op_name(op) for op in rule.ops])}")
    for p in rule.predicates:
        lines.append(f"{p.field} = {toml_value(predicate_data(p))}")
    if rule.reason:
        lines.append(f"reason = {toml_value(rule.reason)}")
    return lines


def dumps(policy: Policy, *, header: Sequence[str] = (), rule_comments: Sequence[Sequence[str]] = (),
          op_comments: Sequence[Mapping[int, str]] = (), flags_comments: Sequence[str] = ()) -> str:
    """The policy as TOML. ``rule_comments[i]`` and ``op_comments[i]`` belong to ``policy.rules[i]``."""
    lines = _comment(header)
    if lines:
        lines.append("")
    lines += ["[policy]", f"name = {toml_value(policy.name)}"]
    if policy.description:
        lines.append(f"description = {toml_value(policy.description)}")
    lines += [f"kernel = {toml_value(policy.kernel_spec)}", f"target = {toml_value(policy.target.value)}",
              f"default = {toml_value(policy.default.value)}"]
    if policy.flags is not None:
        allowed = toml_value(_flag_names(policy.flags.allowed))
        lines += ["", *_comment(flags_comments), "[flags]", f"allowed = {allowed}"]
        if policy.flags.required:
            lines.append(f"required = {toml_value(_flag_names(policy.flags.required))}")
    if policy.register is not None:
        names = [RegisterOp(op).name if op in RegisterOp._value2member_map_ else op for op in sorted(policy.register)]
        lines += ["", "[register]", f"allowed = {toml_value(names)}"]
    for i, rule in enumerate(policy.rules):
        comments = rule_comments[i] if i < len(rule_comments) else ()
        notes = op_comments[i] if i < len(op_comments) else None
        lines += ["", *rule_lines(rule, comments=comments, op_comments=notes)]
    return "\n".join(lines) + "\n"
