"""Apply a Plan — all of it, or nothing that matters — to the calling task or to a ring.

Order, and why:

1. **check** the Plan against this machine (architecture, kernel, compiler) and the environment (the io_uring
   sysctls, threads, rings already open);
2. **validate** every registration where it costs nothing: filters on a throwaway ring, restriction records on
   a throwaway disabled ring (the ring path runs the same checks without privilege);
3. **no_new_privs** (the first irreversible step; the per-task path needs it unless the caller has
   CAP_SYS_ADMIN);
4. **choose the variant**: classic restrictions are once-only, so a task that already carries restriction state
   (``EPERM`` from a NULL-argument probe, which can never change anything) gets the filters-only variant;
5. **register** in the Plan's order. A failure here leaves earlier registrations in place (nothing removes
   them): callers never go on to run anything — ``ringfence run`` does not exec, :func:`restrict_self` raises.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from ringfence import __version__
from ringfence.abi.opcodes import RegisterOp, SetupFlag, op_name
from ringfence.abi.profiles import profile_for_release
from ringfence.errors import KernelError, SandboxError, UnsupportedError, errno_name
from ringfence.live import _sys
from ringfence.live.ring import Ring, register_bpf_filter, register_restrictions, register_task_restrictions
from ringfence.policy.plan import Plan, Registration, Variant
from ringfence.sandbox.inherited import io_uring_fds, threads


@dataclass(frozen=True, slots=True)
class Applied:
    """What was applied: the variant, and each filter's ``pdu_size`` as the kernel wrote it back."""

    mechanism: str
    registrations: int
    pdu_sizes: tuple[int, ...]


def _describe(index: int, reg: Registration) -> str:
    if reg.kind == "filter" and reg.filter is not None:
        return f"registration {index + 1} ({op_name(reg.filter.opcode)} filter)"
    return f"registration {index + 1} ({reg.kind})"


def _sysctl(name: str) -> int | None:
    try:
        with open(f"/proc/sys/kernel/{name}") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def check_machine(plan: Plan, *, release: str | None = None) -> list[str]:
    """Why this Plan must not be applied here (empty when it may)."""
    problems = []
    machine = os.uname().machine
    if plan.arch != machine:
        problems.append(f"the Plan is for {plan.arch}, this machine is {machine}")
    if plan.compiler != __version__:
        problems.append(f"the Plan was compiled by ringfence {plan.compiler}, this is {__version__}: recompile it")
    release = release or os.uname().release
    try:
        here = profile_for_release(release).name
    except (KeyError, ValueError):
        here = f"unknown ({release})"
    if plan.kernel != here:
        problems.append(f"the Plan was compiled for kernel {plan.kernel}, this kernel is {release} ({here}): "
                        "recompile it with --kernel " + here.split(" ")[0])
    return problems


def io_uring_unavailable() -> str | None:
    """Why this process cannot use io_uring at all, naming the sysctl when it is the cause."""
    try:
        Ring.setup(1).close()
        return None
    except KernelError as exc:
        disabled, group = _sysctl("io_uring_disabled"), _sysctl("io_uring_group")
        if disabled == 2:
            return f"io_uring is disabled on this machine (sysctl kernel.io_uring_disabled = 2): {exc.name}"
        if disabled == 1:
            return (f"io_uring is limited to the group of sysctl kernel.io_uring_group ({group}) and "
                    f"CAP_SYS_ADMIN (kernel.io_uring_disabled = 1): {exc.name}")
        return f"io_uring_setup fails here: {exc.name}"


def validate(variant: Variant) -> None:
    """Try every registration on throwaway rings: the kernel's own checks, without making anything permanent.

    A task that already carries register restrictions may refuse the throwaway ring's registration itself
    (``EACCES``); that check is then left to the real registration.
    """
    filters = [(i, r) for i, r in enumerate(variant.registrations) if r.kind == "filter" and r.filter is not None]
    if filters:
        with Ring.setup(1) as ring:
            for i, reg in filters:
                result, _ = register_bpf_filter(ring.fd, reg.filter)
                if result == -errno.EACCES:
                    break  # register-restricted by inheritance: validated by the real registration instead
                if result < 0:
                    raise SandboxError(f"the kernel refuses it ({errno_name(-result)}), checked on a throwaway ring",
                                       step=_describe(i, reg), errno_name=errno_name(-result))
    for i, reg in enumerate(variant.registrations):
        if reg.kind != "restrictions":
            continue
        with Ring.setup(1, SetupFlag.R_DISABLED) as ring:
            result = register_restrictions(ring.fd, reg.records)
        if result < 0 and result not in (-errno.EBUSY, -errno.EACCES):  # inherited state: the task path decides
            raise SandboxError(f"the kernel refuses the records ({errno_name(-result)}), checked on a throwaway ring",
                               step=_describe(i, reg), errno_name=errno_name(-result))


