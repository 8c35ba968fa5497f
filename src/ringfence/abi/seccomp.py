"""``struct seccomp_data`` and the constants seccomp filters use (``linux/seccomp.h``, ``linux/audit.h``).

A seccomp filter is the same classic BPF as an io_uring filter, checked by the same generic rules
and an identical whitelist, but over a 64-byte context and with a different meaning of the return
value: the action in the high 16 bits, data in the low 16. ringfence uses this target to compare its
checker with a kernel that has seccomp but not io_uring filters, and to write the seccomp half of an
io_uring sandbox (which syscalls may create or drive rings). Values are x86-64 Linux's.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Self

from ringfence.abi.constants import ALL_CONSTANTS

SECCOMP_DATA_SIZE: Final = 64
_DATA: Final = struct.Struct("<IIQ6Q")
assert _DATA.size == SECCOMP_DATA_SIZE


@dataclass(frozen=True, slots=True)
class SeccompField:
    """A field of ``struct seccomp_data``; 64-bit fields are read as two words, low word first (LE)."""

    name: str
    offset: int
    size: int
    doc: str = ""


SECCOMP_FIELDS: Final[tuple[SeccompField, ...]] = (
    SeccompField("nr", 0, 4, "the system call number (with __X32_SYSCALL_BIT for x32 calls)"),
    SeccompField("arch", 4, 4, "AUDIT_ARCH_* of the calling convention"),
    SeccompField("instruction_pointer", 8, 8, "user address of the system call instruction"),
    *(SeccompField(f"args.{i}", 16 + 8 * i, 8, f"system call argument {i}") for i in range(6)),
)

#: Load offsets by name, for the assembler: ``[nr]``, ``[arch]``, ``[args.1]`` (its low word),
#: ``[args.1.hi]``. A 64-bit field names its low word; ``.lo`` and ``.hi`` name either half.
LOAD_OFFSETS: Final[Mapping[str, int]] = MappingProxyType({
    "nr": 0, "arch": 4,
    **{name: offset for f in SECCOMP_FIELDS if f.size == 8
       for name, offset in ((f.name, f.offset), (f"{f.name}.lo", f.offset), (f"{f.name}.hi", f.offset + 4))},
})


def word_names(offset: int) -> tuple[str, ...]:
    """Names that describe the word at ``offset``, for disassembly notes."""
    return tuple(n for n, k in LOAD_OFFSETS.items() if k == offset and not n.endswith(".lo"))


# linux/audit.h: EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000)
AUDIT_ARCH_X86_64: Final = 0xC000003E
AUDIT_ARCH_I386: Final = 0x40000003
#: x32 system calls run under AUDIT_ARCH_X86_64 with this bit set in ``nr``.
X32_SYSCALL_BIT: Final = 0x40000000

#: Since Linux 5.1 new system calls share one number on every architecture.
IO_URING_SYSCALLS: Final[Mapping[str, int]] = MappingProxyType({
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
})
#: ``nr`` of the io_uring system calls per calling convention seen under x86-64 hardware.
IO_URING_NR: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType({
    "x86_64": IO_URING_SYSCALLS,
    "i386": IO_URING_SYSCALLS,
    "x32": MappingProxyType({name: nr | X32_SYSCALL_BIT for name, nr in IO_URING_SYSCALLS.items()}),
})


class SeccompAction(enum.IntEnum):
    """``SECCOMP_RET_*`` actions (the high 16 bits of a return value), most to least restrictive."""

    KILL_PROCESS = 0x80000000
    KILL_THREAD = 0x00000000
    TRAP = 0x00030000
    ERRNO = 0x00050000
    USER_NOTIF = 0x7FC00000
    TRACE = 0x7FF00000
    LOG = 0x7FFC0000
    ALLOW = 0x7FFF0000


SECCOMP_RET_ACTION_FULL: Final = 0xFFFF0000
SECCOMP_RET_DATA: Final = 0x0000FFFF
#: ``SECCOMP_RET_ERRNO`` data above this is clamped to it.
MAX_ERRNO: Final = 4095

#: Every name a filter's source may use, with its value.
CONSTANTS: Final[Mapping[str, int]] = MappingProxyType({
    **{f"SECCOMP_RET_{a.name}": int(a) for a in SeccompAction},
    "SECCOMP_RET_KILL": int(SeccompAction.KILL_THREAD),
    "SECCOMP_RET_ACTION_FULL": SECCOMP_RET_ACTION_FULL, "SECCOMP_RET_ACTION": 0x7FFF0000,
    "SECCOMP_RET_DATA": SECCOMP_RET_DATA,
    "AUDIT_ARCH_X86_64": AUDIT_ARCH_X86_64, "AUDIT_ARCH_I386": AUDIT_ARCH_I386,
    "__X32_SYSCALL_BIT": X32_SYSCALL_BIT,
    **{f"__NR_{name}": nr for name, nr in IO_URING_SYSCALLS.items()},
})


@dataclass(frozen=True, slots=True)
class SeccompReturn:
    """A filter's return value split as the kernel splits it. An unknown action kills the process."""

    action: SeccompAction | None
    data: int

    @classmethod
    def of(cls, value: int) -> Self:
        try:
            action: SeccompAction | None = SeccompAction(value & SECCOMP_RET_ACTION_FULL)
        except ValueError:
            action = None
        return cls(action, value & SECCOMP_RET_DATA)

    @property
    def effective(self) -> SeccompAction:
        return SeccompAction.KILL_PROCESS if self.action is None else self.action

    @property
    def errno(self) -> int | None:
        """For ERRNO, the errno the system call fails with (clamped)."""
        return min(self.data, MAX_ERRNO) if self.action is SeccompAction.ERRNO else None


