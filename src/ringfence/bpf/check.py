"""Which programs the kernel accepts as io_uring (or seccomp) filters, rule for rule (spec §5.5).

Three stages, in the kernel's order: basics (length), the generic classic-BPF checker every socket
filter goes through, then the target's whitelist (:class:`~.target.Target`: io_uring's is seccomp's
adapted), which also rewrites context and length loads.
:func:`diagnose` reports every violation it can find, sorted so that the first one is the one the
kernel trips over; :func:`check` is the constructor of :class:`CheckedProgram`, the only thing the
interpreter accepts (validation is a constructor, as gVisor's ``Compile``).
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.bpf.cfg import Cfg, forward
from ringfence.bpf.fast import compile_program
from ringfence.bpf.insn import (
    ABS,
    ADD,
    ALU,
    AND,
    CTX_LOAD,
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
    MAXINSNS,
    MEM,
    MEMWORDS,
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
    Program,
    W,
    X,
)
from ringfence.bpf.target import IOURING, Target
from ringfence.bpf.text import code_name
from ringfence.errors import CheckError


class CheckRule(enum.Enum):
    """Why a program is refused. Every rule is ``-EINVAL`` in the kernel."""

    EMPTY = "empty"                            # stage 1: no instructions
    TOO_LONG = "too-long"                      # stage 1: more than 4096
    UNKNOWN_CODE = "unknown-code"              # stage 2: not in the generic code table
    DIV_BY_ZERO = "div-by-zero"                # stage 2: DIV|K or MOD|K with k == 0
    SHIFT_TOO_LARGE = "shift-too-large"        # stage 2: LSH|K or RSH|K with k >= 32
    SCRATCH_INDEX = "scratch-index"            # stage 2: M[k] with k >= 16
    JA_OUT_OF_RANGE = "ja-out-of-range"        # stage 2: ja past the last instruction
    JUMP_OUT_OF_RANGE = "jump-out-of-range"    # stage 2: jt or jf past the last instruction
    UNKNOWN_ANCILLARY = "unknown-ancillary"    # stage 2: ABS load at k >= SKF_AD_OFF that names no extension
    NO_FINAL_RET = "no-final-ret"              # stage 2: last instruction is not RET|K or RET|A
    SCRATCH_UNINIT = "scratch-uninitialized"   # stage 2: M[k] read on a path that never wrote it
    NOT_WHITELISTED = "not-whitelisted"        # stage 3: code outside the target's list
    CTX_OFFSET = "ctx-offset"                  # stage 3: context load not an aligned word of the context

    @property
    def stage(self) -> int:
        """1 basics, 2 the generic classic-BPF checker, 3 the target's whitelist."""
        if self in (CheckRule.EMPTY, CheckRule.TOO_LONG):
            return 1
        return 3 if self in (CheckRule.NOT_WHITELISTED, CheckRule.CTX_OFFSET) else 2


#: ``pc`` of diagnostics about the whole program rather than one instruction.
WHOLE_PROGRAM: Final = -1


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One reason for refusal. ``stage`` defaults to the rule's stage (1 basics, 2 classic, 3 target)."""

    pc: int
    rule: CheckRule
    message: str
    errno_name: str = "EINVAL"
    stage: int = 0

    def __post_init__(self) -> None:
        if self.stage == 0:
            object.__setattr__(self, "stage", self.rule.stage)

    def __str__(self) -> str:
        where = "program" if self.pc == WHOLE_PROGRAM else f"pc {self.pc}"
        return f"{where}: {self.rule.value}: {self.message}"


def _generic_codes() -> frozenset[int]:
    alu = [ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH]
    return frozenset(
        [ALU | op | src for op in alu for src in (K, X)] + [ALU | NEG]
        + [LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | LEN, LD | W | IND, LD | H | IND, LD | B | IND,
           LD | IMM, LD | MEM, LDX | W | LEN, LDX | B | MSH, LDX | IMM, LDX | MEM, ST, STX, MISC | TAX, MISC | TXA,
           RET | K, RET | A, JMP | JA]
        + [JMP | op | src for op in (JEQ, JGE, JGT, JSET) for src in (K, X)]
    )


#: The generic socket-filter code table (``net/core/filter.c``): stage 2 refuses anything else.
GENERIC_CODES: Final = _generic_codes()

#: io_uring's whitelist (spec §5.5 stage 3), besides the three rewritten loads (the same as seccomp's).
IOURING_CODES: Final = IOURING.codes
#: What stage 3 turns the context and length loads into.
REWRITES: Final = IOURING.rewrites

SKF_AD_OFF: Final = 0xFFFFF000
#: Known ancillary loads (``SKF_AD_*``): stage 2 lets them through, stage 3 refuses them.
ANCILLARY: Final = MappingProxyType({SKF_AD_OFF + 4 * i: name for i, name in enumerate((
    "PROTOCOL", "PKTTYPE", "IFINDEX", "NLATTR", "NLATTR_NEST", "MARK", "QUEUE", "HATYPE", "RXHASH", "CPU",
    "ALU_XOR_X", "VLAN_TAG", "VLAN_TAG_PRESENT", "PAY_OFFSET", "RANDOM", "VLAN_TPID"))})

