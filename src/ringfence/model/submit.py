"""``io_uring_enter``: the per-SQE pipeline (spec §8.1), link assembly and failure handling (§8.2, §8.3).

Kernel facts beyond the spec, read from ``io_uring/io_uring.c`` and ``timeout.c`` and marked [DERIVED]:

* a chain still open when the batch ends (its last SQE carries IO_LINK) is flushed by
  ``io_submit_state_end()`` through the fallback path: it runs if its head is not failed, and fails as a
  whole otherwise;
* when a request is failed, ``req_set_fail()`` moves its CQE_SKIP_SUCCESS to "skip the CQEs of the links
  it cancels": so cancelled members post no CQE if the request that cancelled them had CQE_SKIP_SUCCESS;
* at execution, an error that marks the request failed cancels the rest of the chain unless the request
  is hard-linked; some opcodes (FSYNC, ...) report errors without marking failure (:data:`prep.NO_FAIL_ON_ERROR`);
* drain: a DRAIN SQE sets ``drain_active``; while it is set every request is forced async (filters see
  IOSQE_ASYNC); it is cleared when a later non-drain request is queued through the fallback path as the
  first request of an ``io_uring_enter`` call (only then is the defer list empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ringfence.abi.ctx import BpfCtx
from ringfence.abi.opcodes import SQE_VALID_FLAGS, SetupFlag, SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import ScenarioError
from ringfence.model.filters import FilterNode, run_chain
from ringfence.model.outcome import OK, Refused, spelling
from ringfence.model.prep import BUFFER_SELECT_OPS, IOPOLL_OPS, NO_FAIL_ON_ERROR, populate, prep
from ringfence.model.register import check_submitter
from ringfence.model.restriction import sqe_denial
from ringfence.model.ring import Ring
from ringfence.model.task import Task
from ringfence.scenario.steps import Sqe
from ringfence.scenario.transcript import SubmitResult

LINK_FLAGS: Final = int(SqeFlag.IO_LINK | SqeFlag.IO_HARDLINK)
#: ``SQE_COMMON_FLAGS``: flags that need no extra validation in request init.
COMMON_FLAGS: Final = int(SqeFlag.FIXED_FILE | SqeFlag.IO_LINK | SqeFlag.IO_HARDLINK | SqeFlag.ASYNC)
_ASYNC: Final = int(SqeFlag.ASYNC)
_DRAIN: Final = int(SqeFlag.IO_DRAIN)
_SKIP: Final = int(SqeFlag.CQE_SKIP_SUCCESS)
_HARDLINK: Final = int(SqeFlag.IO_HARDLINK)
_BUFFER_SELECT: Final = int(SqeFlag.BUFFER_SELECT)
_SQPOLL: Final = int(SetupFlag.SQPOLL)
_SUBMIT_ALL: Final = int(SetupFlag.SUBMIT_ALL)
_IOPOLL: Final = int(SetupFlag.IOPOLL)


@dataclass(slots=True, eq=False)
class Request:
    """An ``io_kiocb`` while it is initialised, linked and completed."""

    sqe: Sqe
    flags: int
    errno: str | None = None          # REQ_F_FAIL with this result (set at init, or ECANCELED on a head)
    mechanism: str = ""
    rule: str = ""
    detail: str = ""
    skip_link_cqes: bool = False      # REQ_F_SKIP_LINK_CQES
    filters: dict[str, Any] | None = None
    result: str = ""
    cqe: bool = False

    def set_fail(self, errno: str, mechanism: str, rule: str, detail: str = "") -> None:
        """``req_fail_link_node()``: mark failed; CQE_SKIP turns into "skip the links' CQEs"."""
        self.errno, self.mechanism, self.rule, self.detail = errno, mechanism, rule, detail
        if self.flags & _SKIP:
            self.flags &= ~_SKIP
            self.skip_link_cqes = True

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user_data": self.sqe.user_data, "opcode": _op_name(self.sqe.opcode),
                               "result": self.result, "cqe": self.cqe, "decided_by": self.mechanism,
                               "rule": self.rule}
        if self.detail:
            out["detail"] = self.detail
        if self.filters is not None:
            out["filters"] = self.filters
        return out


_OP_NAMES: Final = tuple(op.name for op in SqeOp)


def _op_name(op: int) -> str:
    return _OP_NAMES[op] if 0 <= op < len(_OP_NAMES) else str(op)


@dataclass(slots=True)
class Batch:
    """``io_submit_state`` for one ``io_submit_sqes()`` call."""

    consumed: int = 0
    head: Request | None = None
    chain: list[Request] = field(default_factory=list)
    done: list[Request] = field(default_factory=list)
    chain_start: int = 0


@dataclass(frozen=True, slots=True)
class SubmitReply:
    """``io_uring_enter``'s outcome: ``submitted`` is a count, or an errno name when the call failed."""

    result: SubmitResult
    explain: dict[str, Any]


