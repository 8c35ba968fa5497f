"""``ringfence run``: set no_new_privs, apply a Plan to this task, then exec the command — or run nothing.

Fail closed: every check and registration happens before ``execve``; if any fails, the command is never
executed and the exit status is 125 with the step and the reason (5 when the kernel lacks the feature, unless
the seccomp fallback is asked for). After a successful exec the status is the command's own; an exec that fails
is 126 (not executable) or 127 (not found), the convention of ``env`` and ``timeout``.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from ringfence.abi.opcodes import op_name
from ringfence.errors import SandboxError, UnsupportedError
from ringfence.policy.plan import Plan

EXIT_FAILED: Final = 125
EXIT_NOT_EXECUTABLE: Final = 126
EXIT_NOT_FOUND: Final = 127
EXIT_UNSUPPORTED: Final = 5


@dataclass(frozen=True, slots=True)
class Options:
    mechanism: str = "auto"
    fallback: str | None = None      # "deny-io-uring"
    fallback_errno: int = errno.ENOSYS
    close_inherited: bool = False
    dry_run: bool = False
    check: bool = True


def say(message: str) -> None:
    print(f"ringfence run: {message}", file=sys.stderr, flush=True)


def _supported() -> str | None:
    """Why this kernel cannot apply a task Plan (None when it can): both per-task forms must exist."""
    from ringfence.abi.opcodes import RegisterOp
    from ringfence.sandbox.apply import _blind

    for opcode, what in ((RegisterOp.BPF_FILTER, "io_uring cBPF filters"),
                         (RegisterOp.RESTRICTIONS, "per-task io_uring restrictions")):
        answer = _blind(opcode)
        if answer == "EINVAL":
            return f"this kernel ({os.uname().release}) has no {what} (Linux 7.0 and later have them)"
        if answer not in _PROBE_ANSWERS:  # fail closed on anything the probe cannot mean
            raise SandboxError(f"the kernel answers {answer} to a NULL-argument probe for {what}",
                               step="probe", errno_name=answer)
    return None


#: What a NULL-argument per-task call can answer on a kernel that has the feature: EFAULT (it would read the
#: argument), EACCES (no no_new_privs yet), EPERM (restrictions already inherited).
_PROBE_ANSWERS: Final = frozenset({"EFAULT", "EACCES", "EPERM"})


def describe(plan: Plan) -> str:
    """What applying ``plan`` would do, for ``--dry-run``."""
    lines = [f"policy {plan.policy} for kernel {plan.kernel} ({plan.arch}), target {plan.target}, "
             f"compiled by ringfence {plan.compiler}, plan {plan.hash[:16]}",
             "proof: " + ("not checked" if plan.proof is None else plan.proof.result)]
    for variant in plan.variants:
        lines.append(f"variant {variant.mechanism}:")
        for i, reg in enumerate(variant.registrations, start=1):
            if reg.kind == "restrictions":
                lines.append(f"  {i}. restrictions: {len(reg.records)} records")
            elif reg.filter is not None:
                f = reg.filter
                lines.append(f"  {i}. {op_name(f.opcode)} filter: {len(f.program) // 8} instructions, "
                             f"pdu_size {f.pdu_size}, flags {f.flags}" + (f" ({'; '.join(reg.rules)})"
                                                                           if reg.rules else ""))
            else:
                lines.append(f"  {i}. {reg.kind}")
    return "\n".join(lines)


#: Kernel limits no Plan can close (docs/escapes.md), named before every exec so nobody relies on them.
LIMIT_ALWAYS: Final = ("kernel limit: a ring created outside this sandbox and taken later (pidfd_getfd, which "
                       "needs ptrace access) is not restricted, and blind IORING_REGISTER_SEND_MSG_RING posts "
                       "completions into any ring the command holds (see docs/escapes.md)")


def _exec(argv: Sequence[str]) -> NoReturn:
    os.environ.pop("RINGFENCE_FAULT", None)  # the test seam is for this process, not the command
    try:
        os.execvp(argv[0], list(argv))
    except FileNotFoundError:
        say(f"{argv[0]}: command not found")
        os._exit(EXIT_NOT_FOUND)
    except PermissionError:
        say(f"{argv[0]}: permission denied")
        os._exit(EXIT_NOT_EXECUTABLE)
    except OSError as exc:
        say(f"{argv[0]}: {exc.strerror}")
        os._exit(EXIT_NOT_EXECUTABLE)


def fallback_or_refuse(options: Options, why: str, argv: Sequence[str]) -> int:
    """The answer when this kernel cannot apply a sandbox: exit 5, or with ``--fallback deny-io-uring`` the
    seccomp fallback and exec (returns only when the command was not run)."""
    if options.fallback != "deny-io-uring":
        say(f"{why}; the command was not run (--fallback deny-io-uring makes io_uring unavailable instead)")
        return EXIT_UNSUPPORTED
    from ringfence.sandbox import fallback

    if options.dry_run:
        say(f"{why}: would install a seccomp filter that fails io_uring system calls with errno "
            f"{options.fallback_errno}")
        return 0
    try:
        fallback.install(options.fallback_errno)
    except OSError as exc:
        say(f"seccomp fallback: {exc}; the command was not run")
        return EXIT_FAILED
    say(f"{why}: io_uring system calls fail with {errno.errorcode.get(options.fallback_errno, '?')} for this "
        "command (seccomp fallback)")
    _exec(argv)


def run(plan: Plan, argv: Sequence[str], options: Options) -> int:
    """Apply ``plan`` and exec ``argv``; returns an exit status only when the command was not run."""
    from ringfence.sandbox import apply
    from ringfence.sandbox.inherited import io_uring_fds

    if plan.target != "task":
        say("this Plan restricts a ring; `ringfence run` applies task Plans (see docs/sandbox.md)")
        return EXIT_FAILED
    if options.dry_run:
        print(describe(plan))
    unavailable = apply.io_uring_unavailable()
    if unavailable:
        say(f"{unavailable}; the command was not run")
        return EXIT_UNSUPPORTED
    try:
        missing = _supported()
    except SandboxError as exc:
        say(f"{exc}; the command was not run")
        return EXIT_FAILED
    if missing:
        return fallback_or_refuse(options, missing, argv)
    problems = apply.check_machine(plan) if options.check else []
    if problems:
        say("; ".join(problems) + "; the command was not run")
        return EXIT_FAILED
    try:
        inherited = io_uring_fds()
    except SandboxError as exc:
        say(f"{exc}; the command was not run")
        return EXIT_FAILED
    if inherited:
        if not options.close_inherited:
            say(f"this process already holds io_uring descriptors {', '.join(map(str, inherited))}: the sandbox "
                "would not reach those rings; the command was not run (--close-inherited closes them first)")
            return EXIT_FAILED
        for fd in inherited:
            os.close(fd)
        say(f"closed inherited io_uring descriptors {', '.join(map(str, inherited))}")
    if options.dry_run:
        return 0
    try:
        applied = apply.restrict_self(plan, mechanism=options.mechanism, check=False)
    except UnsupportedError as exc:
        return fallback_or_refuse(options, str(exc), argv)
    except SandboxError as exc:
        say(f"{exc}; the command was not run")
        return EXIT_FAILED
    except OSError as exc:
        say(f"{exc}; the command was not run")
        return EXIT_FAILED
    if os.environ.get("RINGFENCE_RUN_VERBOSE"):
        say(f"applied the {applied.mechanism} variant: {applied.registrations} registrations")
    say(f"warning: {LIMIT_ALWAYS}")
    _exec(argv)
