"""Exact cost of a filter program: instructions executed on the worst path and on the mean over the input
partition, and its length. Nothing is sampled.

The partition (:mod:`.partition`) is defined by a set of tests: a policy's atoms, or a program's own compares,
each equality with its order splits (``>= k``, ``> k``). Every class weighs the same unless frequency weights
say otherwise. A program may compare finer than the partition (a class it tells apart further counts the mean
of its parts), so the walk runs over the **joint** cells of the partition's tests and the program's, each
joint cell carrying an equal share of its class's weight. Words are independent, so a branch's probability is
the weight of the cells of its word that take it, over the weight of that word's cells still possible.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ringfence.bpf.insn import Program
from ringfence.policy.fields import FIELDS, Kind
from ringfence.policy.ir import Formula, atoms
from ringfence.policy.lift import Branch, Leaf, Lifted, LiftError, Node, lift
from ringfence.policy.partition import Partition, Test, TooManyCellsError, atom_key, with_splits

if TYPE_CHECKING:
    pass

#: Frequency weights: context word offset -> {word value: relative weight}. A class whose cell of that word
#: holds listed values weighs the sum of their weights; a cell holding none weighs 1.
Weights = Mapping[int, Mapping[int, float]]


@dataclass(frozen=True, slots=True)
class Cost:
    """``worst`` and ``mean`` instructions executed (a return counts), ``length`` instructions in the program,
    over ``classes`` input classes."""

    worst: int
    mean: float
    length: int
    classes: int


@dataclass(frozen=True, slots=True)
class Walk:
    """A program's cost and the pcs that some class reaches."""

    cost: Cost
    covered: frozenset[int]


def formula_tests(f: Formula) -> tuple[Test, ...]:
    """A formula's atoms as tests, sorted (the partition a policy's filter for one opcode is measured on)."""
    return tuple(Test.of_atom(a) for a in sorted(atoms(f), key=atom_key))


def field_weights(spec: Mapping[str, Mapping[int, float]]) -> dict[int, dict[int, float]]:
    """Weights named by field (``{"socket.family": {2: 10.0}}``) as word weights. Fields that live in one word
    (numbers, ports) only: a weight on part of a word would not say what the rest of it holds."""
    out: dict[int, dict[int, float]] = {}
    for name, values in spec.items():
        f = FIELDS.get(name)
        if f is None or f.size not in (2, 4) or f.kind not in (Kind.NUMBER, Kind.PORT):
            raise ValueError(f"weights are for single-word number and port fields, not {name!r}")
        for value, weight in values.items():
            if weight <= 0:
                raise ValueError(f"{name}={value}: a weight must be positive")
            word = int.from_bytes(value.to_bytes(2, "big"), "little") if f.kind is Kind.PORT else value
            out.setdefault(f.offset, {})[word] = float(weight)
    return out


def cost(program: Program, tests: Iterable[Test] | None = None, weights: Weights | None = None) -> Cost:
    """The cost of ``program`` over the partition of ``tests`` (default: the program's own compares)."""
    return walk(program, tests, weights).cost


def walk(program: Program, tests: Iterable[Test] | None = None, weights: Weights | None = None) -> Walk:
    """:func:`cost` and coverage; raises :class:`~.lift.LiftError` for a program that is no decision diagram,
    :class:`~.partition.TooManyCellsError` for a partition too fine to enumerate."""
    lifted = lift(program)
    own = lifted.tests()
    base = with_splits(own if tests is None else tests)
    policy = Partition.of(base)
    joint_tests = with_splits((*base, *own))
    joint = policy if set(joint_tests) == set(base) else Partition.of(joint_tests)
    probs = _probabilities(policy, joint, base, weights or {})
    return _Walker(joint, probs).run(lifted.root, len(program), policy.size)


def walk_lifted(lifted: Lifted, length: int, partition: Partition, probs: Mapping[int, Sequence[float]]) -> Walk:
    """:func:`walk` for a program already lifted, on a partition at least as fine as its own tests, with each
    cell's probability given (per word, summing to 1): for the optimizer, which has both at hand."""
    return _Walker(partition, {off: tuple(p) for off, p in probs.items()}).run(lifted.root, length,
                                                                              partition.size)


