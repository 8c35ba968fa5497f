"""Model-vs-kernel comparison of one scenario, with both transcripts side by side on failure."""

from __future__ import annotations

from typing import Any

from ringfence.abi.profiles import KernelProfile
from ringfence.scenario import Scenario, Transcript, compare, run
from ringfence.scenario.model_backend import ModelBackend


def side_by_side(left: Transcript, right: Transcript) -> str:
    lines = [f"{'step':>4}  {'op':<10} {left.backend + ' ' + left.kernel:<44} {right.backend + ' ' + right.kernel}"]
    for a, b in zip(left.steps, right.steps, strict=False):
        mark = "" if a.result == b.result and a.pdu_size_out == b.pdu_size_out else "  <-- differs"
        lines.append(f"{a.index:>4}  {a.op:<10} {_fmt(a.result):<44} {_fmt(b.result)}{mark}")
    return "\n".join(lines)


def _fmt(result: object) -> str:
    text = str(result)
    return text if len(text) < 44 else text[:41] + "..."


def model_transcript(scenario: Scenario, profile: KernelProfile) -> tuple[Transcript | None, str | None]:
    report = run(ModelBackend(profile), scenario)
    return report.transcript, report.skipped


def check_against_model(scenario: Scenario, live: dict[str, Any], profile: KernelProfile) -> str | None:
    """None if the live record and the model agree, else a readable description."""
    model, skipped = model_transcript(scenario, profile)
    if live.get("error"):
        return f"live backend error: {live['error']}"
    if live.get("skipped") or skipped:
        if bool(live.get("skipped")) != bool(skipped):
            return f"skip differs: live={live.get('skipped')!r} model={skipped!r}"
        return None
    assert model is not None
    kernel = Transcript.from_json(live["transcript"])
    if kernel.error:
        return f"live transcript error: {kernel.error}"
    diffs = compare(model, kernel)
    if diffs:
        return "\n".join(d.render("model", "kernel") for d in diffs) + "\n" + side_by_side(model, kernel)
    return None
