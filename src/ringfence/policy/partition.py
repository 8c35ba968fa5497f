"""The input partition: classes of contexts that a set of load-and-compare tests cannot tell apart.

Cost (:mod:`.cost`), the lower bound (:mod:`.bound`) and the optimizer all count instructions per class, so the
classes have one definition, here. A test compares a **view** of one context word with a constant; a view is
what A holds after loads, masks, shifts and ORs of that word (bit ``d`` of A is the OR of some bits of the
word). Views are monotone in every bit of the word, which is what lets :func:`word_cells` enumerate the classes
exactly by fixing bits until every test is decided, instead of sampling values.

Tests on different words are independent, so a class is one **cell** per word; cells are enumerated per word
and the classes are their product (never listed whole).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ringfence.bpf.insn import JEQ, JGE, JGT, JSET
from ringfence.policy.ir import U32, Atom, Cmp, Operand

_BITS: Final = 32
OPS: Final = {Cmp.EQ: JEQ, Cmp.GT: JGT, Cmp.GE: JGE, Cmp.SET: JSET}
OP_NAMES: Final = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}
#: Beyond this many cells in one word the partition is not enumerated (:class:`TooManyCellsError`).
CELL_LIMIT: Final = 4096
_NODE_LIMIT: Final = 200_000


class TooManyCellsError(Exception):
    """A word's tests cut it into more cells than :data:`CELL_LIMIT`."""


@dataclass(frozen=True, slots=True)
class View:
    """A's value as a function of the word at ``offset``: bit ``d`` of A is set iff the word has a bit of
    ``sources[d]`` set. ``mask`` is set when the view is the word ANDed with a mask (the common case)."""

    offset: int
    sources: tuple[int, ...]
    mask: int | None = field(default=None, compare=False)
    support: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        simple = all(s in (0, 1 << d) for d, s in enumerate(self.sources))
        m = sum(1 << d for d, s in enumerate(self.sources) if s) if simple else None
        object.__setattr__(self, "mask", m)
        sup = 0
        for s in self.sources:
            sup |= s
        object.__setattr__(self, "support", sup)

    @classmethod
    def word(cls, offset: int, mask: int = U32) -> View:
        return cls(offset, tuple((1 << d) & mask for d in range(_BITS)))

    @classmethod
    def of_operand(cls, op: Operand) -> View:
        """The view an IR operand denotes (``swap16``: the low two bytes of the masked word, swapped)."""
        if not op.swap16:
            return cls.word(op.offset, op.mask)
        src = [0] * _BITS
        for d in range(8):
            src[d + 8] = (1 << d) & op.mask
            src[d] = (1 << (d + 8)) & op.mask
        return cls(op.offset, tuple(src))

    @property
    def is_word(self) -> bool:
        return self.mask == U32

    def value(self, w: int) -> int:
        if self.mask is not None:
            return w & self.mask
        v = 0
        for d, s in enumerate(self.sources):
            if w & s:
                v |= 1 << d
        return v

    def masked(self, m: int) -> View:
        return View(self.offset, tuple(s if m >> d & 1 else 0 for d, s in enumerate(self.sources)))

    def shifted(self, n: int) -> View:
        """A << n (n > 0) or A >> -n, as unsigned 32-bit shifts."""
        if n >= 0:
            return View(self.offset, (0,) * min(n, _BITS) + self.sources[:max(0, _BITS - n)])
        n = -n
        return View(self.offset, self.sources[min(n, _BITS):] + (0,) * min(n, _BITS))

    def union(self, other: View) -> View:
        return View(self.offset, tuple(a | b for a, b in zip(self.sources, other.sources, strict=True)))

    def branch_bit(self, fixed: int, dst: int = U32) -> int:
        """The free word bit that matters most to the view's bits in ``dst`` (highest destination bit first)."""
        if self.mask is not None:
            free = self.mask & dst & ~fixed
            if free:
                return 1 << (free.bit_length() - 1)
            raise AssertionError("no free bit")
        for d in range(_BITS - 1, -1, -1):
            if not dst >> d & 1:
                continue
            free = self.sources[d] & ~fixed
            if free:
                return 1 << (free.bit_length() - 1)
        raise AssertionError("no free bit")


