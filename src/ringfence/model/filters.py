"""Filter tables: immutable chains, the deny marker, install, sharing with copy-on-write, running (spec §6).

A chain is a cons-list of :class:`FilterNode`, newest first; the deny marker is a node without a program
and is always last. A :class:`FilterTable` is the array of ``IORING_OP_LAST`` chain heads; a copy-on-write
copy is a copy of that array (nodes are shared, as in the kernel).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from ringfence.abi.opcodes import FilterFlag, SqeOp
from ringfence.bpf import CheckedProgram, run
from ringfence.model.explain import InstallView, ProgramVerdict, TableView


@dataclass(frozen=True, slots=True, eq=False)
class FilterNode:
    """One installed program (or the deny marker when ``program`` is None) and the rest of its chain."""

    program: CheckedProgram | None
    next: FilterNode | None
    origin: str
    serial: int
    #: Which state registered it: ``"task main"`` or ``"ring r"`` (the origin up to its first comma).
    owner: str = ""

    @property
    def is_marker(self) -> bool:
        return self.program is None


#: The kernel's static "dummy filter": always denies, carries no program (§6.3). :func:`install` places one
#: marker node per DENY_REST registration instead, to say which registration placed it.
DENY_MARKER: Final = FilterNode(None, None, "DENY_REST marker", 0)


class FilterTable:
    """One chain head per SQE opcode. Mutable in place unless a state sharing it has ``cow`` set (§6.2)."""

    __slots__ = ("heads", "note", "serial")

    def __init__(self, heads: list[FilterNode | None], serial: int, note: str) -> None:
        self.heads = heads
        self.serial = serial
        self.note = note

    @property
    def label(self) -> str:
        return f"table#{self.serial}"

    def chain(self, opcode: int) -> tuple[FilterNode, ...]:
        return tuple(walk(self.heads[opcode])) if 0 <= opcode < len(self.heads) else ()

    def view(self, *, cow: bool = False) -> TableView:
        """Chains with programs by opcode name (newest first); opcodes holding only a deny marker are counted per
        marker, to keep explanations short."""
        chains: list[tuple[str, tuple[str, ...]]] = []
        marked: dict[str, int] = {}
        for op, head in enumerate(self.heads):
            if head is None:
                continue
            if head.program is None:
                marked[head.origin] = marked.get(head.origin, 0) + 1
            else:
                chains.append((_op_name(op), tuple(node_label(n) for n in walk(head))))
        return TableView(self.label, cow, tuple(chains), tuple(marked.items()))


def walk(head: FilterNode | None) -> Iterator[FilterNode]:
    node = head
    while node is not None:
        yield node
        node = node.next


def node_label(node: FilterNode) -> str:
    return node.origin if node.is_marker else f"filter#{node.serial} ({node.origin})"


_OP_NAMES: Final = tuple(op.name for op in SqeOp)
_DENY_REST: Final = int(FilterFlag.DENY_REST)


def _op_name(op: int) -> str:
    return _OP_NAMES[op] if 0 <= op < len(_OP_NAMES) else str(op)


class HasTable(Protocol):
    """What install/share need from a restriction state (a ring's or a task's)."""

    table: FilterTable | None
    cow: bool


@dataclass(frozen=True, slots=True)
class Installed:
    """What an installation did, for the explanation: table used, whether copied, markers placed."""

    table: FilterTable
    copied_from: int | None
    created: bool
    node: FilterNode
    markers: tuple[int, ...]

    def view(self) -> InstallView:
        return InstallView(self.table.label, node_label(self.node), self.created,
                           None if self.copied_from is None else f"table#{self.copied_from}",
                           tuple(_op_name(op) for op in self.markers))


def install(state: HasTable, opcode: int, program: CheckedProgram, flags: int, *, origin: str,
            op_last: int, serial: int) -> Installed:
    """§6.2: pick the table (new, copy-on-write copy, or in place), prepend the node, apply DENY_REST.

    Nothing here can fail in the model (the kernel's only failures are allocation ones, rows 15-16).
    """
    copied_from: int | None = None
    created = False
    if state.table is None:
        table = FilterTable([None] * op_last, serial, f"created by {origin}")
        created = True
    elif state.cow:
        old = state.table
        table = FilterTable(list(old.heads), serial, f"copy-on-write copy of {old.label} by {origin}")
        copied_from = old.serial
        state.cow = False
    else:
        table = state.table
    state.table = table
    owner = origin.split(",", maxsplit=1)[0]
    node = FilterNode(program, table.heads[opcode], origin, serial, owner)
    table.heads[opcode] = node
    markers: list[int] = []
    if flags & _DENY_REST:
        # One marker node per DENY_REST registration: the same meaning as the kernel's single static
        # marker, plus provenance for explanations.
        marker = FilterNode(None, None, f"DENY_REST marker ({origin})", serial, owner)
        for op in range(op_last):
            if op != opcode and table.heads[op] is None:
                table.heads[op] = marker
                markers.append(op)
    return Installed(table, copied_from, created, node, tuple(markers))


def share(dst: HasTable, src: HasTable, *, source_cow: bool) -> None:
    """§6.5 ``share_table``: reference the source's table, copy-on-write; 7.3-rc also marks the source."""
    if src.table is None:
        return
    dst.table = src.table
    dst.cow = True
    if source_cow:
        src.cow = True


@dataclass(frozen=True, slots=True)
class ProgramRun:
    """One program's verdict in a chain walk."""

    position: int
    node: FilterNode
    value: int | None
    steps: int

    @property
    def allowed(self) -> bool:
        return self.value is not None and self.value != 0

    def view(self, own: str) -> ProgramVerdict:
        """As an explanation; ``own`` names the state deciding, so chain elements it did not register read as
        inherited."""
        return ProgramVerdict(self.position, node_label(self.node), self.node.is_marker, self.value, self.steps,
                              self.node.owner != own)


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """§6.4: allowed or not, and every program that ran (stopping at the first denial)."""

    allowed: bool
    runs: tuple[ProgramRun, ...]
    built_context: bool


def run_chain(head: FilterNode | None, ctx: bytes | None, *, detail: bool = True) -> ChainVerdict:
    """Walk the chain newest first; the first zero (or the marker) denies. ``ctx`` is None iff not needed."""
    if head is None:
        return ChainVerdict(True, (), False)
    if head.is_marker:
        return ChainVerdict(False, (ProgramRun(0, head, None, 0),), False)
    assert ctx is not None, "a real filter at the head needs a context"
    runs: list[ProgramRun] = []
    for position, node in enumerate(walk(head)):
        program = node.program
        if program is None:
            runs.append(ProgramRun(position, node, None, 0))
            return ChainVerdict(False, tuple(runs), True)
        if detail:
            result = run(program, ctx)
            value, steps = result.value, result.steps
        else:
            value, steps = program.evaluate(ctx), 0
        runs.append(ProgramRun(position, node, value, steps))
        if value == 0:
            return ChainVerdict(False, tuple(runs), True)
    return ChainVerdict(True, tuple(runs), True)
