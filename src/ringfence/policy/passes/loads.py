"""Redundant loads: a load of the word A already holds on every path into it is dropped."""

from __future__ import annotations

from ringfence.bpf.builder import Built
from ringfence.bpf.cfg import Cfg, forward
from ringfence.bpf.insn import ABS, LD, W
from ringfence.policy.passes.graph import items, rebuild

_UNKNOWN = -1


def loads(built: Built) -> tuple[Built, bool]:
    prog = built.program.instructions

    def transfer(pc: int, held: int) -> int:
        ins = prog[pc]
        if ins.code == LD | W | ABS:
            return ins.k
        writes_a = ins.cls in (0x00, 0x04) or (ins.cls == 0x07 and ins.code & 0xF8 == 0x80)  # LD, ALU, TXA
        return _UNKNOWN if writes_a else held

    def meet(a: int, b: int) -> int:
        return a if a == b else _UNKNOWN

    held_in = forward(Cfg.of(built.program), _UNKNOWN, transfer, meet)
    drop = [h is not None and ins.code == LD | W | ABS and h == ins.k for ins, h in zip(prog, held_in, strict=True)]
    if not any(drop):
        return built, False
    return rebuild([None if d else it for it, d in zip(items(built), drop, strict=True)]), True
