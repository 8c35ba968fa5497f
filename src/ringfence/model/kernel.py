"""The modelled kernel: tasks, processes, rings, and one method per scenario step.

Names in steps are scenario identifiers; a name the scenario never introduced is a malformed scenario
(:class:`ScenarioError`), while a real ring that this process has no descriptor for is the kernel's EBADF.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Final

from ringfence.abi.opcodes import RegisterOp, SetupFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import ScenarioError
from ringfence.model import register as reg
from ringfence.model.bpfreg import import_filter
from ringfence.model.filters import install, share
from ringfence.model.outcome import OK, Refused, Reply, spelling
from ringfence.model.restriction import RestrictionState
from ringfence.model.ring import Ring
from ringfence.model.submit import Batch, SubmitReply, Submitter
from ringfence.model.task import Process, Task
from ringfence.scenario import steps as s

#: Setup flags up to ``IORING_SETUP_SQ_REWIND`` (1 << 20); anything above is ``-EINVAL``.
_KNOWN_SETUP: Final = (1 << 21) - 1
IORING_MAX_ENTRIES: Final = 32768


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class Kernel:
    """One kernel of the given profile, starting with a single task ``main`` (root, no no_new_privs)."""

    def __init__(self, profile: KernelProfile, *, detail: bool = True) -> None:
        self.profile = profile
        self.detail = detail
        self._serials = itertools.count(1)
        self._pids = itertools.count(1)
        self.tasks: dict[str, Task] = {}
        self.ring_names: set[str] = set()
        self.step = 0
        self._submitter = Submitter(profile, detail=detail)
        self._new_task("main", Process(next(self._pids)))

    # -- lookups -------------------------------------------------------------------------------------------

    def task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise ScenarioError(f"unknown task {name!r}", step=self.step) from None

    def ring_of(self, task: Task, name: str) -> Ring | None:
        """The ring ``name`` as ``task``'s process sees it: None if it has no descriptor for it."""
        if name not in self.ring_names:
            raise ScenarioError(f"unknown ring {name!r}", step=self.step)
        return task.process.rings.get(name)

    def _new_task(self, name: str, process: Process) -> Task:
        if not name or name in self.tasks:
            raise ScenarioError(f"task name {name!r} is empty or already used", step=self.step)
        task = Task(name, process)
        process.tasks.append(task)
        self.tasks[name] = task
        return task

    def _origin(self, who: str) -> str:
        return f"{who}, step {self.step}"

    # -- tasks and processes (§4.6) ------------------------------------------------------------------------

    def set_nnp(self, task: Task) -> Reply:
        task.nnp = True
        return Reply.ok("prctl(PR_SET_NO_NEW_PRIVS)")

    def drop_privileges(self, task: Task, uid: int) -> Reply:
        task.process.uid = uid
        task.process.privileged = task.process.privileged and uid == 0
        return Reply.ok("setresuid: the whole process loses CAP_SYS_ADMIN", uid=uid)

    def _inherit(self, child: Task, parent: Task) -> dict[str, Any]:
        """§4.6: a fresh state with copies of the classic part and a copy-on-write share of the table."""
        child.nnp = parent.nnp
        if parent.restriction is None:
            return {"inherited": None}
        state = RestrictionState()
        state.copy_classic(parent.restriction)
        share(state, parent.restriction, source_cow=self.profile.source_cow)
        child.restriction = state
        return {"inherited": f"task {parent.name}", **state.explain()}

    def fork(self, task: Task, child_name: str) -> Reply:
        parent = task.process
        proc = Process(next(self._pids), parent.uid, parent.privileged, dict(parent.rings))
        child = self._new_task(child_name, proc)
        return Reply.ok("fork: new process, copied descriptors, inherited task state",
                        **self._inherit(child, task))

    def spawn_thread(self, task: Task, thread_name: str) -> Reply:
        thread = self._new_task(thread_name, task.process)
        return Reply.ok("clone(CLONE_THREAD): shared descriptors, copied task state", **self._inherit(thread, task))

    def exec(self, task: Task) -> Reply:
        if len(task.process.tasks) != 1:
            raise ScenarioError(f"exec by {task.name}: its process has {len(task.process.tasks)} threads",
                                step=self.step)
        closed = sorted(task.process.rings)
        task.process.rings.clear()
        return Reply.ok("execve: io_uring descriptors close, restrictions and no_new_privs stay [DERIVED]",
                        closed=closed)

    # -- rings ---------------------------------------------------------------------------------------------

    def create_ring(self, task: Task, name: str, flags: int, entries: int) -> Reply:
        if not name or name in self.ring_names:
            raise ScenarioError(f"ring name {name!r} is empty or already used", step=self.step)
        self.ring_names.add(name)
        try:
            sq_entries = self._check_setup(flags, entries)
        except Refused as exc:
            return Reply.refused(exc)
        ring = Ring(name, next(self._serials), flags, sq_entries, self._origin(f"task {task.name}"),
                    disabled=bool(flags & SetupFlag.R_DISABLED))
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
        return Reply.ok("io_uring_setup" + (" (restrictions inherited, §4.5)" if task.restriction else ""),
                        **ring.explain())

    def _check_setup(self, flags: int, entries: int) -> int:
        """The parts of ``io_uring_setup`` validation the model needs [UNCONFIRMED beyond unknown bits]."""
        if flags & ~_KNOWN_SETUP:
            raise Refused("EINVAL", "io_uring_setup", f"unknown setup flags {flags & ~_KNOWN_SETUP:#x}")
        if flags & SetupFlag.DEFER_TASKRUN and not flags & SetupFlag.SINGLE_ISSUER:
            raise Refused("EINVAL", "io_uring_setup", "DEFER_TASKRUN needs SINGLE_ISSUER")
        if flags & SetupFlag.DEFER_TASKRUN and flags & SetupFlag.SQPOLL:
            raise Refused("EINVAL", "io_uring_setup", "DEFER_TASKRUN with SQPOLL")
        if entries <= 0:
            raise Refused("EINVAL", "io_uring_setup", "entries must be positive")
        if entries > IORING_MAX_ENTRIES:
            if not flags & SetupFlag.CLAMP:
                raise Refused("EINVAL", "io_uring_setup", f"entries > {IORING_MAX_ENTRIES}")
            entries = IORING_MAX_ENTRIES
        return _pow2(entries)

    def close_ring(self, task: Task, name: str) -> Reply:
        if self.ring_of(task, name) is None:
            return Reply("EBADF", {"result": "EBADF", "rule": "close", "detail": "not open in this process"})
        del task.process.rings[name]
        return Reply.ok("close")

    def enable(self, task: Task, name: str) -> Reply:
        return self._register(task, reg.Fd(ring=self.ring_of(task, name)), RegisterOp.ENABLE_RINGS,
                              lambda ring: self._enable(ring, task))

    def _enable(self, ring: Ring | None, task: Task) -> Reply:
        if ring is None:
            raise Refused("EINVAL", "§4.1 blind dispatch", "ENABLE_RINGS is not a blind opcode")
        reg.enable_rings(self.profile, ring, task)
        return Reply.ok("§3.5 enable", **ring.explain())

    # -- registrations -------------------------------------------------------------------------------------

    def _fd(self, task: Task, ring: str | None, registered: int | None = None) -> reg.Fd:
        if registered is not None:
            if ring is not None:
                self.ring_of(task, ring)  # still must be a known name
            return reg.Fd(registered=registered)
        return reg.Fd(blind=True) if ring is None else reg.Fd(ring=self.ring_of(task, ring))

    def _register(self, task: Task, fd: reg.Fd, opcode: int, handler: Callable[[Ring | None], Reply]) -> Reply:
        try:
            ring = reg.dispatch(self.profile, task, fd, opcode)
            return handler(ring)
        except Refused as exc:
            return Reply.refused(exc)

    def _blind_supported(self, opcode: RegisterOp) -> None:
        if opcode not in self.profile.blind_ops:
            raise Refused("EINVAL", "§4.1 blind dispatch", f"{opcode.name} has no fd == -1 handler on this kernel")

    def restrict(self, task: Task, step: s.Restrict) -> Reply:
        def handler(ring: Ring | None) -> Reply:
            if ring is None:
                self._blind_supported(RegisterOp.RESTRICTIONS)
                task.restriction = reg.task_restrictions(self.profile, task, step, self._origin(f"task {task.name}"))
                return Reply.ok("§4.3 task restrictions", **task.restriction.explain())
            reg.ring_restrictions(self.profile, ring, step, self._origin(f"ring {ring.name}"))
            return Reply.ok("§3.3 ring restrictions", **ring.explain())

        return self._register(task, self._fd(task, step.ring), RegisterOp.RESTRICTIONS, handler)

    def filter(self, task: Task, step: s.Filter) -> Reply:
        """Ring (§5.2) or task (§4.4) filter registration. ``pdu_size_out`` is the caller's ``filter.pdu_size``
        byte after the call: the kernel's size once row 9 is reached (§5.4), else the unchanged input."""
        pdu: list[int] = [step.pdu_size & 0xFF]
        written = [False]

        def handler(ring: Ring | None) -> Reply:
            nr_args = 1 if step.nr_args is None else step.nr_args
            if ring is None:
                self._blind_supported(RegisterOp.BPF_FILTER)
                if not task.passes_gate():
                    raise Refused("EACCES", "§4.4 row 1 / §4.2", "neither no_new_privs nor CAP_SYS_ADMIN")
            if nr_args != 1:
                raise Refused("EINVAL", "§4.4 row 2" if ring is None else "§5.2", f"nr_args {nr_args} != 1")
            imported = import_filter(self.profile, step)
            if imported.pdu_size_out is not None:
                pdu[0], written[0] = imported.pdu_size_out, True
            if imported.refused is not None:
                raise imported.refused
            assert imported.program is not None
            who = f"task {task.name}" if ring is None else f"ring {ring.name}"
            if ring is None:
                state = task.restriction or RestrictionState()
                done = install(state, step.opcode, imported.program, step.flags, origin=self._origin(who),
                               op_last=self.profile.op_last, serial=next(self._serials))
                task.restriction = state
            else:
                done = install(ring.state, step.opcode, imported.program, step.flags, origin=self._origin(who),
                               op_last=self.profile.op_last, serial=next(self._serials))
                ring.cache = ring.state.table
            return Reply.ok("§6.2 install (" + ("§4.4 task" if ring is None else "§5.2 ring") + ")",
                            **done.explain())

        reply = self._register(task, self._fd(task, step.ring), RegisterOp.BPF_FILTER, handler)
        return Reply(reply.result, {**reply.explain, "pdu_size_written": written[0]}, pdu[0])

    def register(self, task: Task, step: s.Register) -> Reply:
        opcode = step.opcode & ~reg.USE_REGISTERED_RING
        bit = reg.USE_REGISTERED_RING if step.registered_ring_index is not None else 0

        def handler(ring: Ring | None) -> Reply:
            if opcode in (RegisterOp.RESTRICTIONS, RegisterOp.BPF_FILTER):
                raise ScenarioError("use a `restrict` or `filter` step for this opcode", step=self.step)
            if ring is None:
                self._blind_supported(RegisterOp(opcode))
            elif opcode == RegisterOp.ENABLE_RINGS:
                return self._enable(ring, task)
            if step.result != OK:
                result = spelling(step.result)
                return Reply(result, {"result": result, "rule": "declared handler result"})
            return Reply.ok("declared handler result")

        return self._register(task, self._fd(task, step.ring, step.registered_ring_index), opcode | bit, handler)

    def submit(self, task: Task, step: s.Submit) -> SubmitReply:
        return self._submitter.enter(task, self.ring_of(task, step.ring), step.sqes)

    # -- one entry point per step --------------------------------------------------------------------------

    def apply(self, step: s.Step, index: int | None = None) -> Reply | SubmitReply:
        """Perform one scenario step as ``step.task``."""
        self.step = step.line if index is None else index
        task = self.task(step.task)
        if isinstance(step, s.SetNoNewPrivs):
            return self.set_nnp(task)
        if isinstance(step, s.DropPrivileges):
            return self.drop_privileges(task, step.uid)
        if isinstance(step, s.Fork):
            return self.fork(task, step.child)
        if isinstance(step, s.SpawnThread):
            return self.spawn_thread(task, step.thread)
        if isinstance(step, s.Exec):
            return self.exec(task)
        if isinstance(step, s.CreateRing):
            return self.create_ring(task, step.ring, step.setup_flags, step.entries)
        if isinstance(step, s.CloseRing):
            return self.close_ring(task, step.ring)
        if isinstance(step, s.EnableRing):
            return self.enable(task, step.ring)
        if isinstance(step, s.Restrict):
            return self.restrict(task, step)
        if isinstance(step, s.Filter):
            return self.filter(task, step)
        if isinstance(step, s.Register):
            return self.register(task, step)
        if isinstance(step, s.Submit):
            return self.submit(task, step)
        raise ScenarioError(f"the model has no handler for {type(step).__name__}", step=self.step)

    # -- questions the property tests ask (no side effects) ------------------------------------------------

    def probe_task(self, task_name: str, sqe: s.Sqe) -> str | None:
        """How a ring that ``task_name`` created now would treat ``sqe`` at init: the mechanism that fails it
        (``classic``, ``filter``, ``prep``, ``validity``) or None. Does not mark the task's table copy-on-write."""
        task = self.task(task_name)
        ring = Ring("<probe>", 0, 0, 1, "probe")
        if task.restriction is not None:
            ring.state.copy_classic(task.restriction)
            ring.state.table = ring.cache = task.restriction.table
            ring.op_restricted = task.restriction.op_registered
            ring.reg_restricted = task.restriction.reg_registered
        return self._probe(ring, sqe)

    def probe_ring(self, ring: Ring, sqe: s.Sqe, *, drain: bool = False) -> str | None:
        """How ``ring`` would treat ``sqe`` at init now. Its drain state (which adds IOSQE_ASYNC to what filters
        see) is copied only with ``drain``; the ring itself is not changed."""
        copy = Ring("<probe>", 0, ring.setup_flags & ~SetupFlag.R_DISABLED, 1, "probe", ring.state,
                    ring.op_restricted, ring.reg_restricted, cache=ring.cache)
        if drain:
            copy.drain_disabled, copy.drain_active, copy.drain_next = (ring.drain_disabled, ring.drain_active,
                                                                        ring.drain_next)
        return self._probe(copy, sqe)

    def _probe(self, ring: Ring, sqe: s.Sqe) -> str | None:
        req = self._submitter._init(ring, sqe, Batch())
        return req.mechanism if req.errno is not None else None

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
