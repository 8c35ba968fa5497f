"""``struct io_uring_bpf_ctx``: the 40 bytes a filter reads (spec §2.7, §7.7).

Filters can only load aligned 32-bit words, so every named field also has the word offset a program loads
to read it. Values are native-endian (little-endian here) except ``connect.port`` and the connect addresses,
which are in network order.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Self

from ringfence.abi.constants import ALL_CONSTANTS
from ringfence.abi.layout import BPF_CTX_SIZE
from ringfence.abi.opcodes import SqeOp, sqe_flags

PAYLOAD_OFFSET: Final = 16
PAYLOAD_SIZE: Final = 24


@dataclass(frozen=True, slots=True)
class CtxField:
    """A named field of the context. ``member`` is the union member (``socket``, ``open``, ``connect``) or None."""

    name: str
    offset: int
    size: int
    member: str | None = None
    network_order: bool = False
    doc: str = ""

    @property
    def word(self) -> int:
        """The offset of the aligned word a filter loads to see (the start of) this field."""
        return self.offset & ~3


CTX_FIELDS: Final[tuple[CtxField, ...]] = (
    CtxField("user_data", 0, 8, doc="the SQE's user_data"),
    CtxField("opcode", 8, 1, doc="SQE opcode (low byte of word 8)"),
    CtxField("sqe_flags", 9, 1, doc="request flags & 0x7f after init and prep (bits 8-15 of word 8)"),
    CtxField("pdu_size", 10, 1, doc="payload size for this opcode: 0, 12 or 24 (bits 16-23 of word 8)"),
    CtxField("socket.family", 16, 4, "socket", doc="SQE fd field: the domain"),
    CtxField("socket.type", 20, 4, "socket", doc="SQE off field, raw: SOCK_CLOEXEC/SOCK_NONBLOCK bits included"),
    CtxField("socket.protocol", 24, 4, "socket", doc="SQE len field"),
    CtxField("open.flags", 16, 8, "open", doc="open flags after prep: O_LARGEFILE added on 64-bit"),
    CtxField("open.mode", 24, 8, "open", doc="mode; 0 unless O_CREAT or O_TMPFILE (OPENAT)"),
    CtxField("open.resolve", 32, 8, "open", doc="open_how.resolve (OPENAT2), 0 for OPENAT"),
    CtxField("connect.family", 16, 4, "connect", doc="address family, 0 if addr_len < 2"),
    CtxField("connect.port", 20, 2, "connect", network_order=True, doc="port, network order (word 20)"),
    CtxField("connect.v4_addr", 24, 4, "connect", network_order=True, doc="IPv4 address, network order"),
    CtxField("connect.v6_addr", 24, 16, "connect", network_order=True, doc="IPv6 address, words 24..36"),
)

FIELDS_BY_NAME: Final[Mapping[str, CtxField]] = {f.name: f for f in CTX_FIELDS}

#: Load offsets by symbolic name, for the assembler: ``[socket.family]``, ``[open.flags.hi]``,
#: ``[connect.v6_addr.2]``. Multi-word fields name their low-addressed word; ``.hi`` is the next one.
LOAD_OFFSETS: Final[Mapping[str, int]] = {
    **{f.name: f.word for f in CTX_FIELDS},
    "user_data.lo": 0, "user_data.hi": 4,
    "open.flags.lo": 16, "open.flags.hi": 20, "open.mode.lo": 24, "open.mode.hi": 28,
    "open.resolve.lo": 32, "open.resolve.hi": 36,
    **{f"connect.v6_addr.{i}": 24 + 4 * i for i in range(4)},
}


def word_names(offset: int) -> tuple[str, ...]:
    """Names that describe the word at ``offset``, for disassembly annotations."""
    names = [n for n, k in LOAD_OFFSETS.items() if k == offset and not n.endswith((".lo", ".0"))]
    if offset == 8:
        return ("opcode|sqe_flags<<8|pdu_size<<16",)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class BpfCtx:
    """One context value. ``payload`` is the 24-byte union, zero where a member does not fill it."""

    user_data: int = 0
    opcode: int = 0
    sqe_flags: int = 0
    pdu_size: int = 0
    payload: bytes = bytes(PAYLOAD_SIZE)

    def __post_init__(self) -> None:
        if len(self.payload) != PAYLOAD_SIZE:
            raise ValueError(f"payload must be {PAYLOAD_SIZE} bytes, not {len(self.payload)}")

    def pack(self) -> bytes:
        head = struct.pack("<QBBB5x", self.user_data & (2**64 - 1), self.opcode & 0xFF, self.sqe_flags & 0xFF,
                           self.pdu_size & 0xFF)
        return head + self.payload

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        if len(data) != BPF_CTX_SIZE:
            raise ValueError(f"a context is {BPF_CTX_SIZE} bytes, not {len(data)}")
        user_data, opcode, flags, pdu = struct.unpack_from("<QBBB", data)
        return cls(user_data, opcode, flags, pdu, bytes(data[PAYLOAD_OFFSET:]))

    def word(self, offset: int) -> int:
        """The native-endian u32 a filter's ``ld [offset]`` yields."""
        return int.from_bytes(self.pack()[offset:offset + 4], "little")


