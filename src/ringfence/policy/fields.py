"""The fields a policy rule can test: what a filter sees in its 40-byte context, named and typed.

Each field knows where it lives in the context, how wide it is, which opcodes' contexts carry it (and from which
kernel), and how its values are spelled (constant names, addresses, ports). Predicates are over **what the
filter sees**: the context after the kernel's prep (open flags with ``O_LARGEFILE``, ``open.mode`` 0 without
``O_CREAT``, ``connect.family`` 0 for an address too short to hold one).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.abi.constants import AF, IPPROTO, RESOLVE, SOCK, O
from ringfence.abi.opcodes import SqeFlag, SqeOp


class Kind(enum.Enum):
    """How a field's values are spelled and compared."""

    NUMBER = "number"        # an integer; names from the field's table are accepted
    BITS = "bits"            # a bit mask; tests on single bits make sense
    SOCKET_TYPE = "socket-type"  # SOCK_* kind in the low 4 bits plus SOCK_CLOEXEC/SOCK_NONBLOCK flag bits
    PORT = "port"            # a port number (the context holds it in network order)
    ADDRESS = "address"      # IPv4/IPv6 addresses and CIDR prefixes (network order in the context)


@dataclass(frozen=True, slots=True)
class Field:
    """One testable field. ``ops`` are the opcodes whose context carries it (empty: every opcode); ``since`` the
    first kernel that fills it."""

    name: str
    offset: int
    size: int
    kind: Kind
    names: Mapping[str, int]
    ops: frozenset[int] = frozenset()
    since: tuple[int, int] = (7, 0)
    doc: str = ""

    @property
    def bits(self) -> int:
        return 8 * self.size

    @property
    def limit(self) -> int:
        return (1 << self.bits) - 1

    def carried_by(self, opcode: int) -> bool:
        return not self.ops or opcode in self.ops


def _table(*tables: Mapping[str, int]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for t in tables:
        out.update(t)
    return MappingProxyType(out)


_OPEN_OPS: Final = frozenset({int(SqeOp.OPENAT), int(SqeOp.OPENAT2)})
_SQE_FLAG_NAMES: Final = MappingProxyType({**{f.name or "": int(f) for f in SqeFlag},
                                           **{f"IOSQE_{f.name}": int(f) for f in SqeFlag}})
#: Flag bits the kernel may add to what filters see (drain, forced async): never a filter predicate.
KERNEL_ADDED_FLAGS: Final = int(SqeFlag.ASYNC | SqeFlag.IO_DRAIN)
SOCK_TYPE_MASK: Final = 0xF
AF_UNSPEC: Final = 0

FIELDS: Final[Mapping[str, Field]] = MappingProxyType({f.name: f for f in (
    Field("user_data", 0, 8, Kind.NUMBER, MappingProxyType({}),
          doc="the SQE's user_data: chosen by the submitter, so never a security boundary"),
    Field("sqe_flags", 9, 1, Kind.BITS, _SQE_FLAG_NAMES,
          doc="the request's IOSQE_* flags as filters see them; ASYNC and IO_DRAIN cannot be tested (the kernel "
              "adds them)"),
    Field("socket.family", 16, 4, Kind.NUMBER, AF, frozenset({int(SqeOp.SOCKET)}),
          doc="the domain of a SOCKET request (AF_INET, AF_INET6, AF_UNIX, ...)"),
    Field("socket.type", 20, 4, Kind.SOCKET_TYPE, SOCK, frozenset({int(SqeOp.SOCKET)}),
          doc="SOCK_STREAM, SOCK_DGRAM, ...; SOCK_CLOEXEC/SOCK_NONBLOCK are ignored unless the value names them"),
    Field("socket.protocol", 24, 4, Kind.NUMBER, IPPROTO, frozenset({int(SqeOp.SOCKET)}),
          doc="the protocol of a SOCKET request (0, IPPROTO_TCP, ...)"),
    Field("open.flags", 16, 8, Kind.BITS, O, _OPEN_OPS,
          doc="open flags after prep: O_LARGEFILE is always there on 64-bit kernels (unless O_PATH)"),
    Field("open.mode", 24, 8, Kind.NUMBER, MappingProxyType({}), _OPEN_OPS,
          doc="the creation mode; OPENAT reports 0 unless O_CREAT or O_TMPFILE"),
    Field("open.resolve", 32, 8, Kind.BITS, RESOLVE, _OPEN_OPS,
          doc="OPENAT2's RESOLVE_* flags; always 0 for OPENAT"),
    Field("connect.family", 16, 4, Kind.NUMBER, AF, frozenset({int(SqeOp.CONNECT)}), (7, 2),
          doc="the address family; 0 when the address is too short to hold one"),
    Field("connect.port", 20, 2, Kind.PORT, MappingProxyType({}), frozenset({int(SqeOp.CONNECT)}), (7, 2),
          doc="the destination port (AF_INET and AF_INET6 with a full address)"),
    Field("connect.addr", 24, 16, Kind.ADDRESS, MappingProxyType({}), frozenset({int(SqeOp.CONNECT)}), (7, 2),
          doc="the destination address as IPv4/IPv6 addresses or CIDR prefixes; an IPv4 prefix also matches the "
              "IPv4-mapped IPv6 form (::ffff:a.b.c.d)"),
)})


def field_names() -> tuple[str, ...]:
    return tuple(FIELDS)
