"""Listing annotations: what a context load reads and what an immediate probably means.

Kept out of :mod:`.text` (which decides spelling) and out of the instruction types (which decide
meaning). A constant is named only when the word in ``A`` is known from a single load along every
path; the names are spelled as assembler expressions (``AF_INET``, ``htons(22)``, ``ip4("127.0.0.1")``)
and only ever appear in comments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ringfence.abi.constants import AF, IPPROTO, RESOLVE, SOCK, O
from ringfence.abi.ctx import word_names
from ringfence.abi.opcodes import SqeFlag, SqeOp
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

_U32: Final = 0xFFFFFFFF


def _reverse(table: Mapping[str, int]) -> dict[int, str]:
    """Value -> first name with that value (``AF_UNIX`` before its alias ``AF_LOCAL``)."""
    out: dict[int, str] = {}
    for name, value in table.items():
        out.setdefault(value, name)
    return out


_AF: Final = _reverse(AF)
_SOCK_TYPES: Final = {v: n for n, v in SOCK.items() if v <= 0xF}
_PROTO: Final = _reverse(IPPROTO)
_O_BITS: Final = {v: n for n, v in O.items() if v and v & (v - 1) == 0 and not n.startswith("__")}
_RESOLVE: Final = {v: n for n, v in RESOLVE.items()}
_IOSQE: Final = {int(f): f"IOSQE_{f.name}" for f in SqeFlag}


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


def a_sources(program: Program) -> list[Known]:
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

    def edge(pc: int, target: int, after: Known) -> Known:
        ins = insns[pc]  # a jump leaves A alone, so ``after`` is also what held before it
        if ins.code == JMP | JEQ | K and ins.jt != ins.jf and target == pc + 1 + ins.jt and after.word == (16, _U32):
            return Known(after.word, ins.k)  # the family is known on the true edge
        return after

    return forward(Cfg.of(program), Known(), transfer, _merge, unreached=Known(), edge=edge)


def _flags(value: int, names: dict[int, str]) -> str | None:
    parts, rest = [], value
    for bit, name in sorted(names.items()):
        if rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    return "|".join(parts) if parts and not rest else None


def _ip6(word: int, value: int) -> str:
    raw = bytes(4 * word) + value.to_bytes(4, "little") + bytes(12 - 4 * word)
    return f'ip6("{ipaddress.IPv6Address(raw).compressed}", {word})'


def constant(known: Known, ins: Instruction) -> str | None:
    """A name for ``ins``'s nonzero immediate, given what is known there (see :func:`a_sources`)."""
    code, k, word = ins.code, ins.k, known.word
    compare = code in (JMP | JEQ | K, JMP | JGT | K, JMP | JGE | K)
    bits = code in (JMP | JSET | K, ALU | AND | K, ALU | OR | K)
    if not (compare or bits) or word is None or k == 0:
        return None
    offset, mask = word
    if offset == 8:
        if compare and mask & 0xFF00 == 0 and k < len(SqeOp):
            return f"IORING_OP_{SqeOp(k).name}"
        flags = _flags(k >> 8, _IOSQE) if bits and not k & ~0x7F00 else None
        return f"({flags})<<8" if flags else None
    if offset == 16:
        return _AF.get(k) if compare and mask == _U32 else _flags(k, _O_BITS) if bits else None
    if offset == 20:
        if compare and k in _SOCK_TYPES:
            return _SOCK_TYPES[k]
        return f"htons({int.from_bytes(k.to_bytes(2, 'little'), 'big')})" if compare and k <= 0xFFFF else None
    address = k > 0xFF or mask != _U32
    if offset == 24:
        if address:
            v4 = f'ip4("{ipaddress.IPv4Address(k.to_bytes(4, "little"))}")'
            return {AF["AF_INET"]: v4, AF["AF_INET6"]: _ip6(0, k)}.get(known.family or -1, f"{v4} or {_ip6(0, k)}")
        return _PROTO.get(k) if compare else None
    if offset in (28, 32, 36):
        if offset == 32 and bits and mask == _U32 and k <= 0xFF:
            return _flags(k, _RESOLVE)
        return _ip6((offset - 24) // 4, k) if address else None
    return None


def note(program: Program, pc: int, known: Known) -> str:
    """The comment for the instruction at ``pc`` (empty if nothing useful is known)."""
    ins = program[pc]
    code = ins.code
    if code in (LD | W | ABS, CTX_LOAD) and ins.k < 40 and not ins.k & 3:
        return ", ".join(word_names(ins.k)) + (" (kernel's rewritten context load)" if code == CTX_LOAD else "")
    if code == RET | K:
        return "allow" if ins.k else "deny"
    return constant(known, ins) or ""

