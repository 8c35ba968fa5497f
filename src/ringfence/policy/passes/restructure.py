"""Restructure: the program as a reduced decision diagram over word cells, re-emitted word by word.

The program is lifted (:mod:`..lift`) and rebuilt as a multi-valued decision diagram: one level per context
word, one child per cell of that word (:mod:`..partition`), equal subdiagrams shared, a level whose children
are all equal skipped. That one step does what several classic passes do: a test implied or contradicted by
earlier tests disappears, a test whose outcome does not matter (a family-0 guard inside an ``AF_INET`` test)
disappears, every word is loaded once per path, identical tails are one. Each level is then emitted as a small
decision tree over its word's tests, chosen per level by exhaustive search for the fewest instructions on the
mean (frequency weights move the common case up), so a value set becomes a ``jeq`` chain or a ``jge``/``jgt``
tree, whichever is cheaper, and a masked test against 0 or one bit becomes a ``jset`` on the word in A.

Levels can come in any word order; a few orders are tried and the cheapest kept. The pass changes the program
only when the result is cheaper (mean, then worst, then length) on the program's own partition, so running it
again on its output is a no-op.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ringfence.bpf.builder import Builder, Built, Label
from ringfence.bpf.insn import ABS, ALU, AND, JEQ, JSET, LD, Instruction, K, W
from ringfence.policy.cost import Weights, walk_lifted
from ringfence.policy.ir import U32
from ringfence.policy.lift import Branch, Leaf, LiftError, Node, lift, nodes
from ringfence.policy.partition import Partition, Test, TooManyCellsError, View, with_splits

_MAX_ORDERS: Final = 24
#: Past this many cells in all words together, only two word orders are tried.
_MANY_CELLS: Final = 24
#: Programs this pass produced (by their bytes): running it again on them finds nothing better.
_MADE: dict[tuple[bytes, tuple[tuple[int, tuple[tuple[int, float], ...]], ...]], None] = {}
_MADE_LIMIT: Final = 4096
_MAX_TREE_STATES: Final = 1_500
#: Words with more cells than this get a greedy tree (exhaustive search costs too much there).
_EXHAUSTIVE_CELLS: Final = 12
_EPS: Final = 1e-9


_AKey = tuple[int, tuple[int, ...]] | None


@dataclass(frozen=True, slots=True)
class _Step:
    """One way to run a test from some A: instructions before the jump, the jump, whether its branches are
    swapped relative to the test, and what A holds afterwards."""

    test: Test
    pre: tuple[Instruction, ...]
    op: int
    k: int
    invert: bool
    after: View
    size: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.pre) + 1)


def _steps(t: Test, a: View | None, recipes: Mapping[tuple[int, tuple[int, ...]], tuple[Instruction, ...]]
           ) -> list[_Step]:
    out: list[_Step] = []
    v, m = t.view, t.view.mask
    same_word = a is not None and a.offset == v.offset and a.mask is not None
    if a == v:
        out.append(_Step(t, (), t.op, t.k, False, v))
    elif m is not None:
        if same_word and a is not None and a.mask is not None and m & ~a.mask == 0:
            out.append(_Step(t, (Instruction(ALU | AND | K, k=m),), t.op, t.k, False, v))
        load: tuple[Instruction, ...] = (Instruction(LD | W | ABS, k=v.offset),)
        if m != U32:
            load += (Instruction(ALU | AND | K, k=m),)
        out.append(_Step(t, load, t.op, t.k, False, v))
    else:
        recipe = recipes.get((v.offset, v.sources))
        if recipe is not None:
            out.append(_Step(t, recipe, t.op, t.k, False, v))
    if m is not None and m != U32:  # bit tests straight on the word
        bits: tuple[int, bool] | None = None
        if t.op == JSET:
            bits = (t.k & m, False)
        elif t.op == JEQ and t.k == 0:
            bits = (m, True)
        elif t.op == JEQ and t.k == m and m & (m - 1) == 0:
            bits = (m, False)
        if bits is not None and bits[0]:
            word = View.word(v.offset)
            if same_word and a is not None and a.mask is not None and bits[0] & ~a.mask == 0:
                out.append(_Step(t, (), JSET, bits[0], bits[1], a))
            else:
                out.append(_Step(t, (Instruction(LD | W | ABS, k=v.offset),), JSET, bits[0], bits[1], word))
    return out


@dataclass(frozen=True, slots=True)
class _Tree:
    """A per-word decision tree: a test step and two subtrees, or a leaf naming a child (by group index)."""

    step: _Step | None
    yes: _Tree | None
    no: _Tree | None
    group: int
    mass: float   # probability-weighted instructions
    worst: int
    size: int


class _Level:
    """Chooses the decision tree that routes one word's cells to their children: exhaustive search while it
    stays small (:data:`_MAX_TREE_STATES`), a greedy choice past it. Trees are remembered per grouping, so
    diagram nodes and word orders that need the same routing share the work."""

    def __init__(self, tests: Sequence[tuple[Test, int]], probs: Sequence[float],
                 recipes: Mapping[tuple[int, tuple[int, ...]], tuple[Instruction, ...]]) -> None:
        self.tests = tests
        self.probs = probs
        self.recipes = recipes
        self.steps: dict[tuple[Test, tuple[int, tuple[int, ...]] | None], list[_Step]] = {}
        self.trees: dict[tuple[int, ...], _Tree] = {}
        self.masses: dict[int, float] = {}

    def _steps(self, t: Test, a: View | None) -> list[_Step]:
        key = (t, None if a is None else (a.offset, a.sources))
        got = self.steps.get(key)
        if got is None:
            got = self.steps[key] = _steps(t, a, self.recipes)
        return got

    def _mass(self, cells: int) -> float:
        got = self.masses.get(cells)
        if got is None:
            got = self.masses[cells] = sum(p for c, p in enumerate(self.probs) if cells >> c & 1)
        return got

    def best(self, groups: Sequence[int]) -> _Tree:
        """``groups[c]``: the child cell ``c`` goes to."""
        key = tuple(groups)
        tree = self.trees.get(key)
        if tree is None:
            by_group: dict[int, int] = {}
            for c, g in enumerate(groups):
                by_group[g] = by_group.get(g, 0) | 1 << c
            full = (1 << len(groups)) - 1
            tree = None
            if len(groups) <= _EXHAUSTIVE_CELLS:
                with contextlib.suppress(_TooBigError):
                    tree = self._search(full, groups, by_group, exhaustive=True)
            if tree is None:
                tree = self._search(full, groups, by_group, exhaustive=False)
            self.trees[key] = tree
        return tree

    def _search(self, full: int, groups: Sequence[int], by_group: Mapping[int, int], *, exhaustive: bool) -> _Tree:
        """The cheapest tree (mean, then worst, then size); the search keeps scores only and builds the tree
        from the remembered choices at the end."""
        memo: dict[tuple[int, _AKey], tuple[float, int, int, tuple[_Step, int, int] | None]] = {}

        def pure(cells: int) -> int | None:
            g = groups[(cells & -cells).bit_length() - 1]
            return g if not cells & ~by_group[g] else None

        def akey(a: View | None) -> _AKey:
            return None if a is None else (a.offset, a.sources)

        def solve(cells: int, a: View | None) -> tuple[float, int, int, tuple[_Step, int, int] | None]:
            key = (cells, akey(a))
            got = memo.get(key)
            if got is not None:
                return got
            if pure(cells) is not None:
                memo[key] = (0.0, 0, 0, None)
                return memo[key]
            if exhaustive and len(memo) > _MAX_TREE_STATES:
                raise _TooBigError
            m = self._mass(cells)
            options: dict[tuple[int, int, _AKey], tuple[_Step, int, int]] = {}
            for t, truth in self.tests:
                yes, no = cells & truth, cells & ~truth
                if yes and no:
                    for step in self._steps(t, a):
                        options.setdefault((yes, step.size, akey(step.after)), (step, yes, no))
            if not options:
                raise _TooBigError  # the tests cannot tell the groups apart: not a program this pass made sense of
            choices = list(options.values())
            if not exhaustive:
                choices = [max(choices, key=lambda o: self._greedy_score(o[0], o[1], o[2], pure))]
            best: tuple[float, int, int, tuple[_Step, int, int] | None] | None = None
            for step, yes, no in choices:
                y, n = solve(yes, step.after), solve(no, step.after)
                size = step.size
                cand = (size * m + y[0] + n[0], size + max(y[1], n[1]), size + y[2] + n[2], (step, yes, no))
                if best is None or _better(cand, best):
                    best = cand
            assert best is not None
            memo[key] = best
            return best

        def build(cells: int, a: View | None) -> _Tree:
            mass, worst, size, choice = solve(cells, a)
            if choice is None:
                g = pure(cells)
                assert g is not None
                return _Tree(None, None, None, g, 0.0, 0, 0)
            step, yes, no = choice
            return _Tree(step, build(yes, step.after), build(no, step.after), -1, mass, worst, size)

        return build(full, None)

    def _greedy_score(self, step: _Step, yes: int, no: int, pure: Callable[[int], int | None]) -> float:
        """Mass settled per instruction: a side that needs nothing more counts whole, a balanced split half."""
        settled = (self._mass(yes) if pure(yes) is not None else 0.0) + \
            (self._mass(no) if pure(no) is not None else 0.0)
        return (settled + 0.5 * min(self._mass(yes), self._mass(no))) / step.size


class _TooBigError(Exception):
    """A level needs more search than the pass spends on it."""


def _better(a: tuple[float, int, int, object], b: tuple[float, int, int, object]) -> bool:
    if abs(a[0] - b[0]) > _EPS:
        return a[0] < b[0]
    return (a[1], a[2]) < (b[1], b[2])


class _Diagram:
    """A reduced, ordered multi-valued decision diagram; node ids index ``table``; a leaf is ``(-1, value)``."""

    def __init__(self, order: Sequence[int], cells: Mapping[int, int]) -> None:
        self.order = tuple(order)
        self.level = {off: i for i, off in enumerate(order)}
        self.ncells = [cells[off] for off in order]
        self.table: list[tuple[int, tuple[int, ...]]] = []
        self.unique: dict[tuple[int, tuple[int, ...]], int] = {}
        self.memo: dict[tuple[int, int, int, int], int] = {}

    def var(self, n: int) -> int:
        v = self.table[n][0]
        return len(self.order) if v < 0 else v

    def leaf(self, value: int) -> int:
        return self._mk(-1, (value,))

    def _mk(self, var: int, children: tuple[int, ...]) -> int:
        if var >= 0 and all(c == children[0] for c in children):
            return children[0]
        key = (var, children)
        n = self.unique.get(key)
        if n is None:
            n = self.unique[key] = len(self.table)
            self.table.append(key)
        return n

    def _cof(self, n: int, var: int, c: int) -> int:
        return self.table[n][1][c] if self.var(n) == var else n

    def select(self, i: int, yes: int, f: int, g: int) -> int:
        """The diagram of: word ``order[i]``'s cell in ``yes`` ? f : g."""
        if f == g:
            return f
        key = (i, yes, f, g)
        got = self.memo.get(key)
        if got is not None:
            return got
        top = min(self.var(f), self.var(g), i)
        if top == i:
            out = self._mk(i, tuple(self._cof(f, i, c) if yes >> c & 1 else self._cof(g, i, c)
                                    for c in range(self.ncells[i])))
        else:
            out = self._mk(top, tuple(self.select(i, yes, self._cof(f, top, c), self._cof(g, top, c))
                                      for c in range(self.ncells[top])))
        self.memo[key] = out
        return out


