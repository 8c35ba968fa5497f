"""The scenario language as frozen data: tasks, rings, registrations, submissions and what each should return.

A scenario is a sequence of steps, each performed by a named task. Results are compared by *outcome*:
``"ok"`` (any non-negative result) or an errno name (``"EACCES"``). See ``docs/scenarios.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Outcome of a call or a CQE: "ok" or an errno name.
Outcome = str
OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class SubmitExpect:
    """What one submit step should produce: the return of ``io_uring_enter`` and CQE outcomes by user_data.

    ``submitted`` is an int, or an errno name if ``io_uring_enter`` itself fails (then no CQEs).
    ``cqes`` lists ``(user_data, outcome)``; ``None`` means "not checked". A user_data absent from the
    mapping must not have produced a CQE.
    """

    submitted: int | str | None = None
    cqes: tuple[tuple[int, Outcome], ...] | None = None


Expect = Outcome | SubmitExpect | None


@dataclass(frozen=True, slots=True)
class Expectation:
    """An expected result, possibly different per kernel: ``(("<7.0", "EINVAL"), ("7.0+", "ok"))``.

    ``default`` applies when no selector matches; a selector of ``"*"`` matches every kernel.
    """

    by_kernel: tuple[tuple[str, Expect], ...] = ()
    default: Expect = None


@dataclass(frozen=True, slots=True)
class Sqe:
    """One submission. Only the fields the sandbox (classic check, prep, filters) can see are modelled.

    ``fd`` is a resource name (``"null"``, ``"zero"``, ``"pipe.r"``, ``"pipe.w"``, ``"cwd"``) or an int (a
    fixed-file index with ``IOSQE_FIXED_FILE``, or a raw descriptor number). ``result`` is the outcome the
    operation has when the sandbox lets it run; the model cannot perform I/O and reports it as declared,
    while the live kernel reports what really happened, so a wrong declaration shows up as a difference.
    """

    opcode: int
    user_data: int = 0
    flags: int = 0
    fd: str | int = "null"
    result: Outcome = OK
    # SOCKET
    family: int = 0
    type: int = 0
    protocol: int = 0
    # OPENAT / OPENAT2
    path: str = ""
    open_flags: int = 0
    mode: int = 0
    resolve: int = 0
    # CONNECT: the socket to create (family, type) and the sockaddr (addr_family, addr, port, addr_len)
    addr_family: int = 0
    addr: str = ""
    port: int = 0
    addr_len: int | None = None
    # READ/WRITE/READV/WRITEV length
    length: int = 8


@dataclass(frozen=True, slots=True)
class Step:
    """Base of every step. ``task`` names the task (thread) that performs it; ``"main"`` exists at start."""

    task: str = "main"
    expect: Expectation = field(default_factory=Expectation)
    line: int = 0  # index in the file, for messages


@dataclass(frozen=True, slots=True)
class SetNoNewPrivs(Step):
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)`` for this task (inherited by tasks it creates later)."""


@dataclass(frozen=True, slots=True)
class DropPrivileges(Step):
    """Become an unprivileged user (uid/gid 65534): the process loses CAP_SYS_ADMIN."""

    uid: int = 65534


@dataclass(frozen=True, slots=True)
class Fork(Step):
    """Create a child process; ``child`` names its (only) task."""

    child: str = ""


@dataclass(frozen=True, slots=True)
class SpawnThread(Step):
    """Create a thread in the same process; it shares descriptors (rings) but has its own restriction state."""

    thread: str = ""


@dataclass(frozen=True, slots=True)
class Exec(Step):
    """``execve`` a fresh interpreter: io_uring descriptors close (they are close-on-exec), restrictions stay."""


@dataclass(frozen=True, slots=True)
class CreateRing(Step):
    """``io_uring_setup``; ``ring`` names the new ring, visible to this task's process and its later children."""

    ring: str = ""
    setup_flags: int = 0
    entries: int = 8


