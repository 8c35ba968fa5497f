"""The scenario language as frozen data: tasks, rings, registrations, submissions and what each should return.

A scenario is a sequence of steps, each performed by a named task. Results are compared by *outcome*:
``"ok"`` (any non-negative result) or an errno name (``"EACCES"``). See ``docs/scenarios.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final

from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
from ringfence.abi.sqe import Sqe

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
class ConnectTo:
    """How the harness builds a CONNECT: the socket it creates for the SQE's ``fd`` and the address it passes.

    ``addr`` is the text form (an AF_UNIX path may hold ``{tmp}``, expanded by the harness); the SQE's
    ``sockaddr`` holds the same address with the text unexpanded, which is all the model needs.
    """

    socket_family: int
    socket_type: int
    family: int
    addr: str = ""
    port: int = 0


@dataclass(frozen=True, slots=True)
class SubmitItem:
    """One SQE of a submit step: the kernel's view (:class:`ringfence.abi.sqe.Sqe`) plus what only the harness
    needs to build it, and the outcome the operation has when the sandbox lets it run.

    ``fd`` names the descriptor the SQE's ``fd`` field refers to: a resource (``"null"``, ``"zero"``, ``"pipe.r"``,
    ``"pipe.w"``, ``"cwd"``) or an int (a fixed-file index with ``IOSQE_FIXED_FILE``, or a raw number); None when
    ``sqe.fd`` is not a descriptor (SOCKET's domain, NOP). ``result`` is declared: the model cannot perform I/O
    and reports it; the live kernel reports what really happened, so a wrong declaration shows up as a
    difference. ``buffer`` is the size of the READ/WRITE buffer (and of the READV/WRITEV iovec). ``arena`` is a
    raw ``addr``: an offset into the agent's arena (:mod:`ringfence.harness.arena`), never a host address.
    """

    sqe: Sqe
    fd: str | int | None = None
    result: Outcome = OK
    buffer: int = 8
    connect: ConnectTo | None = None
    arena: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """Base of every step. ``task`` names the task (thread) that performs it; ``"main"`` exists at start."""

    kind: ClassVar[str] = ""
    task: str = "main"
    expect: Expectation = field(default_factory=Expectation)
    line: int = 0  # index in the file, for messages


@dataclass(frozen=True, slots=True)
class SetNoNewPrivs(Step):
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)`` for this task (inherited by tasks it creates later)."""

    kind: ClassVar[str] = "nnp"


@dataclass(frozen=True, slots=True)
class DropPrivileges(Step):
    """Become an unprivileged user (uid/gid 65534): the process loses CAP_SYS_ADMIN."""

    kind: ClassVar[str] = "drop_privileges"
    uid: int = 65534


@dataclass(frozen=True, slots=True)
class UserNamespace(Step):
    """``unshare(CLONE_NEWUSER)``: the process enters a new user namespace, where it holds every capability (no uid
    mapping is written). Only for a task that is its process's only thread, like ``exec``."""

    kind: ClassVar[str] = "userns"


@dataclass(frozen=True, slots=True)
class Fork(Step):
    """Create a child process; ``child`` names its (only) task."""

    kind: ClassVar[str] = "fork"
    child: str = ""


@dataclass(frozen=True, slots=True)
class SpawnThread(Step):
    """Create a thread in the same process; it shares descriptors (rings) but has its own restriction state."""

    kind: ClassVar[str] = "thread"
    thread: str = ""


@dataclass(frozen=True, slots=True)
class Exec(Step):
    """``execve`` a fresh interpreter: io_uring descriptors close (they are close-on-exec), restrictions stay."""

    kind: ClassVar[str] = "exec"


@dataclass(frozen=True, slots=True)
class CreateRing(Step):
    """``io_uring_setup``; ``ring`` names the new ring, visible to this task's process and its later children."""

    kind: ClassVar[str] = "ring"
    ring: str = ""
    setup_flags: int = 0
    entries: int = 8


@dataclass(frozen=True, slots=True)
class CloseRing(Step):
    """Close this process's descriptor of the ring."""

    kind: ClassVar[str] = "close"
    ring: str = ""


@dataclass(frozen=True, slots=True)
class PassRing(Step):
    """Hand this process's descriptor of ``ring`` to the process of task ``to``, which then holds the ring under the
    same name: sent over an ``AF_UNIX`` socket (``via = "scm_rights"``), or taken by the receiver with
    ``pidfd_getfd(2)`` (``via = "pidfd_getfd"``). The result is the receiving side's."""

    kind: ClassVar[str] = "pass_ring"
    ring: str = ""
    to: str = ""
    via: str = "scm_rights"


@dataclass(frozen=True, slots=True)
class EnableRing(Step):
    """``IORING_REGISTER_ENABLE_RINGS``; ``arg`` passes a non-NULL pointer (to zeroed memory) and ``nr_args`` a
    count, both of which the kernel refuses."""

    kind: ClassVar[str] = "enable"
    ring: str = ""
    arg: bool = False
    nr_args: int = 0


@dataclass(frozen=True, slots=True)
class Wait(Step):
    """A wait-only ``io_uring_enter``: ``to_submit`` 0, ``IORING_ENTER_GETEVENTS`` with ``min_complete``. The wait
    is bounded by ``timeout_ms`` (``IORING_ENTER_EXT_ARG`` with a timespec), so one that nothing can satisfy ends
    in ``ETIME`` instead of hanging the harness."""

    kind: ClassVar[str] = "wait"
    ring: str = ""
    min_complete: int = 0
    timeout_ms: int = 10


@dataclass(frozen=True, slots=True)
class Restrict(Step):
    """``IORING_REGISTER_RESTRICTIONS`` on a ring, or on the task when ``ring`` is ``None`` (``fd == -1``).

    ``null`` passes a NULL pointer; ``nr_args`` overrides the count argument (ring: the record count; task: must
    be 1); ``header`` overrides the task header (flags, reserved words, ``nr_res``) to reach its errno rows.
    """

    kind: ClassVar[str] = "restrict"
    ring: str | None = None
    records: tuple[Restriction, ...] = ()
    null: bool = False
    nr_args: int | None = None
    header: TaskRestrictionHeader | None = None


@dataclass(frozen=True, slots=True)
class Filter(Step):
    """``IORING_REGISTER_BPF_FILTER`` on a ring, or on the task when ``ring`` is ``None``.

    ``registration`` is the kernel's argument (its ``program`` the raw ``sock_filter`` array); None passes a
    NULL pointer (``null = true`` in a scenario). ``source`` is the assembly the program came from (for
    display). ``expect_pdu_size`` is the value the kernel should write back into ``filter.pdu_size``.
    """

    kind: ClassVar[str] = "filter"
    ring: str | None = None
    registration: FilterRegistration | None = None
    nr_args: int | None = None
    expect_pdu_size: int | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Register(Step):
    """Any other register opcode on a ring (or blind with ``ring = None``); ``result`` is its outcome when allowed.

    ``files`` are the resources to register for ``FILES``. Outcomes of the restriction layer (``EACCES``,
    ``EEXIST``, ``EBADF``…) are modelled; what the opcode's own handler returns is ``result``.
    """

    kind: ClassVar[str] = "register"
    ring: str | None = None
    opcode: int = 0
    files: tuple[str, ...] = ()
    result: Outcome = OK
    registered_ring_index: int | None = None


@dataclass(frozen=True, slots=True)
class Submit(Step):
    """Queue ``sqes`` on the ring and call ``io_uring_enter`` for everything pending, then collect CQEs."""

    kind: ClassVar[str] = "submit"
    ring: str = ""
    sqes: tuple[SubmitItem, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyPolicy(Step):
    """Compile a policy for the kernel the scenario runs on and perform the Plan's registrations: on the task
    (``ring`` None), or on a ring created disabled (then enabled). Backends never see this step: it is replaced by
    the registrations (:func:`ringfence.scenario.bind.bind`) once the kernel profile is known.

    ``policy`` is a :class:`ringfence.policy.ast.Policy`; ``mechanism`` picks the Plan variant (``classic`` or
    ``filters``).
    """

    kind: ClassVar[str] = "policy"
    ring: str | None = None
    policy: object = None
    mechanism: str = "classic"
    source: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence of steps. ``kernels`` limits the kernel versions it applies to (selectors); ``timeout``
    bounds a live run in seconds (None: the harness's default)."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    source: str = ""
    kernels: tuple[str, ...] = ("*",)
    requires: tuple[str, ...] = ()
    path: str = ""
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    timeout: int | None = None


#: Every step kind by its ``do`` name: the one registry the loader, the model adapter and the harness share.
STEPS: Final[Mapping[str, type[Step]]] = {cls.kind: cls for cls in (
    SetNoNewPrivs, DropPrivileges, UserNamespace, Fork, SpawnThread, Exec, CreateRing, CloseRing, PassRing,
    EnableRing, Restrict, Filter, Register, Submit, Wait, ApplyPolicy)}

#: Features a scenario may require; backends report which they have.
FEATURES: Final = frozenset({
    "bpf_filter",         # REGISTER_BPF_FILTER exists (7.0+)
    "task_restrictions",  # blind REGISTER_RESTRICTIONS (7.0+)
    "connect_payload",    # CONNECT has a filter payload (7.2+)
    "netns",              # the step may connect: run in a private network namespace with only loopback
    "unprivileged",       # needs a way to drop CAP_SYS_ADMIN
})
