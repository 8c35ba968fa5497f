"""Identical returns merged: a jump to a return goes to the last return of the same value instead, so the
others become dead."""

from __future__ import annotations

from ringfence.bpf.builder import Built
from ringfence.policy.passes.graph import Item, items, rebuild


def returns(built: Built) -> tuple[Built, bool]:
    prog = items(built)
    last: dict[tuple[int, int], int] = {}
    for pc, it in enumerate(prog):
        if it.ins.is_return:
            last[(it.ins.code, it.ins.k)] = pc

    def canon(pc: int) -> int:
        ins = prog[pc].ins
        return last[(ins.code, ins.k)] if ins.is_return else pc

    out: list[Item | None] = []
    changed = False
    for it in prog:
        new = Item(it.ins, it.comment, tuple(canon(t) for t in it.targets)) if it.targets else it
        changed = changed or new != it
        out.append(new)
    return (rebuild(out), True) if changed else (built, False)
