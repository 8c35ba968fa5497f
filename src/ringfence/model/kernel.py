"""The modelled kernel: tasks, processes, rings, and one method per system call the sandbox observes.

Methods take kernel records (:mod:`ringfence.abi`) and names for tasks and rings, and return
:class:`~ringfence.model.outcome.Reply` / :class:`~ringfence.model.outcome.SubmitReply`. A task or ring name the
caller never introduced is a programming error (``KeyError``); a real ring that the acting process has no
descriptor for is the kernel's ``EBADF``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Final

from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
from ringfence.abi.opcodes import RegisterOp, SetupFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.abi.sqe import Sqe
from ringfence.model import register as reg
from ringfence.model.bpfreg import import_filter
from ringfence.model.decide import RingState, decide
from ringfence.model.explain import Decision, Explanation
from ringfence.model.filters import install, share
from ringfence.model.outcome import OK, Refused, Reply, SubmitReply, spelling
from ringfence.model.restriction import RestrictionState
from ringfence.model.ring import Ring, Submission
from ringfence.model.rules import Rule
from ringfence.model.submit import Submitter, ring_state
from ringfence.model.task import Process, Task

#: Setup flags up to ``IORING_SETUP_SQ_REWIND`` (1 << 20); anything above is ``-EINVAL``.
_KNOWN_SETUP: Final = (1 << 21) - 1
IORING_MAX_ENTRIES: Final = 32768

#: The ring a call is aimed at: a ring name, ``None`` for ``fd == -1`` (the task), or a registered-ring index.
Target = str | None


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class QueueFullError(ValueError):
    """More SQEs than the ring's submission queue holds: no caller can queue them (liburing returns NULL)."""


