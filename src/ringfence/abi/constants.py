"""User-space constants that filters compare against, with their x86-64 Linux values.

Open flags are architecture-specific (``O_LARGEFILE`` is 0x8000 on x86-64, 0x20000 on arm64, spec §7.4);
ringfence models x86-64, the architecture of its test machines.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

AF: Final = MappingProxyType({
    "AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_AX25": 3, "AF_IPX": 4, "AF_APPLETALK": 5,
    "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_X25": 9, "AF_INET6": 10, "AF_KEY": 15, "AF_NETLINK": 16, "AF_PACKET": 17,
    "AF_RDS": 21, "AF_IRDA": 23, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28, "AF_CAN": 29, "AF_TIPC": 30,
    "AF_BLUETOOTH": 31, "AF_ALG": 38, "AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43, "AF_XDP": 44,
    "AF_MCTP": 45,
})

SOCK: Final = MappingProxyType({
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3, "SOCK_RDM": 4, "SOCK_SEQPACKET": 5, "SOCK_DCCP": 6,
    "SOCK_PACKET": 10, "SOCK_NONBLOCK": 0o4000, "SOCK_CLOEXEC": 0o2000000,
})

#: Mask of the socket type proper within ``socket.type`` (the rest are flag bits).
SOCK_TYPE_MASK: Final = 0xF

IPPROTO: Final = MappingProxyType({
    "IPPROTO_IP": 0, "IPPROTO_ICMP": 1, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IPV6": 41,
    "IPPROTO_ICMPV6": 58, "IPPROTO_SCTP": 132, "IPPROTO_UDPLITE": 136, "IPPROTO_RAW": 255, "IPPROTO_MPTCP": 262,
})

O: Final = MappingProxyType({  # noqa: E741 - the kernel's own prefix
    "O_RDONLY": 0, "O_WRONLY": 0o1, "O_RDWR": 0o2, "O_ACCMODE": 0o3, "O_CREAT": 0o100, "O_EXCL": 0o200,
    "O_NOCTTY": 0o400, "O_TRUNC": 0o1000, "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_NDELAY": 0o4000,
    "O_DSYNC": 0o10000, "FASYNC": 0o20000, "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000,
    "O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000, "O_NOATIME": 0o1000000, "O_CLOEXEC": 0o2000000,
    "__O_SYNC": 0o4000000, "O_SYNC": 0o4010000, "O_PATH": 0o10000000, "__O_TMPFILE": 0o20000000,
    "O_TMPFILE": 0o20200000,
})

#: The kernel's ``VALID_OPEN_FLAGS``: OPENAT prep masks ``open.flags`` with it (§7.4).
VALID_OPEN_FLAGS: Final = (
    O["O_ACCMODE"] | O["O_CREAT"] | O["O_EXCL"] | O["O_NOCTTY"] | O["O_TRUNC"] | O["O_APPEND"] | O["O_NONBLOCK"]
    | O["__O_SYNC"] | O["O_DSYNC"] | O["FASYNC"] | O["O_DIRECT"] | O["O_LARGEFILE"] | O["O_DIRECTORY"]
    | O["O_NOFOLLOW"] | O["O_NOATIME"] | O["O_CLOEXEC"] | O["O_PATH"] | O["__O_TMPFILE"]
)

#: Flags kept when ``O_PATH`` is given (``O_PATH_FLAGS``).
O_PATH_FLAGS: Final = O["O_DIRECTORY"] | O["O_NOFOLLOW"] | O["O_PATH"] | O["O_CLOEXEC"]

#: ``S_IALLUGO``: permission bits kept in ``open.mode`` for creating opens.
S_IALLUGO: Final = 0o7777

RESOLVE: Final = MappingProxyType({
    "RESOLVE_NO_XDEV": 0x01, "RESOLVE_NO_MAGICLINKS": 0x02, "RESOLVE_NO_SYMLINKS": 0x04, "RESOLVE_BENEATH": 0x08,
    "RESOLVE_IN_ROOT": 0x10, "RESOLVE_CACHED": 0x20,
})

#: ``AT_FDCWD`` as the 32-bit value the SQE's ``fd`` field carries.
AT_FDCWD: Final = -100

#: Every named constant, for the assembler's symbol table.
ALL_CONSTANTS: Final = MappingProxyType({**AF, **SOCK, **IPPROTO, **O, **RESOLVE})
