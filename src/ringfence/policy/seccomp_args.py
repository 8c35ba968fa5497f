"""From a seccomp comparison on a system call argument to tests on the io_uring filter context.

A filter sees, for SOCKET and OPENAT, the values the equivalent system call would have been given: the socket's
family, type and protocol; openat's flags and mode. :data:`ARG_FIELDS` says which argument is which field and how
the 64-bit argument a seccomp filter compares is made from the field:

* ``socket(int, int, int)``: C ``int`` parameters, passed sign-extended (as the C library casts them to
  ``long``), so the argument is the field's 32 bits sign-extended to 64;
* ``openat(..., int flags, umode_t mode)``: the context holds the flags after the kernel's preparation, which
  adds ``O_LARGEFILE`` on 64-bit kernels whether or not the caller passed it, so the argument is the flags
  without that bit (a profile cannot tell the two apart either: the kernel adds it to every open); the mode is
  the one the kernel uses (0 unless creating).

:func:`cover` gives, for one comparison, the set of field values whose argument satisfies it, as a union of
boxes (each a conjunction of tests on the field) — exactly, never approximately: ``tests/policy`` checks it
value by value. The tests are the policy language's own (:mod:`ringfence.policy.ast`), chosen so a policy file
states them plainly: ``in``/``not_in`` lists, ranges, and ``mask``/``equals`` where the field's kind has no
raw range or inequality (``socket.type``'s ``in`` ignores flag bits; ``open.flags`` is a bit field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.abi.constants import O
from ringfence.policy.ast import Masked, NoneOf, OneOf, Range, Test
from ringfence.policy.fields import FIELDS, Kind
from ringfence.policy.seccomp_profile import Comparison, Op

U64: Final = (1 << 64) - 1
_BIT31: Final = 1 << 31
_SIGN: Final = U64 ^ 0xFFFF_FFFF  # the high 32 bits a sign extension sets
_TOP_HALF: Final = (1 << 64) - (1 << 31)  # the smallest sign-extended negative 32-bit value

#: A conjunction of tests on one field; a union of boxes. ``()`` is the empty union (never), ``((),)`` always.
Box = tuple[Test, ...]
Cover = tuple[Box, ...]
NEVER: Final[Cover] = ()
ALWAYS: Final[Cover] = ((),)


@dataclass(frozen=True, slots=True)
class ArgField:
    """How one system call argument is read from a context field: ``signed32``: the argument is the field's low
    32 bits sign-extended; otherwise the field's value with the ``ignore`` bits cleared."""

    field: str
    signed32: bool
    ignore: int = 0

    def argument(self, value: int) -> int:
        """The 64-bit argument the equivalent system call carries when the field holds ``value``."""
        if self.signed32:
            low = value & 0xFFFF_FFFF
            return low | _SIGN if low & _BIT31 else low
        return value & ~self.ignore & U64


#: (system call, argument index) to the context field that carries it, for the opcodes whose context has it.
ARG_FIELDS: Final[Mapping[tuple[str, int], ArgField]] = MappingProxyType({
    ("socket", 0): ArgField("socket.family", signed32=True),
    ("socket", 1): ArgField("socket.type", signed32=True),
    ("socket", 2): ArgField("socket.protocol", signed32=True),
    ("openat", 2): ArgField("open.flags", signed32=False, ignore=O["O_LARGEFILE"]),
    ("openat", 3): ArgField("open.mode", signed32=False),
})


# -- sets of 64-bit values as aligned blocks ----------------------------------------------------------------------

def blocks(lo: int, hi: int, width: int = 64) -> list[tuple[int, int]]:
    """``[lo, hi]`` as the fewest aligned power-of-two blocks, each ``(mask, base)``: the values ``v`` with
    ``v & mask == base``."""
    full = (1 << width) - 1
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << width
        while size > hi - lo + 1:
            size >>= 1
        out.append((full & ~(size - 1), lo))
        lo += size
    return out


def _interval(cmp: Comparison) -> tuple[int, int] | None:
    v = cmp.value
    if cmp.op is Op.LT:
        return (0, v - 1) if v > 0 else None
    if cmp.op is Op.LE:
        return 0, v
    if cmp.op is Op.GT:
        return (v + 1, U64) if v < U64 else None
    if cmp.op is Op.GE:
        return v, U64
    raise AssertionError(cmp.op)


def as_blocks(cmp: Comparison) -> list[tuple[int, int]]:
    """The 64-bit arguments satisfying ``cmp``, as aligned blocks (masks for MASKED_EQ)."""
    if cmp.op is Op.EQ:
        return [(U64, cmp.value)]
    if cmp.op is Op.NE:
        return ([*blocks(0, cmp.value - 1)] if cmp.value else []) + ([*blocks(cmp.value + 1, U64)]
                                                                       if cmp.value < U64 else [])
    if cmp.op is Op.MASKED_EQ:
        return [(cmp.value, cmp.value_two & cmp.value)]
    span = _interval(cmp)
    return blocks(*span) if span else []


