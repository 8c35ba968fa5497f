"""One submission as the kernel's restriction checks, prep and filters read it (spec §7, §8.1).

:class:`Sqe` carries the SQE's own numeric fields, named as in ``struct io_uring_sqe``, and, decoded, the memory
``addr`` points at for the opcodes whose prep reads it (a path, an ``open_how``, a socket address). A real SQE
holds addresses; what matters to the sandbox is the bytes behind them, so those are carried instead. The
constructors (:func:`nop`, :func:`socket`, :func:`openat`, :func:`openat2`, :func:`connect`, :func:`rw`) put
each argument where the kernel looks for it: a SOCKET's domain travels in ``fd``, its type in ``off`` and its
protocol in ``len``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ringfence.abi.constants import AF, AT_FDCWD
from ringfence.abi.opcodes import SqeOp, op_name

U64: Final = (1 << 64) - 1
U32: Final = (1 << 32) - 1
#: ``sizeof(struct open_how)``.
OPEN_HOW_SIZE: Final = 24
#: Full sockaddr sizes by family: what a caller passes as the address length unless told otherwise.
SOCKADDR_SIZE: Final = {AF["AF_INET"]: 16, AF["AF_INET6"]: 28, AF["AF_UNIX"]: 110}
#: ``sizeof(struct sockaddr_storage)``: the longest address the kernel copies.
SOCKADDR_STORAGE: Final = 128
SUN_PATH_MAX: Final = 108


@dataclass(frozen=True, slots=True)
class OpenHow:
    """``struct open_how`` as OPENAT2 passes it (three u64)."""

    flags: int = 0
    mode: int = 0
    resolve: int = 0

    def pack(self) -> bytes:
        return struct.pack("=QQQ", self.flags & U64, self.mode & U64, self.resolve & U64)


@dataclass(frozen=True, slots=True)
class Sqe:
    """One SQE: its numeric fields and the memory its pointers refer to.

    ``path`` is the pathname OPENAT/OPENAT2 read at ``addr``; ``how`` the ``open_how`` OPENAT2 reads at ``off``
    (``addr2``); ``sockaddr`` the address CONNECT reads at ``addr`` (``off`` holds the length the caller passes).
    """

    opcode: int
    flags: int = 0
    user_data: int = 0
    fd: int = 0
    off: int = 0
    addr: int = 0
    len: int = 0
    op_flags: int = 0
    buf_index: int = 0
    personality: int = 0
    file_index: int = 0
    ioprio: int = 0
    path: str = ""
    how: OpenHow | None = None
    sockaddr: bytes = b""

    def __post_init__(self) -> None:
        for name, limit in (("opcode", 0xFF), ("flags", 0xFF), ("user_data", U64), ("off", U64), ("addr", U64),
                            ("len", U32), ("op_flags", U32), ("buf_index", 0xFFFF), ("personality", 0xFFFF),
                            ("file_index", U32), ("ioprio", 0xFFFF)):
            value = getattr(self, name)
            if not 0 <= value <= limit:
                raise ValueError(f"SQE field {name} = {value} does not fit (0..{limit:#x})")
        if not -(1 << 31) <= self.fd < 1 << 31:
            raise ValueError(f"SQE field fd = {self.fd} does not fit in a signed 32-bit int")

    @property
    def name(self) -> str:
        """The opcode's name, or its number when this ringfence does not know it."""
        return op_name(self.opcode)

    def to_json(self) -> dict[str, Any]:
        """The fields that differ from zero (``opcode`` always), ``how`` as an object, ``sockaddr`` as hex."""
        out: dict[str, Any] = {"opcode": self.opcode}
        for name in _INT_FIELDS[1:]:
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.path:
            out["path"] = self.path
        if self.how is not None:
            out["how"] = {"flags": self.how.flags, "mode": self.how.mode, "resolve": self.how.resolve}
        if self.sockaddr:
            out["sockaddr"] = self.sockaddr.hex()
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Sqe:
        """The inverse of :meth:`to_json`; ``ValueError`` for unknown keys or values that do not fit."""
        unknown = set(data) - {*_INT_FIELDS, "path", "how", "sockaddr"}
        if unknown:
            raise ValueError(f"unknown SQE field(s): {', '.join(sorted(unknown))}")
        ints = {name: data[name] for name in _INT_FIELDS if name in data}
        if any(not isinstance(v, int) or isinstance(v, bool) for v in ints.values()):
            raise ValueError("SQE fields are integers")
        how = data.get("how")
        return Sqe(**ints, path=str(data.get("path", "")),
                   how=None if how is None else OpenHow(int(how["flags"]), int(how["mode"]), int(how["resolve"])),
                   sockaddr=bytes.fromhex(str(data.get("sockaddr", ""))))