@dataclass(frozen=True, slots=True)
class _Plan:
    diagram: _Diagram
    root: int
    trees: dict[int, tuple[_Tree, tuple[int, ...]]]   # node -> (tree, the child of each group)
    mean: float
    worst: int
    length: int


class _Restructure:
    def __init__(self, built: Built, weights: Weights | None) -> None:
        self.built = built
        lifted = lift(built.program)
        self.lifted = lifted
        tests = with_splits(lifted.tests())
        self.part = Partition.of(tests)
        self.truth = {t: self.part.truth(t) for t in tests}
        self.by_word: dict[int, list[tuple[Test, int]]] = {}
        for t in tests:
            self.by_word.setdefault(t.offset, []).append((t, self.truth[t]))
        self.probs = self._probs(weights or {})
        self.comments = self._comments()
        self.levels = {off: _Level(self.by_word[off], self.probs[off], lifted.recipes) for off in self.part.cells}

    def _probs(self, weights: Weights) -> dict[int, list[float]]:
        """Each cell's probability: the summed weights of the listed values in it, or 1, normalised."""
        out: dict[int, list[float]] = {}
        for off, reps in self.part.cells.items():
            ts = [t for t, _ in self.by_word[off]]
            listed: dict[tuple[bool, ...], float] = {}
            for value, wt in weights.get(off, {}).items():
                sig = tuple(t.holds(value) for t in ts)
                listed[sig] = listed.get(sig, 0.0) + wt
            raw = [listed.get(tuple(t.holds(w) for t in ts), 1.0) for w in reps]
            total = sum(raw)
            out[off] = [r / total for r in raw]
        return out

    def _comments(self) -> dict[Test | int, str]:
        """The first non-empty comment met on each test's instructions, and on each returned value's."""
        out: dict[Test | int, str] = {}
        comments = self.built.comments
        for n in nodes(self.lifted.root):
            key: Test | int = n.test if isinstance(n, Branch) else n.value
            for pc in n.pcs:
                if comments[pc] and key not in out:
                    out[key] = comments[pc]
        return out

    def orders(self) -> list[tuple[int, ...]]:
        seen: dict[int, None] = {}
        for n in nodes(self.lifted.root):
            if isinstance(n, Branch):
                seen.setdefault(n.test.offset)
        first = tuple(seen)
        cands: dict[tuple[int, ...], None] = {first: None, tuple(sorted(first)): None}
        if sum(len(c) for c in self.part.cells.values()) > _MANY_CELLS:
            return list(cands)
        if len(first) <= 4:
            for p in itertools.permutations(first):
                cands.setdefault(p)
        else:
            for i in range(len(first)):
                cands.setdefault((first[i], *first[:i], *first[i + 1:]))
        return list(cands)[:_MAX_ORDERS]

    def plan(self, order: tuple[int, ...]) -> _Plan:
        d = _Diagram(order, {off: len(c) for off, c in self.part.cells.items()})
        memo: dict[int, int] = {}

        def convert(n: Node) -> int:
            got = memo.get(id(n))
            if got is not None:
                return got
            if isinstance(n, Leaf):
                out = d.leaf(n.value)
            else:
                out = d.select(d.level[n.test.offset], self.truth[n.test], convert(n.then), convert(n.other))
            memo[id(n)] = out
            return out

        root = convert(self.lifted.root)
        reach = {root: 1.0}
        trees: dict[int, tuple[_Tree, tuple[int, ...]]] = {}
        worst_to: dict[int, int] = {}
        mean = 0.0
        length = 0
        # nodes in level order: every parent before its children
        pending = sorted({root}, key=d.var)
        seen = {root}
        order_nodes: list[int] = []
        while pending:
            n = pending.pop(0)
            order_nodes.append(n)
            if d.table[n][0] >= 0:
                for c in set(d.table[n][1]):
                    if c not in seen:
                        seen.add(c)
                        pending.append(c)
                pending.sort(key=lambda x: (d.var(x), x))
        leaves = [n for n in order_nodes if d.table[n][0] < 0]
        worst_to[root] = 0
        for n in order_nodes:
            var, children = d.table[n]
            p = reach.get(n, 0.0)
            if var < 0:
                mean += p
                continue
            off = order[var]
            targets = tuple(dict.fromkeys(children))
            groups = [targets.index(c) for c in children]
            tree = self.levels[off].best(groups)
            trees[n] = (tree, targets)
            length += tree.size
            mean += p * tree.mass
            probs = self.probs[off]
            for c, child in enumerate(children):
                reach[child] = reach.get(child, 0.0) + p * probs[c]
            for depth, gi in _leaf_depths(tree):
                child = targets[gi]
                worst_to[child] = max(worst_to.get(child, 0), worst_to[n] + depth)
        length += len(leaves)
        worst = max(worst_to[n] + 1 for n in leaves)
        return _Plan(d, root, trees, mean, worst, length)

    def emit(self, plan: _Plan) -> Built:
        d = plan.diagram
        b = Builder()
        labels = {n: b.label() for n in plan.trees}
        rets: dict[int, Label] = {}
        for _, children in plan.trees.values():
            for c in children:
                if d.table[c][0] < 0:
                    rets.setdefault(d.table[c][1][0], b.label(f"ret{d.table[c][1][0]}"))

        def target(c: int) -> Label:
            return labels[c] if d.table[c][0] >= 0 else rets[d.table[c][1][0]]

        def tree(t: _Tree, children: tuple[int, ...]) -> None:
            assert t.step is not None and t.yes is not None and t.no is not None
            s = t.step
            test_comment = self._comment_for(s)
            for i, ins in enumerate(s.pre):
                b.emit(ins, test_comment if i == 0 else "")
            yes, no = (t.no, t.yes) if s.invert else (t.yes, t.no)
            t_label = target(children[yes.group]) if yes.step is None else b.label()
            f_label = target(children[no.group]) if no.step is None else b.label()
            b.jump(s.op, s.k, t_label, f_label, "" if s.pre else test_comment)
            if no.step is not None:
                b.place(f_label)
                tree(no, children)
            if yes.step is not None:
                b.place(t_label)
                tree(yes, children)

        if d.table[plan.root][0] < 0:
            value = d.table[plan.root][1][0]
            b.ret(value, self.comments.get(value, ""))
            return b.build_annotated()
        for n in sorted(plan.trees, key=lambda x: (d.var(x), x)):
            b.place(labels[n])
            t, children = plan.trees[n]
            tree(t, children)
        for value, label in sorted(rets.items(), key=lambda kv: -kv[0]):
            b.place(label)
            b.ret(value, self.comments.get(value, ""))
        return b.build_annotated()

    def _comment_for(self, s: _Step) -> str:
        """The comment the input program had on this test, else on any test of the same word (a split the
        input never made), else none."""
        own = self.comments.get(s.test)
        if own:
            return own
        return next((c for t, _ in self.by_word.get(s.test.offset, []) if (c := self.comments.get(t, ""))), "")


