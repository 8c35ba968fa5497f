"""Perform one scenario step on the real kernel, in the agent that owns the step's task.

Each function returns a reply: ``{"result": outcome-or-submit-table, "pdu_size_out": int?, "raw": {...}}``.
Kernel errors are outcomes, never exceptions; an exception here means the scenario cannot be performed (an
unknown resource, a CONNECT outside a private network namespace) and ends the run with an error.
Fork, thread and exec change the agent structure and live in :mod:`ringfence.harness.agent`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import REGISTER_USE_REGISTERED_RING, RegisterOp, SqeFlag, SqeOp
from ringfence.errors import KernelError, ScenarioError, outcome_of
from ringfence.harness.arena import Arena
from ringfence.harness.netns import assert_private
from ringfence.harness.resources import Resources
from ringfence.live import _sys, sqes
from ringfence.live.ring import (
    Ring,
    register_bpf_filter,
    register_restrictions,
    register_task_restrictions,
    wrote_back,
)
from ringfence.scenario import steps as s
from ringfence.scenario.caps import UID_RANGE

Reply = dict[str, Any]


@dataclass(slots=True)
class AgentProcess:
    """What all agents (threads) of one process share: rings by name, resources, open control channels."""

    resources: Resources
    outside_netns: int
    rings: dict[str, Ring] = field(default_factory=dict)
    channels: dict[int, socket.socket] = field(default_factory=dict)
    extra_fds: list[int] = field(default_factory=list)                  # eventfds and the like
    inbox: list[int] = field(default_factory=list)                      # descriptors that came with the step
    request: dict[str, Any] = field(default_factory=dict)              # the step message being performed
    _arena: Arena | None = None

    @property
    def arena(self) -> Arena:
        """The process's arena, mapped on first use (a forked child inherits a private copy)."""
        if self._arena is None:
            self._arena = Arena()
        return self._arena


def _outcome(result: int, **raw: Any) -> Reply:
    return {"result": outcome_of(result), "raw": {"res": result, **raw}}


#: A descriptor number that is never open: for rings this process does not hold, the kernel gets this, so its
#: own checks decide (an out-of-range opcode is EINVAL before the fd is looked at, §4.1).
NOT_OPEN = -2


def _fd_of(proc: AgentProcess, ring: str | None) -> int:
    """-1 for the task (blind), the ring's fd, or :data:`NOT_OPEN` if this process has no such ring open."""
    if ring is None:
        return -1
    r = proc.rings.get(ring)
    return NOT_OPEN if r is None else r.fd


def do_nnp(proc: AgentProcess, step: s.SetNoNewPrivs) -> Reply:
    try:
        _sys.set_no_new_privs()
    except KernelError as exc:
        return {"result": exc.name, "raw": {}}
    return {"result": "ok", "raw": {}}


def do_drop_privileges(proc: AgentProcess, step: s.DropPrivileges) -> Reply:
    """Process-wide (glibc applies set*id to every thread): the process loses CAP_SYS_ADMIN.

    The uid must be a real unprivileged one (the loader's rule, checked again here: -1 would mean "no change" and
    keep root), and afterwards no capability may be left; otherwise the run ends with an error, not an outcome.
    """
    if not UID_RANGE[0] <= step.uid <= UID_RANGE[1]:
        raise ScenarioError(f"drop_privileges uid {step.uid} is not in {UID_RANGE[0]}..{UID_RANGE[1]}")
    try:
        os.setgroups([])
        os.setresgid(step.uid, step.uid, step.uid)
        os.setresuid(step.uid, step.uid, step.uid)
    except OSError as exc:
        return {"result": KernelError(exc.errno or 1, "setresuid").name, "raw": {}}
    caps = _sys.effective_caps()
    if caps:
        raise ScenarioError(f"drop_privileges left capabilities {caps:#x}")
    return {"result": "ok", "raw": {"caps": caps}}


