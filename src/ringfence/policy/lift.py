"""A filter program as a decision diagram over tests, by symbolic execution.

Cost and the optimizer both need to know, at every conditional jump, which view of which word A holds: this
walks the program from pc 0 with A and X as :class:`~.partition.View` values (or constants) and turns every
conditional jump on A into a :class:`Branch` on a :class:`~.partition.Test`. A program whose jumps compare
something else (X, scratch memory, arithmetic on the word) is not a decision diagram: :class:`LiftError`.

Each node keeps the pcs it executes (straight-line code plus its jump or return), so instruction counts and
coverage come out of the same walk; each view keeps a **recipe**, the shortest instruction sequence seen that
puts it into A, for code that has to load it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringfence.bpf.insn import (
    ABS,
    ALU,
    AND,
    IMM,
    JEQ,
    JGE,
    JGT,
    LD,
    LDX,
    LSH,
    MISC,
    OR,
    RET,
    RSH,
    TAX,
    TXA,
    A,
    Instruction,
    K,
    Program,
    W,
    X,
)
from ringfence.policy.partition import Test, View


class LiftError(Exception):
    """The program does something a decision diagram over context words cannot say."""


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbolic register: a view of a word (with the instructions that compute it) or a constant."""

    view: View | None = None
    const: int | None = None
    recipe: tuple[Instruction, ...] | None = None


@dataclass(eq=False, slots=True)
class Leaf:
    value: int
    pcs: tuple[int, ...]


@dataclass(eq=False, slots=True)
class Branch:
    test: Test
    pcs: tuple[int, ...]
    then: Node
    other: Node
    recipe: tuple[Instruction, ...] | None = field(default=None)


Node = Leaf | Branch


@dataclass(frozen=True, slots=True)
class Lifted:
    root: Node
    recipes: dict[tuple[int, tuple[int, ...]], tuple[Instruction, ...]]

    def tests(self) -> tuple[Test, ...]:
        out: dict[Test, None] = {}
        for n in nodes(self.root):
            if isinstance(n, Branch):
                out.setdefault(n.test)
        return tuple(out)


def nodes(root: Node) -> list[Node]:
    """Every node once, parents before children."""
    order: list[Node] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        order.append(n)
        if isinstance(n, Branch):
            stack += [n.other, n.then]
    return order


_U32 = 0xFFFFFFFF


def _alu(op: int, a: Sym, k: int, x: Sym | None) -> Sym:
    if x is not None:  # A op X
        if op == OR and a.view is not None and x.view is not None and a.view.offset == x.view.offset:
            recipe = None
            if a.recipe is not None and x.recipe is not None and not any(
                    i.code in (MISC | TAX, MISC | TXA) or i.src == X for i in a.recipe if i.cls in (ALU, MISC)):
                recipe = (*x.recipe, Instruction(MISC | TAX), *a.recipe, Instruction(ALU | OR | X))
            return Sym(a.view.union(x.view), recipe=recipe)
        if a.const is not None and x.const is not None and op == OR:
            return Sym(const=a.const | x.const)
        raise LiftError("arithmetic between registers other than OR of two views of one word")
    if a.const is not None:
        c = a.const
        value = {AND: c & k, OR: c | k, LSH: (c << k) & _U32 if k < 32 else 0, RSH: c >> k if k < 32 else 0}.get(op)
        if value is None:
            raise LiftError(f"ALU operation {op:#x}")
        return Sym(const=value)
    if a.view is None:
        raise LiftError("ALU operation on an unknown value")
    ins = Instruction(ALU | op | K, k=k)
    recipe = None if a.recipe is None else (*a.recipe, ins)
    if op == AND:
        return Sym(a.view.masked(k), recipe=recipe)
    if op == LSH:
        return Sym(a.view.shifted(k), recipe=recipe)
    if op == RSH:
        return Sym(a.view.shifted(-k), recipe=recipe)
    raise LiftError(f"ALU operation {op:#x} on a context word")


def lift(program: Program) -> Lifted:
    """The program's decision diagram; raises :class:`LiftError`."""
    insns = program.instructions
    memo: dict[tuple[int, Sym, Sym], Node] = {}
    recipes: dict[tuple[int, tuple[int, ...]], tuple[Instruction, ...]] = {}

    def note(sym: Sym) -> None:
        if sym.view is not None and sym.recipe is not None:
            key = (sym.view.offset, sym.view.sources)
            old = recipes.get(key)
            if old is None or len(sym.recipe) < len(old):
                recipes[key] = sym.recipe

    def walk(pc: int, a: Sym, x: Sym) -> Node:
        key = (pc, a, x)
        if key in memo:
            return memo[key]
        start = pc
        pcs: list[int] = []
        while True:
            if pc >= len(insns):
                raise LiftError(f"control runs off the end at pc {pc}")
            ins = insns[pc]
            pcs.append(pc)
            cls = ins.cls
            if cls == RET:
                if ins.src == K:
                    node: Node = Leaf(ins.k, tuple(pcs))
                elif ins.src == A and a.const is not None:
                    node = Leaf(a.const, tuple(pcs))
                else:
                    raise LiftError(f"pc {pc}: a return of a computed value")
                break
            if ins.is_ja:
                pc += 1 + ins.k
                continue
            if ins.is_conditional_jump:
                if ins.src == X:
                    raise LiftError(f"pc {pc}: a jump comparing with X")
                t_pc, f_pc = pc + 1 + ins.jt, pc + 1 + ins.jf
                if a.const is not None:  # decided statically
                    pc = t_pc if _const_holds(ins.op, a.const, ins.k) else f_pc
                    continue
                if a.view is None:
                    raise LiftError(f"pc {pc}: a jump on an unknown value")
                note(a)
                test = Test(a.view, ins.op, ins.k)
                node = Branch(test, tuple(pcs), walk(t_pc, a, x), walk(f_pc, a, x), a.recipe)
                break
            if ins.code == LD | W | ABS:
                if ins.k % 4:
                    raise LiftError(f"pc {pc}: an unaligned load")
                a = Sym(View.word(ins.k), recipe=(ins,))
            elif ins.code == LD | IMM:
                a = Sym(const=ins.k)
            elif ins.code == LDX | IMM:
                x = Sym(const=ins.k)
            elif cls == ALU:
                a = _alu(ins.op, a, ins.k, x if ins.src == X else None)
            elif ins.code == MISC | TAX:
                x = a
            elif ins.code == MISC | TXA:
                a = x
            else:
                raise LiftError(f"pc {pc}: instruction {ins.code:#x} is not part of a decision diagram")
            pc += 1
        memo[(start, key[1], key[2])] = node
        return node

    root = walk(0, Sym(const=0), Sym(const=0))
    return Lifted(root, recipes)


def _const_holds(op: int, a: int, k: int) -> bool:
    return a == k if op == JEQ else a > k if op == JGT else a >= k if op == JGE else bool(a & k)
