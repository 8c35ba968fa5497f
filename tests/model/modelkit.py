"""Helpers for model tests: steps written as scenario-file dicts, run on a fresh kernel of one profile."""

from __future__ import annotations

from typing import Any

from ringfence.abi.profiles import KernelProfile, profile
from ringfence.model import Kernel, Reply, RequestOutcome, SubmitReply, Submitted
from ringfence.scenario import parse
from ringfence.scenario.model_backend import apply_step
from ringfence.scenario.steps import Step, SubmitItem

DENY = "ret #0"
ALLOW = "ret #1"
INET_ONLY = "ld [socket.family]\n jeq #AF_INET, ok, no\nok: ret #1\nno: ret #0"
TCP_ONLY = "ld [socket.type]\n and #0xf\n jeq #SOCK_STREAM, ok, no\nok: ret #1\nno: ret #0"


def steps(*raw: dict[str, Any]) -> tuple[Step, ...]:
    """Scenario steps from file-format dicts (through the real loader)."""
    return parse({"scenario": {"name": "t"}, "step": list(raw)}).steps


def sqe(op: str, **fields: Any) -> SubmitItem:
    """One SQE from a file-format dict, e.g. ``sqe("SOCKET", family="AF_INET", type="SOCK_STREAM")``."""
    step = steps({"do": "submit", "ring": "x", "sqes": [{"op": op, **fields}]})[0]
    return step.sqes[0]  # type: ignore[attr-defined,no-any-return]


class Run:
    """A kernel plus the replies of the steps applied so far."""

    def __init__(self, kernel: str | KernelProfile = "7.2", *raw: dict[str, Any]) -> None:
        prof = profile(kernel) if isinstance(kernel, str) else kernel
        self.kernel = Kernel(prof)
        self.replies: list[Reply | SubmitReply] = []
        self.raw: list[dict[str, Any]] = []
        self.do(*raw)

    def do(self, *raw: dict[str, Any]) -> Run:
        """Apply more steps; the loader sees the whole scenario so far, so names introduced earlier are known."""
        if not raw:
            return self
        self.raw += raw
        for step in steps(*self.raw)[len(self.replies):]:
            self.replies.append(apply_step(self.kernel, step, len(self.replies)))
        return self

    def one(self, raw: dict[str, Any]) -> Reply | SubmitReply:
        self.do(raw)
        return self.replies[-1]

    @property
    def last(self) -> Reply | SubmitReply:
        return self.replies[-1]

    def result(self, raw: dict[str, Any]) -> str:
        """The outcome of one non-submit step."""
        reply = self.one(raw)
        assert isinstance(reply, Reply), reply
        return reply.result

    def submit(self, ring: str, *sqes: dict[str, Any], task: str = "main") -> Submitted:
        reply = self.one({"do": "submit", "task": task, "ring": ring, "sqes": list(sqes)})
        assert isinstance(reply, SubmitReply)
        return reply.result

    def cqes(self, ring: str, *sqes: dict[str, Any], task: str = "main") -> dict[int, str]:
        return dict(self.submit(ring, *sqes, task=task).cqes)

    def each(self, ring: str, *sqes: dict[str, Any], task: str = "main") -> dict[int, str]:
        """Submit SQEs one call each (a failed SQE stops its call, §8.2), merging the CQEs."""
        out: dict[int, str] = {}
        for one in sqes:
            out.update(self.cqes(ring, one, task=task))
        return out

    def sqe_explain(self, index: int = -1) -> list[RequestOutcome]:
        reply = self.replies[index]
        assert isinstance(reply, SubmitReply)
        return list(reply.explanation.requests)


def decided_by(req: RequestOutcome) -> str:
    """The mechanism that decided a request: the one that failed it at init, else what happened when it ran."""
    rule = req.rule if req.decision.allowed else req.decision.rule
    return rule.mechanism.value


def nop(ud: int, **fields: Any) -> dict[str, Any]:
    return {"op": "NOP", "ud": ud, **fields}
