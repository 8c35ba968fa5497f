"""What a backend observed for each step of a scenario, in a form both backends produce and JSON carries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ringfence.errors import outcome_of
from ringfence.scenario.steps import Outcome

__all__ = ["Result", "StepResult", "SubmitResult", "Transcript", "outcome_of"]


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """``io_uring_enter``'s outcome (a count, or an errno name) and the CQEs as ``(user_data, outcome)``."""

    submitted: int | str
    cqes: tuple[tuple[int, Outcome], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"submitted": self.submitted, "cqes": [[ud, res] for ud, res in self.cqes]}


Result = Outcome | SubmitResult


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step's observed result. ``raw`` holds backend detail (live: the real numbers; model: explanations)."""

    index: int
    op: str
    task: str
    result: Result
    pdu_size_out: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        res: Any = self.result.to_json() if isinstance(self.result, SubmitResult) else self.result
        out: dict[str, Any] = {"index": self.index, "op": self.op, "task": self.task, "result": res}
        if self.pdu_size_out is not None:
            out["pdu_size_out"] = self.pdu_size_out
        if self.raw:
            out["raw"] = self.raw
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> StepResult:
        res = data["result"]
        result: Result = (SubmitResult(res["submitted"], tuple((int(u), str(r)) for u, r in res["cqes"]))
                          if isinstance(res, dict) else str(res))
        return StepResult(int(data["index"]), str(data["op"]), str(data["task"]), result,
                          data.get("pdu_size_out"), dict(data.get("raw", {})))


@dataclass(frozen=True, slots=True)
class Transcript:
    """Every step's result, which backend produced it, and on what kernel (profile name or ``uname -r``)."""

    scenario: str
    backend: str
    kernel: str
    steps: tuple[StepResult, ...]
    error: str | None = None  # the backend could not run the scenario at all

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "scenario": self.scenario, "backend": self.backend, "kernel": self.kernel,
                "steps": [s.to_json() for s in self.steps], "error": self.error}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Transcript:
        return Transcript(str(data["scenario"]), str(data["backend"]), str(data["kernel"]),
                          tuple(StepResult.from_json(s) for s in data["steps"]), data.get("error"))
