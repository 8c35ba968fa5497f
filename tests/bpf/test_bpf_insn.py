"""Instruction and Program: raw fields, decoded views, encoding."""

from __future__ import annotations

import enum

import pytest

from ringfence.bpf import Instruction, Program
from ringfence.bpf import insn as ops
from ringfence.bpf.cfg import Cfg
from ringfence.errors import DecodeError


def test_fields_are_validated() -> None:
    for bad in ((0x10000, 0, 0, 0), (0, 256, 0, 0), (0, 0, -1, 0), (0, 0, 0, 1 << 32), (-1, 0, 0, 0)):
        with pytest.raises(ValueError):
            Instruction(*bad)
    with pytest.raises(TypeError):
        Instruction(0, 0, 0, 1.5)  # type: ignore[arg-type]


def test_int_subclasses_become_plain_ints() -> None:
    class E(enum.IntEnum):
        TWO = 2

    ins = Instruction(ops.JMP | ops.JEQ, 0, 0, E.TWO)
    assert type(ins.k) is int and ins.k == 2 and ins == Instruction(0x15, 0, 0, 2)


def test_decoded_views() -> None:
    ld = Instruction(0x28, 0, 0, 12)  # LD|H|ABS
    assert (ld.cls, ld.size, ld.mode) == (ops.LD, ops.H, ops.ABS)
    jgt = Instruction(0x2D, 1, 2)  # JMP|JGT|X
    assert (jgt.cls, jgt.op, jgt.src) == (ops.JMP, ops.JGT, ops.X)
    assert jgt.is_conditional_jump and jgt.is_jump and not jgt.is_ja
    assert jgt.targets(5) == (7, 8)
    assert Instruction(0x05, 0, 0, 3).targets(1) == (5,)
    assert Instruction(0x16).src == ops.A and Instruction(0x16).targets(0) == ()
    assert Instruction(0x04).targets(3) == (4,)
    assert not Instruction(0x115).is_conditional_jump  # the kernel compares the whole 16-bit code
    assert Instruction(0x06).is_return and not Instruction(0x05, 0, 0, 1).is_return


def test_decoded_views_are_not_part_of_identity() -> None:
    a, b = Instruction(0x15, 1, 2, 3), Instruction(0x15, 1, 2, 3)
    assert a == b and hash(a) == hash(b) and repr(a) == "Instruction(code=21, jt=1, jf=2, k=3)"


def test_canonical_clears_unused_fields() -> None:
    assert Instruction(0x07, 1, 2, 3).canonical() == Instruction(0x07)
    assert Instruction(0x15, 1, 2, 3).canonical() == Instruction(0x15, 1, 2, 3)
    assert Instruction(0x1D, 1, 2, 3).canonical() == Instruction(0x1D, 1, 2, 0)
    assert Instruction(0x06, 9, 9, 1).same_meaning(Instruction(0x06, 0, 0, 1))
    assert not Instruction(0x06, 0, 0, 1).same_meaning(Instruction(0x06, 0, 0, 2))
    assert Instruction(0x80, 0, 0, 5).canonical() == Instruction(0x80)  # LEN ignores k


def test_program_encoding_round_trips() -> None:
    p = Program.of((0x20, 0, 0, 16), (0x15, 0, 1, 2), (0x06, 0, 0, 1), (0x06, 0, 0, 0))
    data = p.to_bytes()
    assert len(data) == 32 and data[:8] == bytes.fromhex("2000000010000000")
    assert Program.from_bytes(data) == p
    assert len(p) == 4 and list(p) == list(p.instructions) and p[1:3] == p.instructions[1:3]
    assert Program.from_bytes(b"") == Program()
    with pytest.raises(DecodeError):
        Program.from_bytes(b"\0" * 9)


def test_program_accepts_any_iterable_and_stays_immutable() -> None:
    p = Program([Instruction(6)])  # type: ignore[arg-type]
    assert isinstance(p.instructions, tuple) and hash(p) == hash(Program((Instruction(6),)))


def test_jump_targets_are_in_range_only() -> None:
    p = Program.of((0x15, 0, 2, 1), (0x05, 0, 0, 0), (0x06, 0, 0, 0), (0x15, 9, 0, 0), (0x06, 0, 0, 1))
    assert Cfg.of(p).jump_targets == frozenset({1, 3, 2, 4})