# Installing a filter: seccomp(2) and prctl(2).
SECCOMP_SET_MODE_FILTER: Final = 1
SECCOMP_MODE_FILTER: Final = 2
PR_SET_NO_NEW_PRIVS: Final = 38
PR_SET_SECCOMP: Final = 22
#: x86-64 system call numbers of the calls that install filters.
NR_SECCOMP_X86_64: Final = 317
NR_PRCTL_X86_64: Final = 157


@dataclass(frozen=True, slots=True)
class SeccompData:
    """One ``struct seccomp_data`` value."""

    nr: int = 0
    arch: int = AUDIT_ARCH_X86_64
    instruction_pointer: int = 0
    args: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    def pack(self) -> bytes:
        return _DATA.pack(self.nr, self.arch, self.instruction_pointer, *self.args)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        if len(data) != SECCOMP_DATA_SIZE:
            raise ValueError(f"seccomp_data is {SECCOMP_DATA_SIZE} bytes, not {len(data)}")
        nr, arch, ip, *args = _DATA.unpack(data)
        return cls(nr, arch, ip, (args[0], args[1], args[2], args[3], args[4], args[5]))


FIELDS_BY_NAME: Final[Mapping[str, SeccompField]] = MappingProxyType({f.name: f for f in SECCOMP_FIELDS})


def parse_value(raw: int | str) -> int:
    """A number, a constant name (seccomp's or libc's: ``AUDIT_ARCH_X86_64``, ``AF_INET``), or an ``|`` of them."""
    if isinstance(raw, int):
        return raw
    total = 0
    for part in (p.strip() for p in raw.split("|")):
        if part in CONSTANTS or part in ALL_CONSTANTS:
            total |= CONSTANTS.get(part, ALL_CONSTANTS.get(part, 0))
        elif not part:
            raise ValueError("empty value" if not raw.strip() else f"empty term in {raw.strip()!r}")
        else:
            try:
                total |= int(part, 0)
            except ValueError:
                raise ValueError(f"unknown constant {part!r} (not a number or a known name)") from None
    return total


def data_from_fields(fields: Mapping[str, int | str]) -> SeccompData:
    """A ``seccomp_data`` from named fields (``nr``, ``arch``, ``instruction_pointer``, ``args.0`` ...
    ``args.5``); unset fields are 0 except ``arch`` (x86-64). A :class:`ValueError` names the field."""
    unknown = sorted(set(fields) - set(FIELDS_BY_NAME))
    if unknown:
        raise ValueError(f"unknown seccomp_data field(s): {', '.join(unknown)}; known: {', '.join(FIELDS_BY_NAME)}")
    values: dict[str, int] = {}
    for name, raw in fields.items():
        size = FIELDS_BY_NAME[name].size
        try:
            value = parse_value(raw)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{name}: {value} is negative" if value < 0 else
                             f"{name}: {value} does not fit in {size} bytes (at most {(1 << (8 * size)) - 1})")
        values[name] = value
    args = tuple(values.get(f"args.{i}", 0) for i in range(6))
    return SeccompData(values.get("nr", 0), values.get("arch", AUDIT_ARCH_X86_64), values.get("instruction_pointer", 0),
                       (args[0], args[1], args[2], args[3], args[4], args[5]))
