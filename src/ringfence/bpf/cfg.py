"""Control flow of a classic-BPF program, computed once: successors, reachability, forward data flow.

Jump offsets are unsigned (spec §2.8), so every edge goes from a lower pc to a higher one and pc order
is a topological order: a forward data-flow problem is solved exactly in one pass, visiting each pc
after all of its predecessors. Two edge sets exist:

* the real one (``Cfg.of(program)``): a return ends the path;
* the kernel checker's (``returns_fall_through=True``): the generic scratch-memory check walks the
  array in order and only jumps break the fall-through, so a return falls through to the next
  instruction (spec §5.5, ``check_load_and_stores``).

Targets outside the program are dropped from ``successors`` (only programs the checker refuses
have them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar, overload

from ringfence.bpf.insn import Instruction, Program

T = TypeVar("T")


def targets(ins: Instruction, pc: int, *, returns_fall_through: bool = False) -> tuple[int, ...]:
    """Where control can go after ``ins`` at ``pc``, possibly past the end; jt's target before jf's."""
    if ins.is_ja:
        return (pc + 1 + ins.k,)
    if ins.is_conditional_jump:
        t, f = pc + 1 + ins.jt, pc + 1 + ins.jf
        return (t,) if t == f else (t, f)
    if ins.is_return and not returns_fall_through:
        return ()
    return (pc + 1,)


@dataclass(frozen=True, eq=False)
class Cfg:
    """Successor lists of one program. ``successors[pc]`` are in range, distinct, jt's target first."""

    length: int
    successors: tuple[tuple[int, ...], ...]
    jumps: tuple[bool, ...]

    @classmethod
    def of(cls, program: Program | Sequence[Instruction], *, returns_fall_through: bool = False) -> Cfg:
        insns = program.instructions if isinstance(program, Program) else tuple(program)
        n = len(insns)
        succ = tuple(tuple(t for t in targets(ins, pc, returns_fall_through=returns_fall_through) if t < n)
                     for pc, ins in enumerate(insns))
        return cls(n, succ, tuple(i.is_jump for i in insns))

    @cached_property
    def reachable(self) -> tuple[bool, ...]:
        """Whether some path from pc 0 reaches each pc."""
        seen = [False] * self.length
        if self.length:
            seen[0] = True
        for pc in range(self.length):
            if seen[pc]:
                for t in self.successors[pc]:
                    seen[t] = True
        return tuple(seen)

    @cached_property
    def predecessors(self) -> tuple[tuple[int, ...], ...]:
        preds: list[list[int]] = [[] for _ in range(self.length)]
        for pc, succ in enumerate(self.successors):
            for t in succ:
                preds[t].append(pc)
        return tuple(tuple(p) for p in preds)

    @cached_property
    def jump_targets(self) -> frozenset[int]:
        """Pcs some jump lands on, fall-through targets of conditional jumps included (``dis.findlabels``)."""
        return frozenset(t for pc, succ in enumerate(self.successors) if self.jumps[pc] for t in succ)

    @cached_property
    def leaders(self) -> frozenset[int]:
        """First pcs of basic blocks: the entry, every jump target, and every pc right after a jump."""
        found = {0} if self.length else set()
        found |= self.jump_targets
        found.update(pc + 1 for pc in range(self.length - 1) if self.jumps[pc])
        return frozenset(found)


class Flow(Generic[T]):
    """Incremental forward data flow: values meet at later pcs only, so ``at(pc)`` is final once every
    pc before it has sent. :func:`forward` drives it over a :class:`Cfg`; a generator that writes a
    program front to back (:mod:`.gen`) drives it while the program does not exist yet.
    """

    __slots__ = ("_meet", "_values")

    def __init__(self, length: int, entry: T, meet: Callable[[T, T], T]) -> None:
        self._values: list[T | None] = [None] * length
        if length:
            self._values[0] = entry
        self._meet = meet

    def at(self, pc: int) -> T | None:
        """The meet of everything sent to ``pc``, or None if nothing was (no path reaches it)."""
        return self._values[pc]

    def send(self, target: int, value: T) -> None:
        """Flow ``value`` along an edge into ``target``; targets past the end are ignored."""
        if target < len(self._values):
            old = self._values[target]
            self._values[target] = value if old is None else self._meet(old, value)

    @property
    def values(self) -> list[T | None]:
        return list(self._values)


@overload
def forward(cfg: Cfg, entry: T, transfer: Callable[[int, T], T], meet: Callable[[T, T], T], *,
            unreached: T, edge: Callable[[int, int, T], T] | None = None) -> list[T]: ...
@overload
def forward(cfg: Cfg, entry: T, transfer: Callable[[int, T], T], meet: Callable[[T, T], T], *,
            unreached: None = None, edge: Callable[[int, int, T], T] | None = None) -> list[T | None]: ...
def forward(cfg: Cfg, entry: T, transfer: Callable[[int, T], T], meet: Callable[[T, T], T], *,
            unreached: T | None = None, edge: Callable[[int, int, T], T] | None = None) -> list[T] | list[T | None]:
    """The value on entry to every pc of a forward problem, exact in one pass.

    ``transfer(pc, value_in)`` is the value leaving ``pc``; ``edge(pc, target, value_out)`` may refine it
    per edge (what a taken branch proves). A pc no path reaches starts from ``unreached`` and flows on
    like any other; without ``unreached`` it is None in the result and sends nothing, which is the same
    as sending the top element of a lattice whose ``transfer(top)`` is top.
    """
    flow: Flow[T] = Flow(cfg.length, entry, meet)
    out: list[T | None] = []
    for pc in range(cfg.length):
        value = flow.at(pc)
        if value is None:
            value = unreached
        out.append(value)
        if value is None:
            continue
        leaving = transfer(pc, value)
        for target in cfg.successors[pc]:
            flow.send(target, leaving if edge is None else edge(pc, target, leaving))
    return out
