"""Symbolic execution of a checked program: its return value as one term over the context words.

The instruction semantics come from :mod:`.semantics` (the same table the interpreter and the fast
path use); this module only adds control flow. Jumps go forward, so one pass in pc order visits every
pc after all its predecessors: states arriving at a pc are merged with ``ite`` on their path
conditions, and each return adds ``ite(path, value, rest)`` to the result. Paths are disjoint, so the
order of that chain does not matter. Terms are shared, never copied, so the result is a DAG of size
linear in the program for the algebras that keep sharing (z3, expression trees).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ringfence.bpf.check import CheckedProgram
from ringfence.bpf.insn import CTX_LOAD, IMM, LD, LDX, MEMWORDS, MISC, ST, STX, TAX, TXA, A, X
from ringfence.bpf.semantics import ALU, DIV_BY_ZERO_RESULT, JUMPS, Algebra

V = TypeVar("V")
C = TypeVar("C")


class SymbolicAlgebra(Algebra[V, C], Protocol[V, C]):
    """An :class:`~.semantics.Algebra` with free context words, boolean connectives and a choice."""

    def word(self, offset: int) -> V: ...      # the context word a load at ``offset`` reads
    def true(self) -> C: ...
    def not_(self, c: C) -> C: ...
    def all_(self, a: C, b: C) -> C: ...      # conjunction
    def any_(self, a: C, b: C) -> C: ...      # disjunction
    def ite(self, c: C, a: V, b: V) -> V: ...


@dataclass(frozen=True, slots=True)
class _State(Generic[V, C]):
    path: C
    a: V
    x: V
    mem: tuple[V, ...]


def _choose(alg: SymbolicAlgebra[V, C], c: C, a: V, b: V) -> V:
    return a if a is b else alg.ite(c, a, b)


def _merge(alg: SymbolicAlgebra[V, C], old: _State[V, C] | None, new: _State[V, C]) -> _State[V, C]:
    if old is None:
        return new
    c = new.path
    return _State(alg.any_(c, old.path), _choose(alg, c, new.a, old.a), _choose(alg, c, new.x, old.x),
                  tuple(_choose(alg, c, n, o) for n, o in zip(new.mem, old.mem, strict=True)))


def symbolic_result(checked: CheckedProgram, alg: SymbolicAlgebra[V, C]) -> V:
    """The program's return value as a term of ``alg``; equal to :func:`~.interp.run`'s for every context."""
    insns = checked.program.instructions
    zero = alg.const(0)
    states: list[_State[V, C] | None] = [None] * len(insns)
    states[0] = _State(alg.true(), zero, zero, (zero,) * MEMWORDS)
    result: V | None = None

    def finish(path: C, value: V) -> None:
        nonlocal result
        result = value if result is None else alg.ite(path, value, result)

    for pc, ins in enumerate(insns):
        st = states[pc]
        states[pc] = None
        if st is None:
            continue
        path, a, x, mem = st.path, st.a, st.x, st.mem
        cls, k = ins.cls, ins.k
        operand = x if ins.src == X else alg.const(k)
        if ins.is_return:
            finish(path, a if ins.src == A else alg.const(k))
            continue
        if ins.is_jump:
            if ins.is_ja or ins.jt == ins.jf:
                edges = [(pc + 1 + (k if ins.is_ja else ins.jt), path)]
            else:
                holds = JUMPS[ins.op].holds(alg, a, operand)
                edges = [(pc + 1 + ins.jt, alg.all_(path, holds)), (pc + 1 + ins.jf, alg.all_(path, alg.not_(holds)))]
            for target, cond in edges:
                states[target] = _merge(alg, states[target], _State(cond, a, x, mem))
            continue
        if ins.code == CTX_LOAD:
            a = alg.word(k)
        elif cls in (LD, LDX):
            value = alg.const(k) if ins.mode == IMM else mem[k]
            a, x = (value, x) if cls == LD else (a, value)
        elif cls in (ST, STX):
            mem = (*mem[:k], a if cls == ST else x, *mem[k + 1:])
        elif ins.code == MISC | TAX:
            x = a
        elif ins.code == MISC | TXA:
            a = x
        else:
            rule = ALU[ins.op]
            if rule.divides and ins.src == X:  # a constant 0 divisor was refused by the checker
                zero_divisor = alg.eq(x, zero)
                finish(alg.all_(path, zero_divisor), alg.const(DIV_BY_ZERO_RESULT))
                path = alg.all_(path, alg.not_(zero_divisor))
            a = rule.apply(alg, a, operand)
        states[pc + 1] = _merge(alg, states[pc + 1], _State(path, a, x, mem))
    assert result is not None, "a checked program always returns"
    return result
