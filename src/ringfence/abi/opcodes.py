"""io_uring opcodes, flags and record types as enums (spec §2.1–2.7).

Members drop only the shared kernel prefix (``SqeOp.OPENAT`` is ``IORING_OP_OPENAT``; register opcodes keep
their ``REGISTER_``/``UNREGISTER_`` part). Which of them a given kernel knows is per-profile data
(:mod:`ringfence.abi.profiles`).
"""

from __future__ import annotations

import enum


class SqeOp(enum.IntEnum):
    """SQE opcodes, ``IORING_OP_*``."""

    NOP = 0
    READV = 1
    WRITEV = 2
    FSYNC = 3
    READ_FIXED = 4
    WRITE_FIXED = 5
    POLL_ADD = 6
    POLL_REMOVE = 7
    SYNC_FILE_RANGE = 8
    SENDMSG = 9
    RECVMSG = 10
    TIMEOUT = 11
    TIMEOUT_REMOVE = 12
    ACCEPT = 13
    ASYNC_CANCEL = 14
    LINK_TIMEOUT = 15
    CONNECT = 16
    FALLOCATE = 17
    OPENAT = 18
    CLOSE = 19
    FILES_UPDATE = 20
    STATX = 21
    READ = 22
    WRITE = 23
    FADVISE = 24
    MADVISE = 25
    SEND = 26
    RECV = 27
    OPENAT2 = 28
    EPOLL_CTL = 29
    SPLICE = 30
    PROVIDE_BUFFERS = 31
    REMOVE_BUFFERS = 32
    TEE = 33
    SHUTDOWN = 34
    RENAMEAT = 35
    UNLINKAT = 36
    MKDIRAT = 37
    SYMLINKAT = 38
    LINKAT = 39
    MSG_RING = 40
    FSETXATTR = 41
    SETXATTR = 42
    FGETXATTR = 43
    GETXATTR = 44
    SOCKET = 45
    URING_CMD = 46
    SEND_ZC = 47
    SENDMSG_ZC = 48
    READ_MULTISHOT = 49
    WAITID = 50
    FUTEX_WAIT = 51
    FUTEX_WAKE = 52
    FUTEX_WAITV = 53
    FIXED_FD_INSTALL = 54
    FTRUNCATE = 55
    BIND = 56
    LISTEN = 57
    RECV_ZC = 58
    EPOLL_WAIT = 59
    READV_FIXED = 60
    WRITEV_FIXED = 61
    PIPE = 62
    NOP128 = 63
    URING_CMD128 = 64


class RegisterOp(enum.IntEnum):
    """``io_uring_register(2)`` opcodes, ``IORING_REGISTER_*`` / ``IORING_UNREGISTER_*``."""

    BUFFERS = 0
    UNREGISTER_BUFFERS = 1
    FILES = 2
    UNREGISTER_FILES = 3
    EVENTFD = 4
    UNREGISTER_EVENTFD = 5
    FILES_UPDATE = 6
    EVENTFD_ASYNC = 7
    PROBE = 8
    PERSONALITY = 9
    UNREGISTER_PERSONALITY = 10
    RESTRICTIONS = 11
    ENABLE_RINGS = 12
    FILES2 = 13
    FILES_UPDATE2 = 14
    BUFFERS2 = 15
    BUFFERS_UPDATE = 16
    IOWQ_AFF = 17
    UNREGISTER_IOWQ_AFF = 18
    IOWQ_MAX_WORKERS = 19
    RING_FDS = 20
    UNREGISTER_RING_FDS = 21
    PBUF_RING = 22
    UNREGISTER_PBUF_RING = 23
    SYNC_CANCEL = 24
    FILE_ALLOC_RANGE = 25
    PBUF_STATUS = 26
    NAPI = 27
    UNREGISTER_NAPI = 28
    CLOCK = 29
    CLONE_BUFFERS = 30
    SEND_MSG_RING = 31
    ZCRX_IFQ = 32
    RESIZE_RINGS = 33
    MEM_REGION = 34
    QUERY = 35
    ZCRX_CTRL = 36
    BPF_FILTER = 37


#: Bit 31 of the register opcode: ``fd`` is an index into the task's registered-ring table.
REGISTER_USE_REGISTERED_RING = 1 << 31


