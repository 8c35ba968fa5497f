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
from typing import Final

from ringfence.abi.opcodes import SetupFlag, SqeFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.model.decide import RingState, init_request
from ringfence.model.explain import Decision, RequestOutcome, SubmitExplanation
from ringfence.model.outcome import OK, Refused, SubmitReply, Submitted, spelling
from ringfence.model.prep import NO_FAIL_ON_ERROR
from ringfence.model.register import check_submitter
from ringfence.model.ring import Ring, Submission
from ringfence.model.rules import Rule
from ringfence.model.task import Task

LINK_FLAGS: Final = int(SqeFlag.IO_LINK | SqeFlag.IO_HARDLINK)
_ASYNC: Final = int(SqeFlag.ASYNC)
_DRAIN: Final = int(SqeFlag.IO_DRAIN)
_SKIP: Final = int(SqeFlag.CQE_SKIP_SUCCESS)
_HARDLINK: Final = int(SqeFlag.IO_HARDLINK)
_SQPOLL: Final = int(SetupFlag.SQPOLL)
_SUBMIT_ALL: Final = int(SetupFlag.SUBMIT_ALL)


@dataclass(slots=True, eq=False)
class Request:
    """An ``io_kiocb`` while it is initialised, linked and completed."""

    submission: Submission
    decision: Decision
    flags: int
    errno: str | None = None          # REQ_F_FAIL with this result (set at init, or ECANCELED on a head)
    rule: Rule = Rule.PASSED
    detail: str = ""
    skip_link_cqes: bool = False      # REQ_F_SKIP_LINK_CQES
    result: str = ""
    cqe: bool = False

    def set_fail(self, errno: str, rule: Rule, detail: str = "") -> None:
        """``req_fail_link_node()``: mark failed; CQE_SKIP turns into "skip the links' CQEs"."""
        self.errno, self.rule, self.detail = errno, rule, detail
        if self.flags & _SKIP:
            self.flags &= ~_SKIP
            self.skip_link_cqes = True

    def outcome(self) -> RequestOutcome:
        sqe = self.submission.sqe
        return RequestOutcome(sqe.user_data, sqe.name, self.decision, self.result, self.cqe, self.rule, self.detail)


@dataclass(slots=True)
class Batch:
    """``io_submit_state`` for one ``io_submit_sqes()`` call."""

    consumed: int = 0
    head: Request | None = None
    chain: list[Request] = field(default_factory=list)
    done: list[Request] = field(default_factory=list)
    chain_start: int = 0


def ring_state(ring: Ring, *, in_chain: bool = False) -> RingState:
    """What request init on ``ring`` depends on, now."""
    return RingState(ring.state if ring.op_restricted else None, ring.cache, ring.setup_flags, ring.owner,
                     ring.drain_disabled, ring.drain_active, ring.drain_next, in_chain, ring.personalities)


