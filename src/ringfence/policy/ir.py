"""A policy's decision for one opcode as a boolean formula over **atoms**: load-and-compare tests on the
context's 32-bit words, exactly what a classic-BPF filter can do.

:func:`opcode_formula` builds it from the syntax tree, following :mod:`ringfence.policy.semantics` rule for
rule (the z3 prover builds its own formula from the same syntax tree independently, so a mistake here cannot
hide behind a mistake there). Words are read as the filter reads them: native-endian, so network-order fields
(ports, addresses) compare against byte-swapped constants.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

from ringfence.policy.ast import Action, BitMode, Bits, InNetworks, Masked, Network, NoneOf, OneOf, Policy, Range, Test
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK, Field, Kind
from ringfence.policy.semantics import AF_INET, AF_INET6, CONNECT, guards_family_zero

U32: Final = 0xFFFFFFFF
#: ``::ffff:0:0/96`` as the three words 24, 28, 32 of the context hold it.
_MAPPED_WORDS: Final = (0, 0, int.from_bytes(b"\0\0\xff\xff", "little"))


class Cmp(enum.Enum):
    """The comparisons classic BPF jumps on: unsigned, against an immediate."""

    EQ = "jeq"
    GT = "jgt"
    GE = "jge"
    SET = "jset"   # (A & k) != 0


@dataclass(frozen=True, slots=True, order=True)
class Operand:
    """What a test compares: the context word at ``offset``, ANDed with ``mask``; with ``swap16`` the low two
    bytes swapped into a host-order port number (connect.port's word holds the network-order bytes)."""

    offset: int
    mask: int = U32
    swap16: bool = False


@dataclass(frozen=True, slots=True, order=True)
class Atom:
    operand: Operand
    cmp: Cmp
    k: int

    def holds(self, ctx: bytes) -> bool:
        word = int.from_bytes(ctx[self.operand.offset:self.operand.offset + 4], "little") & self.operand.mask
        if self.operand.swap16:
            word = ((word & 0xFF) << 8) | ((word >> 8) & 0xFF)
        return {Cmp.EQ: word == self.k, Cmp.GT: word > self.k, Cmp.GE: word >= self.k,
                Cmp.SET: bool(word & self.k)}[self.cmp]


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Not:
    arg: Formula


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Formula, ...]


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Formula, ...]


Formula = Const | Atom | Not | And | Or
TRUE: Final = Const(True)
FALSE: Final = Const(False)


def conj(*args: Formula) -> Formula:
    """``And`` with constants folded and nested ``And`` flattened."""
    out: list[Formula] = []
    for a in args:
        if a == FALSE:
            return FALSE
        if a == TRUE:
            continue
        out.extend(a.args if isinstance(a, And) else (a,))
    return TRUE if not out else out[0] if len(out) == 1 else And(tuple(out))


def disj(*args: Formula) -> Formula:
    out: list[Formula] = []
    for a in args:
        if a == TRUE:
            return TRUE
        if a == FALSE:
            continue
        out.extend(a.args if isinstance(a, Or) else (a,))
    return FALSE if not out else out[0] if len(out) == 1 else Or(tuple(out))


def neg(a: Formula) -> Formula:
    if isinstance(a, Const):
        return Const(not a.value)
    return a.arg if isinstance(a, Not) else Not(a)


def evaluate(f: Formula, ctx: bytes) -> bool:
    """The formula's value on a context (the compiler's tests compare generated programs against it)."""
    if isinstance(f, Const):
        return f.value
    if isinstance(f, Atom):
        return f.holds(ctx)
    if isinstance(f, Not):
        return not evaluate(f.arg, ctx)
    if isinstance(f, And):
        return all(evaluate(a, ctx) for a in f.args)
    return any(evaluate(a, ctx) for a in f.args)


def atoms(f: Formula) -> set[Atom]:
    if isinstance(f, Atom):
        return {f}
    if isinstance(f, Not):
        return atoms(f.arg)
    if isinstance(f, And | Or):
        return set().union(*(atoms(a) for a in f.args))
    return set()


# -- from fields to atoms ----------------------------------------------------------------------------------------

def _eq(offset: int, value: int, mask: int = U32) -> Atom:
    return Atom(Operand(offset, mask), Cmp.EQ, value & mask)


def _words(f: Field) -> list[tuple[int, int, int]]:
    """``(word offset, shift of the field in it, mask of the field's bits in that word)`` for each word ``f``
    covers, lowest-order value bits first."""
    if f.size == 8:
        return [(f.offset, 0, U32), (f.offset + 4, 32, U32)]
    if f.size == 4:
        return [(f.offset, 0, U32)]
    if f.size == 1:  # sqe_flags: byte 9 = bits 8..15 of word 8
        shift = 8 * (f.offset & 3)
        return [(f.offset & ~3, -shift, 0xFF << shift)]
    raise AssertionError(f.name)


def _part(value: int, shift: int, mask: int) -> int:
    """The piece of a field value that lives in one word (``shift`` < 0: the field sits higher in the word)."""
    return ((value >> shift) if shift >= 0 else (value << -shift)) & mask


