"""Classic-BPF instructions and programs as data (spec §2.8).

:class:`Instruction` keeps the raw ``code, jt, jf, k`` of a ``struct sock_filter`` next to decoded views
(class, size, mode, op, source), in the manner of ``dis.Instruction``. Rendering lives in :mod:`.text`;
validity lives in :mod:`.check`. Any 16-bit code is representable so that every byte string decodes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Self, overload

from ringfence.errors import DecodeError

# Instruction classes (bits 0-2).
LD: Final = 0x00
LDX: Final = 0x01
ST: Final = 0x02
STX: Final = 0x03
ALU: Final = 0x04
JMP: Final = 0x05
RET: Final = 0x06
MISC: Final = 0x07

# Load sizes (bits 3-4) and modes (bits 5-7).
W: Final = 0x00
H: Final = 0x08
B: Final = 0x10
IMM: Final = 0x00
ABS: Final = 0x20
IND: Final = 0x40
MEM: Final = 0x60
LEN: Final = 0x80
MSH: Final = 0xA0

# ALU and JMP operations (bits 4-7).
ADD: Final = 0x00
SUB: Final = 0x10
MUL: Final = 0x20
DIV: Final = 0x30
OR: Final = 0x40
AND: Final = 0x50
LSH: Final = 0x60
RSH: Final = 0x70
NEG: Final = 0x80
MOD: Final = 0x90
XOR: Final = 0xA0
JA: Final = 0x00
JEQ: Final = 0x10
JGT: Final = 0x20
JGE: Final = 0x30
JSET: Final = 0x40

# Operand source (ALU/JMP bit 3) and return value source (RET bits 3-4).
K: Final = 0x00
X: Final = 0x08
A: Final = 0x10

# MISC operations.
TAX: Final = 0x00
TXA: Final = 0x80

#: ``LD|W|ABS`` after io_uring's rewrite (spec §5.5): "A := context word k". Never valid as input.
CTX_LOAD: Final = LDX | W | ABS

#: Limits from spec §2.9.
MAXINSNS: Final = 4096
MEMWORDS: Final = 16

CONDITIONAL_JUMP_OPS: Final = frozenset({JEQ, JGT, JGE, JSET})

_SOCK_FILTER: Final = struct.Struct("=HBBI")


@dataclass(frozen=True, slots=True)
class Instruction:
    """One ``struct sock_filter``: raw fields plus decoded views. Equality is raw (byte) equality.

    The decoded views (``cls``, ``op``, ``src``, ``size``, ``mode`` and the jump predicates) are computed
    once at construction, so the interpreter and the checkers read attributes instead of masking codes.
    """

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0
    cls: int = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)
    mode: int = field(init=False, repr=False, compare=False)
    op: int = field(init=False, repr=False, compare=False)
    src: int = field(init=False, repr=False, compare=False)
    """K or X for ALU/JMP; K, X or A (bits 3-4) for RET."""
    is_conditional_jump: bool = field(init=False, repr=False, compare=False)
    """The kernel compares whole 16-bit codes, so a code above 0xff is never a jump."""
    is_ja: bool = field(init=False, repr=False, compare=False)
    is_jump: bool = field(init=False, repr=False, compare=False)
    is_return: bool = field(init=False, repr=False, compare=False)
    """Any RET-class code: control never continues after it."""

    def __post_init__(self) -> None:
        for name in ("code", "jt", "jf", "k"):  # exact ints only: IntEnum members become plain ints
            value = getattr(self, name)
            if type(value) is not int:
                try:
                    object.__setattr__(self, name, int.__index__(value))
                except TypeError:
                    raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
        code = self.code
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"code {code} does not fit in 16 bits")
        if not (0 <= self.jt <= 0xFF and 0 <= self.jf <= 0xFF):
            raise ValueError(f"jump offsets ({self.jt}, {self.jf}) do not fit in 8 bits")
        if not 0 <= self.k <= 0xFFFFFFFF:
            raise ValueError(f"k {self.k} does not fit in 32 bits")
        cls = code & 0x07
        op = code & 0xF0
        conditional = code <= 0xFF and cls == JMP and op in CONDITIONAL_JUMP_OPS
        ja = code == JMP | JA
        put = object.__setattr__
        put(self, "cls", cls)
        put(self, "size", code & 0x18)
        put(self, "mode", code & 0xE0)
        put(self, "op", op)
        put(self, "src", code & (0x18 if cls == RET else 0x08))
        put(self, "is_conditional_jump", conditional)
        put(self, "is_ja", ja)
        put(self, "is_jump", ja or conditional)
        put(self, "is_return", cls == RET)

    def targets(self, pc: int) -> tuple[int, ...]:
        """Indices this instruction can continue at (may lie outside the program); empty for a return."""
        if self.is_ja:
            return (pc + 1 + self.k,)
        if self.is_conditional_jump:
            return (pc + 1 + self.jt, pc + 1 + self.jf)
        if self.cls == RET:
            return ()
        return (pc + 1,)

    def uses_k(self) -> bool:
        """Whether ``k`` carries meaning for this code (the kernel never looks at unused fields, §5.5)."""
        cls = self.cls
        if cls in (LD, LDX):
            return self.mode != LEN
        if cls in (ST, STX):
            return True
        if cls == ALU:
            return self.op != NEG and self.src == K
        if cls == JMP:
            return self.op == JA or self.src == K
        if cls == RET:
            return self.src == K
        return False

    def canonical(self) -> Instruction:
        """The same instruction with fields its code does not use set to 0 (semantic identity, as gVisor)."""
        jt, jf = (self.jt, self.jf) if self.is_conditional_jump else (0, 0)
        return Instruction(self.code, jt, jf, self.k if self.uses_k() else 0)

    def same_meaning(self, other: Instruction) -> bool:
        return self.canonical() == other.canonical()

    def pack(self) -> bytes:
        return _SOCK_FILTER.pack(self.code, self.jt, self.jf, self.k)


@dataclass(frozen=True, slots=True)
class Program:
    """An immutable sequence of instructions, exactly as the kernel would copy it from user memory."""

    instructions: tuple[Instruction, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.instructions, tuple):
            object.__setattr__(self, "instructions", tuple(self.instructions))

    def __len__(self) -> int:
        return len(self.instructions)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    @overload
    def __getitem__(self, index: int) -> Instruction: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Instruction, ...]: ...
    def __getitem__(self, index: int | slice) -> Instruction | tuple[Instruction, ...]:
        return self.instructions[index]

    @classmethod
    def of(cls, *items: tuple[int, int, int, int] | Instruction) -> Self:
        """Shorthand for tests and tables: ``Program.of((0x06, 0, 0, 1))``."""
        return cls(tuple(i if isinstance(i, Instruction) else Instruction(*i) for i in items))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode native-endian ``sock_filter`` records; the length must be a multiple of 8."""
        if len(data) % _SOCK_FILTER.size:
            raise DecodeError(f"{len(data)} bytes is not a whole number of 8-byte instructions")
        return cls(tuple(Instruction(*t) for t in _SOCK_FILTER.iter_unpack(data)))

    def to_bytes(self) -> bytes:
        return b"".join(i.pack() for i in self.instructions)
