"""Canonical text of one instruction: the single place that decides how an instruction is spelled.

The assembler reads back exactly what this module writes (listing format 1, ``docs/asm.md``). A code
outside :data:`FORMS`, or an instruction whose unused fields are not zero, or a jump that leaves the
program, is spelled as the raw escape ``.insn code, jt, jf, k`` so that every program round-trips.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from ringfence.bpf.insn import (
    ABS,
    ADD,
    ALU,
    AND,
    DIV,
    IMM,
    IND,
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
    MOD,
    MSH,
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
    B,
    H,
    Instruction,
    K,
    W,
    X,
)

# Operand shapes. The assembler's grammar has one rule per shape.
IMMEDIATE: Final = "#k"
ABSOLUTE: Final = "[k]"
INDIRECT: Final = "[x+k]"
SCRATCH: Final = "M[k]"
LENGTH: Final = "#len"
IPHDR: Final = "4*([k]&0xf)"
REG_X: Final = "x"
REG_A: Final = "a"
NONE: Final = ""
JUMP: Final = "label"
COND_K: Final = "#k, Lt[, Lf]"
COND_X: Final = "x, Lt[, Lf]"

ALU_NAMES: Final = MappingProxyType({ADD: "add", SUB: "sub", MUL: "mul", DIV: "div", OR: "or", AND: "and",
                                     LSH: "lsh", RSH: "rsh", MOD: "mod", XOR: "xor"})
JMP_NAMES: Final = MappingProxyType({JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"})


def _forms() -> dict[int, tuple[str, str]]:
    forms: dict[int, tuple[str, str]] = {
        LD | W | IMM: ("ld", IMMEDIATE), LD | W | ABS: ("ld", ABSOLUTE), LD | H | ABS: ("ldh", ABSOLUTE),
        LD | B | ABS: ("ldb", ABSOLUTE), LD | W | IND: ("ld", INDIRECT), LD | H | IND: ("ldh", INDIRECT),
        LD | B | IND: ("ldb", INDIRECT), LD | MEM: ("ld", SCRATCH), LD | W | LEN: ("ld", LENGTH),
        LDX | W | IMM: ("ldx", IMMEDIATE), LDX | MEM: ("ldx", SCRATCH), LDX | W | LEN: ("ldx", LENGTH),
        LDX | B | MSH: ("ldxb", IPHDR), ST: ("st", SCRATCH), STX: ("stx", SCRATCH),
        ALU | NEG: ("neg", NONE), JMP | JA: ("ja", JUMP),
        RET | K: ("ret", IMMEDIATE), RET | X: ("ret", REG_X), RET | A: ("ret", REG_A),
        MISC | TAX: ("tax", NONE), MISC | TXA: ("txa", NONE),
    }
    for op, name in ALU_NAMES.items():
        forms[ALU | op | K] = (name, IMMEDIATE)
        forms[ALU | op | X] = (name, REG_X)
    for op, name in JMP_NAMES.items():
        forms[JMP | op | K] = (name, COND_K)
        forms[JMP | op | X] = (name, COND_X)
    return forms


#: Every code with a mnemonic spelling: the classic instruction set plus ``ret x``.
FORMS: Final[Mapping[int, tuple[str, str]]] = MappingProxyType(_forms())

_CLASS_NAMES: Final = ("LD", "LDX", "ST", "STX", "ALU", "JMP", "RET", "MISC")
_SIZE_NAMES: Final = {W: "W", H: "H", B: "B", 0x18: "DW"}  # 0x18 is eBPF's DW; classic has no name
_MODE_NAMES: Final = {IMM: "IMM", ABS: "ABS", IND: "IND", MEM: "MEM", LEN: "LEN", MSH: "MSH"}
_JMP_OP_NAMES: Final = {JA: "JA", JEQ: "JEQ", JGT: "JGT", JGE: "JGE", JSET: "JSET"}


def code_name(code: int) -> str:
    """Symbolic spelling of a code as in ``linux/filter.h``: ``LD|W|ABS``, ``ALU|MOD|K``, ``RET|A``."""
    if code > 0xFF:
        return f"{code:#x}"
    ins = Instruction(code)
    cls = ins.cls
    parts = [_CLASS_NAMES[cls]]
    if cls in (LD, LDX):
        parts += [_SIZE_NAMES[ins.size], _MODE_NAMES.get(ins.mode, f"{ins.mode:#x}")]
    elif cls in (ALU, JMP):
        names = {**{k: v.upper() for k, v in ALU_NAMES.items()}, NEG: "NEG"} if cls == ALU else _JMP_OP_NAMES
        parts += [names.get(ins.op, f"{ins.op:#x}"), "X" if ins.src == X else "K"]
    elif cls == RET:
        parts.append({K: "K", X: "X", A: "A"}.get(ins.src, f"{ins.src:#x}"))
        if ins.mode:
            parts.append(f"{ins.mode:#x}")
    elif cls == MISC:
        parts.append({TAX: "TAX", TXA: "TXA"}.get(ins.mode | ins.size, f"{ins.mode | ins.size:#x}"))
    elif ins.mode | ins.size:  # ST/STX use no other bits
        parts.append(f"{ins.mode | ins.size:#x}")
    return "|".join(parts)


def fmt_imm(value: int) -> str:
    """Immediates: decimal below 10, else hex."""
    return str(value) if value < 10 else f"{value:#x}"


def fmt_addr(value: int) -> str:
    """Offsets and indices: decimal below 4096, else hex."""
    return str(value) if value < 4096 else f"{value:#x}"


def default_label(pc: int) -> str:
    return f"L{pc}"


def raw(insn: Instruction) -> tuple[str, str]:
    return ".insn", f"{insn.code:#04x}, {insn.jt}, {insn.jf}, {insn.k:#x}"


def render(insn: Instruction, pc: int, length: int | None = None,
           label: Callable[[int], str] = default_label) -> tuple[str, str]:
    """``(mnemonic, operands)`` of ``insn`` at ``pc``. ``length`` (the program's) makes far jumps raw."""
    form = FORMS.get(insn.code)
    if form is None or insn.canonical() != insn:
        return raw(insn)
    name, shape = form
    k = insn.k
    if shape in (JUMP, COND_K, COND_X):
        targets = insn.targets(pc)
        if length is not None and max(targets) >= length:
            return raw(insn)
        if shape == JUMP:
            return name, label(targets[0])
        first = "x" if shape == COND_X else "#" + fmt_imm(k)
        text = f"{first}, {label(targets[0])}"
        return name, text + (f", {label(targets[1])}" if insn.jf else "")
    match shape:
        case "#k":
            operands = "#" + fmt_imm(k)
        case "[k]":
            operands = f"[{fmt_addr(k)}]"
        case "[x+k]":
            operands = f"[x + {fmt_addr(k)}]"
        case "M[k]":
            operands = f"M[{fmt_addr(k)}]"
        case "4*([k]&0xf)":
            operands = f"4*([{fmt_addr(k)}]&0xf)"
        case _:  # "#len", "x", "a", ""
            operands = shape
    return name, operands


def render_line(insn: Instruction, pc: int, length: int | None = None) -> str:
    """One-line text (``jeq #2, L3``), used by traces and diagnostics."""
    name, operands = render(insn, pc, length)
    return f"{name} {operands}".rstrip()
