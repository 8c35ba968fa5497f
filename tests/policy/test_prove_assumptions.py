"""The named assumptions: each has a conformance scenario whose filters test exactly it, the scenarios pass on the
model for every kernel profile (the VM conformance run holds them against a real kernel), and every context the
model builds satisfies every assumption."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from planrun import context as model_context
from test_compile import _sqe

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import PROFILES, profile
from ringfence.bpf import check
from ringfence.policy.assumptions import ASSUMPTIONS, BY_ID, concerning, violated
from ringfence.scenario import load, run
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.steps import Filter, Restrict, Submit

SCENARIOS = Path(__file__).resolve().parents[1] / "corpus" / "scenarios" / "assumptions"
FILES = sorted(SCENARIOS.glob("*.toml"))


def test_one_scenario_per_assumption() -> None:
    assert sorted(a.scenario for a in ASSUMPTIONS) == [p.stem for p in FILES]
    for path in FILES:
        scenario = load(path)
        assert scenario.meta.get("assumption") in BY_ID, path.name
        assert BY_ID[scenario.meta["assumption"]].scenario == path.stem
        assert "assumption" in scenario.tags
    assert len(BY_ID) == len(ASSUMPTIONS)


@pytest.mark.parametrize("kernel", [k for k in PROFILES if profile(k).bpf_filters or k == "6.18"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_passes_on_the_model(path: Path, kernel: str) -> None:
    report = run(ModelBackend(profile(kernel)), load(path))
    if report.skipped:
        return
    assert report.transcript is not None and report.transcript.error is None, report.transcript
    assert not report.mismatches, [m.render() for m in report.mismatches]


@pytest.mark.parametrize("kernel", ["7.0", "7.2"])
def test_model_contexts_satisfy_every_assumption(kernel: str) -> None:
    k = profile(kernel)
    r = random.Random(kernel)
    checked = 0
    for _ in range(3000):
        sqe = _sqe(r, r.choice(("NOP", "READ", "SOCKET", "OPENAT", "OPENAT2", "CONNECT", "SEND")))
        ctx = model_context(sqe, k)
        if ctx is None:
            continue
        checked += 1
        assert not violated(ctx, sqe.opcode, k, sqe.flags & 0xFF), (sqe, ctx.hex())
    assert checked > 2000


def test_violations_are_reported() -> None:
    k = profile("7.2")
    ctx = bytearray(40)
    ctx[8], ctx[10] = int(SqeOp.OPENAT), 24
    assert violated(bytes(ctx), int(SqeOp.OPENAT), k) == ("open.largefile",)
    ctx[24] = 0o644 & 0xFF
    assert violated(bytes(ctx), int(SqeOp.OPENAT), k) == ("openat.mode-zero", "open.largefile")
    assert violated(bytes(40), int(SqeOp.NOP), k, raw_flags=0x80) == ("request.flags-valid",)
    assert violated(bytes(40), int(SqeOp.NOP), k, raw_flags=0x04) == ("request.flags-post-prep",)
    assert [a.id for a in concerning(int(SqeOp.CONNECT), profile("7.0"))] == [
        "ctx.opcode", "ctx.flags-7bit", "ctx.pdu-size", "ctx.pad-zero", "ctx.no-payload-zero"]


# -- the scenarios' filters test exactly their assumption -------------------------------------------------------

def _filters(path: Path) -> list[Filter]:
    return [s for s in load(path).steps if isinstance(s, Filter) and s.registration is not None]


@pytest.mark.parametrize("path", [p for p in FILES if _filters(p)], ids=lambda p: p.stem)
def test_scenario_filters_allow_exactly_when_the_assumption_holds(path: Path) -> None:
    z3 = pytest.importorskip("z3")
    from ringfence.bpf import Program
    from ringfence.bpf.symbolic import symbolic_result
    from ringfence.policy import prove

    assumption = BY_ID[load(path).meta["assumption"]]
    k = profile("7.2")
    for step in _filters(path):
        assert step.registration is not None
        op = step.registration.opcode
        v = prove._Vars.fresh()
        allows = symbolic_result(check(Program.from_bytes(step.registration.program)), prove._BpfAlgebra(v.words)) != 0
        holds = assumption.constraint(prove._AssumptionTerms(v), op, k)
        s = z3.Solver()
        if assumption.request:  # the filter reads the submitted flags from user_data's low seven bits
            s.add(v.raw == z3.Extract(7, 0, v.words[0]) & 0x7F)
        s.add(z3.Xor(allows, holds))
        assert s.check() == z3.unsat, (path.stem, SqeOp(op).name, s.model() if s.check() == z3.sat else None)


def test_the_flags_valid_scenario_allows_bit_7_classically() -> None:
    steps = load(SCENARIOS / "request_flags_valid.toml").steps
    (restrict,) = [s for s in steps if isinstance(s, Restrict)]
    assert any(r.value == 0xFF for r in restrict.records)
    submitted = [item.sqe.flags for s in steps if isinstance(s, Submit) for item in s.sqes]
    assert 0x80 in submitted
