"""Reading one SQE of a submit step: its opcode's keys, typed and ranged, and the harness's safety rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF, IPPROTO, RESOLVE, SOCK, O
from ringfence.abi.opcodes import SqeFlag, SqeOp
from ringfence.abi.sqe import SOCKADDR_SIZE, OpenHow, Sqe
from ringfence.inputs.nodes import Node
from ringfence.inputs.schema import U8, U16, U32, U64, Bits, Choice, Either, Fields, Int, Str
from ringfence.inputs.text import token
from ringfence.scenario import steps as s
from ringfence.scenario.caps import ARENA_SIZE, MAX_ADDR_LEN, MAX_BUFFER, MAX_PATH
from ringfence.scenario.load_expect import OUTCOME
from ringfence.scenario.safety import path_problem

OPCODE: Final = Either((Choice({op.name: int(op) for op in SqeOp}, what="SQE opcode", prefixes=("IORING_OP_",)),
                        Int(0, U8)))
SQE_FLAGS: Final = Bits({f.name: int(f) for f in SqeFlag if f.name}, U8, what="SQE flag", prefixes=("IOSQE_",))
RESOURCES: Final = ("null", "zero", "pipe.r", "pipe.w", "cwd", "file", "sock.a", "sock.b", "listen")
RESOURCE: Final = Choice({name: name for name in RESOURCES}, what="resource", fold=False)

#: Raw SQE fields any SQE may set, with their ranges: they reach the kernel as written.
RAW: Final[Mapping[str, int]] = {"op_flags": U32, "buf_index": U16, "personality": U16, "file_index": U32}
_COMMON: Final = frozenset({"op", "ud", "sqe_flags", "fd", "result", "addr", *RAW})
#: Opcodes whose ``addr`` is a plain data buffer (or unused): only these take a raw ``addr``, an offset into the
#: agent's arena. Elsewhere ``addr`` points at a path, a sockaddr or an array of pointers, which arena bytes
#: must not become.
ARENA_OPS: Final = frozenset({"NOP", "READ", "WRITE", "READ_FIXED", "WRITE_FIXED"})
_RW: Final = frozenset({"len"})
#: Keys each opcode understands besides the common ones.
KEYS: Final[Mapping[str, frozenset[str]]] = {
    "SOCKET": frozenset({"family", "type", "protocol"}), "OPENAT": frozenset({"path", "flags", "mode"}),
    "OPENAT2": frozenset({"path", "flags", "mode", "resolve"}),
    "CONNECT": frozenset({"family", "socket", "type", "addr", "port", "addr_len"}),
    "READ": _RW, "WRITE": _RW, "READV": _RW, "WRITEV": _RW, "READ_FIXED": _RW, "WRITE_FIXED": _RW,
}
#: Opcodes whose SQE ``fd`` field is not a descriptor: an ``fd`` key would be ignored, so it is refused.
NO_FD: Final = frozenset({"NOP", "SOCKET"})

_FAMILY: Final = Bits(dict(AF), U32, what="address family")
_SOCK_TYPE: Final = Bits(dict(SOCK), U32, what="socket type")
_PROTOCOL: Final = Bits(dict(IPPROTO), U32, what="protocol")
_OPEN32: Final = Bits(dict(O), U32, what="open flag")
_OPEN64: Final = Bits(dict(O), U64, what="open flag")
_RESOLVE: Final = Bits(dict(RESOLVE), U64, what="resolve flag")
_MODE32: Final = Bits({}, U32, what="mode")
_MODE64: Final = Bits({}, U64, what="mode")
#: Sockets the harness itself creates for a CONNECT.
_CONNECT_SOCKETS: Final = {AF["AF_INET"]: "AF_INET", AF["AF_INET6"]: "AF_INET6", AF["AF_UNIX"]: "AF_UNIX"}
_SOCKET: Final = Either((Choice({"AF_INET": AF["AF_INET"], "AF_INET6": AF["AF_INET6"], "AF_UNIX": AF["AF_UNIX"],
                                 "AF_LOCAL": AF["AF_UNIX"]}, what="socket family"), Int(0, U16)))


def _opcode_name(opcode: int) -> str:
    return SqeOp(opcode).name if opcode < len(SqeOp) else str(opcode)


def _fd(fields: Fields, flags: int) -> str | int:
    value: str | int = fields.get("fd", Either((RESOURCE, Int(-(1 << 31), (1 << 31) - 1))), "null")
    if isinstance(value, int) and value >= 0 and not flags & SqeFlag.FIXED_FILE:
        raise fields.error("fd", "a descriptor number would reach whatever the harness has open under it; name a "
                                 f"resource ({', '.join(RESOURCES)}), or set FIXED_FILE for a fixed-file index")
    return value


def _path(fields: Fields, key: str, *, devices: bool) -> str:
    text = fields.get(key, Str(MAX_PATH), "")
    problem = path_problem(text, devices=devices)
    if problem is not None:
        raise fields.error(key, f"{token(text)} {problem}")
    return text


def _connect(fields: Fields, ud: int, flags: int) -> tuple[Sqe, s.ConnectTo]:
    family = fields.get("family", _FAMILY, 0)
    if family > U16:
        raise fields.error("family", f"{family} does not fit a sockaddr's 16-bit family")
    default_socket = family if family in _CONNECT_SOCKETS else None
    socket_family = fields.get("socket", _SOCKET, default_socket)
    if socket_family is None:
        raise fields.error("family", "CONNECT with this family needs `socket` (AF_INET, AF_INET6 or AF_UNIX): the "
                                     "harness creates a real socket of that family")
    if socket_family not in _CONNECT_SOCKETS:
        raise fields.error("socket", "the harness creates only AF_INET, AF_INET6 and AF_UNIX sockets")
    addr = fields.get("addr", Str(255), "")
    port = fields.get("port", Int(0, 0xFFFF), 0)
    if family == AF["AF_UNIX"]:
        problem = path_problem(addr, devices=False) if addr else None
        if problem is not None:
            raise fields.error("addr", f"{token(addr)} {problem}")
    elif family not in (AF["AF_INET"], AF["AF_INET6"]) and addr:
        raise fields.error("addr", "an address is only read for AF_INET, AF_INET6 and AF_UNIX")
    try:
        address = abisqe.sockaddr(family, addr, port)
    except ValueError as exc:
        raise fields.error("addr", f"{token(addr)} is not an address of this family: {exc}") from None
    addr_len = fields.get("addr_len", Int(-(1 << 31), MAX_ADDR_LEN), SOCKADDR_SIZE.get(family, 16))
    connect = s.ConnectTo(socket_family, fields.get("type", _SOCK_TYPE, SOCK["SOCK_STREAM"]), family, addr, port)
    return abisqe.connect(0, address, addr_len, user_data=ud, flags=flags), connect


def read_sqe(node: Node, index: int) -> s.SubmitItem:
    """One SQE table of ``sqes`` (``index`` is its position there)."""
    path = f"sqes[{index}]"
    head = Fields(node, allowed=_COMMON | frozenset().union(*KEYS.values()), path=path)
    opcode = head.need("op", OPCODE)
    name = _opcode_name(opcode)
    fields = Fields(node, allowed=(_COMMON | KEYS.get(name, frozenset())) - ({"fd"} if name in NO_FD else set()),
                    path=path, what=f"{token(path)} ({name})")
    ud = fields.get("ud", Int(0, U64, text=True), index + 1)
    flags = fields.get("sqe_flags", SQE_FLAGS, 0)
    result = fields.get("result", OUTCOME, s.OK)
    fd = None if name in NO_FD else _fd(fields, flags)
    buffer = fields.get("len", Int(0, MAX_BUFFER), 8)
    connect = None
    arena = fields.get("addr", Int(0, ARENA_SIZE), None) if name in ARENA_OPS else None
    if fields.has("addr") and name not in ARENA_OPS | {"CONNECT"}:  # CONNECT's `addr` is its address text
        raise fields.error("addr", f"a raw `addr` is only for opcodes whose address is a data buffer "
                                   f"({', '.join(sorted(ARENA_OPS))}); {name} reads a structure or a path there")
    if name == "SOCKET":
        sqe = abisqe.socket(fields.get("family", _FAMILY, 0), fields.get("type", _SOCK_TYPE, 0),
                            fields.get("protocol", _PROTOCOL, 0), user_data=ud, flags=flags)
    elif name == "OPENAT":
        sqe = abisqe.openat(_path(fields, "path", devices=True), fields.get("flags", _OPEN32, 0),
                            fields.get("mode", _MODE32, 0), user_data=ud, flags=flags)
    elif name == "OPENAT2":
        how = OpenHow(fields.get("flags", _OPEN64, 0), fields.get("mode", _MODE64, 0),
                      fields.get("resolve", _RESOLVE, 0))
        sqe = abisqe.openat2(_path(fields, "path", devices=True), how, user_data=ud, flags=flags)
    elif name == "CONNECT":
        sqe, connect = _connect(fields, ud, flags)
    elif name in ("READ", "WRITE", "READV", "WRITEV", "READ_FIXED", "WRITE_FIXED"):
        sqe = abisqe.rw(opcode, 0, buffer, user_data=ud, flags=flags)
    else:
        sqe = Sqe(opcode, flags, ud, fd=-1 if name == "NOP" else 0)
    return s.SubmitItem(_raw(fields, sqe, arena), fd, result, buffer, connect, arena)


def _raw(fields: Fields, sqe: Sqe, arena: int | None) -> Sqe:
    """The raw fields written in the scenario, on top of what the opcode's keys filled in (never both)."""
    given: dict[str, Any] = {}
    for key, limit in RAW.items():
        value = fields.get(key, Int(0, limit, text=True), None)
        if value is not None and getattr(sqe, key):
            raise fields.error(key, f"`{key}` is already set by this opcode's own keys")
        if value is not None:
            given[key] = value
    if arena is not None:
        given["addr"] = arena  # the model sees the offset; the harness adds the arena's address
    return dataclasses.replace(sqe, **given) if given else sqe
