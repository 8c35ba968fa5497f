"""LiveBackend on the running kernel: scenarios in fresh agents, netns isolation, timeouts, cleanup."""

from __future__ import annotations

import dataclasses
import glob
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from ringfence.abi.profiles import KernelProfile
from ringfence.errors import ScenarioError
from ringfence.harness.backend import LiveBackend, needs_netns
from ringfence.live import _sys
from ringfence.scenario import compare, load, parse, run, skip_reason
from ringfence.scenario.bind import bind
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.steps import Submit
from ringfence.scenario.transcript import SubmitResult

from ._scenarios import ALL, SOURCE_COW, sc

pytestmark = pytest.mark.live

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "scenarios"


@pytest.fixture(scope="module")
def backend() -> LiveBackend:
    return LiveBackend(step_timeout=20)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scenario temp directories go here, so concurrent test runs cannot confuse the leftover checks."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _leftovers(where: Path) -> set[str]:
    return set(glob.glob(os.path.join(where, "ringfence-live-*")))


@pytest.mark.parametrize("data", ALL, ids=lambda d: d["scenario"]["name"])
def test_scenarios_meet_their_expectations(backend: LiveBackend, data: dict[str, Any]) -> None:
    report = run(backend, parse(data))
    if report.skipped:
        pytest.skip(report.skipped)
    assert report.transcript is not None and report.transcript.error is None, report.transcript
    assert not report.mismatches, [m.render() for m in report.mismatches]


def test_source_cow_agrees_with_the_probed_profile(backend: LiveBackend, kernel: KernelProfile) -> None:
    """Spec §6.6: EACCES means the 7.0–7.2 shared table; ok means 7.3's source-side copy-on-write."""
    if not kernel.bpf_filters:
        pytest.skip("no task filters on this kernel")
    for data in SOURCE_COW:
        transcript = backend.run(parse(data))
        last = transcript.steps[-1].result
        assert isinstance(last, SubmitResult)
        assert last.cqes == ((1, "ok" if kernel.source_cow else "EACCES"),), data["scenario"]["name"]


def test_transcript_shape(backend: LiveBackend) -> None:
    transcript = backend.run(parse(sc("shape", [
        {"do": "ring", "ring": "r"},
        {"do": "fork", "child": "c"},
        {"do": "thread", "thread": "t"},
        {"do": "submit", "task": "t", "ring": "r", "sqes": [{"op": "NOP", "ud": 5}, {"op": "NOP", "ud": 2}]},
        {"do": "exec", "task": "c"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [{"op": "NOP"}]},
        {"do": "close", "ring": "r"},
        {"do": "enable", "ring": "r"},
    ])))
    assert transcript.error is None and transcript.backend == "live"
    assert transcript.kernel == os.uname().release
    assert [s.op for s in transcript.steps] == ["ring", "fork", "thread", "submit", "exec", "submit", "close",
                                                 "enable"]
    assert [s.task for s in transcript.steps][3:6] == ["t", "c", "c"]
    assert transcript.steps[3].result == SubmitResult(2, ((2, "ok"), (5, "ok")))  # sorted by user_data
    assert transcript.steps[2].task == "main" and transcript.steps[2].raw["tid"] != transcript.steps[1].raw["pid"]
    assert transcript.steps[3].raw["submitted"] == 2
    assert transcript.steps[5].result == SubmitResult("EBADF")  # ring descriptors close on exec
    assert transcript.steps[7].result == "EBADF"
    assert transcript.steps[1].raw["pid"] != os.getpid()


def test_coordinator_stays_unrestricted_and_nothing_is_left_behind(backend: LiveBackend, private_tmp: Path) -> None:
    backend.run(parse(sc("restrict_me", [{"do": "nnp"}, {"do": "fork", "child": "c"}, {"do": "thread",
                                                                                       "thread": "t"}])))
    assert not _sys.no_new_privs()
    assert not _leftovers(private_tmp)
    with pytest.raises(ChildProcessError):  # the first agent was reaped; the others were never our children
        os.waitpid(-1, os.WNOHANG)


