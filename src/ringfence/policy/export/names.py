"""The kernel headers' names for the numbers a Plan holds, so that exported code reads like hand-written code.

Opcode and record-type names are enumerators in the headers (not macros: the preprocessor cannot see them);
SQE flags, ``BPF_*`` instruction parts and setup flags are macros. :func:`c_constants` says which is which, so
that the C exporter can supply a fallback for old headers without colliding with new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi.opcodes import (
    BPF_CMD_FILTER,
    SQE_VALID_FLAGS,
    FilterFlag,
    RegisterOp,
    RestrictionOp,
    SqeFlag,
    SqeOp,
)
from ringfence.bpf import insn as bpf


@dataclass(frozen=True, slots=True)
class Constant:
    """A named number as the headers spell it; ``macro`` when the headers ``#define`` it (else an enumerator)."""

    name: str
    value: int
    macro: bool = False


def sqe_op(op: int) -> Constant | None:
    """``IORING_OP_<NAME>``; None for a number ringfence has no name for."""
    try:
        return Constant(f"IORING_OP_{SqeOp(op).name}", op)
    except ValueError:
        return None


def register_op(op: int) -> Constant | None:
    """``IORING_REGISTER_<NAME>`` or ``IORING_UNREGISTER_<NAME>``."""
    try:
        name = RegisterOp(op).name
    except ValueError:
        return None
    return Constant(f"IORING_{name}" if name.startswith("UNREGISTER_") else f"IORING_REGISTER_{name}", op)


def restriction_type(kind: int) -> Constant | None:
    """``IORING_RESTRICTION_<NAME>``, the ``opcode`` of a restriction record."""
    try:
        return Constant(f"IORING_RESTRICTION_{RestrictionOp(kind).name}", kind)
    except ValueError:
        return None


def sqe_flags(mask: int) -> list[Constant] | None:
    """The ``IOSQE_*`` macros that make up ``mask`` (None if it has a bit without a name)."""
    if mask & ~SQE_VALID_FLAGS:
        return None
    return [Constant(f"IOSQE_{f.name}", int(f), macro=True) for f in SqeFlag if mask & f]


def filter_flags(flags: int) -> list[Constant] | None:
    """The ``IO_URING_BPF_FILTER_*`` names that make up ``flags`` (None if it has an undefined bit)."""
    if flags & ~int(FilterFlag.DENY_REST | FilterFlag.SZ_STRICT):
        return None
    return [Constant(f"IO_URING_BPF_FILTER_{f.name}", int(f)) for f in FilterFlag if flags & f]


CMD_FILTER: Final = Constant("IO_URING_BPF_CMD_FILTER", BPF_CMD_FILTER)
REGISTER_RESTRICTIONS: Final = Constant("IORING_REGISTER_RESTRICTIONS", RegisterOp.RESTRICTIONS)
REGISTER_ENABLE_RINGS: Final = Constant("IORING_REGISTER_ENABLE_RINGS", RegisterOp.ENABLE_RINGS)
REGISTER_BPF_FILTER: Final = Constant("IORING_REGISTER_BPF_FILTER", RegisterOp.BPF_FILTER)

# ``linux/filter.h`` and ``linux/bpf_common.h``: the parts of an instruction code.
_CLASSES: Final = {bpf.LD: "BPF_LD", bpf.LDX: "BPF_LDX", bpf.ST: "BPF_ST", bpf.STX: "BPF_STX", bpf.ALU: "BPF_ALU",
                   bpf.JMP: "BPF_JMP", bpf.RET: "BPF_RET", bpf.MISC: "BPF_MISC"}
_SIZES: Final = {bpf.W: "BPF_W", bpf.H: "BPF_H", bpf.B: "BPF_B"}
_MODES: Final = {bpf.IMM: "BPF_IMM", bpf.ABS: "BPF_ABS", bpf.IND: "BPF_IND", bpf.MEM: "BPF_MEM",
                 bpf.LEN: "BPF_LEN", bpf.MSH: "BPF_MSH"}
_ALU_OPS: Final = {bpf.ADD: "BPF_ADD", bpf.SUB: "BPF_SUB", bpf.MUL: "BPF_MUL", bpf.DIV: "BPF_DIV", bpf.OR: "BPF_OR",
                   bpf.AND: "BPF_AND", bpf.LSH: "BPF_LSH", bpf.RSH: "BPF_RSH", bpf.NEG: "BPF_NEG",
                   bpf.MOD: "BPF_MOD", bpf.XOR: "BPF_XOR"}
_JMP_OPS: Final = {bpf.JA: "BPF_JA", bpf.JEQ: "BPF_JEQ", bpf.JGT: "BPF_JGT", bpf.JGE: "BPF_JGE", bpf.JSET: "BPF_JSET"}
_SRCS: Final = {bpf.K: "BPF_K", bpf.X: "BPF_X"}
_RVALS: Final = {bpf.K: "BPF_K", bpf.X: "BPF_X", bpf.A: "BPF_A"}
_MISC_OPS: Final = {bpf.TAX: "BPF_TAX", bpf.TXA: "BPF_TXA"}

#: Every ``BPF_*`` name :func:`code_expression` may use, with its value (the headers define them all).
BPF_NAMES: Final = {name: value for table in (_CLASSES, _SIZES, _MODES, _ALU_OPS, _JMP_OPS, _SRCS, _RVALS, _MISC_OPS)
                    for value, name in table.items()}


def _join(parts: list[tuple[int, dict[int, str], bool]]) -> list[str] | None:
    names = []
    for value, table, always in parts:
        if value not in table:
            return None
        if value or always:
            names.append(table[value])
    return names


def code_expression(code: int) -> str | None:
    """``code`` as an expression of ``BPF_*`` macros (``BPF_LD | BPF_W | BPF_ABS``); None when some bits have no
    name in the classic-BPF headers."""
    if not 0 <= code <= 0xFF:  # the headers name bits 0-7 only
        return None
    cls = code & 0x07
    rest = code & 0xF8
    if cls in (bpf.LD, bpf.LDX):
        size, mode = rest & 0x18, rest & 0xE0
        names = _join([(size, _SIZES, mode in (bpf.ABS, bpf.IND)), (mode, _MODES, True)])
    elif cls in (bpf.ST, bpf.STX):
        names = [] if rest == 0 else None
    elif cls == bpf.ALU:
        op, src = rest & 0xF0, rest & 0x08
        names = _join([(op, _ALU_OPS, True), (src, _SRCS, op != bpf.NEG)])
    elif cls == bpf.JMP:
        op, src = rest & 0xF0, rest & 0x08
        names = _join([(op, _JMP_OPS, True), (src, _SRCS, op != bpf.JA)])
    elif cls == bpf.RET:
        names = _join([(rest, _RVALS, True)]) if rest in _RVALS else None
    else:
        names = _join([(rest, _MISC_OPS, True)]) if rest in _MISC_OPS else None
    if names is None:
        return None
    return " | ".join([_CLASSES[cls], *names])
