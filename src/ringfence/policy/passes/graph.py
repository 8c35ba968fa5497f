"""A laid-out program as items with absolute targets, and back: what the local passes edit.

Passes change targets and drop items; :func:`rebuild` lays the result out again with the builder, which
recomputes every offset (and adds trampolines where a conditional jump grew too far).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ringfence.bpf.builder import Builder, Built, Label
from ringfence.bpf.insn import Instruction


@dataclass(frozen=True, slots=True)
class Item:
    """One instruction; for a jump, ``targets`` are absolute pcs (jt's then jf's for a conditional one)."""

    ins: Instruction
    comment: str
    targets: tuple[int, ...] = ()


def items(built: Built) -> list[Item]:
    out = []
    for pc, (ins, comment) in enumerate(zip(built.program, built.comments, strict=True)):
        if ins.is_ja:
            out.append(Item(ins, comment, (pc + 1 + ins.k,)))
        elif ins.is_conditional_jump:
            out.append(Item(ins, comment, (pc + 1 + ins.jt, pc + 1 + ins.jf)))
        else:
            out.append(Item(ins, comment))
    return out


def rebuild(program: Sequence[Item | None]) -> Built:
    """Lay out ``program``; a None entry is dropped, and jumps to it land on the next item kept."""
    b = Builder()
    labels = [Label(f"pc{i}") for i in range(len(program))]
    for i, item in enumerate(program):
        b.place(labels[i])
        if item is None:
            continue
        if item.ins.is_ja:
            b.ja(labels[item.targets[0]], item.comment)
        elif item.ins.is_conditional_jump:
            t, f = item.targets
            b.jump(item.ins.op, None if item.ins.src else item.ins.k, labels[t], labels[f], item.comment)
        else:
            b.emit(item.ins, item.comment)
    return b.build_annotated()
