"""Where a classic-BPF program runs: its context, its names, its extra acceptance rules, its verdicts.

The generic classic-BPF rules (spec §5.5 stage 2) are the same everywhere; a :class:`Target` adds the
rest. io_uring's checker is seccomp's adapted, so both targets accept the same codes and rewrite the
same loads; they differ in the context (40-byte ``struct io_uring_bpf_ctx`` or 64-byte
``struct seccomp_data``) and in what a return value means. This is the one ``bpf`` module that reads
the context layouts from :mod:`ringfence.abi`; everything else asks a target.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Final

from ringfence.abi import ctx as iouring_ctx
from ringfence.abi import seccomp
from ringfence.abi.constants import AF, ALL_CONSTANTS, IPPROTO, RESOLVE, SOCK, O
from ringfence.abi.layout import BPF_CTX_SIZE
from ringfence.abi.opcodes import SqeFlag, SqeOp
from ringfence.bpf.insn import (
    ABS,
    ADD,
    ALU,
    AND,
    CTX_LOAD,
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
    K,
    W,
    X,
)

_U32: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a return value means on a target. ``allowed``: the request (or system call) goes ahead."""

    value: int
    allowed: bool
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ConstantQuery:
    """A disassembly note's question: which name fits immediate ``k``, compared (``compare``) or used as bits
    with ``A``, when ``A`` holds the context word at ``offset`` ANDed with ``mask``, and (where the target
    has a family word) the family is known to be ``family``."""

    offset: int
    mask: int
    k: int
    compare: bool
    family: int | None = None


@dataclass(frozen=True, eq=False)
class Target:
    """One program type. Instances are singletons (:data:`IOURING`, :data:`SECCOMP`); compare with ``is``."""

    name: str
    context: str
    ctx_size: int
    fields: Mapping[str, int]
    constants: Mapping[str, int]
    word_names: Callable[[int], tuple[str, ...]]
    #: Codes the target's own pass accepts unchanged, and the codes it rewrites (to the value's code).
    codes: frozenset[int]
    rewrites: Mapping[int, int]
    verdict: Callable[[int], Verdict]
    name_constant: Callable[[ConstantQuery], str | None]
    #: A word whose ``jeq #k`` proves a family on the true edge (names addresses in notes); None if none.
    family_word: int | None = None

    def __repr__(self) -> str:
        return f"<Target {self.name}>"

    @property
    def len_value(self) -> int:
        """The ``k`` that length loads (``LD|W|LEN``, ``LDX|W|LEN``) are rewritten to: the context size."""
        return self.ctx_size

    def load_offset_ok(self, k: int) -> bool:
        """The context-load rule: an aligned 32-bit word wholly inside the context."""
        return k < self.ctx_size and not k & 3

    @cached_property
    def words(self) -> struct.Struct:
        """The context as native-endian words (little-endian: ringfence models x86-64, spec §7.7)."""
        return struct.Struct(f"<{self.ctx_size // 4}I")


#: The whitelist both io_uring and seccomp apply after the generic check (spec §5.5 stage 3).
SHARED_CODES: Final = frozenset(
    [RET | K, RET | A, ALU | NEG, LD | IMM, LDX | IMM, MISC | TAX, MISC | TXA, LD | MEM, LDX | MEM, ST, STX,
     JMP | JA]
    + [ALU | op | src for op in (ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH) for src in (K, X)]
    + [JMP | op | src for op in (JEQ, JGE, JGT, JSET) for src in (K, X)]
)
#: Context loads become ``LDX|W|ABS`` ("A := context word k"); length loads become immediates.
SHARED_REWRITES: Final = MappingProxyType({LD | W | ABS: CTX_LOAD, LD | W | LEN: LD | IMM, LDX | W | LEN: LDX | IMM})


# -- io_uring -------------------------------------------------------------------------------------------------

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


def _flags(value: int, names: Mapping[int, str]) -> str | None:
    parts, rest = [], value
    for bit, name in sorted(names.items()):
        if rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    return "|".join(parts) if parts and not rest else None


def _ip6(word: int, value: int) -> str:
    raw = bytes(4 * word) + value.to_bytes(4, "little") + bytes(12 - 4 * word)
    return f'ip6("{ipaddress.IPv6Address(raw).compressed}", {word})'


