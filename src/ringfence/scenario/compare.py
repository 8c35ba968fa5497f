"""Two transcripts of one scenario, step by step: the model against a real kernel, or any two backends.

A difference is a finding about the model, the harness, the scenario or the kernel, never noise. This is the
one place the comparison workflow lives: ``ringfence scenario diff`` and the conformance suites use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ringfence.scenario.backend import Backend
from ringfence.scenario.bind import bind
from ringfence.scenario.runner import skip_reason
from ringfence.scenario.steps import Scenario
from ringfence.scenario.transcript import Result, SubmitResult, Transcript


@dataclass(frozen=True, slots=True)
class Difference:
    """A step where two transcripts disagree."""

    index: int
    op: str
    left: Result | None
    right: Result | None
    what: str

    def render(self, left_name: str, right_name: str) -> str:
        return (f"step {self.index} ({self.op}): {self.what}: "
                f"{left_name}={show(self.left)} {right_name}={show(self.right)}")


def show(r: Result | None) -> str:
    if isinstance(r, SubmitResult):
        cq = ", ".join(f"{u}:{o}" for u, o in r.cqes)
        return f"submitted={r.submitted} cqes=[{cq}]"
    return str(r)


def compare(left: Transcript, right: Transcript) -> list[Difference]:
    """Step-by-step differences; CQEs compare as sets keyed by user_data (completion order is not modelled)."""
    diffs: list[Difference] = []
    if left.error or right.error:
        if left.error != right.error:
            diffs.append(Difference(-1, "scenario", left.error, right.error, "backend error"))
        return diffs
    for a, b in zip(left.steps, right.steps, strict=False):
        if isinstance(a.result, SubmitResult) and isinstance(b.result, SubmitResult):
            if a.result.submitted != b.result.submitted or sorted(a.result.cqes) != sorted(b.result.cqes):
                diffs.append(Difference(a.index, a.op, a.result, b.result, "submission differs"))
        elif a.result != b.result:
            diffs.append(Difference(a.index, a.op, a.result, b.result, "result differs"))
        elif a.pdu_size_out != b.pdu_size_out:
            diffs.append(Difference(a.index, a.op, str(a.pdu_size_out), str(b.pdu_size_out), "pdu_size write-back"))
    if len(left.steps) != len(right.steps):
        diffs.append(Difference(min(len(left.steps), len(right.steps)), "-", str(len(left.steps)),
                                str(len(right.steps)), "number of steps"))
    return diffs


@dataclass(frozen=True, slots=True)
class Comparison:
    """One scenario on two backends: skipped (and why), or both transcripts and their differences."""

    scenario: Scenario
    skipped: str | None
    left: Transcript | None = None
    right: Transcript | None = None
    differences: tuple[Difference, ...] = ()

    @property
    def agreed(self) -> bool:
        return not self.differences

    def render(self) -> str:
        """The differences, then both transcripts side by side; empty when they agree."""
        if self.agreed or self.left is None or self.right is None:
            return ""
        lines = [d.render(self.left.backend, self.right.backend) for d in self.differences]
        return "\n".join(lines) + "\n" + side_by_side(self.left, self.right)


def side_by_side(left: Transcript, right: Transcript) -> str:
    def cell(result: object) -> str:
        text = show(result) if isinstance(result, SubmitResult) else str(result)
        return text if len(text) < 44 else text[:41] + "..."

    lines = [f"{'step':>4}  {'op':<10} {left.backend + ' ' + left.kernel:<44} {right.backend + ' ' + right.kernel}"]
    if left.error or right.error:
        lines.append(f"      error: {left.backend}={left.error} {right.backend}={right.error}")
    differing = {d.index for d in compare(left, right)}  # CQEs as sets, as compare() sees them
    for a, b in zip(left.steps, right.steps, strict=False):
        mark = "  <-- differs" if a.index in differing else ""
        lines.append(f"{a.index:>4}  {a.op:<10} {cell(a.result):<44} {cell(b.result)}{mark}")
    return "\n".join(lines)


def compare_backends(scenario: Scenario, left: Backend, right: Backend) -> Comparison:
    """Run ``scenario`` on both unless the right-hand backend (the kernel) says it does not apply."""
    reason = skip_reason(scenario, right.profile, right.features())
    if reason:
        return Comparison(scenario, reason)
    scenario = bind(scenario, right.profile)  # policy steps: compiled for the kernel compared against
    a, b = left.run(scenario), right.run(scenario)
    return Comparison(scenario, None, a, b, tuple(compare(a, b)))


def compare_record(scenario: Scenario, model: Backend, record: Mapping[str, Any]) -> Comparison:
    """Compare the model with a batch record of the same scenario run on a kernel elsewhere (the VM).

    A record the harness could not run at all (``error``) or that skipped differently is a difference too.
    """
    model_skip = skip_reason(scenario, model.profile, model.features())
    kernel_skip = record.get("skipped")
    if record.get("error"):
        return Comparison(scenario, None, differences=(Difference(-1, "scenario", None, None,
                                                                  f"harness error: {record['error']}"),))
    if model_skip or kernel_skip:
        if bool(model_skip) != bool(kernel_skip):
            return Comparison(scenario, None, differences=(Difference(
                -1, "scenario", None, None, f"skip differs: kernel={kernel_skip!r} model={model_skip!r}"),))
        return Comparison(scenario, str(kernel_skip or model_skip))
    kernel = Transcript.from_json(record["transcript"])
    ours = model.run(bind(scenario, model.profile))
    return Comparison(scenario, None, ours, kernel, tuple(compare(ours, kernel)))