def choose(plan: Plan, mechanism: str = "auto") -> Variant:
    """The variant to apply on this task now (after no_new_privs is set)."""
    if mechanism != "auto":
        chosen = plan.variant(mechanism)
        if chosen is None:
            raise SandboxError(f"the Plan has no {mechanism} variant", step="choose")
        return chosen
    classic, filters = plan.variant("classic"), plan.variant("filters")
    needs_classic = classic is not None and any(r.kind == "restrictions" for r in classic.registrations)
    if plan.target == "ring" or not needs_classic:
        chosen = classic or filters
        assert chosen is not None
        return chosen
    answer = _blind(RegisterOp.RESTRICTIONS)
    if answer == "EFAULT":
        assert classic is not None
        return classic
    if answer == "EPERM":
        if filters is None:
            raise SandboxError("this task already carries io_uring restrictions (a parent sandbox), so classic "
                               "restrictions cannot be added, and this Plan has no filters-only variant "
                               "(its [flags] or [register] sections need classic restrictions)", step="choose")
        return filters
    if answer == "EINVAL":
        raise UnsupportedError("this kernel has no per-task io_uring restrictions (they arrived in Linux 7.0)")
    raise SandboxError(f"the kernel answers {answer} to a per-task registration", step="choose", errno_name=answer)


def _blind(opcode: RegisterOp) -> str:
    """A NULL-argument per-task call: ``EFAULT`` means "would be accepted"; it can never change anything."""
    result = _sys.register_raw(-1, opcode, 0, 1)
    return "ok" if result >= 0 else errno_name(-result)


def _register_task(variant: Variant) -> Applied:
    written = []
    for i, reg in enumerate(variant.registrations):
        if reg.kind == "restrictions":
            result = register_task_restrictions(reg.records)
        elif reg.kind == "filter" and reg.filter is not None:
            result, pdu = register_bpf_filter(-1, reg.filter)
            written.append(pdu)
        else:
            raise SandboxError(f"a task Plan cannot hold a {reg.kind} step", step=_describe(i, reg))
        if result < 0:
            name = errno_name(-result)
            raise SandboxError(f"the kernel refused it ({name}); {i} earlier registration(s) stay in place",
                               step=_describe(i, reg), errno_name=name)
    return Applied(variant.mechanism, len(variant.registrations), tuple(written))


def restrict_self(plan: Plan, *, mechanism: str = "auto", check: bool = True) -> Applied:
    """Apply a task Plan to the calling thread — for a program that sandboxes itself before creating rings.

    Refuses in a multithreaded process (restrictions are per thread: the others would stay free) and once rings
    exist (restrictions never reach them). Raises :class:`SandboxError` before anything irreversible when a
    check fails; if a registration fails after others succeeded, the error says so and the process must not go
    on to trust the sandbox.
    """
    if plan.target != "task":
        raise SandboxError("this Plan restricts a ring: use restrict_ring()", step="check")
    problems = check_machine(plan) if check else []
    if problems:
        raise SandboxError("; ".join(problems), step="check")
    if threads() > 1:
        raise SandboxError(f"this process has {threads()} threads; restrictions are per thread, so the others "
                           "would stay unrestricted: sandbox before starting threads", step="check")
    rings = io_uring_fds()
    if rings:
        raise SandboxError(f"io_uring descriptors already open ({', '.join(map(str, rings))}): restrictions "
                           "never reach rings that exist before them", step="check")
    unavailable = io_uring_unavailable()
    if unavailable:
        raise UnsupportedError(unavailable)
    variant = choose(plan, mechanism) if mechanism != "auto" else None
    validate(variant or plan.variants[0])
    if not _sys.no_new_privs():
        _sys.set_no_new_privs()
    variant = variant or choose(plan)
    if variant is not plan.variants[0]:
        validate(variant)
    return _register_task(variant)


def restrict_ring(ring_fd: int, plan: Plan, *, check: bool = True) -> Applied:
    """Apply a ring Plan to a ring created with ``IORING_SETUP_R_DISABLED``, then enable it."""
    if plan.target != "ring":
        raise SandboxError("this Plan restricts a task: use restrict_self() or ringfence run", step="check")
    problems = check_machine(plan) if check else []
    if problems:
        raise SandboxError("; ".join(problems), step="check")
    variant = plan.variants[0]
    written = []
    for i, reg in enumerate(variant.registrations):
        if reg.kind == "restrictions":
            result = register_restrictions(ring_fd, reg.records)
            if result == -errno.EBADFD:
                raise SandboxError("the ring is not disabled: create it with IORING_SETUP_R_DISABLED",
                                   step=_describe(i, reg), errno_name="EBADFD")
        elif reg.kind == "filter" and reg.filter is not None:
            result, pdu = register_bpf_filter(ring_fd, reg.filter)
            written.append(pdu)
        else:
            result = _sys.register_raw(ring_fd, RegisterOp.ENABLE_RINGS, 0, 0)
        if result < 0:
            name = errno_name(-result)
            raise SandboxError(f"the kernel refused it ({name})", step=_describe(i, reg), errno_name=name)
    return Applied(variant.mechanism, len(variant.registrations), tuple(written))