def do_userns(proc: AgentProcess, step: s.UserNamespace) -> Reply:
    """``unshare(CLONE_NEWUSER)`` for the agent's process (the loader makes sure it has one thread)."""
    try:
        _sys.unshare(_sys.CLONE_NEWUSER)
    except KernelError as exc:
        return {"result": exc.name, "raw": {}}
    return {"result": "ok", "raw": {"caps": _sys.effective_caps(), "uid": os.getuid()}}


def do_ring(proc: AgentProcess, step: s.CreateRing) -> Reply:
    try:
        ring = Ring.setup(step.entries, step.setup_flags)
    except KernelError as exc:
        return {"result": exc.name, "raw": {"errno": exc.errno}}
    proc.rings[step.ring] = ring
    return {"result": "ok", "raw": {"fd": ring.fd, "features": ring.features, "sq_entries": ring.sq_entries}}


def do_pass_ring(proc: AgentProcess, step: s.PassRing) -> Reply:
    """Both sides of a ring handoff; the coordinator sends the step to the sender (``role`` ``give``), then to the
    receiver (``take``) with what the sender answered and, for ``scm_rights``, the descriptor itself."""
    if proc.request.get("role") == "take":
        return _take_ring(proc, step, proc.request["give"])
    ring = proc.rings.get(step.ring)
    if ring is None:
        return {"result": "EBADF", "raw": {"not_open": step.ring}}
    raw = {"fd": ring.fd, "pid": os.getpid(), "params": bytes(ring.params).hex()}
    return {"result": "ok", "raw": raw, "fds": [ring.fd] if step.via == "scm_rights" else []}


def _take_ring(proc: AgentProcess, step: s.PassRing, give: dict[str, Any]) -> Reply:
    if step.via == "scm_rights":
        if len(proc.inbox) != 1:
            raise RuntimeError(f"expected one descriptor with the ring, got {len(proc.inbox)}")
        fd = proc.inbox.pop()
    else:
        pidfd = os.pidfd_open(int(give["pid"]))
        try:
            fd = _sys.pidfd_getfd_raw(pidfd, int(give["fd"]))
        finally:
            os.close(pidfd)
        if fd < 0:
            return _outcome(fd)
    params = _sys.Params.from_buffer_copy(bytes.fromhex(give["params"]))
    old = proc.rings.pop(step.ring, None)
    if old is not None:
        old.close()
    proc.rings[step.ring] = Ring(fd, params)
    return {"result": "ok", "raw": {"fd": fd}}


def do_close(proc: AgentProcess, step: s.CloseRing) -> Reply:
    ring = proc.rings.pop(step.ring, None)
    if ring is None:
        return {"result": "EBADF", "raw": {"not_open": step.ring}}  # close(2) of a descriptor not open
    ring.close()
    return {"result": "ok", "raw": {}}


def do_enable(proc: AgentProcess, step: s.EnableRing) -> Reply:
    zeros = ctypes.create_string_buffer(16)  # what a non-NULL argument points at: zeroed memory of this agent
    arg = ctypes.addressof(zeros) if step.arg else 0
    return _outcome(_sys.register_raw(_fd_of(proc, step.ring), RegisterOp.ENABLE_RINGS, arg, step.nr_args))


def do_wait(proc: AgentProcess, step: s.Wait) -> Reply:
    """``io_uring_enter(fd, 0, min_complete, GETEVENTS | EXT_ARG)`` bounded by the step's timeout; CQEs it finds
    are reaped and shown (nothing the harness submits is left in flight, so normally there are none)."""
    ring = proc.rings.get(step.ring)
    seconds, ms = divmod(step.timeout_ms, 1000)
    ts = _sys.KernelTimespec(seconds, ms * 1_000_000)
    arg = _sys.GeteventsArg(0, 0, 0, ctypes.addressof(ts))
    fd = NOT_OPEN if ring is None else ring.fd
    result = _sys.enter_raw(fd, 0, step.min_complete, _sys.IORING_ENTER_GETEVENTS | _sys.IORING_ENTER_EXT_ARG,
                            arg=ctypes.addressof(arg), argsz=ctypes.sizeof(arg))
    found = [] if ring is None else ring.reap()
    return _outcome(result, cqes=[[c.user_data, c.res, c.flags] for c in found])


