"""The 7.x kernel in qemu against the model: corpus scenarios, random scenarios, checker and interpreter.

One VM boot runs everything (see conftest.vm_batch); each comparison is its own test so a failure names it.
"""

from __future__ import annotations

from typing import Any

import conformance_tally as tally
import pytest
from conformance_compare import check_against_model
from conformance_data import CORPUS, VM_RANDOM, programs, random_scenarios, verdict_programs, verdict_requests

from ringfence.abi import ctx_from_fields, profile
from ringfence.bpf import Program, check, diagnose, run
from ringfence.scenario import load, parse

pytestmark = pytest.mark.vm


def _profile(batch: dict[str, Any]) -> Any:
    return profile(batch["profile"])


def test_vm_runs_a_7x_kernel(vm_batch: dict[str, Any]) -> None:
    assert vm_batch["kernel"].startswith("7."), vm_batch["kernel"]
    assert vm_batch["probe"]["bpf_filters"]["ring"] is True


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vm_corpus_scenario(vm_batch: dict[str, Any], path: Any) -> None:
    record = next(r for r in vm_batch["scenarios"] if r.get("path") == str(path))
    scenario = load(path)
    problem = check_against_model(scenario, record, _profile(vm_batch))
    tally.compared("vm corpus scenarios", agreed=problem is None, detail=f"{path.stem}: {problem}")
    assert problem is None, problem
    assert not record.get("mismatches"), "kernel differs from the scenario's expectations:\n" + "\n".join(
        record["mismatches"])


@pytest.mark.parametrize("index", range(VM_RANDOM))
def test_vm_random_scenario(vm_batch: dict[str, Any], index: int) -> None:
    records = vm_batch["scenarios"][len(CORPUS):]
    scenario = parse(random_scenarios(VM_RANDOM, classic_only=False)[index], path=f"<random {index}>")
    problem = check_against_model(scenario, records[index], _profile(vm_batch))
    tally.compared("vm random scenarios", agreed=problem is None, detail=f"#{index}: {problem}")
    assert problem is None, problem


def test_vm_checker_differential(vm_batch: dict[str, Any]) -> None:
    job = vm_batch["jobs"][0]
    assert "error" not in job, job.get("error")
    progs = programs()
    bad = []
    for prog, kernel in zip(progs, job["outcomes"], strict=True):
        n = len(prog) // 8
        ours = "EINVAL" if n == 0 or n > 4096 or diagnose(Program.from_bytes(prog)) else "ok"
        agreed = ours == kernel
        tally.compared("vm checker programs", agreed=agreed, detail=f"{prog[:64].hex()}: ours={ours} kernel={kernel}")
        if not agreed:
            bad.append(f"{prog[:80].hex()} ours={ours} kernel={kernel}")
    assert not bad, f"{len(bad)} of {len(progs)} programs disagree:\n" + "\n".join(bad[:20])


def test_vm_interpreter_differential(vm_batch: dict[str, Any]) -> None:
    prof = _profile(vm_batch)
    bad = []
    for i, (prog, job) in enumerate(zip(verdict_programs(), vm_batch["jobs"][1:], strict=True)):
        assert "error" not in job, job.get("error")
        checked = check(Program.from_bytes(prog))
        for req, kernel in zip(verdict_requests(i), job["outcomes"], strict=True):
            fields: dict[str, int | str] = {"user_data": req["ud"], "opcode": req["op"]}
            if req["op"] == "SOCKET":
                fields.update({"socket.family": req["family"], "socket.type": req["type"],
                               "socket.protocol": req["protocol"], "pdu_size": prof.pdu_size(45)})
            allowed = run(checked, ctx_from_fields(fields).pack()).allowed
            agreed = allowed == (kernel != "EACCES")
            tally.compared("vm interpreter verdicts", agreed=agreed, detail=f"{prog.hex()} {req} kernel={kernel}")
            if not agreed:
                bad.append(f"program {prog.hex()} request {req}: interpreter allowed={allowed}, kernel {kernel}")
    assert not bad, "\n".join(bad[:20])

