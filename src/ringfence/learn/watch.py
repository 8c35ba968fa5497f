"""Denials as they happen: ``io_uring_req_failed`` records with ``EACCES``, with the filter context when one was
built for the request (a filter ran for its opcode). Pure: lines in, denials out."""

from __future__ import annotations

from dataclasses import dataclass

from ringfence.abi.opcodes import op_name
from ringfence.learn.generalise import describe
from ringfence.learn.seen import CONTEXT_OPS, IOSQE_MASK, Shape
from ringfence.learn.trace import Context, Failed, parse_line

EACCES = 13


@dataclass(frozen=True, slots=True)
class Denial:
    pid: int
    shape: Shape

    @property
    def text(self) -> str:
        return describe(self.shape)

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "opcode": op_name(self.shape.opcode), "flags": self.shape.flags,
                "context": dict(self.shape.ctx), "request": self.text}


class Watcher:
    """Feed trace lines; each EACCES failure comes back as a :class:`Denial`."""

    def __init__(self) -> None:
        self._pending: dict[int, Context] = {}

    def feed(self, line: str) -> Denial | None:
        record = parse_line(line)
        if isinstance(record, Context):
            self._pending[record.req] = record
        elif isinstance(record, Failed):
            ctx = self._pending.pop(record.req, None)
            if record.error != -EACCES:
                return None
            fields: tuple[tuple[str, int | str], ...] = ()
            if ctx is not None and CONTEXT_OPS.get(record.opcode) == ctx.kind:
                fields = tuple(sorted((k, v.hex() if isinstance(v, bytes) else v) for k, v in ctx.fields))
            return Denial(record.pid, Shape(record.opcode, record.flags & IOSQE_MASK, fields, "EACCES", True))
        return None
