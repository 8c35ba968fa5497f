"""Typed explanations: what the model decided and why, as frozen data.

Every reply carries one. ``to_json()`` gives the form transcripts and ``--json`` output carry (rule ids, never
internal references); renderers read the fields, never dictionary keys.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from ringfence.model.rules import Mechanism, Rule


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, bytes and tuples as JSON-ready values (rules as their ids)."""
    if isinstance(value, Rule):
        return value.id
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None or item == () or (f.name == "detail" and not item):
                continue
            out[f.name] = jsonable(item)
        rule = getattr(value, "rule", None)
        if isinstance(rule, Rule):
            out["mechanism"] = rule.mechanism.value
        return out
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ClassicView:
    """A restriction state's classic part."""

    origin: str
    sqe_side: bool
    register_side: bool
    sqe_ops: tuple[str, ...]
    register_ops: tuple[str, ...]
    flags_allowed: int
    flags_required: int


@dataclass(frozen=True, slots=True)
class TableView:
    """A filter table: chains by opcode name (newest first) and DENY_REST markers standing alone."""

    label: str
    cow: bool
    chains: tuple[tuple[str, tuple[str, ...]], ...]
    #: (which registration placed the marker, how many opcodes hold only it)
    markers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class StateView:
    """A task's or ring's restriction state."""

    classic: ClassicView | None = None
    filters: TableView | None = None


@dataclass(frozen=True, slots=True)
class RingView:
    name: str
    created_by: str
    disabled: bool
    op_restricted: bool
    reg_restricted: bool
    state: StateView
    submission_filters: str | None = None


@dataclass(frozen=True, slots=True)
class InstallView:
    """What installing one filter did."""

    table: str
    filter: str
    table_created: bool
    copied_from: str | None
    deny_rest_filled: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a call (other than ``io_uring_enter``) ended as it did, and the state it left."""

    rule: Rule
    detail: str = ""
    state: StateView | None = None
    ring: RingView | None = None
    install: InstallView | None = None
    inherited_from: str | None = None
    closed: tuple[str, ...] = ()
    uid: int | None = None
    pdu_size_written: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True, slots=True)
class ProgramVerdict:
    """One chain element's part in a decision: a program's return value, or the DENY_REST marker."""

    position: int
    filter: str
    marker: bool
    value: int | None
    instructions: int
    inherited: bool

    @property
    def allowed(self) -> bool:
        return not self.marker and self.value is not None and self.value != 0


@dataclass(frozen=True, slots=True)
class FilterRun:
    """The filters a request met: the table, the context they read (None when none was built), the request flags
    they saw, and each program that ran, newest first, up to the first denial."""

    table: str
    context: bytes | None
    flags_seen: int | None
    chain: tuple[ProgramVerdict, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one SQE at request init: passed (``errno`` None), or the errno and the rule that failed it.

    ``flags`` are the request flags after init and prep (what filters see, low seven bits).
    """

    rule: Rule
    errno: str | None = None
    detail: str = ""
    flags: int = 0
    filters: FilterRun | None = None

    @property
    def allowed(self) -> bool:
        return self.errno is None

    @property
    def mechanism(self) -> Mechanism:
        return self.rule.mechanism

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """One consumed SQE: its init decision, then what it completed with and whether a CQE was posted."""

    user_data: int
    opcode: str
    decision: Decision
    result: str
    cqe: bool
    rule: Rule
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SubmitExplanation:
    """An ``io_uring_enter`` call: its own rule, how many SQEs it consumed, and every request it completed."""

    rule: Rule
    detail: str = ""
    submitted: int | None = None
    left_pending: int = 0
    requests: tuple[RequestOutcome, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out