_ABS_LOADS: Final = frozenset({LD | W | ABS, LD | H | ABS, LD | B | ABS})
_SCRATCH: Final = frozenset({LD | MEM, LDX | MEM, ST, STX})
_COND_JUMPS: Final = frozenset(JMP | op | src for op in (JEQ, JGE, JGT, JSET) for src in (K, X))
_RETURNS: Final = frozenset({RET | K, RET | A})
_ALL_SLOTS: Final = (1 << MEMWORDS) - 1


def _stage1(n: int) -> list[Diagnostic]:
    if n == 0:
        return [Diagnostic(WHOLE_PROGRAM, CheckRule.EMPTY, "a filter needs at least one instruction")]
    if n > MAXINSNS:
        return [Diagnostic(WHOLE_PROGRAM, CheckRule.TOO_LONG, f"{n} instructions; at most {MAXINSNS}")]
    return []


def _stage2_insn(pc: int, ins: Instruction, n: int) -> Diagnostic | None:
    """The per-instruction part of the generic check (one rule can apply per code)."""
    code, k = ins.code, ins.k

    def diag(rule: CheckRule, message: str) -> Diagnostic:
        return Diagnostic(pc, rule, message)

    if code not in GENERIC_CODES:
        return diag(CheckRule.UNKNOWN_CODE, f"code {code:#04x} ({code_name(code)}) is not a classic BPF code "
                                            "the kernel knows")
    if code in (ALU | DIV | K, ALU | MOD | K) and k == 0:
        return diag(CheckRule.DIV_BY_ZERO, "division by the constant 0")
    if code in (ALU | LSH | K, ALU | RSH | K) and k >= 32:
        return diag(CheckRule.SHIFT_TOO_LARGE, f"shift by {k}; constant shifts must be < 32")
    if code in _SCRATCH and k >= MEMWORDS:
        return diag(CheckRule.SCRATCH_INDEX, f"scratch slot M[{k}] does not exist (16 slots)")
    if code == JMP | JA and k >= n - pc - 1:
        return diag(CheckRule.JA_OUT_OF_RANGE, f"ja +{k} lands at {pc + 1 + k}, past the last instruction {n - 1}")
    if code in _COND_JUMPS and (pc + ins.jt + 1 >= n or pc + ins.jf + 1 >= n):
        return diag(CheckRule.JUMP_OUT_OF_RANGE, f"targets {pc + 1 + ins.jt}/{pc + 1 + ins.jf} "
                                                 f"must both be <= {n - 1}")
    if code in _ABS_LOADS and k >= SKF_AD_OFF and k not in ANCILLARY:
        return diag(CheckRule.UNKNOWN_ANCILLARY, f"offset {k:#x} is in the ancillary range but names no "
                                                 "known extension")
    return None


def _scratch_flow(insns: tuple[Instruction, ...]) -> list[Diagnostic]:
    """Scratch slots must be written before they are read on every path (``check_load_and_stores``).

    A forward must-analysis (meet = intersection) over the kernel checker's edges, where a return
    falls through like any non-jump (spec §5.5). A pc no edge reaches counts as "every slot written",
    as in the kernel, whose per-pc masks start full.
    """
    cfg = Cfg.of(insns, returns_fall_through=True)

    def transfer(pc: int, written: int) -> int:
        ins = insns[pc]
        return written | 1 << ins.k if ins.code in (ST, STX) and ins.k < MEMWORDS else written

    written = forward(cfg, 0, transfer, operator.and_, unreached=_ALL_SLOTS)
    return [Diagnostic(pc, CheckRule.SCRATCH_UNINIT, f"M[{ins.k}] may be read before it is written")
            for pc, ins in enumerate(insns)
            if ins.code in (LD | MEM, LDX | MEM) and ins.k < MEMWORDS and not written[pc] >> ins.k & 1]


def dead_code_rewrite_pass(insns: tuple[Instruction, ...]) -> tuple[Instruction, ...]:
    """[UNCONFIRMED, spec §5.5 / §10.2 q4] The April 2025 net-next proposal: after the generic check,
    every instruction no path reaches becomes ``ld #0`` (so stage 3 never sees it)."""
    live = Cfg.of(insns).reachable
    return tuple(ins if live[pc] else Instruction(LD | IMM) for pc, ins in enumerate(insns))