class Kernel:
    """One kernel of the given profile, starting with a single task ``main`` (root, no no_new_privs)."""

    def __init__(self, profile: KernelProfile, *, detail: bool = True) -> None:
        self.profile = profile
        self.detail = detail
        self._serials = itertools.count(1)
        self._pids = itertools.count(1)
        self.tasks: dict[str, Task] = {}
        self.rings: dict[str, Ring] = {}
        #: What the next registration's provenance label says (callers set it to their step position).
        self.where = ""
        self._submitter = Submitter(profile, detail=detail)
        self._new_task("main", Process(next(self._pids)))

    # -- lookups -------------------------------------------------------------------------------------------

    def task(self, name: str) -> Task:
        return self.tasks[name]

    def ring_of(self, task: Task, name: str) -> Ring | None:
        """The ring ``name`` as ``task``'s process sees it: None if it has no descriptor for it."""
        if name not in self.rings:
            raise KeyError(f"unknown ring {name!r}")
        return task.process.rings.get(name)

    def _new_task(self, name: str, process: Process) -> Task:
        if not name or name in self.tasks:
            raise KeyError(f"task name {name!r} is empty or already used")
        task = Task(name, process)
        process.tasks.append(task)
        self.tasks[name] = task
        return task

    def _origin(self, who: str) -> str:
        return f"{who}, {self.where}" if self.where else who

    # -- tasks and processes (§4.6) ------------------------------------------------------------------------

    def set_nnp(self, task_name: str) -> Reply:
        self.task(task_name).nnp = True
        return Reply.ok(Explanation(Rule.NNP_SET))

    def drop_privileges(self, task_name: str, uid: int) -> Reply:
        proc = self.task(task_name).process
        if proc.userns:
            return Reply("EPERM", Explanation(Rule.USERNS_UNMAPPED))
        proc.uid = uid
        proc.privileged = proc.privileged and uid == 0
        return Reply.ok(Explanation(Rule.PRIVILEGES_DROPPED, uid=uid))

    def unshare_userns(self, task_name: str) -> Reply:
        """``unshare(CLONE_NEWUSER)`` by a single-threaded process: every capability in the new namespace."""
        proc = self.task(task_name).process
        if proc.userns:
            return Reply("EPERM", Explanation(Rule.USERNS_UNMAPPED))
        proc.privileged = True
        proc.userns += 1
        return Reply.ok(Explanation(Rule.USERNS_ENTERED))

    def _inherit(self, child: Task, parent: Task) -> Explanation:
        """§4.6: a fresh state with copies of the classic part and a copy-on-write share of the table."""
        child.nnp = parent.nnp
        rule = Rule.FORKED if child.process is not parent.process else Rule.THREAD
        if parent.restriction is None:
            return Explanation(rule)
        state = RestrictionState()
        state.copy_classic(parent.restriction)
        share(state, parent.restriction, source_cow=self.profile.source_cow)
        child.restriction = state
        return Explanation(rule, state=state.view(), inherited_from=f"task {parent.name}")

    def fork(self, task_name: str, child_name: str) -> Reply:
        task = self.task(task_name)
        parent = task.process
        proc = Process(next(self._pids), parent.uid, parent.privileged, parent.userns, dict(parent.rings))
        return Reply.ok(self._inherit(self._new_task(child_name, proc), task))

    def spawn_thread(self, task_name: str, thread_name: str) -> Reply:
        task = self.task(task_name)
        return Reply.ok(self._inherit(self._new_task(thread_name, task.process), task))

    def exec(self, task_name: str) -> Reply:
        """``execve``; the caller makes sure the process has one thread (a multithreaded exec is not modelled)."""
        task = self.task(task_name)
        if len(task.process.tasks) != 1:
            raise ValueError(f"exec by {task.name}: its process has {len(task.process.tasks)} threads")
        closed = tuple(sorted(task.process.rings))
        task.process.rings.clear()
        return Reply.ok(Explanation(Rule.EXECED, closed=closed))

    # -- rings ---------------------------------------------------------------------------------------------

    def create_ring(self, task_name: str, name: str, flags: int, entries: int) -> Reply:
        task = self.task(task_name)
        if not name or name in self.rings:
            raise KeyError(f"ring name {name!r} is empty or already used")
        try:
            sq_entries = self._check_setup(flags, entries)
        except Refused as exc:
            self.rings[name] = Ring(name, next(self._serials), flags, 0, "never created")  # a name, no descriptor
            return Reply.refused(exc)
        ring = Ring(name, next(self._serials), flags, sq_entries, self._origin(f"task {task.name}"),
                    disabled=bool(flags & SetupFlag.R_DISABLED))
        self.rings[name] = ring
        if task.restriction is not None:  # §4.5
            parent = task.restriction
            ring.state.copy_classic(parent)
            if parent.has_classic:
                ring.state.origin = f"inherited from task {task.name} ({parent.origin})"
            share(ring.state, parent, source_cow=self.profile.source_cow)
            ring.cache = ring.state.table
            ring.op_restricted = ring.state.op_registered
            ring.reg_restricted = ring.state.reg_registered
        if flags & SetupFlag.SINGLE_ISSUER and not flags & SetupFlag.R_DISABLED:
            ring.submitter = task
        task.process.rings[name] = ring
        task.has_tctx = True
        return Reply.ok(Explanation(Rule.RING_CREATED, ring=ring.view(),
                                    inherited_from=None if task.restriction is None else f"task {task.name}"))

    def _check_setup(self, flags: int, entries: int) -> int:
        """The parts of ``io_uring_setup`` validation the model needs [UNCONFIRMED beyond unknown bits]."""
        if flags & ~_KNOWN_SETUP:
            raise Refused("EINVAL", Rule.SETUP_FLAGS, f"unknown bits {flags & ~_KNOWN_SETUP:#x}")
        if flags & SetupFlag.DEFER_TASKRUN and not flags & SetupFlag.SINGLE_ISSUER:
            raise Refused("EINVAL", Rule.SETUP_FLAGS, "DEFER_TASKRUN needs SINGLE_ISSUER")
        if flags & SetupFlag.DEFER_TASKRUN and flags & SetupFlag.SQPOLL:
            raise Refused("EINVAL", Rule.SETUP_FLAGS, "DEFER_TASKRUN with SQPOLL")
        if entries <= 0:
            raise Refused("EINVAL", Rule.SETUP_ENTRIES, "entries must be positive")
        if entries > IORING_MAX_ENTRIES:
            if not flags & SetupFlag.CLAMP:
                raise Refused("EINVAL", Rule.SETUP_ENTRIES, f"more than {IORING_MAX_ENTRIES}")
            entries = IORING_MAX_ENTRIES
        return _pow2(entries)

    def pass_ring(self, task_name: str, name: str, to: str, via: str) -> Reply:
        """Hand the sender's descriptor of ring ``name`` to the process of task ``to`` (``via`` ``scm_rights`` or
        ``pidfd_getfd``). The ring stays what it is: its restrictions and filters go with it, the receiver's own
        task restrictions never reach it (they are copied only into rings the task creates). Every kernel the model
        knows refuses to send an io_uring descriptor over an AF_UNIX socket (seen on 6.18 and 7.2.13)."""
        sender, receiver = self.task(task_name), self.task(to)
        ring = self.ring_of(sender, name)
        if ring is None:
            return Reply("EBADF", Explanation(Rule.BAD_FD))
        if via == "scm_rights":
            return Reply("EINVAL", Explanation(Rule.RING_NOT_SENDABLE, ring=ring.view()))
        if via == "pidfd_getfd" and (not receiver.process.privileged or receiver.process.userns):
            raise ValueError("the model does not follow ptrace access checks: pidfd_getfd is modelled only for a "
                             "receiver with CAP_SYS_ADMIN outside any user namespace")
        receiver.process.rings[name] = ring
        return Reply.ok(Explanation(Rule.RING_PASSED, ring=ring.view()))

    def close_ring(self, task_name: str, name: str) -> Reply:
        task = self.task(task_name)
        if self.ring_of(task, name) is None:
            return Reply.refused(Refused("EBADF", Rule.CLOSE_NOT_OPEN))
        del task.process.rings[name]
        return Reply.ok(Explanation(Rule.CLOSED))

    # -- io_uring_register ---------------------------------------------------------------------------------

    def _fd(self, task: Task, target: Target, registered: int | None) -> reg.Fd:
        if registered is not None:
            if target is not None:
                self.ring_of(task, target)  # still must be a known name
            return reg.Fd(registered=registered)
        return reg.Fd(blind=True) if target is None else reg.Fd(ring=self.ring_of(task, target))

    def _register(self, task: Task, fd: reg.Fd, opcode: int, handler: Callable[[Ring | None], Reply]) -> Reply:
        try:
            ring = reg.dispatch(self.profile, task, fd, opcode)
            return handler(ring)
        except Refused as exc:
            return Reply.refused(exc)

    def _blind_supported(self, opcode: RegisterOp) -> None:
        if opcode not in self.profile.blind_ops:
            raise Refused("EINVAL", Rule.BLIND_UNSUPPORTED, opcode.name)

    def enable(self, task_name: str, target: Target, *, has_arg: bool = False, nr_args: int = 0,
               registered: int | None = None) -> Reply:
        """``IORING_REGISTER_ENABLE_RINGS``."""
        task = self.task(task_name)
        bit = reg.USE_REGISTERED_RING if registered is not None else 0

        def handler(ring: Ring | None) -> Reply:
            if ring is None:
                raise Refused("EINVAL", Rule.BLIND_UNSUPPORTED, "ENABLE_RINGS")
            reg.enable_rings(self.profile, ring, task, has_arg=has_arg, nr_args=nr_args)
            return Reply.ok(Explanation(Rule.ENABLED, ring=ring.view()))

        return self._register(task, self._fd(task, target, registered), RegisterOp.ENABLE_RINGS | bit, handler)

    def restrict(self, task_name: str, target: Target, records: Sequence[Restriction], *,
                 header: TaskRestrictionHeader | None = None, nr_args: int | None = None,
                 null: bool = False) -> Reply:
        """``IORING_REGISTER_RESTRICTIONS`` on a ring (``nr_args`` is the record count, default all of
        ``records``) or on the task (``target`` None: ``header`` defaults to the ordinary one, ``nr_args`` to 1)."""
        task = self.task(task_name)

        def handler(ring: Ring | None) -> Reply:
            if ring is None:
                self._blind_supported(RegisterOp.RESTRICTIONS)
                head = header or TaskRestrictionHeader(len(records))
                task.restriction = reg.task_restrictions(self.profile, task, records, head,
                                                         nr_args=1 if nr_args is None else nr_args, null=null,
                                                         origin=self._origin(f"task {task.name}"))
                return Reply.ok(Explanation(Rule.TASK_RESTRICTED, state=task.restriction.view()))
            count = len(records) if nr_args is None else nr_args
            reg.ring_restrictions(self.profile, ring, records, count, null=null,
                                  origin=self._origin(f"ring {ring.name}"))
            return Reply.ok(Explanation(Rule.RING_RESTRICTED, ring=ring.view()))

        return self._register(task, self._fd(task, target, None), RegisterOp.RESTRICTIONS, handler)

    def register_filter(self, task_name: str, target: Target, registration: FilterRegistration | None, *,
                        nr_args: int = 1) -> Reply:
        """Ring or task ``IORING_REGISTER_BPF_FILTER``; ``registration`` None is a NULL argument.

        ``pdu_size_out`` is the caller's ``filter.pdu_size`` byte after the call: the kernel's size once the
        size check is reached (§5.4), else the unchanged input.
        """
        task = self.task(task_name)
        pdu: list[int] = [0 if registration is None else registration.pdu_size & 0xFF]
        written = [False]

        def handler(ring: Ring | None) -> Reply:
            if ring is None:
                self._blind_supported(RegisterOp.BPF_FILTER)
                if not task.passes_gate():
                    raise Refused("EACCES", Rule.PRIVILEGE_GATE)
            if nr_args != 1:
                raise Refused("EINVAL", Rule.FILTER_NR_ARGS, f"nr_args {nr_args}")
            imported = import_filter(self.profile, registration)
            if imported.pdu_size_out is not None:
                pdu[0], written[0] = imported.pdu_size_out, True
            if imported.refused is not None:
                raise imported.refused
            assert imported.program is not None and registration is not None
            serial = next(self._serials)
            if ring is None:
                state = task.restriction or RestrictionState()
                done = install(state, registration.opcode, imported.program, registration.flags,
                               origin=self._origin(f"task {task.name}"), op_last=self.profile.op_last, serial=serial)
                task.restriction = state
                return Reply.ok(Explanation(Rule.FILTER_INSTALLED, install=done.view(), state=state.view()))
            done = install(ring.state, registration.opcode, imported.program, registration.flags,
                           origin=self._origin(ring.owner), op_last=self.profile.op_last, serial=serial)
            ring.cache = ring.state.table
            return Reply.ok(Explanation(Rule.FILTER_INSTALLED, install=done.view(), ring=ring.view()))

        reply = self._register(task, self._fd(task, target, None), RegisterOp.BPF_FILTER, handler)
        explanation = Explanation(reply.explanation.rule, reply.explanation.detail, reply.explanation.state,
                                  reply.explanation.ring, reply.explanation.install, pdu_size_written=written[0])
        return Reply(reply.result, explanation, pdu[0])

    def register(self, task_name: str, target: Target, opcode: int, *, result: str = OK,
                 registered: int | None = None) -> Reply:
        """Any other register opcode: the restriction layer is modelled; the opcode's own handler answers
        ``result`` (the model performs no registration)."""
        task = self.task(task_name)
        opcode &= ~reg.USE_REGISTERED_RING
        if opcode in (RegisterOp.RESTRICTIONS, RegisterOp.BPF_FILTER, RegisterOp.ENABLE_RINGS):
            raise ValueError(f"use the {RegisterOp(opcode).name.lower()} call for this opcode")
        bit = reg.USE_REGISTERED_RING if registered is not None else 0

        def handler(ring: Ring | None) -> Reply:
            if ring is None:
                self._blind_supported(RegisterOp(opcode))
            if result != OK:
                return Reply(spelling(result), Explanation(Rule.REGISTER_HANDLER))
            if opcode == RegisterOp.PERSONALITY and ring is not None:
                ring.personalities += 1  # ids are handed out from 1 up
            return Reply.ok(Explanation(Rule.REGISTER_HANDLER))

        return self._register(task, self._fd(task, target, registered), opcode | bit, handler)

    # -- io_uring_enter ------------------------------------------------------------------------------------

    def submit(self, task_name: str, ring_name: str, submissions: Sequence[Submission]) -> SubmitReply:
        """Queue ``submissions`` and call ``io_uring_enter`` for everything pending, SQEs an earlier call left in
        the queue first. Raises :class:`QueueFullError` when they do not fit the submission queue."""
        task = self.task(task_name)
        ring = self.ring_of(task, ring_name)
        if ring is not None and len(ring.pending) + len(submissions) > ring.sq_entries:
            raise QueueFullError(f"ring {ring.name}: {len(ring.pending)} pending + {len(submissions)} new SQEs "
                                 f"exceed its {ring.sq_entries}-entry submission queue")
        return self._submitter.enter(task, ring, tuple(submissions))

    def wait(self, task_name: str, ring_name: str, min_complete: int) -> Reply:
        """A wait-only ``io_uring_enter`` (``to_submit`` 0, ``GETEVENTS``) bounded by a timeout. Every submission's
        CQEs are collected when it is made, so a wait for one or more completions times out."""
        task = self.task(task_name)
        ring = self.ring_of(task, ring_name)
        if ring is None:
            return Reply("EBADF", Explanation(Rule.ENTER_BAD_FD))
        if ring.disabled:
            return Reply("EBADFD", Explanation(Rule.ENTER_DISABLED, ring=ring.view()))
        if ring.has(SetupFlag.DEFER_TASKRUN) and ring.submitter is not task:
            return Reply("EEXIST", Explanation(Rule.WAIT_DEFER_TASKRUN, ring=ring.view()))
        if min_complete > 0:
            return Reply("ETIME", Explanation(Rule.WAIT_TIMEOUT, f"min_complete {min_complete}"))
        return Reply.ok(Explanation(Rule.WAIT_OK))

    # -- questions (no side effects) -----------------------------------------------------------------------

    def new_ring_state(self, task_name: str, setup_flags: int = 0) -> RingState:
        """What request init depends on for a ring ``task_name`` would create now (it is not created, and the
        task's table is not marked copy-on-write)."""
        task = self.task(task_name)
        state = task.restriction
        if state is None:
            return RingState(setup_flags=setup_flags, owner="ring <new>")
        return RingState(state if state.op_registered else None, state.table, setup_flags, "ring <new>")

    def ring_state(self, task_name: str, ring_name: str, *, drain: bool = False) -> RingState:
        """What request init depends on for ``ring_name`` now; its drain bookkeeping only with ``drain``."""
        ring = self.ring_of(self.task(task_name), ring_name)
        if ring is None:
            raise KeyError(f"ring {ring_name!r} is not open in task {task_name!r}'s process")
        state = ring_state(ring)
        if not drain:
            state = RingState(state.classic, state.filters, state.setup_flags & ~SetupFlag.R_DISABLED, state.owner)
        return state

    def decide(self, state: RingState, sqe: Sqe) -> Decision:
        """:func:`ringfence.model.decide.decide` with this kernel's profile."""
        return decide(state, sqe, self.profile, detail=self.detail)

    def all_rings(self) -> list[Ring]:
        seen: dict[int, Ring] = {}
        for task in self.tasks.values():
            for ring in task.process.rings.values():
                seen.setdefault(ring.serial, ring)
        return [seen[k] for k in sorted(seen)]

    def fingerprint(self) -> tuple[Any, ...]:
        """Every task's and ring's observable restriction state (ring backlog and drain state excluded)."""
        tasks = tuple((t.name, t.nnp, None if t.restriction is None else t.restriction.fingerprint())
                      for t in self.tasks.values())
        return tasks, tuple((r.name, r.fingerprint()) for r in self.all_rings())
