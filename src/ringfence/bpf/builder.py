"""Write programs with symbolic labels; the builder lays them out, far jumps included.

A compiler emits instructions and jumps to :class:`Label` objects it places later. Classic BPF jumps
only go forward (spec §2.8), so jumping to a label that is already placed is a :class:`BuildError` at
the jump. ``ja`` reaches 2**32 - 1 instructions; a conditional jump only 255, so one whose target is
farther is rewritten with trampolines::

    jxx k, 0, F      ; true target far:   jt falls to the ja
    ja  T
    jxx k, T, 0      ; false target far
    ja  F
    jxx k, 0, 1      ; both far
    ja  T
    ja  F

Trampolines move later code, which can push other jumps out of range, so the layout repeats until
nothing changes. Forms only grow (short -> one trampoline -> two) and distances never shrink, so this
terminates. Each item may carry a comment; the comment stays beside every instruction it became
(:attr:`Built.comments`), for listings and C output that explain each instruction.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.bpf.insn import CONDITIONAL_JUMP_OPS, JA, JMP, RET, A, Instruction, K, Program, X
from ringfence.errors import RingfenceError

_MAX_SHORT: Final = 0xFF
_MAX_JA: Final = 0xFFFFFFFF


class BuildError(RingfenceError):
    """A builder program that cannot become classic BPF: a backward jump, a label never placed, ..."""


@dataclass(frozen=True, eq=False)
class Label:
    """A jump target; equal only to itself. ``name`` is for messages and :attr:`Built.labels`."""

    name: str


class _Form(enum.IntEnum):
    """Instructions a conditional jump takes: ``SHORT`` 1, ``FAR_TRUE``/``FAR_FALSE`` 2, ``FAR_BOTH`` 3."""

    SHORT = 1
    FAR_TRUE = 2
    FAR_FALSE = 3
    FAR_BOTH = 4

    @property
    def size(self) -> int:
        return {1: 1, 2: 2, 3: 2, 4: 3}[self.value]


@dataclass(slots=True)
class _Item:
    """One emitted thing: a plain instruction, a ``ja``, or a conditional jump (code, k, two labels)."""

    ins: Instruction
    comment: str
    true: Label | None = None
    false: Label | None = None
    form: _Form = _Form.SHORT

    @property
    def size(self) -> int:
        return self.form.size if self.false is not None else 1


@dataclass(frozen=True)
class Built:
    """A laid-out program, the comment of each instruction ("" for none) and each label's pc."""

    program: Program
    comments: tuple[str, ...]
    labels: Mapping[str, int]

    def comment(self, pc: int) -> str:
        return self.comments[pc]


