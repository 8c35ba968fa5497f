"""A test-only symbolic algebra: expression trees, evaluated afterwards over concrete context words.

It stands in for the z3 algebra a prover will use, and shows that :mod:`ringfence.bpf.semantics` plus
:mod:`ringfence.bpf.symbolic` need nothing else: no third hand-written copy of the instruction set.
Terms are tuples ``(op, *args)``; evaluation is memoised by identity, since terms are shared DAGs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

Term = tuple[object, ...]
U32: Final = 0xFFFFFFFF


class ExprAlgebra:
    """Builds terms; knows nothing of BPF beyond unsigned 32-bit words."""

    def const(self, k: int) -> Term:
        return ("const", k)

    def word(self, offset: int) -> Term:
        return ("word", offset)

    def add(self, a: Term, b: Term) -> Term:
        return ("add", a, b)

    def sub(self, a: Term, b: Term) -> Term:
        return ("sub", a, b)

    def mul(self, a: Term, b: Term) -> Term:
        return ("mul", a, b)

    def udiv(self, a: Term, b: Term) -> Term:
        return ("udiv", a, b)

    def urem(self, a: Term, b: Term) -> Term:
        return ("urem", a, b)

    def or_(self, a: Term, b: Term) -> Term:
        return ("or", a, b)

    def and_(self, a: Term, b: Term) -> Term:
        return ("and", a, b)

    def xor(self, a: Term, b: Term) -> Term:
        return ("xor", a, b)

    def lsh(self, a: Term, b: Term) -> Term:
        return ("lsh", a, b)

    def rsh(self, a: Term, b: Term) -> Term:
        return ("rsh", a, b)

    def eq(self, a: Term, b: Term) -> Term:
        return ("eq", a, b)

    def ugt(self, a: Term, b: Term) -> Term:
        return ("ugt", a, b)

    def uge(self, a: Term, b: Term) -> Term:
        return ("uge", a, b)

    def test(self, a: Term, b: Term) -> Term:
        return ("test", a, b)

    def all_(self, a: Term, b: Term) -> Term:
        return ("all", a, b)

    def any_(self, a: Term, b: Term) -> Term:
        return ("any", a, b)

    def neg(self, a: Term) -> Term:
        return ("neg", a)

    def true(self) -> Term:
        return ("true",)

    def not_(self, c: Term) -> Term:
        return ("not", c)

    def ite(self, c: Term, a: Term, b: Term) -> Term:
        return ("ite", c, a, b)


_OPS: Final[dict[str, Callable[[int, int], int]]] = {
    "add": lambda a, b: (a + b) & U32, "sub": lambda a, b: (a - b) & U32, "mul": lambda a, b: (a * b) & U32,
    # total, as in SMT-LIB: a guarded-off division by zero is still built and evaluated
    "udiv": lambda a, b: a // b if b else U32, "urem": lambda a, b: a % b if b else a,
    "or": lambda a, b: a | b, "and": lambda a, b: a & b,
    "xor": lambda a, b: a ^ b, "lsh": lambda a, b: (a << b) & U32, "rsh": lambda a, b: a >> b,
    "eq": lambda a, b: int(a == b), "ugt": lambda a, b: int(a > b), "uge": lambda a, b: int(a >= b),
    "test": lambda a, b: int(a & b != 0), "all": lambda a, b: int(bool(a and b)), "any": lambda a, b: int(bool(a or b)),
}


def evaluate(term: Term, words: dict[int, int]) -> int:
    """The value of ``term`` when the context word at each offset is ``words[offset]`` (iterative: DAGs are deep)."""
    memo: dict[int, int] = {}
    stack: list[tuple[Term, bool]] = [(term, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in memo:
            continue
        op, *args = node
        kids = [a for a in args if isinstance(a, tuple)]
        if not ready:
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in memo)
            continue
        vals = [memo[id(a)] if isinstance(a, tuple) else a if isinstance(a, int) else 0 for a in args]
        if op == "const":
            value = vals[0]
        elif op == "word":
            value = words[vals[0]]
        elif op == "true":
            value = 1
        elif op == "neg":
            value = -vals[0] & U32
        elif op == "not":
            value = int(not vals[0])
        elif op == "ite":
            value = vals[1] if vals[0] else vals[2]
        else:
            value = _OPS[str(op)](vals[0], vals[1])
        memo[id(node)] = value
    return memo[id(term)]


def size(term: Term) -> int:
    """Distinct nodes in the DAG (sharing kept)."""
    seen: set[int] = set()
    stack = [term]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(a for a in node[1:] if isinstance(a, tuple))
    return len(seen)
