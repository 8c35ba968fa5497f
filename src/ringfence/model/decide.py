"""One SQE's fate at request init (spec §8.1 steps 2-10): the single question policies, audits and diffs ask.

:func:`decide` answers it for a :class:`RingState` without changing anything; the submission path
(:mod:`ringfence.model.submit`) asks :func:`init_request`, which also returns the drain bookkeeping the steps
before the classic check leave on the ring whatever the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi.ctx import BpfCtx
from ringfence.abi.opcodes import SQE_VALID_FLAGS, SetupFlag, SqeFlag, op_name
from ringfence.abi.profiles import KernelProfile
from ringfence.abi.sqe import Sqe
from ringfence.model.explain import Decision, FilterRun
from ringfence.model.filters import FilterTable, run_chain
from ringfence.model.outcome import Refused
from ringfence.model.prep import BUFFER_SELECT_OPS, IOPOLL_OPS, populate, prep
from ringfence.model.restriction import RestrictionState, sqe_denial
from ringfence.model.rules import Rule

#: ``SQE_COMMON_FLAGS``: flags that need no extra validation in request init.
COMMON_FLAGS: Final = int(SqeFlag.FIXED_FILE | SqeFlag.IO_LINK | SqeFlag.IO_HARDLINK | SqeFlag.ASYNC)
_ASYNC: Final = int(SqeFlag.ASYNC)
_DRAIN: Final = int(SqeFlag.IO_DRAIN)
_SKIP: Final = int(SqeFlag.CQE_SKIP_SUCCESS)
_BUFFER_SELECT: Final = int(SqeFlag.BUFFER_SELECT)
_IOPOLL: Final = int(SetupFlag.IOPOLL)


@dataclass(frozen=True, slots=True)
class RingState:
    """Everything request init depends on: the ring's classic restrictions (None unless its SQE side is
    restricted), its filter table (the hot-path cache), setup flags, and the submission state.

    ``owner`` labels the filters the ring registered itself (others read as inherited). ``in_chain`` says a link
    chain is open in the current ``io_uring_enter`` call; ``drain_*`` mirror the ring's drain bookkeeping;
    ``personalities`` counts the personalities registered on the ring (ids 1..n).
    """

    classic: RestrictionState | None = None
    filters: FilterTable | None = None
    setup_flags: int = 0
    owner: str = ""
    drain_disabled: bool = False
    drain_active: bool = False
    drain_next: bool = False
    in_chain: bool = False
    personalities: int = 0


@dataclass(frozen=True, slots=True)
class Effects:
    """What init leaves on the ring whatever its outcome; ``mark_head``: the open chain's head becomes a drain
    request (a drain SQE joined the chain)."""

    drain_disabled: bool
    drain_active: bool
    drain_next: bool
    mark_head: bool


def decide(state: RingState, sqe: Sqe, profile: KernelProfile, *, detail: bool = True) -> Decision:
    """Would request init pass ``sqe`` on a ring in ``state``? Which rule decides, and what the filters saw.

    ``detail`` runs the filters step by step to count instructions (slower; same verdicts).
    """
    return init_request(state, sqe, profile, detail=detail)[0]


def init_request(state: RingState, sqe: Sqe, profile: KernelProfile, *,
                 detail: bool = True) -> tuple[Decision, Effects]:
    """§8.1 steps 2-10 in order; the decision and the drain effects (kept even when the request fails)."""
    walk = _Init(state)
    try:
        decision = walk.run(sqe, profile, detail)
    except Refused as exc:
        decision = Decision(exc.rule, exc.errno, exc.detail, walk.flags, walk.filters)
    return decision, Effects(walk.drain_disabled, walk.drain_active, walk.drain_next, walk.mark_head)


class _Init:
    """One pass of request init: the request flags and the ring's drain bookkeeping as the steps change them."""

    def __init__(self, state: RingState) -> None:
        self.state = state
        self.flags = 0
        self.drain_disabled = state.drain_disabled
        self.drain_active = state.drain_active
        self.drain_next = state.drain_next
        self.mark_head = False
        self.filters: FilterRun | None = None

    def run(self, sqe: Sqe, profile: KernelProfile, detail: bool) -> Decision:
        state, op = self.state, sqe.opcode
        raw = self.flags = sqe.flags & 0xFF
        if not 0 <= op < profile.op_last:
            raise Refused("EINVAL", Rule.SQE_OPCODE, f"opcode {op}; this kernel has {profile.op_last}")
        if raw & ~COMMON_FLAGS:
            if raw & ~SQE_VALID_FLAGS:
                raise Refused("EINVAL", Rule.SQE_FLAGS, f"bits {raw & ~SQE_VALID_FLAGS:#x}")
            if raw & _BUFFER_SELECT and op not in BUFFER_SELECT_OPS:
                raise Refused("EOPNOTSUPP", Rule.SQE_BUFFER_SELECT, op_name(op))
            if raw & _SKIP:
                self.drain_disabled = True
            if raw & _DRAIN:
                if self.drain_disabled:
                    raise Refused("EOPNOTSUPP", Rule.SQE_DRAIN_DISABLED)
                self.drain_active = True
                if state.in_chain:
                    self.mark_head = True
                    self.drain_next = True
        if state.classic is not None:
            denial = sqe_denial(state.classic, op, raw)
            if denial is not None:
                raise denial
        if self.drain_active:
            self.flags |= _ASYNC
        if self.drain_next and not state.in_chain:
            self.drain_next = False
            self.drain_active = True
            self.flags |= _DRAIN | _ASYNC
        if state.setup_flags & _IOPOLL and op not in IOPOLL_OPS:
            raise Refused("EINVAL", Rule.SQE_IOPOLL, op_name(op))
        if sqe.personality and sqe.personality > state.personalities:
            raise Refused("EINVAL", Rule.SQE_PERSONALITY, f"personality {sqe.personality}; the ring has "
                                                          f"{state.personalities}")
        self.flags |= prep(sqe)
        if state.filters is not None:
            self._filters(state.filters, sqe, profile, detail)
        return Decision(Rule.PASSED, None, "", self.flags, self.filters)

    def _filters(self, table: FilterTable, sqe: Sqe, profile: KernelProfile, detail: bool) -> None:
        """§6.4: the context is built once, and only if the chain's head is a real filter (§7.1)."""
        head = table.heads[sqe.opcode]
        ctx: bytes | None = None
        seen: int | None = None
        if head is not None and not head.is_marker:
            pdu, payload = populate(sqe, profile)
            seen = self.flags & SQE_VALID_FLAGS
            ctx = BpfCtx(sqe.user_data, sqe.opcode, seen, pdu, payload).pack()
        verdict = run_chain(head, ctx, detail=detail)
        chain = tuple(r.view(self.state.owner) for r in verdict.runs)
        self.filters = FilterRun(table.label, ctx, seen, chain)
        if not verdict.allowed:
            last = verdict.runs[-1]
            if last.node.is_marker:
                raise Refused("EACCES", Rule.FILTER_DENY_REST, last.node.origin)
            raise Refused("EACCES", Rule.FILTER_DENIED, f"chain position {last.position}")
