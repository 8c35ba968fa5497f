"""One table of instruction semantics, three executors: interpreter (ints), fast path (source text), symbolic.

The symbolic one here uses a test-only expression-tree algebra (``exprs.py``); a z3 algebra would plug
into :func:`ringfence.bpf.symbolic.symbolic_result` the same way.
"""

from __future__ import annotations

import random
import struct

import pytest
from exprs import ExprAlgebra, Term, evaluate, size
from hypothesis import given, settings
from hypothesis import strategies as st

from ringfence.bpf import assemble, check, run
from ringfence.bpf.fast import SOURCE, compile_program
from ringfence.bpf.gen import context, valid_program
from ringfence.bpf.insn import ADD, DIV, JEQ, JGE, JGT, JSET, LSH, MOD, NEG, RSH, SUB
from ringfence.bpf.semantics import ALU, DIV_BY_ZERO_RESULT, INT, JUMPS, SHIFT_MASK, U32
from ringfence.bpf.symbolic import SymbolicAlgebra, symbolic_result

rngs = st.integers(0, 2**64 - 1).map(random.Random)


def words_of(ctx: bytes) -> dict[int, int]:
    return {4 * i: w for i, w in enumerate(struct.unpack(f"<{len(ctx) // 4}I", ctx))}


def test_table_covers_the_instruction_set() -> None:
    assert set(ALU) == {ADD, SUB, 0x20, DIV, 0x40, 0x50, LSH, RSH, NEG, MOD, 0xA0}
    assert set(JUMPS) == {JEQ, JGT, JGE, JSET}
    assert {op for op, r in ALU.items() if r.divides} == {DIV, MOD}
    assert [op for op, r in ALU.items() if r.unary] == [NEG]


@pytest.mark.parametrize(("op", "a", "b", "value"), [
    (ADD, U32, 2, 1), (SUB, 0, 1, U32), (0x20, 0x10000, 0x10000, 0), (DIV, 7, 2, 3), (MOD, 7, 2, 1),
    (LSH, 1, 33, 2), (RSH, 0x80000000, 63, 1), (NEG, 1, 0, U32), (0xA0, 6, 3, 5),
])
def test_int_algebra(op: int, a: int, b: int, value: int) -> None:
    assert ALU[op].apply(INT, a, b) == value


def test_source_algebra_spells_the_same_rules() -> None:
    assert ALU[LSH].apply(SOURCE, "A", "X") == f"((A << (X & {SHIFT_MASK})) & 4294967295)"
    assert JUMPS[JSET].holds(SOURCE, "A", "4") == "A & 4"


@settings(max_examples=150)
@given(rngs)
def test_three_executors_agree(rng: random.Random) -> None:
    checked = check(valid_program(rng, max_len=40))
    algebra: SymbolicAlgebra[Term, Term] = ExprAlgebra()  # the protocol is all a prover must provide
    term = symbolic_result(checked, algebra)
    fast = compile_program(checked.program)
    for _ in range(6):
        ctx = context(rng)
        value = run(checked, ctx).value
        assert fast(ctx) == value == evaluate(term, words_of(ctx))


def test_symbolic_division_by_zero_ends_with_zero() -> None:
    checked = check(assemble("ld [0]\n tax\n ld #100\n div x\n add #1\n ret a"))
    term = symbolic_result(checked, ExprAlgebra())
    assert evaluate(term, {0: 0}) == DIV_BY_ZERO_RESULT == run(checked, bytes(40)).value
    assert evaluate(term, {0: 7}) == 15


def test_symbolic_terms_stay_linear_on_diamond_chains() -> None:
    body = "".join(f"ld [{4 * (i % 10)}]\n jset #{1 << i}, t{i}\n add #{i}\nt{i}: tax\n" for i in range(30))
    checked = check(assemble(body + "txa\n ret a"))
    term = symbolic_result(checked, ExprAlgebra())
    assert size(term) < 40 * 30  # 2**30 paths, but the DAG is shared
    rng = random.Random(3)
    for _ in range(20):
        ctx = context(rng)
        assert evaluate(term, words_of(ctx)) == run(checked, ctx).value