@dataclass(frozen=True, slots=True, order=True)
class Test:
    """``view op k``: one conditional jump on a view (``op`` is JEQ, JGT, JGE or JSET)."""

    __test__ = False  # not a pytest class, despite its name

    view: View = field(compare=False)
    op: int
    k: int
    key: tuple[int, tuple[int, ...]] = field(default=(0, ()), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.view.offset, self.view.sources))

    def __hash__(self) -> int:
        return hash((self.key, self.op, self.k))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Test) and (self.key, self.op, self.k) == (other.key, other.op, other.k)

    @classmethod
    def of_atom(cls, atom: Atom) -> Test:
        return cls(View.of_operand(atom.operand), OPS[atom.cmp], atom.k)

    @property
    def offset(self) -> int:
        return self.view.offset

    def holds(self, w: int) -> bool:
        v = self.view.value(w)
        if self.op == JEQ:
            return v == self.k
        if self.op == JGT:
            return v > self.k
        if self.op == JGE:
            return v >= self.k
        return bool(v & self.k)

    def status(self, fixed: int, value: int) -> bool | None:
        """The test's outcome on every word whose ``fixed`` bits equal ``value``'s, or None if it varies."""
        lo = self.view.value(value)
        hi = self.view.value(value | (~fixed & U32))
        k = self.k
        if self.op == JEQ:
            if lo == hi:
                return lo == k
            return False if (k < lo or k > hi or lo & ~k or k & ~hi) else None
        if self.op == JGT:
            return True if lo > k else False if hi <= k else None
        if self.op == JGE:
            return True if lo >= k else False if hi < k else None
        return True if lo & k else False if not hi & k else None

    def splits(self) -> tuple[Test, ...]:
        """The order tests a decision tree may split an equality's value set with (``>= k``, ``> k``): for
        equalities on a whole word, where value sets (families, ports, addresses) live."""
        if self.op != JEQ or not self.view.is_word:
            return ()
        out = [Test(self.view, JGE, self.k)] if self.k else []
        if self.k < U32:
            out.append(Test(self.view, JGT, self.k))
        return tuple(out)

    def render(self) -> str:
        return f"{OP_NAMES[self.op]} {self.k:#x} on word {self.view.offset}"


def atom_key(atom: Atom) -> tuple[Operand, str, int]:
    """A total order on atoms (their comparison enum has none), for stable listings."""
    return (atom.operand, atom.cmp.value, atom.k)


def with_splits(tests: Iterable[Test]) -> tuple[Test, ...]:
    """``tests`` and the order splits of their equalities, without repeats, in a stable order."""
    seen: dict[Test, None] = {}
    for t in tests:
        seen.setdefault(t)
        for s in t.splits():
            seen.setdefault(s)
    return tuple(seen)


def word_cells(tests: Sequence[Test]) -> tuple[int, ...]:
    """One representative word value per cell: values on which every test agrees belong to one cell.

    Fixes word bits (the most significant free bit of the first undecided test's view) until every test is
    decided; each leaf is a set of words on which all tests agree, and leaves with equal outcomes are one cell.
    Raises :class:`TooManyCellsError`.
    """
    reps: dict[tuple[bool, ...], int] = {}
    stack = [(0, 0)]
    nodes = 0
    while stack:
        fixed, value = stack.pop()
        nodes += 1
        if nodes > _NODE_LIMIT:
            raise TooManyCellsError(f"more than {_NODE_LIMIT} steps to enumerate the cells of one word")
        undecided = next((t for t in tests if t.status(fixed, value) is None), None)
        if undecided is None:
            sig = tuple(t.holds(value) for t in tests)
            if sig not in reps:
                reps[sig] = value
                if len(reps) > CELL_LIMIT:
                    raise TooManyCellsError(f"more than {CELL_LIMIT} cells in one word")
            continue
        bit = undecided.view.branch_bit(fixed, undecided.k if undecided.op == JSET else U32)
        stack.append((fixed | bit, value | bit))
        stack.append((fixed | bit, value))
    return tuple(sorted(reps.values()))


@dataclass(frozen=True, slots=True)
class Partition:
    """The cells of every word some test reads: ``cells[offset]`` are representative word values."""

    tests: tuple[Test, ...]
    cells: Mapping[int, tuple[int, ...]]

    @classmethod
    def of(cls, tests: Iterable[Test]) -> Partition:
        ts = tuple(dict.fromkeys(tests))
        by_word: dict[int, list[Test]] = {}
        for t in ts:
            by_word.setdefault(t.offset, []).append(t)
        return cls(ts, {off: word_cells(group) for off, group in sorted(by_word.items())})

    @property
    def size(self) -> int:
        """The number of classes: the product of the words' cell counts."""
        n = 1
        for c in self.cells.values():
            n *= len(c)
        return n

    def truth(self, test: Test) -> int:
        """Bit i set iff ``test`` holds on cell i of its word."""
        out = 0
        for i, w in enumerate(self.cells.get(test.offset, ())):
            if test.holds(w):
                out |= 1 << i
        return out

    def context(self, choice: Mapping[int, int]) -> bytes:
        """A 40-byte context whose words are the chosen cells' representatives (other words zero)."""
        buf = bytearray(40)
        for off, i in choice.items():
            buf[off:off + 4] = self.cells[off][i].to_bytes(4, "little")
        return bytes(buf)
