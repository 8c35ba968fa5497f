"""Binding policy steps: the classic variant carries the filters a policy's predicates need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.abi.profiles import profile
from ringfence.cli import main as cli_main
from ringfence.errors import ScenarioError
from ringfence.scenario import parse, runner, steps
from ringfence.scenario.bind import bind
from ringfence.scenario.compare import compare_backends, compare_record
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.transcript import SubmitResult

INET_ONLY = {"policy": {"name": "inet", "kernel": "7.0+", "default": "allow", "target": "task"},
             "flags": {"allowed": ["IO_LINK"]},
             "allow": [{"op": "SOCKET", "socket": {"family": "AF_INET"}, "reason": "IPv4 only"}]}


def _doc(mechanism: str | None) -> dict[str, object]:
    apply: dict[str, object] = {"do": "policy", "task": "c", "policy": INET_ONLY, "expect": "ok"}
    if mechanism:
        apply["mechanism"] = mechanism
    return {"scenario": {"name": "bind", "requires": ["bpf_filter"]}, "step": [
        {"do": "fork", "child": "c"}, {"do": "nnp", "task": "c"}, apply,
        {"do": "ring", "task": "c", "ring": "r", "expect": "ok"},
        {"do": "submit", "task": "c", "ring": "r",
         "sqes": [{"op": "SOCKET", "ud": 1, "family": "AF_INET", "type": "SOCK_STREAM"},
                  {"op": "SOCKET", "ud": 2, "family": "AF_INET6", "type": "SOCK_STREAM"}],
         "expect": {"submitted": 2, "cqes": {"1": "ok", "2": "EACCES"}}}]}


def test_classic_variant_with_predicates_and_flags() -> None:
    """A policy with both [flags] and a predicate: classic records, then the SOCKET filter."""
    bound = bind(parse(_doc(None)), profile("7.2"))
    kinds = [type(s).__name__ for s in bound.steps]
    assert kinds == ["Fork", "SetNoNewPrivs", "Restrict", "Filter", "CreateRing", "Submit"]
    assert isinstance(bound.steps[3], steps.Filter) and bound.steps[3].expect_pdu_size == 12
    report = runner.run(ModelBackend(profile("7.2")), parse(_doc(None)))
    assert report.passed, report.mismatches


def test_filters_variant_refused_with_the_reason() -> None:
    with pytest.raises(ScenarioError, match=r"filters cannot express \[flags\]"):
        bind(parse(_doc("filters")), profile("7.2"))


def test_compare_and_explain_bind_policy_steps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Paths that run a scenario on backends directly compile its policy steps first."""
    scenario = parse(_doc(None))
    prof = profile("7.2")
    comparison = compare_backends(scenario, ModelBackend(prof), ModelBackend(prof))
    assert comparison.agreed and comparison.left is not None and len(comparison.left.steps) == 6
    assert comparison.left.steps[-1].result == SubmitResult(2, ((1, "ok"), (2, "EACCES")))
    record = {"skipped": None, "transcript": comparison.right.to_json() if comparison.right else None}
    assert compare_record(scenario, ModelBackend(prof), record).agreed
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_doc(None)))
    assert cli_main.main(["scenario", "explain", str(path), "--kernel", "7.2"]) == 0
    assert "EACCES" in capsys.readouterr().out
