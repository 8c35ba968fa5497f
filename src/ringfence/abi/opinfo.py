"""Per-opcode facts for policy authors: what a filter can see, the equivalent syscall, and how sensitive it is.

The danger classes are ringfence's own judgement, not kernel data: they say what an opcode can reach
beyond the file descriptors a task already holds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.abi.opcodes import RegisterOp, SqeOp


class Danger(enum.Enum):
    """How much new authority an opcode can give a sandboxed ring."""

    NONE = "none"              # no I/O at all (NOP, timeouts, cancellation)
    FD_IO = "fd-io"            # I/O on descriptors the task already holds
    FILESYSTEM = "filesystem"  # resolves paths: opens, creates, removes, renames
    NETWORK = "network"        # creates, connects, binds or accepts sockets
    PASSTHROUGH = "passthrough"  # driver-defined commands (URING_CMD): the filter cannot see the sub-command
    CROSS_RING = "cross-ring"  # posts into other rings, unchecked by them (MSG_RING)
    PROCESS = "process"        # waits on or wakes other tasks (WAITID, FUTEX_*)
    MEMORY = "memory"          # advice on the task's own memory or buffers


@dataclass(frozen=True, slots=True)
class OpInfo:
    """``syscalls``: the x86-64 system calls (by their kernel names) that do what the opcode does. The opcode can
    do what each of them can, so a seccomp profile's denial of any one should deny the opcode too
    (:mod:`ringfence.policy.seccomp_import`); empty: no system call does the same (NOP, timeouts, MSG_RING)."""

    opcode: SqeOp
    syscalls: tuple[str, ...]
    danger: Danger
    #: Union member a filter sees from 7.0 (``socket``/``open``) or 7.2 (``connect``); None: header only.
    ctx_member: str | None = None


_D = Danger
_TABLE: Final[tuple[tuple[str, tuple[str, ...], Danger, str | None], ...]] = (
    ("NOP", (), _D.NONE, None), ("READV", ("readv", "preadv", "preadv2"), _D.FD_IO, None),
    ("WRITEV", ("writev", "pwritev", "pwritev2"), _D.FD_IO, None),
    ("FSYNC", ("fsync", "fdatasync"), _D.FD_IO, None),
    ("READ_FIXED", ("read", "pread64"), _D.FD_IO, None), ("WRITE_FIXED", ("write", "pwrite64"), _D.FD_IO, None),
    ("POLL_ADD", ("poll",), _D.FD_IO, None), ("POLL_REMOVE", (), _D.NONE, None),
    ("SYNC_FILE_RANGE", ("sync_file_range",), _D.FD_IO, None), ("SENDMSG", ("sendmsg",), _D.NETWORK, None),
    ("RECVMSG", ("recvmsg",), _D.FD_IO, None), ("TIMEOUT", (), _D.NONE, None), ("TIMEOUT_REMOVE", (), _D.NONE, None),
    ("ACCEPT", ("accept", "accept4"), _D.NETWORK, None), ("ASYNC_CANCEL", (), _D.NONE, None),
    ("LINK_TIMEOUT", (), _D.NONE, None), ("CONNECT", ("connect",), _D.NETWORK, "connect"),
    ("FALLOCATE", ("fallocate",), _D.FD_IO, None), ("OPENAT", ("openat",), _D.FILESYSTEM, "open"),
    ("CLOSE", ("close",), _D.FD_IO, None), ("FILES_UPDATE", (), _D.FD_IO, None),
    ("STATX", ("statx",), _D.FILESYSTEM, None),
    ("READ", ("read", "pread64"), _D.FD_IO, None), ("WRITE", ("write", "pwrite64"), _D.FD_IO, None),
    ("FADVISE", ("fadvise64",), _D.FD_IO, None), ("MADVISE", ("madvise",), _D.MEMORY, None),
    ("SEND", ("sendto",), _D.NETWORK, None), ("RECV", ("recvfrom",), _D.FD_IO, None),
    ("OPENAT2", ("openat2",), _D.FILESYSTEM, "open"), ("EPOLL_CTL", ("epoll_ctl",), _D.FD_IO, None),
    ("SPLICE", ("splice",), _D.FD_IO, None), ("PROVIDE_BUFFERS", (), _D.MEMORY, None),
    ("REMOVE_BUFFERS", (), _D.MEMORY, None), ("TEE", ("tee",), _D.FD_IO, None),
    ("SHUTDOWN", ("shutdown",), _D.NETWORK, None), ("RENAMEAT", ("renameat", "renameat2"), _D.FILESYSTEM, None),
    ("UNLINKAT", ("unlinkat",), _D.FILESYSTEM, None), ("MKDIRAT", ("mkdirat",), _D.FILESYSTEM, None),
    ("SYMLINKAT", ("symlinkat",), _D.FILESYSTEM, None), ("LINKAT", ("linkat",), _D.FILESYSTEM, None),
    ("MSG_RING", (), _D.CROSS_RING, None), ("FSETXATTR", ("fsetxattr",), _D.FD_IO, None),
    ("SETXATTR", ("setxattr",), _D.FILESYSTEM, None), ("FGETXATTR", ("fgetxattr",), _D.FD_IO, None),
    ("GETXATTR", ("getxattr",), _D.FILESYSTEM, None), ("SOCKET", ("socket",), _D.NETWORK, "socket"),
    ("URING_CMD", ("ioctl", "getsockopt", "setsockopt"), _D.PASSTHROUGH, None),
    ("SEND_ZC", ("sendto",), _D.NETWORK, None),
    ("SENDMSG_ZC", ("sendmsg",), _D.NETWORK, None), ("READ_MULTISHOT", ("read",), _D.FD_IO, None),
    ("WAITID", ("waitid",), _D.PROCESS, None), ("FUTEX_WAIT", ("futex",), _D.PROCESS, None),
    ("FUTEX_WAKE", ("futex",), _D.PROCESS, None), ("FUTEX_WAITV", ("futex_waitv",), _D.PROCESS, None),
    ("FIXED_FD_INSTALL", (), _D.FD_IO, None), ("FTRUNCATE", ("ftruncate",), _D.FD_IO, None),
    ("BIND", ("bind",), _D.NETWORK, None), ("LISTEN", ("listen",), _D.NETWORK, None),
    ("RECV_ZC", ("recvmsg",), _D.NETWORK, None), ("EPOLL_WAIT", ("epoll_wait",), _D.FD_IO, None),
    ("READV_FIXED", ("readv", "preadv", "preadv2"), _D.FD_IO, None),
    ("WRITEV_FIXED", ("writev", "pwritev", "pwritev2"), _D.FD_IO, None),
    ("PIPE", ("pipe2",), _D.FD_IO, None), ("NOP128", (), _D.NONE, None),
    ("URING_CMD128", ("ioctl", "getsockopt", "setsockopt"), _D.PASSTHROUGH, None),
)

OPINFO: Final[Mapping[SqeOp, OpInfo]] = MappingProxyType(
    {SqeOp[n]: OpInfo(SqeOp[n], s, d, m) for n, s, d, m in _TABLE}
)

#: Opcodes a policy should not allow without thinking about it.
SENSITIVE: Final = frozenset(
    op for op, info in OPINFO.items()
    if info.danger in (Danger.FILESYSTEM, Danger.NETWORK, Danger.PASSTHROUGH, Danger.CROSS_RING, Danger.PROCESS)
)

#: The reverse index: for each system call named above, the opcodes that do what it does (in opcode order).
BY_SYSCALL: Final[Mapping[str, tuple[SqeOp, ...]]] = MappingProxyType({
    name: tuple(op for op, info in OPINFO.items() if name in info.syscalls)
    for name in sorted({s for info in OPINFO.values() for s in info.syscalls})
})


@dataclass(frozen=True, slots=True)
class Route:
    """Opcodes that reach the same kernel operation by different routes. A policy that restricts one member and
    leaves another allowed has left the operation open: ``audit`` reports it, the escape suite tries it."""

    name: str
    opcodes: tuple[SqeOp, ...]
    note: str


def _route(name: str, members: str, note: str) -> Route:
    return Route(name, tuple(SqeOp[m] for m in members.split()), note)


#: Equivalent routes, as data. Shared by ``ringfence audit`` and the escape suite (tests/guest/test_escapes.py).
ROUTES: Final[tuple[Route, ...]] = (
    _route("open", "OPENAT OPENAT2", "both open a path; OPENAT2 adds resolve flags"),
    _route("read", "READ READV READ_FIXED READV_FIXED READ_MULTISHOT", "all read from a descriptor"),
    _route("write", "WRITE WRITEV WRITE_FIXED WRITEV_FIXED", "all write to a descriptor"),
    _route("send", "SEND SENDMSG SEND_ZC SENDMSG_ZC", "all send on a socket; the msg forms carry an address"),
    _route("receive", "RECV RECVMSG RECV_ZC", "all receive from a socket"),
    _route("splice", "SPLICE TEE", "both move data between descriptors without a user buffer"),
    _route("xattr-set", "SETXATTR FSETXATTR", "both set an extended attribute"),
    _route("xattr-get", "GETXATTR FGETXATTR", "both read an extended attribute"),
    _route("fixed-table", "FILES_UPDATE FIXED_FD_INSTALL",
           "both change which files the ring's fixed table or the task's descriptor table holds"),
    _route("passthrough", "URING_CMD URING_CMD128", "both pass a driver command the filter cannot see"),
    _route("futex", "FUTEX_WAIT FUTEX_WAKE FUTEX_WAITV", "all operate on futexes"),
)

#: Each opcode's route (opcodes alone in their route are absent).
ROUTE_OF: Final[Mapping[SqeOp, Route]] = MappingProxyType({op: r for r in ROUTES for op in r.opcodes})


#: Opcodes whose restriction leans on others: a policy that checks the first member (CONNECT's destination)
#: and leaves a later one open (any SOCKET, an addressed send) has checked less than it seems. ``audit`` reports
#: it beside :data:`ROUTES`; these are not equivalents, so the escape suite does not try them as such.
COMPANIONS: Final[tuple[Route, ...]] = (
    _route("destination", "CONNECT SOCKET SEND SENDMSG SEND_ZC SENDMSG_ZC",
           "a datagram socket names its peer per message (SEND with an address, the msg forms), and SOCKET "
           "decides which families and types exist at all"),
)

#: Opcodes that change which files a ring's fixed table or the task's descriptor table holds, and what else
#: can: each can make "fixed files only" (a required FIXED_FILE flag) porous.
WIDENING_OPS: Final[Mapping[SqeOp, str]] = MappingProxyType({
    SqeOp.FILES_UPDATE: "replaces entries of the fixed file table with any descriptor the task holds",
    SqeOp.FIXED_FD_INSTALL: "turns a fixed file into a regular descriptor of the task",
    SqeOp.MSG_RING: "passes a fixed file to another ring (descriptor passing), unchecked by that ring's filters",
})

#: Opcodes that take a direct-descriptor slot (``file_index``), which no filter context shows.
DIRECT_DESCRIPTOR_OPS: Final = (SqeOp.OPENAT, SqeOp.OPENAT2, SqeOp.SOCKET, SqeOp.ACCEPT)

#: Register opcodes that widen what later requests can reach.
WIDENING_REGISTER: Final[Mapping[RegisterOp, str]] = MappingProxyType({
    RegisterOp.PERSONALITY: "registers the task's current credentials; a request naming the personality runs "
                            "with them even after the task has given them up",
    RegisterOp.FILES: "fills the fixed file table with any descriptors the task holds",
    RegisterOp.FILES2: "fills the fixed file table with any descriptors the task holds",
    RegisterOp.FILES_UPDATE: "replaces entries of the fixed file table",
    RegisterOp.FILES_UPDATE2: "replaces entries of the fixed file table",
})
