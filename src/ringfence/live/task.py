"""Apply classic restrictions, cBPF filters and no_new_privs to the calling thread — irreversibly.

All or nothing: every input is validated first, filters by registering them on a throwaway ring (the ring path
runs the same checks without any privilege, spec §5.2–5.3) and restriction records on a throwaway
``R_DISABLED`` ring (same parser, §3.2), and support and privilege are checked with blind calls that cannot
succeed (a NULL argument gives ``-EFAULT`` exactly when the call would otherwise be accepted, §4.3–4.4). Only then
does anything irreversible happen: no_new_privs, then the classic set (once only), then the filters.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from ringfence.abi.layout import SOCK_FILTER_SIZE, FilterRegistration, Restriction
from ringfence.abi.opcodes import RegisterOp, SetupFlag
from ringfence.errors import KernelError, UnsupportedError, errno_name, errno_number
from ringfence.live import _sys
from ringfence.live.ring import Ring, register_bpf_filter, register_restrictions, register_task_restrictions

MAX_INSNS = 4096


def blind_support(opcode: RegisterOp) -> str:
    """What a blind call of ``opcode`` with a NULL argument answers: ``EFAULT`` means "supported and allowed".

    ``EINVAL`` means the kernel has no such blind operation, ``EACCES`` that the privilege gate fails, ``EPERM``
    (restrictions only) that the task already has restriction state. Never changes anything.
    """
    result = _sys.register_raw(-1, opcode, 0, 1)
    if result >= 0:  # pragma: no cover - a NULL argument cannot be accepted
        raise AssertionError(f"blind {opcode.name} with NULL succeeded")
    return errno_name(-result)


def _validate_filters(filters: Sequence[FilterRegistration]) -> None:
    for f in filters:
        if not f.program or len(f.program) % SOCK_FILTER_SIZE or len(f.program) // SOCK_FILTER_SIZE > MAX_INSNS:
            raise ValueError(f"filter for opcode {f.opcode}: a program is 1..{MAX_INSNS} 8-byte instructions")
    if not filters:
        return
    with Ring.setup(1) as ring:
        for f in filters:
            result, _ = register_bpf_filter(ring.fd, f)
            if result < 0:
                if result == -errno.EINVAL and blind_support(RegisterOp.BPF_FILTER) == "EINVAL":
                    raise UnsupportedError("this kernel has no io_uring cBPF filters (REGISTER_BPF_FILTER)")
                raise KernelError(-result, f"filter for opcode {f.opcode} (checked on a throwaway ring)")


def _validate_records(records: Sequence[Restriction]) -> None:
    with Ring.setup(1, SetupFlag.R_DISABLED) as ring:
        result = register_restrictions(ring.fd, records)
        if result < 0:
            raise KernelError(-result, "restriction records (checked on a throwaway ring)")


def apply(*, restrictions: Sequence[Restriction] | None = None, filters: Sequence[FilterRegistration] = (),
          set_nnp: bool = True) -> list[int]:
    """Restrict the calling thread; returns the kernel's ``pdu_size`` write-back for each filter.

    ``restrictions=None`` registers no classic set; an empty sequence registers the empty set (deny everything).
    Raises before any irreversible call if anything would be refused.
    """
    _validate_filters(filters)
    if restrictions is not None:
        _validate_records(restrictions)
    privileged = _sys.no_new_privs() or _sys.has_cap_sys_admin()
    if not privileged and not set_nnp:
        raise KernelError(errno.EACCES, "task registration needs no_new_privs or CAP_SYS_ADMIN (checked first)")
    needed = ([RegisterOp.RESTRICTIONS] if restrictions is not None else []) + \
             ([RegisterOp.BPF_FILTER] if filters else [])
    for op in needed:
        answer = blind_support(op)
        if answer == "EINVAL":
            raise UnsupportedError(f"this kernel has no per-task {op.name} (blind io_uring_register)")
        if answer == "EPERM":
            raise KernelError(errno.EPERM, "classic task restrictions: this task already has restriction state")
        if answer not in ("EFAULT", "EACCES"):
            raise KernelError(errno_number(answer), f"blind {op.name} support check")
    # -- irreversible from here on --
    if set_nnp and not _sys.no_new_privs():
        _sys.set_no_new_privs()
    if restrictions is not None:
        result = register_task_restrictions(restrictions)
        if result < 0:
            raise KernelError(-result, "task REGISTER_RESTRICTIONS")
    written: list[int] = []
    for f in filters:
        result, pdu = register_bpf_filter(-1, f)
        if result < 0:  # only an allocation failure can get here after validation
            raise KernelError(-result, f"task REGISTER_BPF_FILTER for opcode {f.opcode} (earlier ones applied)")
        written.append(pdu)
    return written