_INT_FIELDS: Final = ("opcode", "flags", "user_data", "fd", "off", "addr", "len", "op_flags", "buf_index",
                      "personality", "file_index", "ioprio")


def nop(*, user_data: int = 0, flags: int = 0) -> Sqe:
    return Sqe(SqeOp.NOP, flags, user_data, fd=-1)


def rw(opcode: int, fd: int, length: int, *, user_data: int = 0, flags: int = 0, offset: int = 0) -> Sqe:
    """READ/WRITE (``len`` bytes) or READV/WRITEV (``len`` = one iovec)."""
    vectored = opcode in (SqeOp.READV, SqeOp.WRITEV)
    return Sqe(opcode, flags, user_data, fd=fd, off=offset & U64, len=1 if vectored else length & U32)


def socket(family: int, type_: int, protocol: int = 0, *, user_data: int = 0, flags: int = 0) -> Sqe:
    """SOCKET: the domain in ``fd``, the type (with its SOCK_CLOEXEC/SOCK_NONBLOCK bits) in ``off``, the
    protocol in ``len`` (spec §7.3)."""
    return Sqe(SqeOp.SOCKET, flags, user_data, fd=_s32(family), off=type_ & U32, len=protocol & U32)


def openat(path: str, open_flags: int, mode: int = 0, *, dirfd: int = AT_FDCWD, user_data: int = 0,
           flags: int = 0) -> Sqe:
    """OPENAT: flags in ``op_flags`` (32 bits), mode in ``len``."""
    return Sqe(SqeOp.OPENAT, flags, user_data, fd=dirfd, op_flags=open_flags & U32, len=mode & U32, path=path)


def openat2(path: str, how: OpenHow, *, dirfd: int = AT_FDCWD, user_data: int = 0, flags: int = 0) -> Sqe:
    """OPENAT2: ``len`` is the size of the ``open_how`` the caller passes."""
    return Sqe(SqeOp.OPENAT2, flags, user_data, fd=dirfd, len=OPEN_HOW_SIZE, path=path, how=how)


def connect(sock_fd: int, address: bytes, addr_len: int | None = None, *, user_data: int = 0,
            flags: int = 0) -> Sqe:
    """CONNECT: ``addr`` points at ``address``; ``off`` is the length passed (default: all of ``address``)."""
    length = len(address) if addr_len is None else addr_len
    return Sqe(SqeOp.CONNECT, flags, user_data, fd=sock_fd, off=length & U64, sockaddr=address)


def sockaddr(family: int, addr: str = "", port: int = 0) -> bytes:
    """The full ``sockaddr_in`` / ``sockaddr_in6`` / ``sockaddr_un`` a caller passes; other families: the family
    then zeros. Raises ``ValueError`` for an address that does not fit its family or an over-long path."""
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 0..65535")
    if family == AF["AF_INET"]:
        packed = ipaddress.IPv4Address(addr or "0.0.0.0").packed
        return struct.pack("=H", family) + struct.pack(">H", port) + packed + bytes(8)
    if family == AF["AF_INET6"]:
        packed = ipaddress.IPv6Address(addr or "::").packed
        return struct.pack("=H", family) + struct.pack(">H", port) + bytes(4) + packed + bytes(4)
    if family == AF["AF_UNIX"]:
        path = addr.encode()
        if len(path) >= SUN_PATH_MAX:
            raise ValueError(f"an AF_UNIX path has at most {SUN_PATH_MAX - 1} bytes, not {len(path)}")
        return struct.pack("=H", family) + path.ljust(SUN_PATH_MAX, b"\0")
    if not 0 <= family <= 0xFFFF:
        raise ValueError(f"address family {family} does not fit in 16 bits")
    return struct.pack("=H", family) + bytes(14)


def _s32(value: int) -> int:
    """A 32-bit pattern as the signed int the SQE's ``fd`` field holds."""
    value &= U32
    return value - (1 << 32) if value >= 1 << 31 else value
