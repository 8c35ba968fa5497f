"""Trace text from tracefs, as records: what the kernel said about each io_uring request.

Three io_uring tracepoints (``io_uring_submit_req``, ``io_uring_req_failed``, ``io_uring_complete``) and the
function-exit probes :mod:`ringfence.learn.tracefs` puts on the kernel's per-opcode context builders (events
named ``rf_socket``, ``rf_open``, ``rf_connect``). Pure: text in, records out, so it is tested on text captured
from a real kernel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ringfence.abi.opcodes import sqe_op

#: ``comm-pid [cpu] flags timestamp: event: body`` (tracefs's default ``trace`` format).
_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:\S+\s+)?"
                   r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s+(?P<body>.*)$")
_TP_FIELD = re.compile(r"\b(ring|req|user_data|opcode|flags|result|error|off|addr|len|sq_thread)[ =]([^,\s]+)")
_PROBE_FIELD = re.compile(r"\b(\w+)=(\{[^}]*\}|\S+)")

#: The context-builder probes and the kind of context each reports.
PROBE_KINDS = {"rf_socket": "socket", "rf_open": "open", "rf_connect": "connect"}


class TraceError(ValueError):
    """A trace line that claims to be one of ours but cannot be read."""


@dataclass(frozen=True, slots=True)
class Submit:
    """``io_uring_submit_req``: a request passed init, prep and the filters. ``flags`` is the kernel's request
    flag word (IOSQE bits in the low 7, the kernel's own above)."""

    pid: int
    req: int
    user_data: int
    opcode: int
    flags: int


@dataclass(frozen=True, slots=True)
class Failed:
    """``io_uring_req_failed``: a request that failed before issue (a restriction, a filter, prep); ``flags`` is
    the SQE's flag byte as submitted."""

    pid: int
    req: int
    user_data: int
    opcode: int
    flags: int
    error: int


@dataclass(frozen=True, slots=True)
class Complete:
    pid: int
    req: int
    user_data: int
    result: int


@dataclass(frozen=True, slots=True)
class Context:
    """What a context builder wrote for the filters: ``kind`` socket/open/connect and its fields, numbers as the
    policy language means them (ports in host order, the address as 16 bytes)."""

    pid: int
    req: int
    kind: str
    sqe_flags: int
    fields: tuple[tuple[str, int | bytes], ...]

    def get(self, name: str) -> int | bytes:
        return dict(self.fields)[name]


Record = Submit | Failed | Complete | Context


def _int(text: str) -> int:
    return int(text, 16) if text.startswith(("0x", "0X")) else int(text)


def _pointer(text: str) -> int:
    return int(text.removeprefix("0x"), 16)


def _opcode(name: str) -> int:
    try:
        return int(sqe_op(name))
    except (KeyError, ValueError):
        raise TraceError(f"unknown opcode name {name!r}") from None


def _tracepoint(event: str, pid: int, body: str) -> Record | None:
    f = dict(_TP_FIELD.findall(body))
    if event == "io_uring_submit_req":
        return Submit(pid, _pointer(f["req"]), _int(f["user_data"]), _opcode(f["opcode"]), _int(f["flags"]))
    if event == "io_uring_req_failed":
        return Failed(pid, _pointer(f["req"]), _int(f["user_data"]), _opcode(f["opcode"]), _int(f["flags"]),
                      int(f["error"]))
    if event == "io_uring_complete":
        return Complete(pid, _pointer(f["req"]), _int(f["user_data"]), int(f["result"]))
    return None


def _bytes(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.strip("{}").split(","))


def _probe(event: str, pid: int, body: str) -> Context:
    f = dict(_PROBE_FIELD.findall(body))
    kind = PROBE_KINDS[event]
    req, sf = _pointer(f["req"]), int(f["sf"])
    if kind == "socket":
        fields: tuple[tuple[str, int | bytes], ...] = (
            ("socket.family", int(f["family"])), ("socket.type", int(f["type"])),
            ("socket.protocol", int(f["protocol"])))
    elif kind == "open":
        fields = (("open.flags", int(f["flags"])), ("open.mode", int(f["mode"])),
                  ("open.resolve", int(f["resolve"])))
    else:
        raw_port = int(f["port"])  # a be16 read as a little-endian u16
        port = ((raw_port & 0xFF) << 8) | (raw_port >> 8)
        fields = (("connect.family", int(f["family"])), ("connect.port", port),
                  ("connect.addr", _bytes(f["addr"])))
    return Context(pid, req, kind, sf, fields)


def parse_line(line: str) -> Record | None:
    """One trace line as a record; None for comments and events that are not ours."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    m = _LINE.match(line)
    if m is None:
        return None
    event, pid, body = m["event"], int(m["pid"]), m["body"]
    try:
        if event in PROBE_KINDS:
            return _probe(event, pid, body)
        return _tracepoint(event, pid, body)
    except (KeyError, ValueError) as exc:
        raise TraceError(f"cannot read this {event} line ({exc}): {line.strip()}") from None


def parse(lines: Iterable[str]) -> list[Record]:
    out = []
    for line in lines:
        record = parse_line(line)
        if record is not None:
            out.append(record)
    return out
