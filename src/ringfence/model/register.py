"""The ``io_uring_register`` syscall: generic dispatch and the classic-restriction handlers (spec §3.3-3.5, §4.1, §4.3).

Every function follows its ordered errno table row by row and raises :class:`Refused` at the first row
that matches. Filter registration lives in :mod:`ringfence.model.bpfreg`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi.opcodes import RegisterOp, SetupFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.model.outcome import Refused
from ringfence.model.restriction import RestrictionState, parse, register_allowed
from ringfence.model.ring import Ring
from ringfence.model.task import Task
from ringfence.scenario.steps import Restrict

USE_REGISTERED_RING: Final = 1 << 31
#: ``IO_RINGFD_REG_MAX``: size of a task's registered-ring table.
RINGFD_REG_MAX: Final = 16


@dataclass(frozen=True, slots=True)
class Fd:
    """The ``fd`` argument: blind (``-1``), a ring descriptor of this process (None if closed/absent), or an index
    into the task's registered-ring table (``registered``; ``-1`` there means blind with bit 31 set, §10.1 #18)."""

    ring: Ring | None = None
    blind: bool = False
    registered: int | None = None


def dispatch(profile: KernelProfile, task: Task, fd: Fd, opcode: int) -> Ring | None:
    """§4.1 up to the per-opcode handler: returns the ring, or None for a blind call. Raises on rows that fail."""
    opcode &= ~USE_REGISTERED_RING
    if opcode >= profile.register_last or opcode < 0:
        raise Refused("EINVAL", "§4.1 opcode range",
                      f"opcode {opcode} >= IORING_REGISTER_LAST ({profile.register_last})")
    if fd.blind or fd.registered == -1:
        if not profile.blind_ops:
            raise Refused("EBADF", "§4.1 blind path", "this kernel has no fd == -1 path (before 6.13)")
        return None
    if fd.registered is not None:
        if not 0 <= fd.registered < RINGFD_REG_MAX:
            raise Refused("EINVAL", "§4.1 registered-ring lookup",
                          f"index {fd.registered} outside 0..{RINGFD_REG_MAX - 1}")
        if not task.has_tctx:
            raise Refused("EINVAL", "§4.1 registered-ring lookup", "the task has no io_uring context [DERIVED]")
        raise Refused("EBADF", "§4.1 registered-ring lookup",
                      "empty slot (the model does not track REGISTER_RING_FDS) [DERIVED]")
    ring = fd.ring
    if ring is None:
        raise Refused("EBADF", "§4.1 fd resolution", "not an open descriptor in this process")
    check_submitter(ring, task, "§4.1 SINGLE_ISSUER")
    if profile.split_restrictions:
        # Seen on 7.2.13 (docs/kernel-findings.md): no exemption for disabled rings in the check itself. A ring's
        # own register set is armed at enable, an inherited one at creation, so it binds a disabled ring too.
        if ring.reg_restricted and not register_allowed(ring.state, opcode):
            raise Refused("EACCES", "§4.1/§3.6 register restriction",
                          f"{_reg_name(opcode)} not in the ring's allowed register opcodes")
    elif ring.reg_restricted and not register_allowed(ring.state, opcode):
        raise Refused("EACCES", "§3.7 pre-7.0 register restriction",
                      f"{_reg_name(opcode)} not in the ring's allowed register opcodes")
    return ring


def check_submitter(ring: Ring, task: Task, rule: str) -> None:
    if ring.submitter is not None and ring.submitter is not task:
        raise Refused("EEXIST", rule, f"SINGLE_ISSUER ring owned by task {ring.submitter.name}")


def _reg_name(opcode: int) -> str:
    return RegisterOp(opcode).name if 0 <= opcode < len(RegisterOp) else str(opcode)


def ring_restrictions(profile: KernelProfile, ring: Ring, step: Restrict, origin: str) -> None:
    """§3.3 rows 5-7 (rows 1-4 are :func:`dispatch`) and the §3.4 reset on a parse failure."""
    if not ring.disabled:
        raise Refused("EBADFD", "§3.3 row 5", "ring is not R_DISABLED")
    if ring.state.has_classic:
        raise Refused("EBUSY", "§3.3 row 6", "the ring already has classic restrictions"
                      + (f" ({ring.state.origin})" if ring.state.origin else ""))
    count = len(step.records) if step.nr_args is None else step.nr_args
    try:
        parsed = parse(step.records, count, null=step.null, profile=profile, where="§3.3 row 7")
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
        raise Refused("EINVAL", "§3.5 row 5", "arg or nr_args given")
    if not ring.disabled:
        raise Refused("EBADFD", "§3.5 row 6", "ring is not R_DISABLED")
    if ring.has(SetupFlag.SINGLE_ISSUER):
        ring.submitter = task
    if not profile.split_restrictions and ring.state.has_classic:
        ring.op_restricted = ring.reg_restricted = True
    elif profile.split_restrictions and ring.state.reg_registered:
        ring.reg_restricted = True
    ring.disabled = False


def task_restrictions(profile: KernelProfile, task: Task, step: Restrict, origin: str) -> RestrictionState:
    """§4.3 rows 1-8; returns the fresh state (the caller installs it on success)."""
    if task.restriction is not None:
        why = task.restriction.origin or "filters registered or inherited"
        raise Refused("EPERM", "§4.3 row 1", f"the task already has a restriction state ({why})")
    if not task.passes_gate():
        raise Refused("EACCES", "§4.3 row 2 / §4.2", "neither no_new_privs nor CAP_SYS_ADMIN")
    nr_args = 1 if step.nr_args is None else step.nr_args
    if nr_args != 1:
        raise Refused("EINVAL", "§4.3 row 3", f"nr_args {nr_args} != 1")
    if step.null:
        raise Refused("EFAULT", "§4.3 row 4", "header pointer is NULL")
    if step.header_flags:
        raise Refused("EINVAL", "§4.3 row 5", f"header flags {step.header_flags:#x} != 0")
    if any(step.header_resv):
        raise Refused("EINVAL", "§4.3 row 6", "header resv[] not zero")
    count = len(step.records) if step.nr_res is None else step.nr_res
    parsed = parse(step.records, count, null=False, profile=profile, where="§4.3 row 8")
    state = RestrictionState()
    state.apply(parsed, origin)
    return state
