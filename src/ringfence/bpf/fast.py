"""The fast path: translate a checked program once into a Python function over the context words.

Jumps only go forward, so a program is a DAG that reads naturally as nested ``if`` statements with
every path ending in ``return``. The translation expands the DAG into that tree (duplicating shared
tails), nesting the smaller branch each time so the depth stays logarithmic; if the tree would be too
large, it falls back to numbered blocks visited in order. The generated text is built only from the
integers of validated instructions (never from user strings) and compiled with ``compile()``.
Correctness is defined by :mod:`.interp`; the tests compare the two on random programs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ringfence.bpf.cfg import Cfg
from ringfence.bpf.insn import (
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
    LSH,
    MEM,
    MISC,
    MOD,
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
    Instruction,
    Program,
    X,
)
from ringfence.bpf.semantics import CTX_WORDS, DIV_BY_ZERO_RESULT, U32, shift_amount

_lit: Final = int.__repr__  # the decimal text of an int, whatever subclass it is
_M: Final = _lit(U32)
_CMP: Final = {JEQ: "A == {}", JGT: "A > {}", JGE: "A >= {}", JSET: "A & {}"}
_NOT_CMP: Final = {JEQ: "A != {}", JGT: "A <= {}", JGE: "A < {}", JSET: "not A & {}"}
_ALU: Final = {ADD: f"A = (A + {{}}) & {_M}", SUB: f"A = (A - {{}}) & {_M}", MUL: f"A = (A * {{}}) & {_M}",
               OR: "A |= {}", AND: "A &= {}", XOR: "A ^= {}", DIV: "A //= {}", MOD: "A %= {}"}


def _statement(ins: Instruction) -> list[str]:
    """Python statements for one non-control instruction (after the kernel's rewrites)."""
    code, k = ins.code, ins.k
    cls = code & 0x07
    if code == CTX_LOAD:
        return [f"A = w[{_lit(k >> 2)}]"]
    if cls in (LD, LDX):
        reg = "A" if cls == LD else "X"
        if code & 0xE0 == IMM:
            return [f"{reg} = {_lit(k)}"]
        if code & 0xE0 == MEM:
            return [f"{reg} = m{_lit(k)}"]
    if cls in (ST, STX):
        return [f"m{_lit(k)} = {'A' if cls == ST else 'X'}"]
    if code == MISC | TAX:
        return ["X = A"]
    if code == MISC | TXA:
        return ["A = X"]
    if cls == ALU:
        op = code & 0xF0
        if op == NEG:
            return [f"A = -A & {_M}"]
        if op in (LSH, RSH):
            amount = "_shift(X)" if code & X else _lit(shift_amount(k))
            return [f"A = (A << {amount}) & {_M}" if op == LSH else f"A >>= {amount}"]
        if op in _ALU:
            if not code & X:
                return [_ALU[op].format(_lit(k))]
            guard = [f"if not X: return {_lit(DIV_BY_ZERO_RESULT)}"] if op in (DIV, MOD) else []
            return [*guard, _ALU[op].format("X")]
    raise AssertionError(f"code {code:#x} cannot occur in a checked program")


def _condition(ins: Instruction, negate: bool = False) -> str:
    return (_NOT_CMP if negate else _CMP)[ins.code & 0xF0].format("X" if ins.code & X else _lit(ins.k))


def _tree_sizes(insns: tuple[Instruction, ...], cfg: Cfg, cap: int) -> list[int]:
    """Lines the tree expansion emits from each pc, capped at ``cap`` (successors come later: one backward pass)."""
    size = [0] * (len(insns) + 1)
    for pc in range(len(insns) - 1, -1, -1):
        succ = cfg.successors[pc]
        if not succ:
            s = 1                                           # return
        elif insns[pc].is_jump:
            s = len(succ) - 1 + sum(size[t] for t in succ)  # ja: the target's; a branch: one "if" line more
        else:
            s = 2 + size[succ[0]]
        size[pc] = min(s, cap)
    return size


def _tree(insns: tuple[Instruction, ...], size: list[int]) -> list[str]:
    out: list[str] = []

    def block(pc: int, depth: int) -> None:
        pad = "    " * depth
        while True:
            ins = insns[pc]
            if ins.code & 0x07 == RET:
                out.append(pad + ("return A" if ins.code & 0x18 == A else f"return {_lit(ins.k)}"))
                return
            if ins.code == JMP | JA:
                pc += 1 + ins.k
            elif ins.is_conditional_jump:
                t, f = pc + 1 + ins.jt, pc + 1 + ins.jf
                if t != f:
                    if size[t] <= size[f]:
                        out.append(f"{pad}if {_condition(ins)}:")
                        block(t, depth + 1)
                        t = f
                    else:
                        out.append(f"{pad}if {_condition(ins, negate=True)}:")
                        block(f, depth + 1)
                pc = t
            else:
                out.extend(pad + line for line in _statement(ins))
                pc += 1

    block(0, 1)
    return out


def _blocks(insns: tuple[Instruction, ...], cfg: Cfg) -> list[str]:
    """Fallback for DAGs whose tree is too large: basic blocks in order, each guarded by its number."""
    leaders = cfg.leaders
    out = ["    b = 0"]
    for pc, ins in enumerate(insns):
        if pc in leaders:
            out.append(f"    if b == {_lit(pc)}:")
        pad = "        "
        if ins.code & 0x07 == RET:
            out.append(pad + ("return A" if ins.code & 0x18 == A else f"return {_lit(ins.k)}"))
        elif ins.code == JMP | JA:
            out.append(f"{pad}b = {_lit(pc + 1 + ins.k)}")
        elif ins.is_conditional_jump:
            out.append(f"{pad}b = {_lit(pc + 1 + ins.jt)} if {_condition(ins)} else {_lit(pc + 1 + ins.jf)}")
        else:
            out.extend(pad + line for line in _statement(ins))
            if pc + 1 in leaders:
                out.append(f"{pad}b = {_lit(pc + 1)}")
    return out


def source(program: Program, *, budget: int | None = None) -> str:
    """The Python text :func:`compile_program` compiles (exposed for tests and curiosity)."""
    insns = program.instructions
    budget = 4000 + 4 * len(insns) if budget is None else budget
    cfg = Cfg.of(insns)
    size = _tree_sizes(insns, cfg, budget + 1)
    body = _tree(insns, size) if size[0] <= budget else _blocks(insns, cfg)
    head = ["def _filter(ctx, _unpack=_unpack, _shift=_shift):"]  # defaults: fast local lookups
    if any(i.code == CTX_LOAD for i in insns):
        head.append("    w = _unpack(ctx)")
    else:
        head.append("    _unpack(ctx)")  # same ctx validation as every other program
    head.append("    A = X = 0")
    slots = sorted({i.k for i in insns if i.code in (ST, STX, LD | MEM, LDX | MEM)})
    if slots:
        head.append("    " + " = ".join(f"m{_lit(k)}" for k in slots) + " = 0")
    return "\n".join(head + body) + "\n"


def compile_program(program: Program, *, budget: int | None = None) -> Callable[[bytes], int]:
    """A function ``ctx -> return value`` equivalent to interpreting ``program`` (a checked, rewritten one)."""
    namespace: dict[str, object] = {"_unpack": CTX_WORDS.unpack, "_shift": shift_amount}
    exec(compile(source(program, budget=budget), "<ringfence.bpf.fast>", "exec"), namespace)
    fn = namespace["_filter"]
    assert callable(fn)
    return fn