class Builder:
    """Collects items; :meth:`build` lays them out. Not thread-safe; one builder per program."""

    def __init__(self) -> None:
        self._items: list[_Item] = []
        self._placed: dict[Label, int] = {}   # label -> index of the item it names
        self._used: dict[Label, int] = {}     # label -> index of the first item jumping to it
        self._counter = itertools.count()

    def __len__(self) -> int:
        """Items emitted so far (a far jump counts once)."""
        return len(self._items)

    # -- labels ----------------------------------------------------------------------------------------------
    def label(self, name: str | None = None) -> Label:
        """A new label, not yet placed. Names need not be unique; :attr:`Built.labels` keeps the first."""
        return Label(name if name is not None else f"L{next(self._counter)}")

    def place(self, label: Label) -> Label:
        """Bind ``label`` to the next item emitted."""
        if label in self._placed:
            raise BuildError(f"label {label.name!r} is placed twice")
        self._placed[label] = len(self._items)
        return label

    def here(self, name: str | None = None) -> Label:
        """A new label placed at the next item."""
        return self.place(self.label(name))

    def _target(self, label: Label) -> Label:
        if label in self._placed:
            raise BuildError(f"backward jump to {label.name!r}: classic BPF jumps only go forward")
        self._used.setdefault(label, len(self._items))
        return label

    # -- items -----------------------------------------------------------------------------------------------
    def emit(self, ins: Instruction, comment: str = "") -> None:
        """A non-jump instruction, as is. Jumps go through :meth:`ja` and :meth:`jump` (they need labels)."""
        if ins.is_jump:
            raise BuildError(f"{ins} is a jump: use ja() or jump() with labels")
        self._items.append(_Item(ins, comment))

    def ja(self, target: Label, comment: str = "") -> None:
        self._items.append(_Item(Instruction(JMP | JA), comment, self._target(target)))

    def jump(self, op: int, k: int | None, true: Label, false: Label | None = None, comment: str = "") -> None:
        """``jxx``: to ``true`` if ``A op k`` holds (``A op X`` when ``k`` is None), else to ``false``, or to the
        next item when ``false`` is None. ``op`` is one of ``JEQ``, ``JGT``, ``JGE``, ``JSET``."""
        if op not in CONDITIONAL_JUMP_OPS:
            raise BuildError(f"{op:#x} is not a conditional jump operation")
        code = JMP | op | (X if k is None else K)
        t = self._target(true)
        if false is None:  # a fresh label, placed at the next item
            false = Label(f"(after item {len(self._items)})")
            self._used[false] = len(self._items)
            self._placed[false] = len(self._items) + 1
        else:
            false = self._target(false)
        self._items.append(_Item(Instruction(code, k=k or 0), comment, t, false))

    def ret(self, k: int, comment: str = "") -> None:
        self.emit(Instruction(RET | K, k=k), comment)

    def ret_a(self, comment: str = "") -> None:
        self.emit(Instruction(RET | A), comment)

    # -- layout ----------------------------------------------------------------------------------------------
    def _check_labels(self) -> None:
        for label, user in self._used.items():
            where = self._placed.get(label)
            if where is None:
                raise BuildError(f"label {label.name!r} is jumped to (item {user}) but never placed")
            if where >= len(self._items):
                raise BuildError(f"label {label.name!r} is placed after the last instruction (jumped to by item "
                                 f"{user})")

    def _starts(self) -> list[int]:
        starts, pc = [], 0
        for item in self._items:
            starts.append(pc)
            pc += item.size
        starts.append(pc)
        return starts

    def _layout(self) -> list[int]:
        """Choose every conditional jump's form; returns each item's first pc (and the total last)."""
        while True:
            starts = self._starts()
            changed = False
            for i, item in enumerate(self._items):
                if item.false is None or item.true is None or item.form is _Form.FAR_BOTH:
                    continue
                pc = starts[i]
                t, f = starts[self._placed[item.true]], starts[self._placed[item.false]]
                t_far = t - pc - 1 > _MAX_SHORT
                f_far = f - pc - 1 > _MAX_SHORT and f != t
                form: _Form = item.form
                if form is _Form.SHORT:
                    form = _Form.FAR_BOTH if t_far and f_far else _Form.FAR_TRUE if t_far else \
                        _Form.FAR_FALSE if f_far else _Form.SHORT
                elif (form is _Form.FAR_TRUE and f_far) or (form is _Form.FAR_FALSE and t_far):
                    form = _Form.FAR_BOTH
                if form is not item.form:
                    item.form, changed = form, True
            if not changed:
                return starts

    def build_annotated(self) -> Built:
        """The program with its comments and label pcs; raises :class:`BuildError`."""
        self._check_labels()
        starts = self._layout()
        insns: list[Instruction] = []
        comments: list[str] = []

        def ja(pc: int, target: int) -> Instruction:
            offset = target - pc - 1
            if offset > _MAX_JA:
                raise BuildError(f"ja at {pc} is {offset} instructions from its target; at most {_MAX_JA}")
            return Instruction(JMP | JA, k=offset)

        for i, item in enumerate(self._items):
            pc = starts[i]
            if item.true is None:
                out = [item.ins]
            elif item.false is None:
                out = [ja(pc, starts[self._placed[item.true]])]
            else:
                t, f = starts[self._placed[item.true]], starts[self._placed[item.false]]
                code, k = item.ins.code, item.ins.k
                match item.form:
                    case _Form.SHORT:
                        out = [Instruction(code, t - pc - 1, f - pc - 1, k)]
                    case _Form.FAR_TRUE:
                        out = [Instruction(code, 0, 0 if f == t else f - pc - 1, k), ja(pc + 1, t)]
                    case _Form.FAR_FALSE:
                        out = [Instruction(code, t - pc - 1, 0, k), ja(pc + 1, f)]
                    case _Form.FAR_BOTH:
                        out = [Instruction(code, 0, 1, k), ja(pc + 1, t), ja(pc + 2, f)]
            insns += out
            comments += [item.comment] * len(out)
        labels: dict[str, int] = {}
        for label, index in self._placed.items():
            if not label.name.startswith("(") and index < len(self._items):
                labels.setdefault(label.name, starts[index])
        return Built(Program(tuple(insns)), tuple(comments), MappingProxyType(labels))

    def build(self) -> Program:
        """The program alone (see :meth:`build_annotated`)."""
        return self.build_annotated().program
