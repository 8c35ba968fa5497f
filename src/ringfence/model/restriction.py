"""The kernel's ``io_restriction``: classic allow-lists plus the filter-table reference (spec §3.1, §3.2, §3.6).

One class serves rings and tasks. Classic fields are copied by value (snapshots, §4.5); the filter table is
shared by reference with a copy-on-write flag (§6.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ringfence.abi.layout import Restriction
from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.model.explain import ClassicView, StateView
from ringfence.model.filters import FilterTable
from ringfence.model.outcome import Refused
from ringfence.model.rules import Rule


@dataclass(slots=True, eq=False)
class RestrictionState:
    """``struct io_restriction``. Bitmaps are ints (bit n = opcode n).

    ``origin`` says where the classic part came from, for explanations.
    """

    register_op: int = 0
    sqe_op: int = 0
    flags_allowed: int = 0
    flags_required: int = 0
    op_registered: bool = False
    reg_registered: bool = False
    table: FilterTable | None = None
    cow: bool = False
    origin: str = ""

    def copy_classic(self, other: RestrictionState) -> None:
        """Copy bitmaps, masks and both booleans (ring creation §4.5, task creation §4.6)."""
        self.register_op = other.register_op
        self.sqe_op = other.sqe_op
        self.flags_allowed = other.flags_allowed
        self.flags_required = other.flags_required
        self.op_registered = other.op_registered
        self.reg_registered = other.reg_registered
        self.origin = other.origin

    def apply(self, parsed: ParsedRecords, origin: str) -> None:
        self.register_op = parsed.register_op
        self.sqe_op = parsed.sqe_op
        self.flags_allowed = parsed.flags_allowed
        self.flags_required = parsed.flags_required
        self.op_registered = parsed.op_registered
        self.reg_registered = parsed.reg_registered
        self.origin = origin

    def reset_classic(self) -> None:
        """§3.4: a failed ring registration empties everything except the table reference and its cow flag."""
        self.apply(ParsedRecords(), "")

    @property
    def has_classic(self) -> bool:
        return self.op_registered or self.reg_registered

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything observable about the state, for "unchanged after a failure" checks."""
        table = None if self.table is None else (self.table.serial, tuple(id(h) for h in self.table.heads))
        return (self.register_op, self.sqe_op, self.flags_allowed, self.flags_required, self.op_registered,
                self.reg_registered, table, self.cow)

    def view(self) -> StateView:
        classic = None
        if self.has_classic:
            classic = ClassicView(self.origin, self.op_registered, self.reg_registered, _names(self.sqe_op, SqeOp),
                                  _names(self.register_op, RegisterOp), self.flags_allowed, self.flags_required)
        table = None if self.table is None else self.table.view(cow=self.cow)
        return StateView(classic, table)


def _names(bitmap: int, enum_type: type[SqeOp] | type[RegisterOp]) -> tuple[str, ...]:
    out = []
    bit = 0
    while bitmap >> bit:
        if bitmap >> bit & 1:
            out.append(enum_type(bit).name if bit < len(enum_type) else str(bit))
        bit += 1
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ParsedRecords:
    """The result of a successful ``io_parse_restrictions()``."""

    register_op: int = 0
    sqe_op: int = 0
    flags_allowed: int = 0
    flags_required: int = 0
    op_registered: bool = False
    reg_registered: bool = False


def records_for(records: Sequence[Restriction], count: int) -> list[tuple[int, int]]:
    """The ``count`` records the kernel copies as ``(type, value)``: the given ones, truncated or padded with zero
    records (a zero record is ``REGISTER_OP 0``; the caller's buffer is zero-filled beyond its records)."""
    out = [(r.opcode & 0xFFFF, r.value & 0xFF) for r in records[:count]]
    out.extend((0, 0) for _ in range(count - len(out)))
    return out


def parse(records: Sequence[Restriction], count: int, *, null: bool, profile: KernelProfile) -> ParsedRecords:
    """``io_parse_restrictions()`` (§3.2); raises :class:`Refused` at the first bad record."""
    if null:
        raise Refused("EINVAL", Rule.RECORDS_NULL)
    if count > profile.max_restrictions or count < 0:
        raise Refused("EINVAL", Rule.RECORDS_TOO_MANY, f"{count} records; at most {profile.max_restrictions}")
    register_op = sqe_op = allowed = required = 0
    op_reg = reg_reg = False
    for index, (kind, value) in enumerate(records_for(records, count)):
        if kind == RestrictionOp.REGISTER_OP:
            if value >= profile.register_last:
                raise Refused("EINVAL", Rule.RECORD_REGISTER_OP,
                              f"record {index}: REGISTER_OP {value}; this kernel has {profile.register_last}")
            register_op |= 1 << value
            reg_reg = True
        elif kind == RestrictionOp.SQE_OP:
            if value >= profile.op_last:
                raise Refused("EINVAL", Rule.RECORD_SQE_OP,
                              f"record {index}: SQE_OP {value}; this kernel has {profile.op_last}")
            sqe_op |= 1 << value
            op_reg = True
        elif kind == RestrictionOp.SQE_FLAGS_ALLOWED:
            allowed = value
            op_reg = True
        elif kind == RestrictionOp.SQE_FLAGS_REQUIRED:
            required = value
            op_reg = True
        else:
            raise Refused("EINVAL", Rule.RECORD_TYPE, f"record {index}: type {kind}")
    if count == 0 or not profile.split_restrictions:
        # 7.0: an empty set restricts both sides. Pre-7.0: one `registered` flag covers both sides (§3.7).
        op_reg = reg_reg = True
    return ParsedRecords(register_op, sqe_op, allowed, required, op_reg, reg_reg)


def sqe_denial(state: RestrictionState, opcode: int, raw_flags: int) -> Refused | None:
    """§3.6: None if the SQE passes the classic check, else the refusal naming which condition failed."""
    origin = f" ({state.origin})" if state.origin else ""
    if not state.sqe_op >> opcode & 1:
        return Refused("EACCES", Rule.CLASSIC_OPCODE, f"{_op(opcode)} is not in the allowed opcodes{origin}")
    required = state.flags_required
    if raw_flags & required != required:
        return Refused("EACCES", Rule.CLASSIC_REQUIRED,
                       f"required {_flags(required)} missing from {_flags(raw_flags)}{origin}")
    extra = raw_flags & ~(state.flags_allowed | required)
    if extra:
        return Refused("EACCES", Rule.CLASSIC_FLAGS, f"{_flags(extra)} neither allowed nor required{origin}")
    return None


def register_allowed(state: RestrictionState, opcode: int) -> bool:
    return bool(state.register_op >> opcode & 1)


def _op(opcode: int) -> str:
    return SqeOp(opcode).name if opcode < len(SqeOp) else str(opcode)


def _flags(flags: int) -> str:
    names = [f.name or "" for f in SqeFlag if flags & f]
    if flags & ~0x7F:
        names.append(hex(flags & ~0x7F))
    return "|".join(names) or "0"
