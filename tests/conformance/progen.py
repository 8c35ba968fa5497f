"""Seeded random and mutated cBPF programs for the checker differential (model checker vs a real kernel).

The mix is chosen to reach every rejection rule: all 256 codes, context-load offsets around the legal set,
jump targets at and past the end, scratch slots read before written on one path, division/shift constants at
the edges, and the lengths the kernel treats specially (0, 1, 4096, 4097).
"""

from __future__ import annotations

import random
import struct

RET_K, RET_A = 0x06, 0x16
ACCEPTED_BODY = (0x00, 0x01, 0x60, 0x61, 0x02, 0x03, 0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C,
                 0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C, 0xA4, 0xAC, 0x84, 0x07, 0x87, 0x20, 0x80, 0x81)
JUMPS = (0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D)
EDGE_K = (0, 1, 3, 4, 15, 16, 31, 32, 36, 37, 38, 39, 40, 44, 0x7FFFFFFF, 0xFFFFF000, 0xFFFFF004, 0xFFFFFFFF)


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _k(rng: random.Random, code: int) -> int:
    if code in (0x20, 0x28, 0x30):  # absolute loads: offsets near the 40-byte context
        return rng.choice((*range(0, 44), 0xFFFFF000, 0xFFFFF004, 0xFFFFF00C, 0xFFFFFFFC))
    if code & 0x07 in (0x02, 0x03) or code in (0x60, 0x61):  # scratch slots
        return rng.choice((0, 1, 5, 15, 16, 17, 255))
    return rng.choice(EDGE_K) if rng.random() < 0.5 else rng.getrandbits(32)


def plausible(rng: random.Random, length: int) -> bytes:
    """A program that is mostly valid, so that single rule violations are what gets tested."""
    out = []
    for pc in range(length - 1):
        left = length - pc - 1
        r = rng.random()
        if r < 0.2:
            code = rng.choice(JUMPS)
            if code == 0x05:
                out.append(_insn(code, 0, 0, rng.randrange(0, left + 1)))
            else:
                out.append(_insn(code, rng.randrange(0, min(left, 255) + 1), rng.randrange(0, min(left, 255) + 1),
                                 _k(rng, code)))
            continue
        code = rng.choice(ACCEPTED_BODY) if r < 0.9 else rng.randrange(256)
        out.append(_insn(code, rng.randrange(256) if rng.random() < 0.1 else 0, 0, _k(rng, code)))
    last = rng.choice((RET_K, RET_A)) if rng.random() < 0.95 else rng.randrange(256)
    out.append(_insn(last, 0, 0, rng.getrandbits(32) if rng.random() < 0.5 else rng.choice((0, 1))))
    return b"".join(out)


def single_codes() -> list[bytes]:
    """Every code alone, and every code followed by ``ret #1`` (k = 0 and k = 4 and a large k)."""
    progs = []
    for code in range(256):
        for k in (0, 4, 40):
            progs.append(_insn(code, 0, 0, k))
            progs.append(_insn(code, 0, 0, k) + _insn(RET_K, 0, 0, 1))
    return progs


def mutate(rng: random.Random, program: bytes) -> bytes:
    """Flip one field of one instruction."""
    if not program:
        return program
    n = len(program) // 8
    i = rng.randrange(n)
    code, jt, jf, k = struct.unpack_from("=HBBI", program, i * 8)
    which = rng.randrange(4)
    if which == 0:
        code = rng.randrange(256) if rng.random() < 0.7 else rng.randrange(0x10000)
    elif which == 1:
        jt = rng.randrange(256)
    elif which == 2:
        jf = rng.randrange(256)
    else:
        k = rng.choice(EDGE_K) if rng.random() < 0.6 else rng.getrandbits(32)
    return program[: i * 8] + _insn(code, jt, jf, k) + program[(i + 1) * 8:]


def uninitialised_scratch(rng: random.Random) -> bytes:
    """Reads a scratch slot that is written only on one branch (or not at all)."""
    slot = rng.randrange(16)
    store_on_both = rng.random() < 0.5
    return b"".join((
        _insn(0x20, 0, 0, 16),                      # ld [16]
        _insn(0x15, 0, 1, 2),                       # jeq #2, +0, +1
        _insn(0x02, 0, 0, slot),                    # st M[slot]
        _insn(0x02 if store_on_both else 0x00, 0, 0, slot if store_on_both else 0),
        _insn(0x60, 0, 0, slot if rng.random() < 0.8 else rng.randrange(16)),  # ld M[...]
        _insn(RET_A, 0, 0, 0),
    ))


def corpus(seed: int, count: int) -> list[bytes]:
    """``count`` programs (at least), deterministic for ``seed``."""
    rng = random.Random(seed)
    progs: list[bytes] = [b"", _insn(RET_K, 0, 0, 1), _insn(RET_K, 0, 0, 1) * 4096, _insn(RET_K, 0, 0, 1) * 4097,
                          _insn(0x00, 0, 0, 0) * 4095 + _insn(RET_A, 0, 0, 0)]
    progs += single_codes()
    while len(progs) < count:
        r = rng.random()
        if r < 0.45:
            progs.append(plausible(rng, rng.choice((1, 2, 3, 4, 5, 8, 12, 20, 40))))
        elif r < 0.85:
            progs.append(mutate(rng, plausible(rng, rng.choice((2, 3, 5, 8, 16)))))
        else:
            progs.append(uninitialised_scratch(rng))
    return progs
