"""The kernel's ``io_restriction``: classic allow-lists plus the filter-table reference (spec §3.1, §3.2, §3.6).

One class serves rings and tasks. Classic fields are copied by value (snapshots, §4.5); the filter table is
shared by reference with a copy-on-write flag (§6.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.model.filters import FilterTable
from ringfence.model.outcome import Refused
from ringfence.scenario.steps import RestrictionRecord


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

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.has_classic:
            out["classic"] = {
                "origin": self.origin,
                "sqe_side": self.op_registered,
                "register_side": self.reg_registered,
                "sqe_ops": _names(self.sqe_op, SqeOp),
                "register_ops": _names(self.register_op, RegisterOp),
                "flags_allowed": self.flags_allowed,
                "flags_required": self.flags_required,
            }
        if self.table is not None:
            out["filters"] = {"table": self.table.label, "cow": self.cow, **self.table.summary()}
        return out


def _names(bitmap: int, enum_type: type[SqeOp] | type[RegisterOp]) -> list[str]:
    out = []
    bit = 0
    while bitmap >> bit:
        if bitmap >> bit & 1:
            out.append(enum_type(bit).name if bit < len(enum_type) else str(bit))
        bit += 1
    return out


@dataclass(frozen=True, slots=True)
class ParsedRecords:
    """The result of a successful ``io_parse_restrictions()``."""

    register_op: int = 0
    sqe_op: int = 0
    flags_allowed: int = 0
    flags_required: int = 0
    op_registered: bool = False
    reg_registered: bool = False


def records_for(records: Sequence[RestrictionRecord], count: int) -> list[tuple[int, int]]:
    """The ``count`` records the kernel copies: the given ones, truncated or padded with zero records.

    A count larger than the records supplied reads past them; the model assumes the caller's buffer is
    zero-filled there (a zero record is ``REGISTER_OP 0``) [assumption shared with the live backend].
    """
    out = [(r.kind & 0xFFFF, r.value & 0xFF) for r in records[:count]]
    out.extend((0, 0) for _ in range(count - len(out)))
    return out


def parse(records: Sequence[RestrictionRecord], count: int, *, null: bool, profile: KernelProfile,
          where: str) -> ParsedRecords:
    """§3.2 ``parse()``; raises :class:`Refused` at the first bad record. ``where`` prefixes the rule."""
    if null or count > profile.max_restrictions or count < 0:
        limit = profile.max_restrictions
        why = "records pointer is NULL" if null else f"{count} records > IORING_MAX_RESTRICTIONS ({limit})"
        raise Refused("EINVAL", f"{where}: parse", why)
    register_op = sqe_op = allowed = required = 0
    op_reg = reg_reg = False
    for index, (kind, value) in enumerate(records_for(records, count)):
        if kind == RestrictionOp.REGISTER_OP:
            if value >= profile.register_last:
                raise Refused("EINVAL", f"{where}: parse",
                              f"record {index}: REGISTER_OP {value} >= IORING_REGISTER_LAST ({profile.register_last})")
            register_op |= 1 << value
            reg_reg = True
        elif kind == RestrictionOp.SQE_OP:
            if value >= profile.op_last:
                raise Refused("EINVAL", f"{where}: parse",
                              f"record {index}: SQE_OP {value} >= IORING_OP_LAST ({profile.op_last})")
            sqe_op |= 1 << value
            op_reg = True
        elif kind == RestrictionOp.SQE_FLAGS_ALLOWED:
            allowed = value
            op_reg = True
        elif kind == RestrictionOp.SQE_FLAGS_REQUIRED:
            required = value
            op_reg = True
        else:
            raise Refused("EINVAL", f"{where}: parse", f"record {index}: unknown record type {kind}")
    if count == 0 or not profile.split_restrictions:
        # 7.0: an empty set restricts both sides. Pre-7.0: one `registered` flag covers both sides (§3.7).
        op_reg = reg_reg = True
    return ParsedRecords(register_op, sqe_op, allowed, required, op_reg, reg_reg)


def sqe_denial(state: RestrictionState, opcode: int, raw_flags: int) -> str | None:
    """§3.6: None if the SQE passes the classic check, else which of the three conditions failed."""
    if not state.sqe_op >> opcode & 1:
        return f"opcode {_op(opcode)} not in the allowed SQE opcodes"
    required = state.flags_required
    if raw_flags & required != required:
        return f"required flags {_flags(required)} missing from {_flags(raw_flags)}"
    extra = raw_flags & ~(state.flags_allowed | required)
    if extra:
        return f"flags {_flags(extra)} neither allowed nor required"
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
