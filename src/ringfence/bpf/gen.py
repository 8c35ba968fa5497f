"""Random programs and contexts for differential tests: ours against each other and against a kernel.

Plain :class:`random.Random`, so any test framework (or a seed on a command line) can drive it.
:func:`valid_program` only makes programs the kernel accepts (it follows the checker's rules while it
builds, including scratch-memory flow, and fills unused fields with noise, which the kernel ignores);
:func:`any_program` makes anything at all.
"""

from __future__ import annotations

import operator
import random

from ringfence.bpf.cfg import Flow, targets
from ringfence.bpf.insn import (
    ABS,
    ADD,
    ALU,
    AND,
    DIV,
    IMM,
    JA,
    JEQ,
    JGE,
    JGT,
    JMP,
    JSET,
    LD,
    LDX,
    LEN,
    LSH,
    MEM,
    MEMWORDS,
    MISC,
    MUL,
    NEG,
    OR,
    RET,
    RSH,
    ST,
    STX,
    SUB,
    TAX,
    TXA,
    XOR,
    A,
    Instruction,
    K,
    Program,
    W,
    X,
)
from ringfence.bpf.target import IOURING, Target

_FULL = (1 << MEMWORDS) - 1
_ALU_OPS = (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, XOR)
_JUMP_OPS = (JEQ, JGT, JGE, JSET)


def _k(rng: random.Random) -> int:
    """Immediates biased towards the interesting: 0, 1, small, powers of two, all ones, anything."""
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice((0, 1, 2, 31, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF))
    if choice == 1:
        return 1 << rng.randrange(32)
    if choice == 2:
        return rng.randrange(16)
    return rng.getrandbits(32)


def _noise(rng: random.Random, used: int) -> int:
    """A value for a field the instruction does not use: usually 0, sometimes anything."""
    return used if rng.random() < 0.8 else rng.getrandbits(8)


def valid_program(rng: random.Random, max_len: int = 24, target: Target = IOURING) -> Program:
    """A random program the kernel accepts as a ``target`` filter (every rule of spec §5.5)."""
    n = rng.randint(1, max_len)
    flow: Flow[int] = Flow(n, 0, operator.and_)  # slots written, as the kernel's scratch check counts them
    out: list[Instruction] = []
    for pc in range(n):
        known = flow.at(pc)
        valid = _FULL if known is None else known
        room = n - pc - 2  # largest jump offset that stays before the final return
        if pc == n - 1:
            out.append(Instruction(RET | K, _noise(rng, 0), _noise(rng, 0), _k(rng)) if rng.random() < 0.7
                       else Instruction(RET | A, _noise(rng, 0), _noise(rng, 0), _noise(rng, 0)))
            break
        kind = rng.randrange(12)
        noise_jt, noise_jf = _noise(rng, 0), _noise(rng, 0)
        readable = [k for k in range(MEMWORDS) if valid >> k & 1]
        if kind <= 2:
            out.append(Instruction(LD | W | ABS, noise_jt, noise_jf, 4 * rng.randrange(target.ctx_size // 4)))
        elif kind == 3:
            code = rng.choice((LD | IMM, LDX | IMM, LD | W | LEN, LDX | W | LEN, MISC | TAX, MISC | TXA))
            k = _k(rng) if code in (LD | IMM, LDX | IMM) else _noise(rng, 0)
            out.append(Instruction(code, noise_jt, noise_jf, k))
        elif kind == 4:
            slot = rng.randrange(MEMWORDS)
            out.append(Instruction(rng.choice((ST, STX)), noise_jt, noise_jf, slot))
        elif kind == 5 and readable:
            out.append(Instruction(rng.choice((LD | MEM, LDX | MEM)), noise_jt, noise_jf, rng.choice(readable)))
        elif kind in (5, 6, 7):
            op = rng.choice(_ALU_OPS)
            if rng.random() < 0.5:
                k = _k(rng)
                k = k % 32 if op in (LSH, RSH) else (k or 1) if op == DIV else k
                out.append(Instruction(ALU | op | K, noise_jt, noise_jf, k))
            else:
                out.append(Instruction(ALU | op | X, noise_jt, noise_jf, _noise(rng, 0)))
        elif kind == 8:
            out.append(Instruction(ALU | NEG, noise_jt, noise_jf, _noise(rng, 0)))
        elif kind == 9 and room >= 0:
            k = rng.randint(0, room)
            out.append(Instruction(JMP | JA, noise_jt, noise_jf, k))
        elif kind in (9, 10) and room >= 0:
            jt, jf = rng.randint(0, min(room, 255)), rng.randint(0, min(room, 255))
            src = rng.choice((K, X))
            out.append(Instruction(JMP | rng.choice(_JUMP_OPS) | src, jt, jf, _k(rng) if src == K else _noise(rng, 0)))
        else:
            out.append(Instruction(RET | K, noise_jt, noise_jf, _k(rng)))
        ins = out[-1]
        written = valid | 1 << ins.k if ins.code in (ST, STX) else valid
        for dest in targets(ins, pc, returns_fall_through=True):
            flow.send(dest, written)
    return Program(tuple(out))


def any_program(rng: random.Random, max_len: int = 24) -> Program:
    """Any instructions at all: codes mostly below 0x100, fields anything."""
    def code() -> int:
        return rng.getrandbits(16) if rng.random() < 0.05 else rng.randrange(256)
    return Program(tuple(Instruction(code(), rng.getrandbits(8) if rng.random() < 0.5 else rng.randrange(4),
                                     rng.getrandbits(8) if rng.random() < 0.5 else rng.randrange(4), _k(rng))
                         for _ in range(rng.randint(0, max_len))))


def context(rng: random.Random, target: Target = IOURING) -> bytes:
    """A context for ``target`` (40 bytes on io_uring): random words, with the small values filters compare
    against mixed in."""
    words = [rng.choice((0, 1, 2, 10, rng.getrandbits(8), rng.getrandbits(32))) for _ in range(target.ctx_size // 4)]
    return b"".join(w.to_bytes(4, "little") for w in words)