def socket_payload(family: int, type_: int, protocol: int) -> bytes:
    words = struct.pack("<III", family & 0xFFFFFFFF, type_ & 0xFFFFFFFF, protocol & 0xFFFFFFFF)
    return words.ljust(PAYLOAD_SIZE, b"\0")


def open_payload(flags: int, mode: int, resolve: int) -> bytes:
    return struct.pack("<QQQ", flags & (2**64 - 1), mode & (2**64 - 1), resolve & (2**64 - 1))


def connect_payload(family: int, port: int = 0, addr: bytes = b"") -> bytes:
    """``connect`` member: family, port in network order, two zero bytes, then up to 16 address bytes."""
    if len(addr) > 16:
        raise ValueError("a connect address is at most 16 bytes")
    return (struct.pack("<I", family & 0xFFFFFFFF) + struct.pack(">H", port & 0xFFFF) + b"\0\0"
            + addr.ljust(16, b"\0"))


def parse_constant(value: int | str) -> int:
    """A number from an int, ``"0x10"``, a constant name, or an ``|``-joined mix: ``"O_CREAT|O_RDWR"``.

    Raises :class:`ValueError` naming the term it cannot read. Negative numbers parse (callers that
    model raw system-call arguments need them); :func:`ctx_from_fields` refuses them.
    """
    if isinstance(value, int):
        return value
    text = value.strip()
    total = 0
    for raw_part in text.split("|"):
        part = raw_part.strip()
        if part in ALL_CONSTANTS:
            total |= ALL_CONSTANTS[part]
        elif part.upper().removeprefix("IORING_OP_") in SqeOp.__members__:
            total |= SqeOp[part.upper().removeprefix("IORING_OP_")]
        elif part.upper().startswith("IOSQE_"):
            total |= sqe_flags(part)
        elif not part:
            raise ValueError(f"empty term in {text!r}" if text else "empty value")
        else:
            try:
                total |= int(part, 0)
            except ValueError:
                raise ValueError(f"unknown constant {part!r} (not a number or a known name)") from None
    return total


def _field_number(f: CtxField, raw: int | str) -> int:
    """``raw`` as a value of field ``f``: not negative, and fitting in the field's size."""
    value = parse_constant(raw)
    if value < 0:
        raise ValueError(f"{value} is negative")
    top = (1 << (8 * f.size)) - 1
    if value > top:
        raise ValueError(f"{value} does not fit in {f.size} byte{'s' if f.size > 1 else ''} (at most {top})")
    return value


def _address(f: CtxField, raw: int | str) -> bytes:
    """An address field: a literal address of the field's family, or a number that fits."""
    if isinstance(raw, str) and not raw.strip().isdigit() and ("." in raw or ":" in raw):
        version = 4 if f.size == 4 else 6
        try:
            address = ipaddress.ip_address(raw.strip())
        except ValueError:
            raise ValueError(f"{raw.strip()!r} is not an IPv{version} address") from None
        if address.version != version:
            raise ValueError(f"{raw.strip()!r} is an IPv{address.version} address; this field holds IPv{version}")
        return address.packed
    return _field_number(f, raw).to_bytes(f.size, "big")


def ctx_from_fields(fields: Mapping[str, int | str]) -> BpfCtx:
    """Build a context from named fields: ``{"opcode": "SOCKET", "socket.family": "AF_INET"}``.

    Values may be numbers, constant names (``AF_INET``, ``O_CREAT|O_RDWR``, ``IOSQE_ASYNC``), and for
    ``connect.v4_addr``/``connect.v6_addr`` an address string. ``pdu_size`` is not derived from the opcode:
    it is whatever the caller says (a kernel fills it per its profile; see :mod:`ringfence.abi.profiles`).
    Every value must fit its field and not be negative; a :class:`ValueError` names the field.
    """
    unknown = set(fields) - set(FIELDS_BY_NAME)
    if unknown:
        raise ValueError(f"unknown context field(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(FIELDS_BY_NAME)}")
    members = {FIELDS_BY_NAME[n].member for n in fields} - {None}
    if len(members) > 1:
        raise ValueError(f"fields of different union members given: {', '.join(sorted(m or '' for m in members))}")
    payload = bytearray(PAYLOAD_SIZE)
    head: dict[str, int] = {}
    for name, raw in fields.items():
        f = FIELDS_BY_NAME[name]
        try:
            if f.member is None:
                head[name] = _field_number(f, raw)
                continue
            if name in ("connect.v4_addr", "connect.v6_addr"):
                data = _address(f, raw)
            elif f.network_order:
                data = _field_number(f, raw).to_bytes(f.size, "big")
            else:
                data = _field_number(f, raw).to_bytes(f.size, "little")
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        rel = f.offset - PAYLOAD_OFFSET
        payload[rel:rel + len(data)] = data
    return BpfCtx(user_data=head.get("user_data", 0), opcode=head.get("opcode", 0),
                  sqe_flags=head.get("sqe_flags", 0), pdu_size=head.get("pdu_size", 0), payload=bytes(payload))
