"""Jump threading: a jump to a ``ja`` goes straight to its target, a ``ja`` to a return becomes the return, a
conditional jump with one target becomes a ``ja``, and a ``ja`` to the next instruction disappears."""

from __future__ import annotations

from ringfence.bpf.builder import Built
from ringfence.bpf.insn import JA, JMP, Instruction
from ringfence.policy.passes.graph import Item, items, rebuild


def _final(prog: list[Item], pc: int) -> int:
    while pc < len(prog) and prog[pc].ins.is_ja:
        pc = prog[pc].targets[0]
    return pc


def thread(built: Built) -> tuple[Built, bool]:
    prog = items(built)
    out: list[Item | None] = []
    changed = False
    for pc, it in enumerate(prog):
        new: Item | None = it
        if it.ins.is_conditional_jump:
            t, f = (_final(prog, x) for x in it.targets)
            if t != f:
                new = Item(it.ins, it.comment, (t, f))
            elif prog[t].ins.is_return:
                new = Item(prog[t].ins, it.comment or prog[t].comment)
            else:
                new = Item(Instruction(JMP | JA), it.comment, (t,))
        elif it.ins.is_ja:
            t = _final(prog, it.targets[0])
            if prog[t].ins.is_return:
                new = Item(prog[t].ins, it.comment or prog[t].comment)
            elif t == pc + 1:
                new = None
            else:
                new = Item(it.ins, it.comment, (t,))
        changed = changed or new != it
        out.append(new)
    return (rebuild(out), True) if changed else (built, False)
