"""Trace records joined into requests, counted by shape: what a workload submitted and how it ended.

A context record (what the kernel built for the filters) is followed, in the submitting task, by the
``submit_req`` or ``req_failed`` record of the same request; a completion names the request by the same pointer.
Requests whose opcode has a context but for which none was seen were refused or failed before the filters ran.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from ringfence.abi.opcodes import SqeOp, op_name, sqe_op
from ringfence.errors import errno_name
from ringfence.learn.trace import Complete, Context, Failed, Record, Submit

#: Opcodes whose filter context carries arguments (and so get an observer filter while learning).
CONTEXT_OPS: dict[int, str] = {int(SqeOp.SOCKET): "socket", int(SqeOp.OPENAT): "open", int(SqeOp.OPENAT2): "open",
                               int(SqeOp.CONNECT): "connect"}
IOSQE_MASK = 0x7F


#: The fields each opcode's context builder writes (what a trace gives; learn-data is held to the same).
CONTEXT_FIELDS: Final[Mapping[int, tuple[str, ...]]] = MappingProxyType({
    int(SqeOp.SOCKET): ("socket.family", "socket.type", "socket.protocol"),
    int(SqeOp.OPENAT): ("open.flags", "open.mode", "open.resolve"),
    int(SqeOp.OPENAT2): ("open.flags", "open.mode", "open.resolve"),
    int(SqeOp.CONNECT): ("connect.family", "connect.port", "connect.addr"),
})


@dataclass(frozen=True, slots=True, order=True)
class Shape:
    """One kind of request: opcode, the IOSQE bits the kernel reported, the filter context's fields (empty when
    none was built), and how it ended (``ok``, or an errno name; ``init`` when it failed before issue)."""

    opcode: int
    flags: int
    ctx: tuple[tuple[str, int | str], ...] = ()
    outcome: str = "ok"
    init: bool = False

    def field(self, name: str) -> int | str:
        return dict(self.ctx)[name]

    def to_json(self) -> dict[str, Any]:
        return {"op": op_name(self.opcode), "flags": self.flags, "ctx": dict(self.ctx), "outcome": self.outcome,
                "init": self.init}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Shape:
        """A shape from a learn-data line, checked as strictly as a trace: the context, when there is one, has
        exactly the fields the kernel's builder for that opcode writes."""
        ctx = data.get("ctx") or {}
        if not isinstance(ctx, Mapping):
            raise ValueError("ctx is not a table")
        opcode = int(sqe_op(str(data["op"])))
        flags = data["flags"]
        if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags <= 0xFF:
            raise ValueError(f"flags {flags!r} is not a byte")
        if ctx and set(ctx) != set(CONTEXT_FIELDS.get(opcode, ())):
            raise ValueError(f"{op_name(opcode)}'s context has fields {sorted(ctx)}; the kernel writes "
                             f"{sorted(CONTEXT_FIELDS.get(opcode, ())) or 'none'}")
        values: list[tuple[str, int | str]] = []
        for k, v in ctx.items():
            if k == "connect.addr":
                if not isinstance(v, str) or len(v) != 32 or any(c not in "0123456789abcdef" for c in v):
                    raise ValueError(f"{k} {v!r} is not 16 bytes of hex")
                values.append((k, v))
            elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF:
                values.append((k, v))
            else:
                raise ValueError(f"{k} {v!r} is not a 32-bit value")
        return cls(opcode, flags, tuple(sorted(values)), str(data.get("outcome", "ok")), bool(data.get("init", False)))


def _ctx_fields(ctx: Context) -> tuple[tuple[str, int | str], ...]:
    out: list[tuple[str, int | str]] = []
    for name, value in ctx.fields:
        out.append((name, value.hex() if isinstance(value, bytes) else value))
    return tuple(sorted(out))


def shapes(records: Iterable[Record]) -> Counter[Shape]:
    """Count the requests in ``records`` by shape (in trace order; a request pointer is reused only after its
    completion)."""
    pending: dict[int, Context] = {}
    open_: dict[int, tuple[int, int, tuple[tuple[str, int | str], ...]]] = {}
    counts: Counter[Shape] = Counter()
    for r in records:
        if isinstance(r, Context):
            pending[r.req] = r
        elif isinstance(r, Submit):
            ctx = pending.pop(r.req, None)
            fields = _ctx_fields(ctx) if ctx is not None and CONTEXT_OPS.get(r.opcode) == ctx.kind else ()
            if r.req in open_:  # the previous request on this pointer completed unseen (outside the trace)
                counts[Shape(*open_.pop(r.req))] += 1
            open_[r.req] = (r.opcode, r.flags & IOSQE_MASK, fields)
        elif isinstance(r, Failed):
            ctx = pending.pop(r.req, None)
            fields = _ctx_fields(ctx) if ctx is not None and CONTEXT_OPS.get(r.opcode) == ctx.kind else ()
            if r.req in open_:  # as for a submission: the earlier request on this pointer has completed
                counts[Shape(*open_.pop(r.req))] += 1
            counts[Shape(r.opcode, r.flags & IOSQE_MASK, fields, errno_name(-r.error), True)] += 1
        elif isinstance(r, Complete) and r.req in open_:
            opcode, flags, fields = open_.pop(r.req)
            counts[Shape(opcode, flags, fields, "ok" if r.result >= 0 else errno_name(-r.result))] += 1
    for opcode, flags, fields in open_.values():  # submitted, no completion in the trace (still running)
        counts[Shape(opcode, flags, fields)] += 1
    return counts


def to_json(counts: Mapping[Shape, int]) -> list[dict[str, Any]]:
    return [{**s.to_json(), "n": n} for s, n in sorted(counts.items())]


def from_json(items: Iterable[Mapping[str, Any]]) -> Counter[Shape]:
    out: Counter[Shape] = Counter()
    for item in items:
        n = item["n"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1 << 62:
            raise ValueError(f"count {n!r} is not a positive number of requests")
        out[Shape.from_json(item)] += n
    return out


def dumps(counts: Mapping[Shape, int]) -> str:
    return json.dumps(to_json(counts), separators=(",", ":"))
