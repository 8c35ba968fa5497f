"""Helpers shared by the cBPF tests (a uniquely named module, importable from any test here)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Final

from ringfence.bpf import Instruction, Program, assemble
from ringfence.bpf.insn import JA, JMP, LD, LDX, MEM, RET, ST, STX, K

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "programs"


def corpus_program(name: str) -> Program:
    """The assembled ``tests/corpus/programs/<name>.asm``."""
    path = CORPUS / f"{name}.asm"
    return assemble(path.read_text(), filename=path.name)


#: The eight conditional jump codes, written out (not taken from the implementation).
COND_JUMPS: Final = frozenset(0x05 | op | src for op in (0x10, 0x20, 0x30, 0x40) for src in (0x00, 0x08))


def scratch_program(rng: random.Random, max_len: int = 30) -> Program:
    """Programs made of scratch loads and stores, jumps and returns: the scratch pass's whole alphabet."""
    out = []
    n = rng.randint(1, max_len)
    for pc in range(n):
        kind = rng.randrange(7)
        slot = rng.randrange(4) if rng.random() < 0.9 else rng.choice((15, 16, 0xFFFFFFFF))
        room = max(n - pc - 1, 0)
        if kind == 0:
            out.append(Instruction(rng.choice((ST, STX)), 0, 0, slot))
        elif kind in (1, 2):
            out.append(Instruction(rng.choice((LD | MEM, LDX | MEM)), 0, 0, slot))
        elif kind == 3:
            out.append(Instruction(JMP | JA, 0, 0, rng.randint(0, room + 1)))
        elif kind == 4:
            out.append(Instruction(rng.choice(sorted(COND_JUMPS)), rng.randint(0, min(room + 1, 255)),
                                   rng.randint(0, min(room + 1, 255)), 0))
        elif kind == 5:
            out.append(Instruction(rng.choice((RET | K, RET | 0x10, RET | 0x08)), 0, 0, 1))
        else:
            out.append(Instruction(rng.choice((0x00, 0x04, 0x07, 0x115)), 0, 0, 0))
    return Program(tuple(out))
