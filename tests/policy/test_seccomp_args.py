"""The seccomp-argument translation is exact: for every comparison and every field value, the policy tests hold
exactly when the seccomp comparison holds on the argument the equivalent system call carries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringfence.policy import semantics
from ringfence.policy.fields import FIELDS
from ringfence.policy.seccomp_args import ARG_FIELDS, U64, ArgField, as_blocks, blocks, cover, may_both_hold
from ringfence.policy.seccomp_profile import Comparison, Op


def _ctx(af: ArgField, value: int) -> bytes:
    f = FIELDS[af.field]
    ctx = bytearray(40)
    ctx[f.offset:f.offset + f.size] = value.to_bytes(f.size, "little")
    return bytes(ctx)


def _in_cover(af: ArgField, boxes: tuple[tuple[object, ...], ...], value: int) -> bool:
    f = FIELDS[af.field]
    ctx = _ctx(af, value)
    return any(all(semantics.test_holds(f, t, ctx) for t in box) for box in boxes)  # type: ignore[arg-type]


_SPECIAL = [0, 1, 2, 9, 16, 0x7F, 0x8000, 0x7FFF_FFFF, 0x8000_0000, 0x8000_8000, 0xFFFF_FFFF, 0x1_0000_0000,
            0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF_7FFF_FFFF, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_FFFF_FFF0, U64]
_values = st.one_of(st.sampled_from(_SPECIAL), st.integers(0, 0xFFFF_FFFF), st.integers(0, U64),
                    st.integers(0, 0x1_0000).map(lambda v: v | 0x8000))
_comparisons = st.builds(Comparison, st.just(0), st.sampled_from(list(Op)),
                         _values, _values)


def _field_values(af: ArgField) -> st.SearchStrategy[int]:
    limit = FIELDS[af.field].limit
    return st.one_of(st.sampled_from([v & limit for v in _SPECIAL]), st.integers(0, limit),
                     st.integers(0, min(limit, 0x40_0000)), st.integers(0, 0xFFFF).map(lambda v: v | 0x8000))


@pytest.mark.parametrize("key", list(ARG_FIELDS), ids=lambda k: f"{k[0]}.arg{k[1]}")
@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_cover_is_exact(key: tuple[str, int], data: st.DataObject) -> None:
    af = ARG_FIELDS[key]
    cmp = data.draw(_comparisons)
    boxes = cover(af, cmp)
    for value in data.draw(st.lists(_field_values(af), min_size=8, max_size=8)):
        assert _in_cover(af, boxes, value) == cmp.holds(af.argument(value)), (cmp, hex(value), boxes)
    # the values the comparison itself names, and their neighbours
    limit = FIELDS[af.field].limit
    for base in (cmp.value, cmp.value_two, cmp.value_two & cmp.value):
        for value in {(base + d) & limit for d in (-1, 0, 1)} | {(base | 0x8000) & limit}:
            assert _in_cover(af, boxes, value) == cmp.holds(af.argument(value)), (cmp, hex(value), boxes)


def test_sign_extension_of_socket_arguments() -> None:
    family = ARG_FIELDS[("socket", 0)]
    assert family.argument(16) == 16
    assert family.argument(0xFFFF_FFFF) == U64  # -1 as the C library passes it
    # a profile comparing with -1 written as 64 bits matches the 32-bit -1 the kernel uses
    assert _in_cover(family, cover(family, Comparison(0, Op.EQ, U64)), 0xFFFF_FFFF)
    # a value no 32-bit int sign-extends to is never matched
    assert cover(family, Comparison(0, Op.EQ, 0xFFFF_FFFF)) == ()


def test_open_flags_ignore_largefile() -> None:
    flags = ARG_FIELDS[("openat", 2)]
    boxes = cover(flags, Comparison(2, Op.EQ, 0))  # O_RDONLY exactly
    assert _in_cover(flags, boxes, 0) and _in_cover(flags, boxes, 0x8000)  # with the kernel's O_LARGEFILE
    assert not _in_cover(flags, boxes, 0x8001)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(lo=_values, hi=_values)
def test_blocks_partition_the_interval(lo: int, hi: int) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    parts = blocks(lo, hi)
    assert len(parts) <= 128
    covered = 0
    for mask, base in parts:
        assert base & ~mask & U64 == 0
        covered += (~mask & U64) + 1
    assert covered == hi - lo + 1
    for probe in (lo, hi, (lo + hi) // 2):
        assert sum(1 for m, b in parts if probe & m == b) == 1


@settings(max_examples=300, deadline=None, derandomize=True)
@given(a=_comparisons, b=_comparisons, probes=st.lists(_values, min_size=1, max_size=8))
def test_overlap_is_sound(a: Comparison, b: Comparison, probes: list[int]) -> None:
    """A value satisfying both means they overlap; blocks describe exactly the values that satisfy."""
    for v in probes:
        assert any(v & m == base for m, base in as_blocks(a)) == a.holds(v)
        if a.holds(v) and b.holds(v):
            assert may_both_hold(a, b)
    if not may_both_hold(a, b):
        for _m, base in as_blocks(a):
            assert not b.holds(base)
