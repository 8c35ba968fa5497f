"""Byte-exact layouts of the structures the kernel reads and writes (spec §2.5–2.8).

Each structure is a frozen dataclass with ``pack()`` / ``unpack()`` over a :mod:`struct` format whose size is
checked at import time. Integers are native-endian (x86-64: little-endian).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Self

from ringfence.abi.opcodes import BPF_CMD_FILTER

_RESTRICTION: Final = struct.Struct("=HBB3I")           # io_uring_restriction, 16 bytes
_TASK_RESTRICTION: Final = struct.Struct("=HH3I")      # io_uring_task_restriction header, 16 bytes
_BPF: Final = struct.Struct("=HHI")                     # io_uring_bpf head, 8 bytes; the filter follows
_BPF_FILTER: Final = struct.Struct("=IIIB3sQ5Q")        # io_uring_bpf_filter, 64 bytes

RESTRICTION_SIZE: Final = 16
TASK_RESTRICTION_HEADER_SIZE: Final = 16
BPF_SIZE: Final = 72
BPF_FILTER_SIZE: Final = 64
BPF_CTX_SIZE: Final = 40
SOCK_FILTER_SIZE: Final = 8

#: Offset of ``filter.pdu_size`` inside ``struct io_uring_bpf``: the kernel writes its size back there.
BPF_PDU_SIZE_OFFSET: Final = 8 + 12

for _s, _n in ((_RESTRICTION, RESTRICTION_SIZE), (_TASK_RESTRICTION, TASK_RESTRICTION_HEADER_SIZE),
               (_BPF_FILTER, BPF_FILTER_SIZE)):
    if _s.size != _n:  # pragma: no cover - guards the format strings themselves
        raise AssertionError(f"layout size {_s.size} != {_n}")
if _BPF.size + _BPF_FILTER.size != BPF_SIZE:  # pragma: no cover
    raise AssertionError("io_uring_bpf size")


@dataclass(frozen=True, slots=True)
class Restriction:
    """``struct io_uring_restriction``: one allow-list record. ``opcode`` is the record type (u16), ``value`` the
    one-byte union; the kernel never checks ``resv``/``resv2``."""

    opcode: int
    value: int
    resv: int = 0
    resv2: tuple[int, int, int] = (0, 0, 0)

    def pack(self) -> bytes:
        return _RESTRICTION.pack(self.opcode & 0xFFFF, self.value & 0xFF, self.resv & 0xFF,
                                 *(r & 0xFFFFFFFF for r in self.resv2))

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        opcode, value, resv, a, b, c = _RESTRICTION.unpack(data)
        return cls(opcode, value, resv, (a, b, c))


@dataclass(frozen=True, slots=True)
class TaskRestrictionHeader:
    """``struct io_uring_task_restriction`` header; the records follow it. ``nr_res`` may differ from the number
    of records supplied (the kernel then reads zero records beyond them, or fewer)."""

    nr_res: int
    flags: int = 0
    resv: tuple[int, int, int] = (0, 0, 0)

    def pack(self) -> bytes:
        return _TASK_RESTRICTION.pack(self.flags & 0xFFFF, self.nr_res & 0xFFFF, *(r & 0xFFFFFFFF for r in self.resv))


def pack_task_restrictions(records: Sequence[Restriction], header: TaskRestrictionHeader | None = None) -> bytes:
    """Header plus records, as the blind ``REGISTER_RESTRICTIONS`` call takes them (§2.6). Without a header,
    the ordinary one: ``nr_res`` = the number of records, flags and reserved words 0."""
    head = header or TaskRestrictionHeader(len(records))
    return head.pack() + b"".join(r.pack() for r in records)


@dataclass(frozen=True, slots=True)
class FilterRegistration:
    """The argument of ``REGISTER_BPF_FILTER``: ``struct io_uring_bpf`` with its ``io_uring_bpf_filter``, and the
    instructions ``filter_ptr`` points at (spec §2.7, §5.3).

    ``program`` is the raw ``sock_filter`` array. ``filter_len`` defaults to its length in instructions; a larger
    count makes the kernel copy zero bytes beyond it (the caller's buffer is zero-filled there). ``null_program``
    passes ``filter_ptr = 0``. Every field, reserved ones included, is settable so that each errno row of the
    registration table can be reached.
    """

    opcode: int
    program: bytes = b""
    flags: int = 0
    pdu_size: int = 0
    filter_len: int | None = None
    null_program: bool = False
    cmd_type: int = BPF_CMD_FILTER
    cmd_flags: int = 0
    resv: int = 0
    filter_resv: bytes = b"\0\0\0"
    resv2: tuple[int, int, int, int, int] = field(default=(0, 0, 0, 0, 0))

    @property
    def length(self) -> int:
        """``filter.filter_len`` as sent."""
        return len(self.program) // SOCK_FILTER_SIZE if self.filter_len is None else self.filter_len

    def copied_instructions(self) -> bytes:
        """The ``filter_len * 8`` bytes the kernel copies: the program, truncated or zero-padded."""
        want = max(self.length, 0) * SOCK_FILTER_SIZE
        return self.program[:want].ljust(want, b"\0")

    def pack(self, filter_ptr: int) -> bytes:
        """The 72 bytes of ``struct io_uring_bpf`` with ``filter_ptr`` (0 when ``null_program``)."""
        head = _BPF.pack(self.cmd_type & 0xFFFF, self.cmd_flags & 0xFFFF, self.resv & 0xFFFFFFFF)
        body = _BPF_FILTER.pack(self.opcode & 0xFFFFFFFF, self.flags & 0xFFFFFFFF, self.length & 0xFFFFFFFF,
                                self.pdu_size & 0xFF, bytes(self.filter_resv), 0 if self.null_program else filter_ptr,
                                *self.resv2)
        return head + body


def unpack_pdu_size(bpf_struct: bytes) -> int:
    """The ``filter.pdu_size`` byte of a packed ``io_uring_bpf`` (after the kernel's write-back)."""
    return bpf_struct[BPF_PDU_SIZE_OFFSET]
