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
    ALU,
    CTX_LOAD,
    IMM,
    LD,
    LDX,
    MEM,
    MISC,
    ST,
    STX,
    TAX,
    TXA,
    A,
    Instruction,
    Program,
    X,
)
from ringfence.bpf.semantics import ALU as ALU_RULES
from ringfence.bpf.semantics import DIV_BY_ZERO_RESULT, U32
from ringfence.bpf.semantics import JUMPS as JUMP_RULES
from ringfence.bpf.target import IOURING, Target

_lit: Final = int.__repr__  # the decimal text of an int, whatever subclass it is
_M: Final = _lit(U32)


class SourceAlgebra:
    """Python expression text over the locals ``A`` and ``X``: the fast path's :class:`~.semantics.Algebra`.

    Every result is parenthesised; constant subexpressions (``3 & 31``) are folded by Python's compiler.
    """

    __slots__ = ()

    def const(self, k: int) -> str:
        return _lit(k)

    def add(self, a: str, b: str) -> str:
        return f"(({a} + {b}) & {_M})"

    def sub(self, a: str, b: str) -> str:
        return f"(({a} - {b}) & {_M})"

    def mul(self, a: str, b: str) -> str:
        return f"(({a} * {b}) & {_M})"

    def udiv(self, a: str, b: str) -> str:
        return f"({a} // {b})"

    def urem(self, a: str, b: str) -> str:
        return f"({a} % {b})"

    def or_(self, a: str, b: str) -> str:
        return f"({a} | {b})"

    def and_(self, a: str, b: str) -> str:
        return f"({a} & {b})"

    def xor(self, a: str, b: str) -> str:
        return f"({a} ^ {b})"

    def lsh(self, a: str, b: str) -> str:
        return f"(({a} << {b}) & {_M})"

    def rsh(self, a: str, b: str) -> str:
        return f"({a} >> {b})"

    def neg(self, a: str) -> str:
        return f"(-{a} & {_M})"

    def eq(self, a: str, b: str) -> str:
        return f"{a} == {b}"

    def ugt(self, a: str, b: str) -> str:
        return f"{a} > {b}"

    def uge(self, a: str, b: str) -> str:
        return f"{a} >= {b}"

    def test(self, a: str, b: str) -> str:
        return f"{a} & {b}"


SOURCE: Final = SourceAlgebra()


def _operand(ins: Instruction) -> str:
    return "X" if ins.src == X else _lit(ins.k)


def _statement(ins: Instruction) -> list[str]:
    """Python statements for one non-control instruction (after the kernel's rewrites)."""
    code, k, cls = ins.code, ins.k, ins.cls
    if code == CTX_LOAD:
        return [f"A = w[{_lit(k >> 2)}]"]
    if cls in (LD, LDX):
        reg = "A" if cls == LD else "X"
        if ins.mode == IMM:
            return [f"{reg} = {_lit(k)}"]
        if ins.mode == MEM:
            return [f"{reg} = m{_lit(k)}"]
    if cls in (ST, STX):
        return [f"m{_lit(k)} = {'A' if cls == ST else 'X'}"]
    if code == MISC | TAX:
        return ["X = A"]
    if code == MISC | TXA:
        return ["A = X"]
    rule = ALU_RULES.get(ins.op) if cls == ALU else None
    if rule is not None:
        guard = [f"if not X: return {_lit(DIV_BY_ZERO_RESULT)}"] if rule.divides and ins.src == X else []
        return [*guard, f"A = {rule.apply(SOURCE, 'A', _operand(ins))}"]
    raise AssertionError(f"code {code:#x} cannot occur in a checked program")


def _condition(ins: Instruction, negate: bool = False) -> str:
    text = JUMP_RULES[ins.op].holds(SOURCE, "A", _operand(ins))
    return f"not ({text})" if negate else text


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
            if ins.is_return:
                out.append(pad + ("return A" if ins.src == A else f"return {_lit(ins.k)}"))
                return
            if ins.is_ja:
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
        if ins.is_return:
            out.append(pad + ("return A" if ins.src == A else f"return {_lit(ins.k)}"))
        elif ins.is_ja:
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
    head = ["def _filter(ctx, _unpack=_unpack):"]  # a default: a fast local lookup
    if any(i.code == CTX_LOAD for i in insns):
        head.append("    w = _unpack(ctx)")
    else:
        head.append("    _unpack(ctx)")  # same ctx validation as every other program
    head.append("    A = X = 0")
    slots = sorted({i.k for i in insns if i.code in (ST, STX, LD | MEM, LDX | MEM)})
    if slots:
        head.append("    " + " = ".join(f"m{_lit(k)}" for k in slots) + " = 0")
    return "\n".join(head + body) + "\n"


def compile_program(program: Program, *, budget: int | None = None,
                    target: Target = IOURING) -> Callable[[bytes], int]:
    """A function ``ctx -> return value`` equivalent to interpreting ``program`` (a checked, rewritten one)
    over ``target``'s context (the function refuses a context of any other size with ``struct.error``)."""
    namespace: dict[str, object] = {"_unpack": target.words.unpack}
    exec(compile(source(program, budget=budget), "<ringfence.bpf.fast>", "exec"), namespace)
    fn = namespace["_filter"]
    assert callable(fn)
    return fn
