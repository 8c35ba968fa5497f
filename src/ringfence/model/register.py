"""The ``io_uring_register`` syscall: generic dispatch and the classic-restriction handlers (spec §3.3-3.5, §4.1, §4.3).

Every function follows its ordered errno table row by row and raises :class:`Refused` at the first row that
matches. Filter registration lives in :mod:`ringfence.model.bpfreg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ringfence.abi.layout import Restriction, TaskRestrictionHeader
from ringfence.abi.opcodes import REGISTER_USE_REGISTERED_RING, RegisterOp, SetupFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.model.outcome import Refused
from ringfence.model.restriction import RestrictionState, parse, register_allowed
from ringfence.model.ring import Ring
from ringfence.model.rules import Rule
from ringfence.model.task import Task

USE_REGISTERED_RING: Final = REGISTER_USE_REGISTERED_RING
#: ``IO_RINGFD_REG_MAX``: size of a task's registered-ring table.
RINGFD_REG_MAX: Final = 16


@dataclass(frozen=True, slots=True)
class Fd:
    """The ``fd`` argument: blind (``-1``), a ring descriptor of this process (None if closed/absent), or an index
    into the task's registered-ring table (``registered``; ``-1`` there means blind with bit 31 set)."""

    ring: Ring | None = None
    blind: bool = False
    registered: int | None = None


def dispatch(profile: KernelProfile, task: Task, fd: Fd, opcode: int) -> Ring | None:
    """§4.1 up to the per-opcode handler: returns the ring, or None for a blind call. Raises on rows that fail."""
    opcode &= ~USE_REGISTERED_RING
    if opcode >= profile.register_last or opcode < 0:
        raise Refused("EINVAL", Rule.REGISTER_OPCODE, f"opcode {opcode}; this kernel has {profile.register_last}")
    if fd.blind or fd.registered == -1:
        if not profile.blind_ops:
            raise Refused("EBADF", Rule.NO_BLIND_PATH)
        return None
    if fd.registered is not None:
        if not 0 <= fd.registered < RINGFD_REG_MAX:
            raise Refused("EINVAL", Rule.REGISTERED_INDEX, f"index {fd.registered} outside 0..{RINGFD_REG_MAX - 1}")
        if not task.has_tctx:
            raise Refused("EINVAL", Rule.REGISTERED_NO_CONTEXT)
        raise Refused("EBADF", Rule.REGISTERED_EMPTY, "the model does not track REGISTER_RING_FDS")
    ring = fd.ring
    if ring is None:
        raise Refused("EBADF", Rule.BAD_FD)
    check_submitter(ring, task)
    # On 7.x the check has no exemption for disabled rings (seen on 7.2.13): a ring's own register set is armed
    # at enable, an inherited one at creation, so an inherited set binds a disabled ring too.
    if ring.reg_restricted and not register_allowed(ring.state, opcode):
        raise Refused("EACCES", Rule.REGISTER_DENIED, f"{_reg_name(opcode)} is not allowed on ring {ring.name}")
    return ring


def check_submitter(ring: Ring, task: Task) -> None:
    if ring.submitter is not None and ring.submitter is not task:
        raise Refused("EEXIST", Rule.SINGLE_ISSUER, f"ring {ring.name} belongs to task {ring.submitter.name}")


def _reg_name(opcode: int) -> str:
    return RegisterOp(opcode).name if 0 <= opcode < len(RegisterOp) else str(opcode)


def ring_restrictions(profile: KernelProfile, ring: Ring, records: Sequence[Restriction], count: int, *,
                      null: bool, origin: str) -> None:
    """§3.3 rows 5-7 (rows 1-4 are :func:`dispatch`) and the §3.4 reset on a parse failure."""
    if not ring.disabled:
        raise Refused("EBADFD", Rule.RING_NOT_DISABLED)
    if ring.state.has_classic:
        raise Refused("EBUSY", Rule.RING_ALREADY_RESTRICTED, ring.state.origin)
    try:
        parsed = parse(records, count, null=null, profile=profile)
    except Refused:
        table, cow = ring.state.table, ring.state.cow
        ring.state.reset_classic()
        if not profile.keep_filters_on_parse_failure:
            ring.state.table, ring.state.cow = None, False  # rc kernels before 7.0-rc7; the cache keeps pointing
        else:
            ring.state.table, ring.state.cow = table, cow
        raise
    ring.state.apply(parsed, origin)
    if profile.split_restrictions:
        ring.op_restricted = ring.op_restricted or parsed.op_registered  # the register side is armed at enable


def enable_rings(profile: KernelProfile, ring: Ring, task: Task, *, has_arg: bool = False, nr_args: int = 0) -> None:
    """§3.5 rows 5-6 and the effects of success."""
    if has_arg or nr_args:
        raise Refused("EINVAL", Rule.ENABLE_ARGS)
    if not ring.disabled:
        raise Refused("EBADFD", Rule.ENABLE_NOT_DISABLED)
    if ring.has(SetupFlag.SINGLE_ISSUER):
        ring.submitter = task
    if not profile.split_restrictions and ring.state.has_classic:
        ring.op_restricted = ring.reg_restricted = True
    elif profile.split_restrictions and ring.state.reg_registered:
        ring.reg_restricted = True
    ring.disabled = False


def task_restrictions(profile: KernelProfile, task: Task, records: Sequence[Restriction],
                      header: TaskRestrictionHeader, *, nr_args: int, null: bool, origin: str) -> RestrictionState:
    """§4.3 rows 1-8; returns the fresh state (the caller installs it on success)."""
    if task.restriction is not None:
        raise Refused("EPERM", Rule.TASK_ALREADY_RESTRICTED, task.restriction.origin or "filters")
    if not task.passes_gate():
        raise Refused("EACCES", Rule.PRIVILEGE_GATE)
    if nr_args != 1:
        raise Refused("EINVAL", Rule.TASK_NR_ARGS, f"nr_args {nr_args}")
    if null:
        raise Refused("EFAULT", Rule.TASK_HEADER_NULL)
    if header.flags:
        raise Refused("EINVAL", Rule.TASK_HEADER_FLAGS, f"flags {header.flags:#x}")
    if any(header.resv):
        raise Refused("EINVAL", Rule.TASK_HEADER_RESV)
    parsed = parse(records, header.nr_res, null=False, profile=profile)
    state = RestrictionState()
    state.apply(parsed, origin)
    return state