class SqeFlag(enum.IntFlag):
    """``IOSQE_*`` bits of the SQE flags byte (§2.3). Request-flag bits 0–6 have the same values."""

    FIXED_FILE = 1 << 0
    IO_DRAIN = 1 << 1
    IO_LINK = 1 << 2
    IO_HARDLINK = 1 << 3
    ASYNC = 1 << 4
    BUFFER_SELECT = 1 << 5
    CQE_SKIP_SUCCESS = 1 << 6


#: ``SQE_VALID_FLAGS``: any other bit fails request init with ``-EINVAL``.
SQE_VALID_FLAGS = 0x7F


class SetupFlag(enum.IntFlag):
    """The ``IORING_SETUP_*`` flags that matter to restrictions (§2.4)."""

    IOPOLL = 1 << 0
    SQPOLL = 1 << 1
    SQ_AFF = 1 << 2
    CQSIZE = 1 << 3
    CLAMP = 1 << 4
    ATTACH_WQ = 1 << 5
    R_DISABLED = 1 << 6
    SUBMIT_ALL = 1 << 7
    COOP_TASKRUN = 1 << 8
    TASKRUN_FLAG = 1 << 9
    SQE128 = 1 << 10
    CQE32 = 1 << 11
    SINGLE_ISSUER = 1 << 12
    DEFER_TASKRUN = 1 << 13
    NO_MMAP = 1 << 14
    REGISTERED_FD_ONLY = 1 << 15
    NO_SQARRAY = 1 << 16


class RestrictionOp(enum.IntEnum):
    """Record types of ``struct io_uring_restriction`` (§2.5)."""

    REGISTER_OP = 0
    SQE_OP = 1
    SQE_FLAGS_ALLOWED = 2
    SQE_FLAGS_REQUIRED = 3
    LAST = 4


class FilterFlag(enum.IntFlag):
    """``io_uring_bpf_filter.flags`` (§2.7). Any other bit is ``-EINVAL``."""

    DENY_REST = 1
    SZ_STRICT = 2


#: ``io_uring_bpf.cmd_type`` value for a filter; the only one defined.
BPF_CMD_FILTER = 1


class EnterFlag(enum.IntFlag):
    """``io_uring_enter(2)`` flags used by the live ring."""

    GETEVENTS = 1 << 0
    SQ_WAKEUP = 1 << 1
    SQ_WAIT = 1 << 2


def op_name(op: int) -> str:
    """An SQE opcode's name, or its number when this ringfence does not know it."""
    return SqeOp(op).name if 0 <= op < len(SqeOp) else str(op)


def sqe_op(value: int | str | SqeOp) -> SqeOp:
    """An SQE opcode from a number, ``"OPENAT"`` or ``"IORING_OP_OPENAT"``."""
    if isinstance(value, str):
        name = value.upper().removeprefix("IORING_OP_")
        try:
            return SqeOp[name]
        except KeyError:
            raise ValueError(f"unknown SQE opcode {value!r}") from None
    return SqeOp(value)


def register_op(value: int | str | RegisterOp) -> RegisterOp:
    """A register opcode from a number, ``"BPF_FILTER"``, ``"REGISTER_BPF_FILTER"`` or ``"IORING_REGISTER_..."``."""
    if isinstance(value, str):
        name = value.upper().removeprefix("IORING_")
        if name.startswith("REGISTER_"):
            name = name.removeprefix("REGISTER_")
        try:
            return RegisterOp[name]
        except KeyError:
            raise ValueError(f"unknown register opcode {value!r}") from None
    return RegisterOp(value)


def sqe_flags(value: int | str | list[str] | tuple[str, ...]) -> int:
    """A flags byte from a number, ``"ASYNC|IO_LINK"``, ``"IOSQE_ASYNC"`` or a list of names."""
    if isinstance(value, int):
        return value
    names = value.split("|") if isinstance(value, str) else list(value)
    result = 0
    for raw in names:
        name = raw.strip().upper().removeprefix("IOSQE_")
        if not name:
            continue
        try:
            result |= SqeFlag[name]
        except KeyError:
            raise ValueError(f"unknown SQE flag {raw!r}") from None
    return result
