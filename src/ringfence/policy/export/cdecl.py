"""The io_uring structures exported C needs, declared from their documented layouts, with checks of that layout.

One table drives the declarations (for headers too old to have the structures), the ``_Static_assert`` lines
that check whichever declaration is in effect, and the layout comparison a test compiles against the real
headers (:func:`declarations` with a tag prefix declares look-alikes beside the real ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi import layout


@dataclass(frozen=True, slots=True)
class Member:
    """A field: ``names`` has several entries for a one-byte union whose members share the offset."""

    names: tuple[str, ...]
    ctype: str
    offset: int
    count: int | None = None  # an array; 0 for a flexible array member

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True, slots=True)
class CStruct:
    tag: str
    size: int
    members: tuple[Member, ...]


def _m(name: str, ctype: str, offset: int, count: int | None = None) -> Member:
    return Member(tuple(name.split("/")), ctype, offset, count)


RESTRICTION: Final = CStruct("io_uring_restriction", layout.RESTRICTION_SIZE, (
    _m("opcode", "__u16", 0),
    _m("register_op/sqe_op/sqe_flags", "__u8", 2),
    _m("resv", "__u8", 3),
    _m("resv2", "__u32", 4, 3),
))
TASK_RESTRICTION: Final = CStruct("io_uring_task_restriction", layout.TASK_RESTRICTION_HEADER_SIZE, (
    _m("flags", "__u16", 0),
    _m("nr_res", "__u16", 2),
    _m("resv", "__u32", 4, 3),
    _m("restrictions", "struct io_uring_restriction", layout.TASK_RESTRICTION_HEADER_SIZE, 0),
))
BPF_FILTER: Final = CStruct("io_uring_bpf_filter", layout.BPF_FILTER_SIZE, (
    _m("opcode", "__u32", 0),
    _m("flags", "__u32", 4),
    _m("filter_len", "__u32", 8),
    _m("pdu_size", "__u8", layout.BPF_PDU_SIZE_OFFSET - 8),
    _m("resv", "__u8", 13, 3),
    _m("filter_ptr", "__u64", 16),
    _m("resv2", "__u64", 24, 5),
))
BPF: Final = CStruct("io_uring_bpf", layout.BPF_SIZE, (
    _m("cmd_type", "__u16", 0),
    _m("cmd_flags", "__u16", 2),
    _m("resv", "__u32", 4),
    _m("filter", "struct io_uring_bpf_filter", 8),
))

#: Known to every header that knows restriction records (Linux 5.10+).
OLD: Final = (RESTRICTION,)
#: New in Linux 7.0's headers (and liburing 2.15's copies of them).
NEW: Final = (TASK_RESTRICTION, BPF_FILTER, BPF)
ALL: Final = (*OLD, *NEW)


def _ctype(ctype: str, prefix: str) -> str:
    return ctype.replace("struct io_uring_", f"struct {prefix}io_uring_")


def declaration(s: CStruct, prefix: str = "") -> str:
    """``struct <prefix><tag> { ... };`` with the documented members (tags it refers to get the prefix too)."""
    lines = [f"struct {prefix}{s.tag} {{"]
    for m in s.members:
        array = "" if m.count is None else f"[{m.count or ''}]"
        if len(m.names) > 1:
            inner = " ".join(f"{m.ctype} {n};" for n in m.names)
            lines.append(f"\tunion {{ {inner} }};")
        else:
            lines.append(f"\t{_ctype(m.ctype, prefix)} {m.name}{array};")
    lines.append("};")
    return "\n".join(lines) + "\n"


def declarations(structs: tuple[CStruct, ...], prefix: str = "") -> str:
    return "\n".join(declaration(s, prefix) for s in structs)


def layout_asserts(structs: tuple[CStruct, ...] = ALL) -> str:
    """``_Static_assert`` lines: the structure in effect has the documented size and member offsets."""
    lines = []
    for s in structs:
        lines.append(f'_Static_assert(sizeof(struct {s.tag}) == {s.size}, "struct {s.tag} is {s.size} bytes");')
        for m in s.members:
            for name in m.names:
                lines.append(f"_Static_assert(offsetof(struct {s.tag}, {name}) == {m.offset}, "
                             f'"{s.tag}.{name} is at offset {m.offset}");')
    return "\n".join(lines) + "\n"


def comparison_asserts(structs: tuple[CStruct, ...], prefix: str) -> str:
    """``_Static_assert`` lines: the look-alikes declared with ``prefix`` match the structures in effect, member
    by member (size, offset and member size)."""
    lines = []
    for s in structs:
        mine, theirs = f"struct {prefix}{s.tag}", f"struct {s.tag}"
        lines.append(f'_Static_assert(sizeof({mine}) == sizeof({theirs}), "size of {s.tag}");')
        lines.append(f'_Static_assert(_Alignof({mine}) == _Alignof({theirs}), "alignment of {s.tag}");')
        for m in s.members:
            for name in m.names:
                lines.append(f"_Static_assert(offsetof({mine}, {name}) == offsetof({theirs}, {name}), "
                             f'"offset of {s.tag}.{name}");')
                if m.count != 0:
                    lines.append(f"_Static_assert(sizeof((({mine} *)0)->{name}) == sizeof((({theirs} *)0)->{name}), "
                                 f'"size of {s.tag}.{name}");')
    return "\n".join(lines) + "\n"