@dataclass(frozen=True, slots=True)
class CloseRing(Step):
    """Close this process's descriptor of the ring."""

    ring: str = ""


@dataclass(frozen=True, slots=True)
class EnableRing(Step):
    """``IORING_REGISTER_ENABLE_RINGS``."""

    ring: str = ""


@dataclass(frozen=True, slots=True)
class RestrictionRecord:
    """One ``io_uring_restriction`` record: record type and its byte value, both as raw numbers."""

    kind: int
    value: int


@dataclass(frozen=True, slots=True)
class Restrict(Step):
    """``IORING_REGISTER_RESTRICTIONS`` on a ring, or on the task when ``ring`` is ``None`` (``fd == -1``).

    ``null`` passes a NULL pointer; ``nr_args`` overrides the count argument (task path: must be 1);
    ``header_flags``/``header_resv``/``nr_res`` override the task header fields to reach its errno rows.
    """

    ring: str | None = None
    records: tuple[RestrictionRecord, ...] = ()
    null: bool = False
    nr_args: int | None = None
    header_flags: int = 0
    header_resv: tuple[int, int, int] = (0, 0, 0)
    nr_res: int | None = None


@dataclass(frozen=True, slots=True)
class Filter(Step):
    """``IORING_REGISTER_BPF_FILTER`` on a ring, or on the task when ``ring`` is ``None``.

    ``program`` is the raw ``sock_filter`` array; ``source`` the assembly it came from (for display).
    ``expect_pdu_size`` is the value the kernel should write back into ``filter.pdu_size``.
    The remaining fields reproduce the rows of spec §5.3 (all zero / unset in ordinary use).
    """

    ring: str | None = None
    opcode: int = 0
    program: bytes = b""
    source: str = ""
    flags: int = 0
    pdu_size: int = 0
    expect_pdu_size: int | None = None
    filter_len: int | None = None
    null_program: bool = False
    nr_args: int | None = None
    cmd_type: int = 1
    cmd_flags: int = 0
    resv: int = 0
    filter_resv: bytes = b"\0\0\0"
    resv2: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)


#: Register opcodes a :class:`Register` step may issue, with arguments the live backend knows how to build.
REGISTER_WITH_ARGS: Final = frozenset({"BUFFERS", "UNREGISTER_BUFFERS", "FILES", "UNREGISTER_FILES", "PROBE",
                                       "PERSONALITY", "QUERY", "EVENTFD", "UNREGISTER_EVENTFD"})


@dataclass(frozen=True, slots=True)
class Register(Step):
    """Any other register opcode on a ring (or blind with ``ring = None``); ``result`` is its outcome when allowed.

    ``files`` are the resources to register for ``FILES``. Outcomes of the restriction layer (``EACCES``,
    ``EEXIST``, ``EBADF``…) are modelled; what the opcode's own handler returns is ``result``.
    """

    ring: str | None = None
    opcode: int = 0
    files: tuple[str, ...] = ()
    result: Outcome = OK
    registered_ring_index: int | None = None


@dataclass(frozen=True, slots=True)
class Submit(Step):
    """Queue ``sqes`` on the ring and call ``io_uring_enter`` for everything pending, then collect CQEs."""

    ring: str = ""
    sqes: tuple[Sqe, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence of steps. ``kernels`` limits the kernel versions it applies to (selectors)."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    source: str = ""
    kernels: tuple[str, ...] = ("*",)
    requires: tuple[str, ...] = ()
    path: str = ""
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)


#: Features a scenario may require; backends report which they have.
FEATURES: Final = frozenset({
    "bpf_filter",         # REGISTER_BPF_FILTER exists (7.0+)
    "task_restrictions",  # blind REGISTER_RESTRICTIONS (7.0+)
    "connect_payload",    # CONNECT has a filter payload (7.2+)
    "netns",              # the step may connect: run in a private network namespace with only loopback
    "unprivileged",       # needs a way to drop CAP_SYS_ADMIN
})
