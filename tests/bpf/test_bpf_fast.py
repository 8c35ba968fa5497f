"""The compiled fast path: its shape, its fallback, and agreement with the interpreter on hard shapes."""

from __future__ import annotations

import random

from ringfence.bpf import Instruction, Program, assemble, check, run
from ringfence.bpf.fast import compile_program, source
from ringfence.bpf.gen import context


def test_generated_source_is_straight_line() -> None:
    checked = check(assemble("ld [socket.family]\n jeq #AF_INET, ok\n ret DENY\nok: ret ALLOW"))
    assert source(checked.program) == (
        "def _filter(ctx, _unpack=_unpack):\n"
        "    w = _unpack(ctx)\n"
        "    A = X = 0\n"
        "    A = w[4]\n"
        "    if A == 2:\n"
        "        return 1\n"
        "    return 0\n"
    )


def test_evaluate_compiles_once() -> None:
    checked = check(assemble("ret #1"))
    assert checked.evaluate(bytes(40)) == 1
    first = checked._fast
    checked.evaluate(bytes(40))
    assert checked._fast is first is not None


def _diamonds(count: int) -> Program:
    """``count`` diamonds in a row: the tree expansion doubles with each, so it must fall back."""
    insns: list[Instruction] = []
    for i in range(count):
        insns += [Instruction(0x20, 0, 0, 4 * (i % 10)), Instruction(0x45, 0, 1, 1 << (i % 32)),
                  Instruction(0x04, 0, 0, i), Instruction(0x07)]
    insns += [Instruction(0x87), Instruction(0x16)]
    return Program(tuple(insns))


def test_large_dags_fall_back_to_blocks_and_agree() -> None:
    checked = check(_diamonds(40))
    text = source(checked.program)
    assert "b = 0" in text  # numbered blocks, not a 2**40 tree
    rng = random.Random(7)
    for _ in range(50):
        ctx = context(rng)
        assert checked.evaluate(ctx) == run(checked, ctx).value


def test_small_dags_use_the_tree_and_both_forms_agree() -> None:
    checked = check(_diamonds(4))
    assert "b = 0" not in source(checked.program)
    tree, blocks = compile_program(checked.program), compile_program(checked.program, budget=0)
    rng = random.Random(8)
    for _ in range(50):
        ctx = context(rng)
        assert tree(ctx) == blocks(ctx) == run(checked, ctx).value


def test_longest_program_compiles() -> None:
    """4096 instructions with a deep chain of branches stays within Python's nesting limits."""
    insns = [Instruction(0x15, 0, 4094 - pc if 4094 - pc < 256 else 255, pc) for pc in range(4094)]
    insns += [Instruction(0x06, 0, 0, 1), Instruction(0x06)]
    checked = check(Program(tuple(insns)))
    assert checked.evaluate(bytes(40)) == run(checked, bytes(40)).value


def test_division_by_x_zero_and_shift_by_x() -> None:
    checked = check(assemble("ld [4]\n tax\n ld [8]\n div x\n lsh x\n rsh x\n ret a"))
    for ctx in (bytes(40), bytes(range(40)), b"\xff" * 40):
        assert checked.evaluate(ctx) == run(checked, ctx).value
