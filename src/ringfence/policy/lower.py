"""A formula to a classic-BPF program, test by test: the straightforward translation the optimizer starts from.

Every atom loads its word (and masks it) afresh and jumps on its comparison; ``And``/``Or``/``Not`` become
short-circuit jumps; the program ends in one ``ret #1`` and one ``ret #0``. Nothing is shared between tests:
the point is that this translation is obviously right, and :mod:`ringfence.policy.optimize` makes it small.
"""

from __future__ import annotations

from typing import Final

from ringfence.bpf.builder import Builder, Built, Label
from ringfence.bpf.insn import ABS, ALU, AND, JEQ, JGE, JGT, JSET, LD, LSH, MISC, OR, RSH, TAX, Instruction, K, W, X
from ringfence.policy.ir import U32, And, Atom, Cmp, Const, Formula, Not, Operand, Or

ALLOW: Final = 1
DENY: Final = 0
_JUMPS: Final = {Cmp.EQ: JEQ, Cmp.GT: JGT, Cmp.GE: JGE, Cmp.SET: JSET}


def load(b: Builder, operand: Operand, comment: str = "") -> None:
    """Put the operand's value into A."""
    if operand.swap16:  # port: A = (byte0 << 8) | byte1 of the word, whatever its upper half holds
        b.emit(Instruction(LD | W | ABS, k=operand.offset), comment)
        b.emit(Instruction(ALU | AND | K, k=0xFF))
        b.emit(Instruction(ALU | LSH | K, k=8))
        b.emit(Instruction(MISC | TAX))
        b.emit(Instruction(LD | W | ABS, k=operand.offset))
        b.emit(Instruction(ALU | RSH | K, k=8))
        b.emit(Instruction(ALU | AND | K, k=0xFF))
        b.emit(Instruction(ALU | OR | X))
    else:
        b.emit(Instruction(LD | W | ABS, k=operand.offset), comment)
    if operand.mask != U32:
        b.emit(Instruction(ALU | AND | K, k=operand.mask))


def test(b: Builder, atom: Atom, true: Label, false: Label, comment: str = "") -> None:
    load(b, atom.operand, comment)
    b.jump(_JUMPS[atom.cmp], atom.k, true, false)


def branch(b: Builder, f: Formula, true: Label, false: Label, comment: str = "") -> None:
    """Jump to ``true`` when ``f`` holds, else to ``false``."""
    if isinstance(f, Const):
        b.ja(true if f.value else false, comment)
    elif isinstance(f, Atom):
        test(b, f, true, false, comment)
    elif isinstance(f, Not):
        branch(b, f.arg, false, true, comment)
    elif isinstance(f, And):
        for arg in f.args[:-1]:
            nxt = b.label()
            branch(b, arg, nxt, false, comment)
            comment = ""
            b.place(nxt)
        branch(b, f.args[-1], true, false, comment)
    elif isinstance(f, Or):
        for arg in f.args[:-1]:
            nxt = b.label()
            branch(b, arg, true, nxt, comment)
            comment = ""
            b.place(nxt)
        branch(b, f.args[-1], true, false, comment)


def lower(f: Formula, *, comment: str = "") -> Built:
    """A program returning 1 where ``f`` holds and 0 elsewhere."""
    b = Builder()
    if isinstance(f, Const):
        b.ret(ALLOW if f.value else DENY, comment)
        return b.build_annotated()
    allow, deny = b.label("allow"), b.label("deny")
    branch(b, f, allow, deny, comment)
    b.place(allow)
    b.ret(ALLOW, "allow")
    b.place(deny)
    b.ret(DENY, "deny")
    return b.build_annotated()