class Submitter:
    """Runs ``io_uring_enter`` for one ring. ``detail`` records instruction counts (slower) for explanations."""

    def __init__(self, profile: KernelProfile, *, detail: bool = True) -> None:
        self.profile = profile
        self.detail = detail

    def enter(self, task: Task, ring: Ring | None, submissions: tuple[Submission, ...]) -> SubmitReply:
        """Queue ``submissions`` and submit everything pending (§8.4 for the call's own errors).

        The caller keeps the queue within the ring's submission-queue size.
        """
        if ring is None:
            return SubmitReply(Submitted("EBADF"), SubmitExplanation(Rule.ENTER_BAD_FD))
        ring.pending.extend(submissions)
        try:
            if ring.disabled:
                raise Refused("EBADFD", Rule.ENTER_DISABLED)
            if not ring.has(_SQPOLL):
                check_submitter(ring, task)
        except Refused as exc:
            return SubmitReply(Submitted(exc.errno), SubmitExplanation(exc.rule, exc.detail,
                                                                       left_pending=len(ring.pending)))
        task.has_tctx = True
        to_submit = len(ring.pending)
        done: list[Request] = []
        submitted = self._submit_sqes(ring, done)
        if ring.has(_SQPOLL):  # the poller thread keeps going on its own [UNCONFIRMED]
            while ring.pending:
                self._submit_sqes(ring, done)
            submitted = to_submit
        cqes = tuple((r.submission.sqe.user_data, r.result) for r in done if r.cqe)
        explanation = SubmitExplanation(Rule.ENTER_OK, "", submitted, len(ring.pending),
                                        tuple(r.outcome() for r in done))
        return SubmitReply(Submitted(submitted, cqes), explanation)

    # -- io_submit_sqes / io_submit_sqe -------------------------------------------------------------------------

    def _submit_sqes(self, ring: Ring, done: list[Request]) -> int:
        batch = Batch(done=done)
        stop = False
        while ring.pending and not stop:
            req = self._init(ring, ring.pending.pop(0), batch)
            batch.done.append(req)
            stop = self._link(ring, req, batch) and not ring.has(_SUBMIT_ALL)
            batch.consumed += 1
        if batch.head is not None:  # io_submit_state_end(): flush a chain left open [DERIVED]
            chain, batch.head, batch.chain = batch.chain, None, []
            self._fallback(ring, chain, batch.chain_start)
        return batch.consumed

    def _init(self, ring: Ring, submission: Submission, batch: Batch) -> Request:
        """§8.1 steps 2-10 for one SQE; a failure is recorded on the request, never raised."""
        decision, effects = init_request(ring_state(ring, in_chain=batch.head is not None), submission.sqe,
                                         self.profile, detail=self.detail)
        ring.drain_disabled, ring.drain_active, ring.drain_next = (effects.drain_disabled, effects.drain_active,
                                                                   effects.drain_next)
        if effects.mark_head and batch.head is not None:
            batch.head.flags |= _DRAIN | _ASYNC
        req = Request(submission, decision, decision.flags)
        if decision.errno is not None:
            req.set_fail(decision.errno, decision.rule, decision.detail)
        return req

    def _link(self, ring: Ring, req: Request, batch: Batch) -> bool:
        """``io_submit_sqe()`` after init; returns True iff the submission loop must stop (§8.2)."""
        head = batch.head
        if req.errno is not None:  # io_submit_fail_init()
            if head is not None and head.errno is None:
                head.set_fail("ECANCELED", Rule.CANCELLED,
                              f"member user_data {req.submission.sqe.user_data} failed at init")
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
            declared = req.submission.result
            result = declared if declared == OK else spelling(declared)
            req.rule = Rule.RAN
            if result == OK:
                self._post(req, OK, skip=bool(req.flags & _SKIP))
                continue
            if req.submission.sqe.opcode in NO_FAIL_ON_ERROR and result != "EBADF":
                req.detail = "an error this opcode reports without failing the request: links go on"
                self._post(req, result, skip=bool(req.flags & _SKIP))
                continue
            req.set_fail(result, Rule.RAN, "the operation ran and failed")
            self._post(req, result)
            if not req.flags & _HARDLINK:
                self._cancel(chain[i + 1:], ignore_cqes=req.skip_link_cqes)
                return

    def _cancel(self, members: list[Request], *, ignore_cqes: bool) -> None:
        """``io_fail_links()`` + ``io_req_tw_fail_links()``: own error if failed, else ECANCELED."""
        for req in members:
            if req.errno is None:
                req.errno, req.rule = "ECANCELED", Rule.CANCELLED
            self._post(req, req.errno, skip=ignore_cqes)
            if ignore_cqes:
                note = "no CQE: the failing request had CQE_SKIP_SUCCESS"
                req.detail = f"{req.detail}; {note}" if req.detail else note

    def _post(self, req: Request, result: str, *, skip: bool = False) -> None:
        req.result = result
        req.cqe = not skip
