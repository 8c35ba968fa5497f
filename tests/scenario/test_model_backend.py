"""ModelBackend: the Backend protocol, transcripts, determinism, malformed scenarios; 300 generated scenarios."""

from __future__ import annotations

import json

import pytest

from ringfence.abi.profiles import PROFILES, profile
from ringfence.errors import ScenarioError
from ringfence.scenario import parse, runner
from ringfence.scenario.backend import Backend
from ringfence.scenario.compare import compare
from ringfence.scenario.generate import generate_many
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.transcript import SubmitResult, Transcript

DENY = "ret #0"
DENY_NOP = {"scenario": {"name": "deny_nop", "requires": ["bpf_filter"]}, "step": [
    {"do": "nnp"},
    {"do": "filter", "opcode": "NOP", "program": DENY, "expect": "ok", "expect_pdu_size": 0},
    {"do": "ring", "ring": "r", "expect": "ok"},
    {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}],
     "expect": {"submitted": 1, "cqes": {"1": "EACCES"}}},
]}


def test_protocol_and_features() -> None:
    backend: Backend = ModelBackend(profile("7.2"))
    assert backend.name == "model" and backend.profile.name == "7.2"
    assert backend.features() == {"netns", "unprivileged"}


def test_transcript_shape_and_json_round_trip() -> None:
    tr = ModelBackend(profile("7.3")).run(parse(DENY_NOP))
    assert tr.kernel == "7.3" and tr.backend == "model" and tr.error is None
    assert [s.op for s in tr.steps] == ["nnp", "filter", "ring", "submit"]
    assert tr.steps[1].pdu_size_out == 0 and tr.steps[0].pdu_size_out is None
    assert tr.steps[3].result == SubmitResult(1, ((1, "EACCES"),))
    again = Transcript.from_json(json.loads(tr.dumps()))
    assert compare(tr, again) == []


def test_runner_checks_expectations_on_the_model() -> None:
    report = runner.run(ModelBackend(profile("7.2")), parse(DENY_NOP))
    assert report.passed, report.mismatches
    skipped = runner.run(ModelBackend(profile("6.18")), parse(DENY_NOP))
    assert skipped.skipped == "needs bpf_filter"


def test_unknown_names_raise_scenario_error_with_the_step() -> None:
    doc = {"scenario": {"name": "bad"},
           "step": [{"do": "ring", "ring": "r"}, {"do": "submit", "ring": "q", "sqes": []}]}
    with pytest.raises(ScenarioError) as info:
        ModelBackend(profile("7.2")).run(parse(doc))
    assert info.value.step == 1
    with pytest.raises(ScenarioError):
        ModelBackend(profile("7.2")).run(parse({"scenario": {"name": "x"}, "step": [{"do": "nnp", "task": "who"}]}))
    with pytest.raises(ScenarioError):
        ModelBackend(profile("7.2")).run(parse({"scenario": {"name": "x"},
                                                "step": [{"do": "fork", "child": "main"}]}))


GENERATED = generate_many(20260101, 250) + generate_many(20260102, 50, classic_only=True)


@pytest.mark.parametrize("kernel", list(PROFILES))
def test_generated_scenarios_never_raise_and_are_deterministic(kernel: str) -> None:
    backend = ModelBackend(profile(kernel))
    for doc in GENERATED:
        scenario = parse(doc)
        first, second = backend.run(scenario), backend.run(scenario)
        assert first.dumps() == second.dumps()
        assert len(first.steps) == len(scenario.steps)
        json.dumps(first.to_json())


def test_detail_off_gives_the_same_verdicts() -> None:
    fast, slow = ModelBackend(profile("7.2"), detail=False), ModelBackend(profile("7.2"))
    for doc in GENERATED[:60]:
        scenario = parse(doc)
        assert compare(fast.run(scenario), slow.run(scenario)) == []


def test_errno_spelling_follows_the_shared_errno_table() -> None:
    from ringfence.errors import errno_name, errno_number
    from ringfence.model.outcome import spelling

    assert spelling("EOPNOTSUPP") == errno_name(errno_number("EOPNOTSUPP")) == spelling("ENOTSUP")
    assert spelling("EWOULDBLOCK") == spelling("EAGAIN") and spelling("EACCES") == "EACCES"
    assert spelling("ENOSUCHTHING") == "ENOSUCHTHING"
