"""Policies in Python: the same language as the files, with the same checks.

>>> from ringfence.policy.build import allow, deny, policy
>>> p = policy("tcp-client", allow("READ", "WRITE"),
...            allow("SOCKET", socket_family=["AF_INET", "AF_INET6"], socket_type="SOCK_STREAM"),
...            deny("CONNECT", connect_port=22), allow("CONNECT"), kernel="7.2+")

Field keywords are field names with ``_`` for ``.`` (``socket_family`` is ``socket.family``); values are
spelled as in a file. The builder produces the file structure and loads it through the same code, so a policy
built here and the same policy read from TOML compare equal and compile to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ringfence.policy.ast import Policy
from ringfence.policy.load import from_data

RuleData = dict[str, Any]


def _rule(ops: tuple[str | int, ...], reason: str, name: str, fields: dict[str, Any]) -> RuleData:
    out: RuleData = {"ops": list(ops)}
    if reason:
        out["reason"] = reason
    if name:
        out["name"] = name
    for key, value in fields.items():
        group, _, rest = key.partition("_")
        if group in ("socket", "open", "connect") and rest:
            out.setdefault(group, {})[rest] = value
        else:
            out[key] = value
    return out


def allow(*ops: str | int, reason: str = "", name: str = "", **fields: Any) -> tuple[str, RuleData]:
    """Allow ``ops`` when every field test holds."""
    return "allow", _rule(ops, reason, name, fields)


def deny(*ops: str | int, reason: str = "", name: str = "", **fields: Any) -> tuple[str, RuleData]:
    """Deny ``ops`` when every field test holds (deny rules always win)."""
    return "deny", _rule(ops, reason, name, fields)


def policy(name: str, *rules: tuple[str, RuleData], default: str = "deny", target: str = "task",
           kernel: str = "7.0+", description: str = "", flags_allowed: Iterable[str] | None = None,
           flags_required: Iterable[str] = (), register: Iterable[str] | None = None) -> Policy:
    """A whole policy; ``flags_allowed`` None leaves SQE flags unrestricted, ``register`` None register opcodes."""
    data: dict[str, Any] = {"policy": {"name": name, "default": default, "target": target, "kernel": kernel}}
    if description:
        data["policy"]["description"] = description
    if flags_allowed is not None:
        data["flags"] = {"allowed": list(flags_allowed), "required": list(flags_required)}
    if register is not None:
        data["register"] = {"allowed": list(register)}
    for action, rule in rules:
        data.setdefault(action, []).append(rule)
    return from_data(data, name=name)
