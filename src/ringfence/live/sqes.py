"""Build SQEs for the opcodes the scenarios use, together with the memory each one points at.

Every builder returns a :class:`Prepared`: the 64-byte SQE and the objects (buffers, iovecs, ``open_how``,
sockaddrs, path strings) the kernel reads or writes through it. The ring keeps those alive until the request has
completed, because the kernel may touch them at issue time, long after the SQE was written.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
from dataclasses import dataclass, field

from ringfence.abi.opcodes import SqeOp
from ringfence.live import _sys

SOCKADDR_IN_SIZE = 16
SOCKADDR_IN6_SIZE = 28
SOCKADDR_UN_SIZE = 110


@dataclass(slots=True)
class Prepared:
    """An SQE ready to be queued and the memory it references."""

    sqe: _sys.Sqe
    keep: list[object] = field(default_factory=list)


def _sqe(opcode: int, fd: int, user_data: int, flags: int) -> _sys.Sqe:
    sqe = _sys.Sqe()
    sqe.opcode = opcode
    sqe.flags = flags & 0xFF
    sqe.fd = fd
    sqe.user_data = user_data & 0xFFFFFFFFFFFFFFFF
    return sqe


def nop(user_data: int, flags: int = 0) -> Prepared:
    return Prepared(_sqe(SqeOp.NOP, -1, user_data, flags))


def rw(opcode: int, fd: int, length: int, *, user_data: int, flags: int = 0, data: bytes = b"",
       offset: int = 0) -> Prepared:
    """READ or WRITE of ``length`` bytes at ``offset`` (WRITE sends ``data``, padded with ``x``)."""
    buf = ctypes.create_string_buffer(data.ljust(length, b"x")[:length], max(length, 1))
    sqe = _sqe(opcode, fd, user_data, flags)
    sqe.addr, sqe.len, sqe.off = ctypes.addressof(buf), length, offset & 0xFFFFFFFFFFFFFFFF
    return Prepared(sqe, [buf])


def rwv(opcode: int, fd: int, length: int, *, user_data: int, flags: int = 0, data: bytes = b"",
        offset: int = 0) -> Prepared:
    """READV or WRITEV with one iovec of ``length`` bytes; the iovec array is kept alive too."""
    buf = ctypes.create_string_buffer(data.ljust(length, b"x")[:length], max(length, 1))
    iov = (_sys.Iovec * 1)()
    iov[0].iov_base, iov[0].iov_len = ctypes.addressof(buf), length
    sqe = _sqe(opcode, fd, user_data, flags)
    sqe.addr, sqe.len, sqe.off = ctypes.addressof(iov), 1, offset & 0xFFFFFFFFFFFFFFFF
    return Prepared(sqe, [buf, iov])


def fsync(fd: int, *, user_data: int, flags: int = 0) -> Prepared:
    return Prepared(_sqe(SqeOp.FSYNC, fd, user_data, flags))


def socket_(family: int, type_: int, protocol: int, *, user_data: int, flags: int = 0) -> Prepared:
    """SOCKET: the domain travels in ``fd``, the type in ``off``, the protocol in ``len`` (spec §7.3)."""
    sqe = _sqe(SqeOp.SOCKET, family, user_data, flags)
    sqe.off, sqe.len = type_ & 0xFFFFFFFF, protocol & 0xFFFFFFFF
    return Prepared(sqe)


def openat(dirfd: int, path: str, open_flags: int, mode: int, *, user_data: int, flags: int = 0) -> Prepared:
    name = ctypes.create_string_buffer(path.encode())
    sqe = _sqe(SqeOp.OPENAT, dirfd, user_data, flags)
    sqe.addr, sqe.len, sqe.op_flags = ctypes.addressof(name), mode & 0xFFFFFFFF, open_flags & 0xFFFFFFFF
    return Prepared(sqe, [name])


def openat2(dirfd: int, path: str, open_flags: int, mode: int, resolve: int, *, user_data: int,
            flags: int = 0) -> Prepared:
    name = ctypes.create_string_buffer(path.encode())
    how = _sys.OpenHow(open_flags & 0xFFFFFFFFFFFFFFFF, mode & 0xFFFFFFFFFFFFFFFF, resolve & 0xFFFFFFFFFFFFFFFF)
    sqe = _sqe(SqeOp.OPENAT2, dirfd, user_data, flags)
    sqe.addr, sqe.len, sqe.off = ctypes.addressof(name), ctypes.sizeof(how), ctypes.addressof(how)
    return Prepared(sqe, [name, how])


def sockaddr(family: int, addr: str, port: int) -> bytes:
    """The full ``sockaddr_in`` / ``sockaddr_in6`` / ``sockaddr_un`` bytes; other families: family then zeros."""
    if family == socket.AF_INET:
        packed = ipaddress.IPv4Address(addr or "0.0.0.0").packed
        return struct.pack("=H", family) + struct.pack(">H", port) + packed + bytes(8)
    if family == socket.AF_INET6:
        packed = ipaddress.IPv6Address(addr or "::").packed
        return struct.pack("=H", family) + struct.pack(">H", port) + bytes(4) + packed + bytes(4)
    if family == socket.AF_UNIX:
        path = addr.encode()
        if len(path) >= SOCKADDR_UN_SIZE - 2:
            raise ValueError(f"AF_UNIX path too long: {addr!r}")
        return struct.pack("=H", family) + path.ljust(SOCKADDR_UN_SIZE - 2, b"\0")
    return struct.pack("=H", family & 0xFFFF) + bytes(14)


def connect(sock_fd: int, family: int, addr: str, port: int, *, user_data: int, flags: int = 0,
            addr_len: int | None = None) -> Prepared:
    """CONNECT: ``addr`` points at the sockaddr, ``off`` carries its length (explicit ``addr_len`` honoured)."""
    raw = sockaddr(family, addr, port)
    length = len(raw) if addr_len is None else addr_len
    buf = ctypes.create_string_buffer(raw, max(len(raw), 128))
    sqe = _sqe(SqeOp.CONNECT, sock_fd, user_data, flags)
    sqe.addr, sqe.off = ctypes.addressof(buf), length & 0xFFFFFFFF
    return Prepared(sqe, [buf])