def _iouring_constant(q: ConstantQuery) -> str | None:
    """Names for io_uring context words (spec §7.7), spelled as assembler expressions."""
    k, mask, compare, offset = q.k, q.mask, q.compare, q.offset
    if offset == 8:
        if compare and mask & 0xFF00 == 0 and k < len(SqeOp):
            return f"IORING_OP_{SqeOp(k).name}"
        flags = _flags(k >> 8, _IOSQE) if not compare and not k & ~0x7F00 else None
        return f"({flags})<<8" if flags else None
    if offset == 16:
        return _AF.get(k) if compare and mask == _U32 else _flags(k, _O_BITS) if not compare else None
    if offset == 20:
        if compare and k in _SOCK_TYPES:
            return _SOCK_TYPES[k]
        return f"htons({int.from_bytes(k.to_bytes(2, 'little'), 'big')})" if compare and k <= 0xFFFF else None
    address = k > 0xFF or mask != _U32
    if offset == 24:
        if address:
            v4 = f'ip4("{ipaddress.IPv4Address(k.to_bytes(4, "little"))}")'
            return {AF["AF_INET"]: v4, AF["AF_INET6"]: _ip6(0, k)}.get(q.family or -1, f"{v4} or {_ip6(0, k)}")
        return _PROTO.get(k) if compare else None
    if offset in (28, 32, 36):
        if offset == 32 and not compare and mask == _U32 and k <= 0xFF:
            return _flags(k, _RESOLVE)
        return _ip6((offset - 24) // 4, k) if address else None
    return None


def _iouring_constants() -> Mapping[str, int]:
    table: dict[str, int] = dict(ALL_CONSTANTS)
    for op in SqeOp:
        table[f"IORING_OP_{op.name}"] = table[f"OP_{op.name}"] = int(op)
    for flag in SqeFlag:
        table[f"IOSQE_{flag.name}"] = int(flag)
    table.update(ALLOW=1, DENY=0)
    return MappingProxyType(table)


def _iouring_verdict(value: int) -> Verdict:
    """Any nonzero return allows the request (spec §5.6)."""
    return Verdict(value, value != 0, "allow" if value else "deny")


IOURING: Final = Target(
    name="io_uring", context="struct io_uring_bpf_ctx", ctx_size=BPF_CTX_SIZE,
    fields=MappingProxyType(dict(iouring_ctx.LOAD_OFFSETS)), constants=_iouring_constants(),
    word_names=iouring_ctx.word_names, codes=SHARED_CODES, rewrites=SHARED_REWRITES, verdict=_iouring_verdict,
    name_constant=_iouring_constant, family_word=16,
)


# -- seccomp ----------------------------------------------------------------------------------------------------

_ARCHES: Final = {seccomp.AUDIT_ARCH_X86_64: "AUDIT_ARCH_X86_64", seccomp.AUDIT_ARCH_I386: "AUDIT_ARCH_I386"}
_NRS: Final = {
    **{nr: f"__NR_{name}" for name, nr in seccomp.IO_URING_SYSCALLS.items()},
    **{nr: f"__X32_SYSCALL_BIT|__NR_{name}" for name, nr in seccomp.IO_URING_NR["x32"].items()},
}


def _seccomp_constant(q: ConstantQuery) -> str | None:
    if q.compare and q.mask == _U32:
        if q.offset == 4:
            return _ARCHES.get(q.k)
        if q.offset == 0:
            return _NRS.get(q.k)
    if q.offset == 0 and not q.compare and q.k == seccomp.X32_SYSCALL_BIT:
        return "__X32_SYSCALL_BIT"
    return None


def _seccomp_verdict(value: int) -> Verdict:
    """The action in the high 16 bits, data in the low 16; ALLOW and LOG let the system call run."""
    ret = seccomp.SeccompReturn.of(value)
    if ret.action is None:
        return Verdict(value, False, f"{value:#x}: unknown action, kills the process")
    name = f"SECCOMP_RET_{ret.action.name}"
    return Verdict(value, ret.action in (seccomp.SeccompAction.ALLOW, seccomp.SeccompAction.LOG),
                   f"{name}|{ret.data}" if ret.data else name)


SECCOMP: Final = Target(
    name="seccomp", context="struct seccomp_data", ctx_size=seccomp.SECCOMP_DATA_SIZE,
    fields=seccomp.LOAD_OFFSETS, constants=MappingProxyType({**ALL_CONSTANTS, **seccomp.CONSTANTS}),
    word_names=seccomp.word_names, codes=SHARED_CODES, rewrites=SHARED_REWRITES, verdict=_seccomp_verdict,
    name_constant=_seccomp_constant,
)

TARGETS: Final[Mapping[str, Target]] = MappingProxyType({t.name: t for t in (IOURING, SECCOMP)})
