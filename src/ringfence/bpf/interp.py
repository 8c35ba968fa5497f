"""The reference interpreter: one instruction at a time, over a checked program and its target's context.

It runs the program *after* the kernel's rewrites (spec §5.5) with the semantics of spec §5.6 and is
the oracle the compiled fast path (:mod:`.fast`) is tested against. :class:`Machine` is the step API a
debugger builds on (snapshots, restore); :func:`run` is the one-call form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from ringfence.bpf.check import CheckedProgram
from ringfence.bpf.insn import (
    ALU,
    CTX_LOAD,
    IMM,
    JMP,
    LD,
    LDX,
    MEMWORDS,
    MISC,
    RET,
    ST,
    STX,
    TAX,
    TXA,
    A,
    Instruction,
    X,
)
from ringfence.bpf.semantics import ALU as ALU_RULES
from ringfence.bpf.semantics import DIV_BY_ZERO_RESULT, INT
from ringfence.bpf.semantics import JUMPS as JUMP_RULES
from ringfence.bpf.target import Verdict
from ringfence.bpf.text import render_line


@dataclass(frozen=True, slots=True)
class TraceStep:
    """The machine after executing the instruction at ``pc``; ``mem`` lists the slots it wrote."""

    pc: int
    text: str
    a: int
    x: int
    mem: tuple[tuple[int, int], ...] = ()
    result: int | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """Verdict of one run. ``reads`` are the context offsets loaded, in order; ``verdict`` is what the
    value means on the program's target (``allowed`` is its short form)."""

    allowed: bool
    value: int
    steps: int
    reads: tuple[int, ...]
    trace: tuple[TraceStep, ...] | None = None
    verdict: Verdict | None = field(default=None, compare=False)  # derived from value and target


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything a :class:`Machine` needs to resume: for stepping back in a debugger."""

    pc: int
    a: int
    x: int
    mem: tuple[int, ...]
    steps: int
    reads: tuple[int, ...]
    result: int | None


class Machine:
    """A, X, M[16] and the pc of one run. ``step()`` executes one instruction; never raises on a checked
    program until the program has returned."""

    def __init__(self, checked: CheckedProgram, ctx: bytes) -> None:
        if not isinstance(checked, CheckedProgram):
            raise TypeError("the interpreter runs only programs made by ringfence.bpf.check()")
        size = checked.target.ctx_size
        if len(ctx) != size:
            raise ValueError(f"a {checked.target.context} is {size} bytes, not {len(ctx)}")
        self.checked = checked
        self.words = checked.target.words.unpack(bytes(ctx))
        self.pc = 0
        self.a = 0
        self.x = 0
        self.mem = [0] * MEMWORDS
        self.steps = 0
        self.reads: list[int] = []
        self.result: int | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def snapshot(self) -> MachineState:
        return MachineState(self.pc, self.a, self.x, tuple(self.mem), self.steps, tuple(self.reads), self.result)

    def restore(self, state: MachineState) -> None:
        self.pc, self.a, self.x, self.mem = state.pc, state.a, state.x, list(state.mem)
        self.steps, self.reads, self.result = state.steps, list(state.reads), state.result

    def text(self, pc: int) -> str:
        """The instruction at ``pc`` as the user wrote it (the source, not the kernel's rewrite)."""
        return render_line(self.checked.source[pc], pc, len(self.checked.source))

    def step(self) -> TraceStep:
        if self.result is not None:
            raise RuntimeError("the program has already returned")
        pc = self.pc
        written = self._execute(self.checked.program[pc])
        return TraceStep(pc, self.text(pc), self.a, self.x, written, self.result)

    def run(self, *, trace: bool = False) -> RunResult:
        steps: list[TraceStep] | None = [] if trace else None
        program = self.checked.program.instructions
        while self.result is None:
            if steps is not None:
                steps.append(self.step())
            else:
                self._execute(program[self.pc])
        verdict = self.checked.target.verdict(self.result)
        return RunResult(verdict.allowed, self.result, self.steps, tuple(self.reads),
                         None if steps is None else tuple(steps), verdict)

    def _execute(self, ins: Instruction) -> tuple[tuple[int, int], ...]:
        """Execute one rewritten instruction; returns the scratch slots it wrote."""
        k = ins.k
        self.steps += 1
        cls = ins.cls
        next_pc = self.pc + 1
        written: tuple[tuple[int, int], ...] = ()
        if ins.code == CTX_LOAD:
            self.a = self.words[k >> 2]
            self.reads.append(k)
        elif cls in (LD, LDX):
            value = k if ins.mode == IMM else self.mem[k]  # only IMM and MEM survive the checker
            if cls == LD:
                self.a = value
            else:
                self.x = value
        elif cls in (ST, STX):
            self.mem[k] = self.a if cls == ST else self.x
            written = ((k, self.mem[k]),)
        elif cls == ALU:
            rule = ALU_RULES.get(ins.op) or _bad(ins.code)
            operand = self.x if ins.src == X else k
            if rule.divides and not operand:
                self.result = DIV_BY_ZERO_RESULT
            else:
                self.a = rule.apply(INT, self.a, operand)
        elif cls == JMP:
            if ins.is_ja:
                next_pc += k
            else:
                jump = JUMP_RULES.get(ins.op) or _bad(ins.code)
                next_pc += ins.jt if jump.holds(INT, self.a, self.x if ins.src == X else k) else ins.jf
        elif cls == RET:
            self.result = self.a if ins.src == A else k
        elif ins.code == MISC | TAX:
            self.x = self.a
        elif ins.code == MISC | TXA:
            self.a = self.x
        else:
            _bad(ins.code)
        self.pc = next_pc
        return written


def _bad(code: int) -> NoReturn:
    raise AssertionError(f"code {code:#x} cannot occur in a checked program")


def run(checked: CheckedProgram, ctx: bytes, *, trace: bool = False) -> RunResult:
    """Run ``checked`` over ``ctx`` (its target's context: 40 bytes on io_uring). With ``trace``, every step's
    registers are recorded. ``allowed`` follows the target's meaning of the return value."""
    return Machine(checked, ctx).run(trace=trace)