def _equals(f: Field, value: int) -> Formula:
    if f.kind is Kind.PORT:
        return _eq(f.offset, int.from_bytes(value.to_bytes(2, "big"), "little"))
    if f.kind is Kind.SOCKET_TYPE:
        kind, named = value & SOCK_TYPE_MASK, value & ~SOCK_TYPE_MASK
        return conj(_eq(f.offset, kind, SOCK_TYPE_MASK), _eq(f.offset, named, named) if named else TRUE)
    return conj(*(_eq(off, _part(value, shift, mask), mask) for off, shift, mask in _words(f)))


def _bits(f: Field, mode: BitMode, bits: int) -> Formula:
    parts = [(off, _part(bits, shift, mask)) for off, shift, mask in _words(f)]
    parts = [(off, m) for off, m in parts if m]
    if mode is BitMode.ALL:
        return conj(*(_eq(off, m, m) for off, m in parts))
    anyset = disj(*(Atom(Operand(off), Cmp.SET, m) for off, m in parts))
    return anyset if mode is BitMode.ANY else neg(anyset)


def _masked(f: Field, mask: int, value: int) -> Formula:
    tests = []
    for off, shift, m in _words(f):
        word_mask = _part(mask, shift, m)
        if word_mask:
            tests.append(_eq(off, _part(value, shift, m), word_mask))
    return conj(*tests)


def _ge(f: Field, bound: int) -> Formula:
    """``field >= bound``, unsigned, over however many words the field takes (most significant first)."""
    if bound <= 0:
        return TRUE
    if f.kind is Kind.PORT:
        return Atom(Operand(f.offset, U32, swap16=True), Cmp.GE, bound)
    words = _words(f)
    if len(words) == 1:
        off, shift, mask = words[0]
        return Atom(Operand(off, mask), Cmp.GE, _part(bound, shift, mask))
    (lo_off, _, _), (hi_off, _, _) = words
    hi, lo = bound >> 32, bound & U32
    return disj(Atom(Operand(hi_off), Cmp.GT, hi) if hi < U32 else FALSE,
                conj(_eq(hi_off, hi), Atom(Operand(lo_off), Cmp.GE, lo) if lo else TRUE))


def _le(f: Field, bound: int) -> Formula:
    return TRUE if bound >= f.limit else neg(_ge(f, bound + 1))


def _network(net: Network) -> Formula:
    """The context's address lies in ``net`` (an IPv4 prefix also matches the IPv4-mapped IPv6 form)."""
    fam_v4, fam_v6 = _eq(16, AF_INET), _eq(16, AF_INET6)
    if isinstance(net, ipaddress.IPv4Network):
        word = _prefix_words(net.network_address.packed, net.prefixlen)[0]
        v4 = conj(fam_v4, word(24))
        mapped = conj(fam_v6, *(_eq(24 + 4 * i, w) for i, w in enumerate(_MAPPED_WORDS)), word(36))
        return disj(v4, mapped)
    words = _prefix_words(net.network_address.packed, net.prefixlen)
    return conj(fam_v6, *(w(24 + 4 * i) for i, w in enumerate(words)))


def _prefix_words(packed: bytes, prefix: int) -> list[_WordTest]:
    out = []
    for i in range(len(packed) // 4):
        bits = max(0, min(32, prefix - 32 * i))
        mask_bytes = ((U32 << (32 - bits)) & U32).to_bytes(4, "big") if bits else bytes(4)
        mask = int.from_bytes(mask_bytes, "little")
        value = int.from_bytes(packed[4 * i:4 * i + 4], "little") & mask
        out.append(_WordTest(mask, value))
    return out


@dataclass(frozen=True, slots=True)
class _WordTest:
    mask: int
    value: int

    def __call__(self, offset: int) -> Formula:
        return _eq(offset, self.value, self.mask) if self.mask else TRUE


def test_formula(f: Field, test: Test) -> Formula:
    """One test on one field, as atoms."""
    if isinstance(test, InNetworks):
        found = disj(*(_network(n) for n in test.networks))
        inet = disj(_eq(16, AF_INET), _eq(16, AF_INET6))
        return conj(inet, neg(found)) if test.negate else found
    if isinstance(test, OneOf):
        return disj(*(_equals(f, v) for v in test.values))
    if isinstance(test, NoneOf):
        return neg(disj(*(_equals(f, v) for v in test.values)))
    if isinstance(test, Range):
        return conj(_ge(f, test.lo), _le(f, test.hi))
    if isinstance(test, Bits):
        return _bits(f, test.mode, test.mask)
    if isinstance(test, Masked):
        return _masked(f, test.mask, test.value)
    raise AssertionError(test)


def opcode_formula(policy: Policy, opcode: int) -> Formula:
    """When a request of ``opcode`` passes the filter part of ``policy`` (its flags are the classic part's)."""
    rules = policy.rules_for(opcode)

    def rule_formula(rule_preds: tuple[Formula, ...]) -> Formula:
        return conj(*rule_preds)

    def formula_of(action: Action) -> Formula:
        return disj(*(rule_formula(tuple(conj(*(test_formula(FIELDS[p.field], t) for t in p.tests))
                                         for p in r.predicates))
                      for r in rules if r.action is action))

    allows = [r for r in rules if r.action is Action.ALLOW]
    allow = formula_of(Action.ALLOW) if allows else Const(policy.default is Action.ALLOW)
    guard = neg(_eq(16, 0)) if opcode == CONNECT and guards_family_zero(policy) else TRUE
    return conj(neg(formula_of(Action.DENY)), guard, allow)