def _probabilities(policy: Partition, joint: Partition, base: Sequence[Test],
                   weights: Weights) -> dict[int, tuple[float, ...]]:
    """Each joint cell's share: its class cell's weight (frequency weights or 1), split evenly among the
    joint cells inside that class cell, normalised per word."""
    by_word: dict[int, list[Test]] = {}
    for t in base:
        by_word.setdefault(t.offset, []).append(t)
    out: dict[int, tuple[float, ...]] = {}
    for off, reps in joint.cells.items():
        ts = by_word.get(off, [])
        sig = [tuple(t.holds(w) for t in ts) for w in reps]
        cell_weight: dict[tuple[bool, ...], float] = {}
        for value, wt in weights.get(off, {}).items():
            s = tuple(t.holds(value) for t in ts)
            cell_weight[s] = cell_weight.get(s, 0.0) + wt
        share = {s: sig.count(s) for s in set(sig)}
        raw = [cell_weight.get(s, 1.0) / share[s] for s in sig]
        total = sum(raw)
        out[off] = tuple(r / total for r in raw)
    return out


class _Walker:
    """Expected and worst instructions from each node, memoised on (node, cells still possible per word)."""

    def __init__(self, joint: Partition, probs: Mapping[int, tuple[float, ...]]) -> None:
        self.offsets = tuple(joint.cells)
        self.index = {off: i for i, off in enumerate(self.offsets)}
        self.joint = joint
        self.probs = probs
        self.truth: dict[Test, int] = {}
        self.mass: dict[tuple[int, int], float] = {}
        self.memo: dict[tuple[int, tuple[int, ...]], tuple[float, int]] = {}
        self.covered: set[int] = set()

    def _mass(self, off: int, cells: int) -> float:
        key = (off, cells)
        m = self.mass.get(key)
        if m is None:
            p = self.probs[off]
            m = sum(p[i] for i in range(len(p)) if cells >> i & 1)
            self.mass[key] = m
        return m

    def run(self, root: Node, length: int, classes: int) -> Walk:
        state = tuple((1 << len(self.joint.cells[off])) - 1 for off in self.offsets)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            mean, worst = self._visit(root, state)
        finally:
            sys.setrecursionlimit(limit)
        return Walk(Cost(worst, mean, length, classes), frozenset(self.covered))

    def _visit(self, node: Node, state: tuple[int, ...]) -> tuple[float, int]:
        key = (id(node), state)
        done = self.memo.get(key)
        if done is not None:
            return done
        self.covered.update(node.pcs)
        n = len(node.pcs)
        if isinstance(node, Leaf):
            result: tuple[float, int] = (float(n), n)
        else:
            assert isinstance(node, Branch)
            t = node.test
            truth = self.truth.get(t)
            if truth is None:
                truth = self.truth[t] = self.joint.truth(t)
            i = self.index[t.offset]
            cells = state[i]
            total = self._mass(t.offset, cells)
            mean, worst = 0.0, 0
            for part, child in ((cells & truth, node.then), (cells & ~truth, node.other)):
                if not part:
                    continue
                sub = (*state[:i], part, *state[i + 1:])
                m, w = self._visit(child, sub)
                mean += m * self._mass(t.offset, part) / total
                worst = max(worst, w)
            result = (n + mean, n + worst)
        self.memo[key] = result
        return result


@functools.lru_cache(maxsize=256)
def _own_cost(program: Program) -> Cost | None:
    try:
        return cost(program)
    except (LiftError, TooManyCellsError):
        return None


def _column(pick: Callable[[Cost], str]) -> Callable[[Program], str]:
    def column(program: Program) -> str:
        c = _own_cost(program)
        return "-" if c is None else pick(c)
    return column


#: Columns for a per-program cost table, as ``(header, function of the program)``: worst and mean over the
#: program's own tests (what ``ringfence verify`` can show beside each registered filter; "-" for a program that
#: is no decision over context words). The three share one computation per program.
COST_COLUMNS: tuple[tuple[str, Callable[[Program], str]], ...] = (
    ("worst", _column(lambda c: str(c.worst))),
    ("mean", _column(lambda c: f"{c.mean:.2f}")),
    ("classes", _column(lambda c: str(c.classes))),
)
