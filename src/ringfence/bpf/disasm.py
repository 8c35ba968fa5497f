"""Listings: one instruction per line, column-aligned, jump targets labelled, valid assembler input.

:func:`disassembly` yields the data (one :class:`Line` per instruction); :func:`disassemble` formats
it (listing format 1, ``docs/asm.md``). ``assemble(disassemble(p)) == p`` for every program, including
ones the kernel refuses: whatever has no exact mnemonic spelling is written as ``.insn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.bpf.cfg import Cfg
from ringfence.bpf.insn import CTX_LOAD, Instruction, Program
from ringfence.bpf.notes import a_sources, note
from ringfence.bpf.target import IOURING, Target
from ringfence.bpf.text import FORMS, code_name, default_label, render, render_line

LISTING_FORMAT: Final = 1
_LABEL_WIDTH: Final = 8
_MNEMONIC_WIDTH: Final = 8
_OPERAND_WIDTH: Final = 28


@dataclass(frozen=True, slots=True)
class Line:
    """One listing line: ``label`` is empty unless a jump lands on ``pc``."""

    pc: int
    insn: Instruction
    label: str
    mnemonic: str
    operands: str
    note: str

    @property
    def is_jump_target(self) -> bool:
        return bool(self.label)


def _raw_note(program: Program, pc: int, target: Target) -> str:
    """Why an instruction is written raw."""
    ins = program[pc]
    if ins.code == CTX_LOAD and target.load_offset_ok(ins.k):
        return f"kernel's rewritten context load: {', '.join(target.word_names(ins.k))}"
    if ins.code not in FORMS:
        return code_name(ins.code)
    if ins.canonical() != ins:
        return f"{render_line(ins.canonical(), pc)} with unused fields set"
    return f"{render_line(ins, pc)}: jump target past the last instruction"


def disassembly(program: Program, target: Target = IOURING) -> tuple[Line, ...]:
    """The listing as data: spelling, labels where the listing names a target (cf. ``dis.findlabels``), notes."""
    n = len(program)
    spelled = [render(ins, pc, n) for pc, ins in enumerate(program)]
    cfg = Cfg.of(program)
    named: set[int] = set()
    for pc, (ins, (mnemonic, _)) in enumerate(zip(program, spelled, strict=True)):
        if mnemonic != ".insn" and ins.is_jump:  # a spelled jump: its targets are in range
            # the listing names the false target only when jf is not 0 (else it is the next line)
            named.update(t for t in cfg.successors[pc] if ins.is_ja or ins.jf or t == pc + 1 + ins.jt)
    words = a_sources(program, target)
    return tuple(
        Line(pc, ins, default_label(pc) if pc in named else "", mnemonic, operands,
             _raw_note(program, pc, target) if mnemonic == ".insn" else note(program, pc, words[pc], target))
        for pc, (ins, (mnemonic, operands)) in enumerate(zip(program, spelled, strict=True)))


def format_line(line: Line, *, annotate: bool = True) -> str:
    label = f"{line.label}:" if line.label else ""
    code = f"{label:<{_LABEL_WIDTH - 1}} {line.mnemonic:<{_MNEMONIC_WIDTH}}{line.operands}"
    if not annotate:
        return code.rstrip()
    comment = f"; {line.pc:>4}" + (f"  {line.note}" if line.note else "")
    return f"{code:<{_LABEL_WIDTH + _MNEMONIC_WIDTH + _OPERAND_WIDTH}} {comment}"


def disassemble(program: Program, *, annotate: bool = True, target: Target = IOURING) -> str:
    """The listing text. With ``annotate``, a header and a ``; pc  note`` comment on every line (the notes
    name ``target``'s fields and constants; the instructions do not depend on it)."""
    body = [format_line(line, annotate=annotate) for line in disassembly(program, target)]
    if annotate:
        count = len(program)
        body = [f"; ringfence listing format {LISTING_FORMAT}",
                f"; {count} instruction{'s' if count != 1 else ''}", *body]
    return "\n".join(body) + "\n" if body else ""
