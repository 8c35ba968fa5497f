"""Turn a :class:`ringfence.abi.sqe.Sqe` into the 64 bytes the kernel reads, with the memory its pointers refer to.

:func:`prepare` copies every numeric field and, for the opcodes whose prep reads memory, allocates it and points
the SQE at it: the READ/WRITE buffer or the READV/WRITEV iovec, the OPENAT path, OPENAT2's ``open_how``, the
CONNECT address. The ring keeps that memory alive until the request has completed, because the kernel may touch
it at issue time, long after the SQE was written.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SqeOp
from ringfence.abi.sqe import SOCKADDR_STORAGE, U32, U64
from ringfence.abi.sqe import Sqe as KernelSqe
from ringfence.live import _sys

_RW = frozenset({SqeOp.READ, SqeOp.WRITE, SqeOp.SEND, SqeOp.RECV})
_RWV = frozenset({SqeOp.READV, SqeOp.WRITEV})


@dataclass(slots=True)
class Prepared:
    """An SQE ready to be queued and the memory it references."""

    sqe: _sys.Sqe
    keep: list[object] = field(default_factory=list)


def prepare(sqe: KernelSqe, *, buffer: int = 8, data: bytes = b"") -> Prepared:
    """The SQE as the kernel reads it.

    READ/WRITE/SEND/RECV get a buffer of ``buffer`` bytes (WRITE and SEND send ``data``, padded with ``x``);
    READV/WRITEV one iovec of that size. ``path``, ``how`` and ``sockaddr`` are copied into fresh memory that
    ``addr`` (and OPENAT2's ``off``) point at; for other opcodes ``addr`` and ``off`` are sent as they are."""
    c = _sys.Sqe()
    c.opcode, c.flags, c.ioprio, c.fd = sqe.opcode, sqe.flags, sqe.ioprio, sqe.fd
    c.off, c.addr, c.len, c.op_flags = sqe.off & U64, sqe.addr & U64, sqe.len & U32, sqe.op_flags & U32
    c.user_data, c.buf_index, c.personality, c.file_index = sqe.user_data, sqe.buf_index, sqe.personality, \
        sqe.file_index & U32
    keep: list[object] = []
    op = sqe.opcode
    if op in _RW or op in _RWV:
        buf = ctypes.create_string_buffer(data.ljust(buffer, b"x")[:buffer], max(buffer, 1))
        keep.append(buf)
        if op in _RW:
            c.addr, c.len = ctypes.addressof(buf), buffer
        else:
            iov = (_sys.Iovec * 1)()
            iov[0].iov_base, iov[0].iov_len = ctypes.addressof(buf), buffer
            keep.append(iov)
            c.addr, c.len = ctypes.addressof(iov), 1
    elif op in (SqeOp.OPENAT, SqeOp.OPENAT2):
        name = ctypes.create_string_buffer(sqe.path.encode())
        keep.append(name)
        c.addr = ctypes.addressof(name)
        if op == SqeOp.OPENAT2 and sqe.how is not None:
            how = _sys.OpenHow(sqe.how.flags & U64, sqe.how.mode & U64, sqe.how.resolve & U64)
            keep.append(how)
            c.off = ctypes.addressof(how)
    elif op == SqeOp.CONNECT and sqe.sockaddr:
        # room for the longest address the kernel copies: a length beyond the address reads zeros
        buf = ctypes.create_string_buffer(sqe.sockaddr, max(len(sqe.sockaddr), SOCKADDR_STORAGE))
        keep.append(buf)
        c.addr = ctypes.addressof(buf)
    return Prepared(c, keep)


# -- shorthands: the abi constructors, prepared ----------------------------------------------------------------

sockaddr = abisqe.sockaddr


def nop(user_data: int, flags: int = 0) -> Prepared:
    return prepare(abisqe.nop(user_data=user_data, flags=flags))


def rw(opcode: int, fd: int, length: int, *, user_data: int, flags: int = 0, data: bytes = b"",
       offset: int = 0) -> Prepared:
    """READ/WRITE of ``length`` bytes, or READV/WRITEV with one iovec of that size (WRITE sends ``data``)."""
    return prepare(abisqe.rw(opcode, fd, length, user_data=user_data, flags=flags, offset=offset), buffer=length,
                   data=data)


rwv = rw


def fsync(fd: int, *, user_data: int, flags: int = 0) -> Prepared:
    return prepare(KernelSqe(SqeOp.FSYNC, flags, user_data, fd=fd))


def socket_(family: int, type_: int, protocol: int, *, user_data: int, flags: int = 0) -> Prepared:
    return prepare(abisqe.socket(family, type_, protocol, user_data=user_data, flags=flags))


def openat(dirfd: int, path: str, open_flags: int, mode: int, *, user_data: int, flags: int = 0) -> Prepared:
    return prepare(abisqe.openat(path, open_flags, mode, dirfd=dirfd, user_data=user_data, flags=flags))


def openat2(dirfd: int, path: str, open_flags: int, mode: int, resolve: int, *, user_data: int,
            flags: int = 0) -> Prepared:
    how = abisqe.OpenHow(open_flags, mode, resolve)
    return prepare(abisqe.openat2(path, how, dirfd=dirfd, user_data=user_data, flags=flags))


def connect(sock_fd: int, family: int, addr: str, port: int, *, user_data: int, flags: int = 0,
            addr_len: int | None = None) -> Prepared:
    """CONNECT to the sockaddr built from ``family``/``addr``/``port``; ``addr_len`` defaults to all of it."""
    return prepare(abisqe.connect(sock_fd, abisqe.sockaddr(family, addr, port), addr_len, user_data=user_data,
                                  flags=flags))
