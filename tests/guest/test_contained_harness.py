"""The harness's containment on a 7.x kernel: a scenario cannot reach the guest's files (the batch's ``out.json``
lives beside them), and the privilege gate of task filters, asked in the agents' own user namespace, answers as
it does uncontained. About 10 s of guest time."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ringfence.harness.backend import LiveBackend
from ringfence.scenario import parse
from ringfence.scenario import steps as s
from ringfence.scenario.transcript import StepResult


def _forged_write(target: str) -> s.Scenario:
    """An OPENAT the loader refuses (an absolute path), built as data: what a hole in the loader would allow."""
    scenario = parse({"scenario": {"name": "forge"}, "step": [
        {"do": "ring", "ring": "r"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "OPENAT", "fd": "cwd", "path": "{tmp}/x",
                                                "flags": "O_WRONLY|O_TRUNC", "ud": 1}]}]}, path="<guest>")
    submit = scenario.steps[1]
    assert isinstance(submit, s.Submit)
    item = submit.sqes[0]
    item = dataclasses.replace(item, sqe=dataclasses.replace(item.sqe, path=target))
    return dataclasses.replace(scenario, steps=(scenario.steps[0], dataclasses.replace(submit, sqes=(item,))))


def test_results_file_out_of_reach(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text('{"schema": 1}\n')
    transcript = LiveBackend().run(_forged_write(str(out)))
    assert transcript.error is None
    result = transcript.steps[-1].result
    assert not isinstance(result, str) and result.cqes == ((1, "ENOENT"),)
    assert out.read_text() == '{"schema": 1}\n'


def _gate(contain: bool) -> list[StepResult]:
    """Root without no_new_privs registers a task filter (the gate passes), then drops to 65534 in a child, whose
    registration the gate refuses."""
    scenario = parse({"scenario": {"name": "gate"}, "step": [
        {"do": "fork", "child": "c"},
        {"do": "filter", "opcode": "NOP", "program": "ret #1"},
        {"do": "drop_privileges", "task": "c"},
        {"do": "filter", "task": "c", "opcode": "NOP", "program": "ret #1"}]}, path="<guest>")
    transcript = LiveBackend(contain=contain).run(scenario)
    assert transcript.error is None, transcript.error
    return list(transcript.steps)


def test_privilege_gate_answers_the_same_contained() -> None:
    assert os.geteuid() == 0
    contained, uncontained = _gate(True), _gate(False)
    assert [r.result for r in contained] == [r.result for r in uncontained]
    assert [r.result for r in contained][1:] == ["ok", "ok", "EACCES"]