def do_restrict(proc: AgentProcess, step: s.Restrict) -> Reply:
    if step.ring is None:
        return _outcome(register_task_restrictions(step.records, header=step.header,
                                                   nr_args=1 if step.nr_args is None else step.nr_args,
                                                   null=step.null))
    return _outcome(register_restrictions(_fd_of(proc, step.ring), step.records, nr_args=step.nr_args,
                                          null=step.null))


def do_filter(proc: AgentProcess, step: s.Filter) -> Reply:
    fd = _fd_of(proc, step.ring)
    nr_args = 1 if step.nr_args is None else step.nr_args
    reg = step.registration
    result, pdu = register_bpf_filter(fd, reg, nr_args=nr_args)
    written = wrote_back(fd, reg, nr_args, result)
    reply = _outcome(result, pdu_size_in=None if reg is None else reg.pdu_size, wrote_back=written)
    reply["pdu_size_out"] = pdu  # the byte after the call: the kernel's size if written back, else the input
    return reply


#: Bytes of the buffer a BUFFERS registration registers: the start of the agent's arena.
REGISTERED_BUFFER = 4096


def _register_args(proc: AgentProcess, step: s.Register, keep: list[object]) -> tuple[int, int]:
    """``(arg address, nr_args)`` for the register opcodes that take real arguments; NULL/0 for the rest."""
    op = step.opcode
    if op == RegisterOp.BUFFERS:  # the arena's first 4 KiB: READ_FIXED/WRITE_FIXED reach nothing of the harness
        iov = (_sys.Iovec * 1)()
        iov[0].iov_base, iov[0].iov_len = proc.arena.address(0), REGISTERED_BUFFER
        keep.append(iov)
        return ctypes.addressof(iov), 1
    if op == RegisterOp.FILES:
        fds = [proc.resources.fd(f) for f in step.files]
        arr = (ctypes.c_int32 * max(len(fds), 1))(*fds)
        keep.append(arr)
        return ctypes.addressof(arr), len(fds)
    if op in (RegisterOp.EVENTFD, RegisterOp.EVENTFD_ASYNC):
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        proc.extra_fds.append(efd)
        val = ctypes.c_int32(efd)
        keep.append(val)
        return ctypes.addressof(val), 1
    if op == RegisterOp.PROBE:
        probe = _sys.Probe()
        keep.append(probe)
        return ctypes.addressof(probe), _sys.PROBE_OPS
    if op == RegisterOp.QUERY:
        data, hdr = _sys.QueryOpcodes(), _sys.QueryHeader()
        hdr.query_data, hdr.size = ctypes.addressof(data), ctypes.sizeof(data)
        keep += [data, hdr]
        return ctypes.addressof(hdr), 0
    if op == RegisterOp.RING_FDS:
        upd = (ctypes.c_uint32 * 4)(0xFFFFFFFF, 0, 0, 0)  # io_uring_rsrc_update: offset -1 = any free slot
        ring = proc.rings.get(step.ring or "")
        ctypes.c_uint64.from_buffer(upd, 8).value = ring.fd if ring else 0xFFFFFFFF
        keep.append(upd)
        return ctypes.addressof(upd), 1
    return 0, 0


def do_register(proc: AgentProcess, step: s.Register) -> Reply:
    opcode = step.opcode
    if step.registered_ring_index is not None:
        fd = step.registered_ring_index
        opcode |= REGISTER_USE_REGISTERED_RING
    else:
        fd = _fd_of(proc, step.ring)
    keep: list[object] = []
    arg, nr = _register_args(proc, step, keep)
    result = _sys.register_raw(fd, opcode, arg, nr)
    raw: dict[str, Any] = {"res": result}
    if step.opcode == RegisterOp.QUERY and result >= 0:
        raw["query_result"] = keep[1].result  # type: ignore[attr-defined]
    if step.opcode == RegisterOp.RING_FDS and result >= 0:
        raw["ring_index"] = keep[0][0]  # type: ignore[index]
    return {"result": outcome_of(result), "raw": raw}


