"""A lower bound on the instructions any filter for a formula executes, found without the optimizer.

The bound is the cost of the **optimal decision tree** over the formula's atomic tests (its atoms and the order
splits of its equalities, :mod:`.partition`), on the same partition and weights as :mod:`.cost`. A tree node
is a test and costs what a program needs to run it: the jump, plus the load of the test's view unless A
already holds it (``ld`` 1, ``ld; and`` 2 or ``and`` 1 when A holds a wider mask of the word, the byte swap of
a port 8), or, for a masked test against 0 or one bit, a ``jset`` on the word A holds. A leaf is one ``ret``.
The mean and the worst case are minimised separately, each over all trees (exhaustive search with
memoisation), so each is a bound on its own. Programs are DAGs, but every path through a DAG is a path of the
tree it unfolds to, and merging paths can only lose what A holds, so no program over these tests does better.

The search is exponential: formulas with more than :data:`MAX_ATOMS` distinct atoms get no bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ringfence.bpf.insn import JEQ, JSET
from ringfence.policy.ir import U32, And, Atom, Const, Formula, Not, Or, atoms
from ringfence.policy.partition import Partition, Test, TooManyCellsError, atom_key, with_splits

MAX_ATOMS: Final = 12
_MAX_CLASSES: Final = 1 << 20
#: The search gives up (no bound) after this many distinct states (about 30 s and 250 MB of Python).
MAX_STATES: Final = 400_000
_SWAP_LOAD: Final = 8


class NoBoundError(Exception):
    """The formula is past the search's caps; the message says which."""


@dataclass(frozen=True, slots=True)
class Bound:
    worst: int
    mean: float
    atoms: int
    classes: int


def _first_cost(t: Test) -> int:
    """Instructions for ``t`` on a path that has not tested its word yet: the cheapest load plus the jump."""
    m = t.view.mask
    if m is None:
        return _SWAP_LOAD + 1
    if m == U32:
        return 2
    bitwise = t.op == JSET or (t.op == JEQ and (t.k == 0 or (t.k == m and m & (m - 1) == 0)))
    return 2 if bitwise else 3


def lower_bound(f: Formula, weights: Mapping[int, Mapping[int, float]] | None = None, *,
                max_states: int = MAX_STATES) -> Bound:
    """The bound for ``f`` (see the module doc); raises :class:`NoBoundError` past the caps."""
    if isinstance(f, Const):
        return Bound(1, 1.0, 0, 1)
    found = sorted(atoms(f), key=atom_key)
    if len(found) > MAX_ATOMS:
        raise NoBoundError(f"{len(found)} atoms (the exhaustive search stops at {MAX_ATOMS})")
    tests = with_splits(Test.of_atom(a) for a in found)
    try:
        part = Partition.of(tests)
    except TooManyCellsError as e:
        raise NoBoundError(str(e)) from None
    if part.size > _MAX_CLASSES:
        raise NoBoundError(f"{part.size} input classes (at most {_MAX_CLASSES})")
    return _Search(f, part, tests, weights or {}, max_states).run(len(found))


