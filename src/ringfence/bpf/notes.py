"""Listing annotations: what a context load reads and what an immediate probably means.

Kept out of :mod:`.text` (which decides spelling) and out of the instruction types (which decide
meaning). A constant is named only when the word in ``A`` is known from a single load along every
path; the names come from the :class:`~.target.Target` (``AF_INET``, ``htons(22)``,
``AUDIT_ARCH_X86_64``), spelled as assembler expressions, and only ever appear in comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.bpf.cfg import Cfg, forward
from ringfence.bpf.insn import (
    ABS,
    ALU,
    AND,
    CTX_LOAD,
    JEQ,
    JGE,
    JGT,
    JMP,
    JSET,
    LD,
    MISC,
    OR,
    RET,
    TXA,
    Instruction,
    K,
    Program,
    W,
)
from ringfence.bpf.target import IOURING, ConstantQuery, Target

_U32: Final = 0xFFFFFFFF


#: What ``A`` holds: the context word at ``offset`` ANDed with ``mask``; None when unknown.
Word = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Known:
    """What is known on entry to an instruction: the word in ``A`` and, past a family test, the family."""

    word: Word = None
    family: int | None = None


def _merge(a: Known, b: Known) -> Known:
    if a == b:
        return a
    return Known(a.word if a.word == b.word else None, a.family if a.family == b.family else None)


def a_sources(program: Program, target: Target = IOURING) -> list[Known]:
    """For each pc, what holds on every path into it (a forward problem over :class:`.cfg.Cfg`).

    Unreachable code is annotated as if entered with nothing known, so dead branches still get notes.
    """
    insns = program.instructions

    def transfer(pc: int, here: Known) -> Known:
        ins = insns[pc]
        code, word = ins.code, here.word
        if code in (LD | W | ABS, CTX_LOAD):
            return Known((ins.k, _U32), here.family)
        if code == ALU | AND | K:
            return Known(None if word is None else (word[0], word[1] & ins.k), here.family)
        if ins.cls in (LD, ALU) or code == MISC | TXA:
            return Known(None, here.family)
        return here

    def edge(pc: int, dest: int, after: Known) -> Known:
        ins = insns[pc]  # a jump leaves A alone, so ``after`` is also what held before it
        if (ins.code == JMP | JEQ | K and ins.jt != ins.jf and dest == pc + 1 + ins.jt
                and target.family_word is not None and after.word == (target.family_word, _U32)):
            return Known(after.word, ins.k)  # the family is known on the true edge
        return after

    return forward(Cfg.of(program), Known(), transfer, _merge, unreached=Known(), edge=edge)


def constant(known: Known, ins: Instruction, target: Target = IOURING) -> str | None:
    """A name for ``ins``'s nonzero immediate, given what is known there (see :func:`a_sources`)."""
    code, k, word = ins.code, ins.k, known.word
    compare = code in (JMP | JEQ | K, JMP | JGT | K, JMP | JGE | K)
    bits = code in (JMP | JSET | K, ALU | AND | K, ALU | OR | K)
    if not (compare or bits) or word is None or k == 0:
        return None
    return target.name_constant(ConstantQuery(word[0], word[1], k, compare, known.family))


def note(program: Program, pc: int, known: Known, target: Target = IOURING) -> str:
    """The comment for the instruction at ``pc`` (empty if nothing useful is known)."""
    ins = program[pc]
    code = ins.code
    if code in (LD | W | ABS, CTX_LOAD) and target.load_offset_ok(ins.k):
        return ", ".join(target.word_names(ins.k)) + (" (kernel's rewritten context load)" if code == CTX_LOAD else "")
    if code == RET | K:
        return target.verdict(ins.k).text
    return constant(known, ins, target) or ""
