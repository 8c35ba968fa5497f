"""Reading outcomes and expectations: ``"ok"`` or an errno name, submit tables, per-kernel tables."""

from __future__ import annotations

import errno
import re
from typing import Final

from ringfence.errors import errno_name
from ringfence.inputs.nodes import Node, Scalar, Table
from ringfence.inputs.position import Pos
from ringfence.inputs.schema import U64, Custom, Either, Fields, Int, MapOf, Schema, error_at, int_text, label
from ringfence.inputs.suggest import did_you_mean
from ringfence.inputs.text import token
from ringfence.scenario import steps as s
from ringfence.scenario.caps import MAX_SELECTORS, MAX_SQES

#: Kernel selectors: ``*``, ``all``, ``7.2``, ``7.0+``, ``<7.0``, ``>=7.2``, ``6.18-7.1``.
SELECTOR: Final = re.compile(r"\*|all|[0-9]{1,3}\.[0-9]{1,3}\+|(?:<=|>=|<|>)?[0-9]{1,3}\.[0-9]{1,3}"
                             r"|[0-9]{1,3}\.[0-9]{1,3}-[0-9]{1,3}\.[0-9]{1,3}")
_NUMBERED: Final = re.compile(r"E([1-9][0-9]{0,3})")

#: Errno names as outcomes spell them (the kernel's spelling where libc has two), and every alias to it.
ERRNO_NAMES: Final = {errno_name(number) for number in errno.errorcode}
_ALIASES: Final = {name: errno_name(value) for name in dir(errno)
                   if name.startswith("E") and isinstance(value := getattr(errno, name), int)}


def outcome_text(text: str) -> str | None:
    """The outcome ``text`` stands for (``ok``, or the errno name results use), or None."""
    if text == s.OK:
        return text
    if text in _ALIASES:
        return _ALIASES[text]
    numbered = _NUMBERED.fullmatch(text)
    if numbered and int(numbered.group(1)) < 4096:
        return errno_name(int(numbered.group(1)))
    return None


def _outcome(node: Node, name: str) -> str:
    if not isinstance(node, Scalar) or not isinstance(node.value, str):
        raise error_at(node, f"{name}: expected an outcome (`ok` or an errno name such as `EACCES`), "
                             f"found {'a table' if isinstance(node, Table) else 'another type of value'}")
    found = outcome_text(node.value.strip())
    if found is None:
        raise error_at(node, f"{name}: {token(node.value)} is neither `ok` nor an errno name"
                             f"{did_you_mean(node.value.strip().upper(), ERRNO_NAMES | {s.OK})}")
    return found


def _is_text(node: Node) -> bool:
    return isinstance(node, Scalar) and isinstance(node.value, str)


OUTCOME: Final = Custom(_outcome, "an outcome (`ok` or an errno name)", _is_text)


def _errno_only(node: Node, name: str) -> str:
    found = _outcome(node, name)
    if found == s.OK:
        raise error_at(node, f"{name}: a submit step's result is a count or an errno name; write "
                             "`{ submitted = N }` for success")
    return found


ERRNO: Final = Custom(_errno_only, "an errno name", _is_text)
SUBMITTED: Final[Schema[int | str]] = Either((Int(0, MAX_SQES), ERRNO))


def _ud_key(text: str, pos: Pos, name: str) -> int:
    value = int_text(text)
    if value is None or value > U64:
        raise pos.error(f"{name}: key {token(text)} is not a user_data value (decimal or 0x hex, 0..2**64-1)")
    return value


CQES: Final = MapOf(_ud_key, OUTCOME, MAX_SQES)


def selector(node: Node, name: str) -> str:
    """A kernel selector (``7.0+``), checked so that matching it cannot fail later."""
    if not isinstance(node, Scalar) or not isinstance(node.value, str) or not SELECTOR.fullmatch(node.value):
        shown = token(node.value) if isinstance(node, Scalar) and isinstance(node.value, str) else "this value"
        raise error_at(node, f"{name}: {shown} is not a kernel selector (`*`, `7.2`, `7.0+`, `<7.0`, `>=7.2`, "
                             "`6.18-7.1`)")
    return node.value


SELECTOR_SCHEMA: Final = Custom(selector, "a kernel selector", _is_text)


def _submit_table(node: Node, name: str) -> s.SubmitExpect:
    fields = Fields(node, allowed=("submitted", "cqes"), path=name.strip("`"), what="a submit expectation")
    submitted = fields.get("submitted", SUBMITTED, None)
    cqes = fields.get("cqes", CQES, None)
    return s.SubmitExpect(submitted, None if cqes is None else tuple(sorted(cqes)))


def _value(node: Node, name: str, submit: bool) -> s.Expect:
    if submit and isinstance(node, Table):
        return _submit_table(node, name)
    if submit:
        return _errno_only(node, name)
    if isinstance(node, Table):
        raise error_at(node, f"{name}: only submit steps expect a table of `submitted` and `cqes`; this step's "
                             "result is an outcome (`ok` or an errno name)")
    return _outcome(node, name)


def expectation(fields: Fields, *, submit: bool) -> s.Expectation:
    """The step's ``expect``: an outcome, a submit table (submit steps), or a table of them by kernel selector."""
    node = fields.node("expect")
    if node is None:
        return s.Expectation()
    name = fields.label("expect")
    if not isinstance(node, Table):
        return s.Expectation(default=_value(node, name, submit))
    if not any(SELECTOR.fullmatch(key) for key in node.members):
        if submit:
            return s.Expectation(default=_submit_table(node, name))
        if set(node.members) <= {"submitted", "cqes"}:
            raise error_at(node, f"{name}: only submit steps expect a table of `submitted` and `cqes`; this "
                                 "step's result is an outcome (`ok` or an errno name)")
    if len(node.members) > MAX_SELECTORS:
        raise error_at(node, f"{name}: more than {MAX_SELECTORS} kernel selectors")
    by_kernel = []
    for key, member in node.members.items():
        if not SELECTOR.fullmatch(key):
            raise member.key_pos.error(f"{name}: {token(key)} is not a kernel selector (`*`, `7.2`, `7.0+`, "
                                       "`<7.0`, `>=7.2`, `6.18-7.1`); a per-kernel expectation has only selector "
                                       "keys")
        by_kernel.append((key, _value(member.value, label("expect", key), submit)))
    return s.Expectation(by_kernel=tuple(by_kernel))