class _Search:
    def __init__(self, f: Formula, part: Partition, tests: tuple[Test, ...],
                 weights: Mapping[int, Mapping[int, float]], max_states: int) -> None:
        self.max_states = max_states
        self.part = part
        self.offsets = tuple(part.cells)
        self.index = {off: i for i, off in enumerate(self.offsets)}
        sizes = [len(part.cells[o]) for o in self.offsets]
        self.strides = [1] * len(sizes)
        for i in range(len(sizes) - 2, -1, -1):
            self.strides[i] = self.strides[i + 1] * sizes[i + 1]
        self.n = self.strides[0] * sizes[0] if sizes else 1
        self.digit: dict[tuple[int, int], int] = {}
        self.tests = [(t, self.index[t.offset], part.truth(t), _first_cost(t)) for t in tests]
        self.all_cells = [(1 << len(part.cells[o])) - 1 for o in self.offsets]
        self.raw: dict[tuple[int, ...], tuple[float, int]] = {}
        self.masses: dict[tuple[int, int], float] = {}
        self.full = (1 << self.n) - 1
        self.boxes: dict[tuple[int, int], int] = {}
        self.truth = self._formula(f)
        self.prob = [self._probs(o, weights.get(o, {})) for o in self.offsets]
        self.memo: dict[tuple[int, ...], tuple[float, int]] = {}

    def _probs(self, off: int, weights: Mapping[int, float]) -> list[float]:
        reps = self.part.cells[off]
        ts = [t for t, i, _, _ in self.tests if self.offsets[i] == off]
        sig = [tuple(t.holds(w) for t in ts) for w in reps]
        raw = [1.0] * len(reps)
        listed: dict[tuple[bool, ...], float] = {}
        for value, wt in weights.items():
            s = tuple(t.holds(value) for t in ts)
            listed[s] = listed.get(s, 0.0) + wt
        raw = [listed.get(s, 1.0) for s in sig]
        total = sum(raw)
        return [r / total for r in raw]

    def _cells_mask(self, i: int, cells: int) -> int:
        """Product classes whose cell of word ``i`` is in ``cells``."""
        key = (i, cells)
        got = self.boxes.get(key)
        if got is not None:
            return got
        stride, size = self.strides[i], len(self.part.cells[self.offsets[i]])
        period = stride * size
        pattern = 0
        for c in range(size):
            if cells >> c & 1:
                pattern |= ((1 << stride) - 1) << (c * stride)
        out, width = pattern, period
        while width < self.n:
            out |= out << width
            width *= 2
        out &= self.full
        self.boxes[key] = out
        return out

    def _formula(self, f: Formula) -> int:
        if isinstance(f, Const):
            return self.full if f.value else 0
        if isinstance(f, Atom):
            t = Test.of_atom(f)
            return self._cells_mask(self.index[t.offset], self.part.truth(t))
        if isinstance(f, Not):
            return self.full & ~self._formula(f.arg)
        if isinstance(f, And):
            out = self.full
            for a in f.args:
                out &= self._formula(a)
            return out
        assert isinstance(f, Or)
        out = 0
        for a in f.args:
            out |= self._formula(a)
        return out

    def run(self, n_atoms: int) -> Bound:
        state = tuple((1 << len(self.part.cells[o])) - 1 for o in self.offsets)
        mean, worst = self._best(state)
        return Bound(worst, mean, n_atoms, self.n)

    def _mass(self, i: int, cells: int) -> float:
        key = (i, cells)
        got = self.masses.get(key)
        if got is None:
            probs = self.prob[i]
            got = self.masses[key] = sum(probs[c] for c in range(len(probs)) if cells >> c & 1)
        return got

    def _depends(self, i: int, cells: int, box: int) -> bool:
        """Whether the formula, inside ``box``, still changes with word ``i``'s cell."""
        stride = self.strides[i]
        seen: int | None = None
        for c in range(len(self.part.cells[self.offsets[i]])):
            if cells >> c & 1:
                here = (self.truth & box & self._cells_mask(i, 1 << c)) >> (c * stride)
                if seen is None:
                    seen = here
                elif here != seen:
                    return True
        return False

    def _best(self, state: tuple[int, ...]) -> tuple[float, int]:
        """(expected, worst) instructions of the best trees for the classes in ``state``.

        Expectations are conditional on ``state``, so a word the formula no longer depends on inside the box
        can be narrowed to one of its cells without changing the answer: that is the memo key."""
        got = self.raw.get(state)
        if got is not None:
            return got
        box = self.full
        for i, cells in enumerate(state):
            box &= self._cells_mask(i, cells)
        if box & self.truth in (0, box):
            self.raw[state] = (1.0, 1)
            return (1.0, 1)
        live = [i for i, cells in enumerate(state) if cells & (cells - 1) and self._depends(i, cells, box)]
        canon = tuple(cells if i in live else cells & -cells for i, cells in enumerate(state))
        got = self.memo.get(canon)
        if got is None:
            if len(self.memo) > self.max_states:
                raise NoBoundError(f"the search passed {self.max_states} states")
            splits: dict[tuple[int, int], int] = {}  # (word, cells that pass) -> cheapest test making that split
            for _, i, truth, first in self.tests:
                if i not in live:
                    continue
                cells = state[i]
                yes = cells & truth
                if not yes or yes == cells:
                    continue
                cost = 1 if cells != self.all_cells[i] else first
                if splits.get((i, yes), cost + 1) > cost:
                    splits[(i, yes)] = cost
            best_mean, best_worst = float("inf"), 1 << 30
            for (i, yes), cost in splits.items():
                cells = state[i]
                no = cells & ~yes
                p = self._mass(i, yes) / self._mass(i, cells)
                m1, w1 = self._best((*state[:i], yes, *state[i + 1:]))
                m2, w2 = self._best((*state[:i], no, *state[i + 1:]))
                best_mean = min(best_mean, cost + p * m1 + (1 - p) * m2)
                best_worst = min(best_worst, cost + max(w1, w2))
            got = (best_mean, best_worst)
            self.memo[canon] = got
        self.raw[state] = got
        return got