class Submitter:
    """Runs ``io_uring_enter`` for one ring. ``detail`` records instruction counts (slower) for explanations."""

    def __init__(self, profile: KernelProfile, *, detail: bool = True) -> None:
        self.profile = profile
        self.detail = detail

    def enter(self, task: Task, ring: Ring | None, sqes: tuple[Sqe, ...]) -> SubmitReply:
        """Queue ``sqes`` and submit everything pending (§8.4 for the call's own errors)."""
        if ring is None:
            return SubmitReply(SubmitResult("EBADF"), {"result": "EBADF", "rule": "io_uring_enter: fd resolution",
                                                       "detail": "the ring is not open in this process"})
        if len(ring.pending) + len(sqes) > ring.sq_entries:
            raise ScenarioError(f"ring {ring.name}: {len(ring.pending)} pending + {len(sqes)} new SQEs exceed the "
                                f"{ring.sq_entries}-entry submission queue")
        ring.pending.extend(sqes)
        try:
            if ring.disabled:
                raise Refused("EBADFD", "§8.4 io_uring_enter", "ring is still R_DISABLED")
            if not ring.has(_SQPOLL):
                check_submitter(ring, task, "io_uring_enter: SINGLE_ISSUER")
        except Refused as exc:
            return SubmitReply(SubmitResult(exc.errno), {**exc.explain(), "pending": len(ring.pending)})
        task.has_tctx = True
        to_submit = len(ring.pending)
        done: list[Request] = []
        submitted = self._submit_sqes(ring, done)
        if ring.has(_SQPOLL):  # the poller thread keeps going on its own [UNCONFIRMED]
            while ring.pending:
                self._submit_sqes(ring, done)
            submitted = to_submit
        cqes = tuple((r.sqe.user_data, r.result) for r in done if r.cqe)
        explain = {"submitted": submitted, "left_pending": len(ring.pending), "sqes": [r.explain() for r in done]}
        return SubmitReply(SubmitResult(submitted, cqes), explain)

    # -- io_submit_sqes / io_submit_sqe -------------------------------------------------------------------------

    def _submit_sqes(self, ring: Ring, done: list[Request]) -> int:
        batch = Batch(done=done)
        stop = False
        while ring.pending and not stop:
            sqe = ring.pending.pop(0)
            req = self._init(ring, sqe, batch)
            batch.done.append(req)
            stop = self._link(ring, req, batch) and not ring.has(_SUBMIT_ALL)
            batch.consumed += 1
        if batch.head is not None:  # io_submit_state_end(): flush a chain left open [DERIVED]
            chain, batch.head, batch.chain = batch.chain, None, []
            self._fallback(ring, chain, batch.chain_start)
        return batch.consumed

    def _link(self, ring: Ring, req: Request, batch: Batch) -> bool:
        """``io_submit_sqe()`` after init; returns True iff the submission loop must stop (§8.2)."""
        head = batch.head
        if req.errno is not None:  # io_submit_fail_init()
            if head is not None and head.errno is None:
                head.set_fail("ECANCELED", "cancelled-link", "§8.3 chain head failed by a later member",
                              f"member user_data {req.sqe.user_data} failed")
            if not req.flags & LINK_FLAGS:
                if head is not None:
                    chain, batch.head, batch.chain = [*batch.chain, req], None, []
                    self._fallback(ring, chain, batch.chain_start)
                else:
                    self._fallback(ring, [req], batch.consumed)
                return True
            if head is None:
                batch.head, batch.chain, batch.chain_start = req, [req], batch.consumed
            else:
                batch.chain.append(req)
            return False
        if head is not None:
            batch.chain.append(req)
            if req.flags & LINK_FLAGS:
                return False
            chain, batch.head, batch.chain = batch.chain, None, []
            if head.flags & _ASYNC or head.errno is not None:
                self._fallback(ring, chain, batch.chain_start)
            else:
                self._complete(chain)
            return False
        if req.flags & LINK_FLAGS:
            batch.head, batch.chain, batch.chain_start = req, [req], batch.consumed
        elif req.flags & _ASYNC:
            self._fallback(ring, [req], batch.consumed)
        else:
            self._complete([req])
        return False

    def _fallback(self, ring: Ring, chain: list[Request], position: int) -> None:
        """``io_queue_sqe_fallback()``: fail a failed chain, or queue it (through drain while draining).

        ``position`` is where the chain's head sits in this call's batch: only the first request of a call
        finds the defer list empty, so only it can end a drain [DERIVED].
        """
        head = chain[0]
        if head.errno is None and ring.drain_active and position == 0 and not head.flags & _DRAIN:
            ring.drain_active = False
        self._complete(chain)

    # -- completion -------------------------------------------------------------------------------------------

    def _complete(self, chain: list[Request]) -> None:
        head = chain[0]
        if head.errno is not None:  # §8.3: nothing runs; head first, then io_fail_links(head)
            self._post(head, head.errno)
            self._cancel(chain[1:], ignore_cqes=head.skip_link_cqes)
            return
        for i, req in enumerate(chain):
            result = req.sqe.result if req.sqe.result == OK else spelling(req.sqe.result)
            req.mechanism, req.rule = "executed", "declared result (the operation ran)"
            if result == OK:
                self._post(req, OK, skip=bool(req.flags & _SKIP))
                continue
            if req.sqe.opcode in NO_FAIL_ON_ERROR and result != "EBADF":
                req.detail = "error without REQ_F_FAIL: does not break links [DERIVED]"
                self._post(req, result, skip=bool(req.flags & _SKIP))
                continue
            req.set_fail(result, "executed", "declared result (the operation ran and failed)")
            self._post(req, result)
            if not req.flags & _HARDLINK:
                self._cancel(chain[i + 1:], ignore_cqes=req.skip_link_cqes)
                return

    def _cancel(self, members: list[Request], *, ignore_cqes: bool) -> None:
        """``io_fail_links()`` + ``io_req_tw_fail_links()``: own error if failed, else ECANCELED."""
        for req in members:
            if req.errno is None:
                req.errno, req.mechanism, req.rule = "ECANCELED", "cancelled-link", "§8.3 linked to a failed request"
            self._post(req, req.errno, skip=ignore_cqes)
            if ignore_cqes:
                req.detail = (req.detail + "; " if req.detail else "") + \
                    "CQE suppressed: the failing request had CQE_SKIP_SUCCESS [DERIVED]"

    def _post(self, req: Request, result: str, *, skip: bool = False) -> None:
        req.result = result
        req.cqe = not skip

    # -- io_init_req + filters -----------------------------------------------------------------------------

    def _init(self, ring: Ring, sqe: Sqe, batch: Batch) -> Request:
        """§8.1 steps 2-10 for one SQE; a failure is recorded on the request, never raised."""
        req = Request(sqe, sqe.flags & 0xFF)
        try:
            self._init_checks(ring, req, batch)
        except Refused as exc:
            req.set_fail(exc.errno, _mechanism(exc.rule), exc.rule, exc.detail)
        return req

    def _init_checks(self, ring: Ring, req: Request, batch: Batch) -> None:
        sqe, op, raw = req.sqe, req.sqe.opcode, req.flags
        if not 0 <= op < self.profile.op_last:
            raise Refused("EINVAL", "§8.1 step 2", f"opcode {op} >= IORING_OP_LAST ({self.profile.op_last})")
        if raw & ~COMMON_FLAGS:
            if raw & ~SQE_VALID_FLAGS:
                raise Refused("EINVAL", "§8.1 step 3", f"flag bits {raw & ~SQE_VALID_FLAGS:#x} outside 0x7f")
            if raw & _BUFFER_SELECT and op not in BUFFER_SELECT_OPS:
                raise Refused("EOPNOTSUPP", "§8.1 step 4", f"{_op_name(op)} has no buffer selection")
            if raw & _SKIP:
                ring.drain_disabled = True
            if raw & _DRAIN:
                if ring.drain_disabled:
                    raise Refused("EOPNOTSUPP", "§8.1 step 5", "IO_DRAIN after CQE_SKIP_SUCCESS disabled drain")
                ring.drain_active = True
                if batch.head is not None:
                    batch.head.flags |= _DRAIN | _ASYNC
                    ring.drain_next = True
        if ring.op_restricted:
            why = sqe_denial(ring.state, op, raw)
            if why is not None:
                origin = ring.state.origin or "ring records"
                raise Refused("EACCES", "§8.1 step 6 / §3.6 classic check", f"{why} ({origin})")
        if ring.drain_active:
            req.flags |= _ASYNC
        if ring.drain_next and batch.head is None:
            ring.drain_next = False
            ring.drain_active = True
            req.flags |= _DRAIN | _ASYNC
        if ring.has(_IOPOLL) and op not in IOPOLL_OPS:
            raise Refused("EINVAL", "§8.1 step 7", f"{_op_name(op)} has no IOPOLL support")
        req.flags |= prep(sqe)
        if ring.cache is not None:
            self._filters(ring, req, ring.cache.heads[op])

    def _filters(self, ring: Ring, req: Request, head: FilterNode | None) -> None:
        """§8.1 step 10 / §6.4, with the context built once and only if the head is a real filter (§7.1)."""
        assert ring.cache is not None
        ctx: bytes | None = None
        info: dict[str, Any] = {"table": ring.cache.label}
        if head is not None and not head.is_marker:
            sqe = req.sqe
            pdu, payload = populate(sqe, self.profile)
            ctx = BpfCtx(sqe.user_data & (2**64 - 1), sqe.opcode, req.flags & SQE_VALID_FLAGS, pdu, payload).pack()
            info["context"] = ctx.hex()
            info["sqe_flags_seen"] = req.flags & SQE_VALID_FLAGS
        verdict = run_chain(head, ctx, detail=self.detail)
        own = f"ring {ring.name}"
        info["chain"] = [{**r.explain(), "inherited": r.node.owner != own} for r in verdict.runs]
        req.filters = info
        if not verdict.allowed:
            last = verdict.runs[-1]
            raise Refused("EACCES", "§8.1 step 10 / §6.4 filter",
                          "DENY_REST marker" if last.node.is_marker else
                          f"filter at chain position {last.position} returned 0")


def _mechanism(rule: str) -> str:
    if "step 6" in rule:
        return "classic"
    if "step 9" in rule:
        return "prep"
    if "step 10" in rule:
        return "filter"
    return "validity"