def test_connect_runs_in_a_private_netns(backend: LiveBackend, root: None) -> None:
    data = sc("netns", [
        {"do": "ring", "ring": "r"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1",
                                                "port": 1, "ud": 1}]},
        {"do": "submit", "ring": "r", "sqes": [{"op": "CONNECT", "family": "AF_INET", "addr": "192.0.2.1",
                                                "port": 80, "ud": 2}]},
        {"do": "submit", "ring": "r", "sqes": [{"op": "CONNECT", "family": "AF_INET6", "addr": "2001:db8::1",
                                                "port": 80, "ud": 3}]},
    ])
    scenario = parse(data)
    assert needs_netns(scenario)
    transcript = backend.run(scenario)
    assert transcript.error is None, transcript.error
    assert [s.result for s in transcript.steps[1:]] == [SubmitResult(1, ((1, "ECONNREFUSED"),)),
                                                        SubmitResult(1, ((2, "ENETUNREACH"),)),
                                                        SubmitResult(1, ((3, "ENETUNREACH"),))]


def test_requires_netns_without_connect_also_isolates(backend: LiveBackend) -> None:
    assert needs_netns(parse(sc("n", [{"do": "nnp"}], requires=("netns",))))
    assert not needs_netns(parse(sc("n", [{"do": "nnp"}])))


def test_stuck_agent_is_killed_and_reported(private_tmp: Path) -> None:
    """A READ on an empty pipe keeps the agent in its (bounded) wait longer than the step timeout."""
    backend = LiveBackend(step_timeout=0.2)
    started = time.monotonic()
    transcript = backend.run(parse(sc("stuck", [
        {"do": "ring", "ring": "r"},
        {"do": "fork", "child": "c"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [{"op": "READ", "fd": "pipe.r", "ud": 1}]},
        {"do": "nnp"},
    ])))
    assert time.monotonic() - started < 10
    assert transcript.error is not None and "did not answer within 0.2 s; killed" in transcript.error
    assert [s.op for s in transcript.steps] == ["ring", "fork"]
    assert not _leftovers(private_tmp)


def test_unknown_resource_ends_the_run_with_an_error(backend: LiveBackend) -> None:
    scenario = parse(sc("t", [{"do": "ring", "ring": "r"}, {"do": "submit", "ring": "r", "sqes": [
        {"op": "WRITE", "fd": "null"}]}]))
    submit = scenario.steps[1]
    assert isinstance(submit, Submit)  # the loader refuses an unknown resource: build the step past it
    bad = dataclasses.replace(submit, sqes=(dataclasses.replace(submit.sqes[0], fd="nowhere"),))
    transcript = backend.run(dataclasses.replace(scenario, steps=(scenario.steps[0], bad)))
    assert transcript.error is not None and "unknown resource 'nowhere'" in transcript.error
    assert len(transcript.steps) == 1


def test_features_and_profile(backend: LiveBackend, kernel: KernelProfile) -> None:
    assert backend.profile == kernel
    if os.geteuid() == 0:
        assert backend.features() == {"netns", "unprivileged"}


def test_model_agrees_with_this_kernel(backend: LiveBackend, kernel: KernelProfile) -> None:
    """The live kernel and the model give the same transcripts for this suite's scenarios and the corpus."""
    model = ModelBackend(kernel)
    found = {}
    for scenario in [parse(d) for d in ALL] + [load(p) for p in sorted(CORPUS.rglob("*.toml"))]:
        if skip_reason(scenario, kernel, backend.features()):
            continue
        bound = bind(scenario, kernel)  # policy steps become the registrations they stand for
        diffs = compare(backend.run(bound), model.run(bound))
        if diffs:
            found[scenario.name] = [d.render("live", "model") for d in diffs]
    assert not found, found


@pytest.mark.parametrize("path", sorted(CORPUS.rglob("*.toml")), ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_scenarios_on_this_kernel(backend: LiveBackend, path: Path) -> None:
    try:
        scenario = load(path)
    except ScenarioError as exc:
        if "assemble" in str(exc) or "No module named" in str(exc):
            pytest.skip(f"needs the assembler: {exc}")
        raise
    report = run(backend, scenario)
    if report.skipped:
        pytest.skip(report.skipped)
    assert report.transcript is not None and report.transcript.error is None, report.transcript
    assert not report.mismatches, [m.render() for m in report.mismatches]