def may_both_hold(a: Comparison, b: Comparison) -> bool:
    """Whether some argument value satisfies both comparisons (exact)."""
    for m1, v1 in as_blocks(a):
        for m2, v2 in as_blocks(b):
            common = m1 & m2
            if v1 & common == v2 & common:
                return True
    return False


# -- from argument sets to field covers -------------------------------------------------------------------------

def _field_points(af: ArgField, args: list[int]) -> list[int]:
    """The field values whose argument is one of ``args``."""
    out: set[int] = set()
    for d in args:
        if af.signed32:
            if d < _BIT31:
                out.add(d)
            elif d >= _TOP_HALF:
                out.add(d & 0xFFFF_FFFF)
        elif not d & af.ignore:
            out.add(d)
            if af.ignore:
                out.add(d | af.ignore)
    return sorted(out)


def _field_intervals(af: ArgField, lo: int, hi: int) -> list[tuple[int, int]]:
    """For a sign-extended field: the field values whose argument lies in ``[lo, hi]`` (at most two intervals,
    merged when they touch)."""
    out: list[tuple[int, int]] = []
    low = (max(lo, 0), min(hi, _BIT31 - 1))
    if low[0] <= low[1]:
        out.append(low)
    high = (max(lo, _TOP_HALF), hi)
    if high[0] <= high[1]:
        out.append((high[0] & 0xFFFF_FFFF, high[1] & 0xFFFF_FFFF))
    if len(out) == 2 and out[0][1] + 1 == out[1][0]:
        out = [(out[0][0], out[1][1])]
    return out


def _field_masks(af: ArgField, mask: int, datum: int) -> list[tuple[int, int]]:
    """The field values whose argument ``a`` has ``a & mask == datum & mask``, as (mask, value) pairs on the
    field."""
    target = datum & mask
    if not af.signed32:
        if target & af.ignore:
            return []
        return [(mask & ~af.ignore & U64, target)]
    low_mask, low_target = mask & 0xFFFF_FFFF, target & 0xFFFF_FFFF
    high_mask, high_target = mask >> 32, target >> 32
    out: list[tuple[int, int]] = []
    if high_target == 0 and not low_target & _BIT31:  # non-negative values: the high word is zero
        out.append((low_mask | _BIT31, low_target))
    if high_target == high_mask and (low_target & _BIT31 or not low_mask & _BIT31):  # negative: all ones
        out.append((low_mask | _BIT31, low_target | _BIT31))
    if len(out) == 2 and not low_mask & _BIT31:
        out = [(low_mask, low_target)]
    return out


def _masked_box(field: str, mask: int, value: int) -> Box:
    return () if not mask & FIELDS[field].limit else (Masked(mask & FIELDS[field].limit, value),)


def _interval_boxes(field: str, lo: int, hi: int) -> Cover:
    f = FIELDS[field]
    if lo == 0 and hi == f.limit:
        return ALWAYS
    if f.kind is Kind.NUMBER:
        return ((Range(lo, hi),),)
    return tuple(_masked_box(field, m, b) for m, b in blocks(lo, hi, f.bits))


def _union(*covers: Cover) -> Cover:
    out: list[Box] = []
    for c in covers:
        for box in c:
            if box == ():
                return ALWAYS
            if box not in out:
                out.append(box)
    return tuple(out)


def _points_cover(field: str, points: list[int], *, negate: bool) -> Cover:
    f = FIELDS[field]
    if not points:
        return ALWAYS if negate else NEVER
    if f.kind is not Kind.SOCKET_TYPE:  # raw equality: the policy's lists say it directly
        return ((NoneOf(tuple(points)),),) if negate else ((OneOf(tuple(points)),),)
    if not negate:
        return tuple((Masked(f.limit, p),) for p in points)
    gaps: list[Cover] = []
    start = 0
    for p in points:
        if p > start:
            gaps.append(_interval_boxes(field, start, p - 1))
        start = p + 1
    if start <= f.limit:
        gaps.append(_interval_boxes(field, start, f.limit))
    return _union(*gaps)


def cover(af: ArgField, cmp: Comparison) -> Cover:
    """The field values whose argument satisfies ``cmp``, as a union of boxes of the field's tests."""
    field = af.field
    if cmp.op in (Op.EQ, Op.NE):
        return _points_cover(field, _field_points(af, [cmp.value]), negate=cmp.op is Op.NE)
    if cmp.op is Op.MASKED_EQ:
        return _union(*((_masked_box(field, m, v),) for m, v in _field_masks(af, cmp.value, cmp.value_two)))
    span = _interval(cmp)
    if span is None:
        return NEVER
    if af.signed32:
        return _union(*(_interval_boxes(field, lo, hi) for lo, hi in _field_intervals(af, *span)))
    if not af.ignore:
        hi = min(span[1], FIELDS[field].limit)
        return _interval_boxes(field, span[0], hi) if span[0] <= hi else NEVER
    return _union(*((_masked_box(field, m & ~af.ignore, b),) for m, b in blocks(*span) if not b & af.ignore))
