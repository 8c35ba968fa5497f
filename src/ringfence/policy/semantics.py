"""What a policy means, as an evaluator: the reference every compiled Plan is checked against.

A request is allowed iff

1. its SQE flags, **as the submitter set them**, satisfy ``[flags]`` (every required bit set, no bit outside
   allowed ∪ required), when the policy restricts flags;
2. no **deny** rule for its opcode matches;
3. an **allow** rule for its opcode matches, if the opcode has allow rules; an opcode without any rule
   follows ``default``; an opcode with deny rules only follows ``default`` where none matches;
4. for CONNECT, when a rule for it tests a ``connect.*`` field: the context does not report family 0, unless
   an allow rule names family 0 (``connect.family = 0``).

Rule order never matters. Predicates read the filter's context (post-prep values; see
:mod:`ringfence.policy.fields`). Register opcodes are allowed iff ``[register]`` lists them (or the policy
does not restrict them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from ringfence.abi.constants import AF
from ringfence.abi.opcodes import SqeOp
from ringfence.policy.ast import (
    Action,
    BitMode,
    Bits,
    InNetworks,
    Masked,
    NoneOf,
    OneOf,
    Policy,
    Predicate,
    Range,
    Rule,
    Test,
)
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK, Field, Kind

AF_INET: Final = AF["AF_INET"]
AF_INET6: Final = AF["AF_INET6"]
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
CONNECT: Final = int(SqeOp.CONNECT)


def read(f: Field, ctx: bytes) -> int:
    """The field's value in the context: native (little-endian) integers, a port in host order, an address as
    the integer of its network-order bytes (IPv4: 4 bytes, IPv6: 16)."""
    raw = ctx[f.offset:f.offset + f.size]
    if f.kind is Kind.PORT:
        return int.from_bytes(raw, "big")
    if f.kind is Kind.ADDRESS:
        return int.from_bytes(raw[:4] if family(ctx) == AF_INET else raw, "big")
    return int.from_bytes(raw, "little")


def family(ctx: bytes) -> int:
    return int.from_bytes(ctx[16:20], "little")


def _equal(f: Field, value: int, wanted: int) -> bool:
    if f.kind is Kind.SOCKET_TYPE:
        kind, named = wanted & SOCK_TYPE_MASK, wanted & ~SOCK_TYPE_MASK
        return value & SOCK_TYPE_MASK == kind and value & named == named
    return value == wanted


def _in_networks(test: InNetworks, ctx: bytes) -> bool:
    fam = family(ctx)
    if fam == AF_INET:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(ctx[24:28])
    elif fam == AF_INET6:
        address = ipaddress.IPv6Address(ctx[24:40])
    else:
        return False  # address tests hold only for AF_INET and AF_INET6 requests
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    found = any(address in net or (mapped is not None and net.version == 4 and mapped in net)
                for net in test.networks if net.version == address.version or mapped is not None)
    return found != test.negate


def test_holds(f: Field, test: Test, ctx: bytes) -> bool:
    """One test on one field of ``ctx``."""
    if isinstance(test, InNetworks):
        return _in_networks(test, ctx)
    value = read(f, ctx)
    if isinstance(test, OneOf):
        return any(_equal(f, value, v) for v in test.values)
    if isinstance(test, NoneOf):
        return not any(_equal(f, value, v) for v in test.values)
    if isinstance(test, Range):
        return test.lo <= value <= test.hi
    if isinstance(test, Bits):
        hit = value & test.mask
        return {BitMode.ALL: hit == test.mask, BitMode.NONE: hit == 0, BitMode.ANY: hit != 0}[test.mode]
    if isinstance(test, Masked):
        return value & test.mask == test.value
    raise AssertionError(test)


def predicate_holds(pred: Predicate, ctx: bytes) -> bool:
    f = FIELDS[pred.field]
    return all(test_holds(f, t, ctx) for t in pred.tests)


def matches(rule: Rule, ctx: bytes) -> bool:
    return all(predicate_holds(p, ctx) for p in rule.predicates)


def flags_allowed(policy: Policy, raw_flags: int) -> bool:
    """The classic check: ``raw_flags`` as submitted against ``[flags]``."""
    if policy.flags is None:
        return True
    allowed, required = policy.flags.allowed, policy.flags.required
    return raw_flags & required == required and not raw_flags & ~(allowed | required)


def register_allowed(policy: Policy, opcode: int) -> bool:
    return policy.register is None or opcode in policy.register


def guards_family_zero(policy: Policy) -> bool:
    """Whether CONNECT contexts with family 0 are denied (rule 4 of the module docstring)."""
    rules = policy.rules_for(CONNECT)
    tests_connect = any(p.field.startswith("connect.") for r in rules for p in r.predicates)
    names_zero = any(p.field == "connect.family" and any(isinstance(t, OneOf) and 0 in t.values for t in p.tests)
                     for r in rules if r.action is Action.ALLOW for p in r.predicates)
    return tests_connect and not names_zero


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's answer for one request, and what decided it: ``flags``, ``deny`` or ``allow`` (a rule),
    ``no-allow`` (allow rules exist, none matched), ``default``, or ``family-zero``."""

    allowed: bool
    by: str
    rule: Rule | None = None


def opcode_verdict(policy: Policy, opcode: int, ctx: bytes) -> Verdict:
    """Rules 2-4: the decision for ``opcode`` given the filter's context."""
    rules = policy.rules_for(opcode)
    for rule in rules:
        if rule.action is Action.DENY and matches(rule, ctx):
            return Verdict(False, "deny", rule)
    if opcode == CONNECT and family(ctx) == 0 and guards_family_zero(policy):
        return Verdict(False, "family-zero")
    allows = [r for r in rules if r.action is Action.ALLOW]
    if allows:
        hit = next((r for r in allows if matches(r, ctx)), None)
        return Verdict(True, "allow", hit) if hit is not None else Verdict(False, "no-allow")
    return Verdict(policy.default is Action.ALLOW, "default")


def decide(policy: Policy, opcode: int, raw_flags: int, ctx: bytes) -> Verdict:
    """The whole policy for one request: its raw SQE flags first, then the opcode's rules on ``ctx``."""
    if not flags_allowed(policy, raw_flags):
        return Verdict(False, "flags")
    return opcode_verdict(policy, opcode, ctx)