def _leaf_depths(t: _Tree, depth: int = 0) -> list[tuple[int, int]]:
    if t.step is None:
        return [(depth, t.group)]
    assert t.yes is not None and t.no is not None
    return _leaf_depths(t.yes, depth + t.step.size) + _leaf_depths(t.no, depth + t.step.size)


def _key(mean: float, worst: int, length: int) -> tuple[float, int, int]:
    return (round(mean, 9), worst, length)


def restructure(built: Built, weights: Weights | None = None) -> tuple[Built, bool]:
    """The pass: ``(built, False)`` when the program is not a decision diagram over words or nothing is
    cheaper."""
    made_key = (built.program.to_bytes(), tuple(sorted((off, tuple(sorted(v.items())))
                                                        for off, v in (weights or {}).items())))
    if made_key in _MADE:
        return built, False
    try:
        r = _Restructure(built, weights)
        best: _Plan | None = None
        for order in r.orders():
            p = r.plan(order)
            if best is None or _key(p.mean, p.worst, p.length) < _key(best.mean, best.worst, best.length):
                best = p
    except (LiftError, TooManyCellsError, _TooBigError, RecursionError):
        return built, False
    assert best is not None
    before = walk_lifted(r.lifted, len(built.program), r.part, r.probs).cost
    if _key(best.mean, best.worst, best.length) >= _key(before.mean, before.worst, before.length):
        return built, False
    out = r.emit(best)
    if len(_MADE) >= _MADE_LIMIT:
        _MADE.clear()
    _MADE[(out.program.to_bytes(), made_key[1])] = None
    return out, True