def _prepare(proc: AgentProcess, item: s.SubmitItem) -> sqes.Prepared:
    """The SQE for one scenario submission, with everything it points at, in this agent's process."""
    sqe, res = item.sqe, proc.resources
    if item.fd is not None:
        fixed = bool(sqe.flags & SqeFlag.FIXED_FILE)
        if isinstance(item.fd, int) and item.fd >= 0 and not fixed:  # the loader's rule, again: see load_sqe._fd
            raise ScenarioError(f"refusing descriptor number {item.fd}: it would reach whatever the agent has open "
                                "under it (its control channel); name a resource")
        fd = item.fd if (fixed and isinstance(item.fd, int)) else res.fd(item.fd)
        sqe = dataclasses.replace(sqe, fd=fd)
    if sqe.opcode in (SqeOp.OPENAT, SqeOp.OPENAT2):
        sqe = dataclasses.replace(sqe, path=res.path(sqe.path))
    if item.connect is None:
        prepared = sqes.prepare(sqe, buffer=item.buffer)
        if item.arena is not None:  # a raw addr: the arena's memory instead of a buffer of the harness
            prepared.sqe.addr = proc.arena.address(item.arena)
        return prepared
    assert_private(proc.outside_netns)
    to = item.connect
    sock = socket.socket(to.socket_family, to.socket_type or socket.SOCK_STREAM)
    addr = res.path(to.addr) if to.family == socket.AF_UNIX else to.addr
    sqe = dataclasses.replace(sqe, fd=sock.fileno(), sockaddr=abisqe.sockaddr(to.family, addr, to.port))
    prepared = sqes.prepare(sqe)
    prepared.keep.append(sock)  # closed once the request has completed
    return prepared


def do_submit(proc: AgentProcess, step: s.Submit) -> Reply:
    ring = proc.rings.get(step.ring)
    if ring is None:  # not open here: io_uring_enter on a descriptor that is not open
        result = _sys.enter_raw(NOT_OPEN, len(step.sqes), 0, 0)
        return {"result": {"submitted": outcome_of(result), "cqes": []}, "raw": {"not_open": step.ring,
                                                                                "submitted": result}}
    for item in step.sqes:
        ring.queue(_prepare(proc, item))
    submitted = ring.submit()
    completions = ring.wait() if submitted >= 0 else []
    # Descriptors that SOCKET/OPENAT requests create are left open: a CQE carries only user_data, which scenarios
    # may repeat, so closing "the fd this CQE made" can close an unrelated descriptor (it closed the `zero` resource
    # in random scenarios). Agents are short-lived; their descriptors go when they exit.
    cqes = sorted((c.user_data, outcome_of(c.res)) for c in completions)
    return {"result": {"submitted": submitted if submitted >= 0 else outcome_of(submitted),
                       "cqes": [list(c) for c in cqes]},
            "raw": {"submitted": submitted, "cqes": [[c.user_data, c.res, c.flags] for c in completions],
                    "pending_after": ring.pending}}


PERFORMERS: dict[type[s.Step], Callable[[AgentProcess, Any], Reply]] = {
    s.SetNoNewPrivs: do_nnp,
    s.DropPrivileges: do_drop_privileges,
    s.UserNamespace: do_userns,
    s.CreateRing: do_ring,
    s.CloseRing: do_close,
    s.PassRing: do_pass_ring,
    s.EnableRing: do_enable,
    s.Wait: do_wait,
    s.Restrict: do_restrict,
    s.Filter: do_filter,
    s.Register: do_register,
    s.Submit: do_submit,
}
