"""What each ALU and conditional-jump instruction computes, written once (spec §5.6).

Every operation is a small function over an :class:`Algebra`, so one definition serves every executor:
the reference interpreter evaluates it over Python ints (:data:`INT`), the fast path over Python source
text (:mod:`.fast`), and a symbolic executor (:mod:`.symbolic`) over whatever terms a prover uses. The
facts that are not an operation are declared beside the table, and each executor honours them:

* values are unsigned 32-bit and every operation wraps modulo 2**32 (the algebra's job);
* a shift by ``X`` uses the low 5 bits of ``X`` (:data:`SHIFT_MASK`, written into the shift rules);
* DIV (and MOD) by ``X == 0`` ends the program with :data:`DIV_BY_ZERO_RESULT` (``AluRule.divides``);
  a constant 0 divisor never runs, since the checker refuses it.

Anything [UNCONFIRMED] is one name here, so a real-kernel result changes one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol, TypeVar

from ringfence.bpf.insn import ADD, AND, DIV, JEQ, JGE, JGT, JSET, LSH, MOD, MUL, NEG, OR, RSH, SUB, XOR

V = TypeVar("V")
C_co = TypeVar("C_co", covariant=True)
C = TypeVar("C")

#: Registers and scratch words are unsigned 32-bit; arithmetic wraps.
U32: Final = 0xFFFFFFFF

#: [UNCONFIRMED, spec §5.6 / §10.2 q7] A shift by ``X`` uses the low 5 bits of ``X`` (x86-64 and arm64
#: JITs, the generic interpreter). Constant shifts >= 32 never run: the checker refuses them.
SHIFT_MASK: Final = 31
X_SHIFT_MASK: Final = SHIFT_MASK  # the earlier name

#: What ``DIV x`` (and ``MOD x``) with ``X == 0`` returns: the program ends with 0, a denial (§5.6).
DIV_BY_ZERO_RESULT: Final = 0


class Algebra(Protocol[V, C_co]):
    """Unsigned 32-bit words ``V`` and conditions ``C_co``; every operation wraps modulo 2**32."""

    def const(self, k: int) -> V: ...
    def add(self, a: V, b: V) -> V: ...
    def sub(self, a: V, b: V) -> V: ...
    def mul(self, a: V, b: V) -> V: ...
    def udiv(self, a: V, b: V) -> V: ...  # b == 0 only on paths the divides-guard cuts off (terms: be total)
    def urem(self, a: V, b: V) -> V: ...  # likewise
    def or_(self, a: V, b: V) -> V: ...
    def and_(self, a: V, b: V) -> V: ...
    def xor(self, a: V, b: V) -> V: ...
    def lsh(self, a: V, b: V) -> V: ...  # b < 32 always (the rules mask it)
    def rsh(self, a: V, b: V) -> V: ...  # logical; b < 32 always
    def neg(self, a: V) -> V: ...
    def eq(self, a: V, b: V) -> C_co: ...
    def ugt(self, a: V, b: V) -> C_co: ...
    def uge(self, a: V, b: V) -> C_co: ...
    def test(self, a: V, b: V) -> C_co: ...  # (a & b) != 0


class AluFn(Protocol):
    def __call__(self, alg: Algebra[V, C], a: V, b: V, /) -> V: ...


class CondFn(Protocol):
    def __call__(self, alg: Algebra[V, C], a: V, b: V, /) -> C: ...


def _add(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.add(a, b)


def _sub(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.sub(a, b)


def _mul(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.mul(a, b)


def _div(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.udiv(a, b)


def _mod(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.urem(a, b)


def _or(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.or_(a, b)


def _and(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.and_(a, b)


def _xor(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.xor(a, b)


def _lsh(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.lsh(a, alg.and_(b, alg.const(SHIFT_MASK)))


def _rsh(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.rsh(a, alg.and_(b, alg.const(SHIFT_MASK)))


def _neg(alg: Algebra[V, C], a: V, b: V, /) -> V:
    return alg.neg(a)


def _eq(alg: Algebra[V, C], a: V, b: V, /) -> C:
    return alg.eq(a, b)


def _gt(alg: Algebra[V, C], a: V, b: V, /) -> C:
    return alg.ugt(a, b)


def _ge(alg: Algebra[V, C], a: V, b: V, /) -> C:
    return alg.uge(a, b)


def _set(alg: Algebra[V, C], a: V, b: V, /) -> C:
    return alg.test(a, b)


@dataclass(frozen=True, slots=True)
class AluRule:
    """``A := apply(A, operand)``. ``unary`` ignores the operand; ``divides`` ends the run on a zero ``X``."""

    op: int
    name: str
    apply: AluFn
    unary: bool = False
    divides: bool = False


@dataclass(frozen=True, slots=True)
class JumpRule:
    """Jump to ``jt`` when ``holds(A, operand)``, else to ``jf``."""

    op: int
    name: str
    holds: CondFn


ALU: Final[Mapping[int, AluRule]] = MappingProxyType({r.op: r for r in (
    AluRule(ADD, "add", _add), AluRule(SUB, "sub", _sub), AluRule(MUL, "mul", _mul),
    AluRule(DIV, "div", _div, divides=True), AluRule(MOD, "mod", _mod, divides=True),
    AluRule(OR, "or", _or), AluRule(AND, "and", _and), AluRule(XOR, "xor", _xor),
    AluRule(LSH, "lsh", _lsh), AluRule(RSH, "rsh", _rsh), AluRule(NEG, "neg", _neg, unary=True),
)})

JUMPS: Final[Mapping[int, JumpRule]] = MappingProxyType({r.op: r for r in (
    JumpRule(JEQ, "jeq", _eq), JumpRule(JGT, "jgt", _gt), JumpRule(JGE, "jge", _ge), JumpRule(JSET, "jset", _set),
)})


class IntAlgebra:
    """Concrete words: the interpreter's algebra."""

    __slots__ = ()

    def const(self, k: int) -> int:
        return k

    def add(self, a: int, b: int) -> int:
        return (a + b) & U32

    def sub(self, a: int, b: int) -> int:
        return (a - b) & U32

    def mul(self, a: int, b: int) -> int:
        return (a * b) & U32

    def udiv(self, a: int, b: int) -> int:
        return a // b

    def urem(self, a: int, b: int) -> int:
        return a % b

    def or_(self, a: int, b: int) -> int:
        return a | b

    def and_(self, a: int, b: int) -> int:
        return a & b

    def xor(self, a: int, b: int) -> int:
        return a ^ b

    def lsh(self, a: int, b: int) -> int:
        return (a << b) & U32

    def rsh(self, a: int, b: int) -> int:
        return a >> b

    def neg(self, a: int) -> int:
        return -a & U32

    def eq(self, a: int, b: int) -> bool:
        return a == b

    def ugt(self, a: int, b: int) -> bool:
        return a > b

    def uge(self, a: int, b: int) -> bool:
        return a >= b

    def test(self, a: int, b: int) -> bool:
        return a & b != 0


INT: Final = IntAlgebra()


def shift_amount(x: int) -> int:
    """How far ``lsh x`` / ``rsh x`` shift for a given ``X`` (the rule above, over ints)."""
    return x & SHIFT_MASK
