"""The host kernel (6.18 here) against the model: the corpus and random classic-only scenarios."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import conformance_tally as tally
import pytest
from conformance_compare import check_against_model
from conformance_data import CORPUS, HOST_RANDOM, SEED, random_scenarios

from ringfence.scenario import load, parse

pytestmark = pytest.mark.live


@cache
def _backend() -> Any:
    from ringfence.harness.backend import LiveBackend

    return LiveBackend()


def _live_record(scenario: Any) -> dict[str, Any]:
    from ringfence.scenario import run

    report = run(_backend(), scenario)
    return {"skipped": report.skipped, "transcript": report.transcript.to_json() if report.transcript else None,
            "mismatches": [m.render() for m in report.mismatches]}


@pytest.fixture(scope="module", autouse=True)
def _host_kernel() -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: the host conformance suite runs as root (it forks, drops privileges, unshares)")
    tally.HOST["host"] = f"{os.uname().release} (profile {_backend().profile.name})"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_host_corpus_scenario(path: Any) -> None:
    scenario = load(path)
    record = _live_record(scenario)
    problem = check_against_model(scenario, record, _backend().profile)
    if record["skipped"] is None:
        tally.compared("host corpus scenarios", agreed=problem is None, detail=f"{path.stem}: {problem}")
    assert problem is None, problem
    assert not record["mismatches"], "kernel differs from the scenario's expectations:\n" + "\n".join(
        record["mismatches"])


@pytest.mark.parametrize("index", range(HOST_RANDOM))
def test_host_random_classic_scenario(index: int) -> None:
    scenario = parse(random_scenarios(SEED, HOST_RANDOM, classic_only=True)[index], path=f"<random classic {index}>")
    record = _live_record(scenario)
    problem = check_against_model(scenario, record, _backend().profile)
    tally.compared("host random classic scenarios", agreed=problem is None, detail=f"#{index}: {problem}")
    assert problem is None, problem