def _stage3(insns: tuple[Instruction, ...], target: Target) -> tuple[list[Diagnostic], tuple[Instruction, ...]]:
    """The target's whitelist and its rewrites (``io_uring_check_cbpf_filter``, ``seccomp_check_filter``)."""
    found = []
    out = []
    last_word = target.ctx_size - 4
    for pc, ins in enumerate(insns):
        code = ins.code
        rewritten = target.rewrites.get(code)
        if code == LD | W | ABS:
            if not target.load_offset_ok(ins.k):
                found.append(Diagnostic(pc, CheckRule.CTX_OFFSET, f"context load at {ins.k}; only the aligned "
                                                                  f"words 0, 4, ..., {last_word} exist"))
            out.append(Instruction(CTX_LOAD, ins.jt, ins.jf, ins.k))
        elif rewritten is not None:  # the length loads
            out.append(Instruction(rewritten, ins.jt, ins.jf, target.len_value))
        elif code in target.codes:
            out.append(ins)
        else:
            what = f"ancillary load SKF_AD_{ANCILLARY[ins.k]}" if code in _ABS_LOADS and ins.k in ANCILLARY else \
                f"code {code:#04x} ({code_name(code)})"
            found.append(Diagnostic(pc, CheckRule.NOT_WHITELISTED, f"{what} is not allowed in {target.name} filters"))
            out.append(ins)
    return found, tuple(out)


def _analyse(program: Program, target: Target,
             dead_code_rewrite: bool) -> tuple[tuple[Diagnostic, ...], tuple[Instruction, ...]]:
    insns = program.instructions
    n = len(insns)
    found = _stage1(n)
    per_insn = [d for pc, ins in enumerate(insns) if (d := _stage2_insn(pc, ins, n)) is not None]
    found += per_insn
    if n and insns[-1].code not in _RETURNS:
        found.append(Diagnostic(n - 1, CheckRule.NO_FINAL_RET, f"the last instruction is "
                                                               f"{code_name(insns[-1].code)}, not RET|K or RET|A"))
    found += _scratch_flow(insns)
    if dead_code_rewrite:
        insns = dead_code_rewrite_pass(insns)
    stage3, rewritten = _stage3(insns, target)
    return tuple(found + stage3), rewritten


def diagnose(program: Program, target: Target = IOURING, *, dead_code_rewrite: bool = False) -> tuple[Diagnostic, ...]:
    """Every reason the kernel would refuse ``program`` as a ``target`` filter; empty iff it would accept it.

    Diagnostics come in the kernel's order (stage, then the order each stage checks in), so the first
    is the kernel's reason. Later stages are reported too although the kernel stops at the first
    failure. ``dead_code_rewrite`` models the [UNCONFIRMED] April-2025 proposal (spec §10.2 q4).
    """
    return _analyse(program, target, dead_code_rewrite)[0]


_SEAL: Final = object()


class CheckedProgram:
    """A program the kernel accepts, after the kernel's rewrites. Only :func:`check` makes one.

    ``source`` is the program as given; ``program`` is what the kernel runs (context loads are
    ``LDX|W|ABS`` 0x21, length loads ``ld #40``/``ldx #40`` on io_uring; with ``dead_code_rewrite``,
    dead code is ``ld #0``). Instruction indices are the same in both. ``target`` says which context
    the program reads and what its return value means.
    """

    __slots__ = ("_fast", "dead_code_rewrite", "program", "source", "target")

    def __init__(self, source: Program, program: Program, dead_code_rewrite: bool, *, _seal: object,
                 target: Target = IOURING) -> None:
        if _seal is not _SEAL:
            raise TypeError("CheckedProgram is made by ringfence.bpf.check()")
        self.source = source
        self.program = program
        self.dead_code_rewrite = dead_code_rewrite
        self.target = target
        self._fast: Callable[[bytes], int] | None = None

    def __len__(self) -> int:
        return len(self.program)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CheckedProgram) and (self.source, self.program, self.target) == (
            other.source, other.program, other.target)

    def __hash__(self) -> int:
        return hash((self.source, self.program, self.target.name))

    def __repr__(self) -> str:
        return f"<CheckedProgram {len(self.program)} instructions, {self.target.name}>"

    def evaluate(self, ctx: bytes) -> int:
        """The filter's return value for one context (40 bytes on io_uring, where nonzero allows).

        Compiled on first use: the hot path of the model and the benchmark. ``ctx`` must be exactly the
        target's context size (``struct.error`` otherwise). :func:`ringfence.bpf.run` gives the same value
        with steps, reads and a trace.
        """
        fast = self._fast
        if fast is None:
            fast = self._fast = compile_program(self.program, target=self.target)
        return fast(ctx)


def check(program: Program, target: Target = IOURING, *, dead_code_rewrite: bool = False) -> CheckedProgram:
    """Accept ``program`` as the kernel would for ``target``, or raise :class:`CheckError` with every diagnostic."""
    found, rewritten = _analyse(program, target, dead_code_rewrite)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckError(f"filter rejected (EINVAL): {found[0]}{more}", errno_name="EINVAL", diagnostics=found)
    return CheckedProgram(program, Program(rewritten), dead_code_rewrite, _seal=_SEAL, target=target)
